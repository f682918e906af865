"""The demo city, generated: pure and deterministic (the same spec gives the same rows, ids included).

Shenzhen, with most supply in its dense districts. Operators own off-street lots (a rectangle of bays
on one or more levels, entrances and lanes) and on-street curb zones (a straight stretch of kerb with
bays along it). Rows come out as named tuples in the tables' column order, with geometries already
encoded as EWKB (SRID 4326), so the loader can hand them to COPY as they are.

Planning (tenants, facilities, lanes) is one sequential pass over one random stream; each facility's
spaces come from a stream of their own, so they can be generated lazily, in any batch size, and still
come out the same. Ids come from separate streams that also depend on the slug suffix, so two cities
that differ only in their suffix have the same shape but never share a primary key.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple, TypeVar

import shapely
from shapely.geometry import LineString, MultiPoint, MultiPolygon, Point, Polygon, box

from hub.seed.places import (
    DISTRICTS,
    OPERATORS,
    District,
    OperatorProfile,
)

T = TypeVar("T")

DEFAULT_SEED = 20240601
DEFAULT_SPACES = 20_000
MAX_SPACES = 5_000_000
TIME_ZONE = "Asia/Shanghai"
SRID = 4326

# The service area every demo operator is given: Shenzhen's extent.
SERVICE_AREA_BOUNDS = (113.75, 22.40, 114.65, 22.87)
# Facilities keep this far (degrees, ~500 m) inside the service area so whole lots and kerbs fit.
PLACEMENT_MARGIN_DEG = 0.005

METRES_PER_DEG_LAT = 110_574.0
METRES_PER_DEG_LON_AT_EQUATOR = 111_320.0

# A status confirmed longer ago than this counts as unknown (hub.config's default staleness).
STALE_AFTER = timedelta(minutes=30)
STALE_SHARE = 0.10
OUT_OF_SERVICE_SHARE = 0.022
RESERVED_SHARE = 0.033
# Facilities differ in how full they are; the mean vacancy (among bays that are neither reserved nor
# out of service) is about 0.35 / 0.90 of all bays, so with 10% stale about 35% read as vacant.
VACANCY_BETA = (3.5, 5.5)

OPEN_ALL_DAY = [{"days": "mon-sun", "open": "00:00", "close": "24:00"}]
OPENING_HOURS_CHOICES: tuple[tuple[list[dict[str, str]], float], ...] = (
    (OPEN_ALL_DAY, 0.65),
    ([{"days": "mon-sun", "open": "08:00", "close": "23:30"}], 0.15),
    (
        [
            {"days": "mon-fri", "open": "07:00", "close": "22:00"},
            {"days": "sat-sun", "open": "09:00", "close": "20:00"},
        ],
        0.12,
    ),
    ([{"days": "mon-sun", "open": "06:00", "close": "22:00"}], 0.08),
)


CURB_EV_SHARE = 0.03
ACCESSIBLE_SHARE_LOT = 0.025
ACCESSIBLE_SHARE_CURB = 0.012
SIZE_MIX_LOT = (("standard", 0.82), ("compact", 0.10), ("large", 0.05), ("motorcycle", 0.03))
SIZE_MIX_CURB = (("standard", 0.74), ("compact", 0.10), ("large", 0.04), ("motorcycle", 0.12))

# Bay geometry in metres: a lot cell is one bay's width by its depth plus half an aisle.
LOT_CELL_WIDTH_M = 2.6
LOT_CELL_DEPTH_M = 8.0
LOT_INSET_M = 3.0
LANE_SPACING_M = 3.5
CURB_BAY_LENGTH_M = {"parallel": 6.0, "perpendicular": 2.6, "angled": 3.2}
CURB_BAY_OFFSET_M = 1.5
CURB_END_GAP_M = 1.0

LotStyle = Literal["surface", "underground", "multi_storey"]
STYLE_LABELS: dict[str, str] = {
    "surface": "Surface Car Park",
    "underground": "Underground Car Park",
    "multi_storey": "Multi-storey Car Park",
}


class TenantRow(NamedTuple):
    id: uuid.UUID
    slug: str
    name: str
    time_zone: str
    currency: str
    platform_fee_bps: int
    service_area: bytes


class FacilityRow(NamedTuple):
    tenant_id: uuid.UUID
    id: uuid.UUID
    kind: str
    name: str
    code: str
    geom: bytes
    time_zone: str
    address: str | None
    capacity: int
    levels: int | None
    opening_hours: list[dict[str, str]] | None
    max_vehicle_height_cm: int | None
    entrances: bytes | None
    street_name: str | None
    side: str | None
    parking_angle: str | None


class LaneRow(NamedTuple):
    tenant_id: uuid.UUID
    id: uuid.UUID
    facility_id: uuid.UUID
    name: str
    direction: str
    location: bytes


class SpaceRow(NamedTuple):
    tenant_id: uuid.UUID
    id: uuid.UUID
    facility_id: uuid.UUID
    facility_kind: str
    code: str
    geom: bytes
    location: bytes
    level: int | None
    ev_charger: bool
    accessible: bool
    size_class: str
    covered: bool
    shared: bool
    status: str
    status_confirmed_at: datetime


@dataclass(frozen=True)
class DemoSpec:
    """What to build. `slug_suffix` is appended to every operator slug and varies the ids, so several
    demo cities can share one database (the tests do this)."""

    spaces: int = DEFAULT_SPACES
    seed: int = DEFAULT_SEED
    slug_suffix: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.spaces <= MAX_SPACES:
            raise ValueError(f"spaces must be between 1 and {MAX_SPACES:,}, got {self.spaces:,}")
        if self.slug_suffix and not all(ch.isalnum() or ch == "-" for ch in self.slug_suffix):
            raise ValueError(f"slug suffix may hold only letters, digits and '-', got {self.slug_suffix!r}")


@dataclass(frozen=True)
class LocalFrame:
    """Metres east/north of an anchor, turned by a bearing, mapped to lon/lat.

    Facilities are at most a few hundred metres across, where this map is affine to well under a
    centimetre, so a point inside the local rectangle is inside the mapped polygon."""

    lon: float
    lat: float
    bearing_rad: float

    def to_lon_lat(self, along_m: float, across_m: float) -> tuple[float, float]:
        cos_b, sin_b = math.cos(self.bearing_rad), math.sin(self.bearing_rad)
        east = along_m * cos_b - across_m * sin_b
        north = along_m * sin_b + across_m * cos_b
        lon = self.lon + east / (METRES_PER_DEG_LON_AT_EQUATOR * math.cos(math.radians(self.lat)))
        lat = self.lat + north / METRES_PER_DEG_LAT
        return lon, lat


@dataclass(frozen=True)
class LotLayout:
    frame: LocalFrame
    columns: int
    rows: int
    # Level numbers from the lowest: -2, -1 underground; 1, 2, 3 above ground.
    level_numbers: tuple[int, ...]
    uncovered_levels: frozenset[int]

    @property
    def width_m(self) -> float:
        return self.columns * LOT_CELL_WIDTH_M + 2 * LOT_INSET_M

    @property
    def depth_m(self) -> float:
        return self.rows * LOT_CELL_DEPTH_M + 2 * LOT_INSET_M

    def bay_centre(self, cell: int) -> tuple[float, float]:
        column, row = cell % self.columns, cell // self.columns
        along = -self.width_m / 2 + LOT_INSET_M + (column + 0.5) * LOT_CELL_WIDTH_M
        across = -self.depth_m / 2 + LOT_INSET_M + (row + 0.5) * LOT_CELL_DEPTH_M
        return along, across


@dataclass(frozen=True)
class CurbLayout:
    frame: LocalFrame
    bay_length_m: float
    side: str

    def bay_centre(self, number: int) -> tuple[float, float]:
        # Bays sit just off the kerb line on the zone's side; on "both" they pair up across it.
        position = number // 2 if self.side == "both" else number
        along = CURB_END_GAP_M + (position + 0.5) * self.bay_length_m
        sign = {"left": 1.0, "right": -1.0}.get(self.side, 1.0 if number % 2 == 0 else -1.0)
        return along, sign * CURB_BAY_OFFSET_M


@dataclass(frozen=True)
class FacilityPlan:
    index: int
    row: FacilityRow
    district: District
    operator: OperatorProfile
    layout: LotLayout | CurbLayout
    space_count: int
    lanes: tuple[LaneRow, ...]


@dataclass(frozen=True)
class CityPlan:
    spec: DemoSpec
    tenants: tuple[TenantRow, ...]
    facilities: tuple[FacilityPlan, ...]

    @property
    def lanes(self) -> list[LaneRow]:
        return [lane for facility in self.facilities for lane in facility.lanes]

    @property
    def space_count(self) -> int:
        return sum(facility.space_count for facility in self.facilities)

    def spaces_of(self, facility: FacilityPlan, now: datetime) -> list[SpaceRow]:
        return _spaces_of(self.spec, facility, now)

    def iter_spaces(self, now: datetime, batch_size: int = 50_000) -> Iterator[list[SpaceRow]]:
        """Every space, in batches of about `batch_size` (whole facilities per batch)."""
        batch: list[SpaceRow] = []
        for facility in self.facilities:
            batch.extend(self.spaces_of(facility, now))
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


def ewkb(geometry: shapely.Geometry) -> bytes:
    return shapely.to_wkb(shapely.set_srid(geometry, SRID), include_srid=True)


def service_area() -> MultiPolygon:
    return MultiPolygon([box(*SERVICE_AREA_BOUNDS)])


def random_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def weighted_choice(rng: random.Random, options: Sequence[tuple[T, float]]) -> T:
    total = sum(weight for _, weight in options)
    pick = rng.random() * total
    for value, weight in options:
        pick -= weight
        if pick < 0:
            return value
    return options[-1][0]


def sample_point_in(rng: random.Random, district: District) -> tuple[float, float]:
    """A point scattered around the district's centre, kept inside the service area."""
    west, south, east, north = SERVICE_AREA_BOUNDS
    for _ in range(50):
        east_m, north_m = rng.gauss(0, district.spread_m), rng.gauss(0, district.spread_m)
        lon = district.lon + east_m / (METRES_PER_DEG_LON_AT_EQUATOR * math.cos(math.radians(district.lat)))
        lat = district.lat + north_m / METRES_PER_DEG_LAT
        if (
            west + PLACEMENT_MARGIN_DEG < lon < east - PLACEMENT_MARGIN_DEG
            and south + PLACEMENT_MARGIN_DEG < lat < north - PLACEMENT_MARGIN_DEG
        ):
            return lon, lat
    return district.lon, district.lat


