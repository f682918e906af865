"""All SQL of lanes and lot sessions. Every statement filters by tenant explicitly (auto-pay authorizations, which
are drivers' rows, by driver or plate); row-level security is the second wall.

The lane decision's statements run on the transaction's asyncpg connection (inside its transaction and RLS
scope), skipping SQLAlchemy's result layer, as hub.ingest's webhook does: a decision is a handful of indexed
statements and the ORM would cost more than they do. A decision reads everything in one statement (CONTEXT_SQL),
including what other domains keep (the plate's list entries, merchants' coupons, the tariff version in effect).
JSON parameters are passed as JSON text (the engine's jsonb codec takes text) and read back as Python values."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import ColumnElement, Select, and_, func, insert, literal_column, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.access.repository import plate_entries_sql
from hub.lanes.models import AutoPayAuthorization, LaneDecision, LaneException, LotSession, PendingCharge

Row = Mapping[str, Any]

sessions = LotSession.__table__
decisions = LaneDecision.__table__
exceptions = LaneException.__table__
authorizations = AutoPayAuthorization.__table__
charges = PendingCharge.__table__


# ---------------------------------------------------------------------------------------- the decision

# The lane's tenant, before anyone is authenticated: lanes are public supply (anonymous scope reads live ones).
LANE_TENANT_SQL = "SELECT tenant_id FROM lanes WHERE id = $1 AND retired_at IS NULL"

_SESSION_COLUMNS = """x.id, x.plate, x.driver_id, x.standing, x.vehicle_class, x.entry_lane_id, x.entered_at,
           x.tariff_version_id, x.paid_fen, x.paid_at, x.continues_session_id, x.provider_parking_state, x.updated_at"""

# Everything a decision reads, in one round trip (each part an index probe; the parts a direction does not need
# are skipped by their `l.direction` condition):
#   the lane, its facility (zone, capacity) and the operator's currency; no row: no such live lane;
#   d: the decision already taken for this passage id (a replay);
#   s: the open session of the plate (or, without a plate, of the driver) in this facility, and e: the earlier
#      session it continues;
#   r (entry): the plate's latest closed session here, for re-entry;
#   a: the plate's active auto-pay authorization, the oldest when several drivers hold one (exits charge it;
#      entries tell its driver), and the session's auto-pay charge (when the operator opens only on success);
#   o (entry): how many sessions are open in the facility, and tv (entry): the facility's tariff version in effect
#      at the passage (hub.pricing's `version_at`: the latest valid_from at or before it, ties to the later version);
#   coupons (exit): the merchants' coupons still reserved on the session, oldest first (COUPON_FIELDS);
#   ent: the plate's live list entries (hub.access: its standing, and a pass's windows over the stay), as one
#      row each: the statement answers a row per entry (the other columns repeated), or one row with a null
#      `list` when there is none. Read as of the earlier of the session's entry and the passage, so the entries
#      serve both the standing at the exit and the pass windows from the entry. Skipped for a replay and for
#      an exit without a session (OFFSET 0 keeps the subquery from being flattened, so that condition gates each
#      list's index scan instead of filtering its rows).
#   $1 tenant, $2 lane, $3 passage id, $4 plate (null: none), $5 driver (null: none), $6 the passage's instant
COUPON_FIELDS = ("id", "merchant_id", "kind", "minutes", "amount_fen", "reserved_fen", "reserve_transfer_id")
ENTRY_FIELDS = (
    "kind",
    "category",
    "reason",
    "facility_ids",
    "valid_from",
    "valid_until",
    "weekdays",
    "window_start",
    "window_end",
    "vehicle_class",
)
_ENTRIES_SQL = plate_entries_sql(tenant="$1", plate="$4", at="least(s.entered_at, $6::timestamptz)", facility="f")
CONTEXT_SQL = f"""
SELECT l.facility_id, l.direction, l.read_confidence_threshold AS threshold, f.time_zone, f.capacity, t.currency,
       t.auto_pay_opens_on,
       d.id AS replay_id, d.decision AS replay_decision, d.reason AS replay_reason, d.plate AS replay_plate,
       d.session_id AS replay_session_id, d.amount_due_fen AS replay_amount_due_fen,
       d.exception_id AS replay_exception_id,
       s.id AS session_id, s.plate AS session_plate, s.driver_id AS session_driver_id, s.standing AS session_standing,
       s.vehicle_class AS session_vehicle_class, s.entry_lane_id AS session_entry_lane_id,
       s.entered_at AS session_entered_at, s.tariff_version_id AS session_tariff_version_id,
       s.paid_fen AS session_paid_fen, s.paid_at AS session_paid_at, s.provider_parking_state AS session_parking_state,
       s.updated_at AS session_version,
       e.entered_at AS earlier_entered_at, e.exited_at AS earlier_exited_at, e.price_fen AS earlier_price_fen,
       r.id AS recent_id, r.entered_at AS recent_entered_at, r.exited_at AS recent_exited_at,
       r.price_fen AS recent_price_fen,
       a.id AS auto_pay_id, a.driver_id AS auto_pay_driver_id,
       (SELECT pc.state FROM pending_charges pc WHERE pc.tenant_id = $1 AND pc.session_id = s.id) AS charge_state,
       o.open_sessions, tv.id AS entry_tariff_version_id,
       (SELECT array_agg(ROW({", ".join(f"c.{name}" for name in COUPON_FIELDS)}) ORDER BY c.redeemed_at, c.id)
        FROM coupon_redemptions c
        WHERE l.direction = 'exit' AND c.tenant_id = $1 AND c.session_id = s.id AND c.state = 'reserved') AS coupons,
       ent.list, ent.id AS entry_id, {", ".join(f"ent.{name}" for name in ENTRY_FIELDS)}
