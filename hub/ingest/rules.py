"""Pure rules for applying inbound events: what an event does to a space and a device, with no I/O."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from connectors.events import EventKind

OCCUPIED, VACANT, RESERVED, OUT_OF_SERVICE, UNKNOWN = "occupied", "vacant", "reserved", "out_of_service", "unknown"
# Kinds whose `occupied` (when given) speaks for the device's space.
OCCUPANCY_BEARING = frozenset({EventKind.OCCUPANCY, EventKind.HEARTBEAT, EventKind.STARTUP})
# Kinds that prove the device is alive (everything but the sender's own "it went silent").
LIFE_SIGNS = frozenset(kind for kind in EventKind if kind not in (EventKind.COMMS_LOST, EventKind.DECOMMISSIONED))


class Outcome(enum.StrEnum):
    CHANGED = "changed"  # the space's status changed
    CONFIRMED = "confirmed"  # the space's status was confirmed as it was
    STALE = "stale"  # older than the space's state: recorded, not applied
    RECORDED = "recorded"  # health, sightings, comms: recorded without a status of its own


@dataclass(frozen=True, slots=True)
class DeviceState:
    id: uuid.UUID
    kind: str
    facility_id: uuid.UUID
    space_id: uuid.UUID | None
    lane_id: uuid.UUID | None
    offline_since: datetime | None
    last_message_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SpaceState:
    """What the stale check and the next status need. `since` is when the current status began or was
    last confirmed, whichever is later; `confirmed_at` None means no one vouches for the status now."""

    status: str
    confirmed_at: datetime | None
    since: datetime | None


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    space: SpaceState | None = None  # the space's state after the event, when it has one


def sensed_status(current: str, occupied: bool) -> str:
    """A sensor reports only occupied or free: it never takes a space out of service or back into service,
    and a reserved space stays reserved until a vehicle actually arrives."""
    if current == OUT_OF_SERVICE:
        return current
    if current == RESERVED and not occupied:
        return current
    return OCCUPIED if occupied else VACANT


def decide_space(state: SpaceState, occupied: bool, occurred_at: datetime) -> Decision:
    if state.since is not None and occurred_at < state.since:
        return Decision(Outcome.STALE, space=state)
    status = sensed_status(state.status, occupied)
    if status == state.status:
        return Decision(Outcome.CONFIRMED, space=SpaceState(status, occurred_at, occurred_at))
    return Decision(Outcome.CHANGED, space=SpaceState(status, occurred_at, occurred_at))


def withdraw_confirmation(state: SpaceState, at: datetime) -> SpaceState:
    """The space's sensor went silent: nobody vouches for its status any more, so it reads unknown."""
    return SpaceState(state.status, None, max(at, state.since) if state.since else at)


def dead_reason(
    kind: EventKind, device: DeviceState | None, occupied: bool | None, external_id: str | None
) -> str | None:
    """Why an event cannot be applied at all, or None."""
    if external_id is None:
        return "the event names no device"
    if device is None:
        return f"unknown device {external_id!r}: register it under this operator first"
    if kind in OCCUPANCY_BEARING and occupied is not None and device.space_id is None:
        return f"device {external_id!r} reports occupancy but is not bound to a space"
    return None


def loss_applies(last_message_at: datetime | None, at: datetime) -> bool:
    """A comms loss reported at `at` counts only if the device has not spoken since (a late report of an old
    outage must not take a talking device offline)."""
    return last_message_at is None or at >= last_message_at


def offline_after_life_sign(offline_since: datetime | None, at: datetime) -> datetime | None:
    """A sign of life ends an outage only if it came after the outage began; an older message does not."""
    return None if offline_since is not None and at >= offline_since else offline_since
