"""`standing_of` and `pass_windows_of` as lane decisions call them: under a connector's scope, as the app role,
one statement per call."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from strawberry import relay

from hub.access import service
from hub.db import Database, Scope
from hub.errors import DomainError
from tests.access import ops

SHANGHAI = ZoneInfo("Asia/Shanghai")


def row_id(global_id: str) -> uuid.UUID:
    return uuid.UUID(relay.GlobalID.from_id(global_id).node_id)


def shanghai(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


async def standing(db: Database, tenant_id: uuid.UUID, facility: dict[str, Any], plate: str, at: datetime) -> Any:
    async with db.transaction(Scope("connector", tenant_id=tenant_id)) as session:
        return await service.standing_of(session, tenant_id, row_id(facility["id"]), plate, at)


async def test_a_lane_reads_the_standing_under_its_connectors_scope(db: Database, operator: dict[str, Any]) -> None:
    admin, lot, tenant_id = operator["admin"], operator["shanghai"], operator["admin"].tenant_id
    night = (
        await admin.data(
            ops.CREATE_PASS,
            {"input": ops.november_pass("粤B12345", facilityIds=[lot["id"]], windowStart="22:00", windowEnd="06:00")},
        )
    )["createVehiclePass"]
    saturday_early = shanghai(2026, 11, 21, 3, 0)
    result = await standing(db, tenant_id, lot, "粤b·12345", saturday_early)  # as a camera might send it
    assert (result.kind, result.entry_id, result.list) == ("pass_holder", row_id(night["id"]), "pass")
    assert result.until == shanghai(2026, 11, 21, 6, 0)
    noon = await standing(db, tenant_id, lot, "粤B12345", shanghai(2026, 11, 21, 12, 0))
    assert (noon.kind, noon.idle_pass_id) == ("visitor", row_id(night["id"]))
    # At the other lot the pass does not apply at all.
    elsewhere = await standing(db, tenant_id, operator["new_york"], "粤B12345", saturday_early)
    assert (elsewhere.kind, elsewhere.idle_pass_id) == ("visitor", None)
    await admin.data(
        ops.CREATE_BLOCKLIST, {"input": {"plate": "粤B12345", "kind": "RESTRICTED", "reason": "towing order"}}
    )
    held = await standing(db, tenant_id, operator["new_york"], "粤B12345", saturday_early)
    assert (held.kind, held.reason, held.until) == ("restricted", "towing order", None)


async def test_an_expired_or_revoked_entry_no_longer_counts(db: Database, operator: dict[str, Any]) -> None:
    admin, lot, tenant_id = operator["admin"], operator["shanghai"], operator["admin"].tenant_id
    entry = (
        await admin.data(
            ops.CREATE_WHITELIST, {"input": {"plate": "粤B55555", "category": "TEAM", "validUntil": "2026-11-20"}}
        )
    )["createWhitelistEntry"]
    assert (await standing(db, tenant_id, lot, "粤B55555", shanghai(2026, 11, 20, 23, 59))).kind == "whitelisted"
    assert (await standing(db, tenant_id, lot, "粤B55555", shanghai(2026, 11, 21, 0, 0))).kind == "visitor"
    await admin.data(ops.REVOKE_WHITELIST, {"id": entry["id"]})
    assert (await standing(db, tenant_id, lot, "粤B55555", shanghai(2026, 11, 20, 12, 0))).kind == "visitor"


async def test_the_standing_costs_one_statement(db: Database, operator: dict[str, Any]) -> None:
    admin, lot, tenant_id = operator["admin"], operator["shanghai"], operator["admin"].tenant_id
    await admin.data(ops.CREATE_PASS, {"input": ops.november_pass("粤B12345")})
    await admin.data(ops.CREATE_WHITELIST, {"input": {"plate": "粤B12345", "category": "VIP"}})
    await admin.data(ops.CREATE_BLOCKLIST, {"input": {"plate": "粤B12345", "kind": "BLACKLIST", "reason": "x"}})
    statements: list[str] = []
    async with db.transaction(Scope("connector", tenant_id=tenant_id)) as session:
        driver = (await (await session.connection()).get_raw_connection()).driver_connection
        driver.add_query_logger(lambda record: statements.append(record.query))
        result = await service.standing_of(session, tenant_id, row_id(lot["id"]), "粤B12345", shanghai(2026, 11, 18, 9))
        await asyncio.sleep(0)  # asyncpg hands each statement to its loggers with call_soon
        assert len(statements) == 1, statements
    assert result.kind == "blacklisted"


async def test_a_facility_of_another_operator_is_unknown(db: Database, operator: dict[str, Any], callers: Any) -> None:
    other = await callers.operator()
    theirs = await ops.create_lot(other, f"TH{uuid.uuid4().hex[:6]}", "Asia/Shanghai", 114.07, 22.56)
    at = datetime(2026, 11, 18, 4, tzinfo=UTC)
    for scope_tenant, facility in ((operator["admin"].tenant_id, theirs), (other.tenant_id, operator["shanghai"])):
        with pytest.raises(DomainError) as caught:
            await standing(db, scope_tenant, facility, "粤B12345", at)
        assert caught.value.code == "UNKNOWN_FACILITY"


async def test_a_naive_instant_is_refused(db: Database, operator: dict[str, Any]) -> None:
    with pytest.raises(DomainError) as caught:
        await standing(db, operator["admin"].tenant_id, operator["shanghai"], "粤B12345", datetime(2026, 11, 18, 12))
    assert caught.value.code == "INVALID_INSTANT"


async def test_pass_windows_of_a_stay_merge_every_pass_of_the_plate(db: Database, operator: dict[str, Any]) -> None:
    admin, lot, tenant_id = operator["admin"], operator["shanghai"], operator["admin"].tenant_id
    # Weeknights 19:00-07:00 and weekend days 07:00-19:00: Friday's night runs on into Saturday's day.
    await admin.data(
        ops.CREATE_PASS,
        {"input": ops.november_pass("粤B12345", weekdays=[1, 2, 3, 4, 5], windowStart="19:00", windowEnd="07:00")},
    )
    await admin.data(
        ops.CREATE_PASS,
        {"input": ops.november_pass("粤B12345", weekdays=[6, 7], windowStart="07:00", windowEnd="19:00")},
    )
    entry, exit = shanghai(2026, 11, 20, 17, 0), shanghai(2026, 11, 23, 9, 0)  # Friday 17:00 to Monday 09:00
    async with db.transaction(Scope("connector", tenant_id=tenant_id)) as session:
        windows = await service.pass_windows_of(session, tenant_id, row_id(lot["id"]), "粤B12345", entry, exit)
    assert windows == [
        (shanghai(2026, 11, 20, 19, 0), shanghai(2026, 11, 21, 19, 0)),
        (shanghai(2026, 11, 22, 7, 0), shanghai(2026, 11, 22, 19, 0)),
    ]
