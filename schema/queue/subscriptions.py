"""The exception queue, live."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry import relay

from hub.queue import service as queue
from hub.queue.broker import QueueBroker
from hub.queue.rules import QueueWatch
from schema.context import Info
from schema.queue.operations import facility_uuids
from schema.queue.types import ExceptionQueueEvent


@strawberry.type
class QueueSubscription:
    @strawberry.subscription(
        description="Each change of the operator's exception queue from now on (raised, claimed, released, updated, "
        "resolved), with the exception as it is after the change, for the given facilities or all (operator "
        "staff and admins). Changes missed while disconnected are not replayed: read exceptionQueue after "
        "(re)subscribing."
    )
    async def exception_queue_changed(
        self, info: Info, facility_ids: list[relay.GlobalID] | None = None
    ) -> AsyncGenerator[ExceptionQueueEvent, None]:
        # Checked before the stream starts, so a refusal is the operation's error, never a half-started stream.
        context = info.context
        async with context.read() as session:
            watch = await queue.queue_watch(session, context.principal, facility_uuids(facility_ids))
        # A subscription may last for hours; it must not hold a database connection meanwhile.
        await context.close()
        return _events(context.request.app.state.queue_broker, watch)


async def _events(broker: QueueBroker, watch: QueueWatch) -> AsyncGenerator[ExceptionQueueEvent, None]:
    async with broker.subscribe(watch.matches, owner=watch.tenant_id) as events:
        async for event in events:
            yield ExceptionQueueEvent.of(event)
