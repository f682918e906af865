"""The isolation matrix: everything one operator owns is invisible to, and unchangeable by, another;
drivers see only their own rows. Runs through the API, whose connections use the app role under RLS."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from hub.db import PLATFORM, Database
from tests.api import supply_ops as ops
from tests.api.conftest import Caller, Callers


@pytest.fixture(scope="module")
async def two_operators(callers: Callers) -> dict[str, Any]:
    alpha = await callers.operator()
    beta = await callers.operator()
    return {
        "alpha": alpha,
        "beta": beta,
        "alpha_site": await ops.build_site(alpha, 113.9000, 22.6000, f"A{uuid.uuid4().hex[:4]}"),
        "beta_site": await ops.build_site(beta, 113.9003, 22.6003, f"B{uuid.uuid4().hex[:4]}"),
    }


def _ids(site: dict[str, Any]) -> list[str]:
    return [site["lot"]["id"], site["curb"]["id"], site["lane"]["id"], *(s["id"] for s in site["spaces"])]


async def test_node_ids_of_one_operator_resolve_to_null_for_another(two_operators: dict[str, Any]) -> None:
    beta: Caller = two_operators["beta"]
    for node_id in _ids(two_operators["alpha_site"]):
        assert (await beta.data(ops.NODE, {"id": node_id}))["node"] is None
    # ...while the owner sees every one of them.
    alpha: Caller = two_operators["alpha"]
    for node_id in _ids(two_operators["alpha_site"]):
        assert (await alpha.data(ops.NODE, {"id": node_id}))["node"]["id"] == node_id


async def test_lists_and_search_of_an_operator_hold_only_its_own_rows(two_operators: dict[str, Any]) -> None:
    beta: Caller = two_operators["beta"]
    alpha_ids = set(_ids(two_operators["alpha_site"]))
    facilities = await beta.data("{ facilities(first: 100) { edges { node { id } } } }")
    spaces = await beta.data("{ spaces(first: 100) { edges { node { id } } } }")
    near = await beta.data("{ spacesNear(lon: 113.9, lat: 22.6, radiusMeters: 2000, first: 100) { space { id } } }")
    seen = {edge["node"]["id"] for edge in facilities["facilities"]["edges"] + spaces["spaces"]["edges"]}
    seen |= {row["space"]["id"] for row in near["spacesNear"]}
    assert seen, "beta should see its own supply"
    assert not seen & alpha_ids
    occupancy = await beta.data("{ occupancyByOperator { operator { id } occupancy { total } } }")
    assert len(occupancy["occupancyByOperator"]) == 1


MUTATIONS = [
    ("update facility", ops.UPDATE_FACILITY, lambda s: {"id": s["lot"]["id"], "input": {"name": "stolen"}}),
    ("retire facility", ops.RETIRE_FACILITY, lambda s: {"id": s["lot"]["id"]}),
    ("update lane", ops.UPDATE_LANE, lambda s: {"id": s["lane"]["id"], "input": {"name": "stolen"}}),
    ("retire lane", ops.RETIRE_LANE, lambda s: {"id": s["lane"]["id"]}),
    ("update space", ops.UPDATE_SPACE, lambda s: {"id": s["spaces"][0]["id"], "input": {"status": "OCCUPIED"}}),
    ("retire spaces", ops.RETIRE_SPACES, lambda s: {"ids": [s["spaces"][0]["id"]]}),
    (
        "create a lane in their lot",
        ops.CREATE_LANE,
        lambda s: {"input": {"facilityId": s["lot"]["id"], "name": "sneaky", "direction": "EXIT"}},
    ),
    (
        "create a space in their lot",
        ops.CREATE_SPACES,
        lambda s: {
            "input": [{"facilityId": s["lot"]["id"], "code": "SNEAKY", "geometry": ops.point(113.9005, 22.6005)}]
        },
    ),
]


async def _fingerprint(owner_db: Database, tenant_id: uuid.UUID) -> list[tuple]:
    sql = """
        SELECT 'f', id, name, retired_at, updated_at FROM facilities WHERE tenant_id = :t
        UNION ALL SELECT 'l', id, name, retired_at, updated_at FROM lanes WHERE tenant_id = :t
        UNION ALL SELECT 's', id, status || code, retired_at, updated_at FROM spaces WHERE tenant_id = :t
        ORDER BY 1, 2"""
    async with owner_db.transaction(PLATFORM) as session:
        return [tuple(row) for row in (await session.execute(text(sql), {"t": tenant_id})).all()]


@pytest.mark.parametrize(("name", "document", "variables"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
async def test_another_operator_cannot_change_anything(
    two_operators: dict[str, Any], owner_db: Database, name: str, document: str, variables: Any
) -> None:
    alpha: Caller = two_operators["alpha"]
    before = await _fingerprint(owner_db, alpha.tenant_id)
    code = await two_operators["beta"].error_code(document, variables(two_operators["alpha_site"]))
    assert code == "NOT_FOUND"
    assert await _fingerprint(owner_db, alpha.tenant_id) == before


async def test_operator_staff_and_other_roles_cannot_change_supply(
    callers: Callers, two_operators: dict[str, Any]
) -> None:
    staff = await callers.operator(role="operator_staff", tenant_id=two_operators["alpha"].tenant_id)
    site = two_operators["alpha_site"]
    for caller in (staff, await callers.driver(), callers.anonymous(), callers.city()):
        code = await caller.error_code(ops.UPDATE_FACILITY, {"id": site["lot"]["id"], "input": {"name": "x"}})
        assert code == "FORBIDDEN"
    # Staff still read their own tenant's supply.
    assert (await staff.data(ops.NODE, {"id": site["lot"]["id"]}))["node"] is not None


async def test_fee_rate_is_private_to_the_operator_city_and_platform(
    callers: Callers, two_operators: dict[str, Any]
) -> None:
    query = "query($id: ID!) { node(id: $id) { ... on Operator { platformFeeBps } } }"
    alpha_operator = (await two_operators["alpha"].data("{ me { operator { id } } }"))["me"]["operator"]["id"]
    assert (await two_operators["alpha"].data(query, {"id": alpha_operator}))["node"]["platformFeeBps"] == 60
    assert (await callers.city().data(query, {"id": alpha_operator}))["node"]["platformFeeBps"] == 60
    assert await two_operators["beta"].error_code(query, {"id": alpha_operator}) == "FORBIDDEN"
    assert await callers.anonymous().error_code(query, {"id": alpha_operator}) == "FORBIDDEN"


async def test_public_callers_and_the_city_see_every_operators_live_supply(
    callers: Callers, two_operators: dict[str, Any]
) -> None:
    wanted = {two_operators["alpha_site"]["spaces"][0]["id"], two_operators["beta_site"]["spaces"][0]["id"]}
    query = "{ spacesNear(lon: 113.9, lat: 22.6, radiusMeters: 2000, first: 100) { space { id } } }"
    for caller in (callers.anonymous(), await callers.driver(), callers.city()):
        seen = {row["space"]["id"] for row in (await caller.data(query))["spacesNear"]}
        assert wanted <= seen
    city = await callers.city().data("{ occupancyByOperator { operator { id } } }")
    assert len(city["occupancyByOperator"]) >= 2


VEHICLES = "{ me { vehicles { id plate } } }"
ADD_VEHICLE = "mutation($plate: String!) { addVehicle(plate: $plate) { id plate } }"


async def test_drivers_see_and_change_only_their_own_vehicles(callers: Callers) -> None:
    first, second = await callers.driver(), await callers.driver()
    vehicle = (await first.data(ADD_VEHICLE, {"plate": "粤B·12345"}))["addVehicle"]
    assert vehicle["plate"] == "粤B12345"
    assert (await first.data(VEHICLES))["me"]["vehicles"] == [vehicle]
    assert (await second.data(VEHICLES))["me"]["vehicles"] == []
    for caller in (second, callers.anonymous(), callers.city()):
        assert (await caller.data(ops.NODE, {"id": vehicle["id"]}))["node"] is None
    remove = "mutation($id: ID!) { removeVehicle(id: $id) { id } }"
    assert await second.error_code(remove, {"id": vehicle["id"]}) == "NOT_FOUND"
    assert (await first.data(VEHICLES))["me"]["vehicles"] == [vehicle]
    assert await first.error_code(ADD_VEHICLE, {"plate": "粤B12345"}) == "PLATE_TAKEN"


def tenant_tables() -> list[str]:
    """Every table of the models but the few shared by design, so a table added later is checked too."""
    from hub.models import Base
    from tests.db.test_rls import SHARED_TABLES

    return sorted(set(Base.metadata.tables) - SHARED_TABLES)


async def test_a_transaction_with_no_scope_sees_no_rows_in_any_table(
    db: Database, two_operators: dict[str, Any]
) -> None:
    async with db.sessionmaker() as session, session.begin():
        for table in tenant_tables():
            assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0, table
