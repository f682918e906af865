"""Live subscriptions: occupancy changes of a facility, a bounding box or an operator."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry import relay

from hub.live import LiveBroker, OccupancyWatch
from hub.live import service as live_service
from schema.context import Info
from schema.live.types import OccupancyEvent
from schema.relay import uuid_of
from schema.supply.inputs import BBoxInput


@strawberry.type
class LiveSubscription:
    @strawberry.subscription(
        description="Each change of a space's status, from now on, for exactly one of: a facility, a bbox, or "
        "an operator (the city, or the operator's own staff). Changes missed while disconnected are not "
        "replayed: read the current state with a query after (re)subscribing."
    )
    async def occupancy_changed(
        self,
        info: Info,
        facility_id: relay.GlobalID | None = None,
        bbox: BBoxInput | None = None,
        operator_id: relay.GlobalID | None = None,
    ) -> AsyncGenerator[OccupancyEvent, None]:
        # Checked before the stream starts, so a refusal is the operation's `error`, never a half-started stream.
        context = info.context
        async with context.read() as session:
            watch = await live_service.occupancy_watch(
                session,
                context.principal,
                facility_id=uuid_of(facility_id, "Facility", "facilityId") if facility_id is not None else None,
                bbox=(bbox.west, bbox.south, bbox.east, bbox.north) if bbox is not None else None,
                operator_id=uuid_of(operator_id, "Operator", "operatorId") if operator_id is not None else None,
            )
        # A subscription may last for hours; it must not hold a database connection meanwhile.
        await context.close()
        return _events(context.request.app.state.live, watch)


async def _events(broker: LiveBroker, watch: OccupancyWatch) -> AsyncGenerator[OccupancyEvent, None]:
    async with broker.subscribe(watch.matches, owner=watch.tenant_id) as changes:
        async for change in changes:
            yield OccupancyEvent.of(change)
