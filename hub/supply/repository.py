"""All SQL of the supply domain. Every function filters by tenant explicitly when given one; row-level
security is the second wall behind these filters."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import ARRAY, Select, and_, bindparam, func, insert, literal, literal_column, select, tuple_, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from geo import sql as geo_sql
from hub.db import driver_of
from hub.supply.models import Device, Facility, Lane, Space

facilities = Facility.__table__
lanes = Lane.__table__
spaces = Space.__table__
devices = Device.__table__

Row = Mapping[str, Any]

# Geometry columns are returned as WKB bytes; GraphQL converts them to GeoJSON only when asked for.
FACILITY_COLUMNS = [
    c if c.name not in ("geom", "entrances") else func.ST_AsBinary(c).label(c.name) for c in facilities.columns
]
LANE_COLUMNS = [c if c.name != "location" else func.ST_AsBinary(c).label(c.name) for c in lanes.columns]
SPACE_COLUMNS = [c if c.name not in ("geom", "location") else func.ST_AsBinary(c).label(c.name) for c in spaces.columns]
DEVICE_COLUMNS = list(devices.columns)

_TABLES = {
    "facilities": (facilities, FACILITY_COLUMNS),
    "lanes": (lanes, LANE_COLUMNS),
    "spaces": (spaces, SPACE_COLUMNS),
    "devices": (devices, DEVICE_COLUMNS),
}

# Find-a-space. One statement: the nearest live spaces within the radius (KNN on the geography GiST
# index), each with its facility and operator joined, so a search costs one round trip. KNN orders by sphere
# distance; the final order is by spheroid distance (what ST_Distance reports), so the inner query takes a
# margin of extra candidates before re-ordering.
# The radius is tested outside the index scan on purpose: under forced row-level security PostgreSQL only
# turns leakproof predicates into index conditions, and ST_DWithin is not leakproof, so inside it would
# make the planner scan every space. The ordered scan with a limit stays on the GiST index whatever RLS
# does; the column filters inside are leakproof comparisons. Positional parameters let asyncpg run the identical
# text directly (the benchmark's baseline):
#   $1 lon, $2 lat, $3 radius metres, $4 limit, $5 vacant only, $6 confirmed after (stale cut-off),
#   $7 EV charger (null = any), $8 accessible (null = any), $9 facility kind (null = any),
#   $10 tenant (null = every tenant the RLS scope shows)
# The priced variant (SPACES_NEAR_PRICED_SQL) adds each space's facility tariff version in effect at
#   $11 the planned stay's start
# as `tariff_id` (null: no tariff): one index probe per candidate, in the same statement; the pricing itself is
# pure Python on the candidates (hub.pricing.service.stay_prices), once per version.
_SPACES_NEAR_TEMPLATE = """
SELECT s.tenant_id, s.id, s.facility_id, s.facility_kind, s.code, ST_AsBinary(s.geom) AS geom,
       ST_AsBinary(s.location) AS location, s.level, s.ev_charger, s.accessible, s.size_class, s.covered,
       s.shared, s.status, s.status_confirmed_at, s.created_at, s.updated_at, s.retired_at,
       ST_Distance(s.location, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography) AS distance_m,
       f.id AS f_id, f.tenant_id AS f_tenant_id, f.kind AS f_kind, f.name AS f_name, f.code AS f_code,
       ST_AsBinary(f.geom) AS f_geom, f.time_zone AS f_time_zone, f.address AS f_address,
       f.capacity AS f_capacity, f.levels AS f_levels, f.opening_hours AS f_opening_hours,
       f.max_vehicle_height_cm AS f_max_vehicle_height_cm, ST_AsBinary(f.entrances) AS f_entrances,
       f.street_name AS f_street_name, f.side AS f_side, f.parking_angle AS f_parking_angle,
       f.created_at AS f_created_at, f.updated_at AS f_updated_at, f.retired_at AS f_retired_at,
       t.id AS t_id, t.slug AS t_slug, t.name AS t_name, t.time_zone AS t_time_zone, t.currency AS t_currency,
       t.platform_fee_bps AS t_platform_fee_bps, ST_AsBinary(t.service_area) AS t_service_area,
       t.created_at AS t_created_at, t.updated_at AS t_updated_at{tariff_column}
