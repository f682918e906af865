"""The pure tariff engine: what a stay costs, itemized, in integer fen. No I/O.

`price(tariff, zone, vehicle_class, entry, exit, pass_windows, coupons)` prices a stay. Entry and exit are aware
instants; bands, weekdays and calendar days are read in the facility's zone (`zone`), while every duration (units,
free minutes, graces, tiers, rolling 24 h) is real elapsed time, so a night across a DST change costs one hour less
(spring) or more (autumn) than usual.

Order of operations:

0. Vehicle class: the class's percent scales every money amount of the tariff (unit and first-unit prices,
   caps, session maximum, minimum), each rounded half up to a whole fen. Done first so that every priced line
   is exactly units x unit price and a class's caps move with its rates.
1. Entry grace: a stay no longer than `entry_grace_minutes` costs nothing.
2. Free minutes: `free_if_under` makes a stay shorter than `free_minutes` free (a longer one is charged from
   entry); `first_free` starts charging `free_minutes` after entry, whatever the length of the stay. Tiers
   and rolling 24 hours still count from entry.
3. Units: from the start of charging to exit runs one continuous grid of units. Each unit is priced by the
   rate in effect where it starts: the band covering that local time (or the default rate), and within it
   the tier reached by the elapsed time since entry. Units are NOT restarted at band, tier, day or pass
   boundaries: a unit that starts at 19:50 in the day band is a day unit to its end, and the next unit
   starts where it ends, at the rate there. The grid's first unit (where charging starts) has the first-unit
   length and price of the rate in effect there, if that rate has one. A started unit is charged in full
   (partial units round up), so the last unit before exit is charged whole.
4. Pass coverage: units lying entirely inside a pass window (or inside the absence between a session and its
   continuation on re-entry) are not charged; a unit partly outside is charged in full. Because covered time
   only removes units from the same grid, a pass never makes a stay dearer (rounding up each uncovered run
   on its own would: a 1-minute pass in mid-unit would split one unit into two).
4b. Minute coupons (merchants' coupons of N minutes, hub/pricing/coupons.py) cover the first N minutes of
   charging (from the start of charging of step 2, the minutes of several coupons adding up) exactly as a pass
   window does: the stay is priced again, steps 5 to 7 included, with that window covered, and the coupons are
   worth the difference.
5. Caps, chronologically: the units charged in each local calendar day and in each 24 hours counted from
   entry are limited to the day cap and the rolling cap; a unit counts in the day and the 24 hours in which
   it starts, and the earliest units are kept, as a meter running since entry would. Each cut is an
   adjustment line naming the cap that bound.
6. Session maximum: the total is limited to `session_max_fen`.
7. Minimum charge: a total above zero and below `minimum_charge_fen` is raised to it.
8. Amount coupons subtract their amount from the total, never below zero (so the session maximum and the
   minimum charge apply to what the stay costs, and the merchant pays off part of it).
9. Waivers take what is left: the total becomes zero.
10. Coupon limits: a coupon is worth at most its `limit_fen` (what its merchant's fund reserved for it); the
   driver pays the rest. Each coupon is one `coupon` adjustment line (its `ref` names it) of minus its value, so
   a coupon's value is the price without coupons minus the price with them, itemized; coupons never make a stay
   dearer.

The quote's total always equals the sum of its segments and its adjustments. Segment rules: `default` or
`band:<name>`, with `/after_<N>min` for a tier and `/first_unit` for the first unit; zero-amount lines
`entry_grace`, `free_if_under`, `first_free`, `pass` and `away` (the absence of a continued session). The segments
are those of the stay without coupons; coupons are adjustment lines.
Priced segments are split at local midnights and every 24 hours from entry, so each lies in one calendar day
and one rolling period; a cap adjustment starts where the units it cuts start, while the session maximum,
minimum and re-entry credit span the stay.

Around `price`: `amount_due` applies the exit grace after a payment, and `price_reentry` continues an earlier
session when the car comes back within `reentry_minutes` (coupons apply to the whole continued stay, before the
credit of what its earlier part was charged). `validate` lists everything wrong with a tariff and
`check` refuses it with `InvalidInput(code="INVALID_TARIFF")`; `price` checks a tariff once per instance.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from hub.errors import InvalidInput
from hub.pricing.coupons import COUPON_SEGMENT, Coupon, coupon_values
from hub.pricing.tariff import (
    FIRST_FREE,
    FREE_IF_UNDER,
    VEHICLE_CLASSES,
    WEEKDAYS,
    Problem,
    Rate,
    Tariff,
    Tier,
    band_minutes,
    check,
    minute_of_day,
    validate,
)

__all__ = [
    "Adjustment",
    "Coupon",
    "Due",
    "Problem",
    "Quote",
    "Segment",
    "amount_due",
    "check",
    "price",
    "price_reentry",
    "validate",
]

US_PER_MINUTE = 60_000_000
US_PER_DAY = 24 * 60 * US_PER_MINUTE
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NEVER = 1 << 62  # an instant after every stay, in microseconds since the epoch

PASS = "pass"
AWAY = "away"


# ------------------------------------------------------------------------------------------------- quotes


@dataclass(frozen=True)
class Segment:
    """A priced run of units (or a zero-amount line for time that is not charged). `end` is where the last
    unit ends, or the exit if that comes first; `amount_fen == units * unit_price_fen`."""

    start: datetime
    end: datetime
    rule: str
    units: int
    unit_price_fen: int
    amount_fen: int


@dataclass(frozen=True)
class Adjustment:
    """A correction of the priced units: `cap:day`, `cap:24h`, `cap:session` (negative), `minimum` (positive),
    `coupon` (negative: what one coupon took off; `ref` is the coupon's), `already_charged` (negative: what the
    earlier part of a continued session was charged)."""

    kind: str
    start: datetime
    end: datetime
    amount_fen: int
    reason: str
    ref: str | None = None


@dataclass(frozen=True)
class Quote:
    total_fen: int
    segments: tuple[Segment, ...]
    adjustments: tuple[Adjustment, ...]
    vehicle_class: str
    priced_from: datetime
    priced_until: datetime

    def coupon_values(self) -> dict[str, int]:
        """What each coupon took off, by its ref."""
        return {line.ref: -line.amount_fen for line in self.adjustments if line.kind == "coupon" and line.ref}


@dataclass(frozen=True)
class Due:
    """What a car still owes at exit. `quote` prices the stay up to `quote.priced_until`: the payment time when
    the car leaves within the exit grace, otherwise the exit."""

    due_fen: int
    quote: Quote
    within_exit_grace: bool


# ------------------------------------------------------------------------------------- the compiled tariff


class _Rate(NamedTuple):
    unit_us: int
    price: int
    first_us: int  # 0: no first unit
    first_price: int


class _Plan(NamedTuple):
    """A rate and its tiers: `offsets[k]` (microseconds since entry) is where `rates[k]` starts to apply."""

    offsets: tuple[int, ...]
    rates: tuple[_Rate, ...]
    rules: tuple[str, ...]


class _Band(NamedTuple):
    weekdays: frozenset[int]
    start_minute: int
    end_minute: int  # minutes after the start day's midnight; above 1440 when the band wraps
    plan: _Plan


class _Compiled(NamedTuple):
    default: _Plan
    bands: tuple[_Band, ...]
    day_cap: int | None
    rolling_cap: int | None
    session_max: int | None
    minimum: int


def _scaled(amount: int | None, percent: int) -> int | None:
    return None if amount is None else (amount * percent + 50) // 100


def _compile_rate(rate: Rate, percent: int) -> _Rate:
    first_minutes = rate.first_unit_minutes or 0
    return _Rate(
        rate.unit_minutes * US_PER_MINUTE,
        _scaled(rate.unit_price_fen, percent) or 0,
        first_minutes * US_PER_MINUTE,
        _scaled(rate.first_unit_price_fen, percent) or 0,
    )


def _compile_plan(rule: str, rate: Rate, tiers: Sequence[Tier], percent: int) -> _Plan:
    return _Plan(
        offsets=(0, *(tier.after_minutes * US_PER_MINUTE for tier in tiers)),
        rates=(_compile_rate(rate, percent), *(_compile_rate(tier.rate, percent) for tier in tiers)),
        rules=(rule, *(f"{rule}/after_{tier.after_minutes}min" for tier in tiers)),
    )


def _compiled(tariff: Tariff, percent: int) -> _Compiled:
    # Compiled (and checked) once per tariff instance and class percent. The cache sits beside the frozen
    # fields, which stay immutable; it takes no part in equality.
    cache: dict[int, _Compiled] | None = tariff.__dict__.get("_pricing_cache")
    if cache is None:
        check(tariff)
        cache = {}
        object.__setattr__(tariff, "_pricing_cache", cache)
    compiled = cache.get(percent)
    if compiled is None:
        bands = []
        for band in tariff.bands:
            start = minute_of_day(band.start, "", _ignore, end=False) or 0
            end = minute_of_day(band.end, "", _ignore, end=True) or 0
            plan = _compile_plan(f"band:{band.name}", band.rate, band.tiers, percent)
            weekdays = frozenset(WEEKDAYS.index(day) for day in band.days)
            bands.append(_Band(weekdays, start, start + band_minutes(start, end), plan))
        compiled = _Compiled(
            default=_compile_plan("default", tariff.default_rate, tariff.default_tiers, percent),
            bands=tuple(bands),
            day_cap=_scaled(tariff.day_cap_fen, percent),
            rolling_cap=_scaled(tariff.rolling_24h_cap_fen, percent),
            session_max=_scaled(tariff.session_max_fen, percent),
            minimum=_scaled(tariff.minimum_charge_fen, percent) or 0,
        )
        cache[percent] = compiled
    return compiled


def _ignore(field: str, code: str, message: str) -> None:
    return None


# ------------------------------------------------------------------------------------------------ pricing

Window = tuple[datetime, datetime]


def price(
    tariff: Tariff,
    zone: ZoneInfo,
    vehicle_class: str,
    entry: datetime,
    exit: datetime,
    pass_windows: Iterable[Window] = (),
    coupons: Sequence[Coupon] = (),
) -> Quote:
    """The itemized price of a stay from `entry` to `exit` (aware instants), leaving out the time covered by the
    vehicle's pass windows (aware (start, end) pairs) and taking off its coupons. See the module docstring for
    the order of operations."""
    windows = [(start, end, PASS) for start, end in pass_windows]
    return _price(tariff, zone, vehicle_class, entry, exit, windows, coupons)


def amount_due(
    tariff: Tariff,
    zone: ZoneInfo,
    vehicle_class: str,
    entry: datetime,
    exit: datetime,
    paid_fen: int,
    paid_at: datetime | None,
    pass_windows: Iterable[Window] = (),
    coupons: Sequence[Coupon] = (),
) -> Due:
    """What is still owed at `exit` after `paid_fen` was paid at `paid_at`. Leaving within the exit grace after
    the payment, the stay is priced up to the payment; leaving later, up to the exit. Never negative."""
    if paid_fen < 0:
        raise InvalidInput("paid amount must be 0 or more", code="INVALID_AMOUNT", field="paid_fen")
    windows = list(pass_windows)
    within = False
    priced_until = exit
    if paid_at is not None:
        paid_us = _instant(paid_at, "paid_at")
        if paid_us < _instant(entry, "entry"):
            raise InvalidInput("a payment cannot come before the entry", code="INVALID_STAY", field="paid_at")
        grace_end = paid_us + tariff.exit_grace_minutes * US_PER_MINUTE
        within = _instant(exit, "exit") <= grace_end
        if within:
            priced_until = min(exit, paid_at)
    quote = price(tariff, zone, vehicle_class, entry, priced_until, windows, coupons)
    return Due(max(0, quote.total_fen - paid_fen), quote, within)


def price_reentry(
    tariff: Tariff,
    zone: ZoneInfo,
    vehicle_class: str,
    earlier_entry: datetime,
    earlier_exit: datetime,
    earlier_charged_fen: int,
    entry: datetime,
    exit: datetime,
    pass_windows: Iterable[Window] = (),
    coupons: Sequence[Coupon] = (),
) -> Quote:
    """A stay that may continue an earlier session. Re-entering within `reentry_minutes` of the earlier exit
    continues it: the whole span from the earlier entry is priced as one stay, the absence in between is not
    charged, and what the earlier part was charged is credited (never below zero). Otherwise the stay is priced
    on its own."""
    gap_us = _instant(entry, "entry") - _instant(earlier_exit, "earlier_exit")
    if gap_us < 0 or _instant(earlier_exit, "earlier_exit") < _instant(earlier_entry, "earlier_entry"):
        raise InvalidInput("the earlier session must end before this entry", code="INVALID_STAY", field="entry")
    if earlier_charged_fen < 0:
        raise InvalidInput("charged amount must be 0 or more", code="INVALID_AMOUNT", field="earlier_charged_fen")
    windows = [(start, end, PASS) for start, end in pass_windows]
    if tariff.reentry_minutes <= 0 or gap_us > tariff.reentry_minutes * US_PER_MINUTE:
        return _price(tariff, zone, vehicle_class, entry, exit, windows, coupons)
    away = [*windows, (earlier_exit, entry, AWAY)]
    combined = _price(tariff, zone, vehicle_class, earlier_entry, exit, away, coupons)
    credit = min(earlier_charged_fen, combined.total_fen)
    if credit == 0:
        return combined
    already = Adjustment(
        "already_charged",
        earlier_entry.astimezone(UTC),
        earlier_exit.astimezone(UTC),
        -credit,
        f"continues the session that left at {earlier_exit.astimezone(UTC).isoformat()}, charged {earlier_charged_fen}",
    )
    return Quote(
        combined.total_fen - credit,
        combined.segments,
        (*combined.adjustments, already),
        combined.vehicle_class,
        combined.priced_from,
        combined.priced_until,
    )


def _instant(moment: datetime, field: str) -> int:
    """Microseconds since the epoch of an aware datetime."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{field} must carry a time zone", code="INVALID_TIME", field=field)
    return (moment - EPOCH) // timedelta(microseconds=1)


