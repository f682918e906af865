"""Dead events: inbound events that could not be applied, with the reason, for an operator to fix and replay."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from hub.errors import InvalidInput
from hub.ingest import service
from schema.context import Info
from schema.relay import check_first, connection, decode_time_cursor


@strawberry.type(description="An inbound event that could not be applied (unknown device, failed validation)")
class DeadEvent:
    id: strawberry.ID
    connector_id: strawberry.ID
    source_event_id: str = strawberry.field(description="The sender's own id of the event")
    kind: str
    device_external_id: str | None
    occurred_at: datetime
    received_at: datetime
    reason: str | None
    attempts: int
    event: JSON = strawberry.field(description="The normalized event as accepted")

    @classmethod
    def from_row(cls, row: Any) -> DeadEvent:
        return cls(
            id=strawberry.ID(str(row["id"])),
            connector_id=strawberry.ID(str(row["connector_id"])),
            source_event_id=row["source_event_id"],
            kind=row["kind"],
            device_external_id=row["device_external_id"],
            occurred_at=row["occurred_at"],
            received_at=row["received_at"],
            reason=row["outcome"],
            attempts=row["attempts"],
            event=row["body"],
        )


@strawberry.type
class IngestQuery:
    @strawberry.field(description="The operator's dead events, newest first")
    async def dead_events(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> relay.Connection[DeadEvent]:
        page_size = check_first(first)
        async with info.context.read() as session:
            rows = await service.dead_letters(session, info.context.principal, page_size, decode_time_cursor(after))
        return connection(
            rows,
            page_size,
            after is not None,
            DeadEvent.from_row,
            lambda row: (row["received_at"].isoformat(), row["id"]),
        )


@strawberry.type
class IngestMutation:
    @strawberry.mutation(description="Queue dead events again (after registering their device, say); returns how many")
    async def replay_dead_events(self, info: Info, ids: list[strawberry.ID]) -> int:
        try:
            event_ids = [uuid.UUID(str(event_id)) for event_id in ids]
        except ValueError:
            raise InvalidInput("ids: not dead event ids", code="INVALID_ID", field="ids") from None
        async with info.context.write() as session:
            return await service.replay_dead_letters(session, info.context.principal, event_ids)
