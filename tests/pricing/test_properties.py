"""Properties of the tariff engine over generated valid tariffs and stays, in Shanghai and in Berlin (DST)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.pricing.rules import Quote, amount_due, price, price_reentry
from hub.pricing.tariff import Tariff
from tests.pricing.support import durations, entries, lines_total, tariffs, vehicle_classes, zones

EXAMPLES = settings(max_examples=150, deadline=None)
DAY = timedelta(hours=24)


def scaled(amount: int, tariff: Tariff, vehicle_class: str) -> int:
    """The documented class scaling: the percent of the amount, rounded half up to a whole fen."""
    return (amount * tariff.percent_for(vehicle_class) + 50) // 100


def charged_by(quote: Quote, period: object) -> dict[object, int]:
    """Every line's amount, summed by the period (local day, 24 hours since entry) its start falls in."""
    sums: dict[object, int] = defaultdict(int)
    for line in (*quote.segments, *quote.adjustments):
        sums[period(line.start)] += line.amount_fen  # type: ignore[operator]
    return sums


@EXAMPLES
@given(tariff=tariffs(), zone=zones, vehicle_class=vehicle_classes, entry=entries, stay=durations)
def test_a_quote_is_never_negative_and_its_lines_add_up(
    tariff: Tariff, zone: ZoneInfo, vehicle_class: str, entry: datetime, stay: timedelta
) -> None:
    quote = price(tariff, zone, vehicle_class, entry, entry + stay)
    assert quote.total_fen >= 0
    assert quote.total_fen == lines_total(quote)
    for segment in quote.segments:
        assert segment.amount_fen == segment.units * segment.unit_price_fen >= 0
        assert entry <= segment.start < segment.end <= entry + stay


@EXAMPLES
@given(tariff=tariffs(), zone=zones, vehicle_class=vehicle_classes, entry=entries, stay=durations)
def test_caps_are_respected_per_local_day_per_24_hours_and_per_session(
    tariff: Tariff, zone: ZoneInfo, vehicle_class: str, entry: datetime, stay: timedelta
) -> None:
    quote = price(tariff, zone, vehicle_class, entry, entry + stay)
    if tariff.day_cap_fen is not None:
        cap = scaled(tariff.day_cap_fen, tariff, vehicle_class)
        assert max(charged_by(quote, lambda start: start.astimezone(zone).date()).values(), default=0) <= cap
    if tariff.rolling_24h_cap_fen is not None:
        cap = scaled(tariff.rolling_24h_cap_fen, tariff, vehicle_class)
        assert max(charged_by(quote, lambda start: (start - entry) // DAY).values(), default=0) <= cap
    if tariff.session_max_fen is not None:
        assert quote.total_fen <= scaled(tariff.session_max_fen, tariff, vehicle_class)


@EXAMPLES
@given(
    tariff=tariffs(),
    zone=zones,
    vehicle_class=vehicle_classes,
    entry=entries,
    stay=durations,
    longer=st.integers(1, 30 * 3600).map(lambda second: timedelta(seconds=second)),
)
def test_a_longer_stay_never_costs_less(
    tariff: Tariff, zone: ZoneInfo, vehicle_class: str, entry: datetime, stay: timedelta, longer: timedelta
) -> None:
    shorter = price(tariff, zone, vehicle_class, entry, entry + stay)
    assert price(tariff, zone, vehicle_class, entry, entry + stay + longer).total_fen >= shorter.total_fen


@st.composite
def pass_windows(draw: st.DrawFn, entry: datetime, stay: timedelta) -> list[tuple[datetime, datetime]]:
    span = int(stay.total_seconds()) + 7200
    windows = []
    for _ in range(draw(st.integers(1, 3))):
        start = entry - timedelta(hours=1) + timedelta(seconds=draw(st.integers(0, span)))
        windows.append((start, start + timedelta(seconds=draw(st.integers(0, 30 * 3600)))))
    return windows


@EXAMPLES
@given(tariff=tariffs(), zone=zones, vehicle_class=vehicle_classes, entry=entries, stay=durations, data=st.data())
def test_pass_coverage_never_increases_the_price(
    tariff: Tariff, zone: ZoneInfo, vehicle_class: str, entry: datetime, stay: timedelta, data: st.DataObject
) -> None:
    windows = data.draw(pass_windows(entry, stay))
    covered = price(tariff, zone, vehicle_class, entry, entry + stay, windows)
    assert covered.total_fen <= price(tariff, zone, vehicle_class, entry, entry + stay).total_fen
    assert covered.total_fen == lines_total(covered) >= 0


@EXAMPLES
@given(
    tariff=tariffs(),
    zone=zones,
    entry=entries,
    first=durations,
    gap=st.integers(0, 90 * 60).map(lambda second: timedelta(seconds=second)),
    second=durations,
    charged=st.integers(0, 50_000),
)
def test_a_reentry_is_never_negative_and_never_dearer_than_staying_throughout(
    tariff: Tariff, zone: ZoneInfo, entry: datetime, first: timedelta, gap: timedelta, second: timedelta, charged: int
) -> None:
    earlier_exit = entry + first
    reentry = earlier_exit + gap
    exit = reentry + second
    quote = price_reentry(tariff, zone, "standard", entry, earlier_exit, charged, reentry, exit)
    assert quote.total_fen == lines_total(quote) >= 0
    if tariff.reentry_minutes > 0 and gap <= timedelta(minutes=tariff.reentry_minutes):
        # Continued: the absence is never charged, so staying throughout would cost at least as much.
        assert quote.priced_from == entry
        assert quote.total_fen <= max(0, price(tariff, zone, "standard", entry, exit).total_fen - charged)
    else:
        assert quote == price(tariff, zone, "standard", reentry, exit)


@EXAMPLES
@given(
    tariff=tariffs(),
    zone=zones,
    entry=entries,
    stay=durations,
    paid_after=st.integers(0, 3 * 24 * 3600).map(lambda second: timedelta(seconds=second)),
)
def test_paying_the_quote_leaves_nothing_due_within_the_exit_grace(
    tariff: Tariff, zone: ZoneInfo, entry: datetime, stay: timedelta, paid_after: timedelta
) -> None:
    paid_at = entry + paid_after
    paid = price(tariff, zone, "standard", entry, paid_at).total_fen
    exit = paid_at + stay
    due = amount_due(tariff, zone, "standard", entry, exit, paid, paid_at)
    assert due.due_fen >= 0
    if exit - paid_at <= timedelta(minutes=tariff.exit_grace_minutes):
        assert due.due_fen == 0 and due.within_exit_grace
    else:
        assert due.due_fen == max(0, price(tariff, zone, "standard", entry, exit).total_fen - paid)


@settings(max_examples=200, deadline=None)
@given(tariff=tariffs())
def test_a_tariff_round_trips_through_its_json_form(tariff: Tariff) -> None:
    document = tariff.to_dict()
    assert Tariff.from_dict(document) == tariff
    assert Tariff.from_dict(json.loads(json.dumps(document))) == tariff
    assert Tariff.from_dict(document).to_dict() == document
