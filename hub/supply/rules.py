"""Pure supply rules: what a status means now, what a valid facility, lane, space or device looks like."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.errors import InvalidInput
from hub.supply.models import (
    CURB_SIDES,
    DEVICE_KINDS,
    FACILITY_KINDS,
    LANE_DIRECTIONS,
    PARKING_ANGLES,
    SIZE_CLASSES,
    SPACE_STATUSES,
)

# Statuses that sensors keep confirming; these go stale. Reserved and out of service are set by the hub or
# the operator and hold until changed.
SENSED_STATUSES = ("vacant", "occupied")
UNKNOWN = "unknown"

GEOMETRY_TYPES = {
    "lot": ("Polygon", "MultiPolygon"),
    "curb_zone": ("Polygon", "LineString", "MultiLineString"),
    "space": ("Point", "Polygon"),
    "lane": ("Point",),
    "entrances": ("MultiPoint", "Point"),
}

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$")
TIME_PATTERN = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_BULK = 10_000


def effective_status(status: str, confirmed_at: datetime | None, now: datetime, stale_after: timedelta) -> str:
    """The status a driver or dashboard may rely on: a sensed status not confirmed within `stale_after`
    is unknown, never vacant."""
    if status in SENSED_STATUSES and (confirmed_at is None or confirmed_at < now - stale_after):
        return UNKNOWN
    return status


@dataclass(frozen=True)
class DeviceHealth:
    """An operator's live devices, and how many went silent past their configured interval."""

    total: int
    offline: int


@dataclass(frozen=True)
class Occupancy:
    total: int
    vacant: int
    occupied: int
    reserved: int
    out_of_service: int
    unknown: int

    @staticmethod
    def percent(part: int, whole: int) -> float:
        return round(100.0 * part / whole, 2) if whole else 0.0

    @property
    def vacant_percent(self) -> float:
        return self.percent(self.vacant, self.total)

    @property
    def occupied_percent(self) -> float:
        return self.percent(self.occupied, self.total)

    @property
    def unknown_percent(self) -> float:
        return self.percent(self.unknown, self.total)

    @property
    def occupancy_rate_percent(self) -> float:
        """Occupied share of the spaces whose state is known and in use (vacant or occupied or reserved)."""
        in_use = self.vacant + self.occupied + self.reserved
        return self.percent(self.occupied + self.reserved, in_use)


def problem(field: str, message: str, code: str = "INVALID_INPUT") -> InvalidInput:
    return InvalidInput(f"{field}: {message}", code=code, field=field)


def check_choice(value: str | None, choices: Iterable[str], field: str) -> None:
    choices = tuple(choices)
    if value is not None and value not in choices:
        raise problem(field, f"must be one of {', '.join(choices)}, got {value!r}")


def check_code(code: str | None, field: str, *, required: bool) -> None:
    if code is None:
        if required:
            raise problem(field, "is required")
        return
    if not CODE_PATTERN.match(code):
        raise problem(field, "must be 1-32 letters, digits, '-', '_' or '.', starting with a letter or digit")


def check_name(name: str | None, field: str) -> None:
    if name is not None and not name.strip():
        raise problem(field, "must not be blank")
    if name is not None and len(name) > 200:
        raise problem(field, "must be at most 200 characters")


def check_time_zone(zone: str | None, field: str) -> None:
    if zone is None:
        return
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise problem(field, f"{zone!r} is not an IANA time zone such as Asia/Shanghai") from None


def check_non_negative(value: int | None, field: str, *, minimum: int = 0, maximum: int = 1_000_000) -> None:
    if value is not None and not (minimum <= value <= maximum):
        raise problem(field, f"must be between {minimum} and {maximum}, got {value}")


def check_opening_hours(hours: list[dict] | None, field: str) -> None:
    """Opening hours: a list of {days: "mon-fri" | "sat" | "mon,wed", open: "HH:MM", close: "HH:MM"}.
    A close earlier than open means the period runs past midnight."""
    if hours is None:
        return
    if not isinstance(hours, list):
        raise problem(field, "must be a list of {days, open, close} periods")
    for index, period in enumerate(hours):
        where = f"{field}[{index}]"
        if not isinstance(period, dict) or set(period) != {"days", "open", "close"}:
            raise problem(where, "must have exactly the keys days, open and close")
        days = str(period["days"]).lower()
        for part in days.split(","):
            ends = part.split("-")
            if len(ends) > 2 or any(end not in WEEKDAYS for end in ends):
                raise problem(where, f"days {period['days']!r} must be weekdays like mon-fri or sat,sun")
        for key in ("open", "close"):
            if not isinstance(period[key], str) or not TIME_PATTERN.match(period[key]):
                raise problem(where, f"{key} must be HH:MM (00:00-24:00), got {period[key]!r}")
        if period["open"] == period["close"]:
            raise problem(where, "open and close must differ (use 00:00-24:00 for all day)")


