"""The pure rules: the fee's one rounding rule, the business day's cut in the tenant's zone, lines adding up."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import InvalidInput
from hub.settlement import rules


@pytest.mark.parametrize(
    ("basis", "bps", "fee"),
    [
        (0, 60, 0),
        (10_000, 60, 60),  # 0.6% of 100.00 yuan
        (83, 60, 0),  # 0.498 fen rounds down
        (84, 60, 1),  # 0.504 fen rounds up
        (250, 20, 1),  # exactly half a fen rounds up
        (750, 20, 2),  # 1.5 fen rounds up
        (249, 20, 0),
        (-250, 20, -1),  # half away from zero for a fee refunded on net refunds
        (-84, 60, -1),
        (12_345_678, 60, 74_074),  # 74074.068
        (1, 10_000, 1),
        (99, 0, 0),
    ],
)
def test_fee_rounds_half_up_to_the_fen_per_statement(basis: int, bps: int, fee: int) -> None:
    assert rules.platform_fee(basis, bps) == fee


@given(st.integers(-(10**12), 10**12), st.integers(0, 10_000))
def test_fee_is_within_half_a_fen_of_the_exact_fee(basis: int, bps: int) -> None:
    fee = rules.platform_fee(basis, bps)
    exact_times_2 = 2 * basis * bps  # 2 * exact fee * 10000
    assert abs(fee * 2 * 10_000 - exact_times_2) <= 10_000
    assert rules.platform_fee(-basis, bps) == -fee


def test_shanghai_day_starts_at_16_utc_the_day_before() -> None:
    day = rules.business_day(date(2026, 11, 21), "Asia/Shanghai")
    assert day.start == datetime(2026, 11, 20, 16, tzinfo=UTC)
    assert day.end == datetime(2026, 11, 21, 16, tzinfo=UTC)
    assert not day.due(datetime(2026, 11, 21, 16, 4, tzinfo=UTC))
    assert day.due(datetime(2026, 11, 21, 16, 5, tzinfo=UTC))


def test_dst_days_are_23_and_25_hours_long() -> None:
    spring = rules.business_day(date(2026, 3, 8), "America/New_York")
    autumn = rules.business_day(date(2026, 11, 1), "America/New_York")
    assert spring.start == datetime(2026, 3, 8, 5, tzinfo=UTC)
    assert (spring.end - spring.start).total_seconds() == 23 * 3600
    assert autumn.start == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert (autumn.end - autumn.start).total_seconds() == 25 * 3600


def test_last_due_date_waits_for_the_safety_lag() -> None:
    assert rules.last_due_date(datetime(2026, 11, 21, 16, 4, tzinfo=UTC), "Asia/Shanghai") == date(2026, 11, 20)
    assert rules.last_due_date(datetime(2026, 11, 21, 16, 5, tzinfo=UTC), "Asia/Shanghai") == date(2026, 11, 21)


def test_unknown_time_zone_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        rules.business_day(date(2026, 1, 1), "Mars/Olympus")


@given(
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 10**8),
    st.integers(-(10**8), 10**8),
    st.integers(0, 10**8),
    st.integers(-(10**9), 0),
    st.integers(0, 10_000),
)
def test_lines_add_up_to_payout_and_carry(
    gross: int, refunds: int, coupons: int, other: int, returned: int, carried: int, bps: int
) -> None:
    totals = rules.statement_totals(rules.Lines(gross, refunds, coupons, other, returned), carried, bps)
    assert carried + gross - refunds + coupons + other + returned - totals.fee == totals.payout + totals.carried_out
    assert totals.payout >= 0 >= totals.carried_out
    assert totals.payout == 0 or totals.carried_out == 0
