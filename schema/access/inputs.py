"""GraphQL inputs of the vehicle lists. In updates only the fields given change; null clears an optional
field, and `facilityIds: null` makes an entry cover every facility."""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry
from strawberry import relay

from schema.access.types import BlocklistKind, VehicleClass, WhitelistCategory
from schema.inputs import input_fields
from schema.relay import uuid_of

UNSET = strawberry.UNSET

FACILITIES = "Facilities covered; null or left out: every facility of the operator"
WEEKDAYS = "ISO weekdays, 1 = Monday ... 7 = Sunday; left out: every day"
WINDOW_START = "Daily window start HH:MM in the facility's zone; left out with windowEnd: all day"
WINDOW_END = "Daily window end HH:MM (24:00 allowed); before windowStart: runs past midnight"


@strawberry.input
class VehiclePassInput:
    plate: str
    valid_from: date = strawberry.field(description="First valid day, in the facility's zone")
    valid_until: date = strawberry.field(description="Last valid day (inclusive)")
    facility_ids: list[relay.GlobalID] | None = strawberry.field(default=None, description=FACILITIES)
    weekdays: list[int] | None = strawberry.field(default=None, description=WEEKDAYS)
    window_start: str | None = strawberry.field(default=None, description=WINDOW_START)
    window_end: str | None = strawberry.field(default=None, description=WINDOW_END)
    vehicle_class: VehicleClass | None = strawberry.field(default=None, description="STANDARD when left out")
    holder_name: str | None = None
    holder_phone: str | None = None
    note: str | None = None


@strawberry.input
class UpdateVehiclePassInput:
    plate: str | None = UNSET
    valid_from: date | None = UNSET
    valid_until: date | None = UNSET
    facility_ids: list[relay.GlobalID] | None = UNSET
    weekdays: list[int] | None = UNSET
    window_start: str | None = UNSET
    window_end: str | None = UNSET
    vehicle_class: VehicleClass | None = UNSET
    holder_name: str | None = UNSET
    holder_phone: str | None = UNSET
    note: str | None = UNSET


@strawberry.input
class WhitelistEntryInput:
    plate: str
    category: WhitelistCategory
    facility_ids: list[relay.GlobalID] | None = strawberry.field(default=None, description=FACILITIES)
    valid_from: date | None = strawberry.field(default=None, description="First valid day; null: already valid")
    valid_until: date | None = strawberry.field(default=None, description="Last valid day; null: open-ended")
    reason: str | None = None


@strawberry.input
class UpdateWhitelistEntryInput:
    plate: str | None = UNSET
    category: WhitelistCategory | None = UNSET
    facility_ids: list[relay.GlobalID] | None = UNSET
    valid_from: date | None = UNSET
    valid_until: date | None = UNSET
    reason: str | None = UNSET


@strawberry.input
class BlocklistEntryInput:
    plate: str
    kind: BlocklistKind
    reason: str
    valid_from: date | None = strawberry.field(default=None, description="First valid day; null: already valid")
    valid_until: date | None = strawberry.field(default=None, description="Last valid day; null: open-ended")


@strawberry.input
class UpdateBlocklistEntryInput:
    plate: str | None = UNSET
    kind: BlocklistKind | None = UNSET
    reason: str | None = UNSET
    valid_from: date | None = UNSET
    valid_until: date | None = UNSET


def entry_fields(value: Any) -> dict[str, Any]:
    """The fields the caller set, enums as stored values, facility global ids as row ids."""
    fields = input_fields(value)
    # Read the ids themselves: input_fields would take a GlobalID (a dataclass) apart.
    facility_ids = getattr(value, "facility_ids", UNSET)
    if facility_ids is not UNSET:
        fields["facility_ids"] = (
            None
            if facility_ids is None
            else [
                uuid_of(facility_id, "Facility", f"input.facilityIds[{index}]")
                for index, facility_id in enumerate(facility_ids)
            ]
        )
    return fields
