"""Find-a-space, facilities and spaces, and the city's occupancy views."""

from __future__ import annotations

import strawberry
from strawberry import relay

from hub.supply import service
from schema.context import Info
from schema.relay import check_first, connection, decode_cursor, uuid_of
from schema.scalars import GeoJSON
from schema.supply.inputs import BBoxInput, SpaceSearchFilter, SpaceSort
from schema.supply.types import (
    DeviceHealth,
    Facility,
    FacilityKind,
    NearbySpace,
    Occupancy,
    OperatorOccupancy,
    Space,
    spaces_connection,
)


@strawberry.type
class SupplyQuery:
    @strawberry.field(
        description="The nearest spaces within radiusMeters of (lon, lat), nearest first; first is at most 100. "
        "With filter.plannedStay each result carries the stay's quoted price; filter.maxPriceFen and sortBy: PRICE "
        f"then consider the {service.MAX_PRICED_CANDIDATES} nearest matching spaces within the radius."
    )
    async def spaces_near(
        self,
        info: Info,
        lon: float,
        lat: float,
        radius_meters: float,
        first: int = 20,
        filter: SpaceSearchFilter | None = None,
        sort_by: SpaceSort = SpaceSort.DISTANCE,
    ) -> list[NearbySpace]:
        criteria = filter or SpaceSearchFilter()
        stay = criteria.planned_stay
        context = info.context
        async with context.read() as session:
            found = await service.search_spaces_near(
                session,
                context.principal,
                lon=lon,
                lat=lat,
                radius_m=radius_meters,
                first=first,
                vacant_only=criteria.vacant_only,
                ev_charger=criteria.ev_charger,
                accessible=criteria.accessible,
                facility_kind=criteria.facility_kind.value if criteria.facility_kind else None,
                planned_stay=None if stay is None else (stay.start, stay.end),
                vehicle_class=criteria.vehicle_class.value,
                max_price_fen=criteria.max_price_fen,
                sort_by=sort_by.value,
            )
        return [
            NearbySpace(
                distance_meters=item.row["distance_m"],
                space=Space.from_row(item.row, context),
                row=item.row,
                quoted_price_fen=item.quoted_price_fen,
            )
            for item in found
        ]

    @strawberry.field(description="Facilities by name, optionally within a bounding box or a polygon.")
    async def facilities(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        kind: FacilityKind | None = None,
        bbox: BBoxInput | None = None,
        within: GeoJSON | None = None,
        include_retired: bool = False,
    ) -> relay.Connection[Facility]:
        page_size = check_first(first)
        async with info.context.read() as session:
            rows = await service.facilities_page(
                session,
                info.context.principal,
                first=page_size,
                after=decode_cursor(after),
                kind=kind.value if kind else None,
                bbox=(bbox.west, bbox.south, bbox.east, bbox.north) if bbox else None,
                within=within,
                include_retired=include_retired,
            )
        return connection(rows, page_size, after is not None, Facility.from_row, "name")

    @strawberry.field(description="Spaces by code, optionally of one facility or with one code.")
    async def spaces(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        facility_id: relay.GlobalID | None = None,
        code: str | None = None,
        include_retired: bool = False,
    ) -> relay.Connection[Space]:
        return await spaces_connection(
            info,
            first,
            after,
            facility_ids=[uuid_of(facility_id, "Facility", "facilityId")] if facility_id else None,
            code=code,
            include_retired=include_retired,
        )

    @strawberry.field(
        description="Current occupancy and device health per operator (city, platform; an operator sees its own)."
    )
    async def occupancy_by_operator(self, info: Info) -> list[OperatorOccupancy]:
        async with info.context.read() as session:
            rows = await service.occupancy_by_operator(session, info.context.principal)
            health = await service.device_health_by_operator(session, info.context.principal)
        operators = await info.context.loaders.operator.load_many([tenant_id for tenant_id, _ in rows])
        no_devices = DeviceHealth(total=0, offline=0)
        return [
            OperatorOccupancy(
                operator=operator,
                occupancy=Occupancy.of(occupancy),
                devices=DeviceHealth(**vars(health[tenant_id])) if tenant_id in health else no_devices,
            )
            for operator, (tenant_id, occupancy) in zip(operators, rows, strict=True)
            if operator is not None
        ]

    @strawberry.field(description="Current occupancy of the live spaces inside a polygon.")
    async def occupancy_in_area(self, info: Info, area: GeoJSON) -> Occupancy:
        async with info.context.read() as session:
            return Occupancy.of(await service.occupancy_in_area(session, info.context.principal, area))
