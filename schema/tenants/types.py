"""GraphQL types of tenants: operators."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

import geo
from hub.errors import Forbidden
from schema.context import Info
from schema.relay import row_ids
from schema.scalars import GeoJSON
from tenants.models import Tenant


@strawberry.type
class Operator(relay.Node):
    """A parking operator (a tenant of the hub). Name and slug are public; the commercial terms are visible
    to the operator itself, the city and the platform."""

    id: relay.NodeID[str]
    slug: str
    name: str
    time_zone: str
    currency: str
    created_at: datetime
    fee_bps: strawberry.Private[int]
    service_area_wkb: strawberry.Private[bytes | Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | Tenant, prefix: str = "") -> Operator:
        """From a Tenant, or from the `prefix`ed columns of a result row (a mapping or an asyncpg record)."""

        def get(name: str) -> Any:
            return getattr(row, name) if isinstance(row, Tenant) else row[prefix + name]

        return cls(
            id=str(get("id")),
            slug=get("slug"),
            name=get("name"),
            time_zone=get("time_zone"),
            currency=get("currency"),
            created_at=get("created_at"),
            fee_bps=get("platform_fee_bps"),
            service_area_wkb=get("service_area"),
        )

    @strawberry.field(description="Platform fee in basis points (60 = 0.6%)")
    def platform_fee_bps(self, info: Info) -> int:
        principal = info.context.principal
        if principal.kind in ("city", "platform") or principal.tenant_id == uuid.UUID(self.id):
            return self.fee_bps
        raise Forbidden("an operator's fee rate is visible to that operator, the city and the platform")

    @strawberry.field(description="Where this operator may place supply (MultiPolygon)")
    def service_area(self) -> GeoJSON:
        return geo.to_geojson(geo.from_db(self.service_area_wkb))

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Operator | None]:
        return await info.context.loaders.operator.load_many(row_ids(node_ids))