def _moment(instant: int) -> datetime:
    return EPOCH + timedelta(microseconds=instant)


def _price(
    tariff: Tariff,
    zone: ZoneInfo,
    vehicle_class: str,
    entry: datetime,
    exit: datetime,
    uncharged: list[tuple[datetime, datetime, str]],
    coupons: Sequence[Coupon] = (),
) -> Quote:
    quote = _price_stay(tariff, zone, vehicle_class, entry, exit, uncharged)
    if not coupons:
        return quote
    # Steps 4b and 8 to 10: minute coupons reprice the stay with the first minutes of charging covered.
    charge_from = entry
    if tariff.free_mode == FIRST_FREE:
        charge_from = entry + timedelta(minutes=tariff.free_minutes)

    def total_with_minutes(minutes: int) -> int:
        window = (charge_from, charge_from + timedelta(minutes=minutes), COUPON_SEGMENT)
        return _price_stay(tariff, zone, vehicle_class, entry, exit, [*uncharged, window]).total_fen

    lines = tuple(
        Adjustment(
            "coupon",
            quote.priced_from,
            quote.priced_until,
            -value,
            f"{coupon.kind} coupon {coupon.ref}",
            ref=coupon.ref,
        )
        for coupon, value in coupon_values(quote.total_fen, coupons, total_with_minutes)
    )
    taken = sum(line.amount_fen for line in lines)
    return Quote(
        quote.total_fen + taken,
        quote.segments,
        (*quote.adjustments, *lines),
        quote.vehicle_class,
        quote.priced_from,
        quote.priced_until,
    )


