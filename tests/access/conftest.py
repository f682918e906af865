"""Vehicle-list tests run through the API as each kind of caller (the fixtures of tests/api), and against the
services as the app role under row-level security."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.access import ops
from tests.api.conftest import Callers, app, callers, client  # noqa: F401  (pytest finds fixtures by name)


@pytest.fixture
async def operator(callers: Callers) -> dict[str, Any]:  # noqa: F811  (the fixture imported above)
    """A fresh operator (admin and staff callers) with two lots: one in Shanghai's zone, one in New York's."""
    admin = await callers.operator()
    staff = await callers.operator(role="operator_staff", tenant_id=admin.tenant_id)
    suffix = uuid.uuid4().hex[:6].upper()
    shanghai = await ops.create_lot(admin, f"SH{suffix}", "Asia/Shanghai", 114.05, 22.54)
    new_york = await ops.create_lot(admin, f"NY{suffix}", "America/New_York", 114.06, 22.55)
    return {"admin": admin, "staff": staff, "shanghai": shanghai, "new_york": new_york}
