"""find-a-space agrees with an independent PostGIS computation: same set, same order, distances within
1 m; radius and filters respected; stale statuses never count as vacant."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from hub.db import PLATFORM, Database
from tests.api import supply_ops as ops
from tests.api.conftest import Callers

CENTER = (113.8300, 22.7800)  # a corner of the city no other test builds in
STALE_AFTER = timedelta(minutes=30)

NEAR = """
query($lon: Float!, $lat: Float!, $radius: Float!, $first: Int!, $filter: SpaceSearchFilter) {
  spacesNear(lon: $lon, lat: $lat, radiusMeters: $radius, first: $first, filter: $filter) {
    distanceMeters space { id code status evCharger accessible } facility { kind } operator { id }
  }
}
"""


@pytest.fixture(scope="module")
async def scattered_city(callers: Callers, owner_db: Database) -> None:
    """Two operators' lots and curb zones around CENTER with 240 spaces of mixed status and age."""
    rng = random.Random(20261121)
    now = datetime.now(UTC)
    for operator_index in range(2):
        admin = await callers.operator()
        prefix = f"N{operator_index}{uuid.uuid4().hex[:4]}"
        for block in range(4):
            lon = CENTER[0] - 0.006 + 0.004 * block
            lat = CENTER[1] - 0.004 + 0.004 * operator_index
            lot = (
                await admin.data(
                    ops.CREATE_LOT, {"input": {"name": f"{prefix}-{block}", "geometry": ops.square(lon, lat, 0.003)}}
                )
            )["createLot"]
            curb = (
                await admin.data(
                    ops.CREATE_CURB,
                    {
                        "input": {
                            "name": f"{prefix}-street-{block}",
                            "code": f"{prefix}-C{block}",
                            "geometry": {
                                "type": "LineString",
                                "coordinates": [[lon, lat - 0.0003], [lon + 0.003, lat - 0.0003]],
                            },
                        }
                    },
                )
            )["createCurbZone"]
            spaces = []
            for index in range(30):
                on_curb = index % 3 == 0
                position = (
                    [lon + 0.0001 * index, lat - 0.0003]
                    if on_curb
                    else [lon + rng.uniform(0.0002, 0.0028), lat + rng.uniform(0.0002, 0.0028)]
                )
                spaces.append(
                    {
                        "facilityId": curb["id"] if on_curb else lot["id"],
                        "code": f"{prefix}-{block}-{index}",
                        "geometry": {"type": "Point", "coordinates": position},
                        "evCharger": rng.random() < 0.3,
                        "accessible": rng.random() < 0.2,
                        "status": rng.choice(["VACANT", "VACANT", "OCCUPIED", "RESERVED", "OUT_OF_SERVICE"]),
                    }
                )
            await admin.data(ops.CREATE_SPACES, {"input": spaces})
    # Age a third of the statuses past the staleness window, as a silent sensor would.
    async with owner_db.transaction(PLATFORM) as session:
        await session.execute(
            text(
                "UPDATE spaces SET status_confirmed_at = :old WHERE ST_DWithin(location, "
                "ST_MakePoint(:lon, :lat)::geography, 3000) AND random() < 0.33"
            ),
            {"old": now - STALE_AFTER - timedelta(minutes=5), "lon": CENTER[0], "lat": CENTER[1]},
        )


async def reference(owner_db: Database, lon: float, lat: float, radius: float, criteria: dict[str, Any]) -> list[tuple]:
    """The independent answer: every live space in the database, distance by ST_Distance on geography."""
    sql = """
        SELECT id, code, status, status_confirmed_at, ev_charger, accessible, facility_kind,
               ST_Distance(location, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS d
        FROM spaces WHERE retired_at IS NULL"""
    async with owner_db.transaction(PLATFORM) as session:
        rows = (await session.execute(text(sql), {"lon": lon, "lat": lat})).all()
    fresh_after = datetime.now(UTC) - STALE_AFTER
    chosen = []
    for row in rows:
        if row.d > radius:
            continue
        if criteria.get("vacantOnly") and not (
            row.status == "vacant" and row.status_confirmed_at and row.status_confirmed_at >= fresh_after
        ):
            continue
        if criteria.get("evCharger") is not None and row.ev_charger != criteria["evCharger"]:
            continue
        if criteria.get("accessible") is not None and row.accessible != criteria["accessible"]:
            continue
        if criteria.get("facilityKind") and row.facility_kind != criteria["facilityKind"].lower():
            continue
        chosen.append((row.d, str(row.id), row.code))
    chosen.sort()
    return chosen


FILTERS = [
    {},
    {"vacantOnly": True},
    {"evCharger": True},
    {"accessible": True, "vacantOnly": True},
    {"facilityKind": "CURB_ZONE"},
    {"facilityKind": "LOT", "evCharger": False},
]


@pytest.mark.parametrize("criteria", FILTERS, ids=[str(f) or "none" for f in FILTERS])
async def test_spaces_near_matches_postgis(
    scattered_city: None, callers: Callers, owner_db: Database, criteria: dict
) -> None:
    rng = random.Random(str(criteria))
    found = 0
    for _ in range(4):
        lon = CENTER[0] + rng.uniform(-0.008, 0.008)
        lat = CENTER[1] + rng.uniform(-0.006, 0.006)
        radius = rng.choice([150.0, 400.0, 900.0])
        first = rng.choice([5, 20, 100])
        body = await callers.anonymous().data(
            NEAR, {"lon": lon, "lat": lat, "radius": radius, "first": first, "filter": criteria}
        )
        got = body["spacesNear"]
        expected = (await reference(owner_db, lon, lat, radius, criteria))[:first]
        assert [row["space"]["code"] for row in got] == [code for _, _, code in expected]
        for row, (distance, _, _) in zip(got, expected, strict=True):
            assert abs(row["distanceMeters"] - distance) < 1.0
            assert row["distanceMeters"] <= radius
        if criteria.get("vacantOnly"):
            assert all(row["space"]["status"] == "VACANT" for row in got)
        found += len(got)
    assert found > 0, "the probes should find spaces, or this test proves nothing"


async def test_stale_statuses_read_as_unknown(scattered_city: None, callers: Callers) -> None:
    body = await callers.anonymous().data(
        NEAR, {"lon": CENTER[0], "lat": CENTER[1], "radius": 3000.0, "first": 100, "filter": {}}
    )
    statuses = {row["space"]["status"] for row in body["spacesNear"]}
    assert "UNKNOWN" in statuses and "VACANT" in statuses


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"lon": 200.0, "lat": 22.5, "radius": 100.0, "first": 5}, "COORDINATES_OUT_OF_RANGE"),
        ({"lon": 114.0, "lat": -95.0, "radius": 100.0, "first": 5}, "COORDINATES_OUT_OF_RANGE"),
        ({"lon": 114.0, "lat": 22.5, "radius": 0.0, "first": 5}, "INVALID_INPUT"),
        ({"lon": 114.0, "lat": 22.5, "radius": 100.0, "first": 101}, "INVALID_INPUT"),
        ({"lon": 114.0, "lat": 22.5, "radius": 100.0, "first": 0}, "INVALID_INPUT"),
    ],
)
async def test_bad_search_input_gets_a_typed_error(callers: Callers, variables: dict, code: str) -> None:
    assert await callers.anonymous().error_code(NEAR, {**variables, "filter": None}) == code
