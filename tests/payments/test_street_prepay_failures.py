"""A curb prepayment that fails takes back the time it bought: a failed start leaves a session with no paid minute,
which ends at once as PAYMENT_FAILED (the bay reads unpaid again); a failed extension moves the paid end back and
the session runs on what was paid. The driver is told; each failure applies once, however often the provider says
it; only captured money is ever posted or refunded."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from hub.db import Database
from hub.ledger.rules import account_id
from hub.payments import rules as payment_rules
from tests.lanes.conftest import row_id
from tests.payments.test_lot_payments import balance, settle
from tests.street.conftest import Clock, CurbZone, clock, metered_fen, zone  # noqa: F401  (fixtures)
from tests.street.test_driver_api import END, EXTEND, MINE, start

NOTIFICATIONS = "{ myNotifications(first: 20) { edges { node { type subjectIds payload } } } }"


async def newest_payment(owner_db: Database, street_session: str) -> uuid.UUID:
    async with owner_db.engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT id FROM payments WHERE subject_id = :s ORDER BY created_at DESC LIMIT 1"),
                {"s": row_id(street_session)},
            )
        ).scalar_one()


async def my_session(driver: Any) -> dict[str, Any]:
    [edge] = (await driver.data(MINE))["myStreetSessions"]["edges"]
    return edge["node"]


async def failures_told(driver: Any) -> list[dict[str, Any]]:
    edges = (await driver.data(NOTIFICATIONS))["myNotifications"]["edges"]
    return [edge["node"] for edge in edges if edge["node"]["type"] == "street.payment_failed"]


async def test_a_failed_start_ends_the_session_unpaid(
    callers: Any,
    zone: CurbZone,  # noqa: F811
    clock: Clock,  # noqa: F811
    run_worker: Any,
    sandbox: Any,
    db: Database,
    owner_db: Database,
) -> None:
    driver = await callers.driver()
    started = await start(driver, zone, minutes=60)
    session_id = started["session"]["id"]
    payment = await newest_payment(owner_db, session_id)
    sandbox.set_outcome(payment_rules.out_trade_no(payment), "fail", "duplicate", "renotify")
    await settle(run_worker, sandbox, db)
    await settle(run_worker, sandbox, db)  # the failure said again: taken back once

    session = await my_session(driver)
    assert (session["state"], session["active"], session["paidFen"], session["priceFen"]) == (
        "PAYMENT_FAILED",
        False,
        0,
        0,
    )
    assert session["endedAt"] is not None
    assert [(a["kind"], a["minutes"]) for a in session["actions"]] == [("START", 60), ("PAYMENT_FAILED", 60)]
    [told] = await failures_told(driver)
    assert told["subjectIds"]["payment_id"] == str(payment)
    assert (told["payload"]["minutes_taken_back"], told["payload"]["state"]) == (60, "payment_failed")
    # The session is over: it can be neither extended nor ended, and no money moved.
    assert await driver.error_code(EXTEND, {"id": session_id, "minutes": 30}) == "SESSION_ENDED"
    assert await balance(owner_db, account_id("tenant_payable", zone.tenant_id)) == (0, 0, 0, 0)


async def test_a_failed_extension_moves_the_paid_end_back(
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
    paid_until = started["session"]["paidUntil"]

    clock.advance(30)
    extended = (await driver.data(EXTEND, {"id": session_id, "minutes": 60}))["extendStreetSession"]
    assert extended["session"]["paidUntil"] > paid_until
    sandbox.set_outcome(payment_rules.out_trade_no(await newest_payment(owner_db, session_id)), "fail")
    await settle(run_worker, sandbox, db)

    session = await my_session(driver)
    assert (session["state"], session["paidUntil"], session["prepaidMinutes"]) == ("EXTENDED", paid_until, 120)
    assert session["paidFen"] == metered_fen(120)
    assert [a["kind"] for a in session["actions"]] == ["START", "EXTEND", "PAYMENT_FAILED"]
    assert len(await failures_told(driver)) == 1

    # Ending early refunds from what was captured only: the failed extension's money never existed.
    clock.advance(40)
    ended = (await driver.data(END, {"id": session_id}))["endStreetSession"]
    true_price = metered_fen(70)
    assert (ended["session"]["priceFen"], ended["session"]["refundFen"]) == (true_price, metered_fen(120) - true_price)
    await settle(run_worker, sandbox, db)
    assert await balance(owner_db, account_id("tenant_payable", zone.tenant_id)) == (0, 0, 0, true_price)
