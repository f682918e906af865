"""Operator admin mutations of the supply: one at a time or in bulk, all or nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry import relay

from hub.supply import service
from schema.context import Info
from schema.inputs import input_fields
from schema.relay import uuid_of
from schema.supply.inputs import (
    CurbZoneInput,
    LaneInput,
    LotInput,
    SpaceInput,
    UpdateFacilityInput,
    UpdateLaneInput,
    UpdateSpaceInput,
)
from schema.supply.types import Facility, Lane, Space


@strawberry.type
class CreateSpacesPayload:
    count: int
    spaces: list[Space]


async def _write(info: Info, action: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    async with info.context.write() as session:
        return await action(session, info.context.principal, *args, **kwargs)


def _items(inputs: list[Any]) -> list[dict[str, Any]]:
    return [input_fields(item, f"input[{index}]") for index, item in enumerate(inputs)]


@strawberry.type
class SupplyMutation:
    @strawberry.mutation(description="Create an off-street lot.")
    async def create_lot(self, info: Info, input: LotInput) -> Facility:
        rows = await _write(info, service.create_facilities, "lot", [input_fields(input)], bulk=False)
        return Facility.from_row(rows[0])

    @strawberry.mutation(description="Create up to 10,000 lots in one transaction; all or nothing.")
    async def create_lots(self, info: Info, input: list[LotInput]) -> list[Facility]:
        rows = await _write(info, service.create_facilities, "lot", _items(input))
        return [Facility.from_row(row) for row in rows]

    @strawberry.mutation(description="Create an on-street curb zone.")
    async def create_curb_zone(self, info: Info, input: CurbZoneInput) -> Facility:
        rows = await _write(info, service.create_facilities, "curb_zone", [input_fields(input)], bulk=False)
        return Facility.from_row(rows[0])

    @strawberry.mutation(description="Create up to 10,000 curb zones in one transaction; all or nothing.")
    async def create_curb_zones(self, info: Info, input: list[CurbZoneInput]) -> list[Facility]:
        rows = await _write(info, service.create_facilities, "curb_zone", _items(input))
        return [Facility.from_row(row) for row in rows]

    @strawberry.mutation
    async def update_facility(self, info: Info, id: relay.GlobalID, input: UpdateFacilityInput) -> Facility:
        row = await _write(info, service.update_facility, uuid_of(id, "Facility"), input_fields(input))
        return Facility.from_row(row)

    @strawberry.mutation(description="Retire a facility with its lanes and spaces (kept for history).")
    async def retire_facility(self, info: Info, id: relay.GlobalID) -> Facility:
        return Facility.from_row(await _write(info, service.retire_facility, uuid_of(id, "Facility")))

    @strawberry.mutation
    async def create_lane(self, info: Info, input: LaneInput) -> Lane:
        rows = await _write(info, service.create_lanes, [input_fields(input)], bulk=False)
        return Lane.from_row(rows[0])

    @strawberry.mutation(description="Create many lanes in one transaction; all or nothing.")
    async def create_lanes(self, info: Info, input: list[LaneInput]) -> list[Lane]:
        return [Lane.from_row(row) for row in await _write(info, service.create_lanes, _items(input))]

    @strawberry.mutation
    async def update_lane(self, info: Info, id: relay.GlobalID, input: UpdateLaneInput) -> Lane:
        return Lane.from_row(await _write(info, service.update_lane, uuid_of(id, "Lane"), input_fields(input)))

    @strawberry.mutation
    async def retire_lane(self, info: Info, id: relay.GlobalID) -> Lane:
        return Lane.from_row(await _write(info, service.retire_lane, uuid_of(id, "Lane")))

    @strawberry.mutation
    async def create_space(self, info: Info, input: SpaceInput) -> Space:
        rows = await _write(info, service.create_spaces, [input_fields(input)], bulk=False)
        return Space.from_row(rows[0], info.context)

    @strawberry.mutation(description="Create up to 10,000 spaces in one transaction; all or nothing.")
    async def create_spaces(self, info: Info, input: list[SpaceInput]) -> CreateSpacesPayload:
        rows = await _write(info, service.create_spaces, _items(input))
        return CreateSpacesPayload(count=len(rows), spaces=[Space.from_row(row, info.context) for row in rows])

    @strawberry.mutation
    async def update_space(self, info: Info, id: relay.GlobalID, input: UpdateSpaceInput) -> Space:
        row = await _write(info, service.update_space, uuid_of(id, "Space"), input_fields(input))
        return Space.from_row(row, info.context)

    @strawberry.mutation(description="Retire spaces (kept for history); all or nothing.")
    async def retire_spaces(self, info: Info, ids: list[relay.GlobalID]) -> list[Space]:
        space_ids = [uuid_of(space_id, "Space", "ids") for space_id in ids]
        return [Space.from_row(row, info.context) for row in await _write(info, service.retire_spaces, space_ids)]
