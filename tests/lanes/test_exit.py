"""Exit lanes through `POST /lanes/{id}/reads`: who leaves free, who pays, and how the session closes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from hub.db import Database, Scope
from hub.lanes import service
from tests.api.conftest import Callers
from tests.lanes.conftest import Lot, MakeLot, ago, decide_counting, fresh_plate

ADD_VEHICLE = "mutation($plate: String!) { addVehicle(plate: $plate) { id } }"
SET_AUTO_PAY = (
    "mutation($plate: String!, $enabled: Boolean!) { setAutoPay(plate: $plate, enabled: $enabled) "
    "{ plate enabled since } }"
)


async def pay(db: Database, lot: Lot, session_id: str, amount_fen: int, paid_at: datetime) -> None:
    """A payment as the payments issue will record it."""
    async with db.transaction(Scope("connector", tenant_id=lot.tenant_id)) as session:
        await service.record_payment(session, lot.tenant_id, uuid.UUID(session_id), amount_fen, paid_at)


async def test_a_whitelisted_vehicle_leaves_free(lot: Lot) -> None:
    plate = fresh_plate()
    await lot.whitelist(plate)
    entry = await lot.gate.passage(lot.entry_lane, plate, ago(180))
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(1))
    assert (exit["decision"], exit["reason"], exit["amount_due_fen"]) == ("open", "whitelisted", 0)
    assert exit["session_id"] == entry["session_id"]
    [session] = await lot.sessions()
    assert (session["state"], session["priceFen"], session["closeReason"]) == ("CLOSED", 0, "whitelisted")
    assert session["exitLane"]["id"] == lot.exit_lane and session["exitedAt"] is not None


async def test_a_pass_covering_the_whole_stay_leaves_free(lot: Lot) -> None:
    plate = fresh_plate()
    await lot.add_pass(plate)
    await lot.gate.passage(lot.entry_lane, plate, ago(150))
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(1))
    assert (exit["decision"], exit["reason"], exit["amount_due_fen"]) == ("open", "pass", 0)
    [session] = await lot.sessions()
    assert (session["priceFen"], session["closeReason"]) == (0, "pass")
    assert [segment["rule"] for segment in session["quote"]["segments"]] == ["pass"]


async def test_a_stay_under_the_free_minutes_leaves_free(lot: Lot) -> None:
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(10))
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(2))
    assert (exit["decision"], exit["reason"], exit["amount_due_fen"]) == ("open", "no_fee", 0)
    [session] = await lot.sessions()
    assert (session["state"], session["priceFen"]) == ("CLOSED", 0)


async def test_an_unpaid_stay_is_held_with_the_amount_and_opens_once_paid_within_the_grace(
    lot: Lot, db: Database
) -> None:
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(125))
    held = await lot.gate.passage(lot.exit_lane, plate, ago(1))
    # 124 minutes: three started hours at 500 fen.
    assert (held["decision"], held["reason"], held["amount_due_fen"]) == ("hold", "payment_due", 1500)
    assert held["payment_link"].startswith("https://") and "/pay/P1." in held["payment_link"]
    assert held["exception_id"] is None
    [session] = await lot.sessions()
    assert session["state"] == "OPEN"

    await pay(db, lot, held["session_id"], 1500, ago(0.5))
    opened = await lot.gate.passage(lot.exit_lane, plate, datetime.now(UTC))
    assert (opened["decision"], opened["reason"], opened["amount_due_fen"]) == ("open", "paid", 0)
    [session] = await lot.sessions()
    assert (session["state"], session["priceFen"], session["paidFen"], session["closeReason"]) == (
        "CLOSED",
        1500,
        1500,
        "paid",
    )


async def test_leaving_after_the_exit_grace_owes_the_time_since_the_payment(lot: Lot, db: Database) -> None:
    plate = fresh_plate()
    entered = await lot.gate.passage(lot.entry_lane, plate, ago(100))
    await pay(db, lot, entered["session_id"], 500, ago(40))  # the first hour, paid 40 minutes ago
    held = await lot.gate.passage(lot.exit_lane, plate, ago(1))
    # 99 minutes now cost two hours; one is paid; the 15-minute grace has long passed.
    assert (held["decision"], held["reason"], held["amount_due_fen"]) == ("hold", "payment_due", 500)


async def test_a_plate_with_auto_pay_leaves_and_its_session_closes_with_a_pending_charge(
    lot: Lot, callers: Callers, owner_db: Database
) -> None:
    plate = fresh_plate()
    driver = await callers.driver()
    await driver.data(ADD_VEHICLE, {"plate": plate})
    authorized = (await driver.data(SET_AUTO_PAY, {"plate": plate, "enabled": True}))["setAutoPay"]
    assert (authorized["plate"], authorized["enabled"]) == (plate, True)
    await lot.gate.passage(lot.entry_lane, plate, ago(130))
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(1))
    assert (exit["decision"], exit["reason"], exit["amount_due_fen"]) == ("open", "auto_pay", 0)
    [session] = await lot.sessions()
    assert (session["state"], session["priceFen"], session["closeReason"]) == ("CLOSED", 1500, "auto_pay")
    async with owner_db.engine.connect() as conn:
        charges = (
            await conn.execute(
                text("SELECT amount_fen, currency, state, driver_id, plate FROM pending_charges WHERE tenant_id = :t"),
                {"t": lot.tenant_id},
            )
        ).all()
    assert [tuple(charge) for charge in charges] == [(1500, "CNY", "pending", driver.user_id, plate)]


async def test_a_plate_whose_auto_pay_was_stopped_is_held_again(lot: Lot, callers: Callers) -> None:
    plate = fresh_plate()
    driver = await callers.driver()
    await driver.data(ADD_VEHICLE, {"plate": plate})
    await driver.data(SET_AUTO_PAY, {"plate": plate, "enabled": True})
    stopped = (await driver.data(SET_AUTO_PAY, {"plate": plate, "enabled": False}))["setAutoPay"]
    assert stopped == {"plate": plate, "enabled": False, "since": None}
    await lot.gate.passage(lot.entry_lane, plate, ago(70))
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(1))
    assert (exit["decision"], exit["reason"], exit["amount_due_fen"]) == ("hold", "payment_due", 1000)


async def test_auto_pay_is_only_for_the_drivers_own_vehicles(callers: Callers) -> None:
    driver = await callers.driver()
    body = await driver.post(SET_AUTO_PAY, {"plate": fresh_plate(), "enabled": True})
    assert body["errors"][0]["extensions"]["code"] == "UNKNOWN_VEHICLE"


async def test_an_exit_without_an_entry_is_held_for_an_agent(lot: Lot) -> None:
    plate = fresh_plate()
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(1))
    assert (exit["decision"], exit["reason"], exit["session_id"]) == ("hold", "exit_without_entry", None)
    decision = await lot.decision(exit["decision_id"])
    assert (decision["exception"]["kind"], decision["exception"]["plate"]) == ("EXIT_WITHOUT_ENTRY", plate)
    assert decision["exception"]["reads"] == [{"plate": plate, "confidence": 0.95, "image": "cam-1/snap.jpg"}]


async def test_a_return_within_the_reentry_interval_continues_the_earlier_session(lot: Lot, db: Database) -> None:
    plate = fresh_plate()
    first = await lot.gate.passage(lot.entry_lane, plate, ago(130))
    await pay(db, lot, first["session_id"], 1000, ago(12))
    left = await lot.gate.passage(lot.exit_lane, plate, ago(10))
    assert (left["decision"], left["reason"]) == ("open", "paid")
    back = await lot.gate.passage(lot.entry_lane, plate, ago(5))
    assert (back["decision"], back["reason"]) == ("open", "reentered")
    held = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    # Priced as one stay from the first entry (the 5 minutes away not charged): three started hours, minus the
    # 1000 fen the first part was charged.
    assert (held["decision"], held["amount_due_fen"]) == ("hold", 500)
    second = await lot.session(back["session_id"])
    assert second["continuesSession"]["id"] == (await lot.session(first["session_id"]))["id"]


async def test_a_return_after_the_reentry_interval_is_a_new_stay(lot: Lot) -> None:
    plate = fresh_plate()
    await lot.whitelist(plate)  # leaves free, so the first stay closes
    await lot.gate.passage(lot.entry_lane, plate, ago(100))
    await lot.gate.passage(lot.exit_lane, plate, ago(60))
    back = await lot.gate.passage(lot.entry_lane, plate, ago(30))
    assert back["reason"] == "entered"
    assert (await lot.session(back["session_id"]))["continuesSession"] is None


async def test_a_lot_without_a_tariff_lets_everyone_out_free(make_lot: MakeLot) -> None:
    lot = await make_lot(tariff=None)
    plate = fresh_plate()
    entry = await lot.gate.passage(lot.entry_lane, plate, ago(300))
    assert (await lot.session(entry["session_id"]))["tariffVersion"] is None
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(1))
    assert (exit["decision"], exit["reason"], exit["amount_due_fen"]) == ("open", "no_tariff", 0)


async def test_an_exit_decision_is_a_few_statements(lot: Lot, db: Database) -> None:
    """Exits are benchmarked under load: a gate's decision begins its transaction and sets its scope in one round
    trip, reads what it needs in one statement (the lane, the session, the plate's list entries, the session's
    merchant coupons, auto-pay), writes the decision (and the closed session) and its notification (with its
    webhook deliveries, in one statement), and commits; tariffs and keys come from the process cache."""
    plate = fresh_plate()
    entered = await lot.gate.passage(lot.entry_lane, plate, ago(90))
    await lot.gate.passage(lot.exit_lane, plate, ago(60))  # the first exit of this tariff and operator
    held, statements = await decide_counting(db, lot, lot.exit_lane, plate, ago(30))
    assert (held.reason, statements) == (
        "payment_due",
        ["begin", "context", "decision", "notification", "commit"],
    )
    await pay(db, lot, entered["session_id"], 1000, ago(0.5))
    opened, statements = await decide_counting(db, lot, lot.exit_lane, plate, datetime.now(UTC))
    assert (opened.reason, statements) == (
        "paid",
        ["begin", "context", "close", "decision", "notification", "commit"],
    )
