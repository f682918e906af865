"""All SQL of occupancy history: per-bucket sums over spaces' status intervals, and one space's intervals.

Each interval (and each space's lifetime) is cut into the buckets it overlaps by a lateral generate_series, so the
work grows with spaces x buckets, not with the square of the history. Every statement filters by tenant
explicitly; row-level security is the second wall."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Row = Mapping[str, Any]


def _scope(alias: str) -> str:
    return (
        f"{alias}.tenant_id = ANY(CAST(:tenant_ids AS uuid[])) "
        f"AND {alias}.facility_id = ANY(CAST(:facility_ids AS uuid[]))"
    )


# Buckets start on whole UTC steps: date_bin's origin is the epoch.

STATUS_SECONDS_SQL = text(f"""
SELECT i.facility_id, b.bucket, i.status,
       sum(extract(epoch FROM least(i.until, b.bucket + :step) - greatest(i.started_at, b.bucket)))::float8
           AS seconds
FROM (
    -- An interval counts until it ended, or until now; never after its space was retired.
    SELECT si.facility_id, si.status, si.started_at,
           least(coalesce(si.ended_at, :now), coalesce(s.retired_at, 'infinity'), :until) AS until
    FROM space_status_intervals si
    JOIN spaces s ON s.tenant_id = si.tenant_id AND s.id = si.space_id
    WHERE {_scope("si")}
      AND si.started_at < :until AND (si.ended_at IS NULL OR si.ended_at > :since)
) AS i
CROSS JOIN LATERAL generate_series(
    date_bin(:step, greatest(i.started_at, :since), TIMESTAMPTZ 'epoch'), i.until - interval '1 microsecond', :step
) AS b(bucket)
GROUP BY i.facility_id, b.bucket, i.status
""")

SPACE_SECONDS_SQL = text(f"""
SELECT s.facility_id, b.bucket,
       sum(extract(epoch FROM least(s.until, b.bucket + :step) - greatest(s.created_at, b.bucket)))::float8
           AS seconds
FROM (
    SELECT facility_id, created_at, least(coalesce(retired_at, 'infinity'), :now, :until) AS until
    FROM spaces s
    WHERE {_scope("s")} AND created_at < :until AND (retired_at IS NULL OR retired_at > :since)
) AS s
CROSS JOIN LATERAL generate_series(
    date_bin(:step, greatest(s.created_at, :since), TIMESTAMPTZ 'epoch'), s.until - interval '1 microsecond', :step
) AS b(bucket)
GROUP BY s.facility_id, b.bucket
""")

# Occupancy sessions are occupied intervals: counted in the bucket they began, and their dwell in the bucket
# they ended.
SESSIONS_SQL = text(f"""
SELECT facility_id, date_bin(:step, started_at, TIMESTAMPTZ 'epoch') AS bucket,
       count(*) AS started, 0 AS ended, 0::float8 AS dwell_seconds
FROM space_status_intervals i
WHERE {_scope("i")} AND status = 'occupied' AND started_at >= :since AND started_at < :until
GROUP BY 1, 2
UNION ALL
SELECT facility_id, date_bin(:step, ended_at, TIMESTAMPTZ 'epoch'), 0, count(*),
       sum(extract(epoch FROM ended_at - started_at))::float8
FROM space_status_intervals i
WHERE {_scope("i")} AND status = 'occupied' AND ended_at >= :since AND ended_at < :until
GROUP BY 1, 2
""")


def _params(
    tenant_ids: Sequence[uuid.UUID],
    facility_ids: Sequence[uuid.UUID],
    since: datetime,
    until: datetime,
    step: timedelta,
    now: datetime,
) -> dict[str, Any]:
    return {
        "tenant_ids": [str(tenant_id) for tenant_id in tenant_ids],
        "facility_ids": [str(facility_id) for facility_id in facility_ids],
        "since": since,
        "until": until,
        "step": step,
        "now": now,
    }


async def status_seconds(session: AsyncSession, *scope: Any) -> list[Row]:
    """{facility_id, bucket, status, seconds}: seconds spent in each status per bucket."""
    return list((await session.execute(STATUS_SECONDS_SQL, _params(*scope))).mappings().all())


async def space_seconds(session: AsyncSession, *scope: Any) -> list[Row]:
    """{facility_id, bucket, seconds}: seconds the facilities' spaces existed per bucket (up to now)."""
    return list((await session.execute(SPACE_SECONDS_SQL, _params(*scope))).mappings().all())


async def session_counts(session: AsyncSession, *scope: Any) -> list[Row]:
    """{facility_id, bucket, started, ended, dwell_seconds}: occupancy sessions begun and ended per bucket."""
    return list((await session.execute(SESSIONS_SQL, _params(*scope))).mappings().all())


# --------------------------------------------------------------------------------------------- writing


async def close_open_intervals(session: AsyncSession, tenant_id: uuid.UUID, rows: Sequence[Row]) -> None:
    """rows: {space_id, ended_at}: end each space's open interval (if any)."""
    if rows:
        await session.execute(
            text("""
                UPDATE space_status_intervals SET ended_at = greatest(started_at, :ended_at)
                WHERE tenant_id = :tenant_id AND space_id = :space_id AND ended_at IS NULL
            """),
            [{"tenant_id": tenant_id, **row} for row in rows],
        )


async def insert_intervals(session: AsyncSession, tenant_id: uuid.UUID, rows: Sequence[Row]) -> None:
    """rows: {space_id, facility_id, status, started_at, ended_at}"""
    if rows:
        await session.execute(
            text("""
                INSERT INTO space_status_intervals (tenant_id, space_id, facility_id, status, started_at, ended_at)
                VALUES (:tenant_id, :space_id, :facility_id, :status, :started_at, :ended_at)
            """),
            [{"tenant_id": tenant_id, **row} for row in rows],
        )


async def open_statuses(session: AsyncSession, tenant_id: uuid.UUID, space_ids: Sequence[uuid.UUID]) -> dict[Any, str]:
    """{space_id: status of its open interval} for the spaces that have one."""
    rows = await session.execute(
        text("""
            SELECT space_id, status FROM space_status_intervals
            WHERE tenant_id = :tenant_id AND space_id = ANY(CAST(:space_ids AS uuid[])) AND ended_at IS NULL
        """),
        {"tenant_id": tenant_id, "space_ids": [str(space_id) for space_id in space_ids]},
    )
    return {uuid.UUID(str(row[0])): row[1] for row in rows}


# --------------------------------------------------------------------------------------------- reading


async def space_intervals(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    space_id: uuid.UUID,
    since: datetime,
    until: datetime,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Row]:
    """One page of a space's intervals overlapping [since, until), oldest first, plus one row more when a next
    page exists."""
    stmt = text("""
        SELECT id, status, started_at, ended_at
        FROM space_status_intervals
        WHERE tenant_id = :tenant_id AND space_id = :space_id
          AND started_at < :until AND (ended_at IS NULL OR ended_at > :since)
          AND (CAST(:after_at AS timestamptz) IS NULL OR (started_at, id) > (:after_at, :after_id))
        ORDER BY started_at, id
        LIMIT :limit
    """)
    params = {
        "tenant_id": tenant_id,
        "space_id": space_id,
        "since": since,
        "until": until,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": first + 1,
    }
    return list((await session.execute(stmt, params)).mappings().all())
