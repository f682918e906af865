"""All SQL of tariffs. Every function filters by tenant explicitly when given one; row-level security is the
second wall behind these filters (and what limits a driver's or anonymous caller's reads)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Select, bindparam, func, insert, literal_column, select, text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from hub.pricing.models import TariffVersion
from hub.supply.models import Facility
from tenants.models import Tenant

Row = Mapping[str, Any]

tariffs = TariffVersion.__table__
facilities = Facility.__table__
tenants = Tenant.__table__

# Every column but the definition: enough to list and pick versions without moving their JSON.
HEADER_COLUMNS = [column for column in tariffs.columns if column.name != "definition"]


def _tenant_filter(table: Any, tenant_id: uuid.UUID | None) -> ColumnElement[bool]:
    return table.c.tenant_id == tenant_id if tenant_id is not None else literal_column("true")


def _ids(name: str, ids: Sequence[uuid.UUID]) -> Any:
    return bindparam(name, list(ids), type_=ARRAY(PG_UUID(as_uuid=True)))


def _newest_first(stmt: Select) -> Select:
    return stmt.order_by(tariffs.c.valid_from.desc(), tariffs.c.version.desc())


# ---------------------------------------------------------------------------------------------- reads


async def facility(
    session: AsyncSession, facility_id: uuid.UUID, tenant_id: uuid.UUID | None, *, live_only: bool = True
) -> Row | None:
    """{id, tenant_id, kind, time_zone, currency} of a facility the scope may see (a live one by default)."""
    stmt = (
        select(
            facilities.c.id,
            facilities.c.tenant_id,
            facilities.c.kind,
            facilities.c.time_zone,
            tenants.c.currency,
        )
        .join(tenants, tenants.c.id == facilities.c.tenant_id)
        .where(facilities.c.id == facility_id, _tenant_filter(facilities, tenant_id))
    )
    if live_only:
        stmt = stmt.where(facilities.c.retired_at.is_(None))
    return (await session.execute(stmt)).mappings().first()


async def version_at(
    session: AsyncSession, facility_id: uuid.UUID, at: datetime, tenant_id: uuid.UUID | None, *, definition: bool
) -> Row | None:
    """The facility's version in effect at `at`: the latest valid_from at or before it (ties: the later
    version). With `definition`, the row carries its JSON."""
    columns = list(tariffs.columns) if definition else HEADER_COLUMNS
    stmt = _newest_first(
        select(*columns).where(
            tariffs.c.facility_id == facility_id, tariffs.c.valid_from <= at, _tenant_filter(tariffs, tenant_id)
        )
    ).limit(1)
    return (await session.execute(stmt)).mappings().first()


async def versions_at(
    session: AsyncSession, facility_ids: Sequence[uuid.UUID], at: datetime, tenant_id: uuid.UUID | None
) -> list[Row]:
    """For each facility that has one, its version in effect at `at`, with its definition."""
    stmt = (
        select(*tariffs.columns)
        .ext(distinct_on(tariffs.c.facility_id))
        .where(
            tariffs.c.facility_id == func.any(_ids("facility_ids", facility_ids)),
            tariffs.c.valid_from <= at,
            _tenant_filter(tariffs, tenant_id),
        )
        .order_by(tariffs.c.facility_id, tariffs.c.valid_from.desc(), tariffs.c.version.desc())
    )
    return list((await session.execute(stmt)).mappings().all())


async def versions_of_facility(session: AsyncSession, facility_id: uuid.UUID, tenant_id: uuid.UUID | None) -> list[Row]:
    """Every version of the facility, newest first (scheduled ones, then the current one, then the past)."""
    stmt = _newest_first(
        select(*tariffs.columns).where(tariffs.c.facility_id == facility_id, _tenant_filter(tariffs, tenant_id))
    )
    return list((await session.execute(stmt)).mappings().all())


async def versions_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None) -> list[Row]:
    if not ids:
        return []
    stmt = select(*tariffs.columns).where(
        tariffs.c.id == func.any(_ids("ids", ids)), _tenant_filter(tariffs, tenant_id)
    )
    return list((await session.execute(stmt)).mappings().all())


async def last_version(session: AsyncSession, tenant_id: uuid.UUID, facility_id: uuid.UUID) -> Row | None:
    """The facility's highest version (also its latest valid_from: versions never start before the one before)."""
    stmt = (
        select(*HEADER_COLUMNS)
        .where(tariffs.c.tenant_id == tenant_id, tariffs.c.facility_id == facility_id)
        .order_by(tariffs.c.version.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).mappings().first()


# ----------------------------------------------------------------------------------------------- writes


async def lock_facility_tariffs(session: AsyncSession, tenant_id: uuid.UUID, facility_id: uuid.UUID) -> None:
    """Serialize new versions of one facility until the transaction ends, so two concurrent calls cannot both
    pick the same version number or both pass the back-dating check against a stale last version."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"tariff:{tenant_id}:{facility_id}"}
    )


async def insert_version(session: AsyncSession, values: dict[str, Any]) -> Row:
    return (await session.execute(insert(tariffs).values(**values).returning(*tariffs.columns))).mappings().one()
