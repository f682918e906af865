"""The pure rule of zone cameras (a curb camera watching a whole curb zone): which bay a sighting is attributed
to, or why none, and when it is too early to tell."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from hub.street import rules
from hub.street.rules import Held, Interval, ZoneAttribution, ZoneBay

T = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # the sighting
LATER = T + rules.SIGHTING_LEAD  # the arrival can no longer be reported: the rule decides
PLATE, OTHER = "粤B12345", "粤B54321"
A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


def minutes(count: float) -> timedelta:
    return timedelta(minutes=count)


def arrived(at: datetime, left: datetime | None = None) -> ZoneBay:
    """A bay vacant for an hour, then occupied from `at` (until `left`, vacant after)."""
    history = [Interval("vacant", at - minutes(60), at), Interval("occupied", at, left)]
    if left is not None:
        history.append(Interval("vacant", left, None))
    return ZoneBay(history, [])


def vacant() -> ZoneBay:
    return ZoneBay([Interval("vacant", T - minutes(60), None)], [])


def session(plate: str, start: datetime, end: datetime | None = None) -> Held:
    return Held(uuid.uuid4(), plate, start, end)


def attribute(bays: dict[uuid.UUID, ZoneBay], now: datetime = LATER, plate: str = PLATE) -> ZoneAttribution:
    return rules.attribute_zone_sighting(plate, T, bays, now)


def test_the_one_bay_that_turned_occupied_gets_the_session_from_its_arrival() -> None:
    decided = attribute({A: vacant(), B: arrived(T - minutes(1)), C: vacant()})
    assert (decided.space_id, decided.start, decided.outcome) == (B, T - minutes(1), None)
    # A camera may read the plate as the car pulls in, just before the sensor reports it.
    assert attribute({A: vacant(), B: arrived(T + minutes(1))}).start == T + minutes(1)


def test_a_zone_of_one_bay_decides_as_that_bays_own_camera_would() -> None:
    bay = arrived(T - minutes(1))
    own_camera = rules.auto_session_start(T, bay.history, None, LATER)
    assert attribute({A: bay}) == ZoneAttribution(space_id=A, start=own_camera.start)


def test_two_bays_that_turned_occupied_at_once_leave_it_ambiguous() -> None:
    assert attribute({A: arrived(T), B: arrived(T), C: vacant()}) == ZoneAttribution(outcome=rules.AMBIGUOUS_BAY)


def test_no_arrival_in_a_sensed_bay_means_no_bay() -> None:
    # A passing car; or one parked in a bay without a sensor (no history), which cannot be billed to a bay.
    assert attribute({A: vacant(), B: ZoneBay([], [])}) == ZoneAttribution(outcome=rules.NO_BAY)
    assert attribute({}) == ZoneAttribution(outcome=rules.NO_BAY)
    # An arrival more than SIGHTING_LEAD after the sighting is another car's.
    assert attribute({A: arrived(T + rules.SIGHTING_LEAD + minutes(1))}).outcome == rules.NO_BAY
    # A bay the car left before the sighting holds nothing for it.
    assert attribute({A: arrived(T - minutes(30), T - minutes(5))}).outcome == rules.NO_BAY


def test_until_the_lead_has_passed_nothing_but_a_running_session_is_decided() -> None:
    early = T + rules.SIGHTING_LEAD - minutes(0.5)
    assert attribute({A: vacant()}, now=early) == ZoneAttribution()  # the sensor may still report the arrival
    assert attribute({A: arrived(T), B: vacant()}, now=early) == ZoneAttribution()  # and B may turn occupied too
    assert attribute({A: arrived(T), B: vacant()}, now=LATER).space_id == A


def test_a_plate_already_in_session_in_the_zone_starts_nothing_wherever_its_session_is() -> None:
    running = session(PLATE, T - minutes(20))
    bays = {A: ZoneBay(arrived(T - minutes(20)).history, [running]), B: arrived(T)}
    expected = ZoneAttribution(space_id=A, outcome=rules.PLATE_HAS_SESSION, session_id=running.session_id)
    assert attribute(bays) == expected
    assert attribute(bays, now=T) == expected  # no need to wait
    # A session starting at the arrival just after the sighting is the same car's too.
    soon = session(PLATE, T + minutes(1))
    bays = {A: ZoneBay(arrived(T + minutes(1)).history, [soon])}
    assert attribute(bays).outcome == rules.PLATE_HAS_SESSION


def test_a_bay_whose_car_is_paid_for_by_another_plate_is_no_candidate() -> None:
    # Both bays turned occupied at once, but B's driver paid at the bay a minute later: the plate is in A.
    paid = ZoneBay(arrived(T).history, [session(OTHER, T + minutes(1), T + minutes(61))])
    assert attribute({A: arrived(T), B: paid}) == ZoneAttribution(space_id=A, start=T)
    # A prepaid session that ran out while its car stayed still says whose car it is.
    ran_out = ZoneBay(arrived(T - minutes(90)).history, [session(OTHER, T - minutes(90), T - minutes(30))])
    assert attribute({A: ran_out}).outcome == rules.NO_BAY


def test_a_car_staying_after_its_own_session_pays_from_that_sessions_end() -> None:
    own = ZoneBay(arrived(T - minutes(90)).history, [session(PLATE, T - minutes(90), T - minutes(30))])
    assert attribute({A: own, B: vacant()}) == ZoneAttribution(space_id=A, start=T - minutes(30))


def test_a_car_that_arrived_earlier_is_not_a_passing_plates_to_pay_for() -> None:
    # A car has stood unpaid in A for half an hour; an authorized car drives past the camera.
    assert attribute({A: arrived(T - minutes(30)), B: vacant()}).outcome == rules.NO_BAY
    # So an ambiguous sighting stays ambiguous: a later read, once the other car has left, names no bay either.
    bays = {A: arrived(T), B: arrived(T, T + minutes(10))}
    assert attribute(bays).outcome == rules.AMBIGUOUS_BAY
    again = T + minutes(15)
    assert rules.attribute_zone_sighting(PLATE, again, bays, again + rules.SIGHTING_LEAD).outcome == rules.NO_BAY


# ---- properties ----------------------------------------------------------------------------------------------

STATUSES = ("occupied", "vacant", "unknown")


@st.composite
def bays(draw: st.DrawFn) -> ZoneBay:
    """A bay's history around the sighting (contiguous stretches, maybe none) and a few sessions of either plate
    that never overlap one another."""
    moments = sorted(set(draw(st.lists(st.integers(min_value=-120, max_value=120), max_size=6))))
    statuses = draw(st.lists(st.sampled_from(STATUSES), min_size=len(moments), max_size=len(moments)))
    history = [
        Interval(status, T + minutes(start), T + minutes(moments[i + 1]) if i + 1 < len(moments) else None)
        for i, (start, status) in enumerate(zip(moments, statuses, strict=True))
    ]
    bounds = sorted(set(draw(st.lists(st.integers(min_value=-180, max_value=180), max_size=6))))
    sessions = []
    for start, end in zip(bounds[::2], bounds[1::2], strict=False):
        open_ended = draw(st.booleans()) and end == bounds[-1]
        sessions.append(
            session(draw(st.sampled_from((PLATE, OTHER))), T + minutes(start), None if open_ended else T + minutes(end))
        )
    return ZoneBay(history, sessions)


zones = st.dictionaries(st.sampled_from([A, B, C, uuid.UUID(int=4)]), bays(), max_size=4)


def qualifies(bay: ZoneBay) -> bool:
    """The rule's candidate, restated: an arrival for the sighting that no other plate's session holds, and that
    came within the lead of it unless a session of the plate held that car."""
    stretch = rules.arrival(T, bay.history)
    if stretch is None:
        return False
    holders = {held.plate for held in bay.sessions if held.overlaps(stretch.start, stretch.end)}
    return OTHER not in holders and (stretch.start >= T - rules.SIGHTING_LEAD or PLATE in holders)


def in_session(bay: ZoneBay) -> bool:
    return any(
        held.plate == PLATE and held.overlaps(T, T + rules.SIGHTING_LEAD + timedelta(microseconds=1))
        for held in bay.sessions
    )


@given(zone=zones, late=st.integers(min_value=0, max_value=600))
def test_a_decided_sighting_names_the_only_bay_that_can_hold_the_car(zone: dict[uuid.UUID, ZoneBay], late: int) -> None:
    decided = attribute(zone, now=LATER + minutes(late))
    assert decided == attribute(zone)  # once the lead has passed, waiting longer changes nothing
    if any(in_session(bay) for bay in zone.values()):
        assert decided.outcome == rules.PLATE_HAS_SESSION and in_session(zone[decided.space_id])
        return
    candidates = [space_id for space_id, bay in zone.items() if qualifies(bay)]
    if len(candidates) != 1:
        assert decided == ZoneAttribution(outcome=rules.NO_BAY if not candidates else rules.AMBIGUOUS_BAY)
        return
    [space_id] = candidates
    bay = zone[space_id]
    stretch = rules.arrival(T, bay.history)
    assert stretch is not None and decided.space_id == space_id and decided.start is not None
    # From the arrival, never inside a session of the bay that ended before the sighting.
    assert decided.start >= stretch.start
    assert not any(held.overlaps(decided.start, T) for held in bay.sessions if held.end is not None and held.end <= T)


@given(zone=zones, early=st.integers(min_value=1, max_value=119))
def test_before_the_lead_has_passed_only_a_running_session_decides(zone: dict[uuid.UUID, ZoneBay], early: int) -> None:
    decided = attribute(zone, now=LATER - timedelta(seconds=early))
    assert decided == ZoneAttribution() or decided.outcome == rules.PLATE_HAS_SESSION


@given(zone=zones, quiet=st.lists(st.sampled_from(("vacant", "unknown", None)), max_size=3))
def test_bays_that_saw_no_arrival_change_nothing(zone: dict[uuid.UUID, ZoneBay], quiet: list[str | None]) -> None:
    more = dict(zone)
    for status in quiet:
        history = [] if status is None else [Interval(status, T - minutes(60), None)]
        more[uuid.uuid4()] = ZoneBay(history, [])
    assert attribute(more) == attribute(zone)
