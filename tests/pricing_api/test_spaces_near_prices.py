"""Find-a-space with a planned stay: each result quoted under its facility's tariff (as the engine prices it),
filtered by a maximum price and sorted by price, with `first` applied after both; still one search statement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.pricing import service
from hub.pricing.rules import price
from hub.pricing.tariff import Tariff
from tests.api import supply_ops
from tests.api.conftest import Caller, Callers
from tests.api.test_graphql_platform import _statements
from tests.pricing_api import ops

CENTER = (114.5000, 22.4500)  # a corner of the city no other test builds in
SHANGHAI = ZoneInfo("Asia/Shanghai")
STAY_START = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
STAY = {"from": ops.iso(STAY_START), "to": ops.iso(STAY_START + timedelta(hours=2, minutes=10))}
# Nearest first: no tariff, dear, mid (a curb zone), cheap. Each hour started costs the price given.
SITES = [("none", None), ("dear", 800), ("mid", 500), ("cheap", 200)]


def tariff_of(hourly: int) -> dict[str, Any]:
    return ops.flat_json(60, hourly, vehicle_class_percent={"large": 150})


async def _site(admin: Caller, index: int, name: str, hourly: int | None) -> None:
    lon, lat = CENTER[0] + 0.001 * index, CENTER[1]
    code = f"{name}-{uuid.uuid4().hex[:6]}"
    if name == "mid":
        line = {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.0008, lat]]}
        created = await admin.data(supply_ops.CREATE_CURB, {"input": {"name": code, "code": code, "geometry": line}})
        facility = created["createCurbZone"]
        positions = [[lon + 0.0002, lat], [lon + 0.0006, lat]]
    else:
        geometry = supply_ops.square(lon, lat - 0.0004, 0.0008)
        facility = (await admin.data(supply_ops.CREATE_LOT, {"input": {"name": code, "geometry": geometry}}))[
            "createLot"
        ]
        positions = [[lon + 0.0002, lat], [lon + 0.0006, lat]]
    spaces = [
        {"facilityId": facility["id"], "code": f"{name}-{position}-{code}", "geometry": supply_ops.point(*xy)}
        for position, xy in enumerate(positions)
    ]
    await admin.data(supply_ops.CREATE_SPACES, {"input": spaces})
    if hourly is not None:
        await ops.set_tariff(admin, facility["id"], tariff_json=tariff_of(hourly))


@pytest.fixture(scope="module")
async def priced_street(callers: Callers) -> None:
    """Two operators' facilities in a row east of CENTER, 2 spaces each, nearest first as SITES lists them."""
    alpha, beta = await callers.operator(), await callers.operator()
    for index, (name, hourly) in enumerate(SITES):
        await _site(beta if name == "none" else alpha, index, name, hourly)


def expected_fen(hourly: int | None, vehicle_class: str = "standard") -> int | None:
    if hourly is None:
        return None
    stay_end = STAY_START + timedelta(hours=2, minutes=10)
    return price(Tariff.from_dict(tariff_of(hourly)), SHANGHAI, vehicle_class, STAY_START, stay_end).total_fen


async def near(caller: Caller, filter: dict[str, Any] | None, sort_by: str = "DISTANCE", first: int = 20) -> list:
    variables = {
        "lon": CENTER[0],
        "lat": CENTER[1],
        "radius": 600.0,
        "first": first,
        "filter": filter,
        "sortBy": sort_by,
    }
    return (await caller.data(ops.NEAR, variables))["spacesNear"]


def site_of(result: dict[str, Any]) -> str:
    return result["space"]["code"].split("-")[0]


async def test_each_result_carries_its_quoted_price(priced_street: None, callers: Callers) -> None:
    plain = await near(callers.anonymous(), None)
    quoted = await near(callers.anonymous(), {"plannedStay": STAY})
    assert [row["space"]["code"] for row in quoted] == [row["space"]["code"] for row in plain]
    assert [site_of(row) for row in quoted] == ["none", "none", "dear", "dear", "mid", "mid", "cheap", "cheap"]
    hourly = dict(SITES)
    for row in quoted:
        assert row["quotedPriceFen"] == expected_fen(hourly[site_of(row)])
    assert all(row["quotedPriceFen"] is None for row in plain)
    assert expected_fen(200) == 600  # three hours started at 200 fen: the reference itself is sane


async def test_the_vehicle_class_is_priced(priced_street: None, callers: Callers) -> None:
    quoted = await near(await callers.driver(), {"plannedStay": STAY, "vehicleClass": "LARGE"})
    hourly = dict(SITES)
    for row in quoted:
        assert row["quotedPriceFen"] == expected_fen(hourly[site_of(row)], "large")


