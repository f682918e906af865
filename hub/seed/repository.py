"""Loading the demo city into PostgreSQL with COPY, as the owner, in one transaction.

The tables force row-level security, so the loading transaction takes the platform scope. PostgreSQL
refuses `COPY FROM` into a table whose policies apply to the caller; a role that bypasses row-level
security (a superuser, or BYPASSRLS) copies straight into the tables, any other owner copies into a
temporary staging table and moves the rows with one `INSERT ... SELECT` per batch, which the policies
check. Either way nothing is visible until the whole city has loaded, and a failure leaves nothing.

For large loads the secondary indexes of `spaces` are dropped inside the transaction and rebuilt from
their own definitions at the end: one sorted build is far cheaper than a million index insertions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar

import asyncpg

from hub.config import asyncpg_dsn
from hub.seed.demo import CityPlan, FacilityRow, LaneRow, SpaceRow, TenantRow

# Above this many spaces, rebuilding the secondary indexes once beats maintaining them row by row.
REBUILD_INDEXES_FROM_SPACES = 200_000
FACILITY_BATCH = 10_000
SPACE_BATCH = 50_000

Progress = Callable[[str, int], None]
T = TypeVar("T")


@dataclass(frozen=True)
class LoadCounts:
    tenants: int
    facilities: int
    lanes: int
    spaces: int


async def connect(database_url: str) -> asyncpg.Connection:
    """An owner connection whose geometry and geography values travel as EWKB bytes."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    postgis_schema = await conn.fetchval(
        "SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = 'geometry'"
    )
    if postgis_schema is None:
        await conn.close()
        raise RuntimeError("PostGIS is not installed in this database; run `parkhub migrate` first")
    for type_name in ("geometry", "geography"):
        # PostGIS's binary input functions read (E)WKB, which is what the generator produces.
        await conn.set_type_codec(type_name, schema=postgis_schema, encoder=bytes, decoder=bytes, format="binary")
    return conn


async def set_platform_scope(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT set_config('app.role', 'platform', true)")


async def count_tenants(conn: asyncpg.Connection) -> int:
    async with conn.transaction():
        await set_platform_scope(conn)
        return int(await conn.fetchval("SELECT count(*) FROM tenants"))


async def count_spaces(conn: asyncpg.Connection) -> int:
    async with conn.transaction():
        await set_platform_scope(conn)
        return int(await conn.fetchval("SELECT count(*) FROM spaces"))


async def bypasses_row_security(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"))


class _IndexDefinition(NamedTuple):
    name: str
    definition: str


async def _secondary_indexes(conn: asyncpg.Connection, table: str) -> list[_IndexDefinition]:
    """Indexes of `table` that no constraint owns (the primary key stays: it guards the load)."""
    rows = await conn.fetch(
        """
        SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = $1::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        ORDER BY c.relname
        """,
        table,
    )
    return [_IndexDefinition(row["name"], row["definition"]) for row in rows]


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Copier:
    """Copies records into one table, directly or through a staging table."""

    def __init__(self, conn: asyncpg.Connection, table: str, columns: Sequence[str], *, staged: bool) -> None:
        self.conn = conn
        self.table = table
        self.columns = list(columns)
        self.staged = staged
        self.staging = f"seed_staging_{table}"
        self._staging_ready = False

    async def copy(self, records: Iterable[Sequence[object]]) -> None:
        if not self.staged:
            await self.conn.copy_records_to_table(self.table, records=records, columns=self.columns)
            return
        if not self._staging_ready:
            await self.conn.execute(
                f"CREATE TEMP TABLE {self.staging} (LIKE {self.table} INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            self._staging_ready = True
        await self.conn.copy_records_to_table(self.staging, records=records, columns=self.columns)
        column_list = ", ".join(self.columns)
        await self.conn.execute(
            f"INSERT INTO {self.table} ({column_list}) SELECT {column_list} FROM {self.staging}; "
            f"TRUNCATE {self.staging}"
        )


def _facility_record(row: FacilityRow) -> tuple[object, ...]:
    # asyncpg's binary jsonb codec takes the JSON text.
    opening_hours = None if row.opening_hours is None else json.dumps(row.opening_hours)
    return tuple(row._replace(opening_hours=opening_hours))  # type: ignore[arg-type]


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def load_city(
    conn: asyncpg.Connection,
    plan: CityPlan,
    now: datetime,
    *,
    on_progress: Progress | None = None,
    staged: bool | None = None,
    rebuild_indexes: bool | None = None,
) -> LoadCounts:
    """Write the whole city in one transaction. `staged` and `rebuild_indexes` default to what suits the
    connection and the size; tests set them to exercise each path."""
    progress: Progress = on_progress or (lambda _stage, _rows: None)
    if staged is None:
        staged = not await bypasses_row_security(conn)
    if rebuild_indexes is None:
        rebuild_indexes = plan.space_count >= REBUILD_INDEXES_FROM_SPACES
    lanes = plan.lanes
    space_total = 0
    async with conn.transaction():
        await set_platform_scope(conn)
        # Index builds at the end of a large load sort in memory instead of spilling to disk.
        await conn.execute("SET LOCAL maintenance_work_mem = '512MB'")

        await _Copier(conn, "tenants", TenantRow._fields, staged=staged).copy(plan.tenants)
        progress("tenants", len(plan.tenants))

        facility_copier = _Copier(conn, "facilities", FacilityRow._fields, staged=staged)
        for batch in _batches(plan.facilities, FACILITY_BATCH):
            await facility_copier.copy([_facility_record(facility.row) for facility in batch])
            progress("facilities", len(batch))

        await _Copier(conn, "lanes", LaneRow._fields, staged=staged).copy(lanes)
        progress("lanes", len(lanes))

        dropped: list[_IndexDefinition] = []
        if rebuild_indexes:
            dropped = await _secondary_indexes(conn, "spaces")
            for index in dropped:
                await conn.execute(f"DROP INDEX {_quote_ident(index.name)}")

        space_copier = _Copier(conn, "spaces", SpaceRow._fields, staged=staged)
        for batch in plan.iter_spaces(now, batch_size=SPACE_BATCH):
            await space_copier.copy(batch)
            space_total += len(batch)
            progress("spaces", len(batch))

        for index in dropped:
            await conn.execute(index.definition)
            progress("indexes", 1)
    return LoadCounts(len(plan.tenants), len(plan.facilities), len(lanes), space_total)


async def analyze(conn: asyncpg.Connection) -> None:
    """Fresh planner statistics, so the first searches after a load use the spatial index."""
    for table in ("tenants", "facilities", "lanes", "spaces"):
        await conn.execute(f"ANALYZE {table}")
