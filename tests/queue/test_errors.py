"""Each queue mutation's refusals, each a typed error that changes nothing: no state change, no audit line."""

from __future__ import annotations

import uuid
from typing import Any

from tests.lanes.conftest import ago, fresh_plate, global_id
from tests.queue.conftest import (
    CLAIM,
    CLOSE_AT,
    CORRECT,
    ITEM,
    OPEN_GATE,
    RELEASE,
    WAIVE,
    Desk,
    audit_of,
    raise_disagreement,
    subject,
)

RESOLVING = [
    (OPEN_GATE, {"reason": "r"}),
    (CLOSE_AT, {"amountFen": 100, "reason": "r"}),
    (WAIVE, {"reason": "r"}),
    (CORRECT, {"plate": "粤B12345"}),
    (RELEASE, {}),
]


async def raised(desk: Desk) -> str:
    answer = await raise_disagreement(desk.lot, desk.lot.entry_lane, ago(1))
    return global_id("LaneException", answer["exception_id"])


async def item(desk: Desk, exception_id: str) -> dict[str, Any]:
    return (await desk.alice.data(ITEM, {"id": exception_id}))["exceptionQueueItem"]


async def test_an_unknown_exception_is_not_found_for_every_mutation(desk: Desk) -> None:
    unknown = global_id("LaneException", uuid.uuid4())
    assert await desk.alice.error_code(CLAIM, {"id": unknown}) == "NOT_FOUND"
    for document, variables in RESOLVING:
        assert await desk.alice.error_code(document, {"id": unknown, **variables}) == "NOT_FOUND"
    assert await desk.alice.error_code(CLAIM, {"id": desk.lot.lot_id}) == "INVALID_ID"  # a facility's id


async def test_acting_before_claiming_is_not_claimed(desk: Desk) -> None:
    exception_id = await raised(desk)
    for document, variables in RESOLVING:
        assert await desk.alice.error_code(document, {"id": exception_id, **variables}) == "NOT_CLAIMED"
    assert (await item(desk, exception_id))["state"] == "OPEN"
    assert len(await audit_of(desk.alice, exception_id)) == 1  # raised, nothing since


async def test_another_agents_claim_is_theirs_alone(desk: Desk) -> None:
    exception_id = await raised(desk)
    await desk.alice.data(CLAIM, {"id": exception_id})
    body = await desk.bob.post(CLAIM, {"id": exception_id})
    error = body["errors"][0]["extensions"]
    assert (error["code"], error["claimedBy"]) == ("ALREADY_CLAIMED", subject("alice", desk.lot))
    for document, variables in RESOLVING:
        assert await desk.bob.error_code(document, {"id": exception_id, **variables}) == "ALREADY_CLAIMED"
    # Staff may not take a claim over; claiming one's own again changes nothing.
    assert await desk.bob.error_code(CLAIM, {"id": exception_id, "takeOver": True}) == "FORBIDDEN"
    again = (await desk.alice.data(CLAIM, {"id": exception_id}))["claimException"]
    assert again["claimedBy"] == subject("alice", desk.lot)
    assert [line["action"] for line in await audit_of(desk.alice, exception_id)] == ["raised", "claimed"]


async def test_an_admin_may_take_over_and_the_trail_says_from_whom(desk: Desk) -> None:
    exception_id = await raised(desk)
    await desk.alice.data(CLAIM, {"id": exception_id})
    taken = (await desk.admin.data(CLAIM, {"id": exception_id, "takeOver": True, "reason": "alice went home"}))[
        "claimException"
    ]
    assert taken["claimedBy"] == subject("carol", desk.lot)
    assert await desk.alice.error_code(WAIVE, {"id": exception_id, "reason": "r"}) == "ALREADY_CLAIMED"
    last = (await audit_of(desk.alice, exception_id))[-1]
    assert (last["actor"], last["action"], last["reason"], last["detail"]) == (
        subject("carol", desk.lot),
        "taken_over",
        "alice went home",
        {"from": subject("alice", desk.lot)},
    )


