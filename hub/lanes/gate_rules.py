"""Pure rules of the gate command channel: how long a command lives, what status it reads, how long a gate may
wait for one, and what acknowledging it again means. No I/O.

Life of a command. An agent's remote open (hub.queue) writes a command for the exception's lane: `pending`. The
lane's gate controller fetches it (`GET /lanes/{id}/commands`): `delivered`. It answers what the barrier did
(`POST .../commands/{id}/ack`): `acknowledged` (outcome `opened`) or `failed`. A command nobody acknowledged by
`expires_at` reads `expired`, and no fetch returns it any more: a barrier must not open minutes later for whoever
stands there then. Until it expires, a delivered command is delivered again on every fetch, because the gate may
have lost the answer; the gate tells repeats apart by the command's id.

The first acknowledgement is the one recorded: the same outcome again changes nothing (the gate may have lost
that answer too); a different outcome afterwards is a conflict. An acknowledgement after expiry is still recorded:
it says what the barrier did, and that is worth knowing whenever it arrives.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from hub.errors import Conflict, InvalidInput
from hub.lanes.models import GATE_OUTCOMES

OPEN = "open"
OPENED, FAILED = GATE_OUTCOMES
# A command's life when the requester says nothing else, and the longest any command may live (the gate's fetch reads
# only commands requested within MAX_TTL, so its index range stays a few rows whatever the lane's history).
COMMAND_TTL = timedelta(seconds=60)
MAX_TTL = timedelta(minutes=10)
# How long a gate's fetch may wait for a command to arrive (below common 30-second proxy and load-balancer limits).
MAX_WAIT_SECONDS = 25.0

PENDING = "pending"
DELIVERED = "delivered"
ACKNOWLEDGED = "acknowledged"
EXPIRED = "expired"
STATUSES = (PENDING, DELIVERED, ACKNOWLEDGED, FAILED, EXPIRED)

Status = Literal["pending", "delivered", "acknowledged", "failed", "expired"]
AckStep = Literal["record", "same"]


class AlreadyAcknowledged(Conflict):
    code = "ALREADY_ACKNOWLEDGED"


def expiry(requested_at: datetime, ttl: timedelta = COMMAND_TTL) -> datetime:
    """When a command requested at `requested_at` stops being delivered."""
    if requested_at.tzinfo is None:
        raise ValueError("requested_at must be timezone-aware")
    if not timedelta(0) < ttl <= MAX_TTL:
        raise InvalidInput(f"a gate command lives more than 0 and at most {MAX_TTL.total_seconds():.0f} seconds")
    return requested_at + ttl


def status_of(
    *,
    expires_at: datetime,
    delivered_at: datetime | None,
    acknowledged_at: datetime | None,
    outcome: str | None,
    now: datetime,
) -> Status:
    """The status of a command at `now` (see the module's notes): an acknowledgement wins, whenever it came."""
    if acknowledged_at is not None:
        return "failed" if outcome == FAILED else "acknowledged"
    if expires_at <= now:
        return "expired"
    return "delivered" if delivered_at is not None else "pending"


def check_outcome(outcome: object) -> str:
    if outcome not in GATE_OUTCOMES:
        raise InvalidInput(
            f"outcome must be one of {', '.join(GATE_OUTCOMES)}, got {outcome!r}",
            code="INVALID_OUTCOME",
            field="outcome",
        )
    return str(outcome)


def check_wait(seconds: float) -> float:
    """How long a fetch waits for a command: 0 (answer at once) to MAX_WAIT_SECONDS."""
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise InvalidInput(f"wait is 0 to {MAX_WAIT_SECONDS:.0f} seconds, got {seconds}", field="wait")
    return seconds


def ack_step(recorded: str | None, outcome: str) -> AckStep:
    """What an acknowledgement does: record the first one, change nothing for the same again, refuse another."""
    if recorded is None:
        return "record"
    if recorded == outcome:
        return "same"
    raise AlreadyAcknowledged(
        f"this command was acknowledged already, with outcome {recorded}", recorded_outcome=recorded
    )
