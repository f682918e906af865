"""All SQL of on-street sessions. Every statement filters by tenant (or driver) explicitly when given one;
row-level security is the second wall, and what limits a driver to their own sessions.

Reads of other domains' tables (spaces, facilities, tenants, status history, plate sightings, the inbox,
devices) are here too, written against their tables: this domain only reads them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Select, and_, bindparam, func, literal_column, or_, select, text, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from hub.street.models import (
    EnforcementFlag,
    StreetSession,
    StreetSessionAction,
    StreetSighting,
    held_span_sql,
)
from hub.street.rules import OPEN_STATES, PREPAID
from hub.supply.models import Facility, Space
from tenants.models import Tenant

Row = Mapping[str, Any]

sessions = StreetSession.__table__
actions = StreetSessionAction.__table__
sightings_decided = StreetSighting.__table__
flags = EnforcementFlag.__table__
spaces = Space.__table__
facilities = Facility.__table__
tenants = Tenant.__table__

CURB_ZONE = "curb_zone"


def _ids(name: str, ids: Sequence[uuid.UUID]) -> Any:
    return bindparam(name, list(ids), type_=ARRAY(PG_UUID(as_uuid=True)))


def _tenant_filter(table: Any, tenant_id: uuid.UUID | None) -> ColumnElement[bool]:
    return table.c.tenant_id == tenant_id if tenant_id is not None else literal_column("true")


def _open_at(now: datetime) -> ColumnElement[bool]:
    """Open sessions, counting a prepaid one whose paid time ran out at `now` as over (expired, written or not)."""
    return and_(
        sessions.c.state.in_(OPEN_STATES),
        or_(sessions.c.payment_mode != PREPAID, sessions.c.paid_until > now),
    )


def _newest_first(stmt: Select, after: tuple[datetime, uuid.UUID] | None, column: Any, id_column: Any) -> Select:
    if after is not None:
        stmt = stmt.where(or_(column < after[0], and_(column == after[0], id_column < after[1])))
    return stmt.order_by(column.desc(), id_column.desc())


# ------------------------------------------------------------------------------------------------ spaces

_SPACE_COLUMNS = (
    spaces.c.id,
    spaces.c.tenant_id,
    spaces.c.facility_id,
    spaces.c.facility_kind,
    spaces.c.code,
    facilities.c.time_zone,
    tenants.c.currency,
)


def _live_space() -> Select:
    return (
        select(*_SPACE_COLUMNS)
        .join(facilities, and_(facilities.c.tenant_id == spaces.c.tenant_id, facilities.c.id == spaces.c.facility_id))
        .join(tenants, tenants.c.id == spaces.c.tenant_id)
        .where(spaces.c.retired_at.is_(None), facilities.c.retired_at.is_(None))
    )


async def space_by_id(session: AsyncSession, space_id: uuid.UUID) -> Row | None:
    """A live space the scope may see, with its facility's time zone and its operator's currency."""
    return (await session.execute(_live_space().where(spaces.c.id == space_id))).mappings().first()


async def space_by_code(session: AsyncSession, operator_slug: str, code: str) -> Row | None:
    """The live space `code` of the operator `operator_slug` (codes are unique per operator among live spaces)."""
    stmt = _live_space().where(tenants.c.slug == operator_slug, spaces.c.code == code)
    return (await session.execute(stmt)).mappings().first()


# ---------------------------------------------------------------------------------------------- sessions


async def insert_session(session: AsyncSession, values: dict[str, Any]) -> Row | None:
    """The new session, or None when its span overlaps another session of the bay (or its sighting already
    started one): the exclusion constraint decides, also between concurrent starts."""
    stmt = pg_insert(sessions).values(**values).on_conflict_do_nothing().returning(*sessions.columns)
    return (await session.execute(stmt)).mappings().first()


async def lock_session(
    session: AsyncSession, session_id: uuid.UUID, *, driver_id: uuid.UUID | None, tenant_id: uuid.UUID | None = None
) -> Row | None:
    """The session, locked until the transaction ends, when the scope (and `driver_id`) may see it."""
    stmt = select(*sessions.columns).where(sessions.c.id == session_id, _tenant_filter(sessions, tenant_id))
    if driver_id is not None:
        stmt = stmt.where(sessions.c.driver_id == driver_id)
    return (await session.execute(stmt.with_for_update())).mappings().first()


async def update_session(
    session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID, values: dict[str, Any]
) -> Row:
    stmt = (
        update(sessions)
        .where(sessions.c.tenant_id == tenant_id, sessions.c.id == session_id)
        .values(**values, updated_at=func.now())
        .returning(*sessions.columns)
    )
    return (await session.execute(stmt)).mappings().one()


async def sessions_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None) -> list[Row]:
    if not ids:
        return []
    stmt = select(*sessions.columns).where(
        sessions.c.id == func.any(_ids("ids", ids)), _tenant_filter(sessions, tenant_id)
    )
    return list((await session.execute(stmt)).mappings().all())


async def sessions_page(
    session: AsyncSession,
    *,
    first: int,
    now: datetime,
    after: tuple[datetime, uuid.UUID] | None = None,
    tenant_id: uuid.UUID | None = None,
    driver_id: uuid.UUID | None = None,
    facility_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> list[Row]:
    """Sessions newest start first, `first + 1` of them (the extra one proves a next page)."""
    stmt = select(*sessions.columns).where(_tenant_filter(sessions, tenant_id))
    if driver_id is not None:
        stmt = stmt.where(sessions.c.driver_id == driver_id)
    if facility_id is not None:
        stmt = stmt.where(sessions.c.facility_id == facility_id)
    if active is not None:
        stmt = stmt.where(_open_at(now) if active else ~_open_at(now))
    stmt = _newest_first(stmt, after, sessions.c.started_at, sessions.c.id).limit(first + 1)
    return list((await session.execute(stmt)).mappings().all())


async def open_sessions_of_spaces(
    session: AsyncSession, tenant_id: uuid.UUID, space_ids: Sequence[uuid.UUID]
) -> list[Row]:
    """Sessions still marked open on the bays, oldest first."""
    stmt = (
        select(*sessions.columns)
        .where(
            sessions.c.tenant_id == tenant_id,
            sessions.c.space_id == func.any(_ids("space_ids", space_ids)),
            sessions.c.state.in_(OPEN_STATES),
        )
        .order_by(sessions.c.started_at)
    )
    return list((await session.execute(stmt)).mappings().all())


async def sessions_holding_since(
    session: AsyncSession, tenant_id: uuid.UUID, space_ids: Sequence[uuid.UUID], since: datetime
) -> list[Row]:
    """The bays' sessions that held their bay at some moment from `since` on: id, space_id, plate, started_at and
    held_until (its end, else its paid end; None: an open postpaid session, held for good)."""
    result = await session.execute(
        text(f"""
            SELECT x.id, x.space_id, x.plate, x.started_at, coalesce(x.ended_at, x.paid_until) AS held_until
            FROM street_sessions x
            WHERE x.tenant_id = :tenant_id AND x.space_id = ANY(CAST(:ids AS uuid[]))
              AND {held_span_sql("x")} && tstzrange(CAST(:since AS timestamptz), NULL)
            ORDER BY x.space_id, x.started_at
        """),
        {"tenant_id": tenant_id, "ids": list(space_ids), "since": since},
    )
    return list(result.mappings())


async def expire_due_sessions(session: AsyncSession, now: datetime, limit: int) -> list[Row]:
    """Write `expired` on open prepaid sessions whose paid time has run out: they ended at their paid end, at the
    price paid, refunding nothing. Returns them (tenant_id, id, driver_id, paid_until)."""
    due = (
        select(sessions.c.tenant_id, sessions.c.id)
        .where(sessions.c.state.in_(OPEN_STATES), sessions.c.payment_mode == PREPAID, sessions.c.paid_until <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    stmt = (
        update(sessions)
        .where(sessions.c.tenant_id == due.c.tenant_id, sessions.c.id == due.c.id)
        .values(
            state="expired",
            ended_at=sessions.c.paid_until,
            price_fen=sessions.c.paid_fen,
            refund_fen=0,
            updated_at=func.now(),
        )
        .returning(sessions.c.tenant_id, sessions.c.id, sessions.c.driver_id, sessions.c.paid_until)
    )
    return list((await session.execute(stmt)).mappings().all())


# ----------------------------------------------------------------------------------------------- actions


async def insert_action(session: AsyncSession, values: dict[str, Any]) -> Row | None:
    """The new action, or None when the driver already used its idempotency key at this operator."""
    stmt = pg_insert(actions).values(**values).on_conflict_do_nothing().returning(*actions.columns)
    return (await session.execute(stmt)).mappings().first()


async def insert_actions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(pg_insert(actions), list(rows))


async def action_by_key(session: AsyncSession, tenant_id: uuid.UUID, driver_id: uuid.UUID, key: str) -> Row | None:
    stmt = select(*actions.columns).where(
        actions.c.tenant_id == tenant_id, actions.c.driver_id == driver_id, actions.c.idempotency_key == key
    )
    return (await session.execute(stmt)).mappings().first()


async def actions_of_sessions(session: AsyncSession, session_ids: Sequence[uuid.UUID]) -> list[Row]:
    """The actions of the sessions the scope may see, oldest first."""
    if not session_ids:
        return []
    stmt = (
        select(*actions.columns)
        .where(actions.c.session_id == func.any(_ids("ids", session_ids)))
        .order_by(actions.c.at, actions.c.created_at, actions.c.id)
    )
    return list((await session.execute(stmt)).mappings().all())


# ------------------------------------------------------------------------------------ bays and sightings


async def lock_bays(session: AsyncSession, tenant_id: uuid.UUID, space_ids: Sequence[uuid.UUID]) -> None:
    """Serialize this domain's work on each bay until the transaction ends (advisory locks, taken in id order so
    two jobs never deadlock; ingest's row locks on spaces are left alone)."""
    keys = [f"street:{tenant_id}:{space_id}" for space_id in sorted(space_ids)]
    if keys:  # one round trip, taken in the order given
        await session.execute(
            text("""
                SELECT pg_advisory_xact_lock(hashtextextended(ordered.key, 0))
                FROM (SELECT k.key FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS k(key, n) ORDER BY k.n)
                     AS ordered
            """),
            {"keys": keys},
        )


