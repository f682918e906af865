"""Operator admins set tariffs, typed or as JSON; a rejected tariff reports every problem with its field path and
writes nothing; only the tenant's admins may set one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from strawberry import relay

from hub.db import PLATFORM, Database
from hub.pricing.tariff import Tariff
from tests.api import supply_ops
from tests.api.conftest import Callers
from tests.pricing_api import ops


async def _stored_versions(owner_db: Database, facility_id: str) -> int:
    row_id = relay.GlobalID.from_id(facility_id).node_id
    async with owner_db.transaction(PLATFORM) as session:
        query = text("SELECT count(*) FROM tariffs WHERE facility_id = :f")
        return (await session.execute(query, {"f": row_id})).scalar_one()


async def test_typed_and_json_tariffs_store_the_same_definition(operator: dict[str, Any]) -> None:
    admin, lot = operator["admin"], operator["lot"]
    typed = await ops.set_tariff(admin, lot["id"], tariff=ops.DAY_NIGHT_TYPED)
    as_json = await ops.set_tariff(admin, lot["id"], tariff_json=ops.DAY_NIGHT_JSON)
    assert typed["definition"]["json"] == ops.DAY_NIGHT_JSON
    assert as_json["definition"]["json"] == ops.DAY_NIGHT_JSON
    assert Tariff.from_dict(typed["definition"]["json"]).to_dict() == ops.DAY_NIGHT_JSON
    assert (typed["version"], as_json["version"]) == (1, 2)
    assert typed["facility"]["id"] == lot["id"]
    assert typed["createdBy"]  # the admin's token subject, for the record


async def test_the_typed_definition_reads_back_field_by_field(operator: dict[str, Any]) -> None:
    admin, lot = operator["admin"], operator["lot"]
    await ops.set_tariff(admin, lot["id"], tariff=ops.DAY_NIGHT_TYPED)
    query = """query($id: ID!) { node(id: $id) { ... on Facility { tariff { definition {
        defaultRate { unitMinutes unitPriceFen firstUnitMinutes }
        bands { name days start end rate { unitPriceFen firstUnitPriceFen }
                tiers { afterMinutes rate { unitPriceFen } } }
        freeMinutes freeMode dayCapFen rolling24hCapFen minimumChargeFen
        vehicleClassPercent { small standard large newEnergy } } } } } }"""
    definition = (await admin.data(query, {"id": lot["id"]}))["node"]["tariff"]["definition"]
    assert definition["defaultRate"] == {"unitMinutes": 60, "unitPriceFen": 300, "firstUnitMinutes": None}
    day, night = definition["bands"]
    assert day == {
        "name": "day",
        "days": ["MON", "TUE", "WED", "THU", "FRI"],
        "start": "08:00",
        "end": "20:00",
        "rate": {"unitPriceFen": 400, "firstUnitPriceFen": 500},
        "tiers": [{"afterMinutes": 180, "rate": {"unitPriceFen": 600}}],
    }
    assert (night["start"], night["end"], len(night["days"])) == ("22:00", "06:00", 7)
    assert (definition["freeMinutes"], definition["freeMode"]) == (15, "FREE_IF_UNDER")
    assert (definition["dayCapFen"], definition["rolling24hCapFen"], definition["minimumChargeFen"]) == (
        6000,
        None,
        200,
    )
    assert definition["vehicleClassPercent"] == {"small": None, "standard": None, "large": 200, "newEnergy": 50}


BAD_TYPED: dict[str, Any] = {
    "defaultRate": {"unitMinutes": 0, "unitPriceFen": -5},
    "bands": [
        {
            "name": "day",
            "days": ["MON"],
            "start": "08:00",
            "end": "20:00",
            "rate": {"unitMinutes": 60, "unitPriceFen": 800},
        },
        {
            "name": "late",
            "days": ["MON"],
            "start": "19:00",
            "end": "23:00",
            "rate": {"unitMinutes": 60, "unitPriceFen": 300},
        },
        {
            "name": "odd",
            "days": ["TUE"],
            "start": "25:00",
            "end": "08:00",
            "rate": {"unitMinutes": 60, "unitPriceFen": 1},
        },
    ],
    "dayCapFen": 500,
    "vehicleClassPercent": {"large": 2000},
}


async def test_every_problem_of_a_typed_tariff_is_reported_with_its_path(
    operator: dict[str, Any], owner_db: Database
) -> None:
    admin, lot = operator["admin"], operator["lot"]
    errors = await ops.errors(admin, ops.SET_TARIFF, {"facilityId": lot["id"], "tariff": BAD_TYPED})
    extensions = errors[0]["extensions"]
    assert extensions["code"] == "INVALID_TARIFF"
    found = {(problem["field"], problem["code"]) for problem in extensions["problems"]}
    assert found == {
        ("tariff.defaultRate.unitMinutes", "NON_POSITIVE_UNIT"),
        ("tariff.defaultRate.unitPriceFen", "NEGATIVE_PRICE"),
        ("tariff.bands[1]", "OVERLAPPING_BANDS"),
        ("tariff.bands[2].start", "INVALID_TIME"),
        ("tariff.dayCapFen", "CAP_BELOW_UNIT_PRICE"),
        ("tariff.vehicleClassPercent.large", "INVALID_PERCENT"),
    }
    assert all(problem["message"] for problem in extensions["problems"])
    assert await _stored_versions(owner_db, lot["id"]) == 0


async def test_json_problems_name_the_engine_fields(operator: dict[str, Any], owner_db: Database) -> None:
    admin, lot = operator["admin"], operator["lot"]
    bad = {
        "default_rate": {"unit_minutes": "sixty", "unit_price_fen": 300},
        "bands": [{"name": "day", "days": ["mon", "someday"], "start": "08:00", "end": "20:00"}],
        "surcharge": 5,
    }
    errors = await ops.errors(admin, ops.SET_TARIFF, {"facilityId": lot["id"], "tariffJson": bad})
    extensions = errors[0]["extensions"]
    assert extensions["code"] == "INVALID_TARIFF"
    found = {(problem["field"], problem["code"]) for problem in extensions["problems"]}
    assert {
        ("tariffJson.default_rate.unit_minutes", "WRONG_TYPE"),
        ("tariffJson.bands[0].rate", "MISSING_FIELD"),
        ("tariffJson.surcharge", "UNKNOWN_FIELD"),
    } <= found
    not_an_object = await ops.errors(admin, ops.SET_TARIFF, {"facilityId": lot["id"], "tariffJson": [1, 2]})
    assert not_an_object[0]["extensions"]["problems"][0]["field"] == "tariffJson"
    assert await _stored_versions(owner_db, lot["id"]) == 0


async def test_a_rejected_version_leaves_the_current_one(operator: dict[str, Any], owner_db: Database) -> None:
    admin, lot = operator["admin"], operator["lot"]
    first = await ops.set_tariff(admin, lot["id"], tariff_json=ops.flat_json(60, 500))
    await ops.errors(admin, ops.SET_TARIFF, {"facilityId": lot["id"], "tariffJson": ops.flat_json(60, -1)})
    current = (await admin.data(ops.FACILITY_TARIFF, {"id": lot["id"]}))["node"]["tariff"]
    assert current["id"] == first["id"]
    assert await _stored_versions(owner_db, lot["id"]) == 1


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({}, "INVALID_INPUT"),  # neither form
        ({"tariff": ops.DAY_NIGHT_TYPED, "tariffJson": ops.DAY_NIGHT_JSON}, "INVALID_INPUT"),  # both
        ({"tariffJson": ops.DAY_NIGHT_JSON, "validFrom": "2026-12-01T08:00:00"}, "INVALID_TIME"),  # no offset
        (
            {"tariffJson": ops.DAY_NIGHT_JSON, "facilityId": str(relay.GlobalID("Space", str(uuid.uuid4())))},
            "INVALID_ID",
        ),
    ],
)
async def test_malformed_calls_get_typed_errors(operator: dict[str, Any], variables: dict[str, Any], code: str) -> None:
    call = {"facilityId": operator["lot"]["id"], **variables}
    assert await operator["admin"].error_code(ops.SET_TARIFF, call) == code


async def test_curb_zones_take_tariffs_too(operator: dict[str, Any]) -> None:
    admin = operator["admin"]
    site = await supply_ops.build_site(admin, 114.31, 22.61, "TZ", spaces=1)
    version = await ops.set_tariff(admin, site["curb"]["id"], tariff_json=ops.flat_json(15, 250))
    assert version["facility"]["id"] == site["curb"]["id"]


async def test_retired_facilities_take_no_tariff(operator: dict[str, Any]) -> None:
    admin, lot = operator["admin"], operator["lot"]
    await admin.data(supply_ops.RETIRE_FACILITY, {"id": lot["id"]})
    variables = {"facilityId": lot["id"], "tariffJson": ops.flat_json(60, 500)}
    assert await admin.error_code(ops.SET_TARIFF, variables) == "NOT_FOUND"


async def test_only_the_tenants_admins_set_tariffs(operator: dict[str, Any], callers: Callers) -> None:
    variables = {"facilityId": operator["lot"]["id"], "tariffJson": ops.flat_json(60, 500)}
    for caller in (operator["staff"], callers.anonymous(), await callers.driver(), callers.city()):
        assert await caller.error_code(ops.SET_TARIFF, variables) == "FORBIDDEN"


async def test_a_version_may_start_in_the_future(operator: dict[str, Any]) -> None:
    admin, lot = operator["admin"], operator["lot"]
    start = datetime.now(UTC) + timedelta(days=3)
    version = await ops.set_tariff(admin, lot["id"], tariff_json=ops.flat_json(60, 500), valid_from=start)
    assert datetime.fromisoformat(version["validFrom"]) == start
    assert (await admin.data(ops.FACILITY_TARIFF, {"id": lot["id"]}))["node"]["tariff"] is None
