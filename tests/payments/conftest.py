"""Fixtures for payments: the lanes' lot and gate, the real arq worker, and a sandbox provider whose signed
callbacks go to the app itself (httpx on ASGITransport), installed as this process's provider."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from connectors.payments.sandbox import SandboxProvider
from hub.db import Database
from hub.ledger import service as ledger
from hub.payments import providers
from tests.ingest.conftest import run_worker  # noqa: F401  (the real arq worker, in burst mode)
from tests.lanes.conftest import add_native_connector, app, callers, client, lot, make_lot  # noqa: F401


@pytest.fixture
async def sandbox(app: Starlette, settings) -> AsyncIterator[SandboxProvider]:  # type: ignore[no-untyped-def]  # noqa: F811
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://parkhub.test") as http:
        provider = SandboxProvider(secret=settings.payment_sandbox_secret, client=http, retry_backoff_seconds=0.01)
        providers.install(provider)
        yield provider
        await provider.drain()
        providers.uninstall("sandbox")


@pytest.fixture(autouse=True)
async def ledger_stays_sound(owner_db: Database) -> AsyncIterator[None]:
    """After every test the whole ledger balances, sums match and bounds hold."""
    yield
    async with (
        owner_db.transaction_owner() if hasattr(owner_db, "transaction_owner") else owner_db.engine.connect() as conn
    ):
        raw = await conn.get_raw_connection()
        violations = await ledger.check_invariants(raw.driver_connection)
    assert violations == []