async def curb_bays(session: AsyncSession, tenant_id: uuid.UUID, space_ids: Sequence[uuid.UUID]) -> list[Row]:
    """The live curb bays among `space_ids`: status, confirmation, code, facility, zone and currency."""
    result = await session.execute(
        text("""
            SELECT s.id, s.facility_id, s.code, s.status, s.status_confirmed_at, f.time_zone, t.currency
            FROM spaces s
            JOIN facilities f ON f.tenant_id = s.tenant_id AND f.id = s.facility_id
            JOIN tenants t ON t.id = s.tenant_id
            WHERE s.tenant_id = :tenant_id AND s.id = ANY(CAST(:ids AS uuid[]))
              AND s.facility_kind = 'curb_zone' AND s.retired_at IS NULL
            ORDER BY s.id
        """),
        {"tenant_id": tenant_id, "ids": list(space_ids)},
    )
    return list(result.mappings())


async def zone_bays_to_decide(
    session: AsyncSession, tenant_id: uuid.UUID, zone_ids: Sequence[uuid.UUID], since: datetime
) -> list[Row]:
    """The curb zones among `zone_ids` with zone sightings (of cameras bound to the zone, not to a bay) since
    `since` that this domain has not decided, each with its live bays as `curb_bays` gives them plus `zone_id`
    (a zone without live bays: one row whose bay columns are null)."""
    result = await session.execute(
        text("""
            SELECT z.id AS zone_id, s.id, s.facility_id, s.code, s.status, s.status_confirmed_at, z.time_zone,
                   t.currency
            FROM facilities z
            JOIN tenants t ON t.id = z.tenant_id
            LEFT JOIN spaces s ON s.tenant_id = z.tenant_id AND s.facility_id = z.id AND s.retired_at IS NULL
            WHERE z.tenant_id = :tenant_id AND z.id = ANY(CAST(:zone_ids AS uuid[])) AND z.kind = 'curb_zone'
              AND EXISTS (SELECT 1 FROM plate_sightings p
                          WHERE p.tenant_id = z.tenant_id AND p.facility_id = z.id AND p.space_id IS NULL
                            AND p.lane_id IS NULL AND p.plate_valid AND p.seen_at >= :since
                            AND NOT EXISTS (SELECT 1 FROM street_sightings d
                                            WHERE d.tenant_id = p.tenant_id AND d.sighting_id = p.id))
            ORDER BY z.id, s.id
        """),
        {"tenant_id": tenant_id, "zone_ids": list(zone_ids), "since": since},
    )
    return list(result.mappings())