FROM (
    SELECT * FROM spaces
    WHERE retired_at IS NULL
      AND ($5::boolean IS NOT TRUE OR (status = 'vacant' AND status_confirmed_at >= $6))
      AND ($7::boolean IS NULL OR ev_charger = $7)
      AND ($8::boolean IS NULL OR accessible = $8)
      AND ($9::text IS NULL OR facility_kind = $9)
      AND ($10::uuid IS NULL OR tenant_id = $10)
    ORDER BY location <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography
    LIMIT $4 + 16
) s
JOIN facilities f ON f.tenant_id = s.tenant_id AND f.id = s.facility_id
JOIN tenants t ON t.id = s.tenant_id{tariff_join}
WHERE ST_DWithin(s.location, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, $3)
ORDER BY distance_m, s.id
LIMIT $4
"""
_TARIFF_JOIN = """
LEFT JOIN LATERAL (
    SELECT v.id FROM tariffs v
    WHERE v.tenant_id = s.tenant_id AND v.facility_id = s.facility_id AND v.valid_from <= $11::timestamptz
    ORDER BY v.valid_from DESC, v.version DESC
    LIMIT 1
) tv ON true"""
SPACES_NEAR_SQL = _SPACES_NEAR_TEMPLATE.format(tariff_column="", tariff_join="")
SPACES_NEAR_PRICED_SQL = _SPACES_NEAR_TEMPLATE.format(
    tariff_column=",\n       tv.id AS tariff_id", tariff_join=_TARIFF_JOIN
)


def _near_args(
    lon: float,
    lat: float,
    radius_m: float,
    first: int,
    vacant_only: bool,
    confirmed_after: datetime | None,
    ev_charger: bool | None,
    accessible: bool | None,
    facility_kind: str | None,
    tenant_id: uuid.UUID | None,
    priced_at: datetime | None = None,
) -> tuple:
    args = (lon, lat, radius_m, first, vacant_only, confirmed_after, ev_charger, accessible, facility_kind, tenant_id)
    return args if priced_at is None else (*args, priced_at)


async def spaces_near(session: AsyncSession, **criteria: Any) -> Sequence[Row]:
    """Nearest live spaces; see SPACES_NEAR_SQL. Criteria are the keyword arguments of `_near_args`; with
    `priced_at`, each row also has the `tariff_id` of its facility's version in effect then.

    The hot path of the API: it runs on the session's own asyncpg connection, inside the session's
    transaction and RLS scope, skipping SQLAlchemy's result layer (which cost about as much again as the
    query itself). asyncpg records are read by column name like mappings."""
    driver = await driver_of(session)
    args = _near_args(**criteria)
    return await driver.fetch(SPACES_NEAR_SQL if len(args) == 10 else SPACES_NEAR_PRICED_SQL, *args)


async def spaces_near_direct(
    conn: asyncpg.Connection, *, lon: float, lat: float, radius_m: float, first: int, **criteria: Any
) -> list[asyncpg.Record]:
    """The identical search through a bare asyncpg connection (the benchmark's baseline)."""
    defaults: dict[str, Any] = {
        "vacant_only": False,
        "confirmed_after": None,
        "ev_charger": None,
        "accessible": None,
        "facility_kind": None,
        "tenant_id": None,
    }
    defaults.update(criteria)
    return await conn.fetch(SPACES_NEAR_SQL, *_near_args(lon, lat, radius_m, first, **defaults))


# ---------------------------------------------------------------------------------------------- reads


def _tenant_filter(table: Any, tenant_id: uuid.UUID | None) -> ColumnElement[bool]:
    return table.c.tenant_id == tenant_id if tenant_id is not None else literal_column("true")


def _live(table: Any, include_retired: bool) -> ColumnElement[bool]:
    return literal_column("true") if include_retired else table.c.retired_at.is_(None)


async def facilities_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None) -> list[Row]:
    stmt = select(*FACILITY_COLUMNS).where(facilities.c.id.in_(ids), _tenant_filter(facilities, tenant_id))
    return list((await session.execute(stmt)).mappings().all())


