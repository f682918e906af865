"""Pure rules of occupancy history: time windows and their buckets, and CDS-style metrics from per-bucket sums.

A space's history is a chain of status intervals (hub.supply.models.SpaceStatusInterval). The database sums, per
bucket, the seconds spent in each status and the seconds the facility's spaces existed; these rules turn the sums
into what a chart or a report shows. Time nobody reported on (no interval, or `unknown` while a sensor was offline)
is unknown time; a bucket that is mostly unknown has no trustworthy figures, and CDS marks those with -1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub.errors import InvalidInput

FIVE_MINUTES = timedelta(minutes=5)
ONE_HOUR = timedelta(hours=1)
# Bounded so one query costs a bounded amount of work: 2,016 five-minute samples, or 744 hourly rows.
MAX_SAMPLE_WINDOW = timedelta(days=7)
MAX_METRICS_WINDOW = timedelta(days=31)
# CDS's marker for "no data": figures of a bucket whose sources were offline more than half the time.
NOT_AVAILABLE = -1
MOSTLY_OFFLINE_SHARE = 0.5

IN_USE_STATUSES = ("vacant", "occupied", "reserved")
TAKEN_STATUSES = ("occupied", "reserved")


@dataclass(frozen=True)
class Window:
    """[since, until) aligned to whole steps, never reaching past the step that holds `now`."""

    since: datetime
    until: datetime
    step: timedelta

    @property
    def buckets(self) -> list[datetime]:
        count = int((self.until - self.since) / self.step)
        return [self.since + self.step * index for index in range(count)]


def floor_to(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + step * ((moment - epoch) // step)


def check_range(since: datetime, until: datetime) -> None:
    """Raises InvalidInput unless [since, until) is a non-empty range of zoned times."""
    for name, value in (("since", since), ("until", until)):
        if value.tzinfo is None:
            raise InvalidInput(f"{name}: give a time zone (an offset or Z)", code="INVALID_TIME", field=name)
    if until <= since:
        raise InvalidInput("until must be after since", code="INVALID_WINDOW", field="until")


def window(since: datetime, until: datetime, step: timedelta, longest: timedelta, now: datetime) -> Window:
    """The buckets covering [since, until): both ends widened to whole steps (UTC), the end cut at the step
    in progress now. Raises InvalidInput naming the problem."""
    check_range(since, until)
    if until - since > longest:
        raise InvalidInput(
            f"the window is longer than {longest.days} days at this resolution; ask for several shorter ones",
            code="WINDOW_TOO_LONG",
            field="until",
            longest_days=longest.days,
        )
    start = floor_to(since, step)
    end = min(floor_to(until - timedelta(microseconds=1), step) + step, floor_to(now, step) + step)
    if end <= start:
        raise InvalidInput("the window lies entirely in the future", code="INVALID_WINDOW", field="since")
    return Window(start.astimezone(UTC), end.astimezone(UTC), step)


@dataclass(frozen=True)
class BucketTotals:
    """What the database summed for one bucket of one facility."""

    space_seconds: float  # seconds the facility's live spaces existed within the bucket (up to now)
    status_seconds: dict[str, float]  # seconds spent in each reported status (`unknown` included)
    sessions_started: int = 0  # occupied intervals that began in the bucket
    sessions_ended: int = 0  # occupied intervals that ended in the bucket
    ended_dwell_seconds: float = 0.0  # total length of those that ended

    def seconds(self, *statuses: str) -> float:
        return sum(self.status_seconds.get(status, 0.0) for status in statuses)

    @property
    def unknown_seconds(self) -> float:
        """Seconds no source reported on: `unknown` intervals and the time before a space's first report."""
        reported = self.seconds(*IN_USE_STATUSES, "out_of_service")
        return max(0.0, self.space_seconds - reported)

    @property
    def mostly_offline(self) -> bool:
        expected = self.space_seconds - self.seconds("out_of_service")
        return expected <= 0 or self.unknown_seconds > MOSTLY_OFFLINE_SHARE * expected


def _percent(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole > 0 else 0.0


@dataclass(frozen=True)
class OccupancySample:
    """Average state of a facility over one five-minute bucket."""

    at: datetime
    spaces: float  # live spaces, averaged over the bucket
    vacant: float
    occupied: float
    reserved: float
    out_of_service: float
    unknown: float
    occupancy_percent: float  # occupied + reserved share of the in-use time; -1 when mostly unknown


def occupancy_sample(at: datetime, step: timedelta, totals: BucketTotals) -> OccupancySample:
    seconds = step.total_seconds()

    def average(value: float) -> float:
        return round(value / seconds, 2)

    return OccupancySample(
        at=at,
        spaces=average(totals.space_seconds),
        vacant=average(totals.seconds("vacant")),
        occupied=average(totals.seconds("occupied")),
        reserved=average(totals.seconds("reserved")),
        out_of_service=average(totals.seconds("out_of_service")),
        unknown=average(totals.unknown_seconds),
        occupancy_percent=(
            NOT_AVAILABLE
            if totals.mostly_offline
            else _percent(totals.seconds(*TAKEN_STATUSES), totals.seconds(*IN_USE_STATUSES))
        ),
    )


@dataclass(frozen=True)
class HourlyMetrics:
    """CDS-style session metrics of one hour. Every figure is -1 when the sources were mostly offline."""

    hour: datetime
    total_sessions: int  # occupancy sessions that began in the hour
    turnover: float  # those sessions per space
    average_dwell_minutes: float | None  # of the sessions that ended in the hour; None when none did
    occupancy_percent: float  # occupied + reserved share of the in-use space time
    unknown_percent: float  # share of the space time no source reported on (never -1: it is the reason for it)


def hourly_metrics(hour: datetime, totals: BucketTotals) -> HourlyMetrics:
    unknown_percent = _percent(totals.unknown_seconds, totals.space_seconds) if totals.space_seconds else 100.0
    if totals.mostly_offline:
        return HourlyMetrics(hour, NOT_AVAILABLE, NOT_AVAILABLE, NOT_AVAILABLE, NOT_AVAILABLE, unknown_percent)
    spaces = totals.space_seconds / ONE_HOUR.total_seconds()
    return HourlyMetrics(
        hour=hour,
        total_sessions=totals.sessions_started,
        turnover=round(totals.sessions_started / spaces, 3) if spaces else 0.0,
        average_dwell_minutes=(
            round(totals.ended_dwell_seconds / totals.sessions_ended / 60.0, 1) if totals.sessions_ended else None
        ),
        occupancy_percent=_percent(totals.seconds(*TAKEN_STATUSES), totals.seconds(*IN_USE_STATUSES)),
        unknown_percent=unknown_percent,
    )
