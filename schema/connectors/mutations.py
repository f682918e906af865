"""Operator admin mutations of connectors and devices. Connector secrets appear only in these answers."""

from __future__ import annotations

import strawberry
from strawberry import relay

from hub.supply import devices as supply_devices
from schema.connectors.inputs import CreateConnectorInput, RegisterDeviceInput, UpdateDeviceInput, device_fields
from schema.connectors.types import Connector, ConnectorSecretIssued, Device
from schema.context import Info
from schema.relay import uuid_of
from tenants import rules as tenants_rules
from tenants import service as tenants_service


async def _set_enabled(info: Info, id: relay.GlobalID, *, enabled: bool) -> Connector:
    tenant_id = tenants_service.connector_admin_tenant(info.context.principal)
    connector_id = uuid_of(id, "Connector")
    async with info.context.write() as session:
        row = await tenants_service.set_connector_enabled(session, connector_id, tenant_id=tenant_id, enabled=enabled)
    return Connector.from_row(row)


@strawberry.type
class ConnectorMutation:
    @strawberry.mutation(description="Create a connector; the answer holds its secret, shown this once.")
    async def create_connector(self, info: Info, input: CreateConnectorInput) -> ConnectorSecretIssued:
        tenant_id = tenants_service.connector_admin_tenant(info.context.principal)
        async with info.context.write() as session:
            connector, secret = await tenants_service.create_connector(
                session,
                tenant_id=tenant_id,
                name=input.name,
                format=input.format.value,
                auth_mode=input.auth_mode.value,
                time_zone=input.time_zone,
            )
        return ConnectorSecretIssued(connector=Connector.from_row(connector), secret=secret)

    @strawberry.mutation(
        description="Issue a new secret, shown this once; the previous ones keep working for overlapHours (0-168)."
    )
    async def rotate_connector_secret(
        self, info: Info, id: relay.GlobalID, overlap_hours: int = tenants_rules.DEFAULT_SECRET_OVERLAP_HOURS
    ) -> ConnectorSecretIssued:
        tenant_id = tenants_service.connector_admin_tenant(info.context.principal)
        connector_id = uuid_of(id, "Connector")
        async with info.context.write() as session:
            connector, secret = await tenants_service.rotate_connector_secret(
                session, connector_id, tenant_id=tenant_id, overlap_hours=overlap_hours
            )
        return ConnectorSecretIssued(connector=Connector.from_row(connector), secret=secret)

    @strawberry.mutation(description="Refuse the connector's requests from now on (its secrets are kept).")
    async def disable_connector(self, info: Info, id: relay.GlobalID) -> Connector:
        return await _set_enabled(info, id, enabled=False)

    @strawberry.mutation(description="Accept the connector's requests again.")
    async def enable_connector(self, info: Info, id: relay.GlobalID) -> Connector:
        return await _set_enabled(info, id, enabled=True)

    @strawberry.mutation(description="Register a device bound to one space, curb zone or lane.")
    async def register_device(self, info: Info, input: RegisterDeviceInput) -> Device:
        async with info.context.write() as session:
            row = await supply_devices.register_device(session, info.context.principal, device_fields(input))
        return Device.from_row(row)

    @strawberry.mutation(description="Re-bind a device or change how long it may stay silent.")
    async def update_device(self, info: Info, id: relay.GlobalID, input: UpdateDeviceInput) -> Device:
        device_id, changes = uuid_of(id, "Device"), device_fields(input)
        async with info.context.write() as session:
            row = await supply_devices.update_device(session, info.context.principal, device_id, changes)
        return Device.from_row(row)

    @strawberry.mutation(description="Retire a device (kept for history); its external id may be registered again.")
    async def retire_device(self, info: Info, id: relay.GlobalID) -> Device:
        device_id = uuid_of(id, "Device")
        async with info.context.write() as session:
            row = await supply_devices.retire_device(session, info.context.principal, device_id)
        return Device.from_row(row)