async def history_since(
    session: AsyncSession, tenant_id: uuid.UUID, space_ids: Sequence[uuid.UUID], since: datetime
) -> list[Row]:
    """The bays' status intervals that were still running at or after `since`, oldest first."""
    result = await session.execute(
        text("""
            SELECT space_id, status, started_at, ended_at FROM space_status_intervals
            WHERE tenant_id = :tenant_id AND space_id = ANY(CAST(:ids AS uuid[]))
              AND (ended_at IS NULL OR ended_at >= :since)
            ORDER BY space_id, started_at
        """),
        {"tenant_id": tenant_id, "ids": list(space_ids), "since": since},
    )
    return list(result.mappings())


async def undecided_sightings(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    space_ids: Sequence[uuid.UUID],
    zone_ids: Sequence[uuid.UUID],
    since: datetime,
) -> list[Row]:
    """Valid plate reads since `since` that this domain has not decided, oldest first: of the bays' cameras and of
    the zones' own cameras (`space_id` null)."""
    result = await session.execute(
        text("""
            SELECT p.id, p.facility_id, p.space_id, p.plate, p.seen_at FROM plate_sightings p
            WHERE p.tenant_id = :tenant_id AND p.plate_valid AND p.lane_id IS NULL AND p.seen_at >= :since
              AND (p.space_id = ANY(CAST(:ids AS uuid[]))
                   OR (p.space_id IS NULL AND p.facility_id = ANY(CAST(:zone_ids AS uuid[]))))
              AND NOT EXISTS (SELECT 1 FROM street_sightings d
                              WHERE d.tenant_id = p.tenant_id AND d.sighting_id = p.id)
            ORDER BY p.seen_at, p.id
        """),
        {"tenant_id": tenant_id, "ids": list(space_ids), "zone_ids": list(zone_ids), "since": since},
    )
    return list(result.mappings())