async def spaces_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None) -> list[Row]:
    stmt = select(*SPACE_COLUMNS).where(spaces.c.id.in_(ids), _tenant_filter(spaces, tenant_id))
    return list((await session.execute(stmt)).mappings().all())


async def lanes_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None) -> list[Row]:
    stmt = select(*LANE_COLUMNS).where(lanes.c.id.in_(ids), _tenant_filter(lanes, tenant_id))
    return list((await session.execute(stmt)).mappings().all())


async def lanes_of_facilities(
    session: AsyncSession, facility_ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None
) -> list[Row]:
    stmt = (
        select(*LANE_COLUMNS)
        .where(lanes.c.facility_id.in_(facility_ids), lanes.c.retired_at.is_(None), _tenant_filter(lanes, tenant_id))
        .order_by(lanes.c.name)
    )
    return list((await session.execute(stmt)).mappings().all())


def _keyset(stmt: Select, sort: ColumnElement, table: Any, after: tuple[str, uuid.UUID] | None, first: int) -> Select:
    if after is not None:
        # Bound values: a ":name" inside literal_column is sent to the server as text and never bound.
        stmt = stmt.where(
            tuple_(sort, table.c.id) > tuple_(literal(after[0], sort.type), literal(after[1], table.c.id.type))
        )
    return stmt.order_by(sort, table.c.id).limit(first + 1)


async def facilities_page(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID | None,
    first: int,
    after: tuple[str, uuid.UUID] | None = None,
    kind: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    within: Any = None,
    include_retired: bool = False,
) -> list[Row]:
    """One page of facilities by name, plus one row more when a next page exists."""
    stmt = select(*FACILITY_COLUMNS).where(_tenant_filter(facilities, tenant_id), _live(facilities, include_retired))
    if kind is not None:
        stmt = stmt.where(facilities.c.kind == kind)
    if bbox is not None:
        stmt = stmt.where(geo_sql.in_bbox(facilities.c.geom, *bbox))
    if within is not None:
        stmt = stmt.where(geo_sql.in_polygon(facilities.c.geom, within))
    stmt = _keyset(stmt, facilities.c.name, facilities, after, first)
    return list((await session.execute(stmt)).mappings().all())


async def spaces_page(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID | None,
    first: int,
    after: tuple[str, uuid.UUID] | None = None,
    facility_ids: Sequence[uuid.UUID] | None = None,
    code: str | None = None,
    include_retired: bool = False,
) -> list[Row]:
    """One page of spaces by code, plus one row more when a next page exists."""
    stmt = select(*SPACE_COLUMNS).where(_tenant_filter(spaces, tenant_id), _live(spaces, include_retired))
    if facility_ids is not None:
        stmt = stmt.where(spaces.c.facility_id.in_(facility_ids))
    if code is not None:
        stmt = stmt.where(spaces.c.code == code)
    stmt = _keyset(stmt, spaces.c.code, spaces, after, first)
    return list((await session.execute(stmt)).mappings().all())


async def live_codes_taken(session: AsyncSession, tenant_id: uuid.UUID, codes: Sequence[str]) -> list[str]:
    stmt = select(spaces.c.code).where(
        spaces.c.tenant_id == tenant_id, spaces.c.code.in_(codes), spaces.c.retired_at.is_(None)
    )
    return list((await session.execute(stmt)).scalars().all())


async def live_facility_codes_taken(
    session: AsyncSession, tenant_id: uuid.UUID, codes: Sequence[str], except_id: uuid.UUID | None = None
) -> list[str]:
    stmt = select(facilities.c.code).where(
        facilities.c.tenant_id == tenant_id, facilities.c.code.in_(codes), facilities.c.retired_at.is_(None)
    )
    if except_id is not None:
        stmt = stmt.where(facilities.c.id != except_id)
    return list((await session.execute(stmt)).scalars().all())


