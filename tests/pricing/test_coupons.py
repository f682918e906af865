"""Merchants' coupons in the tariff engine: minute coupons cover the first minutes of charging (step 4b), amount
coupons come off after the session maximum and the minimum (step 8), waivers take the rest (step 9), each never
above its limit (step 10); itemized as `coupon` adjustment lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import InvalidInput
from hub.pricing.coupons import Coupon
from hub.pricing.rules import amount_due, price, price_reentry
from hub.pricing.tariff import Tariff
from tests.pricing.support import SHANGHAI, durations, entries, flat, lines_total, tariffs, vehicle_classes, zones

ENTRY = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)
HOURLY = flat(60, 500)


def hours(value: float) -> datetime:
    return ENTRY + timedelta(hours=value)


def test_a_two_hour_coupon_covers_the_first_two_hours_and_the_rest_is_charged() -> None:
    quote = price(HOURLY, SHANGHAI, "standard", ENTRY, hours(3.5), coupons=[Coupon("c1", "minutes", minutes=120)])
    assert quote.total_fen == 1000  # 4 units, 2 covered
    assert quote.coupon_values() == {"c1": 1000}
    assert [(line.kind, line.amount_fen, line.ref) for line in quote.adjustments] == [("coupon", -1000, "c1")]
    assert quote.total_fen == lines_total(quote)
    assert sum(segment.amount_fen for segment in quote.segments) == 2000  # segments: the stay without coupons


def test_minute_coupons_start_where_charging_starts() -> None:
    first_free = flat(60, 500, free_minutes=30, free_mode="first_free")
    quote = price(first_free, SHANGHAI, "standard", ENTRY, hours(2.5), coupons=[Coupon("c", "minutes", minutes=60)])
    # Charging starts at 0:30; the coupon covers 0:30-1:30; 1:30-2:30 is charged.
    assert quote.total_fen == 500


def test_minute_coupons_add_up_and_never_take_more_than_the_stay() -> None:
    coupons = [Coupon("a", "minutes", minutes=60), Coupon("b", "minutes", minutes=60)]
    assert price(HOURLY, SHANGHAI, "standard", ENTRY, hours(3), coupons=coupons).total_fen == 500
    short = price(HOURLY, SHANGHAI, "standard", ENTRY, hours(1), coupons=coupons)
    assert short.total_fen == 0
    assert short.coupon_values() == {"a": 500, "b": 0}


def test_an_amount_coupon_comes_off_after_the_session_maximum_and_the_minimum() -> None:
    capped = flat(60, 500, session_max_fen=1200)
    quote = price(capped, SHANGHAI, "standard", ENTRY, hours(5), coupons=[Coupon("a", "amount", amount_fen=1000)])
    assert quote.total_fen == 200  # 2500 capped at 1200, less 1000
    minimum = flat(60, 100, minimum_charge_fen=800)
    quote = price(minimum, SHANGHAI, "standard", ENTRY, hours(1), coupons=[Coupon("a", "amount", amount_fen=300)])
    assert quote.total_fen == 500  # 100 raised to 800, less 300
    quote = price(HOURLY, SHANGHAI, "standard", ENTRY, hours(1), coupons=[Coupon("a", "amount", amount_fen=9999)])
    assert quote.total_fen == 0
    assert quote.coupon_values() == {"a": 500}


def test_a_waiver_takes_what_is_left_and_limits_cap_every_coupon() -> None:
    coupons = [Coupon("w", "waiver"), Coupon("m", "minutes", minutes=60)]
    quote = price(HOURLY, SHANGHAI, "standard", ENTRY, hours(3), coupons=coupons)
    assert quote.total_fen == 0
    assert quote.coupon_values() == {"m": 500, "w": 1000}  # minute coupons first, waivers last
    limited = price(HOURLY, SHANGHAI, "standard", ENTRY, hours(3), coupons=[Coupon("w", "waiver", limit_fen=600)])
    assert limited.total_fen == 900
    fund_short = [Coupon("m", "minutes", minutes=120, limit_fen=300)]
    assert price(HOURLY, SHANGHAI, "standard", ENTRY, hours(3), coupons=fund_short).total_fen == 1200


def test_a_payment_within_the_grace_and_a_reentry_see_the_coupons() -> None:
    tariff = flat(60, 500, exit_grace_minutes=15, reentry_minutes=10)
    coupon = [Coupon("m", "minutes", minutes=60)]
    due = amount_due(tariff, SHANGHAI, "standard", ENTRY, hours(2), 0, None, coupons=coupon)
    assert due.due_fen == 500
    paid = amount_due(tariff, SHANGHAI, "standard", ENTRY, hours(2.1), 500, hours(2), coupons=coupon)
    assert paid.due_fen == 0
    quote = price_reentry(tariff, SHANGHAI, "standard", ENTRY, hours(1), 0, hours(1.1), hours(3), coupons=coupon)
    assert quote.total_fen == 1000  # 3 units with the away time, 1 covered by the coupon


def test_a_malformed_coupon_is_refused() -> None:
    for coupon in (Coupon("x", "days"), Coupon("x", "minutes"), Coupon("x", "amount", amount_fen=-1)):
        with pytest.raises(InvalidInput) as caught:
            price(HOURLY, SHANGHAI, "standard", ENTRY, hours(1), coupons=[coupon])
        assert caught.value.code == "INVALID_COUPON"


@st.composite
def coupon_lists(draw: st.DrawFn) -> list[Coupon]:
    found = []
    for index in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["minutes", "amount", "waiver"]))
        limit = draw(st.one_of(st.none(), st.integers(0, 5000)))
        found.append(
            Coupon(
                f"c{index}",
                kind,
                minutes=draw(st.integers(1, 600)) if kind == "minutes" else 0,
                amount_fen=draw(st.integers(1, 5000)) if kind == "amount" else 0,
                limit_fen=limit,
            )
        )
    return found


@settings(max_examples=150, deadline=None)
@given(
    tariff=tariffs(),
    zone=zones,
    vehicle_class=vehicle_classes,
    entry=entries,
    stay=durations,
    coupons=coupon_lists(),
)
def test_coupons_never_make_a_stay_dearer_and_the_lines_add_up(
    tariff: Tariff,
    zone: ZoneInfo,
    vehicle_class: str,
    entry: datetime,
    stay: timedelta,
    coupons: list[Coupon],
) -> None:
    without = price(tariff, zone, vehicle_class, entry, entry + stay)
    quote = price(tariff, zone, vehicle_class, entry, entry + stay, coupons=coupons)
    assert 0 <= quote.total_fen <= without.total_fen
    assert quote.total_fen == lines_total(quote)
    values = quote.coupon_values()
    assert sum(values.values()) == without.total_fen - quote.total_fen
    for coupon in coupons:
        assert values[coupon.ref] >= 0
        if coupon.limit_fen is not None:
            assert values[coupon.ref] <= coupon.limit_fen
        if coupon.kind == "amount":
            assert values[coupon.ref] <= coupon.amount_fen
