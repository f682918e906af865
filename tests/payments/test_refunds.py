"""Refunds by operator admins through GraphQL, paid back by the sandbox through the connector endpoint: partial,
total, never more than was paid (also with 20 requests at once), and nothing moves when the provider declines."""

from __future__ import annotations

import asyncio
from typing import Any

from hub.db import Database
from hub.ledger.rules import account_id
from tests.lanes.conftest import Lot, fresh_plate
from tests.payments.test_lot_payments import PAY, balance, held_exit, settle

REFUND = """mutation($id: ID!, $amount: Int!, $reason: String!, $key: String!) {
  refundPayment(id: $id, amountFen: $amount, reason: $reason, idempotencyKey: $key) { id amountFen state reason } }"""
PAYMENT = """query($id: ID!) { node(id: $id) { ... on Payment { id state amountFen refundedFen
  refunds { id amountFen state reason } } } }"""


async def paid_payment(lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database) -> tuple[Any, str, int]:
    """A driver's succeeded payment of a lot session (1500 fen after 90 minutes at the test tariff, or whatever it
    costs: returned)."""
    plate = fresh_plate()
    held = await held_exit(lot, plate)
    driver = await callers.driver()
    paid = (await driver.data(PAY, {"plate": plate, "facilityId": lot.lot_id, "key": "k"}))["payLotSession"]
    await settle(run_worker, sandbox, db)
    return driver, paid["id"], held["amount_due_fen"]


async def payment_of(caller: Any, payment_id: str) -> dict[str, Any]:
    return (await caller.data(PAYMENT, {"id": payment_id}))["node"]


async def test_a_partial_then_a_total_refund(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    driver, payment_id, amount = await paid_payment(lot, callers, run_worker, sandbox, db)
    assert amount >= 300
    first = (await lot.admin.data(REFUND, {"id": payment_id, "amount": 200, "reason": "gate fault", "key": "r1"}))[
        "refundPayment"
    ]
    again = (await lot.admin.data(REFUND, {"id": payment_id, "amount": 200, "reason": "gate fault", "key": "r1"}))[
        "refundPayment"
    ]
    assert again["id"] == first["id"] and first["amountFen"] == 200
    await settle(run_worker, sandbox, db)
    seen = await payment_of(lot.staff, payment_id)
    assert (seen["refundedFen"], [r["state"] for r in seen["refunds"]]) == (200, ["succeeded"])
    # The driver sees the refund on their receipt.
    assert (await payment_of(driver, payment_id))["refundedFen"] == 200

    rest = amount - 200
    await lot.admin.data(REFUND, {"id": payment_id, "amount": rest, "reason": "goodwill", "key": "r2"})
    await settle(run_worker, sandbox, db)
    seen = await payment_of(lot.staff, payment_id)
    assert seen["refundedFen"] == amount
    assert [(r["amountFen"], r["state"]) for r in seen["refunds"]] == [(200, "succeeded"), (rest, "succeeded")]
    # The operator's payable went back to 0; the provider's clearing is square.
    payable = await balance(owner_db, account_id("tenant_payable", lot.tenant_id))
    assert payable[3] - payable[1] == 0
    code = await lot.admin.error_code(REFUND, {"id": payment_id, "amount": 1, "reason": "more", "key": "r3"})
    assert code == "REFUND_EXCEEDS_PAYMENT"


async def test_refunds_refused(lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database) -> None:
    driver, payment_id, amount = await paid_payment(lot, callers, run_worker, sandbox, db)
    over = {"id": payment_id, "amount": amount + 1, "reason": "too much", "key": "x"}
    assert await lot.admin.error_code(REFUND, over) == "REFUND_EXCEEDS_PAYMENT"
    no_reason = {"id": payment_id, "amount": 1, "reason": "  ", "key": "y"}
    assert await lot.admin.error_code(REFUND, no_reason) == "INVALID_INPUT"
    zero = {"id": payment_id, "amount": 0, "reason": "none", "key": "z"}
    assert await lot.admin.error_code(REFUND, zero) == "INVALID_AMOUNT"
    small = {"id": payment_id, "amount": 1, "reason": "r", "key": "s"}
    assert await lot.staff.error_code(REFUND, small) == "FORBIDDEN"
    assert await driver.error_code(REFUND, small) == "FORBIDDEN"
    other = await callers.operator()
    assert await other.error_code(REFUND, small) == "NOT_FOUND"
    assert (await payment_of(lot.staff, payment_id))["refunds"] == []


async def test_a_declined_refund_moves_nothing_and_frees_its_amount(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    _, payment_id, amount = await paid_payment(lot, callers, run_worker, sandbox, db)
    before = await balance(owner_db, account_id("tenant_payable", lot.tenant_id))
    vars = {"id": payment_id, "amount": amount, "reason": "sandbox:fail", "key": "d1"}
    await lot.admin.data(REFUND, vars)
    await settle(run_worker, sandbox, db)
    seen = await payment_of(lot.staff, payment_id)
    assert (seen["refundedFen"], [r["state"] for r in seen["refunds"]]) == (0, ["failed"])
    assert await balance(owner_db, account_id("tenant_payable", lot.tenant_id)) == before
    # The amount the failed refund reserved can be refunded again.
    await lot.admin.data(REFUND, {"id": payment_id, "amount": amount, "reason": "retry", "key": "d2"})
    await settle(run_worker, sandbox, db)
    assert (await payment_of(lot.staff, payment_id))["refundedFen"] == amount


async def test_twenty_refunds_at_once_never_exceed_the_payment(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    _, payment_id, amount = await paid_payment(lot, callers, run_worker, sandbox, db)
    piece = -(-amount // 15)  # 20 pieces ask for more than was paid; at most `amount // piece` fit
    bodies = await asyncio.gather(
        *(
            lot.admin.post(REFUND, {"id": payment_id, "amount": piece, "reason": "split", "key": f"c{n}"})
            for n in range(20)
        )
    )
    accepted = [body for body in bodies if not body.get("errors")]
    refused = [body["errors"][0]["extensions"]["code"] for body in bodies if body.get("errors")]
    assert len(accepted) == amount // piece
    assert set(refused) == {"REFUND_EXCEEDS_PAYMENT"}
    await settle(run_worker, sandbox, db)
    seen = await payment_of(lot.staff, payment_id)
    assert seen["refundedFen"] == piece * len(accepted) <= amount
    assert all(r["state"] == "succeeded" for r in seen["refunds"])
    payable = await balance(owner_db, account_id("tenant_payable", lot.tenant_id))
    assert payable[3] - payable[1] == amount - piece * len(accepted)
