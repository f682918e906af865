"""Who may work an operator's queue: its own staff and admins, one agent per exception. Other operators, drivers,
the city and anonymous callers get nothing, through GraphQL and at the database as the application role."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from hub.db import Database, Scope
from tests.api.conftest import Callers
from tests.lanes.conftest import MakeLot, ago, global_id, row_id
from tests.queue.conftest import (
    AUDIT,
    CLAIM,
    ITEM,
    QUEUE,
    WAIVE,
    Desk,
    agent,
    audit_of,
    queue_of,
    raise_disagreement,
    subject,
)


async def test_concurrent_claims_by_two_agents_have_one_winner(desk: Desk) -> None:
    for _ in range(5):
        answer = await raise_disagreement(desk.lot, desk.lot.entry_lane, ago(1))
        exception_id = global_id("LaneException", answer["exception_id"])
        alice, bob = await asyncio.gather(
            desk.alice.post(CLAIM, {"id": exception_id}), desk.bob.post(CLAIM, {"id": exception_id})
        )
        outcomes = {
            name: body["errors"][0]["extensions"]["code"] if body.get("errors") else "CLAIMED"
            for name, body in (("alice", alice), ("bob", bob))
        }
        assert sorted(outcomes.values()) == ["ALREADY_CLAIMED", "CLAIMED"], outcomes
        [winner] = [name for name, outcome in outcomes.items() if outcome == "CLAIMED"]
        claims = [line for line in await audit_of(desk.alice, exception_id) if line["action"] == "claimed"]
        assert [line["actor"] for line in claims] == [subject(winner, desk.lot)]
        [listed] = [item for item in await queue_of(desk.alice) if item["id"] == exception_id]
        assert listed["claimedBy"] == subject(winner, desk.lot)


async def test_another_operator_can_neither_see_nor_touch_the_queue(
    desk: Desk, make_lot: MakeLot, callers: Callers
) -> None:
    answer = await raise_disagreement(desk.lot, desk.lot.entry_lane, ago(1))
    exception_id = global_id("LaneException", answer["exception_id"])
    theirs = await make_lot()
    await raise_disagreement(theirs, theirs.entry_lane, ago(1))
    stranger = agent(callers, theirs.tenant_id, "mallory", role="operator_admin")

    assert [item["id"] for item in await queue_of(desk.alice)] == [exception_id]
    assert exception_id not in [item["id"] for item in await queue_of(stranger)]
    assert await queue_of(stranger, facilityIds=[desk.lot.lot_id]) == []
    assert (await stranger.data(ITEM, {"id": exception_id}))["exceptionQueueItem"] is None
    assert (await stranger.data(AUDIT, {"id": exception_id}))["exceptionAuditTrail"] == []
    assert await stranger.error_code(CLAIM, {"id": exception_id}) == "NOT_FOUND"
    assert await stranger.error_code(CLAIM, {"id": exception_id, "takeOver": True}) == "NOT_FOUND"
    await desk.alice.data(CLAIM, {"id": exception_id})
    assert await stranger.error_code(WAIVE, {"id": exception_id, "reason": "mine now"}) == "NOT_FOUND"
    assert [line["action"] for line in await audit_of(desk.alice, exception_id)] == ["raised", "claimed"]


async def test_drivers_the_city_and_anonymous_callers_are_forbidden(desk: Desk, callers: Callers) -> None:
    answer = await raise_disagreement(desk.lot, desk.lot.entry_lane, ago(1))
    exception_id = global_id("LaneException", answer["exception_id"])
    for caller in (await callers.driver(), callers.city(), callers.anonymous(), callers.platform()):
        assert await caller.error_code(QUEUE) == "FORBIDDEN"
        assert await caller.error_code(CLAIM, {"id": exception_id}) == "FORBIDDEN"
        assert await caller.error_code(AUDIT, {"id": exception_id}) == "FORBIDDEN"
    assert (await desk.alice.data(ITEM, {"id": exception_id}))["exceptionQueueItem"]["state"] == "OPEN"


async def test_row_level_security_keeps_exceptions_and_their_trail_to_their_operator(
    desk: Desk, make_lot: MakeLot, db: Database
) -> None:
    """As the application role, with no tenant filter in the statement: only the policies stand in the way."""
    answer = await raise_disagreement(desk.lot, desk.lot.entry_lane, ago(1))
    exception_id = uuid.UUID(answer["exception_id"])
    await desk.alice.data(CLAIM, {"id": global_id("LaneException", exception_id)})
    theirs = await make_lot()
    counts = (
        "SELECT (SELECT count(*) FROM exceptions WHERE id = :id), "
        "(SELECT count(*) FROM exception_actions WHERE exception_id = :id)"
    )
    grab = "UPDATE exceptions SET claimed_by = 'mallory', claimed_at = now() WHERE id = :id"
    for scope in (Scope("operator", tenant_id=theirs.tenant_id), Scope("connector", tenant_id=theirs.tenant_id)):
        async with db.transaction(scope) as session:
            assert tuple((await session.execute(text(counts), {"id": exception_id})).one()) == (0, 0)
            assert (await session.execute(text(grab), {"id": exception_id})).rowcount == 0
    async with db.transaction(Scope("operator", tenant_id=desk.lot.tenant_id)) as session:
        assert tuple((await session.execute(text(counts), {"id": exception_id})).one()) == (1, 2)
    [item] = await queue_of(desk.alice)
    assert (item["claimedBy"], item["lane"]["id"]) == (subject("alice", desk.lot), desk.lot.entry_lane)
    assert row_id(item["id"]) == exception_id
