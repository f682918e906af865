"""GraphQL inputs of the supply domain."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry import relay

from schema.access.types import VehicleClass
from schema.scalars import GeoJSON
from schema.supply.types import CurbSide, FacilityKind, LaneDirection, ParkingAngle, SizeClass, SpaceStatus

UNSET = strawberry.UNSET


@strawberry.enum
class SpaceSort(Enum):
    DISTANCE = "distance"
    PRICE = strawberry.enum_value(
        "price", description="Quoted price of the planned stay (no tariff last), then distance"
    )


@strawberry.input(description="A stay to price: each result's quotedPriceFen is what it would cost there")
class PlannedStayInput:
    start: datetime = strawberry.field(name="from")
    end: datetime = strawberry.field(name="to", description="At most 31 days after from")


@strawberry.input
class SpaceSearchFilter:
    vacant_only: bool = strawberry.field(
        default=False, description="Only spaces confirmed vacant within the staleness window"
    )
    ev_charger: bool | None = None
    accessible: bool | None = None
    facility_kind: FacilityKind | None = None
    planned_stay: PlannedStayInput | None = strawberry.field(
        default=None, description="Price this stay at each result (under the tariff in effect when it starts)"
    )
    vehicle_class: VehicleClass = strawberry.field(
        default=VehicleClass.STANDARD, description="The vehicle class the planned stay is priced for"
    )
    max_price_fen: int | None = strawberry.field(
        default=None,
        description="With plannedStay: only spaces whose quoted price is at most this (a space with no tariff is "
        "left out). Considers the 500 nearest matching spaces within the radius.",
    )


@strawberry.input
class BBoxInput:
    west: float
    south: float
    east: float
    north: float


@strawberry.input
class OpeningPeriodInput:
    days: str
    open: str
    close: str


@strawberry.input
class LotInput:
    name: str
    geometry: GeoJSON = strawberry.field(description="Polygon or MultiPolygon, [lon, lat] positions")
    code: str | None = None
    time_zone: str | None = strawberry.field(default=None, description="IANA zone; the operator's by default")
    address: str | None = None
    capacity: int | None = None
    levels: int | None = None
    opening_hours: list[OpeningPeriodInput] | None = None
    max_vehicle_height_cm: int | None = None
    entrances: GeoJSON | None = strawberry.field(default=None, description="Point or MultiPoint")


@strawberry.input
class CurbZoneInput:
    name: str
    code: str = strawberry.field(description="The zone code as printed on street signs")
    geometry: GeoJSON = strawberry.field(description="LineString along the kerb, or Polygon")
    street_name: str | None = None
    side: CurbSide | None = None
    parking_angle: ParkingAngle | None = None
    time_zone: str | None = None
    address: str | None = None


@strawberry.input(description="Only the fields given are changed; null clears an optional field.")
class UpdateFacilityInput:
    name: str | None = UNSET
    code: str | None = UNSET
    geometry: GeoJSON | None = UNSET
    time_zone: str | None = UNSET
    address: str | None = UNSET
    capacity: int | None = UNSET
    levels: int | None = UNSET
    opening_hours: list[OpeningPeriodInput] | None = UNSET
    max_vehicle_height_cm: int | None = UNSET
    entrances: GeoJSON | None = UNSET
    street_name: str | None = UNSET
    side: CurbSide | None = UNSET
    parking_angle: ParkingAngle | None = UNSET


@strawberry.input
class LaneInput:
    facility_id: relay.GlobalID
    name: str
    direction: LaneDirection
    location: GeoJSON | None = None


@strawberry.input
class UpdateLaneInput:
    name: str | None = UNSET
    direction: LaneDirection | None = UNSET
    location: GeoJSON | None = UNSET


@strawberry.input
class SpaceInput:
    facility_id: relay.GlobalID
    code: str
    geometry: GeoJSON = strawberry.field(description="Point or Polygon inside the lot / along the curb zone")
    level: int | None = None
    ev_charger: bool | None = None
    accessible: bool | None = None
    size_class: SizeClass | None = None
    covered: bool | None = None
    shared: bool | None = None
    status: SpaceStatus | None = strawberry.field(
        default=None, description="Set by hand (counts as confirmed now); unknown until confirmed otherwise"
    )


@strawberry.input
class UpdateSpaceInput:
    code: str | None = UNSET
    geometry: GeoJSON | None = UNSET
    level: int | None = UNSET
    ev_charger: bool | None = UNSET
    accessible: bool | None = UNSET
    size_class: SizeClass | None = UNSET
    covered: bool | None = UNSET
    shared: bool | None = UNSET
    status: SpaceStatus | None = UNSET
