"""Pure rules of on-street sessions: the state machine, what a prepaid span costs, what an extension costs, what
ending early refunds, when an automatic session starts and ends, and when an occupied bay is flagged. No I/O.

States. A session is prepaid (a driver bought a duration by space code) or postpaid (a curb camera saw a plate
with an active auto-pay authorization; priced when it ends):

    prepaid:   active -> extended -> extended ... -> ended_early (the driver ended it before the paid end)
                                                  -> expired     (the paid time ran out)
    postpaid:  active -> ended_by_sensor (the bay's sensor reported it vacant)
                      -> ended_by_driver (the driver ended it in the app)

`active` and `extended` are open; every other state is final. A prepaid session whose paid time has run out is
expired from that instant on, whether or not a sweep has written it yet (`effective_state`).

Money (integer fen, under the tariff version sealed at the start, in the zone's time zone):
- prepaid: the driver pays the engine's price of [start, start + duration); an extension prices the whole new
  span [start, new end) and costs the difference, so first units, tiers and caps apply as to one stay;
- ending early: the true price is the engine's price of [start, end), and the refund is what was paid minus
  it, never negative. Not a share of the time: a first unit or a cap already reached keeps its price;
- postpaid: the charge is the engine's price of [start, end) when the session ends.

Refunds exist only for prepaid sessions and charges on ending only for postpaid ones.

Automatic sessions. A curb camera is bound to one bay or to a whole curb zone. A bay camera's sighting of an
authorized plate belongs to its bay (`auto_session_start`). A zone camera's sighting of plate P at t is attributed
to a bay of the zone (`attribute_zone_sighting`):
- P already has a session in the zone live at t (or starting within SIGHTING_LEAD after it, the arrival the
  sighting belongs to): nothing to start, wherever that session is (PLATE_HAS_SESSION);
- until SIGHTING_LEAD has passed since t nothing else is decided: a sensor may still report the arrival, and a
  second one would make a lone candidate ambiguous (a later run looks again);
- then the candidates are the zone's bays whose sensor saw a car arrive within SIGHTING_LEAD of t, before or after
  (the arrival), and that no session of another plate holds during that stretch (that car is someone else's, paid
  for). One candidate: its automatic session starts as a bay camera's sighting would (`auto_session_start`: at
  the arrival, never before the end of the bay's last session). None: NO_BAY (a passing car, or a car in an
  unsensed bay, which cannot be billed to a bay). Several: AMBIGUOUS_BAY (which car is which cannot be told).
  A car that arrived earlier is no candidate, even when it is the only unpaid one (unless a session of P held it:
  P's car staying on after its session): a zone camera also reads cars driving past, and billing a passing
  driver with auto-pay for someone else's unpaid stay is worse than leaving that bay to enforcement. So a
  sighting left ambiguous stays so, and a later read cannot settle it; the bays keep their enforcement flags.
Automatic sessions end by the bay's sensor whoever started them (`sensor_end`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hub.errors import Conflict, InvalidInput
from hub.pricing.rules import Quote, price
from hub.pricing.tariff import Rate, Tariff

PREPAID, POSTPAID = "prepaid", "postpaid"
PAYMENT_MODES = (PREPAID, POSTPAID)
DRIVER, CAMERA = "driver", "camera"  # how a session started
ORIGINS = (DRIVER, CAMERA)

ACTIVE, EXTENDED = "active", "extended"
ENDED_EARLY, EXPIRED, ENDED_BY_SENSOR, ENDED_BY_DRIVER = "ended_early", "expired", "ended_by_sensor", "ended_by_driver"
# A prepaid session none of whose time was paid for: its prepayments failed, so it ended when that was known.
PAYMENT_FAILED = "payment_failed"
OPEN_STATES = (ACTIVE, EXTENDED)
FINAL_STATES = (ENDED_EARLY, EXPIRED, ENDED_BY_SENSOR, ENDED_BY_DRIVER, PAYMENT_FAILED)
STATES = (*OPEN_STATES, *FINAL_STATES)

# What can happen to a session, and what each does in each mode.
EXTEND, END, EXPIRE, VACATE = "extend", "end", "expire", "vacate"
TRANSITIONS: dict[tuple[str, str], str] = {
    (PREPAID, EXTEND): EXTENDED,
    (PREPAID, END): ENDED_EARLY,
    (PREPAID, EXPIRE): EXPIRED,
    (POSTPAID, VACATE): ENDED_BY_SENSOR,
    (POSTPAID, END): ENDED_BY_DRIVER,
}

# The actions a session's history records, each with what it costs the driver or gives back.
# `payment_failed`: a start's or extension's prepayment failed, and the time it bought was taken back.
ACTION_KINDS = ("start", "extend", "end", "expire", "camera_start", "sensor_end", "payment_failed")

# A prepaid session is bought for at most a day: longer is a pass. Extensions may not take it past this either.
MAX_PREPAID_MINUTES = 24 * 60
# An occupied bay with no session is flagged for enforcement after this long.
ENFORCEMENT_GRACE = timedelta(minutes=5)
# A curb camera may see a plate a little before the bay's sensor reports the car: the arrival it belongs to.
SIGHTING_LEAD = timedelta(minutes=2)
# The smallest step of a timestamp: [t, t + SIGHTING_LEAD] closed at its end is [t, t + SIGHTING_LEAD + _INSTANT).
_INSTANT = timedelta(microseconds=1)
# Sightings older than this are not decided any more (a camera's backlog after a long outage starts nothing).
SIGHTING_WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 100

# Why a sighting did (or did not) start a session; kept per sighting so each is decided once.
STARTED = "started"
NO_AUTHORIZATION = "no_authorization"
SPACE_HAS_SESSION = "space_has_session"
BAY_VACANT = "bay_vacant"
NO_TARIFF = "no_tariff"
# Zone cameras' sightings only: the plate already has a session in the zone; no bay, or several, could hold it.
PLATE_HAS_SESSION = "plate_has_session"
NO_BAY = "no_bay"
AMBIGUOUS_BAY = "ambiguous_bay"
SIGHTING_OUTCOMES = (
    STARTED,
    NO_AUTHORIZATION,
    SPACE_HAS_SESSION,
    BAY_VACANT,
    NO_TARIFF,
    PLATE_HAS_SESSION,
    NO_BAY,
    AMBIGUOUS_BAY,
)
# The outcomes of a zone camera's sighting that name no bay (a bay camera's always names its bay).
OUTCOMES_WITHOUT_BAY = (NO_AUTHORIZATION, NO_BAY, AMBIGUOUS_BAY)

# Why an enforcement flag was resolved.
SESSION_STARTED, VACATED, STATUS_CHANGED = "session_started", "vacated", "status_changed"
FLAG_RESOLUTIONS = (SESSION_STARTED, VACATED, STATUS_CHANGED)


# ------------------------------------------------------------------------------------------- the machine


def is_open(state: str) -> bool:
    return state in OPEN_STATES


def effective_state(state: str, payment_mode: str, paid_until: datetime | None, now: datetime) -> str:
    """The state as of `now`: an open prepaid session past its paid end is expired, written or not."""
    if state in OPEN_STATES and payment_mode == PREPAID and paid_until is not None and paid_until <= now:
        return EXPIRED
    return state


def transition(payment_mode: str, state: str, event: str, paid_until: datetime | None, now: datetime) -> str:
    """The state after `event` at `now`, or a typed error: SESSION_ENDED for a final (or run out) session,
    NOT_PREPAID for extending a postpaid one, INVALID_TRANSITION for anything else the machine does not allow."""
    current = effective_state(state, payment_mode, paid_until, now)
    if current in FINAL_STATES and not (event == EXPIRE and state in OPEN_STATES):
        raise Conflict(f"the session has already ended ({current})", code="SESSION_ENDED", state=current)
    following = TRANSITIONS.get((payment_mode, event))
    if following is None:
        if event == EXTEND:
            raise InvalidInput(
                "only a prepaid session can be extended; this one is charged when it ends",
                code="NOT_PREPAID",
                field="id",
            )
        raise InvalidInput(f"a {payment_mode} session cannot {event}", code="INVALID_TRANSITION")
    return following


# ------------------------------------------------------------------------------------------- durations


def _rates(tariff: Tariff) -> Iterable[Rate]:
    yield tariff.default_rate
    yield from (tier.rate for tier in tariff.default_tiers)
    for band in tariff.bands:
        yield band.rate
        yield from (tier.rate for tier in band.tiers)


def increment_minutes(tariff: Tariff) -> int:
    """The step prepaid durations are bought in: the greatest common divisor of every unit (and first unit) of
    the tariff, so a paid end never falls between two of the tariff's billing steps (15-minute units with a
    30-minute first unit: 15; 20 and 30: 10)."""
    lengths = [length for rate in _rates(tariff) for length in (rate.unit_minutes, rate.first_unit_minutes) if length]
    return math.gcd(*lengths) if lengths else 1


def check_minutes(minutes: int, tariff: Tariff, field: str, *, already: int = 0) -> None:
    """A duration to buy: whole steps of the tariff's increment, at least one, and the session's total bought
    time (`already` + `minutes`) at most MAX_PREPAID_MINUTES. INVALID_DURATION with the bounds otherwise."""
    step = increment_minutes(tariff)
    room = MAX_PREPAID_MINUTES - already
    if minutes < step or minutes % step or minutes > room:
        limit = f"at most {room}" if room >= step else "no more (the session has the longest time one can buy)"
        raise InvalidInput(
            f"{field} must be a multiple of {step} minutes (this zone's tariff charges in steps of {step}), "
            f"at least {step} and {limit}; got {minutes}",
            code="INVALID_DURATION",
            field=field,
            increment_minutes=step,
            min_minutes=step,
            max_minutes=max(room, 0),
        )


# ----------------------------------------------------------------------------------------------- money


@dataclass(frozen=True)
class Purchase:
    """Buying (or extending to) the span [start, paid_until): its whole price, and what this purchase costs."""

    paid_until: datetime
    total_fen: int
    cost_fen: int
    quote: Quote


@dataclass(frozen=True)
class Settlement:
    """How a session ends: when, in which state, its true price, and the money that follows (a refund for a
    prepaid session, a charge for a postpaid one; the other is None)."""

    state: str
    ended_at: datetime
    price_fen: int
    refund_fen: int | None
    charge_fen: int | None
    quote: Quote


def buy(tariff: Tariff, zone: ZoneInfo, vehicle_class: str, start: datetime, minutes: int) -> Purchase:
    """A new prepaid session of `minutes` from `start`."""
    paid_until = start + timedelta(minutes=minutes)
    quote = price(tariff, zone, vehicle_class, start, paid_until)
    return Purchase(paid_until, quote.total_fen, quote.total_fen, quote)


def extend(
    tariff: Tariff,
    zone: ZoneInfo,
    vehicle_class: str,
    start: datetime,
    paid_until: datetime,
    paid_fen: int,
    minutes: int,
) -> Purchase:
    """`minutes` more: the whole new span is priced as one stay, and the extension costs what that adds to what
    was paid (never below zero: a tariff version is sealed, so the longer span never costs less)."""
    new_end = paid_until + timedelta(minutes=minutes)
    quote = price(tariff, zone, vehicle_class, start, new_end)
    return Purchase(new_end, quote.total_fen, max(0, quote.total_fen - paid_fen), quote)


def settle(
    tariff: Tariff,
    zone: ZoneInfo,
    vehicle_class: str,
    payment_mode: str,
    state: str,
    start: datetime,
    end: datetime,
    paid_fen: int,
) -> Settlement:
    """The session priced on its true span [start, end) as it ends in `state`."""
    quote = price(tariff, zone, vehicle_class, start, max(start, end))
    true_price = quote.total_fen
    if payment_mode == PREPAID:
        return Settlement(state, end, true_price, max(0, paid_fen - true_price), None, quote)
    return Settlement(state, end, true_price, None, true_price, quote)


@dataclass(frozen=True)
class Revocation:
    """A running prepaid session after the prepayment of one of its purchases failed: the minutes and money of
    that purchase are taken back. `paid_until` None: no paid minute remains, and the session ends."""

    paid_until: datetime | None
    prepaid_minutes: int
    paid_fen: int


def revoke_purchase(
    started_at: datetime, prepaid_minutes: int, paid_fen: int, minutes: int, charge_fen: int
) -> Revocation:
    """Take a failed purchase (`minutes` bought for `charge_fen`) out of a running prepaid session. Purchases
    follow each other from the start, so what remains paid is the start plus the other purchases' minutes."""
    remaining = max(0, prepaid_minutes - minutes)
    paid = max(0, paid_fen - charge_fen)
    if remaining == 0:
        return Revocation(None, 0, paid)
    return Revocation(started_at + timedelta(minutes=remaining), remaining, paid)


