"""Operators: the public list, and platform administration."""

from __future__ import annotations

import strawberry
from strawberry import relay

import geo
from hub.errors import Forbidden
from schema.context import Info
from schema.relay import check_first, connection, decode_cursor
from schema.scalars import GeoJSON
from schema.tenants.types import Operator
from tenants import service


@strawberry.input
class CreateOperatorInput:
    slug: str = strawberry.field(description="Lower-case letters, digits and '-', e.g. futian-parking")
    name: str
    time_zone: str = "Asia/Shanghai"
    currency: str = "CNY"
    platform_fee_bps: int = strawberry.field(default=60, description="Platform fee in basis points (60 = 0.6%)")
    service_area: GeoJSON | None = strawberry.field(
        default=None, description="Polygon or MultiPolygon; the whole city by default"
    )


@strawberry.type
class TenantQuery:
    @strawberry.field(description="Every operator in the city, by slug.")
    async def operators(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> relay.Connection[Operator]:
        page_size = check_first(first)
        cursor = decode_cursor(after)
        async with info.context.read() as session:
            tenants = await service.list_tenants(session, first=page_size + 1, after_slug=cursor[0] if cursor else None)
        return connection(tenants, page_size, after is not None, Operator.from_row, lambda t: (t.slug, t.id))


@strawberry.type
class TenantMutation:
    @strawberry.mutation(description="Create an operator (platform administrators only).")
    async def create_operator(self, info: Info, input: CreateOperatorInput) -> Operator:
        if info.context.principal.kind != "platform":
            raise Forbidden("only a platform administrator creates operators", required_role="platform")
        area = None
        if input.service_area is not None:
            area = geo.validate_geometry(
                input.service_area, allowed=("Polygon", "MultiPolygon"), field="input.serviceArea", service_area=None
            )
        async with info.context.write() as session:
            tenant = await service.create_tenant(
                session,
                slug=input.slug,
                name=input.name,
                time_zone=input.time_zone,
                currency=input.currency,
                platform_fee_bps=input.platform_fee_bps,
                service_area=area,
            )
        return Operator.from_row(tenant)
