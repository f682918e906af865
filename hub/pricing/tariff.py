"""The tariff data model: frozen value objects an operator's admin defines per facility or zone, stored as JSON.

Money is integer fen everywhere. Durations are whole minutes. Times of day are "HH:MM" in the facility's local
time ("24:00" is allowed as a band's end); the facility's IANA zone is not part of a tariff, the caller passes it.

`Tariff.to_dict()` gives the canonical JSON form (every field present, `None` for an absent option) and
`Tariff.from_dict()` reads it back exactly; from_dict refuses unknown and mistyped fields, naming each one by its
path (`bands[2].start`), with `InvalidInput(code="INVALID_TARIFF", problems=[...])`. Whether the values make sense
(overlapping bands, negative prices, ...) is `validate`'s job (re-exported by `hub.pricing.rules`).

Vehicle classes are priced by an integer percent of the standard price (`vehicle_class_percent`, e.g.
`{"large": 200, "new_energy": 50}`; a class not listed pays 100%). The percent scales every money amount of the
tariff for that class (unit prices, first-unit prices, caps, session maximum, minimum charge), so a large car's
daily cap doubles with its rates rather than being reached twice as fast. One percent per class was chosen over
per-class rate overrides: it is what operators' price boards state ("large vehicles double") and it keeps one
band layout per tariff.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hub.errors import InvalidInput

VEHICLE_CLASSES = ("small", "standard", "large", "new_energy")
FREE_IF_UNDER = "free_if_under"  # a stay shorter than the free minutes costs nothing, otherwise all of it is charged
FIRST_FREE = "first_free"  # the first free minutes of every stay are never charged
FREE_MODES = (FREE_IF_UNDER, FIRST_FREE)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_BANDS = 50
MAX_TIERS = 20
MAX_PERCENT = 1000
MAX_BAND_NAME = 40
TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a tariff: where (a field path such as `bands[2].start`), what (a stable code), and
    a sentence for the operator."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


def invalid_tariff(problems: list[Problem]) -> InvalidInput:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return InvalidInput(
        f"tariff rejected: {first.field}: {first.message}{more}",
        code="INVALID_TARIFF",
        problems=[problem.as_dict() for problem in problems],
    )


@dataclass(frozen=True)
class Rate:
    """Every started `unit_minutes` costs `unit_price_fen`. With a first unit, the first charged unit of a stay
    is `first_unit_minutes` long and costs `first_unit_price_fen` instead (e.g. first 30 min 500, then 200 per
    15 min)."""

    unit_minutes: int
    unit_price_fen: int
    first_unit_minutes: int | None = None
    first_unit_price_fen: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit_minutes": self.unit_minutes,
            "unit_price_fen": self.unit_price_fen,
            "first_unit_minutes": self.first_unit_minutes,
            "first_unit_price_fen": self.first_unit_price_fen,
        }


@dataclass(frozen=True)
class Tier:
    """From `after_minutes` of elapsed time since entry on, `rate` replaces the rate before it (progressive
    pricing: e.g. after 120 minutes, 300 per 30 min)."""

    after_minutes: int
    rate: Rate

    def to_dict(self) -> dict[str, Any]:
        return {"after_minutes": self.after_minutes, "rate": self.rate.to_dict()}


@dataclass(frozen=True)
class Band:
    """A time-of-day band on some weekdays, in local time. `end <= start` wraps past midnight: the band then
    belongs to the weekday it starts on (fri 22:00-06:00 runs Friday night into Saturday morning); `end == start`
    is the whole day. Outside every band the tariff's default rate applies."""

    name: str
    days: tuple[str, ...]
    start: str
    end: str
    rate: Rate
    tiers: tuple[Tier, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "days": list(self.days),
            "start": self.start,
            "end": self.end,
            "rate": self.rate.to_dict(),
            "tiers": [tier.to_dict() for tier in self.tiers],
        }


