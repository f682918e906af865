"""SQL of drivers' own rows. Every query filters by driver explicitly; RLS filters again."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from hub.drivers.models import Vehicle

vehicles = Vehicle.__table__
Row = Mapping[str, Any]


async def vehicles_of(session: AsyncSession, driver_id: uuid.UUID) -> list[Row]:
    stmt = select(vehicles).where(vehicles.c.driver_id == driver_id).order_by(vehicles.c.created_at, vehicles.c.id)
    return list((await session.execute(stmt)).mappings().all())


async def vehicles_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], driver_id: uuid.UUID) -> list[Row]:
    stmt = select(vehicles).where(vehicles.c.id.in_(ids), vehicles.c.driver_id == driver_id)
    return list((await session.execute(stmt)).mappings().all())


async def insert_vehicle(session: AsyncSession, driver_id: uuid.UUID, plate: str, nickname: str | None) -> Row | None:
    """The new vehicle, or None when the driver already has this plate."""
    stmt = (
        pg_insert(vehicles)
        .values(driver_id=driver_id, plate=plate, nickname=nickname)
        .on_conflict_do_nothing(index_elements=["driver_id", "plate"])
        .returning(vehicles)
    )
    return (await session.execute(stmt)).mappings().first()


async def delete_vehicle(session: AsyncSession, driver_id: uuid.UUID, vehicle_id: uuid.UUID) -> Row | None:
    stmt = delete(vehicles).where(vehicles.c.id == vehicle_id, vehicles.c.driver_id == driver_id).returning(vehicles)
    return (await session.execute(stmt)).mappings().first()