# ---------------------------------------------------------------------------------- automatic sessions


@dataclass(frozen=True)
class Interval:
    """One stretch of a bay's sensed history: `status` as history records it (occupied, vacant, unknown, ...)
    from `start` until `end` (None: still)."""

    status: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class AutoStart:
    """What a sighting of an authorized plate does: start a session at `start`, or record `outcome` (BAY_VACANT)
    and start nothing; both None: too early to tell, look again later."""

    start: datetime | None = None
    outcome: str | None = None


def _holds(start: datetime, end: datetime | None, moment: datetime) -> bool:
    return start <= moment and (end is None or moment < end)


def arrival(seen_at: datetime, history: Sequence[Interval]) -> Interval | None:
    """The occupied stretch a sighting at `seen_at` belongs to: the one holding it, or the first beginning at most
    SIGHTING_LEAD after it (a camera may read a plate as the car pulls in, before the sensor reports it)."""
    for interval in sorted(history, key=lambda item: item.start):
        soon_after = seen_at < interval.start <= seen_at + SIGHTING_LEAD
        if interval.status == "occupied" and (_holds(interval.start, interval.end, seen_at) or soon_after):
            return interval
    return None


def auto_session_start(
    seen_at: datetime, history: Sequence[Interval], covered_until: datetime | None, now: datetime
) -> AutoStart:
    """When the automatic session of a sighting at `seen_at` starts: at the arrival the sensor reported (the
    occupied stretch holding the sighting, or one beginning at most SIGHTING_LEAD after it, since a camera may
    read a plate as the car pulls in, before the sensor reports it); at `seen_at` when the bay has no sensed
    status then (no sensor, or a silent one). Never before `covered_until`, the end of the bay's last session
    (a car that stays on after a prepaid session pays from its end). A sighting in a bay the sensor reports
    vacant, with no arrival within SIGHTING_LEAD, starts nothing (a passing car); until SIGHTING_LEAD has passed
    the arrival may still be reported, so the decision waits."""
    stretch = arrival(seen_at, history)
    if stretch is not None:
        return AutoStart(start=stretch.start if covered_until is None else max(stretch.start, covered_until))
    ordered = sorted(history, key=lambda item: item.start)
    at_sighting = next((item for item in ordered if _holds(item.start, item.end, seen_at)), None)
    if at_sighting is not None and at_sighting.status == "vacant":
        return AutoStart(outcome=BAY_VACANT) if now >= seen_at + SIGHTING_LEAD else AutoStart()
    return AutoStart(start=seen_at if covered_until is None else max(seen_at, covered_until))