@dataclass(frozen=True)
class Tariff:
    default_rate: Rate
    default_tiers: tuple[Tier, ...] = ()
    bands: tuple[Band, ...] = ()
    free_minutes: int = 0
    free_mode: str = FREE_IF_UNDER
    entry_grace_minutes: int = 0  # leaving within this many minutes of entry costs nothing
    exit_grace_minutes: int = 0  # after a payment, this many minutes to leave without owing more
    day_cap_fen: int | None = None  # per local calendar day
    rolling_24h_cap_fen: int | None = None  # per 24 hours counted from entry
    session_max_fen: int | None = None
    minimum_charge_fen: int = 0  # applies when anything at all is charged
    vehicle_class_percent: tuple[tuple[str, int], ...] = ()
    reentry_minutes: int = 0  # a re-entry within this many minutes of the last exit continues that session

    def percent_for(self, vehicle_class: str) -> int:
        for name, percent in self.vehicle_class_percent:
            if name == vehicle_class:
                return percent
        return 100

    def to_dict(self) -> dict[str, Any]:
        return {
            "default_rate": self.default_rate.to_dict(),
            "default_tiers": [tier.to_dict() for tier in self.default_tiers],
            "bands": [band.to_dict() for band in self.bands],
            "free_minutes": self.free_minutes,
            "free_mode": self.free_mode,
            "entry_grace_minutes": self.entry_grace_minutes,
            "exit_grace_minutes": self.exit_grace_minutes,
            "day_cap_fen": self.day_cap_fen,
            "rolling_24h_cap_fen": self.rolling_24h_cap_fen,
            "session_max_fen": self.session_max_fen,
            "minimum_charge_fen": self.minimum_charge_fen,
            "vehicle_class_percent": dict(self.vehicle_class_percent),
            "reentry_minutes": self.reentry_minutes,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Tariff:
        problems: list[Problem] = []
        tariff = _tariff_from(data, problems)
        if problems or tariff is None:
            raise invalid_tariff(problems or [Problem("tariff", "WRONG_TYPE", "must be an object")])
        return tariff


# --------------------------------------------------------------------------------------------- validation

_Add = Callable[[str, str, str], None]  # validate's problem recorder: (field, code, message)


def validate(tariff: Tariff) -> list[Problem]:
    """Every problem of the tariff, each with its field path and a stable code."""
    problems: list[Problem] = []

    def add(field: str, code: str, message: str) -> None:
        problems.append(Problem(field, code, message))

    for name in ("free_minutes", "entry_grace_minutes", "exit_grace_minutes", "reentry_minutes"):
        if getattr(tariff, name) < 0:
            add(name, "NEGATIVE_MINUTES", f"must be 0 or more, got {getattr(tariff, name)}")
    if tariff.free_mode not in FREE_MODES:
        add("free_mode", "UNKNOWN_FREE_MODE", f"must be one of {', '.join(FREE_MODES)}, got {tariff.free_mode!r}")

    rates: list[tuple[str, Rate]] = [("default_rate", tariff.default_rate)]
    rates += _tier_rates(tariff.default_tiers, "default_tiers", add)
    rates += _band_rates(tariff.bands, add)
    for path, rate in rates:
        _check_rate(rate, path, add)

    dearest_unit = max(max(rate.unit_price_fen, rate.first_unit_price_fen or 0) for _, rate in rates)
    caps = [(name, getattr(tariff, name)) for name in ("day_cap_fen", "rolling_24h_cap_fen", "session_max_fen")]
    for name, cap in caps:
        if cap is None:
            continue
        if cap < 0:
            add(name, "NEGATIVE_PRICE", f"must be 0 or more, got {cap}")
        elif cap < dearest_unit:
            add(name, "CAP_BELOW_UNIT_PRICE", f"{cap} fen is below the price of one unit ({dearest_unit} fen)")
    if tariff.minimum_charge_fen < 0:
        add("minimum_charge_fen", "NEGATIVE_PRICE", f"must be 0 or more, got {tariff.minimum_charge_fen}")
    for name, cap in caps:
        if cap is not None and cap >= 0 and tariff.minimum_charge_fen > cap:
            add("minimum_charge_fen", "MINIMUM_ABOVE_CAP", f"{tariff.minimum_charge_fen} fen is above {name} ({cap})")

    seen_classes: set[str] = set()
    for vehicle_class, percent in tariff.vehicle_class_percent:
        path = f"vehicle_class_percent.{vehicle_class}"
        if vehicle_class not in VEHICLE_CLASSES:
            add(path, "UNKNOWN_VEHICLE_CLASS", f"must be one of {', '.join(VEHICLE_CLASSES)}")
        elif vehicle_class in seen_classes:
            add(path, "DUPLICATE_VEHICLE_CLASS", "is given more than once")
        seen_classes.add(vehicle_class)
        if not 0 <= percent <= MAX_PERCENT:
            add(path, "INVALID_PERCENT", f"must be between 0 and {MAX_PERCENT}, got {percent}")
    return problems


def check(tariff: Tariff) -> Tariff:
    """The tariff itself if it is valid; otherwise InvalidInput(code="INVALID_TARIFF", problems=[...])."""
    problems = validate(tariff)
    if problems:
        raise invalid_tariff(problems)
    return tariff


def _check_rate(rate: Rate, path: str, add: _Add) -> None:
    if rate.unit_minutes <= 0:
        add(f"{path}.unit_minutes", "NON_POSITIVE_UNIT", f"must be at least 1 minute, got {rate.unit_minutes}")
    if rate.unit_price_fen < 0:
        add(f"{path}.unit_price_fen", "NEGATIVE_PRICE", f"must be 0 or more, got {rate.unit_price_fen}")
    if (rate.first_unit_minutes is None) != (rate.first_unit_price_fen is None):
        missing = "first_unit_price_fen" if rate.first_unit_price_fen is None else "first_unit_minutes"
        add(f"{path}.{missing}", "INCOMPLETE_FIRST_UNIT", "a first unit needs both its length and its price")
    if rate.first_unit_minutes is not None and rate.first_unit_minutes <= 0:
        add(f"{path}.first_unit_minutes", "NON_POSITIVE_UNIT", f"must be at least 1, got {rate.first_unit_minutes}")
    if rate.first_unit_price_fen is not None and rate.first_unit_price_fen < 0:
        add(f"{path}.first_unit_price_fen", "NEGATIVE_PRICE", f"must be 0 or more, got {rate.first_unit_price_fen}")


def _tier_rates(tiers: Sequence[Tier], path: str, add: _Add) -> list[tuple[str, Rate]]:
    if len(tiers) > MAX_TIERS:
        add(path, "TOO_MANY", f"at most {MAX_TIERS} tiers, got {len(tiers)}")
    previous = 0
    for index, tier in enumerate(tiers):
        if tier.after_minutes <= previous:
            add(
                f"{path}[{index}].after_minutes",
                "TIERS_NOT_ASCENDING",
                f"must be above {previous} (tiers start after entry, in ascending order), got {tier.after_minutes}",
            )
        previous = max(previous, tier.after_minutes)
    return [(f"{path}[{index}].rate", tier.rate) for index, tier in enumerate(tiers)]


def _band_rates(bands: Sequence[Band], add: _Add) -> list[tuple[str, Rate]]:
    if len(bands) > MAX_BANDS:
        add("bands", "TOO_MANY", f"at most {MAX_BANDS} bands, got {len(bands)}")
    rates: list[tuple[str, Rate]] = []
    names: set[str] = set()
    spans: list[tuple[int, int, int]] = []  # (start, end, band index) in minutes of the week from Monday 00:00
    for index, band in enumerate(bands):
        path = f"bands[{index}]"
        if not band.name.strip() or len(band.name) > MAX_BAND_NAME:
            add(f"{path}.name", "INVALID_NAME", f"must be 1 to {MAX_BAND_NAME} characters")
        elif band.name in names:
            add(f"{path}.name", "DUPLICATE_NAME", f"another band is already called {band.name!r}")
        names.add(band.name)
        days = _band_days(band, path, add)
        start = minute_of_day(band.start, f"{path}.start", add, end=False)
        end = minute_of_day(band.end, f"{path}.end", add, end=True)
        band_rates = [(f"{path}.rate", band.rate), *_tier_rates(band.tiers, f"{path}.tiers", add)]
        rates += band_rates
        if start is None or end is None:
            continue
        length = band_minutes(start, end)
        for rate_path, rate in band_rates:
            if rate.unit_minutes > length:
                add(f"{rate_path}.unit_minutes", "UNIT_LONGER_THAN_BAND", f"is longer than the band ({length} min)")
            if rate.first_unit_minutes is not None and rate.first_unit_minutes > length:
                add(
                    f"{rate_path}.first_unit_minutes",
                    "FIRST_UNIT_LONGER_THAN_BAND",
                    f"is longer than the band ({length} min)",
                )
        for day in days:
            begin = day * MINUTES_PER_DAY + start
            if begin + length <= MINUTES_PER_WEEK:
                spans.append((begin, begin + length, index))
            else:  # Sunday night into Monday morning
                spans += [(begin, MINUTES_PER_WEEK, index), (0, begin + length - MINUTES_PER_WEEK, index)]
    _check_overlaps(spans, bands, add)
    return rates


def _band_days(band: Band, path: str, add: _Add) -> list[int]:
    if not band.days:
        add(f"{path}.days", "NO_WEEKDAYS", "name at least one weekday")
    days: list[int] = []
    for position, day in enumerate(band.days):
        if day not in WEEKDAYS:
            add(f"{path}.days[{position}]", "UNKNOWN_WEEKDAY", f"must be one of {', '.join(WEEKDAYS)}, got {day!r}")
        elif WEEKDAYS.index(day) in days:
            add(f"{path}.days[{position}]", "DUPLICATE_WEEKDAY", f"{day} is listed twice")
        else:
            days.append(WEEKDAYS.index(day))
    return days


def minute_of_day(value: str, path: str, add: _Add, *, end: bool) -> int | None:
    if end and value == "24:00":
        return MINUTES_PER_DAY
    match = TIME_OF_DAY.match(value)
    if not match:
        allowed = "HH:MM from 00:00 to 24:00" if end else "HH:MM from 00:00 to 23:59"
        add(path, "INVALID_TIME", f"must be {allowed}, got {value!r}")
        return None
    return int(match.group(1)) * 60 + int(match.group(2))


def band_minutes(start: int, end: int) -> int:
    """A band's nominal length: end <= start wraps past midnight, and end == start is the whole day."""
    return end - start if end > start else end + MINUTES_PER_DAY - start


def _check_overlaps(spans: list[tuple[int, int, int]], bands: Sequence[Band], add: _Add) -> None:
    reported: set[tuple[int, int]] = set()
    spans.sort()
    for position, (_start, end, index) in enumerate(spans):
        for other_start, _other_end, other in spans[position + 1 :]:
            if other_start >= end:
                break
            pair = (min(index, other), max(index, other))
            if index == other or pair in reported:
                continue
            reported.add(pair)
            weekday = WEEKDAYS[other_start // MINUTES_PER_DAY]
            add(
                f"bands[{pair[1]}]",
                "OVERLAPPING_BANDS",
                f"overlaps band {bands[pair[0]].name!r} on {weekday} from {_clock(other_start)}",
            )


def _clock(minute_of_week: int) -> str:
    minute = minute_of_week % MINUTES_PER_DAY
    return f"{minute // 60:02d}:{minute % 60:02d}"


# ---------------------------------------------------------------------------------------------- reading JSON

_REQUIRED = object()


class _Fields:
    """Reads one JSON object's fields, recording a problem for each missing, mistyped or unknown one. A bad
    field reads as a placeholder so the rest is still checked; the caller discards the result if any problem
    was recorded."""

    def __init__(self, data: Any, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        self.ok = isinstance(data, dict)
        self.data: dict[str, Any] = data if self.ok else {}
        self.seen: set[str] = set()
        if not self.ok and data is not _REQUIRED:  # a missing object was reported as missing already
            self._problem(path, "WRONG_TYPE", f"must be an object, got {_type_name(data)}")

    def _problem(self, field: str, code: str, message: str) -> None:
        self.problems.append(Problem(field, code, message))

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, default: Any) -> Any:
        self.seen.add(key)
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED and self.ok:  # a non-object was reported once already
            self._problem(self.at(key), "MISSING_FIELD", "is required")
        return default

    def integer(self, key: str, default: Any = _REQUIRED, *, nullable: bool = False) -> Any:
        value = self._get(key, default)
        if value is _REQUIRED or (value is None and nullable):
            return None if value is None else 0
        if isinstance(value, bool) or not isinstance(value, int):
            expected = "an integer or null" if nullable else "an integer"
            self._problem(self.at(key), "WRONG_TYPE", f"must be {expected}, got {_type_name(value)}")
            return 0
        return value

    def text(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._get(key, default)
        if value is _REQUIRED:
            return ""
        if not isinstance(value, str):
            self._problem(self.at(key), "WRONG_TYPE", f"must be a string, got {_type_name(value)}")
            return ""
        return value

    def items(self, key: str, default: Any = _REQUIRED) -> list[tuple[str, Any]]:
        """The items of a list field with their paths."""
        value = self._get(key, default)
        if value is _REQUIRED:
            return []
        if not isinstance(value, list | tuple):
            self._problem(self.at(key), "WRONG_TYPE", f"must be a list, got {_type_name(value)}")
            return []
        return [(f"{self.at(key)}[{index}]", item) for index, item in enumerate(value)]

    def child(self, key: str, default: Any = _REQUIRED) -> tuple[str, Any]:
        return self.at(key), self._get(key, default)

    def finish(self) -> None:
        for key in self.data:
            if key not in self.seen:
                self._problem(self.at(str(key)), "UNKNOWN_FIELD", "is not a tariff field")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {
        int: "an integer",
        float: "a number with a fraction",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _rate_from(path: str, data: Any, problems: list[Problem]) -> Rate:
    fields = _Fields(data, path, problems)
    rate = Rate(
        unit_minutes=fields.integer("unit_minutes"),
        unit_price_fen=fields.integer("unit_price_fen"),
        first_unit_minutes=fields.integer("first_unit_minutes", None, nullable=True),
        first_unit_price_fen=fields.integer("first_unit_price_fen", None, nullable=True),
    )
    fields.finish()
    return rate


def _tiers_from(items: list[tuple[str, Any]], problems: list[Problem]) -> tuple[Tier, ...]:
    tiers = []
    for path, item in items:
        fields = _Fields(item, path, problems)
        after = fields.integer("after_minutes")
        rate = _rate_from(*fields.child("rate"), problems) if fields.ok else Rate(0, 0)
        fields.finish()
        tiers.append(Tier(after_minutes=after, rate=rate))
    return tuple(tiers)


def _band_from(path: str, data: Any, problems: list[Problem]) -> Band:
    fields = _Fields(data, path, problems)
    name = fields.text("name")
    days = []
    for day_path, day in fields.items("days"):
        if isinstance(day, str):
            days.append(day)
        else:
            problems.append(Problem(day_path, "WRONG_TYPE", f"must be a weekday name, got {_type_name(day)}"))
    band = Band(
        name=name,
        days=tuple(days),
        start=fields.text("start"),
        end=fields.text("end"),
        rate=_rate_from(*fields.child("rate"), problems) if fields.ok else Rate(0, 0),
        tiers=_tiers_from(fields.items("tiers", []), problems),
    )
    fields.finish()
    return band


def _class_percent_from(path: str, data: Any, problems: list[Problem]) -> tuple[tuple[str, int], ...]:
    if not isinstance(data, dict):
        problems.append(Problem(path, "WRONG_TYPE", f"must be an object of class: percent, got {_type_name(data)}"))
        return ()
    pairs = []
    for name, percent in data.items():
        if isinstance(percent, bool) or not isinstance(percent, int):
            problems.append(Problem(f"{path}.{name}", "WRONG_TYPE", f"must be an integer, got {_type_name(percent)}"))
        else:
            pairs.append((str(name), percent))
    return tuple(pairs)


def _tariff_from(data: Any, problems: list[Problem]) -> Tariff | None:
    fields = _Fields(data, "", problems)
    if not fields.ok:
        return None
    tariff = Tariff(
        default_rate=_rate_from(*fields.child("default_rate"), problems),
        default_tiers=_tiers_from(fields.items("default_tiers", []), problems),
        bands=tuple(_band_from(path, item, problems) for path, item in fields.items("bands", [])),
        free_minutes=fields.integer("free_minutes", 0),
        free_mode=fields.text("free_mode", FREE_IF_UNDER),
        entry_grace_minutes=fields.integer("entry_grace_minutes", 0),
        exit_grace_minutes=fields.integer("exit_grace_minutes", 0),
        day_cap_fen=fields.integer("day_cap_fen", None, nullable=True),
        rolling_24h_cap_fen=fields.integer("rolling_24h_cap_fen", None, nullable=True),
        session_max_fen=fields.integer("session_max_fen", None, nullable=True),
        minimum_charge_fen=fields.integer("minimum_charge_fen", 0),
        vehicle_class_percent=_class_percent_from(*fields.child("vehicle_class_percent", {}), problems),
        reentry_minutes=fields.integer("reentry_minutes", 0),
    )
    fields.finish()
    return tariff
