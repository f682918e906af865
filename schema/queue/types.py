"""GraphQL types of the exception queue: a queue item carries everything an agent's screen shows of one exception
(lane, facility, reads with image references, the held passage, a session summary, who holds it), read in one
statement for the query and carried whole by each live event, so a screen never reads back per change."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from hub.lanes import gates
from hub.queue import service as queue
from hub.queue.events import QueueEvent, QueueItem, QueueSession
from schema.context import Context, Info
from schema.lanes.types import (
    BarrierDecision,
    LaneDecision,
    LaneExceptionKind,
    LaneExceptionState,
    LotSessionState,
    PlateRead,
)
from schema.lanes.types import loaders as lane_loaders


@strawberry.enum(description="What happened to an exception in the queue")
class ExceptionQueueAction(Enum):
    RAISED = strawberry.enum_value("raised", description="A lane (or the barrier-held sweep) raised it")
    CLAIMED = strawberry.enum_value("claimed", description="An agent claimed it (or an admin took it over)")
    RELEASED = strawberry.enum_value("released", description="Its agent gave it back to the queue")
    UPDATED = strawberry.enum_value(
        "updated",
        description="Its agent corrected the plate and the lane still holds, or the lane's gate answered a remote open",
    )
    RESOLVED = strawberry.enum_value("resolved", description="Its agent settled it")


@strawberry.type(description="The facility an exception is at")
class ExceptionFacility:
    id: relay.GlobalID
    name: str


@strawberry.type(description="The lane an exception is at")
class ExceptionLane:
    id: relay.GlobalID
    name: str
    direction: str = strawberry.field(description="entry or exit")


@strawberry.type(description="The lot session an exception concerns, in short")
class ExceptionSession:
    id: relay.GlobalID
    plate: str | None
    state: LotSessionState
    entered_at: datetime
    exited_at: datetime | None
    price_fen: int | None = strawberry.field(description="What the stay cost, once closed")
    paid_fen: int
    amount_due_fen: int | None = strawberry.field(description="What the lane last asked for; null when not known")

    @classmethod
    def of(cls, session: QueueSession) -> ExceptionSession:
        return cls(
            id=relay.GlobalID("LotSession", str(session.id)),
            plate=session.plate,
            state=LotSessionState(session.state),
            entered_at=session.entered_at,
            exited_at=session.exited_at,
            price_fen=session.price_fen,
            paid_fen=session.paid_fen,
            amount_due_fen=session.amount_due_fen,
        )


@strawberry.type(description="One line of an exception's audit trail: who did what, when and why")
class ExceptionAuditLine:
    at: datetime
    actor: str = strawberry.field(description="The agent's token subject, or `system` for a lane or a sweep")
    action: str = strawberry.field(
        description="raised, claimed, taken_over, released, plate_corrected, gate_opened, session_closed, waived"
    )
    reason: str | None = strawberry.field(description="Why, as the agent said")
    detail: JSON = strawberry.field(description="What exactly: the corrected plate and new decision, the amount ...")

    @classmethod
    def of(cls, line: queue.AuditLine) -> ExceptionAuditLine:
        return cls(at=line.at, actor=line.actor, action=line.action, reason=line.reason, detail=line.detail)


def now_utc() -> datetime:
    return datetime.now(UTC)


_AUDIT_LOADER = "queue_audit_loader"


def _audit_loader(context: Context) -> DataLoader[uuid.UUID, list[ExceptionAuditLine]]:
    """The audit trails of the items a result shows, in one statement. Each batch reads in a short transaction of its
    own, never the request's: a live subscription must not hold a connection between events; and nothing is
    cached, so each event shows the trail as it is then."""
    found: DataLoader[uuid.UUID, list[ExceptionAuditLine]] | None = getattr(context, _AUDIT_LOADER, None)
    if found is None:

        async def load(ids: Sequence[uuid.UUID]) -> list[list[ExceptionAuditLine]]:
            async with context.db.transaction(context.principal.db_scope()) as session:
                trails = await queue.audit_trails(session, context.principal, list(ids))
            return [[ExceptionAuditLine.of(line) for line in trails[exception_id]] for exception_id in ids]

        found = DataLoader(load_fn=load, cache=False)
        setattr(context, _AUDIT_LOADER, found)
    return found


@strawberry.enum(description="Where a command to a lane's gate stands")
class GateCommandStatus(Enum):
    PENDING = strawberry.enum_value("pending", description="Waiting for the gate to fetch it")
    DELIVERED = strawberry.enum_value(
        "delivered", description="The gate fetched it and has not answered yet (it is delivered again until it expires)"
    )
    ACKNOWLEDGED = strawberry.enum_value("acknowledged", description="The gate answered: the barrier opened")
    FAILED = strawberry.enum_value("failed", description="The gate answered: the barrier did not open (a gate fault)")
    EXPIRED = strawberry.enum_value(
        "expired", description="Nobody answered before it expired; no gate acts on it any more"
    )


@strawberry.enum(description="What the barrier did, as the gate answered")
class GateCommandOutcome(Enum):
    OPENED = "opened"
    FAILED = "failed"


@strawberry.type(description="A command sent to a lane's gate controller (today: open the barrier)")
class GateCommand:
    id: strawberry.ID = strawberry.field(description="The command's id, as the gate sees and acknowledges it")
    command: str = strawberry.field(description="open")
    status: GateCommandStatus = strawberry.field(description="Where it stands now")
    lane: relay.GlobalID
    reason: str | None = strawberry.field(description="Why, as the agent said (the gate is told too)")
    requested_by: str = strawberry.field(description="The agent's token subject")
    requested_at: datetime
    expires_at: datetime = strawberry.field(description="No gate is told after this; unanswered, it reads EXPIRED")
    delivered_at: datetime | None = strawberry.field(description="When the gate first fetched it")
    deliveries: int = strawberry.field(description="How many fetches returned it (a gate may fetch it again)")
    acknowledged_at: datetime | None = strawberry.field(description="When the gate answered")
    outcome: GateCommandOutcome | None = strawberry.field(description="What the barrier did, as the gate answered")
    outcome_detail: JSON | None = strawberry.field(description="What else the gate said")
    fault_exception: relay.GlobalID | None = strawberry.field(
        description="The gate_fault exception a failed open raised (a LaneException)"
    )

    @classmethod
    def of(cls, command: gates.GateCommand, as_of: datetime) -> GateCommand:
        fault = command.fault_exception_id
        return cls(
            id=strawberry.ID(str(command.id)),
            command=command.command,
            status=GateCommandStatus(command.status(as_of)),
            lane=relay.GlobalID("Lane", str(command.lane_id)),
            reason=command.reason,
            requested_by=command.requested_by,
            requested_at=command.requested_at,
            expires_at=command.expires_at,
            delivered_at=command.delivered_at,
            deliveries=command.deliveries,
            acknowledged_at=command.acknowledged_at,
            outcome=None if command.outcome is None else GateCommandOutcome(command.outcome),
            outcome_detail=command.outcome_detail,
            fault_exception=None if fault is None else relay.GlobalID("LaneException", str(fault)),
        )


_GATE_COMMAND_LOADER = "queue_gate_command_loader"


def _gate_command_loader(context: Context) -> DataLoader[uuid.UUID, GateCommand | None]:
    """The gate commands of the items a result shows, in one statement; like the audit trails' loader, each batch
    reads in a short transaction of its own and nothing is cached (a subscription's next event shows the command as
    it is then, its status as of the read)."""
    found: DataLoader[uuid.UUID, GateCommand | None] | None = getattr(context, _GATE_COMMAND_LOADER, None)
    if found is None:

        async def load(ids: Sequence[uuid.UUID]) -> list[GateCommand | None]:
            async with context.db.transaction(context.principal.db_scope()) as session:
                commands = await queue.gate_commands(session, context.principal, list(ids))
            as_of = now_utc()
            return [None if (c := commands.get(i)) is None else GateCommand.of(c, as_of) for i in ids]

        found = DataLoader(load_fn=load, cache=False)
        setattr(context, _GATE_COMMAND_LOADER, found)
    return found


@strawberry.type(description="An exception as an agent's queue shows it")
class ExceptionQueueItem:
    id: relay.GlobalID = strawberry.field(description="The LaneException's id")
    kind: LaneExceptionKind
    state: LaneExceptionState
    facility: ExceptionFacility
    lane: ExceptionLane | None
    plate: str | None = strawberry.field(description="The plate, once known (an agent's correction wins)")
    reads: list[PlateRead] = strawberry.field(description="Every read of the passage, with its image reference")
    held_reason: str | None = strawberry.field(description="Why the lane held the vehicle (the decision's reason)")
    passed_at: datetime | None = strawberry.field(description="When the vehicle was at the barrier")
    detail: JSON = strawberry.field(
        description="What else is known: the threshold, a candidate plate, the gate's fault, a re-decision"
    )
    session: ExceptionSession | None
    raised_at: datetime = strawberry.field(description="Waiting since")
    claimed_by: str | None
    claimed_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolution: JSON | None = strawberry.field(
        description="How it was settled; a remote open names the command it sent in `gate_command` (its id, lane, "
        "who asked, when, until when, why): what became of it is in gateCommand"
    )
    row_id: strawberry.Private[uuid.UUID]
    as_of: strawberry.Private[datetime]

    @classmethod
    def of(cls, item: QueueItem, as_of: datetime) -> ExceptionQueueItem:
        lane = None
        if item.lane_id is not None:
            lane = ExceptionLane(
                id=relay.GlobalID("Lane", str(item.lane_id)),
                name=item.lane_name or "",
                direction=item.lane_direction or "",
            )
        return cls(
            id=relay.GlobalID("LaneException", str(item.id)),
            kind=LaneExceptionKind(item.kind),
            state=LaneExceptionState(item.state),
            facility=ExceptionFacility(id=relay.GlobalID("Facility", str(item.facility_id)), name=item.facility_name),
            lane=lane,
            plate=item.plate,
            reads=[PlateRead.of(read) for read in item.reads],
            held_reason=item.decision_reason,
            passed_at=item.passed_at,
            detail=item.detail,
            session=None if item.session is None else ExceptionSession.of(item.session),
            raised_at=item.created_at,
            claimed_by=item.claimed_by,
            claimed_at=item.claimed_at,
            resolved_by=item.resolved_by,
            resolved_at=item.resolved_at,
            resolution=item.resolution,
            row_id=item.id,
            as_of=as_of,
        )

    @strawberry.field(description="Seconds waited (until resolved)")
    def waiting_seconds(self) -> int:
        until = self.resolved_at or self.as_of
        return max(0, int((until - self.raised_at).total_seconds()))

    @strawberry.field(
        description="The audit trail, oldest first. Read from the database when asked (one statement per result): "
        "leave it out of subscriptions, whose events carry everything else"
    )
    async def actions(self, info: Info) -> list[ExceptionAuditLine]:
        return await _audit_loader(info.context).load(self.row_id)

    @strawberry.field(
        description="The open command this exception's resolution sent to the lane's gate, and what became of it "
        "(pending, delivered, acknowledged with the barrier's outcome, failed, expired); null when none was sent. "
        "Read from the database when asked (one statement per result)"
    )
    async def gate_command(self, info: Info) -> GateCommand | None:
        return await _gate_command_loader(info.context).load(self.row_id)


@strawberry.type(description="A change of the exception queue, with the exception as it is now")
class ExceptionQueueEvent:
    action: ExceptionQueueAction
    actor: str = strawberry.field(
        description="Who: an agent's token subject, `system` (a lane or a sweep), or `gate` (a gate's answer)"
    )
    at: datetime
    exception: ExceptionQueueItem

    @classmethod
    def of(cls, event: QueueEvent) -> ExceptionQueueEvent:
        return cls(
            action=ExceptionQueueAction(event.action),
            actor=event.actor,
            at=event.at,
            exception=ExceptionQueueItem.of(event.item, event.at),
        )


@strawberry.type(description="What correcting the plate did: the lane's new decision and the exception after it")
class PlateCorrection:
    exception: ExceptionQueueItem
    settled: bool = strawberry.field(
        description="The exception is resolved: the barrier opens, or a new exception carries the problem on"
    )
    decision: BarrierDecision
    reason: str
    amount_due_fen: int | None
    payment_link: str | None
    decision_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def of(cls, correction: queue.Correction, as_of: datetime) -> PlateCorrection:
        answer = correction.answer
        return cls(
            exception=ExceptionQueueItem.of(correction.item, as_of),
            settled=correction.settled,
            decision=BarrierDecision(answer.decision),
            reason=answer.reason,
            amount_due_fen=answer.amount_due_fen,
            payment_link=answer.payment_link,
            decision_id=answer.decision_id,
        )

    @strawberry.field(description="The new lane decision (source AGENT)")
    async def lane_decision(self, info: Info) -> LaneDecision | None:
        return await lane_loaders(info).decision.load(self.decision_id)
