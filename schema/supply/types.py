"""GraphQL types of the supply domain: facilities (lots and curb zones), lanes, spaces, occupancy."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay

import geo
from hub.supply import rules
from schema.context import Context, Info
from schema.relay import check_first, connection, decode_cursor, row_ids
from schema.scalars import GeoJSON

if TYPE_CHECKING:
    from schema.pricing.types import TariffVersion
    from schema.tenants.types import Operator

OperatorType = Annotated["Operator", strawberry.lazy("schema.tenants.types")]
TariffVersionType = Annotated["TariffVersion", strawberry.lazy("schema.pricing.types")]


@strawberry.enum
class FacilityKind(Enum):
    LOT = "lot"
    CURB_ZONE = "curb_zone"


@strawberry.enum(
    description="What a driver may rely on now: a sensed status older than the staleness window is UNKNOWN."
)
class SpaceStatus(Enum):
    VACANT = "vacant"
    OCCUPIED = "occupied"
    RESERVED = "reserved"
    OUT_OF_SERVICE = "out_of_service"
    UNKNOWN = "unknown"


@strawberry.enum
class SizeClass(Enum):
    MOTORCYCLE = "motorcycle"
    COMPACT = "compact"
    STANDARD = "standard"
    LARGE = "large"


@strawberry.enum
class LaneDirection(Enum):
    ENTRY = "entry"
    EXIT = "exit"


@strawberry.enum
class CurbSide(Enum):
    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"


@strawberry.enum
class ParkingAngle(Enum):
    PARALLEL = "parallel"
    PERPENDICULAR = "perpendicular"
    ANGLED = "angled"


def _geojson(wkb: bytes | None) -> Any:
    return None if wkb is None else geo.to_geojson(geo.from_db(wkb))


def _enum(enum: type[Enum], value: str | None) -> Any:
    return None if value is None else enum(value)


@strawberry.type
class OpeningPeriod:
    days: str = strawberry.field(description="Weekdays, e.g. mon-fri, sat,sun")
    open: str = strawberry.field(description="HH:MM local time")
    close: str = strawberry.field(description="HH:MM local time; earlier than open means past midnight")


@strawberry.type
class Occupancy:
    total: int
    vacant: int
    occupied: int
    reserved: int
    out_of_service: int
    unknown: int = strawberry.field(description="Spaces whose sensed status is stale or was never confirmed")
    vacant_percent: float
    occupied_percent: float
    unknown_percent: float
    occupancy_rate_percent: float = strawberry.field(
        description="Occupied and reserved share of the spaces known to be vacant, occupied or reserved"
    )

    @classmethod
    def of(cls, value: rules.Occupancy) -> Occupancy:
        return cls(
            total=value.total,
            vacant=value.vacant,
            occupied=value.occupied,
            reserved=value.reserved,
            out_of_service=value.out_of_service,
            unknown=value.unknown,
            vacant_percent=value.vacant_percent,
            occupied_percent=value.occupied_percent,
            unknown_percent=value.unknown_percent,
            occupancy_rate_percent=value.occupancy_rate_percent,
        )


@strawberry.type
class Facility(relay.Node):
    """An off-street lot or an on-street curb zone, owned by one operator."""

    id: relay.NodeID[str]
    kind: FacilityKind
    name: str
    code: str | None = strawberry.field(description="The short code; for curb zones, as printed on street signs")
    time_zone: str
    address: str | None
    capacity: int | None
    levels: int | None
    opening_hours: list[OpeningPeriod] | None
    max_vehicle_height_cm: int | None
    street_name: str | None
    side: CurbSide | None
    parking_angle: ParkingAngle | None
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None
    tenant_id: strawberry.Private[uuid.UUID]
    geom_wkb: strawberry.Private[bytes]
    entrances_wkb: strawberry.Private[bytes | None]

    @classmethod
    def from_row(cls, row: Mapping[str, Any], prefix: str = "") -> Facility:
        def get(name: str) -> Any:
            return row[prefix + name]

        hours = get("opening_hours")
        return cls(
            id=str(get("id")),
            kind=FacilityKind(get("kind")),
            name=get("name"),
            code=get("code"),
            time_zone=get("time_zone"),
            address=get("address"),
            capacity=get("capacity"),
            levels=get("levels"),
            opening_hours=[OpeningPeriod(**period) for period in hours] if hours is not None else None,
            max_vehicle_height_cm=get("max_vehicle_height_cm"),
            street_name=get("street_name"),
            side=_enum(CurbSide, get("side")),
            parking_angle=_enum(ParkingAngle, get("parking_angle")),
            created_at=get("created_at"),
            updated_at=get("updated_at"),
            retired_at=get("retired_at"),
            tenant_id=get("tenant_id"),
            geom_wkb=get("geom"),
            entrances_wkb=get("entrances"),
        )

    @strawberry.field(description="The lot's outline (Polygon) or the curb zone (Polygon or LineString)")
    def geometry(self) -> GeoJSON:
        return _geojson(self.geom_wkb)

    @strawberry.field(description="Entrances of a lot (MultiPoint)")
    def entrances(self) -> GeoJSON | None:
        return _geojson(self.entrances_wkb)

    @strawberry.field
    async def operator(self, info: Info) -> OperatorType:
        return await info.context.loaders.operator.load(self.tenant_id)

    @strawberry.field(description="Live lanes of a lot")
    async def lanes(self, info: Info) -> list[Lane]:
        return await info.context.loaders.lanes_of_facility.load(uuid.UUID(self.id))

    @strawberry.field(description="Current occupancy of the facility's live spaces")
    async def occupancy(self, info: Info) -> Occupancy:
        return Occupancy.of(await info.context.loaders.occupancy_of_facility.load(uuid.UUID(self.id)))

    @strawberry.field(description="The facility's spaces by code")
    async def spaces(self, info: Info, first: int | None = 20, after: str | None = None) -> relay.Connection[Space]:
        return await spaces_connection(info, first, after, facility_ids=[uuid.UUID(self.id)])

    @strawberry.field(description="The tariff version in effect now; null when none is")
    async def tariff(self, info: Info) -> TariffVersionType | None:
        from schema.pricing.types import current_tariff_loader

        return await current_tariff_loader(info.context).load(uuid.UUID(self.id))

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Facility | None]:
        return await info.context.loaders.facility.load_many(row_ids(node_ids))


@strawberry.type
class Lane(relay.Node):
    """An entry or exit lane of a lot, where a camera and a barrier stand."""

    id: relay.NodeID[str]
    name: str
    direction: LaneDirection
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None
    tenant_id: strawberry.Private[uuid.UUID]
    facility_id: strawberry.Private[uuid.UUID]
    location_wkb: strawberry.Private[bytes | None]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Lane:
        return cls(
            id=str(row["id"]),
            name=row["name"],
            direction=LaneDirection(row["direction"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            retired_at=row["retired_at"],
            tenant_id=row["tenant_id"],
            facility_id=row["facility_id"],
            location_wkb=row["location"],
        )

    @strawberry.field
    def location(self) -> GeoJSON | None:
        return _geojson(self.location_wkb)

    @strawberry.field
    async def facility(self, info: Info) -> Facility | None:
        return await info.context.loaders.facility.load(self.facility_id)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Lane | None]:
        return await info.context.loaders.lane.load_many(row_ids(node_ids))


@strawberry.type
class Space(relay.Node):
    """One parking space, in a lot or along a curb zone."""

    id: relay.NodeID[str]
    code: str = strawberry.field(description="What drivers type; unique within the operator")
    level: int | None
    ev_charger: bool
    accessible: bool
    size_class: SizeClass
    covered: bool
    shared: bool = strawberry.field(description="Shared off-peak and rentable by drivers")
    status: SpaceStatus = strawberry.field(description="The status a driver may rely on now")
    reported_status: SpaceStatus = strawberry.field(description="The last status reported, however old")
    status_confirmed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None
    tenant_id: strawberry.Private[uuid.UUID]
    facility_id: strawberry.Private[uuid.UUID]
    geom_wkb: strawberry.Private[bytes]
    location_wkb: strawberry.Private[bytes]

    @classmethod
    def from_row(cls, row: Mapping[str, Any], context: Context) -> Space:
        status = rules.effective_status(
            row["status"], row["status_confirmed_at"], context.now, context.now - context.confirmed_after
        )
        return cls(
            id=str(row["id"]),
            code=row["code"],
            level=row["level"],
            ev_charger=row["ev_charger"],
            accessible=row["accessible"],
            size_class=SizeClass(row["size_class"]),
            covered=row["covered"],
            shared=row["shared"],
            status=SpaceStatus(status),
            reported_status=SpaceStatus(row["status"]),
            status_confirmed_at=row["status_confirmed_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            retired_at=row["retired_at"],
            tenant_id=row["tenant_id"],
            facility_id=row["facility_id"],
            geom_wkb=row["geom"],
            location_wkb=row["location"],
        )

    @strawberry.field(description="The drawn space: a Point or a Polygon")
    def geometry(self) -> GeoJSON:
        return _geojson(self.geom_wkb)

    @strawberry.field(description="A point inside the space, used for distances")
    def location(self) -> GeoJSON:
        return _geojson(self.location_wkb)

    @strawberry.field
    async def facility(self, info: Info) -> Facility | None:
        return await info.context.loaders.facility.load(self.facility_id)

    @strawberry.field
    async def operator(self, info: Info) -> OperatorType:
        return await info.context.loaders.operator.load(self.tenant_id)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Space | None]:
        return await info.context.loaders.space.load_many(row_ids(node_ids))


@strawberry.type
class NearbySpace:
    """One search result. Its facility and operator came with the search row; they are built only when the
    query asks for them, and then shared with later lookups of the same request."""

    distance_meters: float = strawberry.field(description="Geodesic distance from the search point, in metres")
    space: Space
    row: strawberry.Private[Mapping[str, Any]]
    quoted_price_fen: int | None = strawberry.field(
        default=None,
        description="With a planned stay: what it would cost here, in fen; null without one, or when the facility "
        "has no tariff in effect when the stay starts",
    )

    @strawberry.field
    def facility(self, info: Info) -> Facility:
        loader = info.context.loaders.facility
        facility = Facility.from_row(self.row, prefix="f_")
        loader.prime(self.space.facility_id, facility)
        return facility

    @strawberry.field
    def operator(self, info: Info) -> OperatorType:
        from schema.tenants.types import Operator

        operator = Operator.from_row(self.row, prefix="t_")
        info.context.loaders.operator.prime(self.space.tenant_id, operator)
        return operator


@strawberry.type
class OperatorOccupancy:
    operator: OperatorType
    occupancy: Occupancy
    devices: DeviceHealth


@strawberry.type(description="An operator's live sensors, cameras and gate controllers")
class DeviceHealth:
    total: int
    offline: int = strawberry.field(description="Silent for longer than their configured interval")


async def spaces_connection(
    info: Info, first: int | None, after: str | None, **criteria: Any
) -> relay.Connection[Space]:
    """A page of spaces by code, as the caller may see them."""
    from hub.supply import service

    page_size = check_first(first)
    async with info.context.read() as session:
        rows = await service.spaces_page(
            session, info.context.principal, first=page_size, after=decode_cursor(after), **criteria
        )
    return connection(rows, page_size, after is not None, lambda row: Space.from_row(row, info.context), "code")