@dataclass(frozen=True)
class Held:
    """A session holding a bay over [start, end): its end, else its paid end, else (an open postpaid one) for
    good (`end` None), as the table's held span says."""

    session_id: uuid.UUID
    plate: str
    start: datetime
    end: datetime | None

    def overlaps(self, start: datetime, end: datetime | None) -> bool:
        """Whether it holds the bay at some moment of [start, end) (`end` None: from `start` on)."""
        return (end is None or self.start < end) and (self.end is None or start < self.end)


@dataclass(frozen=True)
class ZoneBay:
    """What the zone rule knows of one bay: its sensed history and the sessions that held it around then."""

    history: Sequence[Interval]
    sessions: Sequence[Held]


@dataclass(frozen=True)
class ZoneAttribution:
    """What a zone camera's sighting does: start a session in bay `space_id` at `start`, or record `outcome`
    (PLATE_HAS_SESSION names the plate's session and its bay in `session_id` and `space_id`; NO_BAY and
    AMBIGUOUS_BAY name no bay); everything None: too early to tell, look again later."""

    space_id: uuid.UUID | None = None
    start: datetime | None = None
    outcome: str | None = None
    session_id: uuid.UUID | None = None


def covered_until(sessions: Iterable[Held], at: datetime) -> datetime | None:
    """The end of the bay's latest session that ended (or whose paid time ran out) at or before `at`."""
    ends = [held.end for held in sessions if held.end is not None and held.end <= at]
    return max(ends) if ends else None


