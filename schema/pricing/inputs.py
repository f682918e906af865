"""GraphQL inputs of tariffs, turned into the engine's JSON form (hub.pricing.tariff), whose problems are named
back by their GraphQL field paths (`tariff.bands[2].rate.unitPriceFen`)."""

from __future__ import annotations

import re
from typing import Any

import strawberry
from strawberry.utils.str_converters import to_camel_case

from schema.pricing.types import FreeMode, Weekday


@strawberry.input
class TariffRateInput:
    unit_minutes: int = strawberry.field(description="Every started unit of this many minutes is charged")
    unit_price_fen: int
    first_unit_minutes: int | None = strawberry.field(
        default=None, description="With firstUnitPriceFen: the first charged unit of a stay, priced on its own"
    )
    first_unit_price_fen: int | None = None


@strawberry.input
class TariffTierInput:
    after_minutes: int = strawberry.field(description="From this many minutes after entry on (ascending)")
    rate: TariffRateInput


@strawberry.input
class TariffBandInput:
    name: str
    days: list[Weekday]
    start: str = strawberry.field(description="HH:MM local time")
    end: str = strawberry.field(description="HH:MM (24:00 allowed); at or before start: runs past midnight")
    rate: TariffRateInput
    tiers: list[TariffTierInput] = strawberry.field(default_factory=list)


@strawberry.input(description="Percent of the standard price per vehicle class (0 to 1000); left out: 100")
class VehicleClassPercentInput:
    small: int | None = None
    standard: int | None = None
    large: int | None = None
    new_energy: int | None = None


@strawberry.input(
    description="A tariff. Outside every band the default rate (and its tiers) applies. Validation reports every "
    "problem at once: overlapping bands, negative prices, caps below a unit's price, units longer than their band, "
    "tiers out of order, a minimum above a cap."
)
class TariffInput:
    default_rate: TariffRateInput
    default_tiers: list[TariffTierInput] = strawberry.field(default_factory=list)
    bands: list[TariffBandInput] = strawberry.field(default_factory=list)
    free_minutes: int = 0
    free_mode: FreeMode = FreeMode.FREE_IF_UNDER
    entry_grace_minutes: int = 0
    exit_grace_minutes: int = 0
    day_cap_fen: int | None = None
    rolling_24h_cap_fen: int | None = None
    session_max_fen: int | None = None
    minimum_charge_fen: int = 0
    vehicle_class_percent: VehicleClassPercentInput | None = None
    reentry_minutes: int = 0


def _rate(rate: TariffRateInput) -> dict[str, Any]:
    return {
        "unit_minutes": rate.unit_minutes,
        "unit_price_fen": rate.unit_price_fen,
        "first_unit_minutes": rate.first_unit_minutes,
        "first_unit_price_fen": rate.first_unit_price_fen,
    }


def _tiers(tiers: list[TariffTierInput]) -> list[dict[str, Any]]:
    return [{"after_minutes": tier.after_minutes, "rate": _rate(tier.rate)} for tier in tiers]


def tariff_definition(tariff: TariffInput) -> dict[str, Any]:
    """The engine's JSON form of a typed tariff input."""
    percents = tariff.vehicle_class_percent or VehicleClassPercentInput()
    return {
        "default_rate": _rate(tariff.default_rate),
        "default_tiers": _tiers(tariff.default_tiers),
        "bands": [
            {
                "name": band.name,
                "days": [day.value for day in band.days],
                "start": band.start,
                "end": band.end,
                "rate": _rate(band.rate),
                "tiers": _tiers(band.tiers),
            }
            for band in tariff.bands
        ],
        "free_minutes": tariff.free_minutes,
        "free_mode": tariff.free_mode.value,
        "entry_grace_minutes": tariff.entry_grace_minutes,
        "exit_grace_minutes": tariff.exit_grace_minutes,
        "day_cap_fen": tariff.day_cap_fen,
        "rolling_24h_cap_fen": tariff.rolling_24h_cap_fen,
        "session_max_fen": tariff.session_max_fen,
        "minimum_charge_fen": tariff.minimum_charge_fen,
        "vehicle_class_percent": {
            name: percent
            for name, percent in (
                ("small", percents.small),
                ("standard", percents.standard),
                ("large", percents.large),
                ("new_energy", percents.new_energy),
            )
            if percent is not None
        },
        "reentry_minutes": tariff.reentry_minutes,
    }


_SEGMENT = re.compile(r"^([^\[]*)(.*)$")  # a field name and its list indices: bands[2] -> ("bands", "[2]")


def typed_path(path: str, argument: str = "tariff") -> str:
    """The GraphQL path of an engine field path: `bands[2].rate.unit_price_fen` ->
    `tariff.bands[2].rate.unitPriceFen`."""
    if not path:
        return argument
    parts = []
    for segment in path.split("."):
        match = _SEGMENT.match(segment)
        name, indices = (match.group(1), match.group(2)) if match else (segment, "")
        parts.append(to_camel_case(name) + indices)
    return ".".join([argument, *parts])


def json_path(path: str, argument: str = "tariffJson") -> str:
    """The path of an engine field inside the JSON argument, which uses the engine's own names."""
    return f"{argument}.{path}" if path else argument
