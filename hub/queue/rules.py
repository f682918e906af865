"""Pure rules of the exception queue: who may act on an exception, what each action requires, what a live
subscriber watches, and what a barrier held too long is. No I/O.

Claims. An exception is open, claimed by one agent, or resolved. An agent (operator staff or admin of the tenant)
claims an open one; claiming one's own claim again changes nothing. Only the agent holding the claim may release
it or resolve it. An operator admin may take over another agent's claim explicitly (`claimException(takeOver:
true)`); the audit trail records whose claim it was. Nobody acts on a resolved exception.

Resolving. Correcting the plate decides the passage again as the lane would (source `agent`): an `open` decision
settles the exception, and so does a decision that raised a new exception (the new one carries the problem on,
claimed by the same agent); any other hold (payment due, lot full) leaves it claimed, with the re-decision in its
detail. Opening the gate remotely, closing the session at a manual amount and waiving each settle it, and each
needs a reason.

Opening the gate. A remote open (openGateRemotely, `openGate` on closing or waiving, and a re-decision that opens)
sends the lane's gate controller an `open` command through the gate command channel (hub.lanes.gates), written in
the resolution's transaction: the command exists exactly when the resolution does. The resolution keeps a
reference to it (`gate_command`: its id, lane, who asked, when, until when, why) for the audit trail; what became of
it (delivered, acknowledged, failed, expired) is the command's own status, which the queue item shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from hub.errors import Conflict, Forbidden, InvalidInput
from hub.live.events import plain_uuid
from hub.principal import OPERATOR_ROLES, Principal
from hub.queue.events import QueueEvent

REASON_MAX_LENGTH = 500
QUEUE_STATES = ("open", "claimed")
# A barrier that answered hold this long ago, with no passage at its lane since, gets a `barrier_held` exception.
DEFAULT_BARRIER_HELD_AFTER = timedelta(seconds=120)
# Holds older than this are history, not a barrier someone is waiting at (a sweep after downtime stays quiet).
BARRIER_HELD_LOOKBACK = timedelta(hours=6)

# The audit trail's actions (exception_actions.action); `raised` is written by hub.lanes.
CLAIMED = "claimed"
TAKEN_OVER = "taken_over"
RELEASED = "released"
PLATE_CORRECTED = "plate_corrected"
GATE_OPENED = "gate_opened"
SESSION_CLOSED = "session_closed"
WAIVED = "waived"

# Why a lot session closed when an agent closed it (lot_sessions.close_reason).
CLOSED_BY_AGENT = "agent_amount"
WAIVED_BY_AGENT = "agent_waived"


class AlreadyClaimed(Conflict):
    code = "ALREADY_CLAIMED"


class NotClaimed(Conflict):
    code = "NOT_CLAIMED"


class AlreadyResolved(Conflict):
    code = "ALREADY_RESOLVED"


@dataclass(frozen=True)
class Agent:
    """A person working the queue: who (the token's subject, what the audit trail names) and for which operator."""

    tenant_id: uuid.UUID
    subject: str
    is_admin: bool


def agent_of(principal: Principal) -> Agent:
    if principal.kind != "operator" or principal.tenant_id is None or principal.role not in OPERATOR_ROLES:
        raise Forbidden("the exception queue is for the operator's staff", required_role="operator_staff")
    if not principal.subject:
        raise Forbidden("an agent's token must name who they are (its subject)", required_role="operator_staff")
    return Agent(principal.tenant_id, principal.subject, principal.is_operator_admin)


def check_reason(reason: str | None, *, required: bool = True) -> str | None:
    """The reason, trimmed; REASON_REQUIRED when it is required and missing or blank."""
    text = (reason or "").strip()
    if not text:
        if required:
            raise InvalidInput("say why: a reason is required for this action", code="REASON_REQUIRED", field="reason")
        return None
    if len(text) > REASON_MAX_LENGTH:
        raise InvalidInput(f"a reason is at most {REASON_MAX_LENGTH} characters", field="reason")
    return text


def check_amount(amount_fen: int) -> int:
    if amount_fen < 0:
        raise InvalidInput(f"amountFen must be 0 or more, got {amount_fen}", code="INVALID_AMOUNT", field="amountFen")
    return amount_fen


def check_states(states: Collection[str] | None) -> tuple[str, ...]:
    """The queue's states to list (open and claimed unless given); resolved ones are the history's."""
    wanted = tuple(dict.fromkeys(states or QUEUE_STATES))
    if not wanted or any(state not in QUEUE_STATES for state in wanted):
        raise InvalidInput(
            "the queue lists OPEN and CLAIMED exceptions; resolved ones are in exceptionHistory", field="states"
        )
    return wanted


ClaimStep = Literal["claim", "keep", "take_over"]


def claim_step(state: str, claimed_by: str | None, agent: Agent, *, take_over: bool) -> ClaimStep:
    """What claiming does: claim an open exception, keep one's own claim, or (an admin, asked to) take over."""
    if state == "resolved":
        raise AlreadyResolved("this exception is resolved already")
    if state == "claimed":
        if claimed_by == agent.subject:
            return "keep"
        if not take_over:
            raise AlreadyClaimed(f"{claimed_by} is handling this exception", claimedBy=claimed_by)
        if not agent.is_admin:
            raise Forbidden(
                "only an operator admin may take over another agent's claim", required_role="operator_admin"
            )
        return "take_over"
    return "claim"


def check_holder(state: str, claimed_by: str | None, agent: Agent) -> None:
    """Only the agent holding the claim acts on an exception."""
    if state == "resolved":
        raise AlreadyResolved("this exception is resolved already")
    if state != "claimed":
        raise NotClaimed("claim this exception before acting on it")
    if claimed_by != agent.subject:
        raise AlreadyClaimed(f"{claimed_by} is handling this exception", claimedBy=claimed_by)


def session_of(exception: Mapping[str, Any]) -> uuid.UUID | None:
    """The lot session an exception concerns: its own (a re-decision's, once the plate was corrected), else the one
    its doubtful read would have matched (a low-confidence read of a plate inside). As repository.ITEM_SQL joins."""
    if exception["session_id"] is not None:
        return plain_uuid(exception["session_id"])
    found = (exception["detail"] or {}).get("candidate_session_id")
    return None if found is None else uuid.UUID(str(found))


def redecision_settles(decision: str, raised_exception: bool) -> bool:
    """Whether a re-decision with the corrected plate settles the exception (see the module's notes)."""
    return decision == "open" or raised_exception


def gate_command(
    command_id: uuid.UUID,
    lane_id: uuid.UUID,
    agent: Agent,
    requested_at: datetime,
    expires_at: datetime,
    reason: str | None,
) -> dict[str, Any]:
    """The resolution's reference to the open command it sent (the command's status lives with the command)."""
    return {
        "id": str(command_id),
        "command": "open",
        "lane_id": str(lane_id),
        "requested_by": agent.subject,
        "requested_at": requested_at.isoformat(),
        "expires_at": expires_at.isoformat(),
        "reason": reason,
    }


@dataclass(frozen=True, slots=True)
class QueueWatch:
    """What one live subscriber watches: its operator's queue, or some of its facilities."""

    tenant_id: uuid.UUID
    facility_ids: frozenset[uuid.UUID] | None = None

    def matches(self, event: QueueEvent) -> bool:
        if event.tenant_id != self.tenant_id:
            return False
        return self.facility_ids is None or event.item.facility_id in self.facility_ids


def held_for_seconds(decided_at: datetime, now: datetime) -> int:
    return max(0, int((now - decided_at).total_seconds()))
