"""Builders and hypothesis strategies for the tariff tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from hub.pricing.rules import Quote, validate
from hub.pricing.tariff import VEHICLE_CLASSES, WEEKDAYS, Band, Rate, Tariff, Tier

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
EVERY_DAY = WEEKDAYS


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An instant given by the facility's wall clock, in UTC as the engine gets it."""
    return datetime(year, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


def flat(unit_minutes: int, unit_price_fen: int, **options: Any) -> Tariff:
    """A tariff with one rate all day, every day."""
    return Tariff(default_rate=Rate(unit_minutes, unit_price_fen), **options)


def lines_total(quote: Quote) -> int:
    return sum(segment.amount_fen for segment in quote.segments) + sum(
        adjustment.amount_fen for adjustment in quote.adjustments
    )


def priced(quote: Quote) -> list[tuple[str, int, int, int]]:
    """The priced segments as (rule, units, unit price, amount)."""
    return [
        (segment.rule, segment.units, segment.unit_price_fen, segment.amount_fen)
        for segment in quote.segments
        if segment.units
    ]


# ------------------------------------------------------------------------------------------------ strategies

prices = st.integers(0, 1500)


@st.composite
def rates(draw: st.DrawFn) -> Rate:
    # Units of at most an hour and bands of whole hours: every drawn tariff is valid.
    unit = draw(st.sampled_from([5, 10, 15, 20, 30, 60]))
    if draw(st.booleans()):
        return Rate(unit, draw(prices), draw(st.sampled_from([15, 30, 60])), draw(prices))
    return Rate(unit, draw(prices))


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    afters = sorted(set(draw(st.lists(st.integers(1, 36 * 60), max_size=2))))
    return tuple(Tier(after, draw(rates())) for after in afters)


@st.composite
def band_lists(draw: st.DrawFn) -> tuple[Band, ...]:
    # Cut the day at a few whole hours; the pieces (the last wraps past midnight) never overlap, whatever days
    # each is given, and some of them stay default.
    cuts = sorted(draw(st.sets(st.integers(0, 23), min_size=2, max_size=4)))
    bands = []
    for index, start in enumerate(cuts):
        if not draw(st.booleans()):
            continue
        end = cuts[(index + 1) % len(cuts)]
        days = draw(st.one_of(st.just(EVERY_DAY), st.sets(st.sampled_from(WEEKDAYS), min_size=1).map(sorted)))
        bands.append(
            Band(f"b{index}", tuple(days), f"{start:02d}:00", f"{end:02d}:00", draw(rates()), draw(tier_lists()))
        )
    return tuple(bands)


def dearest_unit(tariff: Tariff) -> int:
    all_rates = [tariff.default_rate, *(tier.rate for tier in tariff.default_tiers)]
    for band in tariff.bands:
        all_rates += [band.rate, *(tier.rate for tier in band.tiers)]
    return max(max(rate.unit_price_fen, rate.first_unit_price_fen or 0) for rate in all_rates)


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    base = Tariff(default_rate=draw(rates()), default_tiers=draw(tier_lists()), bands=draw(band_lists()))
    floor = dearest_unit(base)
    caps = st.one_of(st.none(), st.integers(floor, floor * 30 + 100))
    day_cap, rolling_cap, session_max = draw(caps), draw(caps), draw(caps)
    ceiling = min(cap for cap in (day_cap, rolling_cap, session_max, 3000) if cap is not None)
    tariff = Tariff(
        default_rate=base.default_rate,
        default_tiers=base.default_tiers,
        bands=base.bands,
        free_minutes=draw(st.sampled_from([0, 0, 10, 15, 30, 60])),
        free_mode=draw(st.sampled_from(["free_if_under", "first_free"])),
        entry_grace_minutes=draw(st.sampled_from([0, 5, 15])),
        exit_grace_minutes=draw(st.sampled_from([0, 15])),
        day_cap_fen=day_cap,
        rolling_24h_cap_fen=rolling_cap,
        session_max_fen=session_max,
        minimum_charge_fen=draw(st.integers(0, ceiling)),
        vehicle_class_percent=tuple(
            draw(st.dictionaries(st.sampled_from(VEHICLE_CLASSES), st.integers(0, 300), max_size=3)).items()
        ),
        reentry_minutes=draw(st.sampled_from([0, 15, 60])),
    )
    assert validate(tariff) == [], validate(tariff)
    return tariff


zones = st.sampled_from([SHANGHAI, BERLIN])
# Around Berlin's DST changes of 2026 (29 March, 25 October) and an ordinary week.
entries = st.sampled_from(
    [datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 10, 23, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC)]
).flatmap(lambda day: st.integers(0, 4 * 24 * 3600).map(lambda second: day + timedelta(seconds=second)))
durations = st.integers(0, 4 * 24 * 3600).map(lambda second: timedelta(seconds=second))
vehicle_classes = st.sampled_from(VEHICLE_CLASSES)