def attribute_zone_sighting(
    plate: str, seen_at: datetime, bays: Mapping[uuid.UUID, ZoneBay], now: datetime
) -> ZoneAttribution:
    """Which bay of its zone a zone camera's sighting of `plate` at `seen_at` is in (the module's notes): `bays`
    are the zone's live bays, sensed or not, with their history and sessions."""
    for space_id in sorted(bays):
        for held in bays[space_id].sessions:
            if held.plate == plate and held.overlaps(seen_at, seen_at + SIGHTING_LEAD + _INSTANT):
                return ZoneAttribution(space_id=space_id, outcome=PLATE_HAS_SESSION, session_id=held.session_id)
    if now < seen_at + SIGHTING_LEAD:
        return ZoneAttribution()
    candidates = []
    for space_id in sorted(bays):
        bay = bays[space_id]
        stretch = arrival(seen_at, bay.history)
        if stretch is None:
            continue
        if any(held.plate != plate and held.overlaps(stretch.start, stretch.end) for held in bay.sessions):
            continue  # that car is someone else's, paid for
        own_car = any(held.plate == plate and held.overlaps(stretch.start, stretch.end) for held in bay.sessions)
        if stretch.start < seen_at - SIGHTING_LEAD and not own_car:
            continue  # a car parked earlier is not a passing plate's to pay for
        candidates.append(space_id)
    if not candidates:
        return ZoneAttribution(outcome=NO_BAY)
    if len(candidates) > 1:
        return ZoneAttribution(outcome=AMBIGUOUS_BAY)
    [space_id] = candidates
    bay = bays[space_id]
    decided = auto_session_start(seen_at, bay.history, covered_until(bay.sessions, seen_at), now)
    return ZoneAttribution(space_id=space_id, start=decided.start, outcome=decided.outcome)


