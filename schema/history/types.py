"""Occupancy history as GraphQL types: five-minute samples, hourly metrics and status intervals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry

from hub.history import rules
from schema.context import Info
from schema.supply.types import Facility, SpaceStatus


@strawberry.type(description="A facility's average state over one five-minute bucket")
class OccupancySample:
    at: datetime = strawberry.field(description="Start of the bucket (UTC)")
    spaces: float = strawberry.field(description="Live spaces, averaged over the bucket")
    vacant: float
    occupied: float
    reserved: float
    out_of_service: float
    unknown: float = strawberry.field(description="Spaces no sensor or person reported on (offline, never reported)")
    occupancy_percent: float = strawberry.field(
        description="Occupied and reserved share of the in-use space time; -1 when the bucket was mostly unknown"
    )

    @classmethod
    def of(cls, sample: rules.OccupancySample) -> OccupancySample:
        return cls(**vars(sample))


@strawberry.type(
    description="CDS-style metrics of one hour; every figure but unknownPercent is -1 when the "
    "sources were offline for more than half of the hour"
)
class HourlyMetrics:
    hour: datetime = strawberry.field(description="Start of the hour (UTC)")
    total_sessions: int = strawberry.field(description="Occupancy sessions (park start to park end) begun in the hour")
    turnover: float = strawberry.field(description="Sessions begun per space")
    average_dwell_minutes: float | None = strawberry.field(
        description="Average length of the sessions that ended in the hour; null when none did"
    )
    occupancy_percent: float = strawberry.field(description="Occupied and reserved share of the in-use space time")
    unknown_percent: float = strawberry.field(description="Share of the space time no source reported on")

    @classmethod
    def of(cls, metrics: rules.HourlyMetrics) -> HourlyMetrics:
        return cls(**vars(metrics))


@strawberry.type(description="Hourly metrics of one facility (an off-street lot or a curb zone)")
class FacilityMetrics:
    facility_id: strawberry.Private[uuid.UUID]
    hours: list[HourlyMetrics]

    @strawberry.field
    async def facility(self, info: Info) -> Facility:
        facility = await info.context.loaders.facility.load(self.facility_id)
        assert facility is not None  # the service checked it is visible
        return facility


@strawberry.type(description="A span of time a space held one status; open (no end) while it still does")
class SpaceStatusInterval:
    status: SpaceStatus = strawberry.field(description="The reported status; UNKNOWN while its sensor was offline")
    started_at: datetime
    ended_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> SpaceStatusInterval:
        return cls(status=SpaceStatus(row["status"]), started_at=row["started_at"], ended_at=row["ended_at"])
