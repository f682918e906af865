"""Hand-computed tariff vectors: each expectation is worked out in the comment beside it, not by the engine."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from hub.errors import InvalidInput
from hub.pricing.rules import amount_due, price, price_reentry
from hub.pricing.tariff import WEEKDAYS, Band, Rate, Tariff, Tier
from tests.pricing.support import BERLIN, SHANGHAI, flat, lines_total, local, priced

FRIDAY_10 = local(SHANGHAI, 2026, 11, 20, 10)  # Friday 20 November 2026, 10:00 in Shanghai


def quote_total(tariff: Tariff, entry: datetime, stay: timedelta, vehicle_class: str = "standard") -> int:
    return price(tariff, SHANGHAI, vehicle_class, entry, entry + stay).total_fen


@pytest.mark.parametrize(
    ("stay", "expected"),
    [
        (timedelta(minutes=1), 200),  # one started unit
        (timedelta(minutes=15), 200),
        (timedelta(minutes=30), 400),  # exactly two units
        (timedelta(minutes=30, seconds=1), 600),  # a second into the third unit
        (timedelta(minutes=31), 600),
    ],
)
def test_a_started_unit_is_charged_in_full(stay: timedelta, expected: int) -> None:
    assert quote_total(flat(15, 200), FRIDAY_10, stay) == expected


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (10, 500),  # inside the first unit (30 min, 500)
        (30, 500),
        (31, 700),  # first unit + one 15-minute unit of 200
        (60, 900),  # first unit + 2 x 200
        (61, 1100),  # first unit + 3 x 200
    ],
)
def test_first_unit_pricing(minutes: int, expected: int) -> None:
    tariff = Tariff(default_rate=Rate(15, 200, first_unit_minutes=30, first_unit_price_fen=500))
    assert quote_total(tariff, FRIDAY_10, timedelta(minutes=minutes)) == expected


def test_the_first_unit_is_its_own_line() -> None:
    tariff = Tariff(default_rate=Rate(15, 200, first_unit_minutes=30, first_unit_price_fen=500))
    quote = price(tariff, SHANGHAI, "standard", FRIDAY_10, FRIDAY_10 + timedelta(minutes=60))
    assert priced(quote) == [("default/first_unit", 1, 500, 500), ("default", 2, 200, 400)]


def test_a_stay_across_midnight_keeps_its_unit_grid_across_bands_and_days() -> None:
    tariff = Tariff(
        default_rate=Rate(60, 9999),  # never used: the two bands cover the whole week
        bands=(
            Band("day", WEEKDAYS, "08:00", "20:00", Rate(60, 500)),
            Band("night", WEEKDAYS, "20:00", "08:00", Rate(120, 100)),
        ),
    )
    entry, exit = local(SHANGHAI, 2026, 11, 20, 18, 30), local(SHANGHAI, 2026, 11, 21, 9, 15)
    quote = price(tariff, SHANGHAI, "standard", entry, exit)
    # Day units start 18:30 and 19:30 (the second runs to 20:30 at the day rate); night units of 2 h start
    # 20:30 and 22:30 on Friday, 00:30, 02:30, 04:30 and 06:30 on Saturday (the last runs to 08:30); one day
    # unit starts 08:30 and covers the exit at 09:15.
    assert priced(quote) == [
        ("band:day", 2, 500, 1000),
        ("band:night", 2, 100, 200),
        ("band:night", 4, 100, 400),
        ("band:day", 1, 500, 500),
    ]
    assert [(segment.start, segment.end) for segment in quote.segments] == [
        (entry, local(SHANGHAI, 2026, 11, 20, 20, 30)),
        (local(SHANGHAI, 2026, 11, 20, 20, 30), local(SHANGHAI, 2026, 11, 21, 0, 30)),
        (local(SHANGHAI, 2026, 11, 21, 0, 30), local(SHANGHAI, 2026, 11, 21, 8, 30)),
        (local(SHANGHAI, 2026, 11, 21, 8, 30), exit),
    ]
    assert quote.total_fen == 2100


def test_weekday_bands_and_a_friday_night_band_that_runs_into_saturday() -> None:
    tariff = Tariff(
        default_rate=Rate(60, 100),
        bands=(
            Band("weekday", ("mon", "tue", "wed", "thu", "fri"), "08:00", "20:00", Rate(60, 600)),
            Band("friday_night", ("fri",), "22:00", "06:00", Rate(60, 300)),
        ),
    )
    saturday_10, monday_10 = local(SHANGHAI, 2026, 11, 21, 10), local(SHANGHAI, 2026, 11, 23, 10)
    assert quote_total(tariff, saturday_10, timedelta(hours=2)) == 200  # the weekend is default
    assert quote_total(tariff, monday_10, timedelta(hours=2)) == 1200
    # Saturday 05:00 is still Friday's night band (300); 06:00 is default (100).
    assert quote_total(tariff, local(SHANGHAI, 2026, 11, 21, 5), timedelta(hours=2)) == 400


def test_tiers_by_elapsed_time_price_each_unit_where_it_starts() -> None:
    tariff = Tariff(default_rate=Rate(60, 300), default_tiers=(Tier(90, Rate(60, 600)),))
    quote = price(tariff, SHANGHAI, "standard", FRIDAY_10, FRIDAY_10 + timedelta(hours=3, minutes=30))
    # Units start at 0, 60, 120 and 180 minutes; the one from 60 to 120 straddles the 90-minute tier and
    # keeps the rate it started at.
    assert priced(quote) == [("default", 2, 300, 600), ("default/after_90min", 2, 600, 1200)]
    assert quote.total_fen == 1800


MONDAY_22 = local(SHANGHAI, 2026, 11, 16, 22)
WEDNESDAY_0130 = local(SHANGHAI, 2026, 11, 18, 1, 30)


def test_calendar_day_cap_over_several_days() -> None:
    quote = price(flat(60, 1000, day_cap_fen=3000), SHANGHAI, "standard", MONDAY_22, WEDNESDAY_0130)
    # Monday: 22:00, 23:00 = 2000. Tuesday: 24 units = 24000, capped at 3000. Wednesday: 00:00, 01:00 = 2000.
    # Tuesday is cut in two lines because the rolling 24 h from entry turn over at 22:00 (22 + 2 units).
    assert [(adjustment.kind, adjustment.amount_fen) for adjustment in quote.adjustments] == [
        ("cap:day", -19000),
        ("cap:day", -2000),
    ]
    assert quote.total_fen == 7000


def test_rolling_24_hour_cap_over_several_days() -> None:
    quote = price(flat(60, 1000, rolling_24h_cap_fen=3000), SHANGHAI, "standard", MONDAY_22, WEDNESDAY_0130)
    # Mon 22:00 - Tue 22:00: 24 units, capped at 3000. Tue 22:00 - Wed 01:30: 4 units = 4000, capped at 3000.
    assert [(adjustment.kind, adjustment.amount_fen) for adjustment in quote.adjustments] == [
        ("cap:24h", -21000),
        ("cap:24h", -1000),
    ]
    assert quote.total_fen == 6000


def test_both_caps_the_tighter_one_binds() -> None:
    tariff = flat(60, 1000, day_cap_fen=3000, rolling_24h_cap_fen=5000)
    quote = price(tariff, SHANGHAI, "standard", MONDAY_22, WEDNESDAY_0130)
    # Monday 2000; Tuesday up to 22:00 reaches the day cap (3000, and 5000 for the first 24 h); Tuesday after
    # 22:00 nothing (day cap spent); Wednesday 2000 (day 3000 and second 24 h 5000 both have room).
    assert quote.total_fen == 7000


def test_session_maximum() -> None:
    quote = price(
        flat(60, 1000, session_max_fen=5000), SHANGHAI, "standard", FRIDAY_10, FRIDAY_10 + timedelta(hours=10)
    )
    assert [(adjustment.kind, adjustment.amount_fen) for adjustment in quote.adjustments] == [("cap:session", -5000)]
    assert quote.total_fen == 5000


def test_minimum_charge_applies_only_when_something_is_charged() -> None:
    quote = price(
        flat(15, 100, minimum_charge_fen=300), SHANGHAI, "standard", FRIDAY_10, FRIDAY_10 + timedelta(minutes=20)
    )
    assert [(adjustment.kind, adjustment.amount_fen) for adjustment in quote.adjustments] == [("minimum", 100)]
    assert quote.total_fen == 300
    free_rate = flat(60, 0, minimum_charge_fen=300)
    assert quote_total(free_rate, FRIDAY_10, timedelta(hours=2)) == 0


def test_vehicle_class_percent_scales_prices_and_caps() -> None:
    tariff = Tariff(default_rate=Rate(60, 15), vehicle_class_percent=(("large", 200), ("new_energy", 50)))
    two_hours = timedelta(hours=2)
    assert quote_total(tariff, FRIDAY_10, two_hours, "standard") == 30
    assert quote_total(tariff, FRIDAY_10, two_hours, "small") == 30  # not listed: 100%
    assert quote_total(tariff, FRIDAY_10, two_hours, "large") == 60
    assert quote_total(tariff, FRIDAY_10, two_hours, "new_energy") == 16  # 7.5 rounds half up to 8 per unit
    capped = flat(60, 1000, day_cap_fen=3000, vehicle_class_percent=(("large", 200),))
    assert quote_total(capped, FRIDAY_10, timedelta(hours=10), "large") == 6000


# ------------------------------------------------------------------------------------------------------ DST


@pytest.mark.parametrize(
    ("night", "expected"),
    [
        ((2026, 3, 21), 800),  # an ordinary Saturday night: 22:00 to 06:00 is 8 hours
        ((2026, 3, 28), 700),  # spring forward: 02:00 becomes 03:00, the night is 7 hours
        ((2026, 10, 24), 900),  # fall back: 03:00 becomes 02:00 again, the night is 9 hours
    ],
)
def test_a_dst_night_in_berlin_costs_its_real_hours(night: tuple[int, int, int], expected: int) -> None:
    entry = local(BERLIN, *night, 22)
    exit = local(BERLIN, night[0], night[1], night[2] + 1, 6)
    assert price(flat(60, 100), BERLIN, "standard", entry, exit).total_fen == expected


@pytest.mark.parametrize(
    ("night", "expected"),
    [
        # 21:00 day unit (200), night units of 50 from 22:00 to 06:00 local, 06:00 day unit (200).
        ((2026, 3, 21), 800),  # 8 night units
        ((2026, 3, 28), 750),  # 7 night units: 02:00 local never happens
        ((2026, 10, 24), 850),  # 9 night units: 02:00 local happens twice
    ],
)
def test_bands_follow_the_local_clock_across_dst(night: tuple[int, int, int], expected: int) -> None:
    tariff = Tariff(
        default_rate=Rate(60, 9999),
        bands=(
            Band("day", WEEKDAYS, "06:00", "22:00", Rate(60, 200)),
            Band("night", WEEKDAYS, "22:00", "06:00", Rate(60, 50)),
        ),
    )
    entry = local(BERLIN, *night, 21)
    exit = local(BERLIN, night[0], night[1], night[2] + 1, 7)
    assert price(tariff, BERLIN, "standard", entry, exit).total_fen == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ((2026, 3, 29), 2300),  # a 23-hour local day: under the cap
        ((2026, 10, 25), 2400),  # a 25-hour local day: 2500 capped at 2400
    ],
)
def test_the_day_cap_is_per_local_calendar_day_whatever_its_length(day: tuple[int, int, int], expected: int) -> None:
    entry = local(BERLIN, *day)
    exit = local(BERLIN, day[0], day[1], day[2] + 1)
    assert price(flat(60, 100, day_cap_fen=2400), BERLIN, "standard", entry, exit).total_fen == expected


# ----------------------------------------------------------------------------------- free minutes and graces


@pytest.mark.parametrize(
    ("mode", "minutes", "expected"),
    [
        ("free_if_under", 29, 0),
        ("free_if_under", 30, 400),  # not shorter than 30: the whole stay, 2 units of 15
        ("free_if_under", 31, 600),
        ("first_free", 29, 0),
        ("first_free", 30, 0),
        ("first_free", 31, 200),  # only the minute after the free 30 is charged: 1 unit
        ("first_free", 60, 400),
    ],
)
def test_free_if_under_against_first_free(mode: str, minutes: int, expected: int) -> None:
    tariff = flat(15, 200, free_minutes=30, free_mode=mode)
    assert quote_total(tariff, FRIDAY_10, timedelta(minutes=minutes)) == expected


def test_leaving_within_the_entry_grace_is_free() -> None:
    tariff = flat(60, 500, entry_grace_minutes=10)
    quote = price(tariff, SHANGHAI, "standard", FRIDAY_10, FRIDAY_10 + timedelta(minutes=10))
    assert quote.total_fen == 0
    assert [segment.rule for segment in quote.segments] == ["entry_grace"]
    assert quote_total(tariff, FRIDAY_10, timedelta(minutes=10, seconds=1)) == 500


def test_exit_grace_after_a_payment() -> None:
    tariff = flat(60, 500, exit_grace_minutes=15)
    paid_at = FRIDAY_10 + timedelta(hours=1, minutes=55)  # 2 units were due then: 1000, paid
    within = amount_due(tariff, SHANGHAI, "standard", FRIDAY_10, paid_at + timedelta(minutes=10), 1000, paid_at)
    assert (within.due_fen, within.within_exit_grace, within.quote.priced_until) == (0, True, paid_at)
    # 16 minutes after paying, the stay is priced to the exit (12:11, a third unit) and 500 is owed.
    late = amount_due(tariff, SHANGHAI, "standard", FRIDAY_10, paid_at + timedelta(minutes=16), 1000, paid_at)
    assert (late.due_fen, late.within_exit_grace) == (500, False)
    unpaid = amount_due(tariff, SHANGHAI, "standard", FRIDAY_10, paid_at, 0, None)
    assert unpaid.due_fen == 1000


# ------------------------------------------------------------------------------------------ passes, re-entry


def test_a_pass_window_takes_out_the_units_it_covers_entirely() -> None:
    tariff = flat(60, 500)
    entry, exit = local(SHANGHAI, 2026, 11, 20, 7, 30), local(SHANGHAI, 2026, 11, 20, 18, 40)
    covered = (local(SHANGHAI, 2026, 11, 20, 8), local(SHANGHAI, 2026, 11, 20, 18))
    quote = price(tariff, SHANGHAI, "standard", entry, exit, [covered])
    # Units start 07:30 (partly uncovered: charged), 08:30 to 16:30 (inside the pass: not charged), 17:30
    # (18:00-18:30 uncovered: charged) and 18:30 (charged); 12 units without the pass.
    assert [(segment.rule, segment.units, segment.amount_fen) for segment in quote.segments] == [
        ("default", 1, 500),
        ("pass", 0, 0),
        ("default", 2, 1000),
    ]
    assert quote.total_fen == 1500
    assert price(tariff, SHANGHAI, "standard", entry, exit).total_fen == 6000


@pytest.mark.parametrize(
    ("pass_from", "expected"),
    [((8, 30), 1500), ((8, 31), 2000)],  # a minute later, the 08:30 unit is no longer entirely covered
)
def test_the_pass_boundary_to_the_minute(pass_from: tuple[int, int], expected: int) -> None:
    entry, exit = local(SHANGHAI, 2026, 11, 20, 7, 30), local(SHANGHAI, 2026, 11, 20, 18, 40)
    covered = (local(SHANGHAI, 2026, 11, 20, *pass_from), local(SHANGHAI, 2026, 11, 20, 17, 30))
    assert price(flat(60, 500), SHANGHAI, "standard", entry, exit, [covered]).total_fen == expected


def test_a_pass_running_up_to_the_exit_covers_the_unit_that_straddles_it() -> None:
    entry = FRIDAY_10
    exit = entry + timedelta(minutes=149)  # units start 10:00, 11:00 and 12:00; the last one ends after the exit
    assert price(flat(60, 500), SHANGHAI, "standard", entry, exit, [(entry, exit)]).total_fen == 0
    # Covered from 11:00 on: only the first unit is charged.
    later = price(flat(60, 500), SHANGHAI, "standard", entry, exit, [(entry + timedelta(hours=1), exit)])
    assert later.total_fen == 500


def test_a_pass_over_the_whole_stay_costs_nothing() -> None:
    entry = FRIDAY_10
    covered = (entry - timedelta(days=1), entry + timedelta(days=1))
    quote = price(
        flat(60, 500, minimum_charge_fen=300), SHANGHAI, "standard", entry, entry + timedelta(hours=3), [covered]
    )
    assert quote.total_fen == 0
    assert [segment.rule for segment in quote.segments] == ["pass"]


REENTRY = Tariff(default_rate=Rate(15, 200, first_unit_minutes=60, first_unit_price_fen=800), reentry_minutes=30)


def test_a_reentry_within_the_interval_continues_the_session() -> None:
    earlier_exit = FRIDAY_10 + timedelta(minutes=40)
    assert quote_total(REENTRY, FRIDAY_10, timedelta(minutes=40)) == 800  # the first hour, charged at exit
    entry, exit = earlier_exit + timedelta(minutes=10), FRIDAY_10 + timedelta(minutes=80)
    quote = price_reentry(REENTRY, SHANGHAI, "standard", FRIDAY_10, earlier_exit, 800, entry, exit)
    # One stay from 10:00 to 11:20: the first hour (800) and 2 units of 15 (400), minus the 800 charged.
    assert [(segment.rule, segment.amount_fen) for segment in quote.segments] == [
        ("default/first_unit", 800),
        ("away", 0),
        ("default", 400),
    ]
    assert [(adjustment.kind, adjustment.amount_fen) for adjustment in quote.adjustments] == [("already_charged", -800)]
    assert quote.total_fen == 400 == lines_total(quote)


def test_a_reentry_beyond_the_interval_is_a_new_session() -> None:
    earlier_exit = FRIDAY_10 + timedelta(minutes=40)
    entry = earlier_exit + timedelta(minutes=31)
    quote = price_reentry(
        REENTRY, SHANGHAI, "standard", FRIDAY_10, earlier_exit, 800, entry, entry + timedelta(minutes=30)
    )
    assert quote.total_fen == 800  # a first hour again
    assert quote.priced_from == entry
    assert quote.adjustments == ()


def test_whole_units_inside_the_absence_are_not_charged() -> None:
    tariff = flat(15, 200, reentry_minutes=60)
    earlier_exit, entry = FRIDAY_10 + timedelta(minutes=10), FRIDAY_10 + timedelta(minutes=50)
    quote = price_reentry(
        tariff, SHANGHAI, "standard", FRIDAY_10, earlier_exit, 200, entry, FRIDAY_10 + timedelta(minutes=65)
    )
    # Units start 10:00 (charged before), 10:15 and 10:30 (inside the absence), 10:45 and 11:00: 600 - 200.
    assert quote.total_fen == 400


def test_a_reentry_credit_never_makes_the_price_negative() -> None:
    earlier_exit = FRIDAY_10 + timedelta(minutes=40)
    entry = earlier_exit + timedelta(minutes=5)
    quote = price_reentry(
        REENTRY, SHANGHAI, "standard", FRIDAY_10, earlier_exit, 5000, entry, entry + timedelta(minutes=5)
    )
    assert quote.total_fen == 0 == lines_total(quote)


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("entry", "exit", "vehicle_class", "code"),
    [
        (datetime(2026, 11, 20, 10), datetime(2026, 11, 20, 11), "standard", "INVALID_TIME"),  # no time zone
        (FRIDAY_10, FRIDAY_10 - timedelta(minutes=1), "standard", "INVALID_STAY"),
        (FRIDAY_10, FRIDAY_10 + timedelta(hours=1), "truck", "UNKNOWN_VEHICLE_CLASS"),
    ],
)
def test_bad_stays_are_refused_with_a_reason(entry: datetime, exit: datetime, vehicle_class: str, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        price(flat(60, 500), SHANGHAI, vehicle_class, entry, exit)
    assert refused.value.code == code


def test_an_invalid_tariff_is_never_priced() -> None:
    with pytest.raises(InvalidInput) as refused:
        price(flat(0, 500), SHANGHAI, "standard", FRIDAY_10, FRIDAY_10 + timedelta(hours=1))
    assert refused.value.code == "INVALID_TARIFF"
    assert refused.value.details["problems"][0]["field"] == "default_rate.unit_minutes"
