"""The caller's own view (`me`) and drivers' vehicles."""

from __future__ import annotations

import strawberry
from strawberry import relay

from hub.drivers import service
from schema.context import Info
from schema.drivers.types import Vehicle
from schema.relay import uuid_of
from schema.tenants.types import Operator


@strawberry.type
class Viewer:
    kind: str = strawberry.field(description="anonymous, driver, operator, city, connector or platform")
    role: str | None
    subject: str

    @strawberry.field(description="The operator an operator or connector token acts for")
    async def operator(self, info: Info) -> Operator | None:
        tenant_id = info.context.principal.tenant_id
        return await info.context.loaders.operator.load(tenant_id) if tenant_id else None

    @strawberry.field(description="A driver's own vehicles")
    async def vehicles(self, info: Info) -> list[Vehicle]:
        async with info.context.read() as session:
            rows = await service.my_vehicles(session, info.context.principal)
        return [Vehicle.from_row(row) for row in rows]


@strawberry.type
class DriverQuery:
    @strawberry.field(description="Who the caller is")
    def me(self, info: Info) -> Viewer:
        principal = info.context.principal
        return Viewer(kind=principal.kind, role=principal.role, subject=principal.subject)


@strawberry.type
class DriverMutation:
    @strawberry.mutation(description="Add a vehicle to the driver's account; the plate is normalized.")
    async def add_vehicle(self, info: Info, plate: str, nickname: str | None = None) -> Vehicle:
        async with info.context.write() as session:
            row = await service.add_vehicle(session, info.context.principal, plate, nickname)
        return Vehicle.from_row(row)

    @strawberry.mutation
    async def remove_vehicle(self, info: Info, id: relay.GlobalID) -> Vehicle:
        async with info.context.write() as session:
            row = await service.remove_vehicle(session, info.context.principal, uuid_of(id, "Vehicle"))
        return Vehicle.from_row(row)
