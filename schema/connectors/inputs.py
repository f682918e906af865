"""GraphQL inputs of connectors and devices, and turning them into the plain values services take."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay

from schema.connectors.types import ConnectorAuthMode, ConnectorFormat, DeviceKind
from schema.relay import uuid_of

UNSET = strawberry.UNSET
# Binding fields holding global ids: the node type each must name, and its name in errors.
DEVICE_ID_FIELDS = {
    "space_id": ("Space", "input.spaceId"),
    "facility_id": ("Facility", "input.facilityId"),
    "lane_id": ("Lane", "input.laneId"),
}


@strawberry.input
class CreateConnectorInput:
    name: str
    format: ConnectorFormat
    auth_mode: ConnectorAuthMode = ConnectorAuthMode.SIGNATURE
    time_zone: str | None = strawberry.field(default=None, description="IANA zone; the operator's by default")


@strawberry.input(description="Give exactly one of spaceId, spaceCode, facilityId (a curb zone) and laneId.")
class RegisterDeviceInput:
    kind: DeviceKind
    external_id: str = strawberry.field(description="A DevEUI (16 hex digits) or the camera's or controller's id")
    space_id: relay.GlobalID | None = None
    space_code: str | None = None
    facility_id: relay.GlobalID | None = strawberry.field(default=None, description="A curb zone")
    lane_id: relay.GlobalID | None = None
    offline_after_s: int | None = strawberry.field(
        default=None, name="offlineAfterSeconds", description="60 s to 7 days; 1800 by default"
    )


@strawberry.input(description="Only the fields given are changed; to re-bind, give one of the binding fields.")
class UpdateDeviceInput:
    space_id: relay.GlobalID | None = UNSET
    space_code: str | None = UNSET
    facility_id: relay.GlobalID | None = UNSET
    lane_id: relay.GlobalID | None = UNSET
    offline_after_s: int | None = strawberry.field(default=UNSET, name="offlineAfterSeconds")


def device_fields(value: RegisterDeviceInput | UpdateDeviceInput) -> dict[str, Any]:
    """The fields the caller set (UNSET ones left out), the kind as its stored value, global ids as row ids
    (checked to name the right type)."""
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if item is strawberry.UNSET:
            continue
        if field.name in DEVICE_ID_FIELDS and item is not None:
            node_type, where = DEVICE_ID_FIELDS[field.name]
            item = uuid_of(item, node_type, where)
        fields[field.name] = item.value if isinstance(item, Enum) else item
    return fields
