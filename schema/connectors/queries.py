"""An operator's connectors, and devices with their health."""

from __future__ import annotations

import strawberry
from strawberry import relay

from hub.supply import devices as supply_devices
from schema.connectors.types import Connector, Device, DeviceKind
from schema.context import Info
from schema.relay import check_first, connection, decode_cursor, uuid_of
from tenants import service as tenants_service


@strawberry.type
class ConnectorQuery:
    @strawberry.field(description="Your operator's connectors by name (operator staff); secrets are never shown.")
    async def connectors(self, info: Info) -> list[Connector]:
        tenant_id = tenants_service.connector_reader_tenant(info.context.principal)
        async with info.context.read() as session:
            rows = await tenants_service.list_connectors(session, tenant_id)
        return [Connector.from_row(row) for row in rows]

    @strawberry.field(
        description="Live devices by external id, optionally of one facility or one kind (operators, the city)."
    )
    async def devices(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        facility_id: relay.GlobalID | None = None,
        kind: DeviceKind | None = None,
    ) -> relay.Connection[Device]:
        page_size = check_first(first)
        async with info.context.read() as session:
            rows = await supply_devices.devices_page(
                session,
                info.context.principal,
                first=page_size,
                after=decode_cursor(after),
                facility_ids=[uuid_of(facility_id, "Facility", "facilityId")] if facility_id else None,
                kind=kind.value if kind else None,
            )
        return connection(rows, page_size, after is not None, Device.from_row, "external_id")
