"""Jobs of payments: make the provider call a committed payment (or refund) row asks for and record the answer;
sweep payments and refunds stuck open (a lost callback, a crash between the call and the write) by asking the
provider; turn auto-pay exits' pending charges into deductions. Each receives ids, reloads rows, is idempotent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from arq import cron

from connectors.payments import (
    ChargeRequest,
    DeductionRequest,
    OrderStatus,
    ProviderUnavailable,
    RefundRequest,
    ReplyStatus,
)
from hub.config import get_settings
from hub.db import PLATFORM, Database
from hub.jobs import JobContext, job, register_cron
from hub.payments import parkings, providers, repository, rules, service, street

SWEEP_LIMIT = 500
_REPLY_WORDS = {
    ReplyStatus.ACCEPTED: rules.ACCEPTED,
    ReplyStatus.SUCCEEDED: rules.SUCCEEDED,
    ReplyStatus.FAILED: rules.FAILED,
}
_ORDER_WORDS = {
    OrderStatus.ACCEPTED: rules.ACCEPTED,
    OrderStatus.SUCCEEDED: rules.SUCCEEDED,
    OrderStatus.FAILED: rules.FAILED,
}


async def request_payment_now(db: Database, tenant_id: uuid.UUID, payment_id: uuid.UUID) -> str | None:
    """Ask the provider for a payment still `created` (or `unknown`: retried with the same number, which
    providers deduplicate) and record the answer. Returns the payment's state after."""
    scope = service.connector_scope(tenant_id)
    async with db.transaction(scope) as session:
        row = await repository.payment(session, tenant_id, payment_id)
        if row is None or row["state"] not in (rules.CREATED, rules.UNKNOWN):
            return None if row is None else row["state"]
        url = await service.notify_url(session, tenant_id, row["provider"])
        times = None
        if row["method"] == rules.DEDUCT:
            times = await repository.lot_session_times(session, tenant_id, row["subject_id"])
    parking_id = None
    if row["method"] == rules.DEDUCT:  # the provider charges a stay only against its parking entry
        parking_id = await parkings.open_parking_now(db, tenant_id, row["subject_id"])
    provider = providers.get(row["provider"])
    number = rules.out_trade_no(row["id"])
    reference = failure = None
    try:
        if row["method"] == rules.DEDUCT:
            assert times is not None
            reply = await provider.deduct(
                DeductionRequest(
                    out_trade_no=number,
                    amount_fen=row["amount_fen"],
                    plate=row["plate"] or "unknown",
                    plate_color=parkings.plate_color(row["plate"]),
                    parking_id=parking_id or parkings.out_parking_no(row["subject_id"]),
                    started_at=times["entered_at"],
                    ended_at=times["exited_at"] or row["period_end"] or row["created_at"],
                    facility_name=times["facility_name"],
                    notify_url=url,
                    currency=row["currency"],
                )
            )
        else:
            reply = await provider.charge(
                ChargeRequest(
                    out_trade_no=number,
                    amount_fen=row["amount_fen"],
                    description="停车费" if row["purpose"] != rules.ARREARS else "欠费补缴",
                    notify_url=url,
                    currency=row["currency"],
                )
            )
        word = _REPLY_WORDS[reply.status]
        reference, failure = reply.provider_reference, reply.failure_code
    except ProviderUnavailable:
        word = "unavailable"
    async with db.transaction(scope) as session:
        after = await service.apply_word(
            session, tenant_id, payment_id, word, datetime.now(UTC), reference=reference, failure_code=failure
        )
    return None if after is None else after["state"]


async def request_refund_now(db: Database, tenant_id: uuid.UUID, refund_id: uuid.UUID) -> str | None:
    scope = service.connector_scope(tenant_id)
    async with db.transaction(scope) as session:
        refund = await repository.refund(session, tenant_id, refund_id)
        if refund is None or refund["state"] not in (rules.CREATED, rules.UNKNOWN):
            return None if refund is None else refund["state"]
        payment = await repository.payment(session, tenant_id, refund["payment_id"])
        assert payment is not None
        url = await service.notify_url(session, tenant_id, payment["provider"])
    reference = failure = None
    try:
        reply = await providers.get(payment["provider"]).refund(
            RefundRequest(
                out_refund_no=refund_id.hex,
                out_trade_no=rules.out_trade_no(payment["id"]),
                amount_fen=refund["amount_fen"],
                total_fen=payment["amount_fen"],
                reason=refund["reason"][:80],
                notify_url=url,
                currency=payment["currency"],
            )
        )
        word = _REPLY_WORDS[reply.status]
        reference, failure = reply.provider_reference, reply.failure_code
    except ProviderUnavailable:
        word = "unavailable"
    async with db.transaction(scope) as session:
        after = await service.apply_refund_word(
            session, tenant_id, refund_id, word, datetime.now(UTC), reference=reference, failure_code=failure
        )
    return None if after is None else after["state"]


