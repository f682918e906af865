"""How a session's changes are written, whoever makes them (a driver's request, a camera, a bay's sensor): each
change is an action with the money it moves, and a session that ends is priced on its true span under its sealed
tariff version. Never commits."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from hub import jobs
from hub.errors import Conflict
from hub.lanes.rules import quote_json
from hub.pricing import service as pricing
from hub.pricing.tariff import Tariff
from hub.street import repository, rules

Row = repository.Row
SETTLE_PREPAY_JOB = "settle_street_payments"  # hub.payments.tasks


def key_reused() -> Conflict:
    return Conflict(
        "this idempotency key was already used for a different request; use a new key for a new request",
        code="IDEMPOTENCY_KEY_REUSED",
        field="idempotencyKey",
    )


async def record_action(
    session: AsyncSession,
    row: Row,
    kind: str,
    at: datetime,
    driver_id: uuid.UUID | None,
    key: str | None,
    *,
    minutes: int | None = None,
    charge: int = 0,
    refund: int = 0,
) -> Row:
    """The action `kind` of the session `row` (as it is after the change)."""
    action = await repository.insert_action(
        session,
        {
            "tenant_id": row["tenant_id"],
            "session_id": row["id"],
            "driver_id": driver_id,
            "kind": kind,
            "at": at,
            "minutes": minutes,
            "paid_until": row["paid_until"],
            "charge_fen": charge,
            "refund_fen": refund,
            "idempotency_key": key,
        },
    )
    if action is None:  # only a key can conflict: the same key, concurrently, on another request
        raise key_reused()
    return action


async def tariff_of(session: AsyncSession, row: Row) -> Tariff:
    """The tariff version sealed for the session when it started."""
    return await pricing.tariff_version(session, row["tariff_version_id"], tenant_id=row["tenant_id"])


async def settle(
    session: AsyncSession,
    row: Row,
    state: str,
    end: datetime,
    driver_id: uuid.UUID | None,
    key: str | None,
    kind: str,
) -> tuple[Row, Row]:
    """End the session `row` at `end` in `state`, priced on its true span, and record the action `kind` with its
    refund (prepaid) or pending charge (postpaid). Returns the session as ended and the action."""
    settlement = rules.settle(
        await tariff_of(session, row),
        ZoneInfo(row["time_zone"]),
        row["vehicle_class"],
        row["payment_mode"],
        state,
        row["started_at"],
        end,
        row["paid_fen"],
    )
    updated = await repository.update_session(
        session,
        row["tenant_id"],
        row["id"],
        {
            "state": settlement.state,
            "ended_at": settlement.ended_at,
            "price_fen": settlement.price_fen,
            "refund_fen": settlement.refund_fen,
            "charge_fen": settlement.charge_fen,
            "quote": quote_json(settlement.quote, row["tariff_version_id"]),
        },
    )
    action = await record_action(
        session,
        updated,
        kind,
        end,
        driver_id,
        key,
        charge=settlement.charge_fen or 0,
        refund=settlement.refund_fen or 0,
    )
    if row["payment_mode"] == rules.PREPAID:  # its holds are posted for the true price, the rest refunded
        jobs.enqueue(session, SETTLE_PREPAY_JOB, str(row["tenant_id"]), str(row["id"]))
    return updated, action