# -------------------------------------------------------------------------------------------- writes


async def insert_rows(session: AsyncSession, table_name: str, rows: list[dict[str, Any]]) -> list[Row]:
    """Insert rows in one batch and return them as stored, in the order given.

    Ids are made here so the batch needs no RETURNING: with geometry bind expressions, RETURNING makes
    SQLAlchemy send one statement per row, while a plain executemany is pipelined."""
    table, columns = _TABLES[table_name]
    if not rows:
        return []
    ids = [row.setdefault("id", uuid.uuid4()) for row in rows]
    await session.execute(insert(table), rows)
    stored = (await session.execute(select(*columns).where(table.c.id == func.any(ids_param(ids))))).mappings().all()
    by_id = {row["id"]: row for row in stored}
    return [by_id[row_id] for row_id in ids]


def ids_param(ids: Sequence[uuid.UUID]) -> Any:
    return bindparam("ids", list(ids), type_=ARRAY(PG_UUID(as_uuid=True)))


async def update_row(
    session: AsyncSession, table_name: str, tenant_id: uuid.UUID, row_id: uuid.UUID, values: dict[str, Any]
) -> Row | None:
    table, columns = _TABLES[table_name]
    stmt = (
        update(table)
        .where(table.c.tenant_id == tenant_id, table.c.id == row_id, table.c.retired_at.is_(None))
        .values(**values, updated_at=func.now())
        .returning(*columns)
    )
    return (await session.execute(stmt)).mappings().first()


async def retire_spaces(
    session: AsyncSession, tenant_id: uuid.UUID, space_ids: Sequence[uuid.UUID], at: datetime
) -> list[Row]:
    """Retire the live spaces among `space_ids` in one statement; returns the ones retired."""
    stmt = (
        update(spaces)
        .where(
            spaces.c.tenant_id == tenant_id,
            spaces.c.id == func.any(ids_param(space_ids)),
            spaces.c.retired_at.is_(None),
        )
        .values(retired_at=at, updated_at=at)
        .returning(*SPACE_COLUMNS)
    )
    return list((await session.execute(stmt)).mappings().all())


async def retire_facility_children(
    session: AsyncSession, tenant_id: uuid.UUID, facility_id: uuid.UUID, at: datetime
) -> list[uuid.UUID]:
    """Retire the facility's live lanes, spaces and devices; returns the ids of the spaces retired."""
    retired_spaces: list[uuid.UUID] = []
    for table in (lanes, spaces, devices):
        result = await session.execute(
            update(table)
            .where(table.c.tenant_id == tenant_id, table.c.facility_id == facility_id, table.c.retired_at.is_(None))
            .values(retired_at=at, updated_at=at)
            .returning(table.c.id)
        )
        if table is spaces:
            retired_spaces = list(result.scalars())
    return retired_spaces


async def retire_bound_devices(
    session: AsyncSession, tenant_id: uuid.UUID, at: datetime, column: str, ids: Sequence[uuid.UUID]
) -> None:
    """Retire the live devices bound (by `column`: space_id or lane_id) to any of `ids`."""
    if ids:
        await session.execute(
            update(devices)
            .where(
                devices.c.tenant_id == tenant_id,
                devices.c[column] == func.any(ids_param(ids)),
                devices.c.retired_at.is_(None),
            )
            .values(retired_at=at, updated_at=at)
        )


# ----------------------------------------------------------------------------------------- occupancy


def _occupancy_columns(confirmed_after: datetime) -> list[ColumnElement]:
    fresh = spaces.c.status_confirmed_at >= confirmed_after
    return [
        func.count().label("total"),
        func.count().filter(and_(spaces.c.status == "vacant", fresh)).label("vacant"),
        func.count().filter(and_(spaces.c.status == "occupied", fresh)).label("occupied"),
        func.count().filter(spaces.c.status == "reserved").label("reserved"),
        func.count().filter(spaces.c.status == "out_of_service").label("out_of_service"),
    ]