def check_facility_fields(kind: str, fields: dict, prefix: str = "input") -> None:
    """Field rules for a facility of `kind`; `fields` holds only what the caller set."""
    check_choice(kind, FACILITY_KINDS, f"{prefix}.kind")
    check_name(fields.get("name"), f"{prefix}.name")
    check_code(fields.get("code"), f"{prefix}.code", required=kind == "curb_zone" and "code" in fields)
    check_time_zone(fields.get("time_zone"), f"{prefix}.timeZone")
    check_non_negative(fields.get("capacity"), f"{prefix}.capacity")
    check_non_negative(fields.get("levels"), f"{prefix}.levels", minimum=1, maximum=50)
    check_non_negative(fields.get("max_vehicle_height_cm"), f"{prefix}.maxVehicleHeightCm", minimum=100, maximum=1000)
    check_opening_hours(fields.get("opening_hours"), f"{prefix}.openingHours")
    check_choice(fields.get("side"), CURB_SIDES, f"{prefix}.side")
    check_choice(fields.get("parking_angle"), PARKING_ANGLES, f"{prefix}.parkingAngle")
    lot_only = ("capacity", "levels", "opening_hours", "max_vehicle_height_cm", "entrances")
    curb_only = ("street_name", "side", "parking_angle")
    wrong = [name for name in (curb_only if kind == "lot" else lot_only) if fields.get(name) is not None]
    if wrong:
        raise problem(f"{prefix}.{wrong[0]}", f"does not apply to a {kind.replace('_', ' ')}")


def check_lane_fields(fields: dict, prefix: str = "input") -> None:
    check_name(fields.get("name"), f"{prefix}.name")
    check_choice(fields.get("direction"), LANE_DIRECTIONS, f"{prefix}.direction")


def check_space_fields(fields: dict, prefix: str = "input") -> None:
    check_code(fields.get("code"), f"{prefix}.code", required="code" in fields)
    check_choice(fields.get("size_class"), SIZE_CLASSES, f"{prefix}.sizeClass")
    check_choice(fields.get("status"), SPACE_STATUSES, f"{prefix}.status")
    level = fields.get("level")
    if level is not None and not (-10 <= level <= 100):
        raise problem(f"{prefix}.level", f"must be between -10 and 100, got {level}")


def check_bulk_size(count: int, field: str) -> None:
    if count == 0:
        raise problem(field, "must not be empty")
    if count > MAX_BULK:
        raise problem(field, f"at most {MAX_BULK} items per call, got {count}", code="TOO_MANY_ITEMS")


def duplicate_codes(codes: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for code in codes:
        if code in seen and code not in repeated:
            repeated.append(code)
        seen.add(code)
    return repeated


# ------------------------------------------------------------------------------------------------ devices

# What each kind of device may be bound to: a space, a curb zone as a whole, or a lane of a lot.
DEVICE_TARGETS = ("space", "curb_zone", "lane")
TARGETS_BY_DEVICE_KIND = {
    "geomagnetic_sensor": ("space",),
    "curb_camera": ("curb_zone", "space"),
    "lane_camera": ("lane",),
    "gate_controller": ("lane",),
}
# The input fields that name a binding, and the target each names; exactly one is given.
BINDING_FIELDS = {"space_id": "space", "space_code": "space", "facility_id": "curb_zone", "lane_id": "lane"}
BINDING_INPUT_NAMES = {
    "space_id": "spaceId",
    "space_code": "spaceCode",
    "facility_id": "facilityId",
    "lane_id": "laneId",
}
DEVICE_ID_MAX_LENGTH = 255
# A LoRaWAN DevEUI as people write it: 16 hex digits, in pairs separated by nothing, ':', '-' or spaces.
DEV_EUI_PATTERN = re.compile(r"^[0-9A-Fa-f]{2}(?:[\s:-]?[0-9A-Fa-f]{2}){7}$")
MIN_OFFLINE_AFTER_S = 60
MAX_OFFLINE_AFTER_S = 7 * 24 * 3600


def check_device_kind(kind: str | None, field: str) -> str:
    if kind is None:
        raise problem(field, "is required")
    check_choice(kind, DEVICE_KINDS, field)
    return kind


def normalize_external_id(external_id: str | None, field: str) -> str:
    """The id a device's sender uses for it: a DevEUI becomes 16 upper-case hex digits (as the LoRaWAN
    connectors report it); any other id is only trimmed."""
    if not isinstance(external_id, str) or not external_id.strip():
        raise problem(field, "is required")
    trimmed = external_id.strip()
    if len(trimmed) > DEVICE_ID_MAX_LENGTH:
        raise problem(field, f"must be at most {DEVICE_ID_MAX_LENGTH} characters")
    if DEV_EUI_PATTERN.match(trimmed):
        return re.sub(r"[\s:-]", "", trimmed).upper()
    return trimmed


def check_offline_after(seconds: int | None, field: str) -> None:
    """How long a device may stay silent before it counts as offline: a minute to a week."""
    check_non_negative(seconds, field, minimum=MIN_OFFLINE_AFTER_S, maximum=MAX_OFFLINE_AFTER_S)


def binding_field(fields: dict, prefix: str) -> str | None:
    """Which binding field the caller gave (None when none); more than one is refused."""
    given = [name for name in BINDING_FIELDS if fields.get(name) is not None]
    if len(given) > 1:
        names = ", ".join(BINDING_INPUT_NAMES[name] for name in given)
        raise problem(prefix, f"bind the device to exactly one of a space, a curb zone or a lane; got {names}")
    return given[0] if given else None


def check_device_target(kind: str, target: str, field: str) -> None:
    """A geomagnetic sensor watches one space; lane cameras and gate controllers stand at a lane; a curb
    camera watches a curb zone or one space."""
    allowed = TARGETS_BY_DEVICE_KIND[kind]
    if target not in allowed:
        wanted = " or ".join(name.replace("_", " ") for name in allowed)
        raise problem(
            field,
            f"a {kind.replace('_', ' ')} binds to a {wanted}, not a {target.replace('_', ' ')}",
            code="BINDING_NOT_ALLOWED",
        )