async def test_max_price_drops_dearer_and_unpriced_spaces(priced_street: None, callers: Callers) -> None:
    limit = expected_fen(500)
    found = await near(callers.anonymous(), {"plannedStay": STAY, "maxPriceFen": limit})
    assert [site_of(row) for row in found] == ["mid", "mid", "cheap", "cheap"]
    assert all(row["quotedPriceFen"] <= limit for row in found)
    # `first` counts what passes the filter: the nearest affordable space, though four dearer ones are nearer.
    (nearest,) = await near(callers.anonymous(), {"plannedStay": STAY, "maxPriceFen": limit}, first=1)
    assert site_of(nearest) == "mid"
    assert await near(callers.anonymous(), {"plannedStay": STAY, "maxPriceFen": expected_fen(200) - 1}) == []


async def test_sort_by_price_then_distance(priced_street: None, callers: Callers) -> None:
    found = await near(callers.anonymous(), {"plannedStay": STAY}, sort_by="PRICE")
    assert [site_of(row) for row in found] == ["cheap", "cheap", "mid", "mid", "dear", "dear", "none", "none"]
    for first, second in pairwise(found):
        if site_of(first) == site_of(second):
            assert first["distanceMeters"] <= second["distanceMeters"]
    top = await near(callers.anonymous(), {"plannedStay": STAY}, sort_by="PRICE", first=3)
    assert [site_of(row) for row in top] == ["cheap", "cheap", "mid"]


async def test_a_scheduled_tariff_prices_stays_after_it_starts(callers: Callers) -> None:
    admin = await callers.operator()
    lon, lat = CENTER[0] + 0.02, CENTER[1] + 0.02
    lot = await ops.create_lot(admin, lon, lat)
    code = f"sched-{uuid.uuid4().hex[:6]}"
    space = {"facilityId": lot["id"], "code": code, "geometry": supply_ops.point(lon + 0.001, lat + 0.001)}
    await admin.data(supply_ops.CREATE_SPACES, {"input": [space]})
    await ops.set_tariff(admin, lot["id"], tariff_json=ops.flat_json(60, 100))
    await ops.set_tariff(
        admin, lot["id"], tariff_json=ops.flat_json(60, 900), valid_from=STAY_START + timedelta(hours=1)
    )
    variables = {"lon": lon + 0.001, "lat": lat + 0.001, "radius": 50.0, "first": 5, "sortBy": "DISTANCE"}
    prices = []
    for start in (STAY_START, STAY_START + timedelta(hours=1)):
        stay = {"from": ops.iso(start), "to": ops.iso(start + timedelta(minutes=30))}
        (row,) = (await callers.anonymous().data(ops.NEAR, {**variables, "filter": {"plannedStay": stay}}))[
            "spacesNear"
        ]
        prices.append(row["quotedPriceFen"])
    assert prices == [100, 900]


@pytest.mark.parametrize(
    ("filter", "sort_by", "code", "field"),
    [
        ({"maxPriceFen": 1000}, "DISTANCE", "INVALID_INPUT", "filter.plannedStay"),
        ({}, "PRICE", "INVALID_INPUT", "filter.plannedStay"),
        ({"plannedStay": STAY, "maxPriceFen": -1}, "DISTANCE", "INVALID_INPUT", "filter.maxPriceFen"),
        (
            {"plannedStay": {"from": STAY["to"], "to": STAY["from"]}},
            "DISTANCE",
            "INVALID_STAY",
            "filter.plannedStay.to",
        ),
        (
            {"plannedStay": {"from": STAY["from"], "to": ops.iso(STAY_START + timedelta(days=32))}},
            "PRICE",
            "STAY_TOO_LONG",
            "filter.plannedStay.to",
        ),
    ],
)
async def test_bad_price_criteria_get_typed_errors(
    callers: Callers, filter: dict[str, Any], sort_by: str, code: str, field: str
) -> None:
    variables = {"lon": CENTER[0], "lat": CENTER[1], "radius": 600.0, "first": 5, "filter": filter, "sortBy": sort_by}
    (error,) = await ops.errors(callers.anonymous(), ops.NEAR, variables)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (code, field)


async def test_a_priced_search_is_still_one_statement(priced_street: None, callers: Callers, app) -> None:  # type: ignore[no-untyped-def]
    query = f"""{{ spacesNear(lon: {CENTER[0]}, lat: {CENTER[1]}, radiusMeters: 600, first: 20, sortBy: PRICE,
                 filter: {{plannedStay: {{from: "{STAY["from"]}", to: "{STAY["to"]}"}}, maxPriceFen: 100000}})
                 {{ quotedPriceFen space {{ code }} facility {{ name }} operator {{ slug }} }} }}"""
    service.TARIFFS.clear()
    # BEGIN + scope + the search (tariff version ids included) + one batched read of the uncached definitions
    assert await _statements(app.state.db, callers.anonymous(), query) == 4
    # Versions are sealed, so their parsed tariffs stay cached: the next search is BEGIN + scope + search.
    assert await _statements(app.state.db, callers.anonymous(), query) == 3
