"""Occupancy changes as they travel between processes: one JSON message per change on the tenant's channel.

Channels follow DESIGN's `tenant:<id>:<topic>` naming, so a reader can tell the tenant from the channel alone
and one pattern subscription (`tenant:*:occupancy`) hears every tenant."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

OCCUPANCY_TOPIC = "occupancy"
OCCUPANCY_PATTERN = f"tenant:*:{OCCUPANCY_TOPIC}"
# The statuses a driver or dashboard may rely on (hub.supply.rules.effective_status gives one of these).
EFFECTIVE_STATUSES = frozenset({"vacant", "occupied", "reserved", "out_of_service", "unknown"})


def occupancy_channel(tenant_id: uuid.UUID) -> str:
    return f"tenant:{tenant_id}:{OCCUPANCY_TOPIC}"


@dataclass(frozen=True, slots=True)
class OccupancyChange:
    """A space's effective status changed. Published after the change is committed; the database stays the
    truth, so a subscriber that misses one reads the current state rather than replaying messages."""

    tenant_id: uuid.UUID
    facility_id: uuid.UUID
    space_id: uuid.UUID
    space_code: str
    status: str  # effective status: vacant | occupied | reserved | out_of_service | unknown
    previous_status: str | None
    changed_at: datetime
    lon: float
    lat: float

    def __post_init__(self) -> None:
        # Ids read by asyncpg are its own UUID subclass, which orjson cannot write: keep plain UUIDs.
        for name in ("tenant_id", "facility_id", "space_id"):
            object.__setattr__(self, name, plain_uuid(getattr(self, name)))
        # Checked here so a bad change fails where it is made, not in every subscriber that receives it.
        for name in ("status", "previous_status"):
            value = getattr(self, name)
            if value is not None and value not in EFFECTIVE_STATUSES:
                raise ValueError(f"{name} must be one of {sorted(EFFECTIVE_STATUSES)}, got {value!r}")
        if self.changed_at.tzinfo is None:
            raise ValueError("changed_at must be timezone-aware")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"lon must be within -180..180, got {self.lon}")
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise ValueError(f"lat must be within -90..90, got {self.lat}")

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "tenant_id": self.tenant_id,
                "facility_id": self.facility_id,
                "space_id": self.space_id,
                "space_code": self.space_code,
                "status": self.status,
                "previous_status": self.previous_status,
                "changed_at": self.changed_at,
                "lon": self.lon,
                "lat": self.lat,
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> OccupancyChange:
        """The change in a message; ValueError for anything that is not one."""
        try:
            fields: Any = orjson.loads(data)
            previous = fields["previous_status"]
            return cls(
                tenant_id=uuid.UUID(fields["tenant_id"]),
                facility_id=uuid.UUID(fields["facility_id"]),
                space_id=uuid.UUID(fields["space_id"]),
                space_code=_string(fields["space_code"], "space_code"),
                status=_string(fields["status"], "status"),
                previous_status=None if previous is None else _string(previous, "previous_status"),
                changed_at=datetime.fromisoformat(fields["changed_at"]),
                lon=_number(fields["lon"], "lon"),
                lat=_number(fields["lat"], "lat"),
            )
        except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"not an occupancy change: {exc!r}") from exc


def plain_uuid(value: uuid.UUID) -> uuid.UUID:
    """`value` as a uuid.UUID itself (not a subclass such as asyncpg's), so it hashes, compares and
    serializes like every other id here."""
    if type(value) is uuid.UUID:
        return value
    if not isinstance(value, uuid.UUID):
        raise ValueError(f"expected a UUID, got {type(value).__name__}")
    return uuid.UUID(int=value.int)


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    return float(value)
