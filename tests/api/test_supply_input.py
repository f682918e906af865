"""Bad supply input gets a typed error naming the problem, and nothing of a rejected call is written."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from hub.db import PLATFORM, Database
from tests.api import supply_ops as ops
from tests.api.conftest import Caller, Callers


async def count_rows(owner_db: Database, tenant_id: uuid.UUID) -> tuple[int, int, int]:
    async with owner_db.transaction(PLATFORM) as session:
        result = await session.execute(
            text(
                "SELECT (SELECT count(*) FROM facilities WHERE tenant_id = :t), "
                "(SELECT count(*) FROM lanes WHERE tenant_id = :t), (SELECT count(*) FROM spaces WHERE tenant_id = :t)"
            ),
            {"t": tenant_id},
        )
        return tuple(result.one())


BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[114.05, 22.54], [114.06, 22.55], [114.06, 22.54], [114.05, 22.55], [114.05, 22.54]]],
}
INVALID_GEOMETRIES = [
    ("self-intersecting", BOWTIE, "INVALID_GEOMETRY"),
    (
        "unclosed ring",
        {"type": "Polygon", "coordinates": [[[114.05, 22.54], [114.06, 22.54], [114.06, 22.55], [114.05, 22.55]]]},
        "INVALID_GEOJSON",
    ),
    ("latitude out of range", ops.square(114.05, 95.0), "COORDINATES_OUT_OF_RANGE"),
    (
        "lat-lon order",
        {"type": "Polygon", "coordinates": [[[22.54, 114.05], [22.55, 114.05], [22.55, 114.06], [22.54, 114.05]]]},
        "COORDINATES_SWAPPED",
    ),
    ("wrong type for a lot", {"type": "Point", "coordinates": [114.05, 22.54]}, "WRONG_GEOMETRY_TYPE"),
    ("outside the service area", ops.square(116.40, 39.90), "OUTSIDE_SERVICE_AREA"),
    ("not geometry at all", {"type": "Polygon", "coordinates": "here"}, "INVALID_GEOJSON"),
    ("unparseable text", "{not json", "INVALID_GEOJSON"),
    ("empty", {"type": "Polygon", "coordinates": []}, "EMPTY_GEOMETRY"),
]


@pytest.mark.parametrize(("name", "geometry", "code"), INVALID_GEOMETRIES, ids=[g[0] for g in INVALID_GEOMETRIES])
async def test_invalid_lot_geometry_is_rejected_with_its_code(
    callers: Callers, owner_db: Database, name: str, geometry: Any, code: str
) -> None:
    admin = await callers.operator()
    body = await admin.post(ops.CREATE_LOT, {"input": {"name": "Bad", "geometry": geometry}})
    error = body["errors"][0]
    assert error["extensions"]["code"] == code, error
    assert error["extensions"]["field"] == "input.geometry"
    assert await count_rows(owner_db, admin.tenant_id) == (0, 0, 0)


@pytest.fixture
async def admin_with_lot(callers: Callers) -> tuple[Caller, dict]:
    admin = await callers.operator()
    lot = (await admin.data(ops.CREATE_LOT, {"input": {"name": "Lot", "geometry": ops.square(114.10, 22.55)}}))[
        "createLot"
    ]
    return admin, lot


async def test_one_bad_space_in_a_batch_writes_none_and_names_every_problem(
    admin_with_lot: tuple[Caller, dict], owner_db: Database
) -> None:
    admin, lot = admin_with_lot
    good = [
        {"facilityId": lot["id"], "code": f"OK-{i}", "geometry": ops.point(114.1005, 22.5505 + i * 0.00001)}
        for i in range(50)
    ]
    bad = [
        {"facilityId": lot["id"], "code": "FAR", "geometry": ops.point(114.20, 22.60)},
        {"facilityId": lot["id"], "code": "OK-3", "geometry": ops.point(114.1006, 22.5506)},
        {"facilityId": lot["id"], "code": "BAD CODE!", "geometry": ops.point(114.1006, 22.5506)},
        {"facilityId": lot["id"], "code": "SWAP", "geometry": ops.point(22.5506, 114.1006)},
    ]
    body = await admin.post(ops.CREATE_SPACES, {"input": good + bad})
    extensions = body["errors"][0]["extensions"]
    codes = {problem["code"] for problem in extensions["problems"]}
    assert {"SPACE_OUTSIDE_FACILITY", "CODE_TAKEN", "INVALID_INPUT", "COORDINATES_SWAPPED"} <= codes
    assert {problem.get("index") for problem in extensions["problems"]} >= {50, 52, 53}
    assert await count_rows(owner_db, admin.tenant_id) == (1, 0, 0)


async def test_space_codes_are_unique_within_the_operator(
    admin_with_lot: tuple[Caller, dict], owner_db: Database
) -> None:
    admin, lot = admin_with_lot
    space = {"facilityId": lot["id"], "code": "DUP-1", "geometry": ops.point(114.1005, 22.5505)}
    await admin.data(ops.CREATE_SPACES, {"input": [space]})
    assert await admin.error_code(ops.CREATE_SPACES, {"input": [space]}) == "CODE_TAKEN"
    assert await count_rows(owner_db, admin.tenant_id) == (1, 0, 1)


async def test_ten_thousand_spaces_in_one_call(admin_with_lot: tuple[Caller, dict], owner_db: Database) -> None:
    admin, lot = admin_with_lot
    spaces = [
        {
            "facilityId": lot["id"],
            "code": f"BULK-{i:05d}",
            "geometry": ops.point(114.1001 + (i % 100) * 0.000018, 22.5501 + (i // 100) * 0.000018),
        }
        for i in range(10_000)
    ]
    body = await admin.data(
        "mutation($input: [SpaceInput!]!) { createSpaces(input: $input) { count } }", {"input": spaces}
    )
    assert body["createSpaces"]["count"] == 10_000
    assert await count_rows(owner_db, admin.tenant_id) == (1, 0, 10_000)
    too_many = [*spaces, spaces[0]]
    assert (
        await admin.error_code(
            "mutation($input: [SpaceInput!]!) { createSpaces(input: $input) { count } }", {"input": too_many}
        )
        == "TOO_MANY_ITEMS"
    )


async def test_facility_field_rules(admin_with_lot: tuple[Caller, dict]) -> None:
    admin, lot = admin_with_lot
    cases = [
        ({"levels": 0}, "input.levels"),
        ({"timeZone": "Mars/Olympus"}, "input.timeZone"),
        ({"openingHours": [{"days": "mon-fri", "open": "25:00", "close": "18:00"}]}, "input.openingHours[0]"),
        ({"side": "LEFT"}, "input.side"),
    ]
    for changes, field in cases:
        body = await admin.post(ops.UPDATE_FACILITY, {"id": lot["id"], "input": changes})
        assert body["errors"][0]["extensions"]["field"] == field, body
    updated = await admin.data(
        ops.UPDATE_FACILITY,
        {
            "id": lot["id"],
            "input": {"name": "Renamed", "openingHours": [{"days": "mon-sun", "open": "22:00", "close": "06:00"}]},
        },
    )
    assert updated["updateFacility"]["name"] == "Renamed"


async def test_retiring_a_facility_retires_its_lanes_and_spaces_and_hides_them(callers: Callers) -> None:
    admin = await callers.operator()
    site = await ops.build_site(admin, 114.2000, 22.7000, f"R{uuid.uuid4().hex[:4]}")
    await admin.data(ops.RETIRE_FACILITY, {"id": site["lot"]["id"]})
    query = "{ spacesNear(lon: 114.2, lat: 22.7, radiusMeters: 1000, first: 100) { space { id } } }"
    seen = {row["space"]["id"] for row in (await callers.anonymous().data(query))["spacesNear"]}
    assert not seen & {space["id"] for space in site["spaces"]}
    assert (await callers.anonymous().data(ops.NODE, {"id": site["lane"]["id"]}))["node"] is None
    assert await admin.error_code(ops.RETIRE_FACILITY, {"id": site["lot"]["id"]}) == "NOT_FOUND"


async def test_retiring_spaces_is_all_or_nothing(callers: Callers) -> None:
    admin = await callers.operator()
    site = await ops.build_site(admin, 114.2100, 22.7100, f"T{uuid.uuid4().hex[:4]}")
    mine = [space["id"] for space in site["spaces"]]
    other_operator = await callers.operator()
    theirs = (await ops.build_site(other_operator, 114.2200, 22.7200, f"U{uuid.uuid4().hex[:4]}"))["spaces"][0]["id"]
    assert await admin.error_code(ops.RETIRE_SPACES, {"ids": [*mine[:2], theirs]}) == "NOT_FOUND"
    for space_id in mine:  # nothing of the refused call was kept
        assert (await callers.anonymous().data(ops.NODE, {"id": space_id}))["node"] is not None
    retired = (await admin.data(ops.RETIRE_SPACES, {"ids": [mine[1], mine[0]]}))["retireSpaces"]
    assert [space["id"] for space in retired] == [mine[1], mine[0]]
    assert (await callers.anonymous().data(ops.NODE, {"id": mine[0]}))["node"] is None


async def test_bulk_lots_refuse_codes_already_live(callers: Callers, owner_db: Database) -> None:
    admin = await callers.operator()
    lots = [{"name": f"L{i}", "code": f"P{i}", "geometry": ops.square(114.30 + i * 0.01, 22.60)} for i in range(3)]
    await admin.data("mutation($input: [LotInput!]!) { createLots(input: $input) { id } }", {"input": lots[:1]})
    body = await admin.post("mutation($input: [LotInput!]!) { createLots(input: $input) { id } }", {"input": lots})
    assert body["errors"][0]["extensions"]["code"] == "CODE_TAKEN"
    assert await count_rows(owner_db, admin.tenant_id) == (1, 0, 0)


async def test_operators_page_through_every_operator(callers: Callers) -> None:
    for _ in range(3):
        await callers.operator()
    query = (
        "query($after: String) { operators(first: 2, after: $after) "
        "{ edges { node { slug } } pageInfo { hasNextPage endCursor } } }"
    )
    slugs: list[str] = []
    after = None
    while True:
        page = (await callers.anonymous().data(query, {"after": after}))["operators"]
        slugs += [edge["node"]["slug"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert slugs == sorted(slugs) and len(slugs) == len(set(slugs)) >= 3


async def test_a_facilitys_time_zone_name_or_shape_can_be_changed_but_not_cleared(callers) -> None:
    admin = await callers.operator()
    site = await ops.build_site(admin, 113.93, 22.52, f"TZ{uuid.uuid4().hex[:4]}")
    for field in ("timeZone", "name", "geometry"):
        body = await admin.post(ops.UPDATE_FACILITY, {"id": site["lot"]["id"], "input": {field: None}})
        [error] = body["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"]) == ("INVALID_INPUT", f"input.{field}")
