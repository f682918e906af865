"""Windows, buckets and the CDS figures computed from per-bucket sums."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.errors import InvalidInput
from hub.history import rules
from hub.history.rules import BucketTotals

NOW = datetime(2026, 11, 21, 10, 37, 12, tzinfo=UTC)


def test_a_window_widens_to_whole_buckets_and_stops_at_the_bucket_in_progress() -> None:
    span = rules.window(
        datetime(2026, 11, 21, 9, 3, tzinfo=UTC),
        NOW + timedelta(hours=2),
        rules.FIVE_MINUTES,
        rules.MAX_SAMPLE_WINDOW,
        NOW,
    )
    assert span.since == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assert span.until == datetime(2026, 11, 21, 10, 40, tzinfo=UTC)
    assert len(span.buckets) == 20 and span.buckets[-1] == datetime(2026, 11, 21, 10, 35, tzinfo=UTC)


def test_a_window_in_another_zone_is_bucketed_in_utc() -> None:
    shanghai = datetime(2026, 11, 21, 16, 30, tzinfo=ZoneInfo("Asia/Shanghai"))  # 08:30 UTC
    span = rules.window(shanghai, shanghai + timedelta(hours=1), rules.ONE_HOUR, rules.MAX_METRICS_WINDOW, NOW)
    assert span.since == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    assert span.buckets == [datetime(2026, 11, 21, 8, tzinfo=UTC), datetime(2026, 11, 21, 9, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("since", "until", "code"),
    [
        (NOW, NOW, "INVALID_WINDOW"),
        (NOW, NOW - timedelta(hours=1), "INVALID_WINDOW"),
        (NOW - timedelta(days=8), NOW, "WINDOW_TOO_LONG"),
        (NOW + timedelta(hours=1), NOW + timedelta(hours=2), "INVALID_WINDOW"),
        (datetime(2026, 11, 21, 9), NOW, "INVALID_TIME"),
    ],
)
def test_bad_windows_are_refused_with_a_reason(since: datetime, until: datetime, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.window(since, until, rules.FIVE_MINUTES, rules.MAX_SAMPLE_WINDOW, NOW)
    assert refused.value.code == code


HOUR = datetime(2026, 11, 21, 8, tzinfo=UTC)


def test_hourly_metrics_of_a_reported_hour() -> None:
    # Three spaces for the whole hour: 1.5 hours occupied, 1 vacant, 0.5 unknown; 4 sessions began,
    # 2 ended after 20 and 40 minutes.
    totals = BucketTotals(
        space_seconds=3 * 3600,
        status_seconds={"occupied": 5400, "vacant": 3600, "unknown": 900},
        sessions_started=4,
        sessions_ended=2,
        ended_dwell_seconds=60 * 60,
    )
    metrics = rules.hourly_metrics(HOUR, totals)
    assert metrics.total_sessions == 4
    assert metrics.turnover == pytest.approx(1.333)
    assert metrics.average_dwell_minutes == 30.0
    assert metrics.occupancy_percent == 60.0
    assert metrics.unknown_percent == pytest.approx(16.67)


def test_an_hour_mostly_offline_reads_minus_one_but_says_how_much_was_unknown() -> None:
    totals = BucketTotals(space_seconds=2 * 3600, status_seconds={"occupied": 3000}, sessions_started=3)
    metrics = rules.hourly_metrics(HOUR, totals)
    assert (metrics.total_sessions, metrics.turnover, metrics.average_dwell_minutes, metrics.occupancy_percent) == (
        -1,
        -1,
        -1,
        -1,
    )
    assert metrics.unknown_percent == pytest.approx(58.33)


def test_out_of_service_time_does_not_count_as_offline() -> None:
    # Two spaces: one out of service all hour, the other reported vacant: nothing is unknown.
    totals = BucketTotals(space_seconds=7200, status_seconds={"out_of_service": 3600, "vacant": 3600})
    metrics = rules.hourly_metrics(HOUR, totals)
    assert metrics.occupancy_percent == 0.0 and metrics.total_sessions == 0
    assert metrics.average_dwell_minutes is None


def test_an_hour_with_no_spaces_has_no_figures() -> None:
    metrics = rules.hourly_metrics(HOUR, BucketTotals(space_seconds=0, status_seconds={}))
    assert metrics.occupancy_percent == -1 and metrics.unknown_percent == 100.0


def test_a_five_minute_sample_averages_the_bucket() -> None:
    # Two spaces over 300 s: one occupied 150 s then vacant; the other vacant throughout.
    totals = BucketTotals(space_seconds=600, status_seconds={"occupied": 150, "vacant": 450})
    sample = rules.occupancy_sample(HOUR, rules.FIVE_MINUTES, totals)
    assert (sample.spaces, sample.occupied, sample.vacant, sample.unknown) == (2.0, 0.5, 1.5, 0.0)
    assert sample.occupancy_percent == 25.0
