"""Create the database, PostGIS, the application role and the schema: what `make run` and `make test`
do before anything else, safe to repeat."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

from hub.config import Settings, asyncpg_dsn, database_name, sqlalchemy_url, user_name, with_database

ROOT = Path(__file__).resolve().parent.parent


class SetupError(RuntimeError):
    """Set-up failed in a way a person can fix; the message says how."""


async def _connect(url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise SetupError(
            f"cannot connect to PostgreSQL at {url.split('@')[-1]} as {user_name(url)}: {exc}. "
            "Is the server running, and does DATABASE_URL name a role that may log in?"
        ) from exc


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_database(settings: Settings, *, fresh: bool = False) -> bool:
    """Create the database of DATABASE_URL if missing (dropping it first when `fresh`).
    Returns whether it was created."""
    name = database_name(settings.database_url)
    conn = await _connect(with_database(settings.database_url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and fresh:
            # FORCE ends other sessions on it (a stale test run, an open psql) instead of failing.
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
            exists = False
        if not exists:
            await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
            return True
        return False
    finally:
        await conn.close()


async def ensure_extension_and_role(settings: Settings) -> None:
    """PostGIS in the database, and the app role able to log in with the password APP_DATABASE_URL gives."""
    from urllib.parse import urlsplit

    conn = await _connect(settings.database_url)
    try:
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        except asyncpg.PostgresError as exc:
            raise SetupError(
                f"PostGIS is not available in {database_name(settings.database_url)}: {exc}. "
                "Install it (Debian: apt-get install postgresql-15-postgis-3) or connect as a role allowed to "
                "create extensions."
            ) from exc
        role = settings.app_role
        password = urlsplit(settings.app_database_url).password or ""
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        # Passwords cannot be bound as parameters in utility statements; quote it as a literal.
        literal = "'" + password.replace("'", "''") + "'"
        await conn.execute(
            f"{verb} ROLE {_quote_ident(role)} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD {literal}"
        )
        await conn.execute(
            f"GRANT CONNECT ON DATABASE {_quote_ident(database_name(settings.database_url))} TO {_quote_ident(role)}"
        )
    finally:
        await conn.close()


def migrate(settings: Settings, revision: str = "head") -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = sqlalchemy_url(settings.database_url)
    command.upgrade(config, revision)


async def prepare(settings: Settings, *, fresh: bool = False) -> bool:
    """Everything up to a migrated schema. Returns whether the database was newly created."""
    created = await ensure_database(settings, fresh=fresh)
    await ensure_extension_and_role(settings)
    # Alembic's env runs its own event loop; keep it off ours.
    await asyncio.to_thread(migrate, settings)
    return created
