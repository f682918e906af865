"""GraphQL types of connectors (inbound webhooks) and devices (the sensors, cameras and gate controllers that
report through them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay

from schema.context import Info
from schema.relay import row_ids
from schema.supply.types import Facility, Lane, Space
from tenants.models import Connector as ConnectorRow

if TYPE_CHECKING:
    from schema.tenants.types import Operator

OperatorType = Annotated["Operator", strawberry.lazy("schema.tenants.types")]
WEBHOOK_PATH = "/connectors/{id}"


@strawberry.enum(description="The format a connector's sender speaks")
class ConnectorFormat(Enum):
    NATIVE = "native"
    TTS_V3 = "tts_v3"
    CHIRPSTACK_V4 = "chirpstack_v4"
    CDS = "cds"
    PLATE_RECOGNIZER = "plate_recognizer"
    OPENALPR = "openalpr"
    SANDBOX_PAY = strawberry.enum_value("sandbox_pay", description="The sandbox payment provider's callbacks")
    WECHATPAY_V3 = strawberry.enum_value("wechatpay_v3", description="WeChat Pay v3 callbacks")


@strawberry.enum(description="How a connector's sender proves who it is")
class ConnectorAuthMode(Enum):
    SIGNATURE = strawberry.enum_value("signature", description="Standard Webhooks signatures (HMAC-SHA256)")
    SECRET = strawberry.enum_value("secret", description="The secret itself in a header, for senders that cannot sign")
    PROVIDER = strawberry.enum_value("provider", description="A payment provider's own callback signature")


@strawberry.enum
class DeviceKind(Enum):
    GEOMAGNETIC_SENSOR = "geomagnetic_sensor"
    CURB_CAMERA = "curb_camera"
    LANE_CAMERA = "lane_camera"
    GATE_CONTROLLER = "gate_controller"


@strawberry.type
class Connector(relay.Node):
    """An inbound webhook of an operator. Its secrets are shown once, when created or rotated, never here."""

    id: relay.NodeID[str]
    name: str
    format: ConnectorFormat
    auth_mode: ConnectorAuthMode
    time_zone: str = strawberry.field(description="Timestamps without a zone from this sender are read in this one")
    enabled: bool
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None

    @classmethod
    def from_row(cls, row: ConnectorRow) -> Connector:
        return cls(
            id=str(row.id),
            name=row.name,
            format=ConnectorFormat(row.format),
            auth_mode=ConnectorAuthMode(row.auth_mode),
            time_zone=row.time_zone,
            enabled=row.disabled_at is None,
            created_at=row.created_at,
            updated_at=row.updated_at,
            disabled_at=row.disabled_at,
        )

    @strawberry.field(description="Where the sender posts its events, relative to the API's address")
    def webhook_url(self) -> str:
        return WEBHOOK_PATH.format(id=self.id)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Connector | None]:
        return await info.context.loaders.connector.load_many(row_ids(node_ids))


@strawberry.type
class ConnectorSecretIssued:
    connector: Connector
    secret: str = strawberry.field(description="Shown this once: store it in the sender now")


@strawberry.type
class Device(relay.Node):
    """A sensor, camera or gate controller, bound to one space, curb zone or lane. The health fields are kept
    current by the events the device sends."""

    id: relay.NodeID[str]
    kind: DeviceKind
    external_id: str = strawberry.field(description="How its sender names it: a DevEUI, a camera id")
    offline_after_seconds: int = strawberry.field(description="Silent for longer than this means offline")
    online: bool = strawberry.field(description="Not marked offline")
    offline_since: datetime | None
    last_message_at: datetime | None
    last_heartbeat_at: datetime | None
    battery_percent: float | None
    temperature_c: float | None
    firmware: str | None
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None
    tenant_id: strawberry.Private[uuid.UUID]
    facility_id: strawberry.Private[uuid.UUID]
    space_id: strawberry.Private[uuid.UUID | None]
    lane_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Device:
        return cls(
            id=str(row["id"]),
            kind=DeviceKind(row["kind"]),
            external_id=row["external_id"],
            offline_after_seconds=row["offline_after_s"],
            online=row["offline_since"] is None,
            offline_since=row["offline_since"],
            last_message_at=row["last_message_at"],
            last_heartbeat_at=row["last_heartbeat_at"],
            battery_percent=row["battery_percent"],
            temperature_c=row["temperature_c"],
            firmware=row["firmware"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            retired_at=row["retired_at"],
            tenant_id=row["tenant_id"],
            facility_id=row["facility_id"],
            space_id=row["space_id"],
            lane_id=row["lane_id"],
        )

    @strawberry.field(description="The facility it belongs to: the curb zone it watches, or its space's or lane's")
    async def facility(self, info: Info) -> Facility | None:
        return await info.context.loaders.facility.load(self.facility_id)

    @strawberry.field(description="The space it watches, when bound to one")
    async def space(self, info: Info) -> Space | None:
        return await info.context.loaders.space.load(self.space_id) if self.space_id else None

    @strawberry.field(description="The lane it stands at, when bound to one")
    async def lane(self, info: Info) -> Lane | None:
        return await info.context.loaders.lane.load(self.lane_id) if self.lane_id else None

    @strawberry.field
    async def operator(self, info: Info) -> OperatorType:
        return await info.context.loaders.operator.load(self.tenant_id)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Device | None]:
        return await info.context.loaders.device.load_many(row_ids(node_ids))
