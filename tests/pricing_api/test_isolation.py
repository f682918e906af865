"""One operator's tariffs cannot be set or have their history read by another, through the API and at the
database itself (as the app role, under row-level security). Drivers and anonymous callers see the tariff in
effect and their quotes, never the history or who set a version; the city reads the history."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from strawberry import relay

from hub.db import Database, Scope
from tests.api.conftest import Caller, Callers
from tests.pricing_api import ops


@pytest.fixture
async def two_operators(operator: dict[str, Any], callers: Callers) -> dict[str, Any]:
    """Alpha (the `operator` fixture) with two versions on its lot; beta, a second operator with its own lot."""
    alpha: Caller = operator["admin"]
    lot = operator["lot"]
    past = datetime.now(UTC) - timedelta(days=1)
    versions = [
        await ops.set_tariff(alpha, lot["id"], tariff_json=ops.flat_json(60, 400), valid_from=past),
        await ops.set_tariff(alpha, lot["id"], tariff_json=ops.flat_json(60, 500)),
    ]
    beta = await callers.operator()
    beta_lot = await ops.create_lot(beta, 114.33, 22.63)
    return {**operator, "versions": versions, "beta": beta, "beta_lot": beta_lot}


def _row_id(global_id: str) -> uuid.UUID:
    return uuid.UUID(relay.GlobalID.from_id(global_id).node_id)


async def test_another_operator_can_neither_set_nor_read(two_operators: dict[str, Any]) -> None:
    beta: Caller = two_operators["beta"]
    lot = two_operators["lot"]
    assert await beta.error_code(ops.SET_TARIFF, {"facilityId": lot["id"], "tariffJson": ops.flat_json(60, 1)}) == (
        "NOT_FOUND"
    )
    assert await beta.error_code(ops.HISTORY, {"facilityId": lot["id"]}) == "NOT_FOUND"
    for version in two_operators["versions"]:
        assert (await beta.data(ops.NODE, {"id": version["id"]}))["node"] is None
    start = datetime.now(UTC)
    window = {"from": ops.iso(start), "to": ops.iso(start + timedelta(hours=1))}
    assert await beta.error_code(ops.QUOTE, {"facilityId": lot["id"], **window}) == "NOT_FOUND"
    # Nothing beta tried reached alpha's history.
    history = (await two_operators["staff"].data(ops.HISTORY, {"facilityId": lot["id"]}))["tariffHistory"]
    assert [version["version"] for version in history["versions"]] == [2, 1]


async def test_drivers_see_the_current_tariff_but_not_the_history(
    two_operators: dict[str, Any], callers: Callers
) -> None:
    lot, current = two_operators["lot"], two_operators["versions"][1]
    for caller in (callers.anonymous(), await callers.driver()):
        assert await caller.error_code(ops.HISTORY, {"facilityId": lot["id"]}) == "FORBIDDEN"
        tariff = (await caller.data(ops.FACILITY_TARIFF, {"id": lot["id"]}))["node"]["tariff"]
        assert tariff["id"] == current["id"]
        node = (await caller.data(ops.NODE, {"id": current["id"]}))["node"]
        assert node == {"id": current["id"], "version": 2, "createdBy": None}


async def test_the_city_reads_every_operators_history(two_operators: dict[str, Any], callers: Callers) -> None:
    history = (await callers.city().data(ops.HISTORY, {"facilityId": two_operators["lot"]["id"]}))["tariffHistory"]
    assert [version["version"] for version in history["versions"]] == [2, 1]
    assert all(version["createdBy"] for version in history["versions"])
    variables = {"facilityId": two_operators["lot"]["id"], "tariffJson": ops.flat_json(60, 1)}
    assert await callers.city().error_code(ops.SET_TARIFF, variables) == "FORBIDDEN"


async def test_row_level_security_holds_at_the_database(two_operators: dict[str, Any], db: Database) -> None:
    alpha_id, beta_id = two_operators["admin"].tenant_id, two_operators["beta"].tenant_id
    lot = _row_id(two_operators["lot"]["id"])
    async with db.transaction(Scope("operator", tenant_id=beta_id)) as session:
        seen = await session.execute(text("SELECT count(*) FROM tariffs WHERE tenant_id = :t"), {"t": alpha_id})
        assert seen.scalar_one() == 0
    insert = text(
        "INSERT INTO tariffs (tenant_id, facility_id, version, definition, valid_from, created_by) "
        "VALUES (:tenant, :facility, 99, CAST(:definition AS jsonb), now(), 'intruder')"
    )
    values = {"tenant": alpha_id, "facility": lot, "definition": json.dumps(ops.flat_json(60, 1))}
    with pytest.raises(Exception, match="row-level security"):
        async with db.transaction(Scope("operator", tenant_id=beta_id)) as session:
            await session.execute(insert, values)
    for scope in (Scope("anonymous"), Scope("driver", user_id=uuid.uuid4()), Scope("city")):
        with pytest.raises(Exception, match="row-level security"):
            async with db.transaction(scope) as session:
                await session.execute(insert, values)
    async with db.transaction(Scope("operator", tenant_id=alpha_id)) as session:
        count = await session.execute(text("SELECT count(*) FROM tariffs WHERE facility_id = :f"), {"f": lot})
        assert count.scalar_one() == 2
    async with db.sessionmaker() as session, session.begin():  # no scope at all: nothing
        assert (await session.execute(text("SELECT count(*) FROM tariffs"))).scalar_one() == 0
