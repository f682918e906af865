"""Which occupancy changes a live subscriber receives: pure matching, no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from geo.bounds import Bbox
from hub.live.events import OccupancyChange, plain_uuid


@dataclass(frozen=True, slots=True)
class OccupancyWatch:
    """What one subscriber watches: one facility, a bounding box, or a whole operator.

    `tenant_id` set means only that tenant's changes can match (the broker routes on it, so a subscriber
    costs nothing for other tenants' traffic); None means every tenant's."""

    tenant_id: uuid.UUID | None
    facility_id: uuid.UUID | None = None
    bbox: Bbox | None = None

    def __post_init__(self) -> None:
        for name in ("tenant_id", "facility_id"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, plain_uuid(value))

    def matches(self, change: OccupancyChange) -> bool:
        if self.tenant_id is not None and change.tenant_id != self.tenant_id:
            return False
        if self.facility_id is not None and change.facility_id != self.facility_id:
            return False
        if self.bbox is not None:
            west, south, east, north = self.bbox
            return west <= change.lon <= east and south <= change.lat <= north
        return True
