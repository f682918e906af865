"""Curb prepay end to end: a driver's start and extension of a street session through GraphQL are paid through the
sandbox (callbacks via the connector endpoint and the inbox) and held for the operator; ending early posts the holds
for the true price (hub/street's) and refunds the rest through the provider; running out posts them whole."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.db import PLATFORM, Database
from hub.ledger.rules import account_id
from hub.street import reconcile
from tests.payments.test_lot_payments import balance, settle
from tests.street.conftest import Clock, CurbZone, clock, metered_fen, zone  # noqa: F401  (fixtures)
from tests.street.test_driver_api import END, EXTEND, start

RECEIPTS = """{ myPayments(first: 50) { edges { node { id purpose state amountFen refundedFen
  refunds { amountFen state reason } } } } }"""


async def street_payments(driver: Any) -> list[dict[str, Any]]:
    edges = (await driver.data(RECEIPTS))["myPayments"]["edges"]
    return sorted((edge["node"] for edge in edges), key=lambda p: -p["amountFen"])


async def test_prepay_two_hours_extend_one_end_after_seventy_minutes(
    callers: Any,
    zone: CurbZone,  # noqa: F811
    clock: Clock,  # noqa: F811
    run_worker: Any,
    sandbox: Any,
    db: Database,
    owner_db: Database,
) -> None:
    driver = await callers.driver()
    started = await start(driver, zone, minutes=120)
    session_id = started["session"]["id"]
    await settle(run_worker, sandbox, db)
    [first] = await street_payments(driver)
    assert (first["purpose"], first["state"], first["amountFen"]) == ("street_session", "SUCCEEDED", metered_fen(120))
    payable = account_id("tenant_payable", zone.tenant_id)
    assert await balance(owner_db, payable) == (0, 0, metered_fen(120), 0)  # held, not the operator's yet

    clock.advance(30)
    extended = (await driver.data(EXTEND, {"id": session_id, "minutes": 60}))["extendStreetSession"]
    extension = extended["action"]["chargeFen"]
    assert extension == metered_fen(180) - metered_fen(120)
    await settle(run_worker, sandbox, db)
    assert [p["state"] for p in await street_payments(driver)] == ["SUCCEEDED", "SUCCEEDED"]
    assert await balance(owner_db, payable) == (0, 0, metered_fen(180), 0)

    clock.advance(40)  # 70 minutes parked
    ended = (await driver.data(END, {"id": session_id}))["endStreetSession"]
    true_price = metered_fen(70)
    assert ended["session"]["priceFen"] == true_price
    await settle(run_worker, sandbox, db)
    await settle(run_worker, sandbox, db)  # again: nothing more moves
    first, second = await street_payments(driver)
    # The oldest hold pays the true price; the extension's hold is released whole; both refund the rest.
    assert first["refundedFen"] == metered_fen(120) - true_price
    assert second["refundedFen"] == extension
    assert [(r["amountFen"], r["state"]) for r in first["refunds"]] == [(metered_fen(120) - true_price, "succeeded")]
    assert [(r["amountFen"], r["state"]) for r in second["refunds"]] == [(extension, "succeeded")]
    assert first["refundedFen"] + second["refundedFen"] == metered_fen(180) - true_price
    # The operator is owed exactly the true price, posted; the driver's wallet is back to 0 with nothing pending.
    assert await balance(owner_db, payable) == (0, 0, 0, true_price)
    prepaid = await balance(owner_db, account_id("driver_prepaid", driver.user_id))
    assert prepaid[0] == prepaid[2] == 0 and prepaid[1] == prepaid[3]


async def test_a_prepaid_session_that_runs_out_posts_its_hold_whole(
    callers: Any,
    zone: CurbZone,  # noqa: F811
    clock: Clock,  # noqa: F811
    run_worker: Any,
    sandbox: Any,
    db: Database,
    owner_db: Database,
) -> None:
    driver = await callers.driver()
    await start(driver, zone, minutes=60)
    await settle(run_worker, sandbox, db)
    async with db.transaction(PLATFORM) as session:
        done = await reconcile.sweep(session, clock.now + timedelta(minutes=61), timedelta(minutes=30))
    assert done.expired == 1
    await settle(run_worker, sandbox, db)
    [paid] = await street_payments(driver)
    assert (paid["state"], paid["refundedFen"], paid["refunds"]) == ("SUCCEEDED", 0, [])
    payable = account_id("tenant_payable", zone.tenant_id)
    assert await balance(owner_db, payable) == (0, 0, 0, metered_fen(60))
    prepaid = await balance(owner_db, account_id("driver_prepaid", driver.user_id))
    assert prepaid[0] == prepaid[2] == 0 and prepaid[1] == prepaid[3]
