"""The benchmark's parts that can be checked without timing anything: where it searches, how it ranks
latencies, and that its direct path runs the API's search under the same public scope."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import shapely

from bench.direct_load import _open, run_direct
from bench.http_load import NEAR_QUERY, lua_script
from bench.points import DENSE_DISTRICTS, random_search_point
from bench.results import percentile
from hub.config import Settings
from hub.seed import repository
from hub.seed.demo import SERVICE_AREA_BOUNDS, DemoSpec, plan_city
from hub.supply.repository import spaces_near_direct


def test_percentile_is_nearest_rank() -> None:
    samples = [float(value) for value in range(1, 101)]
    assert percentile(samples, 0.50) == 50.0
    assert percentile(samples, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


def test_search_points_land_in_the_dense_districts() -> None:
    rng = random.Random(5)
    west, south, east, north = SERVICE_AREA_BOUNDS
    points = [random_search_point(rng) for _ in range(2_000)]
    assert all(west < lon < east and south < lat < north for lon, lat in points)
    # Every dense district gets searched, each roughly in proportion to its weight.
    nearest = [min(DENSE_DISTRICTS, key=lambda d: (d.lon - lon) ** 2 + (d.lat - lat) ** 2).code for lon, lat in points]
    assert {d.code for d in DENSE_DISTRICTS} == set(nearest)


def test_wrk_script_posts_the_public_query_for_every_dense_district() -> None:
    script = lua_script()
    assert json.dumps(NEAR_QUERY) in script
    for district in DENSE_DISTRICTS:
        assert f"{{{district.lon}, {district.lat}, {district.spread_m}, {district.weight}}}" in script


async def test_direct_path_finds_seeded_spaces_as_the_public_sees_them(settings: Settings) -> None:
    suffix = f"-b{uuid.uuid4().hex[:6]}"
    plan = plan_city(DemoSpec(spaces=400, seed=31, slug_suffix=suffix))
    owner = await repository.connect(settings.database_url)
    try:
        await repository.load_city(owner, plan, datetime.now(UTC))
        target = plan.spaces_of(plan.facilities[0], datetime.now(UTC))[0]
        point = shapely.from_wkb(target.geom)
        conn = await _open(settings.app_database_url)
        try:
            rows = await spaces_near_direct(conn, lon=point.x, lat=point.y, radius_m=500, first=20)
        finally:
            await conn.close()
        result = await run_direct(settings.app_database_url, connections=4, seconds=0.5)
    finally:
        async with owner.transaction():
            await repository.set_platform_scope(owner)
            await owner.execute("DELETE FROM tenants WHERE slug LIKE '%' || $1", suffix)
        await owner.close()
    assert target.code in {row["code"] for row in rows}
    assert rows[0]["distance_m"] < 1.0
    assert result.requests > 0 and result.errors == 0