@job
async def request_payment(ctx: JobContext, tenant_id: str, payment_id: str) -> str | None:
    return await request_payment_now(ctx["db"], uuid.UUID(tenant_id), uuid.UUID(payment_id))


@job
async def request_refund(ctx: JobContext, tenant_id: str, refund_id: str) -> str | None:
    return await request_refund_now(ctx["db"], uuid.UUID(tenant_id), uuid.UUID(refund_id))


async def settle_street_payments_now(db: Database, tenant_id: uuid.UUID, street_session_id: uuid.UUID) -> bool:
    async with db.transaction(service.connector_scope(tenant_id)) as session:
        return await street.settle(session, tenant_id, street_session_id, datetime.now(UTC))


@job
async def open_parking(ctx: JobContext, tenant_id: str, session_id: str) -> str | None:
    """An auto-pay plate came in: open its parking entry with the provider (hub.payments.parkings)."""
    return await parkings.open_parking_now(ctx["db"], uuid.UUID(tenant_id), uuid.UUID(session_id))


@job
async def settle_street_payments(ctx: JobContext, tenant_id: str, street_session_id: str) -> bool:
    """A street session's holds posted for its true price and the rest refunded, once it has ended."""
    return await settle_street_payments_now(ctx["db"], uuid.UUID(tenant_id), uuid.UUID(street_session_id))


async def confirm_payment_now(db: Database, tenant_id: uuid.UUID, payment_id: uuid.UUID, now: datetime) -> str | None:
    """Ask the provider where a payment stands and apply that, once (an order it never took is requested again
    under the same number)."""
    scope = service.connector_scope(tenant_id)
    async with db.transaction(scope) as session:
        row = await repository.payment(session, tenant_id, payment_id)
    if row is None or row["state"] in rules.FINAL_STATES:
        return None if row is None else row["state"]
    if row["state"] == rules.CREATED:
        return await request_payment_now(db, tenant_id, payment_id)
    try:
        order = await providers.get(row["provider"]).query_payment(rules.out_trade_no(row["id"]))
    except ProviderUnavailable:
        return row["state"]
    if order.status is OrderStatus.NOT_FOUND:
        return await request_payment_now(db, tenant_id, payment_id)
    async with db.transaction(scope) as session:
        after = await service.apply_word(
            session,
            tenant_id,
            payment_id,
            _ORDER_WORDS[order.status],
            now,
            reference=order.provider_reference,
            failure_code=order.failure_code,
        )
    return None if after is None else after["state"]


@job
async def confirm_payment(ctx: JobContext, tenant_id: str, payment_id: str) -> str | None:
    return await confirm_payment_now(ctx["db"], uuid.UUID(tenant_id), uuid.UUID(payment_id), datetime.now(UTC))


async def sweep_payments_now(db: Database, now: datetime) -> int:
    """Payments and refunds open longer than the sweep delay: the provider is asked and the truth applied once
    (an order it never took is requested again under the same number). Returns how many were looked at."""
    cutoff = service.sweep_cutoff(now, get_settings().payment_sweep_after_seconds)
    async with db.transaction(PLATFORM) as session:
        stuck = await repository.unsettled_payments(session, cutoff, SWEEP_LIMIT)
        stuck_refunds = await repository.unsettled_refunds(session, cutoff, SWEEP_LIMIT)
    for row in stuck:
        await confirm_payment_now(db, row["tenant_id"], row["id"], now)
    for refund in stuck_refunds:
        tenant_id = refund["tenant_id"]
        if refund["state"] == rules.CREATED:
            await request_refund_now(db, tenant_id, refund["id"])
            continue
        async with db.transaction(service.connector_scope(tenant_id)) as session:
            payment = await repository.payment(session, tenant_id, refund["payment_id"])
        assert payment is not None
        try:
            order = await providers.get(payment["provider"]).query_refund(refund["id"].hex)
        except ProviderUnavailable:
            continue
        if order.status is OrderStatus.NOT_FOUND:
            await request_refund_now(db, tenant_id, refund["id"])
            continue
        async with db.transaction(service.connector_scope(tenant_id)) as session:
            await service.apply_refund_word(
                session, tenant_id, refund["id"], _ORDER_WORDS[order.status], now, failure_code=order.failure_code
            )
    return len(stuck) + len(stuck_refunds)


async def charge_pending_now(db: Database) -> int:
    async with db.transaction(PLATFORM) as session:
        return len(await service.charge_pending_charges(session))


async def sweep_payments(ctx: JobContext) -> int:
    return await sweep_payments_now(ctx["db"], datetime.now(UTC))


async def charge_pending_charges(ctx: JobContext) -> int:
    return await charge_pending_now(ctx["db"])


register_cron(cron(sweep_payments, second=40, unique=True, timeout=120))
register_cron(cron(charge_pending_charges, second={5, 20, 35, 50}, run_at_startup=True, unique=True, timeout=60))
