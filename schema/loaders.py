"""Per-request DataLoaders: every batch of ids is one query, whatever the shape of the GraphQL query."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from strawberry.dataloader import DataLoader

from hub.drivers import service as drivers_service
from hub.pricing import service as pricing_service
from hub.supply import devices as supply_devices
from hub.supply import service as supply_service
from tenants import service as tenants_service

if TYPE_CHECKING:
    from schema.context import Context

T = TypeVar("T")


def by_id(
    context: Context,
    fetch: Callable[[Any, Any, list[uuid.UUID]], Awaitable[Sequence[Any]]],
    build: Callable[[Any], T],
    key: Callable[[Any], uuid.UUID] = lambda row: row["id"],
) -> DataLoader[uuid.UUID | None, T | None]:
    async def load(ids: list[uuid.UUID | None]) -> list[T | None]:
        wanted = [i for i in ids if i is not None]
        found: dict[uuid.UUID, T] = {}
        if wanted:
            async with context.read() as session:
                for row in await fetch(session, context.principal, wanted):
                    found[key(row)] = build(row)
        return [found.get(i) if i is not None else None for i in ids]

    return DataLoader(load_fn=load)


class Loaders:
    def __init__(self, context: Context) -> None:
        from schema.connectors.types import Connector, Device
        from schema.drivers.types import Vehicle
        from schema.pricing.types import TariffVersion
        from schema.supply.types import Facility, Lane, Space
        from schema.tenants.types import Operator

        self.context = context
        self._domains: dict[str, Any] = {}
        self.facility = by_id(context, supply_service.facilities_by_ids, Facility.from_row)
        self.lane = by_id(context, supply_service.lanes_by_ids, Lane.from_row)
        self.space = by_id(context, supply_service.spaces_by_ids, lambda row: Space.from_row(row, context))
        self.operator = by_id(
            context, lambda s, _p, ids: tenants_service.tenants_by_ids(s, ids), Operator.from_row, lambda t: t.id
        )
        self.vehicle = by_id(context, drivers_service.vehicles_by_ids, Vehicle.from_row)
        self.device = by_id(context, supply_devices.devices_by_ids, Device.from_row)
        self.connector = by_id(
            context,
            lambda s, p, ids: tenants_service.connectors_by_ids(s, ids, supply_service.tenant_filter(p)),
            Connector.from_row,
            lambda c: c.id,
        )
        self.tariff_version = by_id(context, pricing_service.tariff_versions_by_ids, TariffVersion.from_row)
        self.lanes_of_facility: DataLoader[uuid.UUID, list[Lane]] = DataLoader(load_fn=self._lanes_of_facilities)
        self.occupancy_of_facility: DataLoader[uuid.UUID, Any] = DataLoader(load_fn=self._occupancy_of_facilities)

    def of(self, name: str, make: Callable[[Context], T]) -> T:
        """A domain's own loaders (or loader), made on first use and kept for the rest of the request."""
        if name not in self._domains:
            self._domains[name] = make(self.context)
        return self._domains[name]

    async def _lanes_of_facilities(self, facility_ids: list[uuid.UUID]) -> list[list[Any]]:
        from schema.supply.types import Lane

        async with self.context.read() as session:
            rows = await supply_service.lanes_of_facilities(session, self.context.principal, facility_ids)
        grouped: dict[uuid.UUID, list[Any]] = {facility_id: [] for facility_id in facility_ids}
        for row in rows:
            grouped[row["facility_id"]].append(Lane.from_row(row))
        return [grouped[facility_id] for facility_id in facility_ids]

    async def _occupancy_of_facilities(self, facility_ids: list[uuid.UUID]) -> list[Any]:
        async with self.context.read() as session:
            found = await supply_service.occupancy_of_facilities(session, self.context.principal, facility_ids)
        return [found.get(facility_id, supply_service.EMPTY_OCCUPANCY) for facility_id in facility_ids]
