"""Curb prepay: a driver who starts or extends a street session pays its price up front (a payment of purpose
`street_session`, written in the same transaction as the session's action, so neither exists without the other).
When captured, the money is held for the operator (a pending transfer, rules.py); when the session ends (early, by
its bay's sensor, or run out) its holds are posted for the true price hub/street computed and what each payment
keeps back is refunded through the provider. Settling is a job (`settle_street_payments`), enqueued when the session
ends and whenever one of its payments settles; it acts only once the session is over and none of its payments is
still open, and every step is idempotent (deterministic transfer ids, one refund per payment by key)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub import jobs
from hub.ledger import service as ledger
from hub.payments import providers, repository, rules
from hub.street import repository as street_repository
from hub.street import rules as street_rules

Row = Mapping[str, Any]
SETTLE_STREET_JOB = "settle_street_payments"
REQUEST_JOB = "request_payment"
REFUND_JOB = "request_refund"


async def prepay(session: AsyncSession, street: Row, action: Row) -> Row | None:
    """The payment of what a driver's start or extension of `street` costs (`action`'s charge), requested from the
    provider after commit; None when it costs nothing. Runs in the driver's transaction (the payments policy lets a
    driver write their own curb prepay, nothing else)."""
    amount = action["charge_fen"]
    if amount <= 0 or street["driver_id"] is None:
        return None
    row = await repository.insert_payment(
        session,
        {
            "tenant_id": street["tenant_id"],
            "id": uuid.uuid4(),
            "driver_id": street["driver_id"],
            "purpose": rules.STREET_SESSION,
            "subject_id": street["id"],
            "facility_id": street["facility_id"],
            "plate": street["plate"],
            "method": rules.CHARGE,
            "amount_fen": amount,
            "currency": street["currency"],
            "provider": providers.default_name(),
            "idempotency_key": f"street:{action['id']}",
            "period_start": street["started_at"],
            "period_end": street["paid_until"],
        },
    )
    if row is not None:
        jobs.enqueue(session, REQUEST_JOB, str(row["tenant_id"]), str(row["id"]))
    return row


def ended(session_state: str) -> bool:
    return not street_rules.is_open(session_state)


async def settle(session: AsyncSession, tenant_id: uuid.UUID, street_session_id: uuid.UUID, now: datetime) -> bool:
    """Post the holds of an ended street session for its true price and refund the rest; False (nothing done) while
    the session runs or one of its payments is still open. Idempotent."""
    found = await street_repository.sessions_by_ids(session, [street_session_id], tenant_id)
    if not found or found[0]["payment_mode"] != street_rules.PREPAID or not ended(found[0]["state"]):
        return False
    street = found[0]
    payments = await repository.subject_payments(session, tenant_id, street_session_id, rules.STREET_SESSION)
    if any(p["state"] in rules.OPEN_STATES for p in payments):
        return False
    captured = [p for p in payments if p["state"] == rules.SUCCEEDED]
    price = street["price_fen"] if street["price_fen"] is not None else street["paid_fen"]
    kept = rules.allocate_price([p["amount_fen"] for p in captured], price)
    from hub.payments.service import ensure_accounts, money_of  # the service imports this module

    for payment, keep in zip(captured, kept, strict=True):
        m = money_of(payment)
        await ensure_accounts(session, m)
        await ledger.create_transfers(session, [rules.street_hold_resolved(m, keep)])
        if await repository.refund_by_key(session, tenant_id, payment["id"], rules.STREET_REFUND_KEY) is not None:
            continue
        back = min(
            payment["amount_fen"] - keep,
            rules.refundable_fen(payment["amount_fen"], payment["refunded_fen"], payment["refunding_fen"]),
        )
        if back <= 0:
            continue
        await repository.update_payment(
            session, tenant_id, payment["id"], {"refunding_fen": payment["refunding_fen"] + back}
        )
        refund = await repository.insert_refund(
            session,
            {
                "tenant_id": tenant_id,
                "id": uuid.uuid4(),
                "payment_id": payment["id"],
                "driver_id": payment["driver_id"],
                "amount_fen": back,
                "reason": "unused prepaid time",
                "requested_by": "street",
                "idempotency_key": rules.STREET_REFUND_KEY,
                "source": rules.FROM_PREPAID,
            },
        )
        jobs.enqueue(session, REFUND_JOB, str(tenant_id), str(refund["id"]))
    return True
