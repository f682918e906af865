"""Use cases of remote agents working the exception queue: reading the queue and its history, claiming and
releasing, and resolving (correct the plate and decide again, open the gate remotely, close the session at a
manual amount, waive); the barrier-held sweep; what a live subscriber may watch; and telling live subscribers.

Each action runs in one transaction with the exception locked, changes its state and adds one line to its audit
trail (`exception_actions`: who = the token's subject, when, what, why). Functions take the caller's session and
never commit, except `correct_plate_and_redecide`, which decides at the lane in a transaction of its own under the
operator's connector scope, as the lane's gate would (the lane reads what only lanes may read, such as auto-pay
authorizations by plate).

Opening the gate remotely sends the lane's gate an open command (hub.lanes.gates) in the resolution's transaction;
the queue item shows the command and what became of it (`gate_commands`).

Live. Every change is published on the tenant's `tenant:<id>:exceptions` channel after its transaction commits,
with the whole queue item (see hub.queue.events). Exceptions raised by hub.lanes (lane decisions, gate faults,
this module's sweep) are noted on the session by `hub.lanes.exceptions.raise_exception`; just before that
transaction commits their items are read (one statement, in a savepoint so it can never fail the decision) and
published once it has committed. A gate's answer to a remote open is noted the same way (hub.lanes.gates) and
publishes the exception's item again (`updated`, by `gate`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import event as orm_events
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from hub import jobs
from hub.db import Database, Scope, driver_of
from hub.errors import Conflict, InvalidInput, NotFound
from hub.lanes import exceptions as lane_exceptions
from hub.lanes import gates
from hub.lanes import rules as lane_rules
from hub.lanes import service as lanes
from hub.live import after_commit
from hub.live.events import plain_uuid
from hub.merchants import service as merchants
from hub.notify import Notification, notify
from hub.principal import Principal
from hub.queue import repository, rules
from hub.queue.broker import publish_queue_events
from hub.queue.events import QueueEvent, QueueItem
from hub.queue.rules import Agent, QueueWatch
from hub.supply import service as supply

logger = logging.getLogger("parkhub.queue")

MAX_FACILITIES = 200
# The camera name of an agent's corrected read.
AGENT_CAMERA = "agent"
# Who changed an item when a lane's gate answered a remote open (the live event's actor).
GATE_ACTOR = "gate"

# The job that tells the operator's webhooks (`exception.raised`) of exceptions a transaction raised.
NOTIFY_RAISED_JOB = "notify_exceptions_raised"

QUEUE_EVENTS = "parkhub.queue.events"
after_commit.register(QUEUE_EVENTS, publish_queue_events)


def now_utc() -> datetime:
    return datetime.now(UTC)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# ------------------------------------------------------------------------------------------------- live


def _stage(session: AsyncSession | Session, events: Sequence[QueueEvent]) -> None:
    after_commit.stage(session, QUEUE_EVENTS, events)


@orm_events.listens_for(Session, "before_commit")
def _read_raised_exceptions(session: Session) -> None:
    raised = session.info.pop(lane_exceptions.RAISED_EXCEPTIONS_KEY, None)
    if not raised:
        return
    try:
        with session.begin_nested():  # a failure here is the live view's loss, never the lane decision's
            rows = repository.items_in_commit(session, raised)
    except Exception:
        logger.exception(
            "queue: could not read %d raised exception(s) to publish; agents see them on refresh", len(raised)
        )
        return
    at = now_utc()
    items = [QueueItem.of_row(row) for row in rows]
    _stage(session, [QueueEvent("raised", lane_exceptions.SYSTEM_ACTOR, at, item) for item in items])
    by_tenant: dict[uuid.UUID, list[str]] = {}
    for item in items:
        by_tenant.setdefault(item.tenant_id, []).append(str(item.id))
    for tenant_id, exception_ids in by_tenant.items():
        try:
            # Sent after commit like every job (enqueue only keeps it on the session's info, which this one shares).
            jobs.enqueue(session, NOTIFY_RAISED_JOB, str(tenant_id), exception_ids)  # type: ignore[arg-type]
        except (jobs.UnknownJob, jobs.JobPoolNotSet) as error:
            logger.warning("queue: operators' webhooks not told of %d exception(s): %s", len(exception_ids), error)


@orm_events.listens_for(Session, "before_commit")
def _read_gate_answers(session: Session) -> None:
    """A gate's answer to a remote open changes what the exception's item shows (its gate command): agents' live
    queues get the item again, as `updated` by `gate`."""
    answered = session.info.pop(gates.GATE_ANSWERS_KEY, None)
    if not answered:
        return
    try:
        with session.begin_nested():  # a failure here is the live view's loss, never the gate's answer's
            rows = repository.items_in_commit(session, answered)
    except Exception:
        logger.exception("queue: could not read %d answered exception(s) to publish", len(answered))
        return
    at = now_utc()
    _stage(session, [QueueEvent("updated", GATE_ACTOR, at, QueueItem.of_row(row)) for row in rows])


@orm_events.listens_for(Session, "after_rollback")
def _discard_after_rollback(session: Session) -> None:
    session.info.pop(lane_exceptions.RAISED_EXCEPTIONS_KEY, None)
    session.info.pop(gates.GATE_ANSWERS_KEY, None)


async def queue_watch(
    session: AsyncSession, principal: Principal, facility_ids: Sequence[uuid.UUID] | None
) -> QueueWatch:
    """What an agent may watch live: their operator's whole queue, or some of its facilities (each must be the
    operator's: NotFound otherwise)."""
    agent = rules.agent_of(principal)
    wanted = _facility_filter(facility_ids)
    if wanted is None:
        return QueueWatch(agent.tenant_id)
    rows = await supply.facilities_by_ids(session, principal, wanted)
    found = {row["id"] for row in rows if row["tenant_id"] == agent.tenant_id}
    missing = [str(facility_id) for facility_id in wanted if facility_id not in found]
    if missing:
        raise NotFound("no facility with this id belongs to your operator", field="facilityIds", ids=missing)
    return QueueWatch(agent.tenant_id, frozenset(wanted))