FROM lanes l
JOIN facilities f ON f.tenant_id = l.tenant_id AND f.id = l.facility_id
JOIN tenants t ON t.id = l.tenant_id
LEFT JOIN lane_decisions d ON d.tenant_id = l.tenant_id AND d.lane_id = l.id AND d.passage_id = $3
LEFT JOIN LATERAL (
    (SELECT {_SESSION_COLUMNS} FROM lot_sessions x
     WHERE x.tenant_id = $1 AND x.facility_id = l.facility_id AND x.state = 'open' AND x.plate = $4)
    UNION ALL
    (SELECT {_SESSION_COLUMNS} FROM lot_sessions x
     WHERE x.tenant_id = $1 AND x.facility_id = l.facility_id AND x.state = 'open' AND x.plate IS NULL
       AND x.driver_id = $5)
    LIMIT 1
) s ON true
LEFT JOIN lot_sessions e ON e.tenant_id = $1 AND e.id = s.continues_session_id
LEFT JOIN LATERAL (
    SELECT c.id, c.entered_at, c.exited_at, c.price_fen FROM lot_sessions c
    WHERE l.direction = 'entry' AND c.tenant_id = $1 AND c.facility_id = l.facility_id AND c.plate = $4
      AND c.state = 'closed'
    ORDER BY c.exited_at DESC LIMIT 1
) r ON true
LEFT JOIN LATERAL (
    SELECT p.id, p.driver_id FROM auto_pay_authorizations p
    WHERE p.plate = $4 AND p.revoked_at IS NULL
    ORDER BY p.created_at, p.id LIMIT 1
) a ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS open_sessions FROM lot_sessions n
    WHERE l.direction = 'entry' AND n.tenant_id = $1 AND n.facility_id = l.facility_id AND n.state = 'open'
) o ON true
LEFT JOIN LATERAL (
    SELECT v.id FROM tariffs v
    WHERE l.direction = 'entry' AND v.tenant_id = $1 AND v.facility_id = l.facility_id
      AND v.valid_from <= $6::timestamptz
    ORDER BY v.valid_from DESC, v.version DESC LIMIT 1
) tv ON true
LEFT JOIN LATERAL (
    SELECT * FROM ({_ENTRIES_SQL}) x WHERE d.id IS NULL AND (l.direction = 'entry' OR s.id IS NOT NULL) OFFSET 0
) ent ON true
WHERE l.tenant_id = $1 AND l.id = $2 AND l.retired_at IS NULL AND f.retired_at IS NULL
"""

INSERT_SESSION_SQL = """
INSERT INTO lot_sessions (tenant_id, id, facility_id, plate, driver_id, standing, standing_entry_id, vehicle_class,
                          entry_lane_id, entered_at, tariff_version_id, continues_session_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT DO NOTHING
RETURNING id
"""

CLOSE_SESSION_SQL = """
UPDATE lot_sessions
SET state = 'closed', exit_lane_id = $3, exited_at = $4, price_fen = $5, quote = $6, close_reason = $7,
    driver_id = coalesce(driver_id, $8), updated_at = now()
WHERE tenant_id = $1 AND id = $2 AND state = 'open' AND updated_at = $9
RETURNING id
"""

INSERT_DECISION_SQL = """
INSERT INTO lane_decisions (tenant_id, id, lane_id, facility_id, direction, passage_id, source, connector_id, plate,
                            driver_id, reads, decision, reason, session_id, amount_due_fen, exception_id, passed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (tenant_id, lane_id, passage_id) DO NOTHING
RETURNING id
"""

# The exception and the first line of its audit trail, in one statement.
RAISE_EXCEPTION_SQL = """
WITH raised AS (
    INSERT INTO exceptions (tenant_id, id, kind, facility_id, lane_id, session_id, decision_id, plate, reads, detail)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    RETURNING tenant_id, id
)
INSERT INTO exception_actions (tenant_id, exception_id, actor, action, reason)
SELECT tenant_id, id, $11, 'raised', $12 FROM raised
"""

INSERT_ACTION_SQL = """
INSERT INTO exception_actions (tenant_id, exception_id, actor, action, reason, detail)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, at
"""

INSERT_CHARGE_SQL = """
INSERT INTO pending_charges (tenant_id, session_id, authorization_id, driver_id, plate, amount_fen, currency,
                             paid_fen)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (tenant_id, session_id) DO NOTHING
"""

# The charge of a car that waits at the barrier (its session stays open), made only while the session is as the
# decision read it ($9, its updated_at): a coupon or a payment that came meanwhile makes the decision run again.
INSERT_CHARGE_IF_CURRENT_SQL = """
WITH current AS (
    SELECT id FROM lot_sessions
    WHERE tenant_id = $1 AND id = $2 AND state = 'open' AND updated_at = $9
    FOR UPDATE
), charged AS (
    INSERT INTO pending_charges (tenant_id, session_id, authorization_id, driver_id, plate, amount_fen, currency,
                                 paid_fen)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8 FROM current
    ON CONFLICT (tenant_id, session_id) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM current
"""

# A payment of the stay so far: the amount adds up, the time is the latest payment's (never before entry).
RECORD_PAYMENT_SQL = """
UPDATE lot_sessions
SET paid_fen = paid_fen + $3, paid_at = greatest(paid_at, $4, entered_at), updated_at = now()
WHERE tenant_id = $1 AND id = $2 AND state = 'open'
RETURNING id, paid_fen, paid_at
"""

CODE_KEY_SQL = "SELECT key FROM lane_code_keys WHERE tenant_id = $1"
INSERT_CODE_KEY_SQL = "INSERT INTO lane_code_keys (tenant_id, key) VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING"


async def lane_tenant(conn: asyncpg.Connection, lane_id: uuid.UUID) -> uuid.UUID | None:
    return await conn.fetchval(LANE_TENANT_SQL, lane_id)


async def decision_context(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    lane_id: uuid.UUID,
    passage_id: str,
    plate: str | None,
    driver_id: uuid.UUID | None,
    at: datetime,
) -> list[asyncpg.Record]:
    """See CONTEXT_SQL: a row per list entry of the plate (at least one); none when the lane is not a live lane
    of the tenant."""
    return await conn.fetch(CONTEXT_SQL, tenant_id, lane_id, passage_id, plate, driver_id, at)


def context_coupons(context: asyncpg.Record) -> list[dict[str, Any]]:
    """The reserved coupons of a context row, as hub.merchants reads a redemption (`COUPON_FIELDS`)."""
    return [dict(zip(COUPON_FIELDS, coupon, strict=True)) for coupon in context["coupons"] or ()]


def context_entries(rows: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    """The plate's list entries in context rows, in the columns of hub.access's standing rows."""
    return [
        {"list": row["list"], "id": row["entry_id"], **{name: row[name] for name in ENTRY_FIELDS}}
        for row in rows
        if row["list"] is not None
    ]


async def insert_session(conn: asyncpg.Connection, values: Sequence[Any]) -> bool:
    """False when the vehicle already has an open session in the facility (the unique index refused it)."""
    return await conn.fetchval(INSERT_SESSION_SQL, *values) is not None


async def close_session(conn: asyncpg.Connection, values: Sequence[Any]) -> bool:
    """False when the session was closed or changed (its updated_at, the last value) meanwhile."""
    return await conn.fetchval(CLOSE_SESSION_SQL, *values) is not None


async def insert_decision(conn: asyncpg.Connection, values: Sequence[Any]) -> bool:
    """False when the passage already has a decision (a concurrent duplicate of the same passage)."""
    return await conn.fetchval(INSERT_DECISION_SQL, *values) is not None


async def raise_exception(conn: asyncpg.Connection, values: Sequence[Any]) -> None:
    await conn.execute(RAISE_EXCEPTION_SQL, *values)


async def insert_action(conn: asyncpg.Connection, values: Sequence[Any]) -> asyncpg.Record:
    return await conn.fetchrow(INSERT_ACTION_SQL, *values)


async def insert_charge(conn: asyncpg.Connection, values: Sequence[Any]) -> None:
    await conn.execute(INSERT_CHARGE_SQL, *values)


async def insert_charge_if_current(conn: asyncpg.Connection, values: Sequence[Any], version: datetime) -> bool:
    """False (nothing written) when the open session changed since `version` (its updated_at)."""
    return bool(await conn.fetchval(INSERT_CHARGE_IF_CURRENT_SQL, *values, version))


async def record_payment(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, session_id: uuid.UUID, amount_fen: int, paid_at: datetime
) -> asyncpg.Record | None:
    return await conn.fetchrow(RECORD_PAYMENT_SQL, tenant_id, session_id, amount_fen, paid_at)


async def code_key(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> bytes | None:
    return await conn.fetchval(CODE_KEY_SQL, tenant_id)


async def insert_code_key(conn: asyncpg.Connection, tenant_id: uuid.UUID, key: bytes) -> None:
    await conn.execute(INSERT_CODE_KEY_SQL, tenant_id, key)


# ---------------------------------------------------------------------------------------------- lanes


async def lane(session: AsyncSession, lane_id: uuid.UUID, tenant_id: uuid.UUID) -> Row | None:
    """A live lane of the tenant with its read-confidence threshold."""
    result = await session.execute(
        text("""
            SELECT id, tenant_id, facility_id, direction, read_confidence_threshold
            FROM lanes WHERE tenant_id = :tenant_id AND id = :lane_id AND retired_at IS NULL
        """),
        {"tenant_id": tenant_id, "lane_id": lane_id},
    )
    return result.mappings().first()


async def set_lane_threshold(
    session: AsyncSession, tenant_id: uuid.UUID, lane_id: uuid.UUID, threshold: float
) -> Row | None:
    result = await session.execute(
        text("""
            UPDATE lanes SET read_confidence_threshold = :threshold, updated_at = now()
            WHERE tenant_id = :tenant_id AND id = :lane_id AND retired_at IS NULL
            RETURNING id, tenant_id, facility_id, direction, read_confidence_threshold
        """),
        {"tenant_id": tenant_id, "lane_id": lane_id, "threshold": threshold},
    )
    return result.mappings().first()


# ------------------------------------------------------------------------------------------ reads by id


def _tenant_filter(table: Any, tenant_id: uuid.UUID | None) -> ColumnElement[bool]:
    return table.c.tenant_id == tenant_id if tenant_id is not None else literal_column("true")


async def _by_ids(
    session: AsyncSession, table: Any, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None
) -> list[Row]:
    if not ids:
        return []
    stmt = select(table).where(table.c.id.in_(list(ids)), _tenant_filter(table, tenant_id))
    return list((await session.execute(stmt)).mappings().all())


async def sessions_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None) -> list[Row]:
    return await _by_ids(session, sessions, ids, tenant_id)


async def decisions_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None) -> list[Row]:
    return await _by_ids(session, decisions, ids, tenant_id)


async def exceptions_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None) -> list[Row]:
    return await _by_ids(session, exceptions, ids, tenant_id)


# ------------------------------------------------------------------------------------------------ pages


def _keyset(stmt: Select, time_column: Any, id_column: Any, after: tuple[datetime, uuid.UUID] | None) -> Select:
    """Newest first by (time, id), after the cursor's row."""
    if after is not None:
        stmt = stmt.where(or_(time_column < after[0], and_(time_column == after[0], id_column < after[1])))
    return stmt.order_by(time_column.desc(), id_column.desc())


async def sessions_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    first: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    facility_id: uuid.UUID | None = None,
    state: str | None = None,
    plate: str | None = None,
) -> list[Row]:
    """Sessions newest entry first, plus one row more when a next page exists."""
    stmt = select(sessions).where(sessions.c.tenant_id == tenant_id)
    if facility_id is not None:
        stmt = stmt.where(sessions.c.facility_id == facility_id)
    if state is not None:
        stmt = stmt.where(sessions.c.state == state)
    if plate is not None:
        stmt = stmt.where(sessions.c.plate == plate)
    stmt = _keyset(stmt, sessions.c.entered_at, sessions.c.id, after).limit(first + 1)
    return list((await session.execute(stmt)).mappings().all())


async def decisions_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    first: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    facility_id: uuid.UUID | None = None,
    lane_id: uuid.UUID | None = None,
    decision: str | None = None,
) -> list[Row]:
    """Decisions newest first, plus one row more when a next page exists."""
    stmt = select(decisions).where(decisions.c.tenant_id == tenant_id)
    if lane_id is not None:
        stmt = stmt.where(decisions.c.lane_id == lane_id)
    if facility_id is not None:
        stmt = stmt.where(decisions.c.facility_id == facility_id)
    if decision is not None:
        stmt = stmt.where(decisions.c.decision == decision)
    stmt = _keyset(stmt, decisions.c.decided_at, decisions.c.id, after).limit(first + 1)
    return list((await session.execute(stmt)).mappings().all())


# ------------------------------------------------------------------------------------------ auto-pay


AUTO_PAY_FOR_PLATE_SQL = """
SELECT id, driver_id FROM auto_pay_authorizations
WHERE plate = $1 AND revoked_at IS NULL
ORDER BY created_at, id LIMIT 1
"""


async def authorization_for_plate(conn: asyncpg.Connection, plate: str) -> asyncpg.Record | None:
    """The plate's active authorization, the oldest when several drivers hold one (as CONTEXT_SQL picks)."""
    return await conn.fetchrow(AUTO_PAY_FOR_PLATE_SQL, plate)


async def active_authorization(session: AsyncSession, driver_id: uuid.UUID, plate: str) -> Row | None:
    stmt = select(authorizations).where(
        authorizations.c.driver_id == driver_id,
        authorizations.c.plate == plate,
        authorizations.c.revoked_at.is_(None),
    )
    return (await session.execute(stmt)).mappings().first()


async def insert_authorization(session: AsyncSession, driver_id: uuid.UUID, plate: str) -> Row:
    stmt = insert(authorizations).values(driver_id=driver_id, plate=plate).returning(authorizations)
    return (await session.execute(stmt)).mappings().one()


async def revoke_authorization(session: AsyncSession, driver_id: uuid.UUID, plate: str) -> Row | None:
    stmt = (
        update(authorizations)
        .where(
            authorizations.c.driver_id == driver_id,
            authorizations.c.plate == plate,
            authorizations.c.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .returning(authorizations)
    )
    return (await session.execute(stmt)).mappings().first()
