"""Pure vehicle-list rules: validation, overlaps, pass windows in the facility's zone, and precedence."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.plates import normalize_camera_plate
from hub.access import rules
from hub.access.rules import Collector, Entry
from hub.errors import InvalidInput

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
LOT = uuid.UUID(int=1)
OTHER_LOT = uuid.UUID(int=2)


def local(zone: ZoneInfo, *parts: int) -> datetime:
    """An aware instant from local wall-clock parts (year, month, day, hour, minute)."""
    return datetime(*parts, tzinfo=zone)  # type: ignore[misc]


def a_pass(**terms: Any) -> Entry:
    defaults: dict[str, Any] = {
        "list": "pass",
        "id": uuid.uuid4(),
        "plate": "粤B12345",
        "valid_from": date(2026, 11, 1),
        "valid_until": date(2026, 11, 30),
        "vehicle_class": "standard",
    }
    return Entry(**{**defaults, **terms})


def collect(kind: rules.ListKind, fields: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    problems = Collector(lambda key: key)
    values = rules.VALIDATORS[kind](fields, problems)
    return values, [(problem.field, problem.code) for problem in problems.problems]


# ----------------------------------------------------------------------------------------------- plates


@pytest.mark.parametrize(
    ("raw", "plate"),
    [("粤B·12345", "粤B12345"), ("粤b 12345", "粤B12345"), ("粤Ｂ１２３４５", "粤B12345"), ("京A-F0236", "京AF0236")],
)
def test_list_plates_are_stored_as_cameras_read_them(raw: str, plate: str) -> None:
    assert rules.list_plate(raw) == plate
    assert normalize_camera_plate(raw)[0] == plate


@given(st.text(alphabet="粤京沪ABCDFGHJKLMNPQRSTUVWXYZabcdxyz0123456789 -·.", min_size=1, max_size=14))
def test_whatever_a_list_accepts_a_camera_read_of_the_same_text_matches(raw: str) -> None:
    try:
        stored = rules.list_plate(raw)
    except InvalidInput as error:
        assert error.code in ("INVALID_PLATE", "MISSING_VALUE")
        return
    assert normalize_camera_plate(raw)[0] == stored


@pytest.mark.parametrize(("raw", "code"), [("", "MISSING_VALUE"), ("  ", "MISSING_VALUE"), ("粤B#12", "INVALID_PLATE")])
def test_bad_plates_are_refused_with_a_code(raw: str, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        rules.list_plate(raw)
    assert caught.value.code == code


# -------------------------------------------------------------------------------------- weekdays, times


@pytest.mark.parametrize(
    ("raw", "days"),
    [
        ("1-5", [1, 2, 3, 4, 5]),
        ("mon-fri", [1, 2, 3, 4, 5]),
        ("Sat;Sunday", [6, 7]),
        ("fri-mon", [1, 5, 6, 7]),
        ("1,3,5", [1, 3, 5]),
        ("7 1", [1, 7]),
        ("", [1, 2, 3, 4, 5, 6, 7]),
    ],
)
def test_weekdays_as_people_write_them(raw: str, days: list[int]) -> None:
    assert rules.parse_weekdays(raw) == days


@pytest.mark.parametrize("raw", ["0", "8", "1-8", "funday", "1-3-5", "mo"])
def test_weekdays_outside_1_to_7_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        rules.parse_weekdays(raw)
    assert caught.value.code == "INVALID_WEEKDAY"


def test_times_of_day() -> None:
    assert rules.parse_time_of_day("7:30", end=False) == 450
    assert rules.parse_time_of_day("24:00", end=True) == 1440
    for raw, end in (("24:00", False), ("25:00", True), ("12:60", True), ("noon", False)):
        with pytest.raises(InvalidInput) as caught:
            rules.parse_time_of_day(raw, end=end)
        assert caught.value.code == "INVALID_TIME"


# ---------------------------------------------------------------------------------------- whole entries


def test_every_problem_of_a_pass_is_reported_at_once() -> None:
    _, problems = collect(
        "pass",
        {
            "plate": "??",
            "valid_from": date(2026, 12, 1),
            "valid_until": date(2026, 11, 1),
            "weekdays": [0, 3],
            "window_start": "22:00",
            "vehicle_class": "bus",
            "holder_phone": "call me",
        },
    )
    assert set(problems) == {
        ("plate", "INVALID_PLATE"),
        ("valid_until", "DATES_OUT_OF_ORDER"),
        ("weekdays", "INVALID_WEEKDAY"),
        ("window_end", "INCOMPLETE_WINDOW"),
        ("vehicle_class", "INVALID_VEHICLE_CLASS"),
        ("holder_phone", "INVALID_PHONE"),
    }


def test_a_valid_pass_is_normalized_for_storage() -> None:
    values, problems = collect(
        "pass",
        {
            "plate": "粤b·12345",
            "valid_from": date(2026, 11, 1),
            "valid_until": date(2026, 11, 30),
            "weekdays": [5, 1, 5],
            "window_start": "22:00",
            "window_end": "06:00",
            "vehicle_class": "New-Energy",
            "holder_name": "  Li Wei ",
        },
    )
    assert problems == []
    assert values["plate"] == "粤B12345"
    assert values["weekdays"] == [1, 5]
    assert (values["window_start"], values["window_end"]) == (22 * 60, 6 * 60)
    assert values["vehicle_class"] == "new_energy"
    assert values["holder_name"] == "Li Wei"


def test_a_window_of_the_whole_day_is_stored_as_no_window_and_an_empty_one_is_refused() -> None:
    fields = {"plate": "粤B12345", "valid_from": date(2026, 11, 1), "valid_until": date(2026, 11, 1)}
    values, problems = collect("pass", {**fields, "window_start": "00:00", "window_end": "24:00"})
    assert problems == [] and values["window_start"] is None and values["window_end"] is None
    _, problems = collect("pass", {**fields, "window_start": "08:00", "window_end": "08:00"})
    assert problems == [("window_end", "EMPTY_WINDOW")]


def test_list_entries_need_their_own_fields() -> None:
    assert collect("blocklist", {"plate": "粤B12345", "kind": "blacklist"})[1] == [("reason", "MISSING_VALUE")]
    assert collect("blocklist", {"plate": "粤B12345", "kind": "banned", "reason": "x"})[1] == [("kind", "INVALID_KIND")]
    assert collect("whitelist", {"plate": "粤B12345"})[1] == [("category", "MISSING_VALUE")]
    assert collect("whitelist", {"plate": "粤B12345", "category": "VIP", "facility_ids": []})[1] == [
        ("facility_ids", "EMPTY_FACILITIES")
    ]


# ------------------------------------------------------------------------------------------------ windows


def test_an_overnight_window_belongs_to_the_day_it_starts() -> None:
    # Fridays only, 22:00 to 06:00. 2026-11-20 is a Friday.
    night = a_pass(weekdays=frozenset({5}), window_start=22 * 60, window_end=6 * 60)
    friday_late = local(SHANGHAI, 2026, 11, 20, 23, 0)
    saturday_early = local(SHANGHAI, 2026, 11, 21, 3, 0)
    window = (local(SHANGHAI, 2026, 11, 20, 22, 0), local(SHANGHAI, 2026, 11, 21, 6, 0))
    assert rules.pass_window_at(night, SHANGHAI, friday_late) == window
    assert rules.pass_window_at(night, SHANGHAI, saturday_early) == window
    # Saturday night is not Friday's, and Friday morning belongs to Thursday's (absent) window.
    assert rules.pass_window_at(night, SHANGHAI, local(SHANGHAI, 2026, 11, 21, 23, 0)) is None
    assert rules.pass_window_at(night, SHANGHAI, local(SHANGHAI, 2026, 11, 20, 3, 0)) is None
    assert rules.pass_window_at(night, SHANGHAI, local(SHANGHAI, 2026, 11, 21, 6, 0)) is None  # the end is open


def test_the_last_days_overnight_window_runs_past_the_last_date() -> None:
    night = a_pass(valid_until=date(2026, 11, 30), window_start=22 * 60, window_end=6 * 60)
    assert rules.pass_window_at(night, SHANGHAI, local(SHANGHAI, 2026, 12, 1, 5, 0)) is not None
    assert rules.pass_window_at(night, SHANGHAI, local(SHANGHAI, 2026, 12, 1, 23, 0)) is None
    # ...while the night before the first date is not the pass's.
    assert rules.pass_window_at(night, SHANGHAI, local(SHANGHAI, 2026, 11, 1, 5, 0)) is None


def test_windows_are_read_in_the_facilitys_zone() -> None:
    office_hours = a_pass(weekdays=frozenset({1, 2, 3, 4, 5}), window_start=8 * 60, window_end=18 * 60)
    instant = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai, Sunday 21:00 in New York
    assert rules.pass_window_at(office_hours, SHANGHAI, instant) is not None
    assert rules.pass_window_at(office_hours, ZoneInfo("America/New_York"), instant) is None


def test_an_all_day_pass_on_workdays_lasts_until_the_weekend() -> None:
    workdays = a_pass(weekdays=frozenset({1, 2, 3, 4, 5}))
    wednesday = local(SHANGHAI, 2026, 11, 18, 12, 0)
    assert rules.pass_window_at(workdays, SHANGHAI, wednesday) == (
        local(SHANGHAI, 2026, 11, 16, 0, 0),
        local(SHANGHAI, 2026, 11, 21, 0, 0),
    )
    every_day = a_pass()
    assert rules.pass_window_at(every_day, SHANGHAI, wednesday) == (
        local(SHANGHAI, 2026, 11, 1, 0, 0),
        local(SHANGHAI, 2026, 12, 1, 0, 0),
    )


def test_a_day_window_across_a_dst_change_keeps_its_wall_clock_times() -> None:
    # 2026-03-29: Berlin skips 02:00-03:00. A 00:00-06:00 window that night lasts 5 real hours.
    early = a_pass(valid_from=date(2026, 3, 1), valid_until=date(2026, 3, 31), window_start=0, window_end=6 * 60)
    day = local(BERLIN, 2026, 3, 29, 0, 0)
    windows = rules.pass_windows(early, BERLIN, day, day + timedelta(days=1))
    assert windows == [(local(BERLIN, 2026, 3, 29, 0, 0), local(BERLIN, 2026, 3, 29, 6, 0))]
    assert windows[0][1] - windows[0][0] == timedelta(hours=5)


def test_pass_windows_are_the_covered_parts_of_a_stay() -> None:
    night = a_pass(window_start=22 * 60, window_end=6 * 60)
    entry = local(SHANGHAI, 2026, 11, 10, 20, 0)
    exit = local(SHANGHAI, 2026, 11, 12, 7, 0)
    assert rules.pass_windows(night, SHANGHAI, entry, exit) == [
        (local(SHANGHAI, 2026, 11, 10, 22, 0), local(SHANGHAI, 2026, 11, 11, 6, 0)),
        (local(SHANGHAI, 2026, 11, 11, 22, 0), local(SHANGHAI, 2026, 11, 12, 6, 0)),
    ]
    assert rules.pass_windows(night, SHANGHAI, exit, entry) == []


passes = st.builds(
    lambda start, length, days, window: a_pass(
        valid_from=start,
        valid_until=start + timedelta(days=length),
        weekdays=frozenset(days),
        window_start=window[0] if window else None,
        window_end=window[1] if window else None,
    ),
    st.dates(date(2026, 1, 1), date(2026, 12, 1)),
    st.integers(0, 40),
    st.sets(st.integers(1, 7), min_size=1),
    st.one_of(
        st.none(),
        st.tuples(st.integers(0, 1439), st.integers(1, 1440)).filter(lambda w: w[0] != w[1] % 1440),
    ),
)
zones = st.sampled_from([SHANGHAI, BERLIN, ZoneInfo("America/New_York")])


@given(entry=passes, zone=zones, offset_minutes=st.integers(-3 * 1440, 45 * 1440))
def test_the_window_at_an_instant_agrees_with_the_windows_of_a_stay(
    entry: Entry, zone: ZoneInfo, offset_minutes: int
) -> None:
    assert entry.valid_from is not None
    at = local(zone, entry.valid_from.year, entry.valid_from.month, entry.valid_from.day, 0, 0)
    at = (at + timedelta(minutes=offset_minutes)).astimezone(UTC)
    stay = rules.pass_windows(entry, zone, at - timedelta(days=1), at + timedelta(days=1))
    inside = any(start <= at < end for start, end in stay)
    assert (rules.pass_window_at(entry, zone, at) is not None) == inside
    for (start, end), following in itertools.pairwise(stay):
        assert start < end < following[0]  # ordered, merged, never empty


# ---------------------------------------------------------------------------------------------- overlaps


def test_passes_overlap_only_where_their_windows_meet() -> None:
    days = a_pass(window_start=8 * 60, window_end=18 * 60)
    nights = a_pass(window_start=18 * 60, window_end=8 * 60)
    assert not rules.overlaps(days, nights)
    assert rules.overlaps(days, a_pass(window_start=17 * 60, window_end=19 * 60))
    weekends = a_pass(weekdays=frozenset({6, 7}))
    workdays = a_pass(weekdays=frozenset({1, 2, 3, 4, 5}))
    assert not rules.overlaps(weekends, workdays)
    assert not rules.overlaps(a_pass(facility_ids=frozenset({LOT})), a_pass(facility_ids=frozenset({OTHER_LOT})))
    assert rules.overlaps(a_pass(facility_ids=frozenset({LOT})), a_pass(facility_ids=None))
    assert not rules.overlaps(a_pass(), a_pass(valid_from=date(2026, 12, 1), valid_until=date(2026, 12, 31)))
    assert not rules.overlaps(a_pass(), a_pass(plate="粤B99999"))


def test_a_nights_window_running_into_the_next_passs_first_morning_overlaps() -> None:
    november = a_pass(window_start=22 * 60, window_end=6 * 60)
    december_mornings = a_pass(
        valid_from=date(2026, 12, 1), valid_until=date(2026, 12, 31), window_start=0, window_end=600
    )
    assert rules.overlaps(november, december_mornings)
    december_days = a_pass(
        valid_from=date(2026, 12, 1), valid_until=date(2026, 12, 31), window_start=480, window_end=1080
    )
    assert not rules.overlaps(november, december_days)


def test_list_entries_overlap_by_dates_and_facilities() -> None:
    def listed(list_kind: rules.ListKind, **terms: Any) -> Entry:
        return Entry(list=list_kind, id=uuid.uuid4(), plate="粤B12345", **terms)

    assert rules.overlaps(listed("blocklist", kind="blacklist"), listed("blocklist", kind="restricted"))
    assert not rules.overlaps(
        listed("blocklist", kind="blacklist", valid_until=date(2026, 1, 31)),
        listed("blocklist", kind="blacklist", valid_from=date(2026, 2, 1)),
    )
    assert not rules.overlaps(
        listed("whitelist", facility_ids=frozenset({LOT})), listed("whitelist", facility_ids=frozenset({OTHER_LOT}))
    )
    assert rules.overlaps(listed("whitelist"), listed("whitelist", facility_ids=frozenset({OTHER_LOT})))


def test_duplicates_among_name_each_later_entry_with_the_first_it_repeats() -> None:
    entries = [a_pass(), a_pass(plate="粤B99999"), a_pass(), a_pass(window_start=60, window_end=120)]
    assert rules.duplicates_among(entries) == [(2, 0), (3, 0)]


# ---------------------------------------------------------------------------------------------- standing

NOON = local(SHANGHAI, 2026, 11, 18, 12, 0)  # a Wednesday


def listed_entries(blacklist: bool, restricted: bool, whitelist: bool, active_pass: bool) -> list[Entry]:
    entries = []
    if blacklist:
        entries.append(Entry(list="blocklist", id=uuid.uuid4(), plate="P", kind="blacklist", reason="unpaid"))
    if restricted:
        entries.append(Entry(list="blocklist", id=uuid.uuid4(), plate="P", kind="restricted", reason="police"))
    if whitelist:
        entries.append(
            Entry(list="whitelist", id=uuid.uuid4(), plate="P", category="vip", facility_ids=frozenset({LOT}))
        )
    if active_pass:
        entries.append(a_pass(plate="P", facility_ids=frozenset({LOT})))
    return entries


@given(flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()), reverse=st.booleans())
def test_precedence_blacklist_restricted_whitelist_pass_visitor(
    flags: tuple[bool, bool, bool, bool], reverse: bool
) -> None:
    entries = listed_entries(*flags)
    if reverse:
        entries.reverse()
    expected = next(
        (
            kind
            for kind, present in zip(("blacklisted", "restricted", "whitelisted", "pass_holder"), flags, strict=True)
            if present
        ),
        "visitor",
    )
    result = rules.standing(entries, LOT, NOON, SHANGHAI)
    assert result.kind == expected
    deciding = [entry for entry in entries if entry.id == result.entry_id]
    assert (len(deciding) == 1) == (expected != "visitor")


def test_whitelist_and_passes_apply_at_their_facilities_but_the_blocklist_everywhere() -> None:
    entries = listed_entries(False, False, True, True)
    assert rules.standing(entries, OTHER_LOT, NOON, SHANGHAI).kind == "visitor"
    blocked = listed_entries(False, True, False, False)
    assert rules.standing(blocked, OTHER_LOT, NOON, SHANGHAI).kind == "restricted"


def test_entries_outside_their_dates_do_not_count() -> None:
    expired = Entry(
        list="blocklist", id=uuid.uuid4(), plate="P", kind="blacklist", reason="x", valid_until=date(2026, 11, 17)
    )
    future = Entry(list="whitelist", id=uuid.uuid4(), plate="P", category="team", valid_from=date(2026, 11, 19))
    assert rules.standing([expired, future], LOT, NOON, SHANGHAI) == rules.VISITOR
    # The dates are the facility's: 2026-11-17 23:30 in New York is already the 18th in Shanghai.
    late_evening = local(ZoneInfo("America/New_York"), 2026, 11, 17, 23, 30)
    assert rules.standing([expired], LOT, late_evening, ZoneInfo("America/New_York")).kind == "blacklisted"
    assert rules.standing([expired], LOT, late_evening, SHANGHAI).kind == "visitor"


def test_a_pass_holder_standing_says_when_the_window_ends_and_a_closed_window_is_named() -> None:
    office_hours = a_pass(plate="P", window_start=8 * 60, window_end=18 * 60, vehicle_class="large")
    during = rules.standing([office_hours], LOT, NOON, SHANGHAI)
    assert during.kind == "pass_holder" and during.entry_id == office_hours.id
    assert during.until == local(SHANGHAI, 2026, 11, 18, 18, 0)
    assert during.vehicle_class == "large"
    evening = rules.standing([office_hours], LOT, local(SHANGHAI, 2026, 11, 18, 19, 0), SHANGHAI)
    assert evening == rules.Standing("visitor", idle_pass_id=office_hours.id)


def test_the_whitelist_entry_valid_longest_decides_whatever_the_order() -> None:
    short = Entry(list="whitelist", id=uuid.uuid4(), plate="P", category="team", valid_until=date(2026, 11, 20))
    endless = Entry(list="whitelist", id=uuid.uuid4(), plate="P", category="official")
    for entries in ([short, endless], [endless, short]):
        decided = rules.standing(entries, LOT, NOON, SHANGHAI)
        assert (decided.entry_id, decided.category, decided.until) == (endless.id, "official", None)
    decided = rules.standing([short], LOT, NOON, SHANGHAI)
    assert decided.until == local(SHANGHAI, 2026, 11, 21, 0, 0)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        rules.standing([], LOT, datetime(2026, 11, 18, 12, 0), SHANGHAI)
    assert caught.value.code == "INVALID_INSTANT"
