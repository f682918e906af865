"""On-street sessions for drivers (start by space code, extend, end early; their own sessions) and for operators'
staff and the city (sessions and enforcement flags). Cameras and sensors start and end auto-pay sessions through
the inbox (hub/street/tasks.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry
from strawberry import relay

from hub.street import service
from schema.context import Info
from schema.relay import check_first, connection, decode_time_cursor, uuid_of
from schema.street.types import EnforcementFlag, StartStreetSessionInput, StreetSession, StreetSessionResult

IdempotencyKey = Annotated[
    str | None,
    strawberry.argument(description="Retrying with the same key returns the first answer and charges nothing again"),
]


def _facility(facility_id: relay.GlobalID | None) -> uuid.UUID | None:
    return None if facility_id is None else uuid_of(facility_id, "Facility", "facilityId")


@strawberry.type
class StreetQuery:
    @strawberry.field(description="The driver's own street sessions, newest first, at every operator.")
    async def my_street_sessions(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        active: Annotated[bool | None, strawberry.argument(description="Only running (true) or ended (false)")] = None,
    ) -> relay.Connection[StreetSession]:
        page_size = check_first(first)
        now = service.now_utc()
        async with info.context.read() as session:
            rows = await service.my_sessions(
                session,
                info.context.principal,
                first=page_size,
                after=decode_time_cursor(after),
                active=active,
                now=now,
            )
        return connection(
            rows, page_size, after is not None, lambda row: StreetSession.from_row(row, now), "started_at"
        )

    @strawberry.field(
        description="Street sessions, newest first: the operator's own (operator staff and admins), or every "
        "operator's (the city)."
    )
    async def street_sessions(
        self,
        info: Info,
        facility_id: relay.GlobalID | None = None,
        active: Annotated[bool | None, strawberry.argument(description="Only running (true) or ended (false)")] = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> relay.Connection[StreetSession]:
        page_size = check_first(first)
        now = service.now_utc()
        async with info.context.read() as session:
            rows = await service.sessions_page(
                session,
                info.context.principal,
                first=page_size,
                after=decode_time_cursor(after),
                facility_id=_facility(facility_id),
                active=active,
                now=now,
            )
        return connection(
            rows, page_size, after is not None, lambda row: StreetSession.from_row(row, now), "started_at"
        )

    @strawberry.field(
        description="Occupied curb bays with no session for longer than the grace, newest first: the operator's "
        "own (operator staff and admins), or every operator's (the city)."
    )
    async def enforcement_flags(
        self,
        info: Info,
        facility_id: relay.GlobalID | None = None,
        open: Annotated[bool | None, strawberry.argument(description="Only open (true) or resolved (false)")] = True,
        first: int | None = 20,
        after: str | None = None,
    ) -> relay.Connection[EnforcementFlag]:
        page_size = check_first(first)
        async with info.context.read() as session:
            rows = await service.flags_page(
                session,
                info.context.principal,
                first=page_size,
                after=decode_time_cursor(after),
                facility_id=_facility(facility_id),
                open_only=open,
            )
        return connection(rows, page_size, after is not None, EnforcementFlag.from_row, "raised_at")


@strawberry.type
class StreetMutation:
    @strawberry.mutation(
        description="Start a prepaid session in a curb bay now (drivers). The price of the whole duration under the "
        "zone's tariff is the action's chargeFen."
    )
    async def start_street_session(self, info: Info, input: StartStreetSessionInput) -> StreetSessionResult:
        ref = service.SpaceRef(
            space_id=None if input.space_id is None else uuid_of(input.space_id, "Space", "spaceId"),
            operator=input.operator,
            code=input.space_code,
        )
        async with info.context.write() as session:
            change = await service.start_session(
                session,
                info.context.principal,
                ref,
                input.plate,
                input.duration_minutes,
                input.vehicle_class.value,
                input.idempotency_key,
                service.now_utc(),
            )
        return StreetSessionResult.of(change)

    @strawberry.mutation(
        description="Buy more time for a running prepaid session (drivers). The whole span is priced as one stay; "
        "the action's chargeFen is what the extension adds."
    )
    async def extend_street_session(
        self, info: Info, id: relay.GlobalID, minutes: int, idempotency_key: IdempotencyKey = None
    ) -> StreetSessionResult:
        session_id = uuid_of(id, "StreetSession")
        async with info.context.write() as session:
            change = await service.extend_session(
                session, info.context.principal, session_id, minutes, idempotency_key, service.now_utc()
            )
        return StreetSessionResult.of(change)

    @strawberry.mutation(
        description="End a running session now (drivers). Prepaid: priced on the time parked, and the action's "
        "refundFen is what was paid minus that price. Auto-pay: its price is charged."
    )
    async def end_street_session(
        self, info: Info, id: relay.GlobalID, idempotency_key: IdempotencyKey = None
    ) -> StreetSessionResult:
        session_id = uuid_of(id, "StreetSession")
        async with info.context.write() as session:
            change = await service.end_session(
                session, info.context.principal, session_id, idempotency_key, service.now_utc()
            )
        return StreetSessionResult.of(change)
