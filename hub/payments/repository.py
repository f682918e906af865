"""All SQL of payments and refunds. Every statement filters by tenant explicitly (drivers' reads by driver);
row-level security is the second wall. The few reads of lot sessions, exit decisions and pending charges that paying
needs are here too, as reads (and one state update of a pending charge) by id."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Row = Mapping[str, Any]

PAYMENT_COLUMNS = """tenant_id, id, driver_id, purpose, subject_id, facility_id, plate, method, amount_fen, currency,
    provider, state, provider_reference, failure_code, idempotency_key, refunded_fen, refunding_fen, arrears_fen,
    period_start, period_end, created_at, requested_at, settled_at, updated_at"""


async def _one(session: AsyncSession, sql: str, params: dict[str, Any]) -> Row | None:
    return (await session.execute(text(sql), params)).mappings().first()


async def _all(session: AsyncSession, sql: str, params: dict[str, Any]) -> list[Row]:
    return list((await session.execute(text(sql), params)).mappings().all())


# ------------------------------------------------------------------------------------------------ payments


async def insert_payment(session: AsyncSession, values: dict[str, Any]) -> Row | None:
    """The new payment, or None when the driver already used this idempotency key at this operator."""
    names = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    sql = f"""INSERT INTO payments ({names}) VALUES ({params})
              ON CONFLICT (tenant_id, driver_id, idempotency_key) DO NOTHING RETURNING {PAYMENT_COLUMNS}"""
    return await _one(session, sql, values)


async def payment_by_key(
    session: AsyncSession, tenant_id: uuid.UUID, driver_id: uuid.UUID | None, key: str
) -> Row | None:
    sql = f"""SELECT {PAYMENT_COLUMNS} FROM payments WHERE tenant_id = :t AND driver_id IS NOT DISTINCT FROM :d
              AND idempotency_key = :k"""
    return await _one(session, sql, {"t": tenant_id, "d": driver_id, "k": key})


async def payment(
    session: AsyncSession, tenant_id: uuid.UUID | None, payment_id: uuid.UUID, *, lock: bool = False
) -> Row | None:
    sql = f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = :id AND (CAST(:t AS uuid) IS NULL OR tenant_id = :t)"
    return await _one(session, sql + (" FOR UPDATE" if lock else ""), {"t": tenant_id, "id": payment_id})


async def update_payment(
    session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID, values: dict[str, Any]
) -> Row:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    sql = f"""UPDATE payments SET {assignments}, updated_at = now() WHERE tenant_id = :_t AND id = :_id
              RETURNING {PAYMENT_COLUMNS}"""
    row = await _one(session, sql, {**values, "_t": tenant_id, "_id": payment_id})
    assert row is not None
    return row


async def unsettled_payments(session: AsyncSession, before: datetime, limit: int) -> list[Row]:
    sql = f"""SELECT {PAYMENT_COLUMNS} FROM payments WHERE state IN ('created', 'requested', 'unknown')
              AND updated_at < :before ORDER BY updated_at LIMIT :limit"""
    return await _all(session, sql, {"before": before, "limit": limit})


async def driver_payments(
    session: AsyncSession, driver_id: uuid.UUID, first: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Row]:
    sql = f"""SELECT {PAYMENT_COLUMNS} FROM payments WHERE driver_id = :d
              AND (CAST(:at AS timestamptz) IS NULL OR (created_at, id) < (:at, :aid))
              ORDER BY created_at DESC, id DESC LIMIT :n"""
    at, aid = after if after is not None else (None, None)
    return await _all(session, sql, {"d": driver_id, "at": at, "aid": aid, "n": first + 1})


async def tenant_payments(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
    facility_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> list[Row]:
    sql = f"""SELECT {PAYMENT_COLUMNS} FROM payments WHERE tenant_id = :t
              AND (CAST(:f AS uuid) IS NULL OR facility_id = :f)
              AND (CAST(:since AS timestamptz) IS NULL OR created_at >= :since)
              AND (CAST(:until AS timestamptz) IS NULL OR created_at < :until)
              AND (CAST(:at AS timestamptz) IS NULL OR (created_at, id) < (:at, :aid))
              ORDER BY created_at DESC, id DESC LIMIT :n"""
    at, aid = after if after is not None else (None, None)
    params = {"t": tenant_id, "f": facility_id, "since": since, "until": until, "at": at, "aid": aid, "n": first + 1}
    return await _all(session, sql, params)


async def subject_payments(
    session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID, purpose: str
) -> list[Row]:
    """The payments of one subject (e.g. a street session's prepays), oldest first, locked."""
    sql = f"""SELECT {PAYMENT_COLUMNS} FROM payments WHERE tenant_id = :t AND subject_id = :s AND purpose = :p
              ORDER BY created_at, id FOR UPDATE"""
    return await _all(session, sql, {"t": tenant_id, "s": subject_id, "p": purpose})


async def driver_arrears(session: AsyncSession, driver_id: uuid.UUID) -> list[Row]:
    sql = f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE driver_id = :d AND arrears_fen > 0 ORDER BY created_at, id"
    return await _all(session, sql, {"d": driver_id})


# ------------------------------------------------------------------------------------------------- refunds

REFUND_COLUMNS = """tenant_id, id, payment_id, driver_id, amount_fen, reason, requested_by, idempotency_key, state,
    source, provider_reference, failure_code, created_at, settled_at, updated_at"""


async def insert_refund(session: AsyncSession, values: dict[str, Any]) -> Row:
    names = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    row = await _one(
        session, f"INSERT INTO payment_refunds ({names}) VALUES ({params}) RETURNING {REFUND_COLUMNS}", values
    )
    assert row is not None
    return row


async def refund_by_key(session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID, key: str) -> Row | None:
    sql = f"""SELECT {REFUND_COLUMNS} FROM payment_refunds WHERE tenant_id = :t AND payment_id = :p
              AND idempotency_key = :k"""
    return await _one(session, sql, {"t": tenant_id, "p": payment_id, "k": key})


async def refund(
    session: AsyncSession, tenant_id: uuid.UUID | None, refund_id: uuid.UUID, *, lock: bool = False
) -> Row | None:
    sql = f"""SELECT {REFUND_COLUMNS} FROM payment_refunds WHERE id = :id
              AND (CAST(:t AS uuid) IS NULL OR tenant_id = :t)"""
    return await _one(session, sql + (" FOR UPDATE" if lock else ""), {"t": tenant_id, "id": refund_id})


async def update_refund(
    session: AsyncSession, tenant_id: uuid.UUID, refund_id: uuid.UUID, values: dict[str, Any]
) -> Row:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    sql = f"""UPDATE payment_refunds SET {assignments}, updated_at = now() WHERE tenant_id = :_t AND id = :_id
              RETURNING {REFUND_COLUMNS}"""
    row = await _one(session, sql, {**values, "_t": tenant_id, "_id": refund_id})
    assert row is not None
    return row


async def refunds_of(session: AsyncSession, payment_ids: Sequence[uuid.UUID]) -> list[Row]:
    sql = f"SELECT {REFUND_COLUMNS} FROM payment_refunds WHERE payment_id = ANY(:ids) ORDER BY created_at, id"
    return await _all(session, sql, {"ids": list(payment_ids)})


async def unsettled_refunds(session: AsyncSession, before: datetime, limit: int) -> list[Row]:
    sql = f"""SELECT {REFUND_COLUMNS} FROM payment_refunds WHERE state IN ('created', 'requested', 'unknown')
              AND updated_at < :before ORDER BY updated_at LIMIT :limit"""
    return await _all(session, sql, {"before": before, "limit": limit})


# ---------------------------------------------------------------------------- what payments are for (reads)

LOT_SESSION_SQL = """
SELECT s.tenant_id, s.id, s.facility_id, s.plate, s.state, s.vehicle_class, s.entered_at, s.paid_fen, s.paid_at,
       s.tariff_version_id, f.time_zone, f.name AS facility_name, t.currency,
       e.entered_at AS earlier_entered_at, e.exited_at AS earlier_exited_at, e.price_fen AS earlier_price_fen
FROM lot_sessions s
JOIN facilities f ON f.tenant_id = s.tenant_id AND f.id = s.facility_id
JOIN tenants t ON t.id = s.tenant_id
LEFT JOIN lot_sessions e ON e.tenant_id = s.tenant_id AND e.id = s.continues_session_id
WHERE s.tenant_id = :t AND {where}
"""


async def open_lot_session(session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID) -> Row | None:
    sql = LOT_SESSION_SQL.format(where="s.id = :id") + " FOR UPDATE OF s"
    return await _one(session, sql, {"t": tenant_id, "id": session_id})


async def open_lot_session_by_plate(
    session: AsyncSession, tenant_id: uuid.UUID, facility_id: uuid.UUID, plate: str
) -> Row | None:
    sql = LOT_SESSION_SQL.format(where="s.facility_id = :f AND s.plate = :p AND s.state = 'open'") + " FOR UPDATE OF s"
    return await _one(session, sql, {"t": tenant_id, "f": facility_id, "p": plate})


async def facility_tenant(session: AsyncSession, facility_id: uuid.UUID) -> uuid.UUID | None:
    """The operator of a live facility (public supply)."""
    return (
        await session.execute(
            text("SELECT tenant_id FROM facilities WHERE id = :f AND retired_at IS NULL"), {"f": facility_id}
        )
    ).scalar_one_or_none()


async def latest_payment_hold(session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID) -> Row | None:
    """The session's latest exit decision, when it held for payment (due, or an auto-pay deduction awaited)."""
    sql = """SELECT lane_id, passed_at, decided_at, reason FROM (
                 SELECT lane_id, passed_at, decided_at, reason FROM lane_decisions
                 WHERE tenant_id = :t AND session_id = :s AND direction = 'exit'
                 ORDER BY decided_at DESC LIMIT 1) d
             WHERE reason IN ('payment_due', 'awaiting_payment')"""
    return await _one(session, sql, {"t": tenant_id, "s": session_id})


async def uncharged_pending_charges(session: AsyncSession, limit: int) -> list[Row]:
    """Auto-pay exits' pending charges with no payment yet."""
    sql = """SELECT c.tenant_id, c.id, c.session_id, c.driver_id, c.plate, c.amount_fen, c.currency, c.paid_fen,
                    s.facility_id, s.entered_at, coalesce(s.exited_at, c.created_at) AS exited_at,
                    f.name AS facility_name
             FROM pending_charges c
             JOIN lot_sessions s ON s.tenant_id = c.tenant_id AND s.id = c.session_id
             JOIN facilities f ON f.tenant_id = s.tenant_id AND f.id = s.facility_id
             WHERE c.state = 'pending' AND NOT EXISTS (
                 SELECT 1 FROM payments p WHERE p.tenant_id = c.tenant_id AND p.driver_id = c.driver_id
                   AND p.idempotency_key = 'charge:' || c.id::text)
             ORDER BY c.created_at LIMIT :limit"""
    return await _all(session, sql, {"limit": limit})


async def session_charges_paid_besides(session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID) -> Row:
    """What the driver paid towards a lot session by other means than its auto-pay charge, as the charge is about
    to become a deduction: whether such a payment is still open, and how much succeeded in all (`paid_fen`). The
    session row is locked first: paying a session locks it too, so a payment and the deduction are decided one
    after the other."""
    await session.execute(
        text("SELECT 1 FROM lot_sessions WHERE tenant_id = :t AND id = :s FOR UPDATE"),
        {"t": tenant_id, "s": session_id},
    )
    sql = """SELECT coalesce(bool_or(state IN ('created', 'requested', 'unknown')), false) AS open,
                    coalesce(sum(amount_fen) FILTER (WHERE state = 'succeeded'), 0) AS paid_fen
             FROM payments WHERE tenant_id = :t AND subject_id = :s AND purpose = 'lot_session' AND method = 'charge'"""
    row = await _one(session, sql, {"t": tenant_id, "s": session_id})
    assert row is not None
    return row


async def set_pending_charge_state(
    session: AsyncSession, tenant_id: uuid.UUID, charge_id: uuid.UUID, state: str
) -> None:
    await session.execute(
        text("UPDATE pending_charges SET state = :s, updated_at = now() WHERE tenant_id = :t AND id = :id"),
        {"s": state, "t": tenant_id, "id": charge_id},
    )


async def lot_session_times(session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID) -> Row | None:
    sql = """SELECT s.state, s.entered_at, s.exited_at, f.name AS facility_name FROM lot_sessions s
             JOIN facilities f ON f.tenant_id = s.tenant_id AND f.id = s.facility_id
             WHERE s.tenant_id = :t AND s.id = :s"""
    return await _one(session, sql, {"t": tenant_id, "s": session_id})


async def open_payment_of(session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID) -> Row | None:
    """A payment of this subject not yet settled (a second one would pay twice)."""
    sql = f"""SELECT {PAYMENT_COLUMNS} FROM payments WHERE tenant_id = :t AND subject_id = :s
              AND state IN ('created', 'requested', 'unknown') LIMIT 1"""
    return await _one(session, sql, {"t": tenant_id, "s": subject_id})


# ------------------------------------------------------------------------------------------ invoice requests

INVOICE_COLUMNS = (
    "tenant_id, id, payment_id, driver_id, title, tax_id, email, amount_fen, state, created_at, updated_at"
)


async def insert_invoice_request(session: AsyncSession, values: dict[str, Any]) -> Row | None:
    """The new request, or None when the payment has one already."""
    names = ", ".join(values)
    params = ", ".join(f":{name}" for name in values)
    sql = f"""INSERT INTO invoice_requests ({names}) VALUES ({params})
              ON CONFLICT (tenant_id, payment_id) DO NOTHING RETURNING {INVOICE_COLUMNS}"""
    return await _one(session, sql, values)


async def invoice_request_of(session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID) -> Row | None:
    sql = f"SELECT {INVOICE_COLUMNS} FROM invoice_requests WHERE tenant_id = :t AND payment_id = :p"
    return await _one(session, sql, {"t": tenant_id, "p": payment_id})


async def invoice_requests_page(
    session: AsyncSession,
    *,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
    driver_id: uuid.UUID | None = None,
    tenant_id: uuid.UUID | None = None,
) -> list[Row]:
    """A page of a driver's or an operator's requests, newest first (first + 1 rows: the extra proves a next)."""
    assert (driver_id is None) != (tenant_id is None)
    sql = f"""SELECT {INVOICE_COLUMNS} FROM invoice_requests
              WHERE (CAST(:d AS uuid) IS NULL OR driver_id = :d) AND (CAST(:t AS uuid) IS NULL OR tenant_id = :t)
              AND (CAST(:at AS timestamptz) IS NULL OR (created_at, id) < (:at, :aid))
              ORDER BY created_at DESC, id DESC LIMIT :n"""
    at, aid = after if after is not None else (None, None)
    return await _all(session, sql, {"d": driver_id, "t": tenant_id, "at": at, "aid": aid, "n": first + 1})


async def invoice_request(session: AsyncSession, request_id: uuid.UUID) -> Row | None:
    """One request by id (callers check who may see it; row-level security again)."""
    return await _one(session, f"SELECT {INVOICE_COLUMNS} FROM invoice_requests WHERE id = :id", {"id": request_id})


# ----------------------------------------------------------------------------------------------- pass sales


async def payment_terms(session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID) -> Row | None:
    """What a pass payment bought, as offered when it was bought (None: bought before terms were kept)."""
    row = await _one(
        session, "SELECT terms FROM payments WHERE tenant_id = :t AND id = :id", {"t": tenant_id, "id": payment_id}
    )
    return None if row is None else row["terms"]


async def open_pass_purchases(session: AsyncSession, tenant_id: uuid.UUID, plate: str) -> list[Row]:
    """The plate's pass payments at the operator still being paid: their months are not passes yet."""
    sql = """SELECT id, facility_id, period_start, period_end, terms FROM payments
             WHERE tenant_id = :t AND purpose = 'pass' AND plate = :p
             AND state IN ('created', 'requested', 'unknown')"""
    return await _all(session, sql, {"t": tenant_id, "p": plate})


# ---------------------------------------------------------------------------------------- provider parkings


async def parking_subject(session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID) -> Row | None:
    """A lot session as a provider's parking entry needs it."""
    sql = """SELECT s.id, s.plate, s.state, s.entered_at, s.provider_parking_id, s.provider_parking_state,
                    f.name AS facility_name
             FROM lot_sessions s JOIN facilities f ON f.tenant_id = s.tenant_id AND f.id = s.facility_id
             WHERE s.tenant_id = :t AND s.id = :s"""
    return await _one(session, sql, {"t": tenant_id, "s": session_id})


async def record_provider_parking(
    session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID, parking_id: str, state: str
) -> None:
    """The provider's entry of the session's stay (its id never changes once known: the provider deduplicates
    entries by our number, so a second opening names the same entry)."""
    await session.execute(
        text("""UPDATE lot_sessions SET provider_parking_id = :p, provider_parking_state = :st, updated_at = now()
                WHERE tenant_id = :t AND id = :s AND (provider_parking_id IS NULL OR provider_parking_id = :p)"""),
        {"t": tenant_id, "s": session_id, "p": parking_id, "st": state},
    )


async def set_provider_parking_state(session: AsyncSession, tenant_id: uuid.UUID, parking_id: str, state: str) -> int:
    """What the provider now says of an entry; how many sessions it named (0: an entry not known here)."""
    result = await session.execute(
        text("""UPDATE lot_sessions SET provider_parking_state = :st, updated_at = now()
                WHERE tenant_id = :t AND provider_parking_id = :p"""),
        {"t": tenant_id, "p": parking_id, "st": state},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
