"""Alembic environment (async). Migrations run as the owner role from DATABASE_URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import hub.models
from hub.config import get_settings, sqlalchemy_url

config = context.config
target_metadata = hub.models.Base.metadata

# Tables PostGIS and its extras own; autogenerate must never propose dropping them.
POSTGIS_TABLES = {
    "spatial_ref_sys",
    "geography_columns",
    "geometry_columns",
    "raster_columns",
    "raster_overviews",
}
POSTGIS_SCHEMAS = {"tiger", "tiger_data", "topology"}


def include_object(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
    if type_ == "table" and (name in POSTGIS_TABLES or getattr(obj, "schema", None) in POSTGIS_SCHEMAS):
        return False
    # GeoAlchemy2 spatial indexes are declared explicitly in the models; skip reflected ones of PostGIS.
    return not (type_ == "index" and reflected and name.startswith("idx_") and compare_to is None)


def database_url() -> str:
    return config.attributes.get("database_url") or sqlalchemy_url(get_settings().database_url)


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(database_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
