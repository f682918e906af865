"""Pure rules of the vehicle lists: what a valid entry is, when entries overlap, when a pass covers an instant,
and the standing of a plate at a facility. No I/O. (CSV files are read in hub/access/csvfile.py.)

Precedence. A plate may be on several lists at once; its standing at a facility and instant is the first of:

1. blacklisted: a blacklist entry valid that day. The vehicle never enters.
2. restricted: a restricted entry valid that day. Entry waits for an agent's decision.
3. whitelisted: a whitelist entry covering the facility, valid that day. In and out free.
4. pass_holder: a pass covering the facility whose window is open at that instant.
5. visitor: none of these.

Refusals come first so that no privilege granted elsewhere (a VIP entry a colleague added, a pass sold by the
front desk) can let a banned vehicle in; a whitelist entry is unconditional at its facilities for whole days,
so it outranks a pass whose window may close. Within one kind the entry that lasts longest decides (an
open-ended entry, else the latest last day; for passes the window that ends last), then the smallest id, so the
answer never depends on the order rows arrive in.

Time. Validity dates are calendar dates, both ends inclusive, and they, the weekdays (ISO: 1 = Monday ...
7 = Sunday) and a pass's daily window are read in the time zone of the facility where the vehicle is. A window
whose end is before its start runs past midnight, and the part after midnight belongs to the day the window
started: a Friday 22:00-06:00 window covers Friday 22:00 to Saturday 06:00, and only when Friday is one of the
pass's weekdays and dates. A pass without a window covers its weekdays all day.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from hub.access.models import BLOCKLIST_KINDS, MINUTES_PER_DAY, VEHICLE_CLASSES, WHITELIST_CATEGORIES
from hub.drivers.rules import normalize_plate
from hub.errors import DomainError, InvalidInput

ALL_WEEKDAYS = (1, 2, 3, 4, 5, 6, 7)
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# "mon" or "monday" for 1, and so on.
WEEKDAY_NAMES = {name: day for day, full in enumerate(_DAY_NAMES, start=1) for name in (full, full[:3])}
MAX_NAME = 200
MAX_PHONE = 40
MAX_NOTE = 1000
MAX_REASON = 500
_PHONE = re.compile(r"^[0-9+()\-\s]+$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")

ListKind = Literal["pass", "whitelist", "blocklist"]
StandingKind = Literal["blacklisted", "restricted", "whitelisted", "pass_holder", "visitor"]


# ------------------------------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an entry: the field (as the caller named it), a stable code and a sentence."""

    field: str
    code: str
    message: str


Label = Callable[[str], str]