async def record_sightings(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """rows: {tenant_id, sighting_id, facility_id, space_id, plate, seen_at, outcome, session_id}; a sighting
    decided already keeps its first decision."""
    if rows:
        await session.execute(pg_insert(sightings_decided).on_conflict_do_nothing(), list(rows))


async def authorizations_for_plates(session: AsyncSession, plates: Sequence[str]) -> list[Row]:
    """Each plate's active auto-pay authorization (plate, id, driver_id), the oldest when several drivers hold
    one, as the lanes pick it. Under a connector scope, which may read every driver's authorizations by plate."""
    result = await session.execute(
        text("""
            SELECT DISTINCT ON (a.plate) a.plate, a.id, a.driver_id FROM auto_pay_authorizations a
            WHERE a.plate = ANY(CAST(:plates AS text[])) AND a.revoked_at IS NULL
            ORDER BY a.plate, a.created_at, a.id
        """),
        {"plates": sorted(set(plates))},
    )
    return list(result.mappings())


async def places_with_undecided_sightings(session: AsyncSession, since: datetime, limit: int) -> list[Row]:
    """(tenant_id, space_id, facility_id) of curb bays (`space_id`) and curb zones (zone cameras' sightings:
    `space_id` null) with sightings this domain has not decided yet (for the sweep)."""
    result = await session.execute(
        text("""
            SELECT DISTINCT p.tenant_id, p.space_id, p.facility_id FROM plate_sightings p
            JOIN facilities f ON f.tenant_id = p.tenant_id AND f.id = p.facility_id AND f.kind = 'curb_zone'
            WHERE p.seen_at >= :since AND p.plate_valid AND p.lane_id IS NULL
              AND NOT EXISTS (SELECT 1 FROM street_sightings d
                              WHERE d.tenant_id = p.tenant_id AND d.sighting_id = p.id)
            LIMIT :limit
        """),
        {"since": since, "limit": limit},
    )
    return list(result.mappings())


async def bays_with_sessions_to_close(session: AsyncSession, limit: int) -> list[Row]:
    """(tenant_id, space_id) of bays with an open postpaid session that a vacancy began after (for the sweep)."""
    result = await session.execute(
        text("""
            SELECT DISTINCT x.tenant_id, x.space_id FROM street_sessions x
            JOIN space_status_intervals i ON i.tenant_id = x.tenant_id AND i.space_id = x.space_id
            WHERE x.state IN ('active', 'extended') AND x.payment_mode = 'postpaid'
              AND i.status = 'vacant' AND i.started_at > x.started_at
            LIMIT :limit
        """),
        {"limit": limit},
    )
    return list(result.mappings())


# ------------------------------------------------------------------------------------------ enforcement

# An occupied curb bay's state for enforcement: since when it is occupied (its open history interval), whether a
# session holds it at :now, the end of its last session before :now, and its open flag. Only bays whose
# occupancy a sensor confirmed after :confirmed_after count (an older one reads unknown).
_BAY_ENFORCEMENT = """
SELECT s.tenant_id, s.id AS space_id, s.facility_id, s.code, i.started_at AS occupied_since,
       (SELECT max(upper({span})) FROM street_sessions x
         WHERE x.tenant_id = s.tenant_id AND x.space_id = s.id AND upper({span}) <= :now) AS covered_until
FROM spaces s
JOIN space_status_intervals i ON i.tenant_id = s.tenant_id AND i.space_id = s.id AND i.ended_at IS NULL
WHERE s.facility_kind = 'curb_zone' AND s.retired_at IS NULL AND s.status = 'occupied'
  AND s.status_confirmed_at >= :confirmed_after AND i.status = 'occupied'
  AND NOT EXISTS (SELECT 1 FROM street_sessions x
                  WHERE x.tenant_id = s.tenant_id AND x.space_id = s.id AND {span} @> CAST(:now AS timestamptz))
  AND NOT EXISTS (SELECT 1 FROM street_enforcement_flags g
                  WHERE g.tenant_id = s.tenant_id AND g.space_id = s.id AND g.resolved_at IS NULL)
""".replace("{span}", held_span_sql("x"))


def _bay_filters(tenant_id: uuid.UUID | None, space_ids: Sequence[uuid.UUID] | None, alias: str) -> tuple[str, dict]:
    where, params = "", {}
    if tenant_id is not None:
        where += f" AND {alias}.tenant_id = :tenant_id"
        params["tenant_id"] = tenant_id
    if space_ids is not None:
        where += f" AND {alias}.{'id' if alias == 's' else 'space_id'} = ANY(CAST(:space_ids AS uuid[]))"
        params["space_ids"] = list(space_ids)
    return where, params


async def unflagged_occupied_bays(
    session: AsyncSession,
    now: datetime,
    confirmed_after: datetime,
    *,
    tenant_id: uuid.UUID | None = None,
    space_ids: Sequence[uuid.UUID] | None = None,
    limit: int = 10_000,
) -> list[Row]:
    """Occupied curb bays with no session holding them now and no open flag, with since when they are occupied
    and the end of their last session."""
    where, params = _bay_filters(tenant_id, space_ids, "s")
    result = await session.execute(
        text(_BAY_ENFORCEMENT + where + " LIMIT :limit"),
        {"now": now, "confirmed_after": confirmed_after, "limit": limit, **params},
    )
    return list(result.mappings())


async def insert_flags(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(pg_insert(flags).on_conflict_do_nothing(), list(rows))


async def open_flags_to_check(
    session: AsyncSession,
    now: datetime,
    confirmed_after: datetime,
    *,
    tenant_id: uuid.UUID | None = None,
    space_ids: Sequence[uuid.UUID] | None = None,
    limit: int = 10_000,
) -> list[Row]:
    """Open flags with their bay's status now (`status`, `confirmed`: a sensor vouched for it lately) and the
    session holding the bay now, if any."""
    where, params = _bay_filters(tenant_id, space_ids, "g")
    span = held_span_sql("x")
    result = await session.execute(
        text(f"""
            SELECT g.tenant_id, g.id, g.space_id, s.status, s.retired_at IS NOT NULL AS retired,
                   coalesce(s.status_confirmed_at >= :confirmed_after, false) AS confirmed,
                   (SELECT x.id FROM street_sessions x
                     WHERE x.tenant_id = g.tenant_id AND x.space_id = g.space_id
                       AND {span} @> CAST(:now AS timestamptz) LIMIT 1) AS session_id
            FROM street_enforcement_flags g
            JOIN spaces s ON s.tenant_id = g.tenant_id AND s.id = g.space_id
            WHERE g.resolved_at IS NULL {where}
            LIMIT :limit
        """),
        {"now": now, "confirmed_after": confirmed_after, "limit": limit, **params},
    )
    return list(result.mappings())


async def resolve_flags(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """rows: {tenant_id, id, resolved_at, resolution, session_id}"""
    if rows:
        await session.execute(
            text("""
                UPDATE street_enforcement_flags
                SET resolved_at = :resolved_at, resolution = :resolution, session_id = :session_id
                WHERE tenant_id = :tenant_id AND id = :id AND resolved_at IS NULL
            """),
            list(rows),
        )


async def flags_page(
    session: AsyncSession,
    *,
    first: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    tenant_id: uuid.UUID | None = None,
    facility_id: uuid.UUID | None = None,
    open_only: bool | None = None,
) -> list[Row]:
    stmt = select(*flags.columns).where(_tenant_filter(flags, tenant_id))
    if facility_id is not None:
        stmt = stmt.where(flags.c.facility_id == facility_id)
    if open_only is not None:
        stmt = stmt.where(flags.c.resolved_at.is_(None) if open_only else flags.c.resolved_at.is_not(None))
    stmt = _newest_first(stmt, after, flags.c.raised_at, flags.c.id).limit(first + 1)
    return list((await session.execute(stmt)).mappings().all())


async def flags_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None) -> list[Row]:
    if not ids:
        return []
    stmt = select(*flags.columns).where(flags.c.id == func.any(_ids("ids", ids)), _tenant_filter(flags, tenant_id))
    return list((await session.execute(stmt)).mappings().all())