def plan_city(spec: DemoSpec) -> CityPlan:
    """Tenants, facilities and lanes, sized so the facilities hold exactly `spec.spaces` spaces."""
    rng = random.Random(f"parkhub-demo:{spec.seed}:city")
    ids = random.Random(f"parkhub-demo:{spec.seed}:{spec.slug_suffix}:city-ids")
    area = ewkb(service_area())
    tenants = tuple(
        TenantRow(random_uuid(ids), operator.slug + spec.slug_suffix, operator.name, TIME_ZONE, "CNY", 60, area)
        for operator in OPERATORS
    )
    tenant_of = {operator.slug: tenant for operator, tenant in zip(OPERATORS, tenants, strict=True)}
    district_options = [(district, district.weight) for district in DISTRICTS]
    numbering: dict[tuple[str, str, str], int] = {}

    facilities: list[FacilityPlan] = []
    remaining = spec.spaces
    while remaining > 0:
        district = weighted_choice(rng, district_options)
        operator = _pick_operator(rng, district)
        is_lot = rng.random() < operator.lot_share
        kind = "lot" if is_lot else "curb_zone"
        key = (operator.slug, district.code, kind)
        numbering[key] = numbering.get(key, 0) + 1
        tenant = tenant_of[operator.slug]
        if is_lot:
            plan = _plan_lot(rng, ids, len(facilities), tenant, operator, district, numbering[key], remaining)
        else:
            plan = _plan_curb_zone(rng, ids, len(facilities), tenant, operator, district, numbering[key], remaining)
        facilities.append(plan)
        remaining -= plan.space_count
    return CityPlan(spec, tenants, tuple(facilities))


