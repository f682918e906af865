"""Occupancy history for operators (their own facilities) and the city (every operator's)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from hub.history import service
from schema.context import Info
from schema.history.types import FacilityMetrics, HourlyMetrics, OccupancySample, SpaceStatusInterval
from schema.relay import check_first, connection, decode_time_cursor, uuid_of


@strawberry.type
class HistoryQuery:
    @strawberry.field(
        description="A facility's average occupancy in each five-minute bucket of [since, until), at most 7 days; "
        "the ends are widened to whole buckets (UTC) and the end stops at the bucket in progress."
    )
    async def occupancy_history(
        self, info: Info, facility_id: relay.GlobalID, since: datetime, until: datetime
    ) -> list[OccupancySample]:
        facility = uuid_of(facility_id, "Facility", "facilityId")
        async with info.context.read() as session:
            samples = await service.occupancy_history(session, info.context.principal, facility, since, until)
        return [OccupancySample.of(sample) for sample in samples]

    @strawberry.field(
        description="CDS-style hourly metrics of up to 50 facilities (lots or curb zones) for each hour of "
        "[since, until), at most 31 days; -1 marks hours whose sources were mostly offline."
    )
    async def occupancy_metrics(
        self, info: Info, facility_ids: list[relay.GlobalID], since: datetime, until: datetime
    ) -> list[FacilityMetrics]:
        facilities = [uuid_of(facility_id, "Facility", "facilityIds") for facility_id in facility_ids]
        async with info.context.read() as session:
            results = await service.hourly_metrics(session, info.context.principal, facilities, since, until)
        return [
            FacilityMetrics(facility_id=result.facility_id, hours=[HourlyMetrics.of(hour) for hour in result.hours])
            for result in results
        ]

    @strawberry.field(description="The status intervals of one space overlapping [since, until), oldest first.")
    async def space_status_history(
        self,
        info: Info,
        space_id: relay.GlobalID,
        since: datetime,
        until: datetime,
        first: int | None = 50,
        after: str | None = None,
    ) -> relay.Connection[SpaceStatusInterval]:
        space = uuid_of(space_id, "Space", "spaceId")
        page_size = check_first(first)
        async with info.context.read() as session:
            rows = await service.space_status_intervals(
                session, info.context.principal, space, since, until, page_size, decode_time_cursor(after)
            )
        return connection(
            rows,
            page_size,
            after is not None,
            SpaceStatusInterval.from_row,
            lambda row: (row["started_at"].isoformat(), row["id"]),
        )
