"""Tariffs: operator admins set sealed versions per facility (lot or curb zone) and read their history; anyone
who may see a facility, anonymous callers included, gets an itemized quote for a planned stay."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from hub.errors import InvalidInput
from hub.pricing import service
from schema.access.types import VehicleClass
from schema.context import Info
from schema.pricing.inputs import TariffInput, json_path, tariff_definition, typed_path
from schema.pricing.types import PriceQuote, TariffHistory, TariffVersion
from schema.relay import uuid_of

SET_TARIFF_DESCRIPTION = """Set a new version of a facility's tariff (operator admins), in effect from validFrom \
(now when left out). Give the tariff either typed (tariff) or in its JSON form (tariffJson, the form \
TariffDefinition.json returns). Versions are sealed: a change is a new version, and a stay is priced by the \
version in effect when it starts. A version may not start before the facility's latest version \
(TARIFF_BACKDATED). Every problem is reported at once in extensions.problems [{field, code, message}] with \
INVALID_TARIFF, and nothing is written."""


@strawberry.type
class PricingQuery:
    @strawberry.field(
        description="Every version of a facility's tariff, newest first (the operator's staff, the city)."
    )
    async def tariff_history(self, info: Info, facility_id: relay.GlobalID) -> TariffHistory:
        facility = uuid_of(facility_id, "Facility", "facilityId")
        async with info.context.read() as session:
            row, versions = await service.tariff_history(session, info.context.principal, facility)
        built = [TariffVersion.from_row(version) for version in versions]
        now = info.context.now
        return TariffHistory(
            current=next((version for version in built if version.valid_from <= now), None),
            versions=built,
            facility_id=row["id"],
        )

    @strawberry.field(
        description=f"What a stay would cost at a facility, itemized, under the tariff version in effect at from "
        f"(anyone who may see the facility). NO_TARIFF when none is in effect then; INVALID_STAY when to is not "
        f"after from; STAY_TOO_LONG beyond {service.MAX_STAY_DAYS} days."
    )
    async def quote(
        self,
        info: Info,
        facility_id: relay.GlobalID,
        start: Annotated[datetime, strawberry.argument(name="from")],
        end: Annotated[datetime, strawberry.argument(name="to")],
        vehicle_class: VehicleClass = VehicleClass.STANDARD,
    ) -> PriceQuote:
        facility = uuid_of(facility_id, "Facility", "facilityId")
        async with info.context.read() as session:
            priced = await service.quote(session, info.context.principal, facility, vehicle_class.value, start, end)
        return PriceQuote.of(priced)


@strawberry.type
class PricingMutation:
    @strawberry.mutation(description=SET_TARIFF_DESCRIPTION)
    async def set_tariff(
        self,
        info: Info,
        facility_id: relay.GlobalID,
        tariff: TariffInput | None = None,
        tariff_json: JSON | None = None,
        valid_from: datetime | None = None,
    ) -> TariffVersion:
        if (tariff is None) == (tariff_json is None):
            raise InvalidInput(
                "give the tariff either as tariff or as tariffJson", code="INVALID_INPUT", field="tariff"
            )
        facility = uuid_of(facility_id, "Facility", "facilityId")
        definition, field_of = (
            (tariff_definition(tariff), typed_path) if tariff is not None else (tariff_json, json_path)
        )
        async with info.context.write() as session:
            row = await service.set_tariff(
                session, info.context.principal, facility, definition, valid_from, field_of=field_of
            )
        return TariffVersion.from_row(row)
