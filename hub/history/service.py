"""Use cases of occupancy history, for operators (their own facilities) and the city (every operator's):
five-minute occupancy of a facility, CDS-style hourly metrics of facilities and curb zones, and one space's
status intervals."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import InvalidInput, NotFound
from hub.history import repository, rules
from hub.history.rules import BucketTotals, HourlyMetrics, OccupancySample, Window
from hub.principal import Principal
from hub.supply import service as supply

MAX_FACILITIES_PER_REQUEST = 50


@dataclass
class SpaceTransitions:
    """Statuses a space moved through, in order: (status as history records it, since when)."""

    space_id: uuid.UUID
    facility_id: uuid.UUID
    transitions: list[tuple[str, datetime]]


async def record_transitions(session: AsyncSession, tenant_id: uuid.UUID, moves: Sequence[SpaceTransitions]) -> None:
    """Extend the spaces' history: the open interval ends where the first transition starts, and each transition
    runs until the next (the last stays open)."""
    moved = [move for move in moves if move.transitions]
    await repository.close_open_intervals(
        session, tenant_id, [{"space_id": move.space_id, "ended_at": move.transitions[0][1]} for move in moved]
    )
    await _insert(session, tenant_id, moved)


async def _insert(session: AsyncSession, tenant_id: uuid.UUID, moves: Sequence[SpaceTransitions]) -> None:
    intervals = []
    for move in moves:
        for index, (status, started_at) in enumerate(move.transitions):
            following = move.transitions[index + 1 :]
            intervals.append(
                {
                    "space_id": move.space_id,
                    "facility_id": move.facility_id,
                    "status": status,
                    "started_at": started_at,
                    "ended_at": following[0][1] if following else None,
                }
            )
    await repository.insert_intervals(session, tenant_id, intervals)


async def record_statuses_set(
    session: AsyncSession, tenant_id: uuid.UUID, spaces: Sequence[tuple[uuid.UUID, uuid.UUID, str]], at: datetime
) -> None:
    """Statuses set by hand: (space id, facility id, status). Each starts a new interval unless the space's
    history already shows that status."""
    if not spaces:
        return
    current = await repository.open_statuses(session, tenant_id, [space_id for space_id, _, _ in spaces])
    changed = [
        (space_id, facility_id, status) for space_id, facility_id, status in spaces if current.get(space_id) != status
    ]
    # Only spaces with an open interval need it closed (new spaces have none: a bulk import skips the updates).
    await repository.close_open_intervals(
        session,
        tenant_id,
        [{"space_id": space_id, "ended_at": at} for space_id, _, _ in changed if space_id in current],
    )
    await _insert(
        session,
        tenant_id,
        [SpaceTransitions(space_id, facility_id, [(status, at)]) for space_id, facility_id, status in changed],
    )


async def end_histories(
    session: AsyncSession, tenant_id: uuid.UUID, space_ids: Sequence[uuid.UUID], at: datetime
) -> None:
    """Retired spaces hold no status any more: their open intervals end."""
    await repository.close_open_intervals(
        session, tenant_id, [{"space_id": space_id, "ended_at": at} for space_id in space_ids]
    )


@dataclass(frozen=True)
class FacilityMetrics:
    facility_id: uuid.UUID
    hours: list[HourlyMetrics]


async def _visible_facilities(
    session: AsyncSession, principal: Principal, facility_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """{facility id: its tenant id} for the requested facilities; NotFound names the first one not visible."""
    supply.require_occupancy_reader(principal)
    rows = {row["id"]: row["tenant_id"] for row in await supply.facilities_by_ids(session, principal, facility_ids)}
    for facility_id in facility_ids:
        if facility_id not in rows:
            raise NotFound(f"no facility {facility_id} that you can see", field="facilityIds")
    return rows


async def _bucket_totals(
    session: AsyncSession, facilities: dict[uuid.UUID, uuid.UUID], span: Window, now: datetime, *, sessions: bool
) -> dict[uuid.UUID, dict[datetime, BucketTotals]]:
    scope = (sorted(set(facilities.values())), sorted(facilities), span.since, span.until, span.step, now)
    space_seconds: dict[tuple[uuid.UUID, datetime], float] = {
        (row["facility_id"], row["bucket"]): row["seconds"] for row in await repository.space_seconds(session, *scope)
    }
    status_seconds: dict[tuple[uuid.UUID, datetime], dict[str, float]] = defaultdict(dict)
    for row in await repository.status_seconds(session, *scope):
        status_seconds[row["facility_id"], row["bucket"]][row["status"]] = row["seconds"]
    sessions_by_bucket: dict[tuple[uuid.UUID, datetime], dict[str, float]] = defaultdict(
        lambda: {"started": 0, "ended": 0, "dwell_seconds": 0.0}
    )
    for row in await repository.session_counts(session, *scope) if sessions else []:
        totals = sessions_by_bucket[row["facility_id"], row["bucket"]]
        for key in totals:
            totals[key] += row[key]

    def bucket_totals(key: tuple[uuid.UUID, datetime]) -> BucketTotals:
        counted = sessions_by_bucket.get(key, {})
        return BucketTotals(
            space_seconds=space_seconds.get(key, 0.0),
            status_seconds=status_seconds.get(key, {}),
            sessions_started=int(counted.get("started", 0)),
            sessions_ended=int(counted.get("ended", 0)),
            ended_dwell_seconds=counted.get("dwell_seconds", 0.0),
        )

    return {
        facility_id: {bucket: bucket_totals((facility_id, bucket)) for bucket in span.buckets}
        for facility_id in facilities
    }


async def occupancy_history(
    session: AsyncSession,
    principal: Principal,
    facility_id: uuid.UUID,
    since: datetime,
    until: datetime,
    now: datetime | None = None,
) -> list[OccupancySample]:
    """Average occupancy of a facility in each five-minute bucket of [since, until), oldest first."""
    now = now or datetime.now(UTC)
    span = rules.window(since, until, rules.FIVE_MINUTES, rules.MAX_SAMPLE_WINDOW, now)
    facilities = await _visible_facilities(session, principal, [facility_id])
    totals = (await _bucket_totals(session, facilities, span, now, sessions=False))[facility_id]
    return [rules.occupancy_sample(bucket, span.step, totals[bucket]) for bucket in span.buckets]


async def hourly_metrics(
    session: AsyncSession,
    principal: Principal,
    facility_ids: Sequence[uuid.UUID],
    since: datetime,
    until: datetime,
    now: datetime | None = None,
) -> list[FacilityMetrics]:
    """CDS-style metrics of each facility (a lot or a curb zone) for each hour of [since, until)."""
    if not facility_ids:
        raise InvalidInput("facilityIds: give at least one facility", code="INVALID_INPUT", field="facilityIds")
    if len(set(facility_ids)) > MAX_FACILITIES_PER_REQUEST:
        raise InvalidInput(
            f"facilityIds: at most {MAX_FACILITIES_PER_REQUEST} facilities per request",
            code="TOO_MANY",
            field="facilityIds",
        )
    now = now or datetime.now(UTC)
    span = rules.window(since, until, rules.ONE_HOUR, rules.MAX_METRICS_WINDOW, now)
    wanted = list(dict.fromkeys(facility_ids))
    facilities = await _visible_facilities(session, principal, wanted)
    totals = await _bucket_totals(session, facilities, span, now, sessions=True)
    return [
        FacilityMetrics(
            facility_id, [rules.hourly_metrics(bucket, totals[facility_id][bucket]) for bucket in span.buckets]
        )
        for facility_id in wanted
    ]


async def space_status_intervals(
    session: AsyncSession,
    principal: Principal,
    space_id: uuid.UUID,
    since: datetime,
    until: datetime,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[repository.Row]:
    """A page of the space's status intervals overlapping [since, until), oldest first (one extra row when a
    next page exists). An open interval has no end: the space still holds that status."""
    supply.require_occupancy_reader(principal)
    rules.check_range(since, until)
    spaces = await supply.spaces_by_ids(session, principal, [space_id])
    if not spaces:
        raise NotFound(f"no space {space_id} that you can see", field="spaceId")
    return await repository.space_intervals(session, spaces[0]["tenant_id"], space_id, since, until, first, after)
