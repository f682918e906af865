"""Engines, sessions and the per-transaction scope that row-level security reads.

Every transaction the application opens starts with one `set_config(..., true)` call (transaction-local,
never session-level SET), so a pooled connection can never leak one caller's scope into another's.
A transaction that sets no scope sees no tenant rows: the policies compare against empty settings.
"""

from __future__ import annotations

import asyncio
import uuid
import uuid as _uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
from sqlalchemy import DateTime, MetaData, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import QueuePool

from hub.config import Settings, get_settings, sqlalchemy_url

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def uuid_column(*, primary_key: bool = True) -> Mapped[_uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=primary_key, server_default=text("gen_random_uuid()"))


def timestamp_now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


ScopeRole = Literal["anonymous", "driver", "operator", "city", "connector", "platform", "auth"]


@dataclass(frozen=True)
class Scope:
    """What row-level security lets one transaction see.

    - operator / connector: rows of `tenant_id`
    - driver: their own rows (`user_id`) and every tenant's public supply
    - anonymous: every tenant's public supply
    - city: reads across tenants
    - platform: everything (platform administration, seeding)
    - auth: the token endpoint's narrow view of OAuth clients
    """

    role: ScopeRole
    tenant_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None


PLATFORM = Scope("platform")
ANONYMOUS = Scope("anonymous")

SET_SCOPE_SQL = text(
    "SELECT set_config('app.role', :role, true), set_config('app.tenant_id', :tenant_id, true), "
    "set_config('app.user_id', :user_id, true)"
)


def _begin_scoped_sql(scope: Scope) -> str:
    """BEGIN and SET_SCOPE_SQL's settings as one simple query (one round trip). The values are a fixed role
    name and ids formatted from UUIDs, so nothing outside hex digits and dashes reaches the text."""
    params = {
        key: str(_uuid.UUID(value)) if value else "" for key, value in scope_params(scope).items() if key != "role"
    }
    if scope.role not in ScopeRole.__args__:  # type: ignore[attr-defined]
        raise ValueError(f"unknown scope role {scope.role!r}")
    return (
        f"BEGIN; SELECT set_config('app.role', '{scope.role}', true), "
        f"set_config('app.tenant_id', '{params['tenant_id']}', true), "
        f"set_config('app.user_id', '{params['user_id']}', true)"
    )


async def driver_of(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under a session, inside its transaction and scope: hot paths run their SQL on
    it directly, skipping SQLAlchemy's result layer (which costs about as much as a short query itself)."""
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


def scope_params(scope: Scope) -> dict[str, str]:
    return {
        "role": scope.role,
        "tenant_id": str(scope.tenant_id) if scope.tenant_id else "",
        "user_id": str(scope.user_id) if scope.user_id else "",
    }


# Every connection of the app (and the benchmark's baseline) runs with these. JIT costs more than it saves on
# short indexed queries. Generic plans: asyncpg prepares every statement, and with custom plans PostgreSQL
# re-plans each execution, which for find-a-space (RLS policy, nullable filters) cost more than running it
# (about 0.8 ms of 2.5 ms); our statements are index lookups whose best plan does not depend on the values.
SERVER_SETTINGS = {"jit": "off", "plan_cache_mode": "force_generic_plan"}


def make_engine(url: str, settings: Settings | None = None, *, pool_size: int | None = None) -> AsyncEngine:
    settings = settings or get_settings()
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=False,
        connect_args={"server_settings": {**SERVER_SETTINGS, "application_name": "parkhub"}},
    )


class Database:
    """The application's database: an engine connected as the app role and scoped transactions."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Database:
        settings = settings or get_settings()
        return cls(make_engine(settings.app_database_url, settings))

    @asynccontextmanager
    async def transaction(self, scope: Scope) -> AsyncIterator[AsyncSession]:
        """One transaction under `scope`: committed when the block succeeds, rolled back otherwise."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(SET_SCOPE_SQL, scope_params(scope))
            yield session

    @asynccontextmanager
    async def driver_transaction(self, scope: Scope) -> AsyncIterator[asyncpg.Connection]:
        """`transaction` without the ORM session, for the hottest write paths (webhooks): a pooled connection's
        driver in a transaction under `scope`, committed when the block succeeds, rolled back otherwise.

        It waits for one of the pool's own connections rather than take an overflow one: the pool closes an
        overflow connection as soon as it has enough idle ones again, so a busy sender would otherwise start
        (and authenticate) dozens of PostgreSQL backends a second."""
        async with self._pooled_slot(), self.engine.connect() as connection:
            driver: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
            try:
                await driver.execute(_begin_scoped_sql(scope))
                yield driver
                await driver.execute("COMMIT")
            except BaseException:
                await _end_failed_transaction(connection, driver)
                raise

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection's driver outside any transaction, for single statements that commit on their own
        (no BEGIN, no COMMIT: no round trips of their own); waits for a pool slot like `driver_transaction`.

        An error PostgreSQL reported leaves the connection idle and reusable; anything else (a request cancelled
        mid-statement, a broken socket) may leave it mid-protocol, so it is discarded, never pooled."""
        async with self._pooled_slot(), self.engine.connect() as connection:
            driver: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
            try:
                yield driver
            except asyncpg.PostgresError:
                raise
            except BaseException:
                await connection.invalidate()
                raise

    def _pooled_slot(self) -> AbstractAsyncContextManager[Any]:
        pool = self.engine.sync_engine.pool
        size = pool.size() if isinstance(pool, QueuePool) else 0
        if size <= 0:
            return nullcontext()
        loop = asyncio.get_running_loop()
        if loop not in self._slots:  # a semaphore belongs to one event loop (tests run several)
            self._slots[loop] = asyncio.Semaphore(size)
        return self._slots[loop]

    async def dispose(self) -> None:
        await self.engine.dispose()


async def _end_failed_transaction(connection: AsyncConnection, driver: asyncpg.Connection) -> None:
    """Roll back; a connection that cannot be brought back to idle is discarded, never returned to the pool in
    the middle of a transaction (SQLAlchemy does not know this one was begun)."""
    try:
        if not driver.is_closed() and driver.is_in_transaction():
            await driver.execute("ROLLBACK")
    except BaseException:
        pass  # judged below
    if driver.is_closed() or driver.is_in_transaction():
        await connection.invalidate()
