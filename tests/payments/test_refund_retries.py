"""A refund the provider declined is asked again by an operator admin (`retryRefund`): a new refund of the same
amount, once per declined refund, paid back like any other; nothing is refunded twice."""

from __future__ import annotations

from typing import Any

from hub.db import Database
from tests.lanes.conftest import Lot, row_id
from tests.payments.test_lot_payments import settle
from tests.payments.test_refunds import REFUND, paid_payment, payment_of

RETRY = "mutation($id: ID!) { retryRefund(id: $id) { id amountFen state reason } }"


async def test_a_declined_refund_is_asked_again_once(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database
) -> None:
    _, payment_id, amount = await paid_payment(lot, callers, run_worker, sandbox, db)
    assert amount >= 300
    first = (await lot.admin.data(REFUND, {"id": payment_id, "amount": 300, "reason": "gate fault", "key": "r1"}))[
        "refundPayment"
    ]
    sandbox.set_outcome(row_id(first["id"]).hex, "fail")  # the payer's bank refuses it
    await settle(run_worker, sandbox, db)
    seen = await payment_of(lot.staff, payment_id)
    assert (seen["refundedFen"], [r["state"] for r in seen["refunds"]]) == (0, ["failed"])

    assert await lot.staff.error_code(RETRY, {"id": first["id"]}) == "FORBIDDEN"  # operator admins only
    retried = (await lot.admin.data(RETRY, {"id": first["id"]}))["retryRefund"]
    assert retried["id"] != first["id"] and (retried["amountFen"], retried["reason"]) == (300, "gate fault")
    assert (await lot.admin.data(RETRY, {"id": first["id"]}))["retryRefund"]["id"] == retried["id"]
    await settle(run_worker, sandbox, db)
    seen = await payment_of(lot.staff, payment_id)
    assert (seen["refundedFen"], [r["state"] for r in seen["refunds"]]) == (300, ["failed", "succeeded"])
    # A refund that went through is not asked again; the payment still refunds only what is left.
    assert await lot.admin.error_code(RETRY, {"id": retried["id"]}) == "REFUND_NOT_DECLINED"
    assert (await payment_of(lot.staff, payment_id))["refundedFen"] == 300
