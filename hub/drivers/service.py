"""Drivers' use cases: their vehicles (the plates that "leave first, pay later" will bind)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from hub.drivers import repository, rules
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.principal import Principal


def require_driver(principal: Principal) -> uuid.UUID:
    if principal.kind == "driver" and principal.user_id is not None:
        return principal.user_id
    raise Forbidden("this needs a driver's token", required_role="driver")


async def my_vehicles(session: AsyncSession, principal: Principal) -> list[repository.Row]:
    return await repository.vehicles_of(session, require_driver(principal))


async def vehicles_by_ids(session: AsyncSession, principal: Principal, ids: list[uuid.UUID]) -> list[repository.Row]:
    if principal.kind != "driver" or principal.user_id is None:
        return []
    return await repository.vehicles_by_ids(session, ids, principal.user_id)


async def add_vehicle(
    session: AsyncSession, principal: Principal, plate: str, nickname: str | None = None
) -> repository.Row:
    driver_id = require_driver(principal)
    normalized = rules.normalize_plate(plate)
    if nickname is not None and len(nickname) > 60:
        raise InvalidInput("nickname: at most 60 characters", field="nickname")
    row = await repository.insert_vehicle(session, driver_id, normalized, nickname)
    if row is None:
        raise Conflict(f"you already have a vehicle with plate {normalized}", code="PLATE_TAKEN", field="plate")
    return row


async def remove_vehicle(session: AsyncSession, principal: Principal, vehicle_id: uuid.UUID) -> repository.Row:
    row = await repository.delete_vehicle(session, require_driver(principal), vehicle_id)
    if row is None:
        raise NotFound("no vehicle of yours has this id", field="id")
    return row
