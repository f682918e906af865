"""Fixtures for lanes: an operator's lot with an entry and an exit lane, a tariff, and a gate controller that
calls `POST /lanes/{id}/reads` as the operator's native connector. Everything goes through the real endpoint and
GraphQL; the tables are read as the owner only where GraphQL shows nothing yet (pending charges)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import event, text
from strawberry import relay

from connectors import signatures
from connectors.lanes_http import credentials
from hub.db import Database
from hub.lanes import service
from hub.lanes.rules import make_read
from tests.api.conftest import Caller, Callers, app, callers, client  # noqa: F401  (pytest finds fixtures by name)
from tests.api.supply_ops import CREATE_LANE, square

CREATE_LOT = "mutation($input: LotInput!) { createLot(input: $input) { id } }"
SET_TARIFF = (
    "mutation($f: ID!, $t: JSON!, $v: DateTime) { setTariff(facilityId: $f, tariffJson: $t, validFrom: $v) { id } }"
)
CREATE_PASS = "mutation($input: VehiclePassInput!) { createVehiclePass(input: $input) { id } }"
CREATE_WHITELIST = "mutation($input: WhitelistEntryInput!) { createWhitelistEntry(input: $input) { id } }"
CREATE_BLOCKLIST = "mutation($input: BlocklistEntryInput!) { createBlocklistEntry(input: $input) { id } }"

SESSION_FIELDS = (
    "id plate state standing vehicleClass enteredAt exitedAt priceFen paidFen closeReason quote "
    "entryLane { id } exitLane { id } continuesSession { id } tariffVersion { id }"
)
SESSIONS = (
    "query($facilityId: ID, $state: LotSessionState, $plate: String) { lotSessions(facilityId: $facilityId, "
    f"state: $state, plate: $plate, first: 100) {{ edges {{ node {{ {SESSION_FIELDS} }} }} }} }}"
)
DECISION_FIELDS = (
    "id passageId direction source plate decision reason amountDueFen passedAt "
    "reads { camera plate rawPlate plateValid confidence image } session { id } "
    "exception { id kind state plate detail reads { plate confidence image } session { id } lane { id } }"
)
DECISIONS = (
    "query($laneId: ID, $facilityId: ID) { laneDecisions(laneId: $laneId, facilityId: $facilityId, first: 100) "
    f"{{ edges {{ node {{ {DECISION_FIELDS} }} }} }} }}"
)

# An hour costs 500 fen; a stay under 15 minutes is free; 15 minutes to leave after paying; a return within
# 10 minutes of leaving continues the stay.
HOURLY = {
    "default_rate": {"unit_minutes": 60, "unit_price_fen": 500},
    "free_minutes": 15,
    "exit_grace_minutes": 15,
    "reentry_minutes": 10,
}
TARIFFS_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def row_id(global_id: str) -> uuid.UUID:
    return uuid.UUID(relay.GlobalID.from_id(global_id).node_id)


def global_id(type_name: str, value: uuid.UUID | str) -> str:
    return str(relay.GlobalID(type_name, str(value)))


def plate_of(number: int) -> str:
    return f"粤B{number:05d}"


def fresh_plate() -> str:
    return plate_of(uuid.uuid4().int % 100_000)


@dataclass
class Gate:
    """A gate controller: posts its lanes' passages as the operator's native connector."""

    client: httpx.AsyncClient
    connector_id: uuid.UUID
    secret: str
    auth_mode: str = "signature"

    def headers(self, body: bytes) -> dict[str, str]:
        if self.auth_mode == "secret":
            return {"Authorization": f"Bearer {self.secret}", "Content-Type": "application/json"}
        webhook_id = f"msg-{uuid.uuid4().hex}"
        timestamp = int(time.time())
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures.sign(self.secret, webhook_id, timestamp, body),
            "Content-Type": "application/json",
        }

    async def post(self, lane_id: str, payload: Any, path: str = "reads") -> httpx.Response:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return await self.client.post(f"/lanes/{row_id(lane_id)}/{path}", content=body, headers=self.headers(body))

    async def passage(
        self,
        lane_id: str,
        plate: str | None,
        at: datetime,
        *,
        confidence: float | None = 0.95,
        passage_id: str | None = None,
        reads: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"passage_id": passage_id or f"p-{uuid.uuid4().hex}", "at": at.isoformat()}
        if reads is None:
            payload.update({"camera": "cam-1", "plate": plate, "confidence": confidence, "image": "cam-1/snap.jpg"})
        else:
            payload["reads"] = reads
        response = await self.post(lane_id, payload)
        assert response.status_code == 200, response.text
        return response.json()


@dataclass
class Lot:
    admin: Caller
    staff: Caller
    tenant_id: uuid.UUID
    lot_id: str  # global ids
    entry_lane: str
    exit_lane: str
    gate: Gate
    facility_uuid: uuid.UUID = field(init=False)

    def __post_init__(self) -> None:
        self.facility_uuid = row_id(self.lot_id)

    async def sessions(self, **criteria: Any) -> list[dict[str, Any]]:
        data = await self.staff.data(SESSIONS, {"facilityId": self.lot_id, **criteria})
        return [edge["node"] for edge in data["lotSessions"]["edges"]]

    async def decisions(self, lane_id: str | None = None) -> list[dict[str, Any]]:
        data = await self.staff.data(DECISIONS, {"laneId": lane_id, "facilityId": self.lot_id})
        return [edge["node"] for edge in data["laneDecisions"]["edges"]]

    async def decision(self, decision_id: str) -> dict[str, Any]:
        document = f"query($id: ID!) {{ node(id: $id) {{ ... on LaneDecision {{ {DECISION_FIELDS} }} }} }}"
        return (await self.staff.data(document, {"id": global_id("LaneDecision", decision_id)}))["node"]

    async def session(self, session_id: str) -> dict[str, Any]:
        document = f"query($id: ID!) {{ node(id: $id) {{ ... on LotSession {{ {SESSION_FIELDS} }} }} }}"
        return (await self.staff.data(document, {"id": global_id("LotSession", session_id)}))["node"]

    async def add_pass(self, plate: str, **fields: Any) -> None:
        today = datetime.now(UTC).date()
        values = {
            "plate": plate,
            "facilityIds": [self.lot_id],
            "validFrom": str(today - timedelta(days=2)),
            "validUntil": str(today + timedelta(days=2)),
            **fields,
        }
        await self.admin.data(CREATE_PASS, {"input": values})

    async def whitelist(self, plate: str) -> None:
        await self.admin.data(CREATE_WHITELIST, {"input": {"plate": plate, "category": "VIP"}})

    async def block(self, plate: str, kind: str, reason: str) -> None:
        await self.admin.data(CREATE_BLOCKLIST, {"input": {"plate": plate, "kind": kind, "reason": reason}})


async def add_native_connector(
    owner_db: Database, tenant_id: uuid.UUID, auth_mode: str = "signature", fmt: str = "native"
) -> tuple[uuid.UUID, str]:
    secret = signatures.generate_secret() if auth_mode == "signature" else f"token-{uuid.uuid4().hex}"
    connector_id = uuid.uuid4()
    async with owner_db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO connectors (tenant_id, id, name, format, auth_mode, time_zone) "
                "VALUES (:t, :id, :name, :fmt, :auth, 'Asia/Shanghai')"
            ),
            {"t": tenant_id, "id": connector_id, "name": f"gates {connector_id}", "fmt": fmt, "auth": auth_mode},
        )
        await conn.execute(
            text("INSERT INTO connector_secrets (tenant_id, connector_id, secret) VALUES (:t, :c, :s)"),
            {"t": tenant_id, "c": connector_id, "s": secret},
        )
    credentials.clear()
    return connector_id, secret


MakeLot = Callable[..., Awaitable[Lot]]


@pytest.fixture
def make_lot(callers: Callers, client: httpx.AsyncClient, owner_db: Database) -> MakeLot:  # noqa: F811
    """A fresh operator with a lot (capacity, tariff) and its entry and exit lanes, and its gate controller."""

    async def make(
        capacity: int | None = 50,
        tariff: dict[str, Any] | None = HOURLY,
        auth_mode: str = "signature",
        admin: Caller | None = None,
    ) -> Lot:
        admin = admin or await callers.operator()
        assert admin.tenant_id is not None
        staff = await callers.operator(role="operator_staff", tenant_id=admin.tenant_id)
        lon = 114.0 + (uuid.uuid4().int % 1000) / 10_000
        lot_input = {"name": f"Lot {uuid.uuid4().hex[:6]}", "geometry": square(lon, 22.55), "capacity": capacity}
        lot = (await admin.data(CREATE_LOT, {"input": lot_input}))["createLot"]
        lanes = []
        for name, direction in (("In", "ENTRY"), ("Out", "EXIT")):
            lane = {"facilityId": lot["id"], "name": name, "direction": direction}
            lanes.append((await admin.data(CREATE_LANE, {"input": lane}))["createLane"]["id"])
        if tariff is not None:
            await admin.data(SET_TARIFF, {"f": lot["id"], "t": tariff, "v": TARIFFS_FROM.isoformat()})
        connector_id, secret = await add_native_connector(owner_db, admin.tenant_id, auth_mode)
        gate = Gate(client, connector_id, secret, auth_mode)
        return Lot(admin, staff, admin.tenant_id, lot["id"], lanes[0], lanes[1], gate)

    return make


@pytest.fixture
async def lot(make_lot: MakeLot) -> Lot:
    return await make_lot()


async def table_count(owner_db: Database, table: str, tenant_id: uuid.UUID) -> int:
    async with owner_db.engine.connect() as conn:
        return (
            await conn.execute(text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": tenant_id})
        ).scalar_one()


# ------------------------------------------------------------------------------------- statement counts

ASYNCPG_INTROSPECTION = ("typeinfo_tree", "current_setting('jit')")


async def decide_counting(
    db: Database, lot: Lot, lane: str, plate: str, at: datetime
) -> tuple[service.LaneAnswer, list[str]]:
    """A decision at `lane` (a global id) as the gate's request makes it (`decide_at_lane`), and every statement
    it ran: those sent on the asyncpg connection directly (its query logger) and those sent through SQLAlchemy
    (which prepares them, and asyncpg logs no prepared statement)."""
    statements: list[str] = []
    watched: list[Any] = []

    def log(record: Any) -> None:
        # asyncpg introspects a type the first time a connection meets it: once per pooled connection, not ours.
        if not any(marker in record.query for marker in ASYNCPG_INTROSPECTION):
            statements.append(_kind(record.query))

    def watch(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        driver.add_query_logger(log)
        watched.append(driver)

    def log_sqlalchemy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(_kind(statement))

    engine = db.engine.sync_engine
    event.listen(engine, "checkout", watch)
    event.listen(engine, "before_cursor_execute", log_sqlalchemy)
    try:
        passage = service.Passage(f"p-{uuid.uuid4()}", (make_read(plate, 0.99),), at)
        answer = await service.decide_at_lane(db, lot.tenant_id, row_id(lane), passage)
        await asyncio.sleep(0)  # asyncpg hands each statement to its loggers with call_soon
    finally:
        event.remove(engine, "before_cursor_execute", log_sqlalchemy)
        event.remove(engine, "checkout", watch)
        for driver in watched:
            driver.remove_query_logger(log)
    return answer, statements


def _kind(statement: str) -> str:
    for marker, kind in (
        ("set_config", "begin"),
        ("COMMIT", "commit"),
        ("FROM lanes l", "context"),
        ("vehicle_blocklist", "standing"),
        ("INSERT INTO lane_decisions", "decision"),
        ("INSERT INTO lot_sessions", "open"),
        ("UPDATE lot_sessions", "close"),
        ("FROM coupon_redemptions", "coupons"),
        ("INSERT INTO notifications", "notification"),
        ("FROM webhook_endpoints", "webhook endpoints"),
    ):
        if marker in statement:
            return kind
    return statement
