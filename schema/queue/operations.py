"""The exception queue for remote agents (operator staff and admins of the tenant): the queue and its history,
claiming, releasing and resolving. Each mutation is one transaction and one line of the exception's audit trail."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry
from strawberry import relay

from hub.queue import service as queue
from hub.queue.events import QueueItem
from schema.context import Info
from schema.lanes.types import LaneExceptionState
from schema.queue.types import ExceptionAuditLine, ExceptionQueueItem, PlateCorrection
from schema.relay import check_first, connection, decode_time_cursor, uuid_of

QUEUE_PAGE = 50
Reason = Annotated[str | None, strawberry.argument(description="Why (required: REASON_REQUIRED when missing or blank)")]
OptionalReason = Annotated[str | None, strawberry.argument(description="Why, for the audit trail (optional)")]


def facility_uuids(facility_ids: list[relay.GlobalID] | None) -> list[uuid.UUID] | None:
    if facility_ids is None:
        return None
    return [uuid_of(facility_id, "Facility", "facilityIds") for facility_id in facility_ids]


def _exception(global_id: relay.GlobalID) -> uuid.UUID:
    return uuid_of(global_id, "LaneException", "id")


def _cursor(item: QueueItem) -> tuple[str, uuid.UUID]:
    return item.created_at.isoformat(), item.id


@strawberry.type
class QueueQuery:
    @strawberry.field(
        description="The operator's waiting exceptions, longest waiting first (operator staff and admins): open and "
        "claimed unless `states` says. Each item carries what an agent's screen shows; subscribe to "
        "exceptionQueueChanged for the changes."
    )
    async def exception_queue(
        self,
        info: Info,
        facility_ids: list[relay.GlobalID] | None = None,
        states: list[LaneExceptionState] | None = None,
        first: int | None = QUEUE_PAGE,
        after: str | None = None,
    ) -> relay.Connection[ExceptionQueueItem]:
        page_size = check_first(first, QUEUE_PAGE)
        async with info.context.read() as session:
            items = await queue.exception_queue(
                session,
                info.context.principal,
                facility_ids=facility_uuids(facility_ids),
                states=None if states is None else [state.value for state in states],
                first=page_size,
                after=decode_time_cursor(after),
            )
        now = info.context.now
        return connection(items, page_size, after is not None, lambda item: ExceptionQueueItem.of(item, now), _cursor)

    @strawberry.field(description="The operator's resolved exceptions, newest first (operator staff and admins).")
    async def exception_history(
        self,
        info: Info,
        facility_ids: list[relay.GlobalID] | None = None,
        first: int | None = QUEUE_PAGE,
        after: str | None = None,
    ) -> relay.Connection[ExceptionQueueItem]:
        page_size = check_first(first, QUEUE_PAGE)
        async with info.context.read() as session:
            items = await queue.exception_history(
                session,
                info.context.principal,
                facility_ids=facility_uuids(facility_ids),
                first=page_size,
                after=decode_time_cursor(after),
            )
        now = info.context.now
        return connection(items, page_size, after is not None, lambda item: ExceptionQueueItem.of(item, now), _cursor)

    @strawberry.field(description="One exception as the queue shows it, in any state; null when not visible to you.")
    async def exception_queue_item(self, info: Info, id: relay.GlobalID) -> ExceptionQueueItem | None:
        async with info.context.read() as session:
            item = await queue.queue_item(session, info.context.principal, _exception(id))
        return None if item is None else ExceptionQueueItem.of(item, info.context.now)

    @strawberry.field(description="Who did what to an exception, when and why, oldest first (operator staff).")
    async def exception_audit_trail(self, info: Info, exception_id: relay.GlobalID) -> list[ExceptionAuditLine]:
        row_id = uuid_of(exception_id, "LaneException", "exceptionId")
        async with info.context.read() as session:
            trails = await queue.audit_trails(session, info.context.principal, [row_id])
        return [ExceptionAuditLine.of(line) for line in trails[row_id]]


@strawberry.type
class QueueMutation:
    @strawberry.mutation(
        description="Claim an exception: only its claimer acts on it. Two agents claiming at once: one wins, the "
        "other gets ALREADY_CLAIMED. An operator admin may take over another agent's claim with takeOver."
    )
    async def claim_exception(
        self, info: Info, id: relay.GlobalID, take_over: bool = False, reason: OptionalReason = None
    ) -> ExceptionQueueItem:
        async with info.context.write() as session:
            item = await queue.claim_exception(
                session, info.context.principal, _exception(id), take_over=take_over, reason=reason
            )
        return ExceptionQueueItem.of(item, info.context.now)

    @strawberry.mutation(description="Give a claimed exception back to the queue (its claimer only).")
    async def release_exception(
        self, info: Info, id: relay.GlobalID, reason: OptionalReason = None
    ) -> ExceptionQueueItem:
        async with info.context.write() as session:
            item = await queue.release_exception(session, info.context.principal, _exception(id), reason)
        return ExceptionQueueItem.of(item, info.context.now)

    @strawberry.mutation(
        description="Decide the exception's passage again with the plate the agent read, as the lane would (source "
        "AGENT). An open decision resolves the exception and sends the lane's gate an open command (see the item's "
        "gateCommand); so does a decision that raises a new exception, which the agent then holds; other holds leave "
        "it claimed."
    )
    async def correct_plate_and_redecide(
        self, info: Info, id: relay.GlobalID, plate: str, reason: OptionalReason = None
    ) -> PlateCorrection:
        correction = await queue.correct_plate_and_redecide(
            info.context.db, info.context.principal, _exception(id), plate, reason
        )
        return PlateCorrection.of(correction, info.context.now)

    @strawberry.mutation(
        description="Open the exception's lane barrier remotely and resolve it: the lane's gate controller is sent an "
        "open command, which expires unanswered after a minute; the item's gateCommand shows whether the barrier "
        "opened."
    )
    async def open_gate_remotely(self, info: Info, id: relay.GlobalID, reason: Reason = None) -> ExceptionQueueItem:
        async with info.context.write() as session:
            item = await queue.open_gate_remotely(session, info.context.principal, _exception(id), reason)
        return ExceptionQueueItem.of(item, info.context.now)

    @strawberry.mutation(
        description="Close the exception's lot session at an amount the agent sets (fen, 0 or more) and resolve it; "
        "openGate also sends the lane's gate an open command (see the item's gateCommand)."
    )
    async def close_session_at_amount(
        self, info: Info, id: relay.GlobalID, amount_fen: int, reason: Reason = None, open_gate: bool = False
    ) -> ExceptionQueueItem:
        async with info.context.write() as session:
            item = await queue.close_session_at_amount(
                session, info.context.principal, _exception(id), amount_fen, reason, open_gate=open_gate
            )
        return ExceptionQueueItem.of(item, info.context.now)

    @strawberry.mutation(
        description="Resolve with no charge: at an exit lane the exception's open session closes at 0. openGate also "
        "sends the lane's gate an open command (see the item's gateCommand)."
    )
    async def waive_exception(
        self, info: Info, id: relay.GlobalID, reason: Reason = None, open_gate: bool = False
    ) -> ExceptionQueueItem:
        async with info.context.write() as session:
            item = await queue.waive_exception(
                session, info.context.principal, _exception(id), reason, open_gate=open_gate
            )
        return ExceptionQueueItem.of(item, info.context.now)
