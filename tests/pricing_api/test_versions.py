"""Tariff versions: numbered and sealed, listed newest first, the current one switching exactly at valid_from,
never back-dated before the latest; and the lookups sessions will use (tariff_at, tariff_version)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from strawberry import relay

from hub.db import Database, Scope
from hub.errors import NotFound
from hub.pricing import service
from hub.pricing.tariff import Tariff
from tests.api.conftest import Callers
from tests.pricing_api import ops

SECOND = timedelta(seconds=1)


def row_id(global_id: str) -> uuid.UUID:
    return uuid.UUID(relay.GlobalID.from_id(global_id).node_id)


@pytest.fixture
async def three_versions(operator: dict[str, Any]) -> dict[str, Any]:
    """v1 from two hours ago, v2 from an hour ago (current), v3 from tomorrow (scheduled)."""
    admin, lot = operator["admin"], operator["lot"]
    now = datetime.now(UTC).replace(microsecond=0)
    starts = [now - timedelta(hours=2), now - timedelta(hours=1), now + timedelta(days=1)]
    versions = [
        await ops.set_tariff(admin, lot["id"], tariff_json=ops.flat_json(60, price), valid_from=start)
        for price, start in zip((100, 200, 300), starts, strict=True)
    ]
    return {**operator, "versions": versions, "starts": starts}


async def test_history_lists_every_version_newest_first(three_versions: dict[str, Any]) -> None:
    staff, lot, versions = three_versions["staff"], three_versions["lot"], three_versions["versions"]
    history = (await staff.data(ops.HISTORY, {"facilityId": lot["id"]}))["tariffHistory"]
    assert [version["version"] for version in history["versions"]] == [3, 2, 1]
    assert [version["id"] for version in history["versions"]] == [version["id"] for version in reversed(versions)]
    assert history["current"] == {"id": versions[1]["id"], "version": 2}
    assert history["facility"]["id"] == lot["id"]
    prices = [version["definition"]["json"]["default_rate"]["unit_price_fen"] for version in history["versions"]]
    assert prices == [300, 200, 100]


async def test_the_facility_shows_the_version_in_effect_now(three_versions: dict[str, Any], callers: Callers) -> None:
    lot, versions = three_versions["lot"], three_versions["versions"]
    for caller in (three_versions["admin"], callers.anonymous(), await callers.driver()):
        tariff = (await caller.data(ops.FACILITY_TARIFF, {"id": lot["id"]}))["node"]["tariff"]
        assert (tariff["id"], tariff["version"]) == (versions[1]["id"], 2)


async def test_a_quote_uses_the_version_in_effect_when_the_stay_starts(
    three_versions: dict[str, Any], callers: Callers
) -> None:
    lot, versions, starts = three_versions["lot"], three_versions["versions"], three_versions["starts"]
    anonymous = callers.anonymous()

    async def quoted(start: datetime) -> tuple[int, int]:
        variables = {"facilityId": lot["id"], "from": ops.iso(start), "to": ops.iso(start + timedelta(hours=3))}
        quote = (await anonymous.data(ops.QUOTE, variables))["quote"]
        return quote["tariff"]["version"], quote["totalFen"]

    assert await quoted(starts[1] - SECOND) == (1, 300)
    assert await quoted(starts[1]) == (2, 600)  # valid_from itself belongs to the new version
    assert await quoted(starts[2] - SECOND) == (2, 600)  # a stay running into v3 stays priced by v2 (sealed)
    assert await quoted(starts[2]) == (3, 900)
    assert versions[2]["version"] == 3


async def test_a_version_cannot_start_before_the_latest(three_versions: dict[str, Any], owner_db: Database) -> None:
    admin, lot, starts = three_versions["admin"], three_versions["lot"], three_versions["starts"]
    variables = {
        "facilityId": lot["id"],
        "tariffJson": ops.flat_json(60, 999),
        "validFrom": ops.iso(starts[2] - SECOND),
    }
    errors = await ops.errors(admin, ops.SET_TARIFF, variables)
    assert errors[0]["extensions"]["code"] == "TARIFF_BACKDATED"
    assert errors[0]["extensions"]["field"] == "validFrom"
    # Left out, validFrom is now: also before the scheduled version.
    del variables["validFrom"]
    assert await admin.error_code(ops.SET_TARIFF, variables) == "TARIFF_BACKDATED"
    # With a bad tariff as well, both problems come back together.
    variables["tariffJson"] = ops.flat_json(60, -1)
    problems = (await ops.errors(admin, ops.SET_TARIFF, variables))[0]["extensions"]["problems"]
    assert {problem["code"] for problem in problems} == {"NEGATIVE_PRICE", "TARIFF_BACKDATED"}
    history = (await admin.data(ops.HISTORY, {"facilityId": lot["id"]}))["tariffHistory"]
    assert len(history["versions"]) == 3


async def test_a_scheduled_version_can_be_replaced_from_the_same_instant(three_versions: dict[str, Any]) -> None:
    admin, lot, starts = three_versions["admin"], three_versions["lot"], three_versions["starts"]
    replacement = await ops.set_tariff(admin, lot["id"], tariff_json=ops.flat_json(60, 250), valid_from=starts[2])
    assert replacement["version"] == 4
    variables = {"facilityId": lot["id"], "from": ops.iso(starts[2]), "to": ops.iso(starts[2] + timedelta(hours=1))}
    quote = (await admin.data(ops.QUOTE, variables))["quote"]
    assert (quote["tariff"]["version"], quote["totalFen"]) == (4, 250)


async def test_versions_are_sealed_at_the_database(three_versions: dict[str, Any], db: Database) -> None:
    tenant = three_versions["admin"].tenant_id
    version = row_id(three_versions["versions"][0]["id"])
    for statement in (
        "UPDATE tariffs SET definition = '{}'::jsonb WHERE id = :id",
        "DELETE FROM tariffs WHERE id = :id",
    ):
        with pytest.raises(Exception, match="permission denied"):
            async with db.transaction(Scope("operator", tenant_id=tenant)) as session:
                await session.execute(text(statement), {"id": version})


async def test_tariff_at_and_tariff_version_for_sessions(three_versions: dict[str, Any], db: Database) -> None:
    tenant = three_versions["admin"].tenant_id
    facility = row_id(three_versions["lot"]["id"])
    ids = [row_id(version["id"]) for version in three_versions["versions"]]
    starts = three_versions["starts"]
    service.TARIFFS.clear()  # read from the database, not from what setTariff cached
    async with db.transaction(Scope("connector", tenant_id=tenant)) as session:
        before_id, before = await service.tariff_at(session, facility, starts[1] - SECOND)
        at_id, at = await service.tariff_at(session, facility, starts[1])
        assert (before_id, at_id) == (ids[0], ids[1])
        assert (before.default_rate.unit_price_fen, at.default_rate.unit_price_fen) == (100, 200)
        sealed = await service.tariff_version(session, ids[2], tenant_id=tenant)
        assert sealed == Tariff.from_dict(ops.flat_json(60, 300))
        with pytest.raises(NotFound) as no_tariff:
            await service.tariff_at(session, facility, starts[0] - SECOND)
        assert no_tariff.value.code == "NO_TARIFF"
        with pytest.raises(NotFound):
            await service.tariff_version(session, ids[2], tenant_id=uuid.uuid4())
    async with db.transaction(Scope("connector", tenant_id=uuid.uuid4())) as session:
        service.TARIFFS.clear()
        with pytest.raises(NotFound):  # another tenant's connector: row-level security hides the version
            await service.tariff_version(session, ids[2])