def sensor_end(session_start: datetime, history: list[Interval]) -> datetime | None:
    """When the bay's sensor ended a postpaid session: the first vacant stretch starting after the session did.
    An unknown stretch (a silent sensor) ends nothing."""
    vacancies = [
        interval.start for interval in history if interval.status == "vacant" and interval.start > session_start
    ]
    return min(vacancies) if vacancies else None


def unpaid_since(occupied_since: datetime, covered_until: datetime | None) -> datetime:
    """Since when an occupied bay has had no session: its arrival, or the end of the last session after it."""
    return occupied_since if covered_until is None else max(occupied_since, covered_until)


def needs_enforcement(occupied_since: datetime, covered_until: datetime | None, now: datetime) -> bool:
    """An occupied bay with no session for longer than ENFORCEMENT_GRACE."""
    return now - unpaid_since(occupied_since, covered_until) >= ENFORCEMENT_GRACE


def flag_resolution(status: str, confirmed: bool, retired: bool, has_session: bool) -> str | None:
    """Why an open enforcement flag is over, or None while it stands: a session now holds the bay, the sensor
    confirms it vacant, or the bay stopped being a sensed one (retired, reserved, out of service). A bay whose
    sensor went silent keeps its flag: nobody has seen the car leave."""
    if has_session:
        return SESSION_STARTED
    if retired or status in ("reserved", "out_of_service"):
        return STATUS_CHANGED
    if status == "vacant" and confirmed:
        return VACATED
    return None


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"idempotencyKey must be 1 to {MAX_KEY_LENGTH} printable characters",
            code="INVALID_IDEMPOTENCY_KEY",
            field="idempotencyKey",
        )
    return key
