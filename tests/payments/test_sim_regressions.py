"""Regressions the money-path simulation (tests/money_path) found, each reduced to its few steps.

Seed 1 (coupons): a driver paid the stay in the lot (the price without any coupon); a meeting code scanned afterwards
was accepted, so at the exit the merchant's fund paid the coupon too: the operator got 800 fen for a 600 fen stay. A
stay that is paid, or has a payment on its way, now takes no coupon (SESSION_PAID).

Seeds 201 and 221 (auto-pay): a payment in the lot on its way when the exit charged auto-pay; both were taken.

Seeds 1 and 2026 (curb): an operator's refund of a curb prepay while its session ran left the unused time in the
driver's wallet and the operator paying for it.

Seed 514 (ledger): two transactions creating one new account at once; one failed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hub.db import PLATFORM, Database
from hub.ledger import service as ledger
from hub.ledger.rules import account_id, account_spec
from hub.payments import tasks
from tests.lanes.conftest import Lot, ago, fresh_plate
from tests.lanes.test_exit import ADD_VEHICLE, SET_AUTO_PAY
from tests.merchants.conftest import GIVE, REDEEM, make_shop
from tests.payments.test_auto_pay import charge_state, payments_of
from tests.payments.test_lot_payments import PAY, balance, settle
from tests.payments.test_opening_and_invoices import SET_OPENING
from tests.payments.test_refunds import REFUND
from tests.payments.test_street_prepay import street_payments
from tests.street.conftest import Clock, CurbZone, clock, metered_fen, zone  # noqa: F401  (fixtures)
from tests.street.test_driver_api import END, start


async def test_a_coupon_after_the_stay_was_paid_is_refused_and_nobody_pays_twice(
    lot: Lot, callers: Any, client: httpx.AsyncClient, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    shop = await make_shop(lot, client)
    book = await shop.book("AMOUNT", count=10, unit_price_fen=200, amountFen=200)
    code = await shop.code(
        "MEETING", book["id"], limit=5, expiresAt=(datetime.now(UTC) + timedelta(hours=2)).isoformat()
    )
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(90))
    driver = await callers.driver()
    paid = (await driver.data(PAY, {"plate": plate, "facilityId": lot.lot_id, "key": "in-lot"}))["payLotSession"]
    assert paid["amountFen"] == 1000  # two started hours at 500, no coupon

    # While the payment is on its way, and once it has succeeded, the stay takes no coupon.
    assert await driver.error_code(REDEEM, {"code": code, "plate": plate}) == "SESSION_PAID"
    await settle(run_worker, sandbox, db)
    assert await driver.error_code(REDEEM, {"code": code, "plate": plate}) == "SESSION_PAID"
    assert await shop.error_code(GIVE, {"book": book["id"], "plate": plate}) == "SESSION_PAID"

    exit = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    assert (exit["decision"], exit["reason"]) == ("open", "paid")
    # The operator got the price once, from the driver; the merchant's fund paid nothing.
    assert await shop.fund() == {"balanceFen": 2000, "reservedFen": 0, "availableFen": 2000}
    payable = await balance(owner_db, account_id("tenant_payable", lot.tenant_id))
    assert payable[3] - payable[1] == 1000 - 2000  # the stay, less the book's funding moved to the merchant
    assert await shop.redemptions() == []


async def test_a_coupon_before_paying_lowers_what_the_driver_pays(
    lot: Lot, callers: Any, client: httpx.AsyncClient, run_worker: Any, sandbox: Any, db: Database
) -> None:
    """The refusal is only for paid stays: a coupon scanned first is priced in, and the car leaves paid."""
    shop = await make_shop(lot, client)
    book = await shop.book("AMOUNT", count=10, unit_price_fen=200, amountFen=200)
    code = await shop.code(
        "MEETING", book["id"], limit=5, expiresAt=(datetime.now(UTC) + timedelta(hours=2)).isoformat()
    )
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(90))
    driver = await callers.driver()
    assert (await driver.data(REDEEM, {"code": code, "plate": plate}))["redeemCode"]["reservedFen"] == 200
    paid = (await driver.data(PAY, {"plate": plate, "facilityId": lot.lot_id, "key": "in-lot"}))["payLotSession"]
    assert paid["amountFen"] == 800
    await settle(run_worker, sandbox, db)
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    assert (exit["decision"], exit["reason"]) == ("open", "paid")
    assert await shop.fund() == {"balanceFen": 1800, "reservedFen": 0, "availableFen": 1800}


async def auto_pay_driver(lot: Lot, callers: Any) -> tuple[Any, str]:
    plate = fresh_plate()
    driver = await callers.driver()
    await driver.data(ADD_VEHICLE, {"plate": plate})
    await driver.data(SET_AUTO_PAY, {"plate": plate, "enabled": True})
    await lot.gate.passage(lot.entry_lane, plate, ago(130))  # 1500 fen at the test tariff
    return driver, plate


@pytest.mark.parametrize("opens_on", ["SUCCEEDED", "ACCEPTED"])
async def test_a_stay_paid_in_the_lot_while_auto_pay_charges_the_exit_is_paid_once(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database, opens_on: str
) -> None:
    """Seeds 201 and 221: the driver paid in the lot, and before that payment landed the car read at the exit, which
    charged auto-pay the whole stay too: both succeeded, the operator got 3000 fen for a 1500 fen stay. The charge
    now waits while another payment of the stay is on its way, and deducts only what that payment did not pay."""
    await lot.admin.data(SET_OPENING, {"on": opens_on})
    driver, plate = await auto_pay_driver(lot, callers)
    paid = (await driver.data(PAY, {"plate": plate, "facilityId": lot.lot_id, "key": "in-lot"}))["payLotSession"]
    assert paid["amountFen"] == 1500
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    expected = ("hold", "awaiting_payment") if opens_on == "SUCCEEDED" else ("open", "auto_pay")
    assert (exit["decision"], exit["reason"]) == expected

    assert await tasks.charge_pending_now(db) == 0  # the payment in the lot is still on its way: the charge waits
    await settle(run_worker, sandbox, db)
    assert await tasks.charge_pending_now(db) == 0  # it paid everything: nothing is deducted
    await settle(run_worker, sandbox, db)
    mine = [(p["method"], p["state"], p["amountFen"]) for p in await payments_of(driver)]
    assert mine == [("charge", "SUCCEEDED", 1500)]
    assert await charge_state(owner_db, lot) == ["cancelled"]
    if opens_on == "SUCCEEDED":
        answer = await lot.gate.passage(lot.exit_lane, plate, ago(0))
        assert (answer["decision"], answer["reason"]) == ("open", "paid")
    payable = await balance(owner_db, account_id("tenant_payable", lot.tenant_id))
    assert (payable[2], payable[3]) == (0, 1500)  # the stay, once; nothing held


async def test_an_operator_refunds_a_curb_prepay_only_from_what_its_session_kept(
    callers: Any,
    zone: CurbZone,  # noqa: F811
    clock: Clock,  # noqa: F811
    run_worker: Any,
    sandbox: Any,
    db: Database,
    owner_db: Database,
) -> None:
    """Seeds 1 and 2026 (curb): an operator refunded most of a curb prepay while its session ran; when the session
    ended early, the unused part could no longer go back, so it stayed in the driver's wallet while the operator's
    payable paid for money it never kept. A prepay is now refunded by operators only once its session is settled,
    and only from what the session kept."""
    driver = await callers.driver()
    started = await start(driver, zone, minutes=120)
    await settle(run_worker, sandbox, db)
    [prepay] = await street_payments(driver)
    assert prepay["amountFen"] == metered_fen(120)
    refund = {"id": prepay["id"], "amount": 1000, "reason": "goodwill", "key": "early"}
    assert await zone.admin.error_code(REFUND, refund) == "PREPAY_NOT_SETTLED"

    clock.advance(20)
    await driver.data(END, {"id": started["session"]["id"]})
    await settle(run_worker, sandbox, db)
    kept = metered_fen(20)
    [ended] = await street_payments(driver)
    assert ended["refundedFen"] == metered_fen(120) - kept  # the unused time, from the driver's wallet
    too_much = {**refund, "amount": kept + 1, "key": "too-much"}
    assert await zone.admin.error_code(REFUND, too_much) == "REFUND_EXCEEDS_PAYMENT"
    await zone.admin.data(REFUND, {**refund, "amount": kept, "key": "all-kept"})
    await settle(run_worker, sandbox, db)
    [refunded] = await street_payments(driver)
    assert refunded["refundedFen"] == metered_fen(120)
    # Everything went back; the operator gave back what it kept; nothing is left in the driver's wallet.
    payable = await balance(owner_db, account_id("tenant_payable", zone.tenant_id))
    assert (payable[2], payable[3] - payable[1]) == (0, 0)
    prepaid = await balance(owner_db, account_id("driver_prepaid", driver.user_id))
    assert (prepaid[0], prepaid[2], prepaid[3] - prepaid[1]) == (0, 0, 0)


async def test_one_new_account_created_by_many_transactions_at_once(db: Database, callers: Any) -> None:
    """Seed 514: two worker jobs created a new driver's ledger accounts at the same moment and one failed on the
    accounts' (kind, owner, currency) key, which `ON CONFLICT (id)` does not guard. Creating an account is safe
    under concurrency again: every transaction gets it, one row exists."""

    async def create(specs: list[Any]) -> None:
        async with db.transaction(PLATFORM) as session:
            await ledger.ensure_accounts(session, specs)

    for _ in range(40):
        driver_id = (await callers.driver()).user_id
        specs = [account_spec("driver_prepaid", driver_id), account_spec("driver_receivable", driver_id)]
        await asyncio.gather(*(create(specs) for _ in range(6)))
        async with db.transaction(PLATFORM) as session:
            assert set(await ledger.balances(session, [spec.id for spec in specs])) == {spec.id for spec in specs}
