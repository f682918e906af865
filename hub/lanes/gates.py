"""The gate command channel's use cases: request a command for a lane's gate (the exception queue's remote opens),
deliver a lane's commands to its gate controller, waiting for one to arrive when asked (a long poll), and record
the gate's acknowledgement. The rules (life, status, repeats) are in hub.lanes.gate_rules.

Requesting writes in the caller's transaction (the agent's resolution: the command exists exactly when the
resolution does) and nudges the lane's waiting fetches once that transaction commits (hub.lanes.gate_broker).
Delivering and acknowledging act for the lane's gate, each in a short transaction of its own under the operator's
connector scope; a waiting fetch holds no database connection while it waits.

Waiting. A fetch subscribes to its lane's nudges before it first reads, so a command committed between the read
and the wait still wakes it. It reads again when nudged, and also every RECHECK_SECONDS (every
UNSUBSCRIBED_POLL_SECONDS while the broker has no Redis subscription): a nudge lost with Redis delays a command,
never loses it.

A failed open (`outcome: failed`) puts a `gate_fault` exception in the facility's queue in the acknowledgement's
transaction. An acknowledgement of a command some exception's resolution sent is noted on the session
(GATE_ANSWERS_KEY) for the exception queue (hub.queue), which tells agents' live queues once it commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import Database, Scope
from hub.errors import NotFound
from hub.lanes import gate_repository as repository
from hub.lanes import gate_rules as rules
from hub.lanes.exceptions import raise_exception
from hub.lanes.gate_broker import GATE_NUDGES, GateCommandBroker, GateNudge
from hub.live import Subscriber, after_commit
from hub.live.events import plain_uuid

# A waiting fetch reads again this often even without a nudge (one indexed statement per waiting gate), and this
# often while the broker is not subscribed to Redis (nudges cannot arrive then).
RECHECK_SECONDS = 10.0
UNSUBSCRIBED_POLL_SECONDS = 1.0
# The fault a failed remote open raises (the gate_fault exception's reason and `detail.fault`).
REMOTE_OPEN_FAILED = "remote_open_failed"
# Acknowledged commands of exceptions, kept on the session for hub.queue: [(tenant id, exception id)].
GATE_ANSWERS_KEY = "parkhub.lanes.gate_answers"


def now_utc() -> datetime:
    return datetime.now(UTC)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else plain_uuid(value)


@dataclass(frozen=True, slots=True)
class GateCommand:
    """One command as stored; `status(now)` is what it reads at that instant (hub.lanes.gate_rules)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    lane_id: uuid.UUID
    command: str
    reason: str | None
    requested_by: str
    exception_id: uuid.UUID | None
    requested_at: datetime
    expires_at: datetime
    delivered_at: datetime | None
    deliveries: int
    acknowledged_at: datetime | None
    acknowledged_by: uuid.UUID | None
    outcome: str | None
    outcome_detail: Any
    fault_exception_id: uuid.UUID | None

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> GateCommand:
        return cls(
            id=plain_uuid(row["id"]),
            tenant_id=plain_uuid(row["tenant_id"]),
            lane_id=plain_uuid(row["lane_id"]),
            command=row["command"],
            reason=row["reason"],
            requested_by=row["requested_by"],
            exception_id=_uuid(row["exception_id"]),
            requested_at=row["requested_at"],
            expires_at=row["expires_at"],
            delivered_at=row["delivered_at"],
            deliveries=row["deliveries"],
            acknowledged_at=row["acknowledged_at"],
            acknowledged_by=_uuid(row["acknowledged_by"]),
            outcome=row["outcome"],
            outcome_detail=row["outcome_detail"],
            fault_exception_id=_uuid(row["fault_exception_id"]),
        )

    def status(self, now: datetime) -> rules.Status:
        return rules.status_of(
            expires_at=self.expires_at,
            delivered_at=self.delivered_at,
            acknowledged_at=self.acknowledged_at,
            outcome=self.outcome,
            now=now,
        )

    def for_gate(self) -> dict[str, Any]:
        """What the gate is told (`GET /lanes/{id}/commands`)."""
        return {
            "id": str(self.id),
            "command": self.command,
            "reason": self.reason,
            "requested_at": self.requested_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


# ---------------------------------------------------------------------------------------------- requesting


async def request_open(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    lane_id: uuid.UUID,
    requested_by: str,
    reason: str | None,
    exception_id: uuid.UUID | None = None,
    at: datetime | None = None,
    ttl: timedelta = rules.COMMAND_TTL,
) -> GateCommand:
    """A command to open the lane's barrier, written in the caller's transaction (under a scope that may write the
    tenant's rows); the lane's waiting fetches are nudged once it commits."""
    requested_at = at or now_utc()
    row = await repository.insert_command(
        session,
        {
            "tenant_id": tenant_id,
            "id": uuid.uuid4(),
            "lane_id": lane_id,
            "command": rules.OPEN,
            "reason": reason,
            "requested_by": requested_by,
            "exception_id": exception_id,
            "requested_at": requested_at,
            "expires_at": rules.expiry(requested_at, ttl),
        },
    )
    command = GateCommand.of_row(row)
    after_commit.stage(session, GATE_NUDGES, [GateNudge(tenant_id, lane_id, command.id)])
    return command


async def commands_of_exceptions(
    session: AsyncSession, tenant_id: uuid.UUID, exception_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, GateCommand]:
    """The command each exception's resolution sent, by exception id (absent when none)."""
    commands = [GateCommand.of_row(row) for row in await repository.of_exceptions(session, tenant_id, exception_ids)]
    return {command.exception_id: command for command in commands if command.exception_id is not None}


# ---------------------------------------------------------------------------------------------- delivering


async def deliver(db: Database, tenant_id: uuid.UUID, lane_id: uuid.UUID) -> list[GateCommand]:
    """The lane's live commands (pending, or delivered but not acknowledged; not expired), oldest first, marked
    delivered, committed before this returns."""
    now = now_utc()
    async with db.transaction(Scope("connector", tenant_id=tenant_id)) as session:
        rows = await repository.deliver(session, tenant_id, lane_id, now=now, since=now - rules.MAX_TTL)
    return sorted((GateCommand.of_row(row) for row in rows), key=lambda command: (command.requested_at, command.id))


async def _nudged(nudges: Subscriber | None, seconds: float) -> Subscriber | None:
    """Wait for a nudge, at most `seconds`; the subscriber to go on with (None once its broker stopped)."""
    if nudges is None:
        await asyncio.sleep(seconds)
        return None
    try:
        async with asyncio.timeout(seconds):
            await anext(nudges)
    except TimeoutError:
        pass
    except StopAsyncIteration:  # the broker stopped (shutdown): poll for the rest of the wait
        return None
    return nudges


async def await_commands(
    db: Database,
    broker: GateCommandBroker | None,
    tenant_id: uuid.UUID,
    lane_id: uuid.UUID,
    wait_seconds: float,
    *,
    gone: Callable[[], Awaitable[bool]] | None = None,
) -> list[GateCommand]:
    """`deliver`, waiting up to `wait_seconds` for a command when there is none yet (see the module's notes): the
    commands as soon as there are some, else an empty list at the end of the wait. `gone` tells whether the gate
    hung up meanwhile; nothing is delivered to a gate that is gone. Without a broker it polls the database."""
    wait_seconds = rules.check_wait(wait_seconds)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    waiting: AbstractAsyncContextManager[Subscriber | None] = (
        broker.subscribe(owner=lane_id) if broker is not None and wait_seconds > 0 else nullcontext(None)
    )
    async with waiting as nudges:
        subscriber = nudges
        while True:
            commands = await deliver(db, tenant_id, lane_id)
            remaining = deadline - loop.time()
            if commands or remaining <= 0:
                return commands
            subscribed = subscriber is not None and broker is not None and broker.subscribed
            step = RECHECK_SECONDS if subscribed else UNSUBSCRIBED_POLL_SECONDS
            subscriber = await _nudged(subscriber, min(remaining, step))
            if gone is not None and await gone():
                return []


# ------------------------------------------------------------------------------------------- acknowledging


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """The command after the gate's answer; `repeated`: the same answer came before, and nothing changed."""

    command: GateCommand
    repeated: bool


async def acknowledge(
    db: Database,
    tenant_id: uuid.UUID,
    lane_id: uuid.UUID,
    command_id: uuid.UUID,
    outcome: str,
    detail: Any = None,
    *,
    connector_id: uuid.UUID | None = None,
) -> Acknowledgement:
    """Record what the barrier did (see hub.lanes.gate_rules for repeats and late answers), committed before this
    returns. NotFound UNKNOWN_COMMAND for a command that is not this lane's; AlreadyAcknowledged for an outcome
    other than the recorded one; a failed open raises a `gate_fault` exception."""
    outcome = rules.check_outcome(outcome)
    async with db.transaction(Scope("connector", tenant_id=tenant_id)) as session:
        row = await repository.lock_command(session, tenant_id, lane_id, command_id)
        if row is None:
            raise NotFound("no command with this id was sent to this lane", code="UNKNOWN_COMMAND", field="commandId")
        if rules.ack_step(row["outcome"], outcome) == "same":
            return Acknowledgement(GateCommand.of_row(row), repeated=True)
        at = now_utc()
        fault_exception_id = None
        if outcome == rules.FAILED:
            fault_exception_id = await raise_exception(
                session,
                tenant_id=tenant_id,
                kind="gate_fault",
                facility_id=row["facility_id"],
                lane_id=lane_id,
                detail={
                    "fault": REMOTE_OPEN_FAILED,
                    "detail": detail,
                    "at": at.isoformat(),
                    "command_id": str(command_id),
                    "requested_by": row["requested_by"],
                    "exception_id": None if row["exception_id"] is None else str(row["exception_id"]),
                    "connector_id": None if connector_id is None else str(connector_id),
                },
                reason=REMOTE_OPEN_FAILED,
            )
        acknowledged = GateCommand.of_row(
            await repository.acknowledge(
                session,
                tenant_id,
                command_id,
                at=at,
                outcome=outcome,
                detail=None if detail is None else _json(detail),
                connector_id=connector_id,
                fault_exception_id=fault_exception_id,
            )
        )
        if acknowledged.exception_id is not None:
            session.info.setdefault(GATE_ANSWERS_KEY, []).append((tenant_id, acknowledged.exception_id))
        return Acknowledgement(acknowledged, repeated=False)