class Collector:
    """Collects every problem of one entry, so a person can fix them all at once."""

    def __init__(self, label: Label) -> None:
        self.label = label
        self.problems: list[Problem] = []

    def add(self, key: str, code: str, message: str) -> None:
        self.problems.append(Problem(self.label(key), code, message))

    def run(self, key: str, check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`check(*args, **kwargs)`; a domain error it raises becomes a problem of `key` and the result None."""
        try:
            return check(*args, **kwargs)
        except DomainError as error:
            self.add(key, error.code, error.message)
            return None


def first_problem_error(problems: Sequence[Problem], what: str) -> InvalidInput:
    """One typed error for a rejected single entry: the first problem's code and field at the top, all of
    them listed under `problems`."""
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return InvalidInput(
        f"{what} rejected: {first.field}: {first.message}{more}",
        code=first.code,
        field=first.field,
        problems=[{"field": p.field, "code": p.code, "message": p.message} for p in problems],
    )


# ------------------------------------------------------------------------------------------ single values


def list_plate(raw: Any) -> str:
    """A plate as lists store it: full-width letters and digits folded (spreadsheets often carry them), then
    the people-typed rules of `normalize_plate` (upper case, separators removed, 2-12 letters, digits or Chinese
    characters). The result is what `connectors.plates.normalize_camera_plate` makes of the same plate, so a
    camera read finds the entry by equality."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("a plate is required", code="MISSING_VALUE")
    try:
        return normalize_plate(unicodedata.normalize("NFKC", raw))
    except InvalidInput as error:
        raise InvalidInput(error.message, code="INVALID_PLATE") from None


def parse_date(raw: str) -> date:
    """YYYY-MM-DD (or YYYY/MM/DD, as spreadsheets in China often write it)."""
    text = raw.strip().replace("/", "-")
    try:
        return date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else _bad_date(raw)
    except ValueError:
        return _bad_date(raw)


def _bad_date(raw: str) -> date:
    raise InvalidInput(f"{raw!r} is not a date like 2026-12-31", code="INVALID_DATE")


def parse_time_of_day(raw: str, *, end: bool) -> int:
    """Minutes after midnight of "HH:MM" (00:00-23:59; an end may also be 24:00)."""
    match = _TIME.fullmatch(raw.strip())
    if match:
        hours, minutes = int(match[1]), int(match[2])
        if minutes < 60 and (hours < 24 or (end and hours == 24 and minutes == 0)):
            return hours * 60 + minutes
    allowed = "00:00-24:00" if end else "00:00-23:59"
    raise InvalidInput(f"{raw!r} is not a time of day HH:MM ({allowed})", code="INVALID_TIME")


def format_time_of_day(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def check_weekdays(days: Iterable[int]) -> list[int]:
    """ISO weekdays 1 (Monday) to 7 (Sunday), at least one; returned sorted without repeats."""
    chosen = list(days)
    wrong = [day for day in chosen if not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 7]
    if wrong:
        raise InvalidInput(f"weekdays are 1 (Monday) to 7 (Sunday), got {wrong[0]!r}", code="INVALID_WEEKDAY")
    if not chosen:
        raise InvalidInput("name at least one weekday (1 = Monday ... 7 = Sunday)", code="INVALID_WEEKDAY")
    return sorted(set(chosen))


def parse_weekdays(raw: str) -> list[int]:
    """Weekdays as people write them: "1-5", "1,3,5", "6-7", "mon-fri", "sat;sun"; a range may wrap ("fri-mon").
    Empty means every day."""
    text = raw.strip().lower()
    if not text:
        return list(ALL_WEEKDAYS)
    days: list[int] = []
    for part in re.split(r"[,;|\s]+", text):
        if not part:
            continue
        ends = [_weekday(end, raw) for end in part.split("-")]
        if len(ends) == 1:
            days.append(ends[0])
        elif len(ends) == 2:
            first, last = ends
            span = (last - first) % 7
            days.extend((first - 1 + step) % 7 + 1 for step in range(span + 1))
        else:
            raise InvalidInput(f"{raw!r}: {part!r} is not a weekday or a range like 1-5", code="INVALID_WEEKDAY")
    return check_weekdays(days)


def _weekday(text: str, raw: str) -> int:
    text = text.strip()
    if text.isdigit() and 1 <= int(text) <= 7:
        return int(text)
    if text in WEEKDAY_NAMES:
        return WEEKDAY_NAMES[text]
    raise InvalidInput(
        f"{raw!r}: weekdays are 1 (Monday) to 7 (Sunday) or mon ... sun, got {text!r}", code="INVALID_WEEKDAY"
    )


def choice(raw: Any, choices: Sequence[str], code: str, what: str) -> str:
    """`raw` as one of `choices`; case, spaces and hyphens forgiven ("New-Energy" is new_energy)."""
    value = re.sub(r"[\s\-]+", "_", raw.strip().lower()) if isinstance(raw, str) else raw
    if value not in choices:
        raise InvalidInput(f"{what} must be one of {', '.join(choices)}, got {raw!r}", code=code)
    return value


def optional_text(raw: Any, limit: int) -> str | None:
    """Trimmed text, None when blank; at most `limit` characters."""
    if raw is None:
        return None
    text = str(raw).strip()
    if len(text) > limit:
        raise InvalidInput(f"at most {limit} characters, got {len(text)}", code="TEXT_TOO_LONG")
    return text or None


def phone(raw: Any) -> str | None:
    text = optional_text(raw, MAX_PHONE)
    if text is not None and (not _PHONE.fullmatch(text) or not any(c.isdigit() for c in text)):
        raise InvalidInput(f"{text!r} is not a phone number (digits, +, -, spaces, brackets)", code="INVALID_PHONE")
    return text


# --------------------------------------------------------------------------------------- whole entries
# Each validator takes the fields of one entry with typed values (dates as dates, weekdays as ints, window
# times as "HH:MM" text), records every problem in `problems`, and returns the values to store.
# `facility_ids` arrive resolved: the service (or the CSV reader) turns ids or codes into the tenant's own.


def _dates(fields: Mapping[str, Any], problems: Collector, *, required: bool) -> tuple[date | None, date | None]:
    valid_from, valid_until = fields.get("valid_from"), fields.get("valid_until")
    for key, value in (("valid_from", valid_from), ("valid_until", valid_until)):
        if value is None and required:
            problems.add(key, "MISSING_VALUE", "a date is required")
    if valid_from is not None and valid_until is not None and valid_until < valid_from:
        problems.add(
            "valid_until",
            "DATES_OUT_OF_ORDER",
            f"the last valid day {valid_until} is before the first {valid_from}",
        )
    return valid_from, valid_until


def _facilities(fields: Mapping[str, Any], problems: Collector) -> list[uuid.UUID] | None:
    facility_ids = fields.get("facility_ids")
    if facility_ids is None:
        return None
    if not facility_ids:
        problems.add("facility_ids", "EMPTY_FACILITIES", "name at least one facility, or none for all of them")
        return None
    return sorted(set(facility_ids))


def pass_values(fields: Mapping[str, Any], problems: Collector) -> dict[str, Any]:
    """plate, holder_name, holder_phone, facility_ids, valid_from, valid_until, weekdays (default all),
    window_start and window_end ("HH:MM", both or neither), vehicle_class (default standard), note."""
    valid_from, valid_until = _dates(fields, problems, required=True)
    weekdays = fields.get("weekdays")
    window = _window(fields.get("window_start"), fields.get("window_end"), problems)
    return {
        "plate": problems.run("plate", list_plate, fields.get("plate")),
        "holder_name": problems.run("holder_name", optional_text, fields.get("holder_name"), MAX_NAME),
        "holder_phone": problems.run("holder_phone", phone, fields.get("holder_phone")),
        "facility_ids": _facilities(fields, problems),
        "valid_from": valid_from,
        "valid_until": valid_until,
        "weekdays": list(ALL_WEEKDAYS) if weekdays is None else problems.run("weekdays", check_weekdays, weekdays),
        "window_start": window[0],
        "window_end": window[1],
        "vehicle_class": problems.run(
            "vehicle_class",
            choice,
            fields.get("vehicle_class") or "standard",
            VEHICLE_CLASSES,
            "INVALID_VEHICLE_CLASS",
            "vehicle class",
        ),
        "note": problems.run("note", optional_text, fields.get("note"), MAX_NOTE),
    }


def _window(start: str | None, end: str | None, problems: Collector) -> tuple[int | None, int | None]:
    if start is None and end is None:
        return None, None
    if start is None or end is None:
        missing = "window_start" if start is None else "window_end"
        problems.add(missing, "INCOMPLETE_WINDOW", "a daily window needs both its start and its end")
        return None, None
    first = problems.run("window_start", parse_time_of_day, start, end=False)
    last = problems.run("window_end", parse_time_of_day, end, end=True)
    if first is None or last is None:
        return None, None
    if first == 0 and last == MINUTES_PER_DAY:
        return None, None  # 00:00-24:00 is all day
    if first == last % MINUTES_PER_DAY:
        problems.add("window_end", "EMPTY_WINDOW", "the window must not start and end at the same time")
        return None, None
    return first, last


# A daily window from "HH:MM" texts, as pass offers take it too (hub/access/offer_rules.py).
window_of = _window


def whitelist_values(fields: Mapping[str, Any], problems: Collector) -> dict[str, Any]:
    """plate, category, facility_ids (none: all), valid_from / valid_until (optional), reason (optional)."""
    valid_from, valid_until = _dates(fields, problems, required=False)
    category = fields.get("category")
    if category is None:
        problems.add("category", "MISSING_VALUE", f"a category is required: {', '.join(WHITELIST_CATEGORIES)}")
    else:
        category = problems.run("category", choice, category, WHITELIST_CATEGORIES, "INVALID_CATEGORY", "category")
    return {
        "plate": problems.run("plate", list_plate, fields.get("plate")),
        "category": category,
        "facility_ids": _facilities(fields, problems),
        "valid_from": valid_from,
        "valid_until": valid_until,
        "reason": problems.run("reason", optional_text, fields.get("reason"), MAX_REASON),
    }


def blocklist_values(fields: Mapping[str, Any], problems: Collector) -> dict[str, Any]:
    """plate, kind (blacklist or restricted), reason (required), valid_from / valid_until (optional)."""
    valid_from, valid_until = _dates(fields, problems, required=False)
    kind = fields.get("kind")
    if kind is None:
        problems.add("kind", "MISSING_VALUE", "a kind is required: blacklist or restricted")
    else:
        kind = problems.run("kind", choice, kind, BLOCKLIST_KINDS, "INVALID_KIND", "kind")
    reason = problems.run("reason", optional_text, fields.get("reason"), MAX_REASON)
    if reason is None and not any(p.field == problems.label("reason") for p in problems.problems):
        problems.add("reason", "MISSING_VALUE", "say why the plate is blacklisted or restricted")
    return {
        "plate": problems.run("plate", list_plate, fields.get("plate")),
        "kind": kind,
        "reason": reason,
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


VALIDATORS: dict[ListKind, Callable[[Mapping[str, Any], Collector], dict[str, Any]]] = {
    "pass": pass_values,
    "whitelist": whitelist_values,
    "blocklist": blocklist_values,
}


def editable_fields(kind: ListKind, row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored entry as the typed fields its validator takes, so an update validates the whole entry."""
    fields = {key: row[key] for key in FIELDS[kind]}
    if kind == "pass":
        for key in ("window_start", "window_end"):
            fields[key] = None if row[key] is None else format_time_of_day(row[key])
    return fields


FIELDS: dict[ListKind, tuple[str, ...]] = {
    "pass": (
        "plate",
        "holder_name",
        "holder_phone",
        "facility_ids",
        "valid_from",
        "valid_until",
        "weekdays",
        "window_start",
        "window_end",
        "vehicle_class",
        "note",
    ),
    "whitelist": ("plate", "category", "facility_ids", "valid_from", "valid_until", "reason"),
    "blocklist": ("plate", "kind", "reason", "valid_from", "valid_until"),
}


# ------------------------------------------------------------------------------------------------ entries


@dataclass(frozen=True)
class Entry:
    """One live list entry as the standing and overlap rules see it. `facility_ids` None covers every
    facility; `weekdays` and the window apply to passes only."""

    list: ListKind
    id: uuid.UUID | None
    plate: str
    kind: str | None = None  # blocklist: blacklist | restricted
    category: str | None = None  # whitelist
    reason: str | None = None
    facility_ids: frozenset[uuid.UUID] | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    weekdays: frozenset[int] = field(default_factory=lambda: frozenset(ALL_WEEKDAYS))
    window_start: int | None = None
    window_end: int | None = None
    vehicle_class: str | None = None

    def covers_facility(self, facility_id: uuid.UUID) -> bool:
        return self.facility_ids is None or facility_id in self.facility_ids

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


def entry_of(list_kind: ListKind, values: Mapping[str, Any], entry_id: uuid.UUID | None = None) -> Entry:
    """An Entry from a stored row or from validated values (a mapping with the list's columns)."""
    facility_ids = values.get("facility_ids")
    weekdays = values.get("weekdays")
    return Entry(
        list=list_kind,
        id=values.get("id", entry_id),
        plate=values["plate"],
        kind=values.get("kind") if list_kind == "blocklist" else None,
        category=values.get("category"),
        reason=values.get("reason"),
        facility_ids=None if facility_ids is None else frozenset(facility_ids),
        valid_from=values.get("valid_from"),
        valid_until=values.get("valid_until"),
        weekdays=frozenset(weekdays) if weekdays else frozenset(ALL_WEEKDAYS),
        window_start=values.get("window_start"),
        window_end=values.get("window_end"),
        vehicle_class=values.get("vehicle_class"),
    )


# ----------------------------------------------------------------------------------------------- overlaps


def _dates_meet(a: Entry, b: Entry) -> bool:
    starts_before_b_ends = a.valid_from is None or b.valid_until is None or a.valid_from <= b.valid_until
    b_starts_before_a_ends = b.valid_from is None or a.valid_until is None or b.valid_from <= a.valid_until
    return starts_before_b_ends and b_starts_before_a_ends


def _facilities_meet(a: Entry, b: Entry) -> bool:
    return a.facility_ids is None or b.facility_ids is None or bool(a.facility_ids & b.facility_ids)


def _local_minutes(entry: Entry, first: date, last: date) -> list[tuple[int, int]]:
    """The pass's covered minutes on the days `first`..`last`, counted from `first`'s midnight (wall-clock
    minutes: the comparison of two passes' terms needs no zone)."""
    spans = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        if not entry.valid_on(day) or day.isoweekday() not in entry.weekdays:
            continue
        start, end = _daily_span(entry)
        spans.append((offset * MINUTES_PER_DAY + start, offset * MINUTES_PER_DAY + end))
    return spans


def _daily_span(entry: Entry) -> tuple[int, int]:
    """Minutes from the start day's midnight: an all-day pass covers 0-1440, a wrapping window ends past 1440."""
    if entry.window_start is None or entry.window_end is None:
        return 0, MINUTES_PER_DAY
    end = entry.window_end if entry.window_end > entry.window_start else entry.window_end + MINUTES_PER_DAY
    return entry.window_start, end


def overlaps(a: Entry, b: Entry) -> bool:
    """Whether two entries of one list for one plate say something about the same moment at the same facility:
    such a pair is a duplicate. Blocklist entries meet when their dates do, whitelist entries when their
    dates and facilities do, passes when, in addition, some minute is inside a window of both."""
    if a.list != b.list or a.plate != b.plate:
        return False
    if a.list == "blocklist":
        return _dates_meet(a, b)
    if not _facilities_meet(a, b):
        return False
    if a.list == "whitelist":
        return _dates_meet(a, b)
    # A pass's last window may run past midnight into the day after its dates, so passes whose dates are
    # a day apart may still meet. Windows repeat weekly: nine days from the day before the shared dates
    # show every way two passes can meet.
    assert a.valid_from and b.valid_from and a.valid_until and b.valid_until
    first = max(a.valid_from, b.valid_from) - timedelta(days=1)
    last = min(min(a.valid_until, b.valid_until) + timedelta(days=1), first + timedelta(days=9))
    if last < first:
        return False
    spans_b = _local_minutes(b, first, last)
    return any(s1 < e2 and s2 < e1 for s1, e1 in _local_minutes(a, first, last) for s2, e2 in spans_b)


def duplicates_among(entries: Sequence[Entry]) -> list[tuple[int, int]]:
    """(later, earlier) index pairs of entries that overlap an earlier one in the sequence; each later entry
    is named once, with the first earlier entry it overlaps."""
    by_plate: dict[str, list[int]] = {}
    found: list[tuple[int, int]] = []
    for index, entry in enumerate(entries):
        earlier = by_plate.setdefault(entry.plate, [])
        match = next((other for other in earlier if overlaps(entry, entries[other])), None)
        if match is not None:
            found.append((index, match))
        earlier.append(index)
    return found


# ------------------------------------------------------------------------------------------------ windows


def _local_instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of `minutes` after `day`'s local midnight (minutes may reach past the day). Wall
    times that a DST change skips or repeats resolve as zoneinfo does (fold 0)."""
    moment = datetime.combine(day + timedelta(days=minutes // MINUTES_PER_DAY), time(), tzinfo=zone)
    moment = moment.replace(hour=(minutes % MINUTES_PER_DAY) // 60, minute=minutes % 60)
    return moment.astimezone(UTC)


Window = tuple[datetime, datetime]


def _windows_between_days(entry: Entry, zone: ZoneInfo, first: date, last: date) -> list[Window]:
    """The pass's windows that start on the local days `first`..`last`, as merged UTC intervals."""
    assert entry.valid_from is not None and entry.valid_until is not None
    first, last = max(first, entry.valid_from), min(last, entry.valid_until)
    if first > last:
        return []
    if entry.window_start is None and len(entry.weekdays) == 7:
        # Every day all day: the whole pass is one stretch.
        end = entry.valid_until + timedelta(days=1)
        return [(_local_instant(entry.valid_from, 0, zone), _local_instant(end, 0, zone))]
    start_minute, end_minute = _daily_span(entry)
    merged: list[Window] = []
    day = first
    while day <= last:
        if day.isoweekday() in entry.weekdays:
            start, end = _local_instant(day, start_minute, zone), _local_instant(day, end_minute, zone)
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            elif start < end:
                merged.append((start, end))
        day += timedelta(days=1)
    return merged


def pass_windows(entry: Entry, zone: ZoneInfo, start: datetime, end: datetime) -> list[Window]:
    """The parts of [start, end) (aware instants) that the pass covers, as UTC (start, end) pairs in order:
    what the tariff engine leaves uncharged."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    if end <= start:
        return []
    first = start.astimezone(zone).date() - timedelta(days=1)  # yesterday's window may run into today
    last = end.astimezone(zone).date()
    clipped = []
    for window_start, window_end in _windows_between_days(entry, zone, first, last):
        lo, hi = max(window_start, start), min(window_end, end)
        if lo < hi:
            clipped.append((lo, hi))
    return clipped


def pass_window_at(entry: Entry, zone: ZoneInfo, at: datetime) -> Window | None:
    """The pass's window containing `at` (an all-day pass's runs over consecutive weekdays), or None."""
    local_day = at.astimezone(zone).date()
    # A stretch of all-day weekdays reaches at most 6 days either side of today unless every day is covered,
    # which `_windows_between_days` returns whole.
    for window_start, window_end in _windows_between_days(
        entry, zone, local_day - timedelta(days=7), local_day + timedelta(days=7)
    ):
        if window_start <= at < window_end:
            return window_start, window_end
    return None


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{name} must carry a time zone", code="INVALID_INSTANT", field=name)


# ----------------------------------------------------------------------------------------------- standing


@dataclass(frozen=True)
class Standing:
    """What the lists say about a plate at one facility and instant.

    - kind: blacklisted | restricted | whitelisted | pass_holder | visitor (see the module's precedence)
    - entry_id: the deciding entry (its list follows from the kind); None for a visitor
    - list: pass | whitelist | blocklist, the deciding entry's list; None for a visitor
    - reason: the blocklist entry's reason, or the whitelist entry's
    - category: the whitelist entry's category (official, vip, reserved, team)
    - vehicle_class: the pass's vehicle class
    - until: when the standing ends by itself (UTC): the end of the pass's current window, or the end of the
      entry's last valid day in the facility's zone; None when open-ended (and for a visitor)
    - idle_pass_id: for a visitor, a pass of the plate at this facility whose dates include today but which
      does not cover this instant (another weekday, outside its window): a pass holder outside the pass's hours
    """

    kind: StandingKind
    entry_id: uuid.UUID | None = None
    list: ListKind | None = None
    reason: str | None = None
    category: str | None = None
    vehicle_class: str | None = None
    until: datetime | None = None
    idle_pass_id: uuid.UUID | None = None


VISITOR = Standing("visitor")


def _end_of_day(day: date | None, zone: ZoneInfo) -> datetime | None:
    return None if day is None else _local_instant(day + timedelta(days=1), 0, zone)


def _longest(entries: Iterable[Entry]) -> Entry | None:
    """The entry valid longest: open-ended first, then the latest last day, then the smallest id."""
    return min(
        entries,
        key=lambda e: (e.valid_until is not None, -(e.valid_until or date.min).toordinal(), str(e.id)),
        default=None,
    )


def standing(entries: Iterable[Entry], facility_id: uuid.UUID, at: datetime, zone: ZoneInfo) -> Standing:
    """The standing of a plate at `facility_id` at the aware instant `at`, from the live entries found for the
    plate (any list, any facility: those that do not apply are ignored). `zone` is the facility's."""
    _require_aware(at, "at")
    day = at.astimezone(zone).date()
    blocked: dict[str, list[Entry]] = {"blacklist": [], "restricted": []}
    whitelisted: list[Entry] = []
    passes: list[Entry] = []
    for entry in entries:
        if entry.list == "blocklist" and entry.valid_on(day):
            blocked[entry.kind or "blacklist"].append(entry)
        elif entry.list == "whitelist" and entry.valid_on(day) and entry.covers_facility(facility_id):
            whitelisted.append(entry)
        elif entry.list == "pass" and entry.covers_facility(facility_id):
            passes.append(entry)
    for kind, standing_kind in (("blacklist", "blacklisted"), ("restricted", "restricted")):
        chosen = _longest(blocked[kind])
        if chosen is not None:
            return Standing(
                standing_kind,
                entry_id=chosen.id,
                list="blocklist",
                reason=chosen.reason,
                until=_end_of_day(chosen.valid_until, zone),
            )
    chosen = _longest(whitelisted)
    if chosen is not None:
        return Standing(
            "whitelisted",
            entry_id=chosen.id,
            list="whitelist",
            reason=chosen.reason,
            category=chosen.category,
            until=_end_of_day(chosen.valid_until, zone),
        )
    open_windows = [(window[1], entry) for entry in passes if (window := pass_window_at(entry, zone, at))]
    if open_windows:
        until, chosen = min(open_windows, key=lambda pair: (-pair[0].timestamp(), str(pair[1].id)))
        return Standing("pass_holder", entry_id=chosen.id, list="pass", vehicle_class=chosen.vehicle_class, until=until)
    idle = sorted((entry for entry in passes if entry.valid_on(day)), key=lambda entry: str(entry.id))
    return Standing("visitor", idle_pass_id=idle[0].id) if idle else VISITOR
