"""GraphQL types of live updates."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from hub.live import OccupancyChange
from schema.scalars import GeoJSON
from schema.supply.types import SpaceStatus


@strawberry.type(description="A space's status changed. Ids are the global ids the rest of the API uses.")
class OccupancyEvent:
    space_id: relay.GlobalID
    space_code: str
    facility_id: relay.GlobalID
    operator_id: relay.GlobalID
    status: SpaceStatus = strawberry.field(description="The status a driver may rely on now")
    previous_status: SpaceStatus | None = strawberry.field(description="Null when the space had no status before")
    changed_at: datetime
    location: GeoJSON = strawberry.field(description="The space's location, a GeoJSON Point [lon, lat]")

    @classmethod
    def of(cls, change: OccupancyChange) -> OccupancyEvent:
        return cls(
            space_id=relay.GlobalID("Space", str(change.space_id)),
            space_code=change.space_code,
            facility_id=relay.GlobalID("Facility", str(change.facility_id)),
            operator_id=relay.GlobalID("Operator", str(change.tenant_id)),
            status=SpaceStatus(change.status),
            previous_status=SpaceStatus(change.previous_status) if change.previous_status is not None else None,
            changed_at=change.changed_at,
            location={"type": "Point", "coordinates": [change.lon, change.lat]},
        )
