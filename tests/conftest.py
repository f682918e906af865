"""Test set-up: a fresh database migrated with Alembic, real PostgreSQL+PostGIS and Redis.

The suite never touches the development database: it uses the database named by DATABASE_URL with a
`_test` suffix (dropped and re-created at the start of every run), and Redis database 15 unless
TEST_REDIS_URL says otherwise. The API's connections use the application role, so every test that goes
through the app is subject to row-level security.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from hub.config import get_settings, use_sibling_database


def pytest_addoption(parser: pytest.Parser) -> None:
    # The money-path simulation's seed (tests/money_path); MONEY_SEED does the same from the environment.
    parser.addoption("--money-seed", type=int, default=None, help="run the money-path simulation with this seed only")


def _test_urls() -> None:
    use_sibling_database("_test")
    os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    os.environ.setdefault("PARKHUB_ENV", "test")
    # Small pools: the suite holds several at once (the app's, the fixtures', each burst worker's, live servers'),
    # and at the defaults their sum can reach PostgreSQL's 100 connections; requests beyond a pool wait their turn.
    os.environ.setdefault("PARKHUB_DB_POOL_SIZE", "5")
    os.environ.setdefault("PARKHUB_DB_MAX_OVERFLOW", "10")  # 15 at once: the ledger's races need 12
    get_settings.cache_clear()  # REDIS_URL and PARKHUB_ENV changed after use_sibling_database


_test_urls()

from hub.db import Database, make_engine  # noqa: E402
from hub.dbsetup import prepare  # noqa: E402


def pytest_sessionstart(session: pytest.Session) -> None:
    asyncio.run(prepare(get_settings(), fresh=True))


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    return get_settings()


@pytest.fixture(scope="session")
async def db(settings) -> AsyncIterator[Database]:  # type: ignore[no-untyped-def]
    """The application's database, connected as the app role (subject to row-level security)."""
    database = Database.from_settings(settings)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def owner_db(settings) -> AsyncIterator[Database]:  # type: ignore[no-untyped-def]
    """The owner's connection, for checks that must see past row-level security."""
    database = Database(make_engine(settings.database_url, settings, pool_size=5))
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def redis(settings) -> AsyncIterator[aioredis.Redis]:  # type: ignore[no-untyped-def]
    client = aioredis.from_url(settings.redis_url)
    await client.flushdb()
    yield client
    await client.aclose()
