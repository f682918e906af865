"""The lane endpoints' refusals: who may call for a lane, what a request must look like, and that a refused
request writes nothing. And gate faults."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import text

from connectors import signatures
from connectors.lanes_http import credentials
from hub.db import Database
from tests.api.conftest import Callers
from tests.lanes.conftest import Gate, Lot, MakeLot, ago, fresh_plate, global_id, row_id, table_count

EXCEPTION = (
    "query($id: ID!) { node(id: $id) { ... on LaneException { kind state detail lane { id } facility { id } } } }"
)


def passage(plate: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"passage_id": f"p-{uuid.uuid4().hex}", "plate": plate or fresh_plate(), "confidence": 0.9, **fields}


async def nothing_written(owner_db: Database, lot: Lot) -> None:
    for table in ("lane_decisions", "lot_sessions", "exceptions"):
        assert await table_count(owner_db, table, lot.tenant_id) == 0, table


async def test_an_unknown_lane_is_404(lot: Lot) -> None:
    response = await lot.gate.client.post(f"/lanes/{uuid.uuid4()}/reads", json=passage())
    assert (response.status_code, response.json()["error"]) == (404, "unknown_lane")
    response = await lot.gate.client.post("/lanes/not-a-lane/reads", json=passage())
    assert response.status_code == 404


async def test_credentials_are_required_and_must_be_the_lane_operators(
    lot: Lot, make_lot: MakeLot, owner_db: Database
) -> None:
    body = orjson.dumps(passage())
    lane = f"/lanes/{row_id(lot.entry_lane)}/reads"
    unsigned = await lot.gate.client.post(lane, content=body)
    assert (unsigned.status_code, unsigned.json()["error"]) == (401, "unauthenticated")
    wrong_key = Gate(lot.gate.client, lot.gate.connector_id, signatures.generate_secret())
    refused = await wrong_key.post(lot.entry_lane, body)
    assert refused.status_code == 401 and "no signature matches" in refused.json()["message"]
    an_hour_ago = int(time.time()) - 3600
    stale = lot.gate.headers(body) | {"webhook-timestamp": str(an_hour_ago)}
    stale["webhook-signature"] = signatures.sign(lot.gate.secret, stale["webhook-id"], an_hour_ago, body)
    assert (await lot.gate.client.post(lane, content=body, headers=stale)).status_code == 401
    # Another operator's connector, however valid, is not this lane's.
    other = await make_lot()
    assert (await other.gate.post(lot.entry_lane, body)).status_code == 401
    await nothing_written(owner_db, lot)


async def test_a_connector_with_a_shared_secret_may_call_too(make_lot: MakeLot) -> None:
    lot = await make_lot(auth_mode="secret")
    answer = await lot.gate.passage(lot.entry_lane, fresh_plate(), ago(1))
    assert answer["decision"] == "open"
    bad = Gate(lot.gate.client, lot.gate.connector_id, "token-wrong", "secret")
    assert (await bad.post(lot.entry_lane, passage())).status_code == 401


async def test_an_operator_without_an_enabled_native_connector_has_no_lane_api(
    callers: Callers, make_lot: MakeLot, owner_db: Database
) -> None:
    lot = await make_lot()
    async with owner_db.engine.begin() as conn:
        await conn.execute(text("UPDATE connectors SET disabled_at = now() WHERE tenant_id = :t"), {"t": lot.tenant_id})
    credentials.clear()
    response = await lot.gate.post(lot.entry_lane, passage())
    assert (response.status_code, response.json()["error"]) == (403, "connector_disabled")
    # Only a connector of another format: nothing may call for the lanes.
    admin = await callers.operator()
    assert admin.tenant_id is not None
    plain = await make_lot(admin=admin)
    async with owner_db.engine.begin() as conn:
        await conn.execute(text("UPDATE connectors SET format = 'tts_v3' WHERE tenant_id = :t"), {"t": admin.tenant_id})
    credentials.clear()
    response = await plain.gate.post(plain.entry_lane, passage())
    assert (response.status_code, response.json()["error"]) == (403, "no_lane_connector")
    await nothing_written(owner_db, lot)


async def test_malformed_passages_are_400_naming_the_field_and_write_nothing(lot: Lot, owner_db: Database) -> None:
    cases: list[tuple[Any, str]] = [
        (b"{not json", "body"),
        ([passage()], "body"),
        ({"plate": fresh_plate()}, "passage_id"),
        (passage(confidence=1.5), "confidence"),
        (passage(confidence="high"), "confidence"),
        (passage(plate=12345), "plate"),
        ({"passage_id": "p-1", "reads": []}, "reads"),
        ({"passage_id": "p-1", "reads": [passage()] * 9}, "reads"),
        ({"passage_id": "p-1", "reads": [{"plate": "粤B12345", "confidence": 2}]}, "reads[0].confidence"),
        (passage(at="yesterday"), "at"),
        (passage(at=ago(-30).isoformat()), "at"),
    ]
    for payload, field in cases:
        response = await lot.gate.post(lot.entry_lane, payload)
        assert response.status_code == 400, (payload, response.text)
        assert (response.json()["error"], response.json()["field"]) == ("malformed_payload", field)
    await nothing_written(owner_db, lot)


async def test_a_body_over_the_limit_is_413(lot: Lot, owner_db: Database) -> None:
    response = await lot.gate.post(lot.entry_lane, passage(image="x" * 70_000))
    assert (response.status_code, response.json()["error"]) == (413, "request_too_large")
    await nothing_written(owner_db, lot)


async def test_a_time_without_offset_is_read_in_the_connectors_zone(lot: Lot) -> None:
    moment = ago(10).replace(microsecond=0)
    wall_clock = moment.astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)  # the connector's zone
    response = await lot.gate.post(lot.entry_lane, passage(at=wall_clock.isoformat()))
    assert response.status_code == 200
    [decision] = await lot.decisions()
    assert datetime.fromisoformat(decision["passedAt"]) == moment


async def test_a_gate_fault_waits_in_the_queue(lot: Lot) -> None:
    fault = {"kind": "barrier_stuck", "detail": {"motor": "overcurrent"}}
    response = await lot.gate.post(lot.exit_lane, fault, "faults")
    assert response.status_code == 201, response.text
    exception_id = response.json()["exception_id"]
    node = (await lot.staff.data(EXCEPTION, {"id": global_id("LaneException", exception_id)}))["node"]
    assert (node["kind"], node["state"], node["lane"]["id"], node["facility"]["id"]) == (
        "GATE_FAULT",
        "OPEN",
        lot.exit_lane,
        lot.lot_id,
    )
    assert (node["detail"]["fault"], node["detail"]["detail"]) == ("barrier_stuck", {"motor": "overcurrent"})
    bad = await lot.gate.post(lot.exit_lane, {"detail": "no kind"}, "faults")
    assert (bad.status_code, bad.json()["field"]) == (400, "kind")
