"""Lanes for operators (their lot sessions and lane decisions, lane codes, read thresholds) and drivers (scanning a
lane's code when the vehicle has no plate, auto-pay for their vehicles). Gates themselves call
`POST /lanes/{laneId}/reads` (connectors/lanes_http.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry
from strawberry import relay

from hub.lanes import operations as lanes
from schema.context import Info
from schema.lanes.types import (
    AutoPayAuthorization,
    BarrierDecision,
    LaneCode,
    LaneDecision,
    LaneReadSettings,
    LaneScan,
    LotSession,
    LotSessionState,
)
from schema.relay import check_first, connection, decode_time_cursor, uuid_of


def _optional(global_id: relay.GlobalID | None, type_name: str, field: str) -> uuid.UUID | None:
    return None if global_id is None else uuid_of(global_id, type_name, field)


@strawberry.type
class LanesQuery:
    @strawberry.field(description="The operator's lot sessions, newest entry first (operator staff and admins).")
    async def lot_sessions(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        facility_id: relay.GlobalID | None = None,
        state: LotSessionState | None = None,
        plate: Annotated[str | None, strawberry.argument(description="Any way of writing the plate")] = None,
    ) -> relay.Connection[LotSession]:
        page_size = check_first(first)
        async with info.context.read() as session:
            rows = await lanes.sessions_page(
                session,
                info.context.principal,
                first=page_size,
                after=decode_time_cursor(after),
                facility_id=_optional(facility_id, "Facility", "facilityId"),
                state=None if state is None else state.value,
                plate=plate,
            )
        return connection(rows, page_size, after is not None, LotSession.from_row, "entered_at")

    @strawberry.field(description="The operator's lane decisions, newest first (operator staff and admins).")
    async def lane_decisions(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        lane_id: relay.GlobalID | None = None,
        facility_id: relay.GlobalID | None = None,
        decision: BarrierDecision | None = None,
    ) -> relay.Connection[LaneDecision]:
        page_size = check_first(first)
        async with info.context.read() as session:
            rows = await lanes.decisions_page(
                session,
                info.context.principal,
                first=page_size,
                after=decode_time_cursor(after),
                lane_id=_optional(lane_id, "Lane", "laneId"),
                facility_id=_optional(facility_id, "Facility", "facilityId"),
                decision=None if decision is None else decision.value,
            )
        return connection(rows, page_size, after is not None, LaneDecision.from_row, "decided_at")

    @strawberry.field(
        description="A lane's code for vehicles without a plate, to print as a QR code at the lane: the same for "
        "the lane's whole life (operator staff and admins)."
    )
    async def lane_entry_code(self, info: Info, lane_id: relay.GlobalID) -> LaneCode:
        lane = uuid_of(lane_id, "Lane", "laneId")
        async with info.context.write() as session:  # the operator's signing key is made on first use
            code = await lanes.lane_code(session, info.context.principal, lane)
        return LaneCode(code=code.code, link=code.link, direction=code.direction, lane_id=code.lane_id)


@strawberry.type
class LanesMutation:
    @strawberry.mutation(
        description="Set the confidence every plate read of a passage at the lane must reach, 0 to 1 (0.8 unless "
        "set); a passage with a read below it is held for an agent (operator admins)."
    )
    async def set_lane_read_threshold(self, info: Info, lane_id: relay.GlobalID, threshold: float) -> LaneReadSettings:
        lane = uuid_of(lane_id, "Lane", "laneId")
        async with info.context.write() as session:
            row = await lanes.set_lane_threshold(session, info.context.principal, lane, threshold)
        return LaneReadSettings(read_confidence_threshold=row["read_confidence_threshold"], lane_id=row["id"])

    @strawberry.mutation(
        description="A driver whose vehicle has no plate scanned an entry lane's code: a session bound to the "
        "driver's account opens and the barrier opens (or holds, e.g. when the lot is full)."
    )
    async def scan_entry_code(self, info: Info, code: str) -> LaneScan:
        return LaneScan.of(await lanes.scan_lane_code(info.context.db, info.context.principal, code, "entry"))

    @strawberry.mutation(
        description="A driver scanned an exit lane's code: the driver's session there is priced; the barrier "
        "opens when nothing is owed, otherwise holds with the amount due and a payment link."
    )
    async def scan_exit_code(self, info: Info, code: str) -> LaneScan:
        return LaneScan.of(await lanes.scan_lane_code(info.context.db, info.context.principal, code, "exit"))

    @strawberry.mutation(
        description="Let exits of one of the driver's own vehicles be charged to their account (leave first, pay "
        "later), or stop it. Lanes then open for the plate and leave a pending charge."
    )
    async def set_auto_pay(self, info: Info, plate: str, enabled: bool) -> AutoPayAuthorization:
        async with info.context.write() as session:
            result = await lanes.set_auto_pay(session, info.context.principal, plate, enabled)
        return AutoPayAuthorization(plate=result.plate, enabled=result.enabled, since=result.since)
