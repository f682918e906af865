"""Supply use cases: find-a-space, facilities, lanes, spaces and devices, occupancy.

Services authorize the caller, validate everything before writing anything, and leave the commit to the
caller, so a rejected call writes nothing. Bulk calls validate every item and report every problem found."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shapely.geometry import MultiPoint
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep
from sqlalchemy.ext.asyncio import AsyncSession

import geo
from hub.config import get_settings
from hub.errors import DomainError, Forbidden, InvalidInput, NotFound
from hub.history import service as history
from hub.live import after_commit
from hub.live.events import OccupancyChange
from hub.pricing import service as pricing
from hub.principal import Principal, require_operator_admin, tenant_filter
from hub.supply import repository, rules
from hub.supply.rules import DeviceHealth, Occupancy, problem
from tenants import service as tenants_service

MAX_FIRST = 100
MAX_RADIUS_M = 10_000.0
# Filtering or sorting by price looks at this many nearest matching spaces within the radius (each priced under
# its facility's tariff); a space farther out than these is not considered, however cheap.
MAX_PRICED_CANDIDATES = 500
SPACE_SORTS = ("distance", "price")
# A curb space may sit a little off its drawn curb line (the line is the kerb, the bay is beside it).
CURB_SPACE_TOLERANCE_M = 30.0
# A lot space drawn a metre or two over the lot's edge is a drawing error, not a reason to refuse the import.
LOT_SPACE_TOLERANCE_M = 5.0
METRES_PER_DEGREE = 111_320.0


def now_utc() -> datetime:
    return datetime.now(UTC)


def confirmed_after(now: datetime) -> datetime:
    """Sensed statuses confirmed before this instant count as unknown."""
    return now - timedelta(seconds=get_settings().status_stale_after_seconds)


# ------------------------------------------------------------------------------------------ authorization


def require_occupancy_reader(principal: Principal) -> None:
    if principal.kind not in ("city", "platform", "operator"):
        raise Forbidden("occupancy statistics are for the city and operators", required_role="city")


# ------------------------------------------------------------------------------------------ find-a-space


@dataclass(frozen=True, slots=True)
class NearbySpace:
    """One find-a-space result: the search row (space, facility and operator columns) and, when a planned
    stay was given, what the stay would cost there (None: the facility has no tariff in effect then)."""

    row: repository.Row
    quoted_price_fen: int | None = None


async def search_spaces_near(
    session: AsyncSession,
    principal: Principal,
    *,
    lon: float,
    lat: float,
    radius_m: float,
    first: int = 20,
    vacant_only: bool = False,
    ev_charger: bool | None = None,
    accessible: bool | None = None,
    facility_kind: str | None = None,
    planned_stay: tuple[datetime, datetime] | None = None,
    vehicle_class: str = pricing.DEFAULT_VEHICLE_CLASS,
    max_price_fen: int | None = None,
    sort_by: str = "distance",
) -> list[NearbySpace]:
    """The nearest matching spaces, nearest first. With a planned stay each result carries its quoted price;
    `max_price_fen` then drops the spaces above it (and those with no tariff), and `sort_by="price"` orders
    by price (no tariff last), then distance. Both consider the MAX_PRICED_CANDIDATES nearest matches."""
    if not (-180.0 <= lon <= 180.0) or not (-90.0 <= lat <= 90.0):
        raise InvalidInput(
            f"lon must be within -180..180 and lat within -90..90 (got lon={lon}, lat={lat}); "
            "coordinates are longitude first",
            code="COORDINATES_OUT_OF_RANGE",
            field="lon" if not (-180.0 <= lon <= 180.0) else "lat",
        )
    if not (0 < radius_m <= MAX_RADIUS_M):
        raise problem("radiusMeters", f"must be more than 0 and at most {MAX_RADIUS_M:g}, got {radius_m:g}")
    if not (1 <= first <= MAX_FIRST):
        raise problem("first", f"must be between 1 and {MAX_FIRST}, got {first}")
    rules.check_choice(facility_kind, ("lot", "curb_zone"), "filter.facilityKind")
    rules.check_choice(sort_by, SPACE_SORTS, "sortBy")
    by_price = max_price_fen is not None or sort_by == "price"
    if by_price and planned_stay is None:
        raise problem("filter.plannedStay", "give the planned stay to filter or sort by price")
    if max_price_fen is not None and max_price_fen < 0:
        raise problem("filter.maxPriceFen", f"must be 0 or more, got {max_price_fen}")
    if planned_stay is not None:
        pricing.check_vehicle_class(vehicle_class, "filter.vehicleClass")
        pricing.check_stay(*planned_stay, prefix="filter.plannedStay.")
    rows = await repository.spaces_near(
        session,
        lon=lon,
        lat=lat,
        radius_m=radius_m,
        first=MAX_PRICED_CANDIDATES if by_price else first,
        vacant_only=vacant_only,
        confirmed_after=confirmed_after(now_utc()),
        ev_charger=ev_charger,
        accessible=accessible,
        facility_kind=facility_kind,
        tenant_id=tenant_filter(principal),
        priced_at=None if planned_stay is None else planned_stay[0],
    )
    if planned_stay is None:
        return [NearbySpace(row) for row in rows]
    zones = {row["tariff_id"]: row["f_time_zone"] for row in rows if row["tariff_id"] is not None}
    prices = await pricing.stay_prices(session, zones, vehicle_class, *planned_stay)
    results = [NearbySpace(row, prices.get(row["tariff_id"])) for row in rows]
    if max_price_fen is not None:
        results = [
            item for item in results if item.quoted_price_fen is not None and item.quoted_price_fen <= max_price_fen
        ]
    if sort_by == "price":
        # Stable: rows came nearest first (then by id), so equal prices stay in distance order.
        results.sort(key=lambda item: (item.quoted_price_fen is None, item.quoted_price_fen or 0))
    return results[:first]


# ------------------------------------------------------------------------------------------------ reads


async def facilities_by_ids(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[repository.Row]:
    return await repository.facilities_by_ids(session, ids, tenant_filter(principal))


async def spaces_by_ids(session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]) -> list[repository.Row]:
    return await repository.spaces_by_ids(session, ids, tenant_filter(principal))


async def lanes_by_ids(session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]) -> list[repository.Row]:
    return await repository.lanes_by_ids(session, ids, tenant_filter(principal))


async def lanes_of_facilities(
    session: AsyncSession, principal: Principal, facility_ids: Sequence[uuid.UUID]
) -> list[repository.Row]:
    return await repository.lanes_of_facilities(session, facility_ids, tenant_filter(principal))


async def facilities_page(session: AsyncSession, principal: Principal, **criteria: Any) -> list[repository.Row]:
    if criteria.get("bbox") is not None:
        geo.validate_bbox(*criteria["bbox"], field="bbox")
    if criteria.get("within") is not None:
        criteria["within"] = geo.validate_geometry(
            criteria["within"], allowed=("Polygon", "MultiPolygon"), field="within", service_area=None
        )
    return await repository.facilities_page(session, tenant_id=tenant_filter(principal), **criteria)


async def spaces_page(session: AsyncSession, principal: Principal, **criteria: Any) -> list[repository.Row]:
    return await repository.spaces_page(session, tenant_id=tenant_filter(principal), **criteria)


def occupancy_from_row(row: repository.Row) -> Occupancy:
    known = row["vacant"] + row["occupied"] + row["reserved"] + row["out_of_service"]
    return Occupancy(
        total=row["total"],
        vacant=row["vacant"],
        occupied=row["occupied"],
        reserved=row["reserved"],
        out_of_service=row["out_of_service"],
        unknown=row["total"] - known,
    )


EMPTY_OCCUPANCY = Occupancy(0, 0, 0, 0, 0, 0)


async def occupancy_of_facilities(
    session: AsyncSession, principal: Principal, facility_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Occupancy]:
    rows = await repository.occupancy_by_facility(
        session, facility_ids, confirmed_after(now_utc()), tenant_filter(principal)
    )
    return {row["facility_id"]: occupancy_from_row(row) for row in rows}


async def occupancy_by_operator(session: AsyncSession, principal: Principal) -> list[tuple[uuid.UUID, Occupancy]]:
    require_occupancy_reader(principal)
    rows = await repository.occupancy_by_tenant(session, confirmed_after(now_utc()), tenant_filter(principal))
    return [(row["tenant_id"], occupancy_from_row(row)) for row in rows]


async def device_health_by_operator(session: AsyncSession, principal: Principal) -> dict[uuid.UUID, DeviceHealth]:
    require_occupancy_reader(principal)
    rows = await repository.device_health_by_tenant(session, tenant_filter(principal))
    return {row["tenant_id"]: DeviceHealth(total=row["total"], offline=row["offline"]) for row in rows}


async def occupancy_in_area(session: AsyncSession, principal: Principal, area: Any) -> Occupancy:
    require_occupancy_reader(principal)
    shape = geo.validate_geometry(area, allowed=("Polygon", "MultiPolygon"), field="area", service_area=None)
    row = await repository.occupancy_in_area(session, shape, confirmed_after(now_utc()), tenant_filter(principal))
    return occupancy_from_row(row)


# --------------------------------------------------------------------------------------------- validation


class Problems:
    """Collects every problem of a bulk call so the caller can fix them all at once."""

    LIMIT = 100

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, error: DomainError, index: int | None = None) -> None:
        if len(self.items) < self.LIMIT:
            entry = {"code": error.code, "message": error.message, **error.details}
            if index is not None:
                entry["index"] = index
            self.items.append(entry)

    def check(self, index: int | None, check: Callable[..., Any], *args: Any) -> Any:
        """Run `check(*args)`; a domain error becomes a recorded problem and the result None."""
        try:
            return check(*args)
        except DomainError as error:
            self.add(error, index)
            return None

    def raise_if_any(self, what: str) -> None:
        if not self.items:
            return
        first = self.items[0]
        if len(self.items) == 1:
            # One problem: its own code and field at the top, as a single-item call would give.
            details = {key: value for key, value in first.items() if key not in ("code", "message")}
            raise InvalidInput(
                f"{what} rejected, nothing was written: {first['message']}",
                code=first["code"],
                problems=self.items,
                **details,
            )
        raise InvalidInput(
            f"{what} rejected, nothing was written: {first['message']} (and {len(self.items) - 1} more)",
            code="INVALID_INPUT",
            problems=self.items,
        )


def _prefix(index: int | None) -> str:
    return "input" if index is None else f"input[{index}]"


async def _service_area(session: AsyncSession, tenant_id: uuid.UUID) -> BaseGeometry:
    tenant = await tenants_service.get_tenant(session, tenant_id)
    return geo.from_db(tenant.service_area)


def _as_multipoint(shape: BaseGeometry) -> BaseGeometry:
    return MultiPoint([shape]) if shape.geom_type == "Point" else shape


def _geometry(value: Any, allowed: Sequence[str], field: str, area: BaseGeometry) -> BaseGeometry:
    return geo.validate_geometry(value, allowed=allowed, field=field, service_area=area)


# ------------------------------------------------------------------------------------------- facilities

FACILITY_FIELDS = (
    "name",
    "code",
    "time_zone",
    "address",
    "capacity",
    "levels",
    "opening_hours",
    "max_vehicle_height_cm",
    "street_name",
    "side",
    "parking_angle",
)


def _facility_row(
    kind: str, item: dict[str, Any], index: int | None, area: BaseGeometry, default_zone: str
) -> dict[str, Any]:
    prefix = _prefix(index)
    rules.check_facility_fields(kind, item, prefix)
    if not item.get("name"):
        raise problem(f"{prefix}.name", "is required")
    row = {name: item.get(name) for name in FACILITY_FIELDS}
    row["kind"] = kind
    row["time_zone"] = item.get("time_zone") or default_zone
    row["geom"] = geo.to_db(_geometry(item.get("geometry"), rules.GEOMETRY_TYPES[kind], f"{prefix}.geometry", area))
    if item.get("entrances") is not None:
        entrances = _geometry(item["entrances"], rules.GEOMETRY_TYPES["entrances"], f"{prefix}.entrances", area)
        row["entrances"] = geo.to_db(_as_multipoint(entrances))
    return row


async def create_facilities(
    session: AsyncSession, principal: Principal, kind: str, items: Sequence[dict[str, Any]], *, bulk: bool = True
) -> list[repository.Row]:
    tenant_id = require_operator_admin(principal)
    rules.check_bulk_size(len(items), "input")
    tenant = await tenants_service.get_tenant(session, tenant_id)
    area = geo.from_db(tenant.service_area)
    problems = Problems()
    rows = []
    for index, item in enumerate(items):
        at = index if bulk else None
        row = problems.check(at, _facility_row, kind, item, at, area, tenant.time_zone)
        if row is not None:
            rows.append({**row, "tenant_id": tenant_id})
    codes = [row["code"] for row in rows if row.get("code")]
    for code in rules.duplicate_codes(codes):
        problems.add(problem("input", f"code {code!r} appears more than once", code="CODE_TAKEN"))
    for code in await repository.live_facility_codes_taken(session, tenant_id, codes):
        problems.add(problem("input", f"a live facility already has code {code!r}", code="CODE_TAKEN"))
    problems.raise_if_any("facilities")
    return await repository.insert_rows(session, "facilities", rows)


async def _live_facility(session: AsyncSession, principal: Principal, facility_id: uuid.UUID) -> repository.Row:
    rows = await repository.facilities_by_ids(session, [facility_id], tenant_filter(principal))
    if not rows or rows[0]["retired_at"] is not None:
        raise NotFound("no live facility with this id belongs to your operator", field="facilityId")
    return rows[0]


async def update_facility(
    session: AsyncSession, principal: Principal, facility_id: uuid.UUID, changes: dict[str, Any]
) -> repository.Row:
    tenant_id = require_operator_admin(principal)
    current = await _live_facility(session, principal, facility_id)
    rules.check_facility_fields(current["kind"], changes)
    values = {name: changes[name] for name in FACILITY_FIELDS if name in changes}
    # A facility always has these: they may be changed, never cleared.
    for required, field in (("name", "name"), ("time_zone", "timeZone"), ("geometry", "geometry")):
        if required in changes and not changes[required]:
            raise problem(f"input.{field}", "must not be blank")
    area = await _service_area(session, tenant_id)
    if "geometry" in changes:
        shape = _geometry(changes["geometry"], rules.GEOMETRY_TYPES[current["kind"]], "input.geometry", area)
        values["geom"] = geo.to_db(shape)
    if "entrances" in changes:
        entrances = changes["entrances"]
        values["entrances"] = (
            None
            if entrances is None
            else geo.to_db(
                _as_multipoint(_geometry(entrances, rules.GEOMETRY_TYPES["entrances"], "input.entrances", area))
            )
        )
    if values.get("code") and await repository.live_facility_codes_taken(
        session, tenant_id, [values["code"]], except_id=facility_id
    ):
        raise problem("input.code", f"a live facility already has code {values['code']!r}", code="CODE_TAKEN")
    updated = await repository.update_row(session, "facilities", tenant_id, facility_id, values)
    assert updated is not None  # checked live above, inside the same transaction
    return updated


async def retire_facility(session: AsyncSession, principal: Principal, facility_id: uuid.UUID) -> repository.Row:
    """Retire a facility with its lanes, spaces and devices; they disappear from search but stay for history."""
    tenant_id = require_operator_admin(principal)
    await _live_facility(session, principal, facility_id)
    now = now_utc()
    spaces = await repository.retire_facility_children(session, tenant_id, facility_id, now)
    await history.end_histories(session, tenant_id, spaces, now)
    retired = await repository.update_row(session, "facilities", tenant_id, facility_id, {"retired_at": now})
    assert retired is not None
    return retired


# ------------------------------------------------------------------------------------------------- lanes


def _lane_row(
    item: dict[str, Any],
    prefix: str,
    facilities: dict[uuid.UUID, repository.Row],
    tenant_id: uuid.UUID,
    area: BaseGeometry,
) -> dict[str, Any]:
    rules.check_lane_fields(item, prefix)
    facility = facilities.get(item.get("facility_id"))
    if facility is None:
        raise NotFound(f"{prefix}.facilityId: no live facility with this id", field=f"{prefix}.facilityId")
    if facility["kind"] != "lot":
        raise problem(f"{prefix}.facilityId", "lanes belong to off-street lots, not curb zones")
    if not item.get("name") or not item.get("direction"):
        raise problem(prefix, "name and direction are required")
    row = {"tenant_id": tenant_id, "facility_id": facility["id"], "name": item["name"]}
    row["direction"] = item["direction"]
    if item.get("location") is not None:
        row["location"] = geo.to_db(_geometry(item["location"], ("Point",), f"{prefix}.location", area))
    return row


async def create_lanes(
    session: AsyncSession, principal: Principal, items: Sequence[dict[str, Any]], *, bulk: bool = True
) -> list[repository.Row]:
    tenant_id = require_operator_admin(principal)
    rules.check_bulk_size(len(items), "input")
    area = await _service_area(session, tenant_id)
    facility_ids = {item.get("facility_id") for item in items}
    facilities = {
        row["id"]: row
        for row in await repository.facilities_by_ids(session, [f for f in facility_ids if f], tenant_id)
        if row["retired_at"] is None
    }
    problems = Problems()
    rows = []
    for index, item in enumerate(items):
        at = index if bulk else None
        prefix = _prefix(at)

        row = problems.check(at, _lane_row, item, prefix, facilities, tenant_id, area)
        if row is not None:
            rows.append(row)
    problems.raise_if_any("lanes")
    return await repository.insert_rows(session, "lanes", rows)


async def update_lane(
    session: AsyncSession, principal: Principal, lane_id: uuid.UUID, changes: dict[str, Any]
) -> repository.Row:
    tenant_id = require_operator_admin(principal)
    rules.check_lane_fields(changes)
    values = {name: changes[name] for name in ("name", "direction") if name in changes and changes[name] is not None}
    if "location" in changes:
        area = await _service_area(session, tenant_id)
        location = changes["location"]
        values["location"] = (
            None if location is None else geo.to_db(_geometry(location, ("Point",), "input.location", area))
        )
    updated = await repository.update_row(session, "lanes", tenant_id, lane_id, values)
    if updated is None:
        raise NotFound("no live lane with this id belongs to your operator", field="id")
    return updated


async def retire_lane(session: AsyncSession, principal: Principal, lane_id: uuid.UUID) -> repository.Row:
    """Retire a lane and the cameras and gate controllers bound to it (their ids become free for new ones)."""
    tenant_id = require_operator_admin(principal)
    now = now_utc()
    retired = await repository.update_row(session, "lanes", tenant_id, lane_id, {"retired_at": now})
    if retired is None:
        raise NotFound("no live lane with this id belongs to your operator", field="id")
    await repository.retire_bound_devices(session, tenant_id, now, "lane_id", [lane_id])
    return retired


# ------------------------------------------------------------------------------------------------ spaces

SPACE_FIELDS = ("code", "level", "ev_charger", "accessible", "size_class", "covered", "shared", "status")


def _space_fits_facility(shape: BaseGeometry, facility: dict[str, Any], field: str) -> None:
    """A lot space lies inside its lot; a curb space lies along its curb zone."""
    tolerance = LOT_SPACE_TOLERANCE_M if facility["kind"] == "lot" else CURB_SPACE_TOLERANCE_M
    outline = facility["_shape"]
    if facility["_prepared"].contains(shape):
        return
    if outline.distance(shape) * METRES_PER_DEGREE <= tolerance:
        return
    what = "inside its lot" if facility["kind"] == "lot" else f"within {tolerance:g} m of its curb zone"
    raise problem(field, f"the space must lie {what} ({facility['name']})", code="SPACE_OUTSIDE_FACILITY")


def _space_row(
    item: dict[str, Any],
    prefix: str,
    facilities: dict[uuid.UUID, dict[str, Any]],
    tenant_id: uuid.UUID,
    area: BaseGeometry,
    now: datetime,
) -> dict[str, Any]:
    rules.check_space_fields(item, prefix)
    if not item.get("code"):
        raise problem(f"{prefix}.code", "is required")
    facility = facilities.get(item.get("facility_id"))
    if facility is None:
        raise NotFound(
            f"{prefix}.facilityId: no live facility with this id belongs to your operator",
            field=f"{prefix}.facilityId",
        )
    shape = _geometry(item.get("geometry"), rules.GEOMETRY_TYPES["space"], f"{prefix}.geometry", area)
    _space_fits_facility(shape, facility, f"{prefix}.geometry")
    row = {name: item[name] for name in SPACE_FIELDS if item.get(name) is not None}
    row.update(
        tenant_id=tenant_id,
        facility_id=facility["id"],
        facility_kind=facility["kind"],
        geom=geo.to_db(shape),
        location=geo.to_db(geo.representative_point(shape)),
        # A status set by hand counts as confirmed now; without one the space is unknown until a sensor
        # or the operator says otherwise (stored vacant, never confirmed).
        status_confirmed_at=now if item.get("status") else None,
    )
    return row


async def create_spaces(
    session: AsyncSession, principal: Principal, items: Sequence[dict[str, Any]], *, bulk: bool = True
) -> list[repository.Row]:
    """Create up to 10,000 spaces in one transaction; all or nothing."""
    tenant_id = require_operator_admin(principal)
    rules.check_bulk_size(len(items), "input")
    area = await _service_area(session, tenant_id)
    facility_ids = list({item.get("facility_id") for item in items if item.get("facility_id")})
    facilities: dict[uuid.UUID, dict[str, Any]] = {}
    for row in await repository.facilities_by_ids(session, facility_ids, tenant_id):
        if row["retired_at"] is None:
            shape = geo.from_db(row["geom"])
            facilities[row["id"]] = {**row, "_shape": shape, "_prepared": prep(shape)}
    now = now_utc()
    problems = Problems()
    rows = []
    for index, item in enumerate(items):
        at = index if bulk else None
        prefix = _prefix(at)

        row = problems.check(at, _space_row, item, prefix, facilities, tenant_id, area, now)
        if row is not None:
            rows.append(row)
    codes = [row["code"] for row in rows]
    for code in rules.duplicate_codes(codes):
        problems.add(problem("input", f"space code {code!r} appears more than once", code="CODE_TAKEN"))
    for code in await repository.live_codes_taken(session, tenant_id, codes):
        problems.add(problem("input", f"a live space already has code {code!r}", code="CODE_TAKEN"))
    problems.raise_if_any("spaces")
    created = await repository.insert_rows(session, "spaces", rows)
    await history.record_statuses_set(
        session,
        tenant_id,
        [(row["id"], row["facility_id"], row["status"]) for row in created if row["status_confirmed_at"]],
        now,
    )
    return created


async def update_space(
    session: AsyncSession, principal: Principal, space_id: uuid.UUID, changes: dict[str, Any]
) -> repository.Row:
    tenant_id = require_operator_admin(principal)
    current = await repository.spaces_by_ids(session, [space_id], tenant_id)
    if not current or current[0]["retired_at"] is not None:
        raise NotFound("no live space with this id belongs to your operator", field="id")
    rules.check_space_fields(changes)
    values = {name: changes[name] for name in SPACE_FIELDS if changes.get(name) is not None}
    if "status" in values:
        values["status_confirmed_at"] = now_utc()
    code_changed = values.get("code") and values["code"] != current[0]["code"]
    if code_changed and await repository.live_codes_taken(session, tenant_id, [values["code"]]):
        raise problem("input.code", f"a live space already has code {values['code']!r}", code="CODE_TAKEN")
    if changes.get("geometry") is not None:
        area = await _service_area(session, tenant_id)
        facility = await _live_facility(session, principal, current[0]["facility_id"])
        shape = _geometry(changes["geometry"], rules.GEOMETRY_TYPES["space"], "input.geometry", area)
        outline = geo.from_db(facility["geom"])
        _space_fits_facility(shape, {**facility, "_shape": outline, "_prepared": prep(outline)}, "input.geometry")
        values["geom"] = geo.to_db(shape)
        values["location"] = geo.to_db(geo.representative_point(shape))
    updated = await repository.update_row(session, "spaces", tenant_id, space_id, values)
    assert updated is not None
    if "status" in values:
        at = values["status_confirmed_at"]
        await history.record_statuses_set(
            session, tenant_id, [(space_id, updated["facility_id"], updated["status"])], at
        )
        _stage_occupancy_change(session, current[0], updated, at)
    return updated


def _stage_occupancy_change(session: AsyncSession, before: repository.Row, after: repository.Row, at: datetime) -> None:
    """Live subscribers hear of a status set by hand as of a sensor's (published after the commit)."""
    stale_after = timedelta(seconds=get_settings().status_stale_after_seconds)
    previous = rules.effective_status(before["status"], before["status_confirmed_at"], at, stale_after)
    status = rules.effective_status(after["status"], after["status_confirmed_at"], at, stale_after)
    if previous == status:
        return
    point = geo.from_db(after["location"])
    change = OccupancyChange(
        tenant_id=after["tenant_id"],
        facility_id=after["facility_id"],
        space_id=after["id"],
        space_code=after["code"],
        status=status,
        previous_status=previous,
        changed_at=at,
        lon=point.x,
        lat=point.y,
    )
    after_commit.stage(session, after_commit.OCCUPANCY_CHANGES, [change])


async def retire_spaces(
    session: AsyncSession, principal: Principal, space_ids: Sequence[uuid.UUID]
) -> list[repository.Row]:
    """Retire spaces, end their history and retire the sensors bound to them; all or nothing."""
    tenant_id = require_operator_admin(principal)
    rules.check_bulk_size(len(space_ids), "ids")
    wanted = list(dict.fromkeys(space_ids))
    now = now_utc()
    retired = await repository.retire_spaces(session, tenant_id, wanted, now)
    if len(retired) != len(wanted):
        missing = next(space_id for space_id in wanted if space_id not in {row["id"] for row in retired})
        # Raising rolls the whole call back: the spaces already retired above are not kept.
        raise NotFound(f"no live space with id {missing} belongs to your operator", field="ids")
    await history.end_histories(session, tenant_id, wanted, now)
    await repository.retire_bound_devices(session, tenant_id, now, "space_id", wanted)
    order = {space_id: index for index, space_id in enumerate(wanted)}
    return sorted(retired, key=lambda row: order[row["id"]])
