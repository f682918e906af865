"""Entry lanes through `POST /lanes/{id}/reads`: who gets in, who is held, and what is recorded."""

from __future__ import annotations

import asyncio

from hub.db import Database
from tests.api.supply_ops import CREATE_LANE
from tests.lanes.conftest import Lot, MakeLot, ago, decide_counting, fresh_plate, row_id


async def test_a_visitor_enters_and_a_session_opens_sealed_with_the_tariff(lot: Lot) -> None:
    plate = fresh_plate()
    at = ago(30)
    answer = await lot.gate.passage(lot.entry_lane, plate, at)
    assert (answer["decision"], answer["reason"], answer["plate"]) == ("open", "entered", plate)
    assert answer["amount_due_fen"] is None and answer["exception_id"] is None and answer["payment_link"] is None
    [session] = await lot.sessions()
    assert str(row_id(session["id"])) == answer["session_id"]
    assert (session["plate"], session["state"], session["standing"]) == (plate, "OPEN", "VISITOR")
    assert session["entryLane"]["id"] == lot.entry_lane and session["exitLane"] is None
    assert session["tariffVersion"] is not None
    [decision] = await lot.decisions(lot.entry_lane)
    assert (decision["decision"], decision["reason"], decision["source"]) == ("OPEN", "entered", "CAMERA")
    assert decision["session"]["id"] == session["id"]
    assert decision["reads"] == [
        {
            "camera": "cam-1",
            "plate": plate,
            "rawPlate": plate,
            "plateValid": True,
            "confidence": 0.95,
            "image": "cam-1/snap.jpg",
        }
    ]


async def test_a_blacklisted_plate_is_held_without_a_session(lot: Lot) -> None:
    plate = fresh_plate()
    await lot.block(plate, "BLACKLIST", "unpaid fines")
    answer = await lot.gate.passage(lot.entry_lane, plate, ago(5))
    assert (answer["decision"], answer["reason"], answer["session_id"]) == ("hold", "blacklisted", None)
    assert answer["exception_id"] is None
    assert await lot.sessions() == []


async def test_a_restricted_plate_is_held_for_an_agent(lot: Lot) -> None:
    plate = fresh_plate()
    await lot.block(plate, "RESTRICTED", "towing order")
    answer = await lot.gate.passage(lot.entry_lane, plate, ago(5))
    assert (answer["decision"], answer["reason"]) == ("hold", "restricted")
    assert await lot.sessions() == []
    [decision] = await lot.decisions(lot.entry_lane)
    exception = decision["exception"]
    assert (exception["kind"], exception["state"], exception["plate"]) == ("RESTRICTED_PLATE", "OPEN", plate)
    assert exception["detail"]["reason"] == "towing order"
    assert exception["lane"]["id"] == lot.entry_lane
    assert str(row_id(exception["id"])) == answer["exception_id"]


async def test_a_full_lot_holds_visitors_but_lets_pass_holders_and_whitelisted_in(make_lot: MakeLot) -> None:
    lot = await make_lot(capacity=1)
    first, second, holder, vip = fresh_plate(), fresh_plate(), fresh_plate(), fresh_plate()
    await lot.add_pass(holder)
    await lot.whitelist(vip)
    assert (await lot.gate.passage(lot.entry_lane, first, ago(20)))["decision"] == "open"
    refused = await lot.gate.passage(lot.entry_lane, second, ago(19))
    assert (refused["decision"], refused["reason"], refused["exception_id"]) == ("hold", "lot_full", None)
    assert (await lot.gate.passage(lot.entry_lane, holder, ago(18)))["reason"] == "entered"
    assert (await lot.gate.passage(lot.entry_lane, vip, ago(17)))["reason"] == "entered"
    standings = {session["plate"]: session["standing"] for session in await lot.sessions()}
    assert standings == {first: "VISITOR", holder: "PASS_HOLDER", vip: "WHITELISTED"}


async def test_a_plate_already_inside_raises_an_exception_not_a_second_session(lot: Lot) -> None:
    plate = fresh_plate()
    entered = await lot.gate.passage(lot.entry_lane, plate, ago(40))
    again = await lot.gate.passage(lot.entry_lane, plate, ago(10))
    assert (again["decision"], again["reason"]) == ("hold", "already_inside")
    assert again["session_id"] == entered["session_id"]
    [session] = await lot.sessions()
    assert session["state"] == "OPEN"
    decision = await lot.decision(again["decision_id"])
    assert decision["exception"]["kind"] == "DUPLICATE_ENTRY"
    assert decision["exception"]["session"]["id"] == session["id"]


async def test_the_same_passage_again_gets_the_same_decision_and_no_second_session(lot: Lot) -> None:
    plate = fresh_plate()
    first = await lot.gate.passage(lot.entry_lane, plate, ago(5), passage_id="gate-7-000123")
    again = await lot.gate.passage(lot.entry_lane, plate, ago(5), passage_id="gate-7-000123")
    assert again["replayed"] is True and first["replayed"] is False
    assert {key: value for key, value in again.items() if key != "replayed"} == {
        key: value for key, value in first.items() if key != "replayed"
    }
    assert len(await lot.sessions()) == 1
    assert len(await lot.decisions(lot.entry_lane)) == 1


async def test_one_plate_at_two_entry_lanes_at_once_gets_one_session(lot: Lot) -> None:
    second_lane = (
        await lot.admin.data(CREATE_LANE, {"input": {"facilityId": lot.lot_id, "name": "In 2", "direction": "ENTRY"}})
    )["createLane"]["id"]
    plate = fresh_plate()
    answers = await asyncio.gather(
        lot.gate.passage(lot.entry_lane, plate, ago(2)), lot.gate.passage(second_lane, plate, ago(2))
    )
    assert sorted(answer["reason"] for answer in answers) == ["already_inside", "entered"]
    assert len(await lot.sessions()) == 1


async def test_one_passage_sent_twice_at_once_is_decided_once(lot: Lot) -> None:
    plate = fresh_plate()
    answers = await asyncio.gather(
        *(lot.gate.passage(lot.entry_lane, plate, ago(2), passage_id="gate-1-000042") for _ in range(2))
    )
    assert answers[0]["decision_id"] == answers[1]["decision_id"]
    assert sorted(answer["replayed"] for answer in answers) == [False, True]
    assert len(await lot.sessions()) == 1


async def test_an_entry_decision_is_a_few_statements(lot: Lot, db: Database) -> None:
    """Entries take the gate's fast path as exits do: the tariff version in effect comes with the context (its
    tariff from the process cache), then the session, the decision and its notification are written."""
    await lot.gate.passage(lot.entry_lane, fresh_plate(), ago(60))  # the first entry of this tariff and operator
    entered, statements = await decide_counting(db, lot, lot.entry_lane, fresh_plate(), ago(30))
    assert (entered.reason, statements) == (
        "entered",
        ["begin", "context", "open", "decision", "notification", "commit"],
    )