# ------------------------------------------------------------------------------------------------ reads


def _facility_filter(facility_ids: Sequence[uuid.UUID] | None) -> list[uuid.UUID] | None:
    if facility_ids is None:
        return None
    wanted = list(dict.fromkeys(facility_ids))
    if not wanted:
        raise InvalidInput("give at least one facility id, or leave facilityIds out for all", field="facilityIds")
    if len(wanted) > MAX_FACILITIES:
        raise InvalidInput(f"at most {MAX_FACILITIES} facilities at once", field="facilityIds")
    return wanted


async def exception_queue(
    session: AsyncSession,
    principal: Principal,
    *,
    facility_ids: Sequence[uuid.UUID] | None,
    states: Sequence[str] | None,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[QueueItem]:
    """The operator's waiting exceptions (open and claimed unless `states` says), longest waiting first; one item
    more than `first` when a next page exists."""
    agent = rules.agent_of(principal)
    rows = await repository.queue_page(
        session,
        agent.tenant_id,
        states=rules.check_states(states),
        facility_ids=_facility_filter(facility_ids),
        first=first,
        after=after,
    )
    return [QueueItem.of_row(row) for row in rows]


async def exception_history(
    session: AsyncSession,
    principal: Principal,
    *,
    facility_ids: Sequence[uuid.UUID] | None,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[QueueItem]:
    """The operator's resolved exceptions, newest first; one item more than `first` when a next page exists."""
    agent = rules.agent_of(principal)
    rows = await repository.history_page(
        session, agent.tenant_id, facility_ids=_facility_filter(facility_ids), first=first, after=after
    )
    return [QueueItem.of_row(row) for row in rows]


async def queue_item(session: AsyncSession, principal: Principal, exception_id: uuid.UUID) -> QueueItem | None:
    """One exception as the queue shows it, whatever its state; None when it is not the operator's."""
    agent = rules.agent_of(principal)
    rows = await repository.items(session, [(agent.tenant_id, exception_id)])
    return QueueItem.of_row(rows[0]) if rows else None


@dataclass(frozen=True)
class AuditLine:
    exception_id: uuid.UUID
    at: datetime
    actor: str  # the token subject of the agent, or "system"
    action: str  # raised, claimed, taken_over, released, plate_corrected, gate_opened, session_closed, waived
    reason: str | None
    detail: dict[str, Any]


async def audit_trails(
    session: AsyncSession, principal: Principal, exception_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AuditLine]]:
    """Who did what to each exception, when and why, oldest first (nothing for one that is not the operator's)."""
    agent = rules.agent_of(principal)
    trails: dict[uuid.UUID, list[AuditLine]] = {exception_id: [] for exception_id in exception_ids}
    for row in await repository.actions(session, agent.tenant_id, list(trails)):
        exception_id = plain_uuid(row["exception_id"])
        line = AuditLine(exception_id, row["at"], row["actor"], row["action"], row["reason"], dict(row["detail"]))
        trails[line.exception_id].append(line)
    return trails


async def gate_commands(
    session: AsyncSession, principal: Principal, exception_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, gates.GateCommand]:
    """The gate command each exception's resolution sent, by exception id (absent when none, or when the exception
    is not the operator's)."""
    agent = rules.agent_of(principal)
    return await gates.commands_of_exceptions(session, agent.tenant_id, list(dict.fromkeys(exception_ids)))


# ---------------------------------------------------------------------------------------------- actions


async def _locked(session: AsyncSession, agent: Agent, exception_id: uuid.UUID) -> Any:
    row = await repository.lock_exception(session, agent.tenant_id, exception_id)
    if row is None:
        raise NotFound("no exception with this id belongs to your operator", field="id")
    return row


async def _changed(session: AsyncSession, agent: Agent, exception_id: uuid.UUID, action: str) -> QueueItem:
    """The exception's item after a change, staged to be published as `action` once the transaction commits."""
    [row] = await repository.items(session, [(agent.tenant_id, exception_id)])
    item = QueueItem.of_row(row)
    _stage(session, [QueueEvent(action, agent.subject, now_utc(), item)])
    return item


async def _audit(
    session: AsyncSession,
    agent: Agent,
    exception_id: uuid.UUID,
    action: str,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await lane_exceptions.record_exception_action(
        session,
        tenant_id=agent.tenant_id,
        exception_id=exception_id,
        actor=agent.subject,
        action=action,
        reason=reason,
        detail=detail,
    )


async def _open_gate(
    session: AsyncSession,
    agent: Agent,
    exception_id: uuid.UUID,
    lane_id: uuid.UUID,
    reason: str | None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Send the lane's gate an open command in the resolution's transaction; the resolution's reference to it."""
    command = await gates.request_open(
        session,
        tenant_id=agent.tenant_id,
        lane_id=lane_id,
        requested_by=agent.subject,
        reason=reason,
        exception_id=exception_id,
        at=at,
    )
    return rules.gate_command(command.id, lane_id, agent, command.requested_at, command.expires_at, reason)


def _lane_of(row: Any) -> uuid.UUID:
    if row["lane_id"] is None:
        raise InvalidInput("this exception is not at a lane: there is no gate to open", code="NO_LANE", field="id")
    return row["lane_id"]


async def claim_exception(
    session: AsyncSession,
    principal: Principal,
    exception_id: uuid.UUID,
    *,
    take_over: bool = False,
    reason: str | None = None,
) -> QueueItem:
    """Claim an open exception (one agent at a time: of two claiming at once, the second gets ALREADY_CLAIMED).
    Claiming one's own claim again changes nothing; an operator admin may take over another agent's claim."""
    agent = rules.agent_of(principal)
    why = rules.check_reason(reason, required=False)
    row = await _locked(session, agent, exception_id)
    step = rules.claim_step(row["state"], row["claimed_by"], agent, take_over=take_over)
    if step == "keep":
        item = await queue_item(session, principal, exception_id)
        assert item is not None
        return item
    await repository.claim(session, agent.tenant_id, exception_id, agent.subject)
    if step == "take_over":
        await _audit(session, agent, exception_id, rules.TAKEN_OVER, why, {"from": row["claimed_by"]})
    else:
        await _audit(session, agent, exception_id, rules.CLAIMED, why)
    return await _changed(session, agent, exception_id, "claimed")


async def release_exception(
    session: AsyncSession, principal: Principal, exception_id: uuid.UUID, reason: str | None = None
) -> QueueItem:
    """Give a claimed exception back to the queue (only its holder)."""
    agent = rules.agent_of(principal)
    why = rules.check_reason(reason, required=False)
    row = await _locked(session, agent, exception_id)
    rules.check_holder(row["state"], row["claimed_by"], agent)
    await repository.release(session, agent.tenant_id, exception_id)
    await _audit(session, agent, exception_id, rules.RELEASED, why)
    return await _changed(session, agent, exception_id, "released")


async def _resolve(
    session: AsyncSession,
    agent: Agent,
    exception_id: uuid.UUID,
    action: str,
    reason: str | None,
    resolution: dict[str, Any],
    audit_detail: dict[str, Any] | None = None,
) -> QueueItem:
    """Resolve with `resolution` (also the audit line's detail unless `audit_detail` is given)."""
    await repository.resolve(session, agent.tenant_id, exception_id, agent.subject, _json(resolution))
    await _audit(session, agent, exception_id, action, reason, resolution if audit_detail is None else audit_detail)
    return await _changed(session, agent, exception_id, "resolved")


async def open_gate_remotely(
    session: AsyncSession, principal: Principal, exception_id: uuid.UUID, reason: str | None
) -> QueueItem:
    """Open the exception's lane barrier remotely and resolve it: an open command goes to the lane's gate (see
    rules)."""
    agent = rules.agent_of(principal)
    why = rules.check_reason(reason)
    row = await _locked(session, agent, exception_id)
    rules.check_holder(row["state"], row["claimed_by"], agent)
    command = await _open_gate(session, agent, exception_id, _lane_of(row), why)
    return await _resolve(session, agent, exception_id, rules.GATE_OPENED, why, {"gate_command": command})


async def close_session_at_amount(
    session: AsyncSession,
    principal: Principal,
    exception_id: uuid.UUID,
    amount_fen: int,
    reason: str | None,
    *,
    open_gate: bool = False,
) -> QueueItem:
    """Close the exception's lot session at an amount the agent sets (its price; close reason `agent_amount`) and
    resolve the exception, opening the gate too when asked."""
    agent = rules.agent_of(principal)
    why = rules.check_reason(reason)
    rules.check_amount(amount_fen)
    row = await _locked(session, agent, exception_id)
    rules.check_holder(row["state"], row["claimed_by"], agent)
    session_id = rules.session_of(row)
    if session_id is None:
        raise InvalidInput(
            "this exception has no lot session to close: correct the plate, open the gate or waive it",
            code="NO_SESSION",
            field="id",
        )
    closed = await _close(session, agent, row, session_id, amount_fen, rules.CLOSED_BY_AGENT)
    if closed is None:
        raise Conflict("the session is closed already", code="SESSION_NOT_OPEN", field="id")
    resolution: dict[str, Any] = {"session_id": str(session_id), "amount_fen": amount_fen}
    if open_gate:
        resolution["gate_command"] = await _open_gate(session, agent, exception_id, _lane_of(row), why)
    return await _resolve(session, agent, exception_id, rules.SESSION_CLOSED, why, resolution)


async def _close(
    session: AsyncSession, agent: Agent, row: Any, session_id: uuid.UUID, price_fen: int, close_reason: str
) -> Any:
    """Close the lot session at the exception's lane (when it is an exit) and passage time (else now).

    Merchant coupons reserved on the session are released: an amount the agent sets, or a waiver, is not a tariff
    price a coupon discounted, so no merchant pays towards it and each fund gets its reservation back."""
    exited_at = row["passed_at"] or now_utc()
    closed = await repository.close_session(
        session,
        agent.tenant_id,
        session_id,
        exit_lane_id=row["lane_id"] if row["lane_direction"] == "exit" else None,
        exited_at=exited_at,
        price_fen=price_fen,
        close_reason=close_reason,
    )
    if closed is not None:
        conn = await driver_of(session)
        coupons = await merchants.reserved_coupons(conn, agent.tenant_id, session_id)
        if coupons:
            currency = await merchants.tenant_currency(session, agent.tenant_id)
            await merchants.settle_session_coupons(conn, agent.tenant_id, session_id, coupons, {}, exited_at, currency)
    return closed


async def waive_exception(
    session: AsyncSession,
    principal: Principal,
    exception_id: uuid.UUID,
    reason: str | None,
    *,
    open_gate: bool = False,
) -> QueueItem:
    """Resolve with no charge. At an exit lane, the exception's open lot session closes at 0 (close reason
    `agent_waived`); elsewhere no session changes. Opens the gate too when asked."""
    agent = rules.agent_of(principal)
    why = rules.check_reason(reason)
    row = await _locked(session, agent, exception_id)
    rules.check_holder(row["state"], row["claimed_by"], agent)
    resolution: dict[str, Any] = {"session_closed": None}
    session_id = rules.session_of(row)
    if row["lane_direction"] == "exit" and session_id is not None:
        closed = await _close(session, agent, row, session_id, 0, rules.WAIVED_BY_AGENT)
        resolution["session_closed"] = None if closed is None else str(session_id)
    if open_gate:
        resolution["gate_command"] = await _open_gate(session, agent, exception_id, _lane_of(row), why)
    return await _resolve(session, agent, exception_id, rules.WAIVED, why, resolution)


@dataclass(frozen=True)
class Correction:
    """A corrected plate's outcome: the exception after it, the lane's new decision, and whether it settled the
    exception (see hub.queue.rules)."""

    item: QueueItem
    answer: lanes.LaneAnswer
    settled: bool


async def correct_plate_and_redecide(
    db: Database, principal: Principal, exception_id: uuid.UUID, plate: str, reason: str | None = None
) -> Correction:
    """Decide the exception's passage again with the plate the agent read (source `agent`, at the passage's own
    time), committed before this returns; decided again when a concurrent decision got in the way."""
    agent = rules.agent_of(principal)
    why = rules.check_reason(reason, required=False)
    read = lane_rules.make_read(plate, 1.0, camera=AGENT_CAMERA)
    if not read.plate_valid:
        raise InvalidInput(f"{plate!r} is not a recognizable plate", code="INVALID_PLATE", field="plate")
    for attempt in range(lanes.DECISION_ATTEMPTS):
        try:
            async with db.transaction(Scope("connector", tenant_id=agent.tenant_id)) as session:
                return await _correct(session, agent, exception_id, read, why)
        except lanes.ConcurrentChange:
            if attempt == lanes.DECISION_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _correct(
    session: AsyncSession, agent: Agent, exception_id: uuid.UUID, read: lane_rules.Read, why: str | None
) -> Correction:
    row = await _locked(session, agent, exception_id)
    rules.check_holder(row["state"], row["claimed_by"], agent)
    if row["lane_id"] is None or row["decision_id"] is None:
        raise InvalidInput(
            "this exception has no passage to decide again: open the gate or waive it", code="NO_PASSAGE", field="id"
        )
    at = now_utc()
    passage = lanes.Passage(f"agent:{exception_id}:{uuid.uuid4().hex}", (read,), row["passed_at"], source="agent")
    answer = await lanes.decide_passage(session, agent.tenant_id, row["lane_id"], passage)
    settled = rules.redecision_settles(answer.decision, answer.exception_id is not None)
    redecision = {
        "decision_id": str(answer.decision_id),
        "decision": answer.decision,
        "reason": answer.reason,
        "plate": answer.plate,
        "session_id": None if answer.session_id is None else str(answer.session_id),
        "amount_due_fen": answer.amount_due_fen,
        "payment_link": answer.payment_link,
        "raised_exception_id": None if answer.exception_id is None else str(answer.exception_id),
        "by": agent.subject,
        "at": at.isoformat(),
    }
    await repository.record_correction(
        session, agent.tenant_id, exception_id, read.plate, answer.session_id, _json({"redecision": redecision})
    )
    if answer.exception_id is not None:
        # The new exception carries the problem on (a duplicate entry, say); the agent who found it holds it.
        await repository.claim(session, agent.tenant_id, answer.exception_id, agent.subject)
        await _audit(session, agent, answer.exception_id, rules.CLAIMED, detail={"supersedes": str(exception_id)})
    resolution: dict[str, Any] = {"plate": read.plate, "redecision": redecision}
    if answer.decision == "open":  # the gate asked once and was told to hold: it must now be told to open
        resolution["gate_command"] = await _open_gate(session, agent, exception_id, row["lane_id"], why, at)
    detail = {"from": row["plate"], "settled": settled, **resolution}
    if not settled:
        await _audit(session, agent, exception_id, rules.PLATE_CORRECTED, why, detail)
        return Correction(await _changed(session, agent, exception_id, "updated"), answer, settled)
    item = await _resolve(session, agent, exception_id, rules.PLATE_CORRECTED, why, resolution, detail)
    return Correction(item, answer, settled)


async def notify_raised(session: AsyncSession, tenant_id: uuid.UUID, exception_ids: Sequence[uuid.UUID]) -> int:
    """Tell the operator's webhooks of raised exceptions (`exception.raised`, once each: the exception's id is the
    idempotency key). Returns how many it found."""
    rows = await repository.items(session, [(tenant_id, exception_id) for exception_id in exception_ids])
    for row in rows:
        item = QueueItem.of_row(row)
        subjects = {"exception_id": item.id, "facility_id": item.facility_id}
        if item.lane_id is not None:
            subjects["lane_id"] = item.lane_id
        if item.session is not None:
            subjects["session_id"] = item.session.id
        payload = {
            "kind": item.kind,
            "plate": item.plate,
            "reason": item.decision_reason or item.detail.get("fault"),
            "facility_name": item.facility_name,
            "lane_name": item.lane_name,
            "reads": item.reads,
        }
        event = Notification(
            tenant_id=tenant_id,
            type="exception.raised",
            idempotency_key=f"exception.raised:{item.id}",
            occurred_at=item.created_at,
            subject_ids=subjects,
            payload=payload,
        )
        await notify(session, event)
    return len(rows)


# ------------------------------------------------------------------------------------------- the sweep


async def sweep_held_barriers(
    session: AsyncSession,
    now: datetime,
    *,
    held_after: timedelta = rules.DEFAULT_BARRIER_HELD_AFTER,
    lookback: timedelta = rules.BARRIER_HELD_LOOKBACK,
) -> int:
    """Raise a `barrier_held` exception for each lane whose latest passage was held more than `held_after` ago
    (and less than `lookback`) without an exception of its own; once per passage. Every operator's lanes: run
    under the platform scope. Returns how many it raised (0 when another sweep is running)."""
    if not await repository.lock_sweep(session):
        return 0
    rows = await repository.held_barriers(session, since=now - lookback, held_before=now - held_after)
    for row in rows:
        await lane_exceptions.raise_exception(
            session,
            tenant_id=row["tenant_id"],
            kind="barrier_held",
            facility_id=row["facility_id"],
            lane_id=row["lane_id"],
            session_id=row["session_id"],
            decision_id=row["decision_id"],
            plate=row["plate"],
            reads=row["reads"],
            detail={
                "held_since": row["decided_at"].isoformat(),
                "held_seconds": rules.held_for_seconds(row["decided_at"], now),
                "threshold_seconds": int(held_after.total_seconds()),
                "decision_reason": row["reason"],
                "passage_id": row["passage_id"],
            },
            reason=row["reason"],
        )
    return len(rows)