async def test_releasing_puts_it_back_for_anyone(desk: Desk) -> None:
    exception_id = await raised(desk)
    await desk.alice.data(CLAIM, {"id": exception_id})
    released = (await desk.alice.data(RELEASE, {"id": exception_id, "reason": "need a supervisor"}))["releaseException"]
    assert (released["state"], released["claimedBy"], released["claimedAt"]) == ("OPEN", None, None)
    assert (await desk.bob.data(CLAIM, {"id": exception_id}))["claimException"]["claimedBy"] == subject("bob", desk.lot)
    trail = await audit_of(desk.bob, exception_id)
    assert [(line["action"], line["reason"]) for line in trail] == [
        ("raised", "plate_disagreement"),
        ("claimed", None),
        ("released", "need a supervisor"),
        ("claimed", None),
    ]


async def test_a_resolved_exception_is_already_resolved(desk: Desk) -> None:
    exception_id = await raised(desk)
    await desk.alice.data(CLAIM, {"id": exception_id})
    await desk.alice.data(WAIVE, {"id": exception_id, "reason": "test vehicle"})
    assert await desk.bob.error_code(CLAIM, {"id": exception_id}) == "ALREADY_RESOLVED"
    assert await desk.admin.error_code(CLAIM, {"id": exception_id, "takeOver": True}) == "ALREADY_RESOLVED"
    for document, variables in RESOLVING:
        assert await desk.alice.error_code(document, {"id": exception_id, **variables}) == "ALREADY_RESOLVED"
    assert len(await audit_of(desk.alice, exception_id)) == 3


async def test_opening_closing_and_waiving_need_a_reason(desk: Desk) -> None:
    exception_id = await raised(desk)
    await desk.alice.data(CLAIM, {"id": exception_id})
    for document, variables in ((OPEN_GATE, {}), (CLOSE_AT, {"amountFen": 0}), (WAIVE, {})):
        for reason in (None, "", "   "):
            body = await desk.alice.post(document, {"id": exception_id, "reason": reason, **variables})
            error = body["errors"][0]["extensions"]
            assert (error["code"], error["field"]) == ("REASON_REQUIRED", "reason")
    assert (await item(desk, exception_id))["state"] == "CLAIMED"
    assert len(await audit_of(desk.alice, exception_id)) == 2


async def test_what_an_exception_lacks_is_said_and_nothing_changes(desk: Desk) -> None:
    lot = desk.lot
    # No session to close: the cameras disagreed at entry, nobody is inside.
    exception_id = await raised(desk)
    await desk.alice.data(CLAIM, {"id": exception_id})
    assert await desk.alice.error_code(CLOSE_AT, {"id": exception_id, "amountFen": 100, "reason": "r"}) == "NO_SESSION"
    assert await desk.alice.error_code(CORRECT, {"id": exception_id, "plate": "粤B1?"}) == "INVALID_PLATE"
    # A negative amount, for a vehicle that is inside.
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(60))
    held = await lot.gate.passage(lot.exit_lane, plate, ago(1), confidence=0.3)
    at_exit = global_id("LaneException", held["exception_id"])
    await desk.alice.data(CLAIM, {"id": at_exit})
    assert await desk.alice.error_code(CLOSE_AT, {"id": at_exit, "amountFen": -1, "reason": "r"}) == "INVALID_AMOUNT"
    # A gate fault has no passage to decide again.
    fault = await lot.gate.post(lot.entry_lane, {"kind": "loop_detector_dead"}, "faults")
    fault_id = global_id("LaneException", fault.json()["exception_id"])
    await desk.alice.data(CLAIM, {"id": fault_id})
    assert await desk.alice.error_code(CORRECT, {"id": fault_id, "plate": fresh_plate()}) == "NO_PASSAGE"

    for refused in (exception_id, at_exit, fault_id):
        assert (await item(desk, refused))["state"] == "CLAIMED"
        assert [line["action"] for line in await audit_of(desk.alice, refused)] == ["raised", "claimed"]
    [session] = await lot.sessions(plate=plate)
    assert session["state"] == "OPEN"
