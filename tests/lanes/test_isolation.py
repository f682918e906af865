"""Operators, drivers and lanes see only their own sessions, decisions and exceptions: through GraphQL, and at the
database as the application role under row-level security."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from hub.db import ANONYMOUS, Database, Scope
from hub.errors import NotFound
from hub.lanes import operations, service
from hub.lanes.rules import make_read
from tests.api.conftest import Callers
from tests.lanes.conftest import SESSIONS, Lot, MakeLot, ago, fresh_plate, global_id, row_id
from tests.lanes.test_codes import SCAN_ENTRY, code_of
from tests.lanes.test_exit import ADD_VEHICLE, SET_AUTO_PAY

NODE = "query($id: ID!) { node(id: $id) { id } }"
TABLES = ("lot_sessions", "lane_decisions", "exceptions", "exception_actions")


async def counts(db: Database, scope: Scope, tenant_id: uuid.UUID) -> dict[str, int]:
    async with db.transaction(scope) as session:
        return {
            table: (
                await session.execute(text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": tenant_id})
            ).scalar_one()
            for table in TABLES
        }


async def test_another_operator_sees_none_of_the_sessions_decisions_or_exceptions(
    make_lot: MakeLot, db: Database
) -> None:
    mine, theirs = await make_lot(), await make_lot()
    entered = await mine.gate.passage(mine.entry_lane, fresh_plate(), ago(5))
    held = await mine.gate.passage(mine.exit_lane, fresh_plate(), ago(1))  # exit without entry: an exception
    data = await theirs.staff.data(SESSIONS, {"facilityId": mine.lot_id})
    assert data["lotSessions"]["edges"] == []
    assert await theirs.decisions() == []
    for type_name, value in (
        ("LotSession", entered["session_id"]),
        ("LaneDecision", held["decision_id"]),
        ("LaneException", held["exception_id"]),
    ):
        assert (await theirs.staff.data(NODE, {"id": global_id(type_name, value)}))["node"] is None
        assert (await mine.staff.data(NODE, {"id": global_id(type_name, value)}))["node"] is not None

    own = await counts(db, Scope("connector", tenant_id=mine.tenant_id), mine.tenant_id)
    assert own == {"lot_sessions": 1, "lane_decisions": 2, "exceptions": 1, "exception_actions": 1}
    empty = dict.fromkeys(TABLES, 0)
    assert await counts(db, Scope("connector", tenant_id=theirs.tenant_id), mine.tenant_id) == empty
    assert await counts(db, Scope("operator", tenant_id=theirs.tenant_id), mine.tenant_id) == empty
    assert await counts(db, ANONYMOUS, mine.tenant_id) == empty
    assert await counts(db, Scope("city"), mine.tenant_id) == empty


async def test_a_lane_cannot_decide_for_another_operators_lane(make_lot: MakeLot, db: Database) -> None:
    mine, theirs = await make_lot(), await make_lot()
    passage = service.Passage("p-cross", (make_read(fresh_plate(), 0.99),), ago(1))
    with pytest.raises(NotFound):
        await service.decide_at_lane(db, theirs.tenant_id, row_id(mine.entry_lane), passage)
    assert await mine.decisions() == []


async def test_drivers_see_their_own_sessions_only(lot: Lot, callers: Callers) -> None:
    alice, bob = await callers.driver(), await callers.driver()
    scanned = (await alice.data(SCAN_ENTRY, {"code": (await code_of(lot, lot.entry_lane))["code"]}))["scanEntryCode"]
    session_id = scanned["session"]["id"]
    assert (await alice.data(NODE, {"id": session_id}))["node"] == {"id": session_id}
    assert (await bob.data(NODE, {"id": session_id}))["node"] is None
    body = await alice.post(SESSIONS, {"facilityId": lot.lot_id})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_auto_pay_authorizations_are_the_drivers_and_lanes_read_them_by_plate(
    callers: Callers, db: Database, lot: Lot
) -> None:
    plate = fresh_plate()
    alice, bob = await callers.driver(), await callers.driver()
    await alice.data(ADD_VEHICLE, {"plate": plate})
    await alice.data(SET_AUTO_PAY, {"plate": plate, "enabled": True})
    query = text("SELECT count(*) FROM auto_pay_authorizations WHERE plate = :p")
    readers = {
        "alice": Scope("driver", user_id=alice.user_id),
        "bob": Scope("driver", user_id=bob.user_id),
        "operator": Scope("operator", tenant_id=lot.tenant_id),
        "lane": Scope("connector", tenant_id=lot.tenant_id),
        "anonymous": ANONYMOUS,
    }
    seen = {}
    for name, scope in readers.items():
        async with db.transaction(scope) as session:
            seen[name] = (await session.execute(query, {"p": plate})).scalar_one()
    assert seen == {"alice": 1, "bob": 0, "operator": 0, "lane": 1, "anonymous": 0}
    # Lanes read them, never change them.
    revoke = text("UPDATE auto_pay_authorizations SET revoked_at = now() WHERE plate = :p")
    async with db.transaction(Scope("connector", tenant_id=lot.tenant_id)) as session:
        assert (await session.execute(revoke, {"p": plate})).rowcount == 0


async def test_lanes_and_curb_sightings_find_who_pays_automatically_for_a_plate(
    callers: Callers, db: Database, lot: Lot
) -> None:
    plate = fresh_plate()
    driver = await callers.driver()
    await driver.data(ADD_VEHICLE, {"plate": plate})
    await driver.data(SET_AUTO_PAY, {"plate": plate, "enabled": True})
    async with db.transaction(Scope("connector", tenant_id=lot.tenant_id)) as session:
        holder = await operations.auto_pay_for_plate(session, plate.replace("B", "b·"))  # as a camera may send it
        nobody = await operations.auto_pay_for_plate(session, fresh_plate())
    assert holder is not None and holder.driver_id == driver.user_id
    assert nobody is None
