"""Curb prepay: a driver who starts or extends a street session pays its price up front (a payment of purpose
`street_session`, written in the same transaction as the session's action, so neither exists without the other).
When captured, the money is held for the operator (a pending transfer, rules.py); when the session ends (early, by
its bay's sensor, or run out) its holds are posted for the true price hub/street computed and what each payment
keeps back is refunded through the provider. Settling is a job (`settle_street_payments`), enqueued when the session
ends and whenever one of its payments settles; it acts only once the session is over and none of its payments is
still open, and every step is idempotent (deterministic transfer ids, one refund per payment by key).

A prepayment that fails (or is canceled) while the session runs takes back the time its purchase bought (an action
`payment_failed`, once per payment): the paid end moves back by those minutes, and a session left with none ends
at once as `payment_failed`, so the bay reads unpaid and enforcement sees it after its grace. The driver is told
(`street.payment_failed`) and may start again. A failure learnt after the session ended changes nothing more than
its record: only captured money is ever posted or refunded."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub import jobs
from hub.ledger import service as ledger
from hub.notify import Notification, notify
from hub.payments import providers, repository, rules
from hub.street import repository as street_repository
from hub.street import rules as street_rules

Row = Mapping[str, Any]
SETTLE_STREET_JOB = "settle_street_payments"
REQUEST_JOB = "request_payment"
RECONCILE_SPACES_JOB = "reconcile_curb_spaces"  # hub/street's: raises the bay's enforcement flag when due
PREPAY_KEY_PREFIX = "street:"  # + the purchase's action id: a prepayment's idempotency key
FAILED_KEY_PREFIX = "payment_failed:"  # + the payment id: the action that took a failed purchase back


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
            "idempotency_key": f"{PREPAY_KEY_PREFIX}{action['id']}",
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
    if not found or found[0]["payment_mode"] != street_rules.PREPAID:
        return False
    payments = await repository.subject_payments(session, tenant_id, street_session_id, rules.STREET_SESSION)
    street = await _take_back_failed(session, found[0], payments, now)
    if not ended(street["state"]) or any(p["state"] in rules.OPEN_STATES for p in payments):
        return False
    captured = [p for p in payments if p["state"] == rules.SUCCEEDED]
    price = street["price_fen"] if street["price_fen"] is not None else street["paid_fen"]
    kept = rules.allocate_price([p["amount_fen"] for p in captured], price)
    from hub.payments.service import ensure_accounts, money_of, start_refund  # the service imports this module

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
        await start_refund(
            session,
            payment,
            back,
            reason="unused prepaid time",
            requested_by="street",
            key=rules.STREET_REFUND_KEY,
            source=rules.FROM_PREPAID,
        )
    return True


async def _take_back_failed(session: AsyncSession, street: Row, payments: list[Row], now: datetime) -> Row:
    """Take back the purchases whose prepayment failed, each once; the street session as it is after."""
    failed = [p for p in payments if p["state"] in (rules.FAILED, rules.CANCELED)]
    if not failed:
        return street
    tenant_id = street["tenant_id"]
    locked = await street_repository.lock_session(session, street["id"], driver_id=None, tenant_id=tenant_id)
    assert locked is not None  # the same scope read it a moment ago, and sessions are never deleted
    actions = await street_repository.actions_of_sessions(session, [street["id"]])
    purchases = {str(a["id"]): a for a in actions}
    done = {a["idempotency_key"] for a in actions if a["kind"] == street_rules.PAYMENT_FAILED}
    bay_changed = False
    for payment in failed:
        key = f"{FAILED_KEY_PREFIX}{payment['id']}"
        purchase = purchases.get(payment["idempotency_key"].removeprefix(PREPAY_KEY_PREFIX))
        if key in done or purchase is None:
            continue
        if street_rules.is_open(locked["state"]):
            locked = await street_repository.update_session(
                session, tenant_id, locked["id"], _revoked(locked, purchase, now)
            )
            bay_changed = True  # the bay is paid for less long, or not at all: its enforcement may be due
        await street_repository.insert_action(
            session,
            {
                "tenant_id": tenant_id,
                "session_id": locked["id"],
                "driver_id": locked["driver_id"],
                "kind": street_rules.PAYMENT_FAILED,
                "at": now,
                "minutes": purchase["minutes"],
                "paid_until": locked["paid_until"],
                "idempotency_key": key,
            },
        )
        await notify(
            session,
            Notification(
                tenant_id=tenant_id,
                type="street.payment_failed",
                idempotency_key=key,
                occurred_at=now,
                subject_ids={"street_session_id": locked["id"], "payment_id": payment["id"]},
                payload={
                    "space_code": locked["space_code"],
                    "plate": locked["plate"],
                    "amount_fen": payment["amount_fen"],
                    "currency": payment["currency"],
                    "minutes_taken_back": purchase["minutes"],
                    "state": locked["state"],
                    "paid_until": None if not street_rules.is_open(locked["state"]) else locked["paid_until"],
                },
                driver_id=locked["driver_id"],
            ),
            now=now,
        )
    if bay_changed:
        jobs.enqueue(session, RECONCILE_SPACES_JOB, str(tenant_id), [str(locked["space_id"])])
    return locked


def _revoked(street: Row, purchase: Row, now: datetime) -> dict[str, Any]:
    revocation = street_rules.revoke_purchase(
        street["started_at"],
        street["prepaid_minutes"],
        street["paid_fen"],
        purchase["minutes"] or 0,
        purchase["charge_fen"],
    )
    if revocation.paid_until is not None:
        return {
            "paid_until": revocation.paid_until,
            "prepaid_minutes": revocation.prepaid_minutes,
            "paid_fen": revocation.paid_fen,
        }
    # Nothing paid remains: the session ends now at no price (the paid end stays as bought: its span is closed by
    # the end). The bay is free for another session at once.
    return {
        "state": street_rules.PAYMENT_FAILED,
        "ended_at": max(now, street["started_at"]),
        "prepaid_minutes": 0,
        "paid_fen": revocation.paid_fen,
        "price_fen": 0,
        "refund_fen": 0,
    }
