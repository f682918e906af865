"""The month a pass sale covers: one calendar month from the chosen day, clamped at short months."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from hub.access.offer_rules import days_of, month_end, period_of


@pytest.mark.parametrize(
    ("start", "last"),
    [
        (date(2026, 3, 1), date(2026, 3, 31)),
        (date(2026, 3, 15), date(2026, 4, 14)),
        (date(2026, 12, 20), date(2027, 1, 19)),
        (date(2026, 1, 31), date(2026, 2, 28)),
        (date(2028, 1, 30), date(2028, 2, 29)),
        (date(2026, 1, 29), date(2026, 2, 28)),
    ],
)
def test_month_end(start: date, last: date) -> None:
    assert month_end(start) == last


def test_the_period_is_local_midnights_and_reads_back_as_the_same_days() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    start, end = period_of(date(2026, 5, 10), zone)
    assert start == datetime(2026, 5, 10, tzinfo=zone) and end == datetime(2026, 6, 10, tzinfo=zone)
    assert days_of(start, end, zone) == (date(2026, 5, 10), date(2026, 6, 9))