def _price_stay(
    tariff: Tariff,
    zone: ZoneInfo,
    vehicle_class: str,
    entry: datetime,
    exit: datetime,
    uncharged: list[tuple[datetime, datetime, str]],
) -> Quote:
    if vehicle_class not in VEHICLE_CLASSES:
        raise InvalidInput(
            f"vehicle class must be one of {', '.join(VEHICLE_CLASSES)}, got {vehicle_class!r}",
            code="UNKNOWN_VEHICLE_CLASS",
            field="vehicle_class",
        )
    entry_us, exit_us = _instant(entry, "entry"), _instant(exit, "exit")
    if exit_us < entry_us:
        raise InvalidInput("exit must not come before entry", code="INVALID_STAY", field="exit")
    compiled = _compiled(tariff, tariff.percent_for(vehicle_class))
    pricing = _Pricing(compiled, zone, entry_us, exit_us)
    pricing.run(tariff, uncharged)
    segments = tuple(
        Segment(_moment(line.start), _moment(line.end), line.rule, line.units, line.unit_price, line.amount)
        for line in sorted(pricing.lines, key=lambda line: line.start)
    )
    return Quote(
        sum(segment.amount_fen for segment in segments)
        + sum(adjustment.amount_fen for adjustment in pricing.adjustments),
        segments,
        tuple(pricing.adjustments),
        vehicle_class,
        _moment(entry_us),
        _moment(exit_us),
    )


