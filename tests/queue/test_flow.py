"""The exception flow through GraphQL, from a lane's request to a settled exception, with its audit trail: who did
what, when and why."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.lanes.conftest import MakeLot, ago, fresh_plate, global_id, plate_of, row_id
from tests.queue.conftest import (
    CLAIM,
    CLOSE_AT,
    CORRECT,
    HISTORY,
    OPEN_GATE,
    QUEUE,
    WAIVE,
    Desk,
    audit_of,
    gate_command_of,
    queue_of,
    raise_disagreement,
    subject,
)


def steps(trail: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(line["actor"], line["action"], line["reason"]) for line in trail]


def times(trail: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(line["at"]) for line in trail]


async def test_a_plate_disagreement_goes_from_the_lane_through_an_agent_to_an_open_barrier(desk: Desk) -> None:
    lot, alice = desk.lot, desk.alice
    passed = ago(2)
    answer = await raise_disagreement(lot, lot.entry_lane, passed, number=4242)
    exception_id = global_id("LaneException", answer["exception_id"])

    [waiting] = await queue_of(alice)
    assert (waiting["id"], waiting["kind"], waiting["state"]) == (exception_id, "PLATE_DISAGREEMENT", "OPEN")
    assert waiting["heldReason"] == "plate_disagreement"
    assert waiting["lane"] == {"id": lot.entry_lane, "name": "In", "direction": "entry"}
    assert waiting["facility"]["id"] == lot.lot_id and waiting["facility"]["name"].startswith("Lot ")
    assert waiting["reads"] == [
        {"camera": "cam-a", "plate": plate_of(4242), "confidence": 0.93, "image": "cam-a/0187.jpg"},
        {"camera": "cam-b", "plate": plate_of(4243), "confidence": 0.95, "image": "cam-b/0187.jpg"},
    ]
    assert datetime.fromisoformat(waiting["passedAt"]) == passed
    assert (waiting["session"], waiting["claimedBy"]) == (None, None)

    claimed = (await alice.data(CLAIM, {"id": exception_id}))["claimException"]
    assert (claimed["state"], claimed["claimedBy"]) == ("CLAIMED", subject("alice", lot))
    [listed] = await queue_of(desk.bob)
    assert (listed["state"], listed["claimedBy"]) == ("CLAIMED", subject("alice", lot))

    reason = "cam-b misread the last digit"
    corrected = (await alice.data(CORRECT, {"id": exception_id, "plate": "粤B·04242", "reason": reason}))[
        "correctPlateAndRedecide"
    ]
    assert (corrected["settled"], corrected["decision"], corrected["reason"]) == (True, "OPEN", "entered")
    decision = corrected["laneDecision"]
    assert (decision["source"], decision["plate"], decision["decision"]) == ("AGENT", plate_of(4242), "OPEN")
    settled = corrected["exception"]
    assert (settled["state"], settled["resolvedBy"], settled["plate"]) == (
        "RESOLVED",
        subject("alice", lot),
        plate_of(4242),
    )
    # The vehicle entered when it stood at the barrier, not when the agent got to it.
    assert settled["session"]["plate"] == plate_of(4242) and settled["session"]["state"] == "OPEN"
    assert datetime.fromisoformat(settled["session"]["enteredAt"]) == passed
    assert settled["session"]["id"] == decision["session"]["id"]
    # The lane's gate is sent an open command; the resolution names it for the audit trail.
    command = settled["resolution"]["gate_command"]
    assert (command["command"], command["lane_id"]) == ("open", str(row_id(lot.entry_lane)))
    assert command["requested_by"] == subject("alice", lot)
    sent = await gate_command_of(alice, exception_id)
    assert sent is not None
    assert (sent["id"], sent["command"], sent["status"], sent["lane"]) == (
        command["id"],
        "open",
        "PENDING",
        lot.entry_lane,
    )
    assert (sent["requestedBy"], sent["reason"], sent["deliveries"], sent["outcome"]) == (
        subject("alice", lot),
        reason,
        0,
        None,
    )
    life = datetime.fromisoformat(sent["expiresAt"]) - datetime.fromisoformat(sent["requestedAt"])
    assert life == timedelta(seconds=60)

    assert await queue_of(alice) == []
    [done] = [edge["node"] for edge in (await alice.data(HISTORY))["exceptionHistory"]["edges"]]
    assert done["id"] == exception_id and done["state"] == "RESOLVED"

    trail = await audit_of(desk.bob, exception_id)
    assert done["actions"] == trail
    assert steps(trail) == [
        ("system", "raised", "plate_disagreement"),
        (subject("alice", lot), "claimed", None),
        (subject("alice", lot), "plate_corrected", reason),
    ]
    assert times(trail) == sorted(times(trail))
    what = trail[-1]["detail"]
    assert (what["from"], what["plate"], what["settled"]) == (None, plate_of(4242), True)
    assert (what["redecision"]["decision"], what["redecision"]["reason"]) == ("open", "entered")
    [session] = await lot.sessions()
    assert session["plate"] == plate_of(4242)


async def test_at_an_exit_the_agent_sees_what_is_due_and_closes_the_session_at_an_amount(desk: Desk) -> None:
    lot, alice = desk.lot, desk.alice
    plate = fresh_plate()
    entered = await lot.gate.passage(lot.entry_lane, plate, ago(130))
    held = await lot.gate.passage(lot.exit_lane, plate, ago(1), confidence=0.5)
    assert (held["decision"], held["reason"]) == ("hold", "low_confidence")
    exception_id = global_id("LaneException", held["exception_id"])

    [waiting] = await queue_of(alice)
    # The doubtful read matched a vehicle inside: the agent sees its session before deciding.
    assert waiting["session"]["id"] == global_id("LotSession", entered["session_id"])
    assert (waiting["session"]["plate"], waiting["session"]["state"]) == (plate, "OPEN")
    assert waiting["detail"]["candidate_plate"] == plate

    await alice.data(CLAIM, {"id": exception_id})
    corrected = (await alice.data(CORRECT, {"id": exception_id, "plate": plate}))["correctPlateAndRedecide"]
    assert (corrected["settled"], corrected["decision"], corrected["reason"]) == (False, "HOLD", "payment_due")
    due = corrected["amountDueFen"]
    assert due > 0 and corrected["paymentLink"]
    still = corrected["exception"]
    assert (still["state"], still["claimedBy"], still["session"]["amountDueFen"]) == (
        "CLAIMED",
        subject("alice", lot),
        due,
    )

    reason = "paid cash at the booth, receipt 0042"
    closed = (
        await alice.data(CLOSE_AT, {"id": exception_id, "amountFen": due - 100, "reason": reason, "openGate": True})
    )["closeSessionAtAmount"]
    assert closed["state"] == "RESOLVED"
    assert (closed["session"]["state"], closed["session"]["priceFen"]) == ("CLOSED", due - 100)
    assert closed["resolution"]["amount_fen"] == due - 100
    assert closed["resolution"]["gate_command"]["lane_id"] == str(row_id(lot.exit_lane))
    sent = await gate_command_of(alice, exception_id)
    assert sent is not None and (sent["id"], sent["lane"], sent["status"]) == (
        closed["resolution"]["gate_command"]["id"],
        lot.exit_lane,
        "PENDING",
    )
    session = await lot.session(entered["session_id"])
    assert (session["state"], session["priceFen"], session["closeReason"]) == ("CLOSED", due - 100, "agent_amount")
    assert session["exitLane"] == {"id": lot.exit_lane}

    trail = await audit_of(alice, exception_id)
    assert steps(trail) == [
        ("system", "raised", "low_confidence"),
        (subject("alice", lot), "claimed", None),
        (subject("alice", lot), "plate_corrected", None),
        (subject("alice", lot), "session_closed", reason),
    ]
    assert trail[2]["detail"]["redecision"]["amount_due_fen"] == due and trail[2]["detail"]["settled"] is False
    assert trail[3]["detail"]["amount_fen"] == due - 100


async def test_waiving_at_an_exit_closes_the_session_free(desk: Desk) -> None:
    lot, alice = desk.lot, desk.alice
    plate = fresh_plate()
    entered = await lot.gate.passage(lot.entry_lane, plate, ago(90))
    held = await lot.gate.passage(lot.exit_lane, plate, ago(1), confidence=0.4)
    exception_id = global_id("LaneException", held["exception_id"])
    await alice.data(CLAIM, {"id": exception_id})

    reason = "ambulance crew, waved through"
    waived = (await alice.data(WAIVE, {"id": exception_id, "reason": reason, "openGate": True}))["waiveException"]
    assert (waived["state"], waived["resolution"]["session_closed"]) == ("RESOLVED", str(entered["session_id"]))
    assert waived["resolution"]["gate_command"]["command"] == "open"
    session = await lot.session(entered["session_id"])
    assert (session["state"], session["priceFen"], session["closeReason"]) == ("CLOSED", 0, "agent_waived")
    assert steps(await audit_of(alice, exception_id))[-1] == (subject("alice", lot), "waived", reason)


async def test_a_correction_that_finds_the_vehicle_inside_hands_the_agent_a_duplicate_entry(desk: Desk) -> None:
    lot, alice = desk.lot, desk.alice
    inside = plate_of(7100)
    await lot.gate.passage(lot.entry_lane, inside, ago(30))
    held = await raise_disagreement(lot, lot.entry_lane, ago(1), number=7100)
    exception_id = global_id("LaneException", held["exception_id"])
    await alice.data(CLAIM, {"id": exception_id})

    corrected = (await alice.data(CORRECT, {"id": exception_id, "plate": inside}))["correctPlateAndRedecide"]
    assert (corrected["settled"], corrected["decision"], corrected["reason"]) == (True, "HOLD", "already_inside")
    settled = corrected["exception"]
    assert settled["state"] == "RESOLVED" and "gate_command" not in settled["resolution"]
    assert await gate_command_of(alice, settled["id"]) is None
    successor_id = settled["resolution"]["redecision"]["raised_exception_id"]

    [successor] = await queue_of(alice)
    assert successor["id"] == global_id("LaneException", successor_id)
    assert (successor["kind"], successor["state"], successor["claimedBy"]) == (
        "DUPLICATE_ENTRY",
        "CLAIMED",
        subject("alice", lot),
    )
    trail = await audit_of(alice, successor["id"])
    assert steps(trail) == [("system", "raised", "already_inside"), (subject("alice", lot), "claimed", None)]
    assert trail[1]["detail"] == {"supersedes": str(row_id(exception_id))}


async def test_a_gate_fault_is_settled_by_opening_the_gate_remotely(desk: Desk) -> None:
    lot, alice = desk.lot, desk.alice
    response = await lot.gate.post(lot.exit_lane, {"kind": "barrier_stuck", "detail": {"motor": "stall"}}, "faults")
    exception_id = global_id("LaneException", response.json()["exception_id"])
    [waiting] = await queue_of(alice)
    assert (waiting["kind"], waiting["lane"]["id"], waiting["detail"]["fault"]) == (
        "GATE_FAULT",
        lot.exit_lane,
        "barrier_stuck",
    )
    await alice.data(CLAIM, {"id": exception_id})
    opened = (await alice.data(OPEN_GATE, {"id": exception_id, "reason": "driver waiting, motor reset"}))[
        "openGateRemotely"
    ]
    assert opened["state"] == "RESOLVED"
    command = opened["resolution"]["gate_command"]
    assert (command["lane_id"], command["reason"]) == (str(row_id(lot.exit_lane)), "driver waiting, motor reset")
    assert steps(await audit_of(alice, exception_id))[-1] == (
        subject("alice", lot),
        "gate_opened",
        "driver waiting, motor reset",
    )


async def test_the_queue_lists_the_longest_waiting_first_by_facility_state_and_page(
    desk: Desk, make_lot: MakeLot
) -> None:
    lot, alice = desk.lot, desk.alice
    other_lot = await make_lot(admin=lot.admin)  # a second facility of the same operator
    raised = [
        (await raise_disagreement(lot, lot.entry_lane, ago(5)))["exception_id"],
        (await raise_disagreement(other_lot, other_lot.entry_lane, ago(4)))["exception_id"],
        (await raise_disagreement(lot, lot.exit_lane, ago(3)))["exception_id"],
    ]
    ids = [global_id("LaneException", value) for value in raised]
    assert [item["id"] for item in await queue_of(alice)] == ids
    assert [item["id"] for item in await queue_of(alice, facilityIds=[lot.lot_id])] == [ids[0], ids[2]]

    page = (await alice.data(QUEUE, {"first": 2}))["exceptionQueue"]
    assert [edge["node"]["id"] for edge in page["edges"]] == ids[:2] and page["pageInfo"]["hasNextPage"]
    rest = (await alice.data(QUEUE, {"first": 2, "after": page["pageInfo"]["endCursor"]}))["exceptionQueue"]
    assert [edge["node"]["id"] for edge in rest["edges"]] == ids[2:] and not rest["pageInfo"]["hasNextPage"]

    await alice.data(CLAIM, {"id": ids[1]})
    assert [item["id"] for item in await queue_of(alice, states=["CLAIMED"])] == [ids[1]]
    assert [item["id"] for item in await queue_of(alice, states=["OPEN"])] == [ids[0], ids[2]]
    assert await alice.error_code(QUEUE, {"states": ["RESOLVED"]}) == "INVALID_INPUT"

    for exception_id in (ids[2], ids[0]):
        await alice.data(CLAIM, {"id": exception_id})
        await alice.data(WAIVE, {"id": exception_id, "reason": "test"})
    history = [edge["node"]["id"] for edge in (await alice.data(HISTORY))["exceptionHistory"]["edges"]]
    assert history == [ids[2], ids[0]]  # newest first
    assert [item["id"] for item in await queue_of(alice)] == [ids[1]]
