"""Tariff API tests run through the app as each kind of caller (the fixtures of tests/api) and, for isolation,
against the database as the app role under row-level security."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub.pricing import service
from tests.api.conftest import Callers, app, callers, client  # noqa: F401  (pytest finds fixtures by name)
from tests.pricing_api import ops


@pytest.fixture
async def operator(callers: Callers) -> dict[str, Any]:  # noqa: F811  (the fixture imported above)
    """A fresh operator (admin and staff callers) with a lot in Shanghai's zone."""
    admin = await callers.operator()
    staff = await callers.operator(role="operator_staff", tenant_id=admin.tenant_id)
    lot = await ops.create_lot(admin, 114.30, 22.60)
    return {"admin": admin, "staff": staff, "lot": lot}


@pytest.fixture
def cold_tariff_cache() -> Iterator[None]:
    """Start with no parsed tariff cached, as a fresh process would."""
    service.TARIFFS.clear()
    yield
    service.TARIFFS.clear()