class _Cell(NamedTuple):
    day: int  # local calendar days since the entry's day
    window: int  # 24-hour windows since entry


NOT_PRICED = _Cell(-1, -1)


@dataclass(slots=True)
class _Line:
    """A segment while pricing, in microseconds since the epoch."""

    start: int
    end: int
    rule: str
    units: int
    unit_price: int
    cell: _Cell

    @property
    def amount(self) -> int:
        return self.units * self.unit_price


class _Pricing:
    """One stay being priced: the unit grid walked boundary to boundary (never unit by unit)."""

    def __init__(self, compiled: _Compiled, zone: ZoneInfo, entry: int, exit: int) -> None:
        self.compiled = compiled
        self.zone = zone
        self.entry = entry
        self.exit = exit
        self.lines: list[_Line] = []
        self.adjustments: list[Adjustment] = []
        self.covered: list[tuple[int, int]] = []
        self.first_day = _moment(entry).astimezone(zone).date()

    def run(self, tariff: Tariff, uncharged: list[tuple[datetime, datetime, str]]) -> None:
        duration = self.exit - self.entry
        if duration == 0:
            return
        if duration <= tariff.entry_grace_minutes * US_PER_MINUTE:
            self._note(self.entry, self.exit, "entry_grace")
            return
        free_us = tariff.free_minutes * US_PER_MINUTE
        charge_from = self.entry
        if free_us > 0 and tariff.free_mode == FREE_IF_UNDER and duration < free_us:
            self._note(self.entry, self.exit, FREE_IF_UNDER)
            return
        if free_us > 0 and tariff.free_mode == FIRST_FREE:
            charge_from = self.entry + free_us
            self._note(self.entry, min(charge_from, self.exit), FIRST_FREE)
            if charge_from >= self.exit:
                return
        self._cover(uncharged)
        self._walk(charge_from)
        self._apply_caps()
        self._apply_session_limits()

    def _note(self, start: int, end: int, rule: str) -> None:
        self.lines.append(_Line(start, end, rule, 0, 0, NOT_PRICED))

    def _cover(self, uncharged: list[tuple[datetime, datetime, str]]) -> None:
        spans = []
        for start, end, label in uncharged:
            start_us, end_us = _instant(start, "pass_windows"), _instant(end, "pass_windows")
            if end_us < start_us:
                raise InvalidInput("a pass window must end after it starts", code="INVALID_TIME", field="pass_windows")
            start_us, end_us = max(start_us, self.entry), min(end_us, self.exit)
            if end_us > start_us:
                spans.append((start_us, end_us))
                self._note(start_us, end_us, label)
        # Time after the exit needs no charging; merged with the windows, so a pass that runs up to the exit
        # also covers the unit straddling it (the last unit is charged only if part of it is uncovered).
        spans.append((self.exit, NEVER))
        spans.sort()
        for start_us, end_us in spans:
            if self.covered and start_us <= self.covered[-1][1]:
                self.covered[-1] = (self.covered[-1][0], max(self.covered[-1][1], end_us))
            else:
                self.covered.append((start_us, end_us))

    def _band_spans(self) -> list[tuple[int, int, _Plan]]:
        """Each band's occurrences around the stay, as instants, in order and without overlap."""
        spans: list[tuple[int, int, _Plan]] = []
        if not self.compiled.bands:
            return spans
        last_day = _moment(self.exit).astimezone(self.zone).date()
        day = self.first_day - timedelta(days=1)  # a band wrapping past midnight may cover the entry
        while day <= last_day:
            midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
            for band in self.compiled.bands:
                if day.weekday() in band.weekdays:
                    # Wall-clock arithmetic: 08:00 is 08:00 local whatever the offset; a time skipped by a
                    # DST change maps to the instant the clock would have shown it before the change.
                    start = _instant(midnight + timedelta(minutes=band.start_minute), "band")
                    end = _instant(midnight + timedelta(minutes=band.end_minute), "band")
                    spans.append((start, end, band.plan))
            day += timedelta(days=1)
        spans.sort(key=lambda span: span[0])
        # Around a DST change, two bands that touch in local time can overlap as instants: the later starts.
        return [
            (start, min(end, spans[index + 1][0]) if index + 1 < len(spans) else end, plan)
            for index, (start, end, plan) in enumerate(spans)
        ]

    def _midnights(self) -> list[int]:
        last_day = _moment(self.exit).astimezone(self.zone).date() + timedelta(days=1)
        days = (last_day - self.first_day).days
        return [
            _instant(datetime(day.year, day.month, day.day, tzinfo=self.zone), "day")
            for day in (self.first_day + timedelta(days=offset) for offset in range(days + 1))
        ]

    def _walk(self, charge_from: int) -> None:
        bands = self._band_spans()
        midnights = self._midnights()
        default = self.compiled.default
        entry, exit = self.entry, self.exit
        band_at, day, covered_at = 0, 0, 0
        first = True
        moment = charge_from
        while moment < exit:
            while band_at < len(bands) and bands[band_at][1] <= moment:
                band_at += 1
            if band_at < len(bands) and bands[band_at][0] <= moment:
                plan, plan_end = bands[band_at][2], bands[band_at][1]
            else:
                plan, plan_end = default, bands[band_at][0] if band_at < len(bands) else NEVER
            elapsed = moment - entry
            tier = bisect_right(plan.offsets, elapsed) - 1
            rate = plan.rates[tier]
            tier_end = entry + plan.offsets[tier + 1] if tier + 1 < len(plan.offsets) else NEVER
            while midnights[day + 1] <= moment:
                day += 1
            window = elapsed // US_PER_DAY
            stop = min(plan_end, tier_end, midnights[day + 1], entry + (window + 1) * US_PER_DAY, exit)
            if first and rate.first_us:
                unit, unit_price, units, rule = rate.first_us, rate.first_price, 1, f"{plan.rules[tier]}/first_unit"
            else:
                unit, unit_price, rule = rate.unit_us, rate.price, plan.rules[tier]
                units = -(-(stop - moment) // unit)
            if units <= 0:  # every boundary lies after `moment`; never loop forever if that breaks
                raise RuntimeError(f"tariff walk stalled at {_moment(moment).isoformat()}")
            first = False
            while self.covered[covered_at][1] <= moment:
                covered_at += 1
            self._charge(moment, unit, units, unit_price, rule, _Cell(day, window), covered_at)
            moment += units * unit

    def _charge(self, start: int, unit: int, units: int, unit_price: int, rule: str, cell: _Cell, at: int) -> None:
        """Charge the units start + i*unit (i < units) that are not entirely covered."""
        index = 0
        grid_end = start + units * unit
        while index < units:
            if at == len(self.covered) or self.covered[at][0] >= grid_end:
                self._add_units(start, unit, index, units, unit_price, rule, cell)
                return
            covered_start, covered_end = self.covered[at]
            first_inside = max(index, -((start - covered_start) // unit))  # first unit starting in the cover
            past_inside = min(units, (covered_end - start) // unit)  # units before this one end in the cover
            if first_inside < past_inside:
                if first_inside > index:
                    self._add_units(start, unit, index, first_inside, unit_price, rule, cell)
                index = past_inside
            at += 1

    def _add_units(self, grid: int, unit: int, first: int, past: int, unit_price: int, rule: str, cell: _Cell) -> None:
        start, end = grid + first * unit, min(grid + past * unit, self.exit)
        if self.lines:
            previous = self.lines[-1]
            if (
                previous.cell == cell
                and previous.rule == rule
                and previous.unit_price == unit_price
                and previous.end == start
            ):
                previous.end = end
                previous.units += past - first
                return
        self.lines.append(_Line(start, end, rule, past - first, unit_price, cell))

    def _apply_caps(self) -> None:
        day_cap, rolling_cap = self.compiled.day_cap, self.compiled.rolling_cap
        if day_cap is None and rolling_cap is None:
            return
        used_by_day: dict[int, int] = {}
        used_by_window: dict[int, int] = {}
        groups: list[tuple[_Cell, int, int, int]] = []  # (cell, amount, start, end) in chronological order
        for line in self.lines:
            if line.cell == NOT_PRICED:
                continue
            if groups and groups[-1][0] == line.cell:
                _, amount, start, _ = groups[-1]
                groups[-1] = (line.cell, amount + line.amount, start, line.end)
            else:
                groups.append((line.cell, line.amount, line.start, line.end))
        for cell, amount, start, end in groups:
            room_day = NEVER if day_cap is None else day_cap - used_by_day.get(cell.day, 0)
            room_window = NEVER if rolling_cap is None else rolling_cap - used_by_window.get(cell.window, 0)
            allowed = min(amount, room_day, room_window)
            used_by_day[cell.day] = used_by_day.get(cell.day, 0) + allowed
            used_by_window[cell.window] = used_by_window.get(cell.window, 0) + allowed
            if allowed == amount:
                continue
            if room_day <= room_window:
                local_day = self.first_day + timedelta(days=cell.day)
                kind, reason = "cap:day", f"day cap of {day_cap} fen reached on {local_day.isoformat()}"
            else:
                hours = f"{cell.window * 24}-{cell.window * 24 + 24}"
                kind, reason = "cap:24h", f"24-hour cap of {rolling_cap} fen reached in hours {hours} after entry"
            self.adjustments.append(Adjustment(kind, _moment(start), _moment(end), allowed - amount, reason))

    def _apply_session_limits(self) -> None:
        total = sum(line.amount for line in self.lines)
        total += sum(adjustment.amount_fen for adjustment in self.adjustments)
        start, end = _moment(self.entry), _moment(self.exit)
        session_max, minimum = self.compiled.session_max, self.compiled.minimum
        if session_max is not None and total > session_max:
            reason = f"session maximum of {session_max} fen"
            self.adjustments.append(Adjustment("cap:session", start, end, session_max - total, reason))
            total = session_max
        if 0 < total < minimum:
            self.adjustments.append(Adjustment("minimum", start, end, minimum - total, f"minimum charge {minimum}"))
