"""Leave first, pay later: an auto-pay exit's pending charge becomes a deduction through the worker and the sandbox;
success posts the held deduction, failure voids it and opens arrears on the driver, which `payArrears` collects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from connectors.payments import ServiceState
from hub.db import Database
from hub.ledger.rules import account_id
from hub.payments import tasks
from tests.lanes.conftest import Lot, ago, fresh_plate, row_id
from tests.lanes.test_exit import ADD_VEHICLE, SET_AUTO_PAY
from tests.payments.test_lot_payments import balance, settle

ARREARS = "{ myArrears { id state amountFen arrearsFen method purpose } }"
PAY_ARREARS = "mutation($key: String!) { payArrears(idempotencyKey: $key) { id state amountFen purpose } }"
DETAILED = "{ myPayments(first: 50) { edges { node { id state method purpose amountFen arrearsFen } } } }"


async def auto_pay_exit(lot: Lot, callers: Any) -> tuple[Any, str]:
    """A driver with auto-pay parks 130 minutes (1500 fen) and leaves without stopping."""
    plate = fresh_plate()
    driver = await callers.driver()
    await driver.data(ADD_VEHICLE, {"plate": plate})
    await driver.data(SET_AUTO_PAY, {"plate": plate, "enabled": True})
    await lot.gate.passage(lot.entry_lane, plate, ago(130))
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(1))
    assert (exit["decision"], exit["reason"]) == ("open", "auto_pay")
    return driver, plate


async def payments_of(driver: Any) -> list[dict[str, Any]]:
    return [edge["node"] for edge in (await driver.data(DETAILED))["myPayments"]["edges"]]


async def charge_state(owner_db: Database, lot: Lot) -> list[str]:
    async with owner_db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT state FROM pending_charges WHERE tenant_id = :t"), {"t": lot.tenant_id})
        return [row[0] for row in rows]


async def test_an_auto_pay_deduction_succeeds_and_the_held_deduction_is_posted(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    driver, _ = await auto_pay_exit(lot, callers)
    await tasks.charge_pending_now(db)  # (every operator's pending charges: other tests' too)
    assert await tasks.charge_pending_now(db) == 0  # one deduction per pending charge, whatever the repeats
    [created] = await payments_of(driver)
    assert (created["state"], created["method"], created["amountFen"]) == ("CREATED", "deduct", 1500)
    sandbox.set_outcome(row_id(created["id"]).hex, "pending")  # accepted now, the result later
    await settle(run_worker, sandbox, db)
    [accepted] = await payments_of(driver)
    assert accepted["state"] == "REQUESTED"
    payable = await balance(owner_db, account_id("tenant_payable", lot.tenant_id))
    assert payable == (0, 0, 1500, 0)  # held, not yet the operator's to be paid out

    sandbox.complete(row_id(created["id"]).hex, succeed=True)
    await settle(run_worker, sandbox, db)
    [paid] = await payments_of(driver)
    assert (paid["state"], paid["arrearsFen"]) == ("SUCCEEDED", 0)
    assert await balance(owner_db, account_id("tenant_payable", lot.tenant_id)) == (0, 0, 0, 1500)
    assert await charge_state(owner_db, lot) == ["captured"]
    assert (await driver.data(ARREARS))["myArrears"] == []


async def test_a_failed_deduction_opens_arrears_that_the_driver_pays_later(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    driver, _ = await auto_pay_exit(lot, callers)
    await tasks.charge_pending_now(db)
    [created] = await payments_of(driver)
    sandbox.set_outcome(row_id(created["id"]).hex, "fail")
    await settle(run_worker, sandbox, db)
    [failed] = await payments_of(driver)
    assert (failed["state"], failed["arrearsFen"]) == ("FAILED", 1500)
    assert await charge_state(owner_db, lot) == ["failed"]
    # The deduction was voided; the operator is owed 1500 fen, pending: settlement does not pay it out yet.
    assert await balance(owner_db, account_id("tenant_payable", lot.tenant_id)) == (0, 0, 1500, 0)
    assert await balance(owner_db, account_id("driver_receivable", driver.user_id)) == (1500, 0, 0, 0)
    owed = (await driver.data(ARREARS))["myArrears"]
    assert [(p["id"], p["arrearsFen"]) for p in owed] == [(failed["id"], 1500)]
    # Another driver owes nothing and cannot pay this one's arrears.
    stranger = await callers.driver()
    assert (await stranger.data(ARREARS))["myArrears"] == []
    assert await stranger.error_code(PAY_ARREARS, {"key": "a"}) == "NO_ARREARS"

    first = (await driver.data(PAY_ARREARS, {"key": "settle-up"}))["payArrears"]
    again = (await driver.data(PAY_ARREARS, {"key": "settle-up"}))["payArrears"]
    assert [p["id"] for p in again] == [p["id"] for p in first]
    assert [(p["purpose"], p["amountFen"], p["state"]) for p in first] == [("arrears", 1500, "CREATED")]
    await settle(run_worker, sandbox, db)
    states = {p["id"]: (p["state"], p["arrearsFen"]) for p in await payments_of(driver)}
    assert states == {failed["id"]: ("FAILED", 0), first[0]["id"]: ("SUCCEEDED", 0)}
    assert (await driver.data(ARREARS))["myArrears"] == []
    assert await driver.error_code(PAY_ARREARS, {"key": "twice"}) == "NO_ARREARS"
    # The owed amount is posted for the operator and the driver's receivable is settled by the money in.
    assert await balance(owner_db, account_id("tenant_payable", lot.tenant_id)) == (0, 0, 0, 1500)
    assert await balance(owner_db, account_id("driver_receivable", driver.user_id)) == (0, 1500, 0, 1500)


async def test_a_refused_deduction_request_also_opens_arrears(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    """The provider refuses the deduction outright (auto-pay paused at the provider): arrears, nothing held."""
    driver, plate = await auto_pay_exit(lot, callers)
    sandbox.set_service_state(plate, ServiceState.PAUSED)
    await tasks.charge_pending_now(db)
    await settle(run_worker, sandbox, db)
    [failed] = await payments_of(driver)
    assert (failed["state"], failed["arrearsFen"]) == ("FAILED", 1500)
    assert await balance(owner_db, account_id("tenant_payable", lot.tenant_id)) == (0, 0, 1500, 0)
