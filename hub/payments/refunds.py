"""Refunds the provider declined, asked again. A declined refund (the payer's account closed, a bank's refusal)
leaves its money where it was: in the operator's payable for an operator's refund, in the driver's hub wallet for
the unused part of a curb prepay. Nothing retries a declined refund by itself (asked again at once it would be
declined again); an operator admin who has sorted out why asks again with `retry_refund`: a new refund of the same
amount and source, reserved on the payment like any refund, at most once per declined refund."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import Conflict, NotFound
from hub.payments import repository, rules
from hub.payments.service import start_refund
from hub.principal import Principal, require_operator_admin

Row = Mapping[str, Any]
RETRY_KEY_PREFIX = "retry:"


async def retry_refund(session: AsyncSession, principal: Principal, refund_id: uuid.UUID) -> Row:
    """A new refund in place of a declined one (operator admins); asking again returns the same new refund."""
    tenant_id = require_operator_admin(principal, "refunds")
    declined = await repository.refund(session, tenant_id, refund_id)
    if declined is None:
        raise NotFound("no refund with this id belongs to the operator", code="REFUND_NOT_FOUND", field="id")
    payment = await repository.payment(session, tenant_id, declined["payment_id"], lock=True)
    assert payment is not None  # a refund's payment is never deleted
    key = f"{RETRY_KEY_PREFIX}{refund_id}"
    replay = await repository.refund_by_key(session, tenant_id, payment["id"], key)
    if replay is not None:
        return replay
    if declined["state"] != rules.FAILED:
        raise Conflict(
            f"only a declined refund can be asked again; this one is {declined['state']}",
            code="REFUND_NOT_DECLINED",
            field="id",
        )
    amount = declined["amount_fen"]
    available = rules.refundable_fen(payment["amount_fen"], payment["refunded_fen"], payment["refunding_fen"])
    if amount > available:  # other refunds took the money since
        raise Conflict(
            f"only {available} fen of this payment can still be refunded",
            code="REFUND_EXCEEDS_PAYMENT",
            field="id",
            refundable_fen=available,
        )
    return await start_refund(
        session,
        payment,
        amount,
        reason=declined["reason"],
        requested_by=principal.subject or principal.kind,
        key=key,
        source=declined["source"],
    )