async def occupancy_by_facility(
    session: AsyncSession, facility_ids: Sequence[uuid.UUID], confirmed_after: datetime, tenant_id: uuid.UUID | None
) -> list[Row]:
    stmt = (
        select(spaces.c.facility_id, *_occupancy_columns(confirmed_after))
        .where(spaces.c.facility_id.in_(facility_ids), spaces.c.retired_at.is_(None), _tenant_filter(spaces, tenant_id))
        .group_by(spaces.c.facility_id)
    )
    return list((await session.execute(stmt)).mappings().all())


async def occupancy_by_tenant(
    session: AsyncSession, confirmed_after: datetime, tenant_id: uuid.UUID | None
) -> list[Row]:
    stmt = (
        select(spaces.c.tenant_id, *_occupancy_columns(confirmed_after))
        .where(spaces.c.retired_at.is_(None), _tenant_filter(spaces, tenant_id))
        .group_by(spaces.c.tenant_id)
        .order_by(spaces.c.tenant_id)
    )
    return list((await session.execute(stmt)).mappings().all())


async def occupancy_in_area(
    session: AsyncSession, area: Any, confirmed_after: datetime, tenant_id: uuid.UUID | None
) -> Row:
    stmt = select(*_occupancy_columns(confirmed_after)).where(
        spaces.c.retired_at.is_(None),
        func.ST_Covers(func.geography(geo_sql.shape_param(area)), spaces.c.location),
        _tenant_filter(spaces, tenant_id),
    )
    return (await session.execute(stmt)).mappings().one()


# ------------------------------------------------------------------------------------------------ devices


async def device_health_by_tenant(session: AsyncSession, tenant_id: uuid.UUID | None) -> list[Row]:
    """{tenant_id, total, offline}: live devices per tenant, and how many are silent past their interval."""
    stmt = (
        select(
            devices.c.tenant_id,
            func.count().label("total"),
            func.count().filter(devices.c.offline_since.is_not(None)).label("offline"),
        )
        .where(devices.c.retired_at.is_(None), _tenant_filter(devices, tenant_id))
        .group_by(devices.c.tenant_id)
    )
    return list((await session.execute(stmt)).mappings().all())


async def devices_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID | None) -> list[Row]:
    stmt = select(*DEVICE_COLUMNS).where(devices.c.id.in_(ids), _tenant_filter(devices, tenant_id))
    return list((await session.execute(stmt)).mappings().all())


async def devices_page(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID | None,
    first: int,
    after: tuple[str, uuid.UUID] | None = None,
    facility_ids: Sequence[uuid.UUID] | None = None,
    kind: str | None = None,
) -> list[Row]:
    """One page of live devices by external id, plus one row more when a next page exists."""
    stmt = select(*DEVICE_COLUMNS).where(_tenant_filter(devices, tenant_id), devices.c.retired_at.is_(None))
    if facility_ids is not None:
        stmt = stmt.where(devices.c.facility_id.in_(facility_ids))
    if kind is not None:
        stmt = stmt.where(devices.c.kind == kind)
    stmt = _keyset(stmt, devices.c.external_id, devices, after, first)
    return list((await session.execute(stmt)).mappings().all())


async def live_space_by_code(session: AsyncSession, tenant_id: uuid.UUID, code: str) -> Row | None:
    stmt = select(*SPACE_COLUMNS).where(
        spaces.c.tenant_id == tenant_id, spaces.c.code == code, spaces.c.retired_at.is_(None)
    )
    return (await session.execute(stmt)).mappings().first()


async def insert_device(session: AsyncSession, values: dict[str, Any]) -> Row | None:
    """The new device, or None when a live device of the tenant already has its external id. ON CONFLICT
    rather than a caught error, so a duplicate leaves the caller's transaction usable."""
    stmt = (
        pg_insert(devices)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=[devices.c.tenant_id, devices.c.external_id], index_where=devices.c.retired_at.is_(None)
        )
        .returning(*DEVICE_COLUMNS)
    )
    return (await session.execute(stmt)).mappings().first()