def _pick_operator(rng: random.Random, district: District) -> OperatorProfile:
    options = [(op, op.district_affinity.get(district.code, 0.0)) for op in OPERATORS]
    return weighted_choice(rng, [(op, weight) for op, weight in options if weight > 0])


def _plan_lot(
    rng: random.Random,
    ids: random.Random,
    index: int,
    tenant: TenantRow,
    operator: OperatorProfile,
    district: District,
    number: int,
    remaining: int,
) -> FacilityPlan:
    capacity = min(remaining, max(15, min(800, round(rng.lognormvariate(math.log(75), 0.6)))))
    style: LotStyle
    if capacity < 60:
        style = "surface" if rng.random() < 0.6 else "underground"
    else:
        style = weighted_choice(rng, [("underground", 0.55), ("multi_storey", 0.35), ("surface", 0.10)])
    if style == "surface":
        level_numbers: tuple[int, ...] = (1,)
        uncovered = frozenset({1})
        max_height: int | None = None
    else:
        per_level = rng.randint(80, 250)
        if style == "underground":
            count = max(1, min(4, math.ceil(capacity / per_level)))
            level_numbers = tuple(range(-count, 0))
            uncovered = frozenset()
            max_height = rng.choice((200, 210, 210, 220))
        else:
            count = max(2, min(6, math.ceil(capacity / per_level)))
            level_numbers = tuple(range(1, count + 1))
            uncovered = frozenset({count})  # the roof deck
            max_height = rng.choice((210, 220, 230))
    per_level_bays = math.ceil(capacity / len(level_numbers))
    aspect = rng.uniform(1.0, 2.5)
    rows = max(1, round(math.sqrt(per_level_bays * LOT_CELL_WIDTH_M / (LOT_CELL_DEPTH_M * aspect))))
    columns = math.ceil(per_level_bays / rows)
    lon, lat = sample_point_in(rng, district)
    bearing = math.radians(district.street_bearing_deg + rng.choice((0, 90)) + rng.gauss(0, 4))
    layout = LotLayout(LocalFrame(lon, lat, bearing), columns, rows, level_numbers, uncovered)

    half_w, half_d = layout.width_m / 2, layout.depth_m / 2
    corners = [(-half_w, -half_d), (half_w, -half_d), (half_w, half_d), (-half_w, half_d)]
    outline = Polygon([layout.frame.to_lon_lat(a, c) for a, c in corners])
    # Entrances on the middle of the front edge, and on the back edge for bigger lots.
    entrance_local = [(0.0, -half_d)] + ([(0.0, half_d)] if capacity >= 150 else [])
    entrances = MultiPoint([layout.frame.to_lon_lat(a, c) for a, c in entrance_local])

    facility_id = random_uuid(ids)
    lane_count = 1 if capacity < 30 else 2 if capacity < 150 else rng.randint(3, 4)
    lanes: list[LaneRow] = []
    per_direction = {"entry": 0, "exit": 0}
    for lane_index in range(lane_count):
        direction = "entry" if lane_index % 2 == 0 else "exit"
        per_direction[direction] += 1
        along_entrance, across_entrance = entrance_local[lane_index // 2 % len(entrance_local)]
        offset = (-0.5 if direction == "entry" else 0.5) * LANE_SPACING_M
        location = layout.frame.to_lon_lat(along_entrance + offset, across_entrance)
        lanes.append(
            LaneRow(
                tenant.id,
                random_uuid(ids),
                facility_id,
                f"{direction.capitalize()} {per_direction[direction]}",
                direction,
                ewkb(Point(location)),
            )
        )

    code = f"{district.code}-P{number:04d}"
    landmark = rng.choice(district.landmarks)
    row = FacilityRow(
        tenant_id=tenant.id,
        id=facility_id,
        kind="lot",
        name=f"{landmark} {STYLE_LABELS[style]}",
        code=code,
        geom=ewkb(outline),
        time_zone=TIME_ZONE,
        address=f"{rng.randint(1, 3999)} {rng.choice(district.streets)}, {district.name} District, Shenzhen",
        capacity=capacity,
        levels=len(level_numbers),
        opening_hours=weighted_choice(rng, OPENING_HOURS_CHOICES),
        max_vehicle_height_cm=max_height,
        entrances=ewkb(entrances),
        street_name=None,
        side=None,
        parking_angle=None,
    )
    return FacilityPlan(index, row, district, operator, layout, capacity, tuple(lanes))


def _plan_curb_zone(
    rng: random.Random,
    ids: random.Random,
    index: int,
    tenant: TenantRow,
    operator: OperatorProfile,
    district: District,
    number: int,
    remaining: int,
) -> FacilityPlan:
    angle = weighted_choice(rng, [("parallel", 0.65), ("perpendicular", 0.20), ("angled", 0.15)])
    bays = {"parallel": rng.randint(4, 16), "perpendicular": rng.randint(8, 30), "angled": rng.randint(6, 24)}[angle]
    bays = min(bays, remaining)
    side = weighted_choice(rng, [("left", 0.45), ("right", 0.45), ("both", 0.10)])
    bay_length = CURB_BAY_LENGTH_M[angle]
    # Bays on both sides pair up, so the kerb is half as long.
    along_bays = math.ceil(bays / 2) if side == "both" else bays
    length = along_bays * bay_length + 2 * CURB_END_GAP_M
    lon, lat = sample_point_in(rng, district)
    bearing = math.radians(district.street_bearing_deg + rng.choice((0, 90, 180, 270)) + rng.gauss(0, 4))
    layout = CurbLayout(LocalFrame(lon, lat, bearing), bay_length, side)
    kerb = LineString([layout.frame.to_lon_lat(0, 0), layout.frame.to_lon_lat(length, 0)])
    street = rng.choice(district.streets)
    code = f"{district.code}-{number:04d}"
    row = FacilityRow(
        tenant_id=tenant.id,
        id=random_uuid(ids),
        kind="curb_zone",
        name=f"{street} curb zone {code}",
        code=code,
        geom=ewkb(kerb),
        time_zone=TIME_ZONE,
        address=f"{street}, {district.name} District, Shenzhen",
        capacity=bays,
        levels=None,
        opening_hours=None,
        max_vehicle_height_cm=None,
        entrances=None,
        street_name=street,
        side=side,
        parking_angle=angle,
    )
    return FacilityPlan(index, row, district, operator, layout, bays, ())


def _level_label(level: int, levels: int) -> str:
    if levels == 1 and level == 1:
        return ""
    return f"B{-level}-" if level < 0 else f"L{level}-"


def _spaces_of(spec: DemoSpec, facility: FacilityPlan, now: datetime) -> list[SpaceRow]:
    rng = random.Random(f"parkhub-demo:{spec.seed}:spaces:{facility.index}")
    ids = random.Random(f"parkhub-demo:{spec.seed}:{spec.slug_suffix}:space-ids:{facility.index}")
    row, layout, operator = facility.row, facility.layout, facility.operator
    is_lot = isinstance(layout, LotLayout)
    code_stem = row.code.replace("-", "")
    vacancy = min(0.94, rng.betavariate(*VACANCY_BETA) / (1 - OUT_OF_SERVICE_SHARE - RESERVED_SHARE))

    placements: list[tuple[int | None, str, tuple[float, float], bool]] = []
    if isinstance(layout, LotLayout):
        per_level = layout.columns * layout.rows
        for number in range(facility.space_count):
            level = layout.level_numbers[number // per_level]
            cell = number % per_level
            label = f"{code_stem}-{_level_label(level, len(layout.level_numbers))}{cell + 1:03d}"
            covered = level not in layout.uncovered_levels
            placements.append((level, label, layout.frame.to_lon_lat(*layout.bay_centre(cell)), covered))
    else:
        for number in range(facility.space_count):
            xy = layout.frame.to_lon_lat(*layout.bay_centre(number))
            placements.append((None, f"{code_stem}-{number + 1:03d}", xy, False))

    points = shapely.to_wkb(
        shapely.set_srid(shapely.points([xy for _, _, xy, _ in placements]), SRID), include_srid=True
    )
    ev_share = operator.ev_share_lot if is_lot else CURB_EV_SHARE
    accessible_share = ACCESSIBLE_SHARE_LOT if is_lot else ACCESSIBLE_SHARE_CURB
    shared_share = operator.shared_share_lot if is_lot else 0.0
    size_mix = SIZE_MIX_LOT if is_lot else SIZE_MIX_CURB

    spaces: list[SpaceRow] = []
    for (level, code, _, covered), point in zip(placements, points, strict=True):
        roll = rng.random()
        if roll < OUT_OF_SERVICE_SHARE:
            status = "out_of_service"
        elif roll < OUT_OF_SERVICE_SHARE + RESERVED_SHARE:
            status = "reserved"
        else:
            status = "vacant" if rng.random() < vacancy else "occupied"
        if rng.random() < STALE_SHARE:
            age = timedelta(seconds=rng.uniform(STALE_AFTER.total_seconds() + 60, 36 * 3600))
        else:
            age = timedelta(seconds=min(rng.expovariate(1 / 90), 20 * 60))
        spaces.append(
            SpaceRow(
                tenant_id=row.tenant_id,
                id=random_uuid(ids),
                facility_id=row.id,
                facility_kind=row.kind,
                code=code,
                geom=point,
                location=point,
                level=level,
                ev_charger=rng.random() < ev_share,
                accessible=rng.random() < accessible_share,
                size_class=weighted_choice(rng, size_mix),
                covered=covered,
                shared=rng.random() < shared_share,
                status=status,
                status_confirmed_at=now - age,
            )
        )
    return spaces
