"""GraphQL types of tariffs: sealed tariff versions with their typed definition, and itemized quotes.

Money is integer fen (1/100 of the operator's currency); durations are whole minutes; times of day are "HH:MM"
in the facility's time zone."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from hub.pricing import service
from hub.pricing.rules import Adjustment, Segment
from hub.pricing.tariff import Band, Rate, Tariff, Tier
from schema.access.types import VehicleClass
from schema.context import Context, Info
from schema.relay import row_ids

if TYPE_CHECKING:
    from schema.supply.types import Facility

FacilityType = Annotated["Facility", strawberry.lazy("schema.supply.types")]


@strawberry.enum
class Weekday(Enum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


@strawberry.enum(description="How a tariff's free minutes apply")
class FreeMode(Enum):
    FREE_IF_UNDER = strawberry.enum_value(
        "free_if_under", description="A stay shorter than the free minutes is free; a longer one is charged in full"
    )
    FIRST_FREE = strawberry.enum_value("first_free", description="The first free minutes of every stay are free")


# ------------------------------------------------------------------------------------------ definition


@strawberry.type(description="Every started unit costs unitPriceFen; an optional first unit is priced on its own")
class TariffRate:
    unit_minutes: int
    unit_price_fen: int
    first_unit_minutes: int | None
    first_unit_price_fen: int | None

    @classmethod
    def of(cls, rate: Rate) -> TariffRate:
        return cls(
            unit_minutes=rate.unit_minutes,
            unit_price_fen=rate.unit_price_fen,
            first_unit_minutes=rate.first_unit_minutes,
            first_unit_price_fen=rate.first_unit_price_fen,
        )


@strawberry.type(description="From afterMinutes since entry on, this rate replaces the one before (progressive)")
class TariffTier:
    after_minutes: int
    rate: TariffRate

    @classmethod
    def of(cls, tier: Tier) -> TariffTier:
        return cls(after_minutes=tier.after_minutes, rate=TariffRate.of(tier.rate))


@strawberry.type(
    description="A time-of-day band on some weekdays, local time. An end at or before the start runs past "
    "midnight (and belongs to the day it starts); an end equal to the start is the whole day."
)
class TariffBand:
    name: str
    days: list[Weekday]
    start: str
    end: str
    rate: TariffRate
    tiers: list[TariffTier]

    @classmethod
    def of(cls, band: Band) -> TariffBand:
        return cls(
            name=band.name,
            days=[Weekday(day) for day in band.days],
            start=band.start,
            end=band.end,
            rate=TariffRate.of(band.rate),
            tiers=[TariffTier.of(tier) for tier in band.tiers],
        )


@strawberry.type(description="Percent of the standard price per vehicle class; null: 100")
class VehicleClassPercent:
    small: int | None
    standard: int | None
    large: int | None
    new_energy: int | None


@strawberry.type(description="A tariff: rates, bands, tiers, free minutes, graces, caps and vehicle classes")
class TariffDefinition:
    default_rate: TariffRate = strawberry.field(description="Outside every band")
    default_tiers: list[TariffTier]
    bands: list[TariffBand]
    free_minutes: int
    free_mode: FreeMode
    entry_grace_minutes: int = strawberry.field(description="Leaving within this long of entry costs nothing")
    exit_grace_minutes: int = strawberry.field(description="After paying, this long to leave without owing more")
    day_cap_fen: int | None = strawberry.field(description="Per local calendar day")
    rolling_24h_cap_fen: int | None = strawberry.field(description="Per 24 hours counted from entry")
    session_max_fen: int | None
    minimum_charge_fen: int = strawberry.field(description="When anything at all is charged")
    vehicle_class_percent: VehicleClassPercent
    reentry_minutes: int = strawberry.field(description="A re-entry within this long continues the earlier session")
    json: JSON = strawberry.field(description="The same tariff in its JSON form, as setTariff(tariffJson:) takes it")

    @classmethod
    def of(cls, tariff: Tariff) -> TariffDefinition:
        percents = dict(tariff.vehicle_class_percent)
        return cls(
            default_rate=TariffRate.of(tariff.default_rate),
            default_tiers=[TariffTier.of(tier) for tier in tariff.default_tiers],
            bands=[TariffBand.of(band) for band in tariff.bands],
            free_minutes=tariff.free_minutes,
            free_mode=FreeMode(tariff.free_mode),
            entry_grace_minutes=tariff.entry_grace_minutes,
            exit_grace_minutes=tariff.exit_grace_minutes,
            day_cap_fen=tariff.day_cap_fen,
            rolling_24h_cap_fen=tariff.rolling_24h_cap_fen,
            session_max_fen=tariff.session_max_fen,
            minimum_charge_fen=tariff.minimum_charge_fen,
            vehicle_class_percent=VehicleClassPercent(
                small=percents.get("small"),
                standard=percents.get("standard"),
                large=percents.get("large"),
                new_energy=percents.get("new_energy"),
            ),
            reentry_minutes=tariff.reentry_minutes,
            json=tariff.to_dict(),
        )


# --------------------------------------------------------------------------------------------- versions


@strawberry.type(
    description="One sealed version of a facility's tariff: never changed; a price change is a new version. A "
    "stay is priced by the version in effect when it starts."
)
class TariffVersion(relay.Node):
    id: relay.NodeID[str]
    version: int = strawberry.field(description="1, 2, 3, ... per facility, in the order they were set")
    valid_from: datetime = strawberry.field(description="In effect from this instant until the next version's")
    created_at: datetime
    row: strawberry.Private[Mapping[str, Any]]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TariffVersion:
        return cls(
            id=str(row["id"]),
            version=row["version"],
            valid_from=row["valid_from"],
            created_at=row["created_at"],
            row=row,
        )

    @strawberry.field
    def definition(self) -> TariffDefinition:
        return TariffDefinition.of(service.parsed_tariff(self.row))

    @strawberry.field(description="Who set it; shown to the facility's operator, the city and the platform")
    def created_by(self, info: Info) -> str | None:
        principal = info.context.principal
        if principal.kind in ("city", "platform") or principal.tenant_id == self.row["tenant_id"]:
            return self.row["created_by"]
        return None

    @strawberry.field
    async def facility(self, info: Info) -> FacilityType | None:
        return await info.context.loaders.facility.load(self.row["facility_id"])

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[TariffVersion | None]:
        return await info.context.loaders.tariff_version.load_many(row_ids(node_ids))


@strawberry.type
class TariffHistory:
    current: TariffVersion | None = strawberry.field(description="The version in effect now; null: none yet")
    versions: list[TariffVersion] = strawberry.field(
        description="Every version, newest first: scheduled ones, then the current one, then the past"
    )
    facility_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def facility(self, info: Info) -> FacilityType | None:
        return await info.context.loaders.facility.load(self.facility_id)


def current_tariff_loader(context: Context) -> DataLoader[uuid.UUID, TariffVersion | None]:
    """The request's loader of facilities' versions in effect now (one query per batch of facilities)."""

    def make(context: Context) -> DataLoader[uuid.UUID, TariffVersion | None]:
        async def load(facility_ids: list[uuid.UUID]) -> list[TariffVersion | None]:
            async with context.read() as session:
                found = await service.current_tariffs(session, context.principal, facility_ids, context.now)
            return [TariffVersion.from_row(found[key]) if key in found else None for key in facility_ids]

        return DataLoader(load_fn=load)

    return context.loaders.of("current_tariff", make)


# ----------------------------------------------------------------------------------------------- quotes


@strawberry.type(description="A priced run of units, or a zero-amount line for time not charged")
class QuoteSegment:
    start: datetime
    end: datetime
    rule: str = strawberry.field(
        description="default or band:<name>, with /after_<N>min for a tier and /first_unit; entry_grace, "
        "free_if_under, first_free, pass and away for time not charged"
    )
    units: int
    unit_price_fen: int
    amount_fen: int

    @classmethod
    def of(cls, segment: Segment) -> QuoteSegment:
        return cls(
            start=segment.start,
            end=segment.end,
            rule=segment.rule,
            units=segment.units,
            unit_price_fen=segment.unit_price_fen,
            amount_fen=segment.amount_fen,
        )


@strawberry.type(description="A correction of the priced units: caps (negative), the minimum charge (positive)")
class QuoteAdjustment:
    kind: str = strawberry.field(description="cap:day, cap:24h, cap:session, minimum or already_charged")
    start: datetime
    end: datetime
    amount_fen: int
    reason: str

    @classmethod
    def of(cls, adjustment: Adjustment) -> QuoteAdjustment:
        return cls(
            start=adjustment.start,
            end=adjustment.end,
            kind=adjustment.kind,
            amount_fen=adjustment.amount_fen,
            reason=adjustment.reason,
        )


@strawberry.type(
    description="What a stay would cost, itemized: totalFen is the sum of the segments and adjustments. Priced "
    "by the tariff version in effect when the stay starts, in the facility's time zone."
)
class PriceQuote:
    tariff: TariffVersion = strawberry.field(description="The version quoted")
    vehicle_class: VehicleClass
    start: datetime = strawberry.field(name="from")
    end: datetime = strawberry.field(name="to")
    currency: str = strawberry.field(description="ISO 4217 code of the operator's currency")
    total_fen: int
    segments: list[QuoteSegment]
    adjustments: list[QuoteAdjustment]
    facility_id: strawberry.Private[uuid.UUID]

    @classmethod
    def of(cls, priced: service.PricedStay) -> PriceQuote:
        quote = priced.quote
        return cls(
            tariff=TariffVersion.from_row(priced.version),
            vehicle_class=VehicleClass(quote.vehicle_class),
            start=quote.priced_from,
            end=quote.priced_until,
            currency=priced.currency,
            total_fen=quote.total_fen,
            segments=[QuoteSegment.of(segment) for segment in quote.segments],
            adjustments=[QuoteAdjustment.of(adjustment) for adjustment in quote.adjustments],
            facility_id=priced.facility_id,
        )

    @strawberry.field
    async def facility(self, info: Info) -> FacilityType | None:
        return await info.context.loaders.facility.load(self.facility_id)
