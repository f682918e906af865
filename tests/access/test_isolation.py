"""One operator's vehicle lists are invisible to and unchangeable by every other, through the API and at the
database itself (as the app role, under row-level security)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from hub.db import PLATFORM, Database, Scope
from tests.access import ops
from tests.api.conftest import Caller, Callers

TABLES = ["vehicle_passes", "vehicle_whitelist", "vehicle_blocklist"]


@pytest.fixture
async def two_operators(operator: dict[str, Any], callers: Callers) -> dict[str, Any]:
    """Alpha (the `operator` fixture) with one entry on each list; beta, a second operator with its own lot."""
    alpha: Caller = operator["admin"]
    plate = "粤B12345"
    entries = {
        "pass": (await alpha.data(ops.CREATE_PASS, {"input": ops.november_pass(plate)}))["createVehiclePass"],
        "whitelist": (await alpha.data(ops.CREATE_WHITELIST, {"input": {"plate": plate, "category": "VIP"}}))[
            "createWhitelistEntry"
        ],
        "blocklist": (
            await alpha.data(ops.CREATE_BLOCKLIST, {"input": {"plate": plate, "kind": "RESTRICTED", "reason": "r"}})
        )["createBlocklistEntry"],
    }
    beta = await callers.operator()
    beta_lot = await ops.create_lot(beta, f"BE{uuid.uuid4().hex[:6]}", "Asia/Shanghai", 114.08, 22.57)
    return {**operator, "entries": entries, "plate": plate, "beta": beta, "beta_lot": beta_lot}


async def _fingerprint(owner_db: Database, tenant_id: uuid.UUID) -> list[tuple]:
    sql = " UNION ALL ".join(
        f"SELECT '{table}', id, plate, updated_at, revoked_at FROM {table} WHERE tenant_id = :t" for table in TABLES
    )
    async with owner_db.transaction(PLATFORM) as session:
        return sorted(tuple(row) for row in (await session.execute(text(sql), {"t": tenant_id})).all())


async def test_another_operator_sees_none_of_the_lists(two_operators: dict[str, Any]) -> None:
    beta: Caller = two_operators["beta"]
    assert (await beta.data(ops.PASSES, {"revoked": True}))["vehiclePasses"]["edges"] == []
    assert (await beta.data(ops.WHITELIST, {}))["whitelistEntries"]["edges"] == []
    assert (await beta.data(ops.BLOCKLIST, {}))["blocklistEntries"]["edges"] == []
    for entry in two_operators["entries"].values():
        assert (await beta.data(ops.NODE, {"id": entry["id"]}))["node"] is None
    # The plate means nothing at beta's own lot.
    variables = {"facilityId": two_operators["beta_lot"]["id"], "plate": two_operators["plate"]}
    assert (await beta.data(ops.STANDING, variables))["vehicleStanding"]["kind"] == "VISITOR"


CHANGES = [
    ("update pass", ops.UPDATE_PASS, "pass", {"input": {"note": "mine now"}}),
    ("revoke pass", ops.REVOKE_PASS, "pass", {}),
    ("update whitelist entry", ops.UPDATE_WHITELIST, "whitelist", {"input": {"category": "TEAM"}}),
    ("revoke whitelist entry", ops.REVOKE_WHITELIST, "whitelist", {}),
    ("update blocklist entry", ops.UPDATE_BLOCKLIST, "blocklist", {"input": {"reason": "cleared"}}),
    ("revoke blocklist entry", ops.REVOKE_BLOCKLIST, "blocklist", {}),
]


@pytest.mark.parametrize(("name", "document", "kind", "variables"), CHANGES, ids=[change[0] for change in CHANGES])
async def test_another_operator_cannot_change_an_entry(
    two_operators: dict[str, Any], owner_db: Database, name: str, document: str, kind: str, variables: dict[str, Any]
) -> None:
    alpha_tenant = two_operators["admin"].tenant_id
    before = await _fingerprint(owner_db, alpha_tenant)
    entry_id = two_operators["entries"][kind]["id"]
    assert await two_operators["beta"].error_code(document, {"id": entry_id, **variables}) == "NOT_FOUND"
    assert await _fingerprint(owner_db, alpha_tenant) == before


async def test_another_operators_facilities_cannot_be_named(two_operators: dict[str, Any]) -> None:
    beta: Caller = two_operators["beta"]
    alpha_lot = two_operators["shanghai"]
    variables = {"input": ops.november_pass("粤B99999", facilityIds=[alpha_lot["id"]])}
    assert await beta.error_code(ops.CREATE_PASS, variables) == "UNKNOWN_FACILITY"
    csv = f"plate,category,facilities\n粤B99999,vip,{alpha_lot['code']}\n"
    report = (await beta.data(ops.IMPORT, {"kind": "WHITELIST", "csv": csv}))["importVehicleList"]
    assert [(error["field"], error["code"]) for error in report["errors"]] == [("facilities", "UNKNOWN_FACILITY")]


async def test_duplicates_are_judged_within_one_operator(two_operators: dict[str, Any]) -> None:
    beta: Caller = two_operators["beta"]
    await beta.data(ops.CREATE_PASS, {"input": ops.november_pass(two_operators["plate"])})
    assert await ops.count_passes(beta) == 1


async def test_row_level_security_holds_for_the_app_role(
    db: Database, owner_db: Database, two_operators: dict[str, Any]
) -> None:
    alpha, beta = two_operators["admin"].tenant_id, two_operators["beta"].tenant_id
    for table in TABLES:
        async with db.transaction(Scope("operator", tenant_id=beta)) as session:
            seen = await session.execute(text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": alpha})
            assert seen.scalar_one() == 0, table
            changed = await session.execute(
                text(f"UPDATE {table} SET revoked_at = now() WHERE tenant_id = :t"), {"t": alpha}
            )
            assert changed.rowcount == 0, table
        async with db.transaction(Scope("connector", tenant_id=alpha)) as session:
            assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 1, table
        async with db.sessionmaker() as session, session.begin():  # no scope at all
            assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0, table
    insert = text(
        "INSERT INTO vehicle_blocklist (tenant_id, plate, kind, reason) VALUES (:t, '粤B00000', 'blacklist', 'x')"
    )
    with pytest.raises(Exception, match="row-level security"):
        async with db.transaction(Scope("operator", tenant_id=beta)) as session:
            await session.execute(insert, {"t": alpha})
    async with owner_db.transaction(PLATFORM) as session:
        flags = await session.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                "pg_get_userbyid(c.relowner) <> :app AS app_is_not_owner, "
                "has_table_privilege(:app, c.oid, 'SELECT, INSERT, UPDATE') AS app_may_use "
                "FROM pg_class c WHERE c.relname = ANY(:tables) ORDER BY c.relname"
            ),
            {"app": db.engine.url.username, "tables": TABLES},
        )
        assert [tuple(row)[1:] for row in flags.all()] == [(True, True, True, True)] * 3
