"""The demo city: deterministic, geometrically sound, realistic in its mix, and safe to run twice.

A small city (2,000 spaces) is seeded once through the CLI into the shared test database, with operator
slugs unique to this module, and every database assertion is scoped to those operators.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import shapely
from sqlalchemy import text
from typer.testing import CliRunner

from hub.config import Settings, get_settings
from hub.db import PLATFORM, Database
from hub.seed import repository
from hub.seed.cli import seed_app
from hub.seed.demo import SERVICE_AREA_BOUNDS, DemoSpec, plan_city

SPACES = 2_000
SEED = 4242
SUFFIX = f"-t{uuid.uuid4().hex[:6]}"
runner = CliRunner()


def _seed_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(seed_app, ["demo", "--spaces", str(SPACES), "--seed", str(SEED), *args])
    return result.exit_code, result.output


async def _delete_tenants_with_suffix(settings: Settings, suffix: str) -> None:
    conn = await repository.connect(settings.database_url)
    try:
        async with conn.transaction():
            await repository.set_platform_scope(conn)
            await conn.execute("DELETE FROM tenants WHERE slug LIKE '%' || $1", suffix)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def seeded() -> Iterator[DemoSpec]:
    code, output = _seed_cli("--slug-suffix", SUFFIX)
    assert code == 0, output
    assert f"{SPACES:,} spaces" in output
    yield DemoSpec(spaces=SPACES, seed=SEED, slug_suffix=SUFFIX)
    # Leave the shared database as other modules expect it: no demo supply around their test points.
    asyncio.run(_delete_tenants_with_suffix(get_settings(), SUFFIX))


async def _fetch(owner_db: Database, sql: str) -> list:
    async with owner_db.transaction(PLATFORM) as session:
        return list((await session.execute(text(sql), {"suffix": SUFFIX})).all())


MINE = "tenant_id IN (SELECT id FROM tenants WHERE slug LIKE '%' || :suffix)"


def test_same_spec_gives_the_same_city_and_another_seed_a_different_one() -> None:
    now = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    spec = DemoSpec(spaces=1_500, seed=11)
    first, second = plan_city(spec), plan_city(spec)
    first_spaces = [space for batch in first.iter_spaces(now, batch_size=400) for space in batch]
    # Batch size must not change what comes out.
    second_spaces = [space for batch in second.iter_spaces(now, batch_size=10_000) for space in batch]
    assert first.tenants == second.tenants
    assert [f.row for f in first.facilities] == [f.row for f in second.facilities]
    assert first.lanes == second.lanes
    assert first_spaces == second_spaces
    assert len(first_spaces) == 1_500

    other = plan_city(DemoSpec(spaces=1_500, seed=12))
    other_spaces = [space for batch in other.iter_spaces(now) for space in batch]
    assert {s.id for s in other_spaces}.isdisjoint({s.id for s in first_spaces})
    assert [s.geom for s in other_spaces] != [s.geom for s in first_spaces]


def test_slug_suffix_changes_slugs_and_ids_but_not_the_shape_of_the_city() -> None:
    now = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    plain = plan_city(DemoSpec(spaces=500, seed=3))
    suffixed = plan_city(DemoSpec(spaces=500, seed=3, slug_suffix="-x1"))
    assert [t.slug + "-x1" for t in plain.tenants] == [t.slug for t in suffixed.tenants]
    assert {t.id for t in plain.tenants}.isdisjoint({t.id for t in suffixed.tenants})
    plain_spaces = [s for batch in plain.iter_spaces(now) for s in batch]
    suffixed_spaces = [s for batch in suffixed.iter_spaces(now) for s in batch]
    assert [(s.code, s.geom) for s in plain_spaces] == [(s.code, s.geom) for s in suffixed_spaces]
    assert {s.id for s in plain_spaces}.isdisjoint({s.id for s in suffixed_spaces})


def test_about_ten_operators_with_shenzhen_defaults() -> None:
    plan = plan_city(DemoSpec(spaces=20_000))
    assert 8 <= len(plan.tenants) <= 12
    assert len({t.slug for t in plan.tenants}) == len(plan.tenants)
    assert {(t.time_zone, t.currency, t.platform_fee_bps) for t in plan.tenants} == {("Asia/Shanghai", "CNY", 60)}
    kinds = [f.row.kind for f in plan.facilities]
    # "A few hundred lots and curb zones" at the default size, and both kinds well represented.
    assert 200 <= len(kinds) <= 1_500
    assert kinds.count("lot") >= 50 and kinds.count("curb_zone") >= 50


def test_bad_sizes_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="spaces must be between 1"):
        DemoSpec(spaces=0)
    result = runner.invoke(seed_app, ["demo", "--spaces", "0"])
    assert result.exit_code == 2
    assert "--spaces" in result.output
    result = runner.invoke(seed_app, ["demo", "--slug-suffix", "bad suffix!"])
    assert result.exit_code == 2
    assert "slug suffix" in result.output


async def test_loaded_rows_are_exactly_the_generated_city(seeded: DemoSpec, owner_db: Database) -> None:
    plan = plan_city(seeded)
    expected = {
        (str(s.id), s.code, round(p.x, 9), round(p.y, 9))
        for batch in plan.iter_spaces(datetime.now(UTC))
        for s in batch
        for p in [shapely.from_wkb(s.geom)]
    }
    rows = await _fetch(owner_db, f"SELECT id::text, code, ST_X(geom), ST_Y(geom) FROM spaces WHERE {MINE}")
    assert {(r[0], r[1], round(r[2], 9), round(r[3], 9)) for r in rows} == expected
    assert len(rows) == SPACES
    tenants = await _fetch(owner_db, "SELECT count(*) FROM tenants WHERE slug LIKE '%' || :suffix")
    assert tenants[0][0] == len(plan.tenants)


async def test_every_geometry_is_valid_and_inside_the_service_area(seeded: DemoSpec, owner_db: Database) -> None:
    west, south, east, north = SERVICE_AREA_BOUNDS
    rows = await _fetch(
        owner_db,
        f"""
        SELECT f.kind, ST_GeometryType(f.geom), ST_IsValid(f.geom),
               ST_CoveredBy(f.geom, t.service_area),
               f.entrances IS NULL OR (ST_IsValid(f.entrances) AND ST_DWithin(f.entrances::geography,
                   ST_Boundary(f.geom)::geography, 0.5)),
               ST_SRID(f.geom)
        FROM facilities f JOIN tenants t ON t.id = f.tenant_id
        WHERE f.{MINE}
        """,
    )
    assert rows
    for kind, geometry_type, valid, inside, entrances_on_edge, srid in rows:
        assert valid and inside and entrances_on_edge and srid == 4326
        assert geometry_type == ("ST_Polygon" if kind == "lot" else "ST_LineString")
    areas = await _fetch(owner_db, "SELECT ST_AsText(service_area) FROM tenants WHERE slug LIKE '%' || :suffix")
    bounds = shapely.from_wkt(areas[0][0]).bounds
    assert bounds == (west, south, east, north)


async def test_every_space_lies_in_or_beside_its_facility(seeded: DemoSpec, owner_db: Database) -> None:
    rows = await _fetch(
        owner_db,
        f"""
        SELECT s.code, f.kind, s.facility_kind,
               ST_Within(s.geom, f.geom) AS inside,
               ST_Distance(s.location, f.geom::geography) AS metres,
               ST_Equals(s.location::geometry, s.geom) AS location_is_point
        FROM spaces s JOIN facilities f ON f.tenant_id = s.tenant_id AND f.id = s.facility_id
        WHERE s.{MINE}
        """,
    )
    assert len(rows) == SPACES
    kinds = {kind for _, kind, *_ in rows}
    assert kinds == {"lot", "curb_zone"}
    for code, kind, facility_kind, inside, metres, location_is_point in rows:
        assert facility_kind == kind, code
        assert location_is_point, code
        if kind == "lot":
            assert inside, f"{code} is outside its lot"
        else:
            assert metres <= 3.0, f"{code} is {metres:.1f} m from its curb line"


async def test_lots_have_lanes_both_ways_and_sane_attributes(seeded: DemoSpec, owner_db: Database) -> None:
    rows = await _fetch(
        owner_db,
        f"""
        SELECT f.code, f.capacity, f.levels, f.opening_hours, f.max_vehicle_height_cm,
               (SELECT count(*) FROM spaces s WHERE s.tenant_id = f.tenant_id AND s.facility_id = f.id),
               array(SELECT l.direction FROM lanes l WHERE l.tenant_id = f.tenant_id AND l.facility_id = f.id)
        FROM facilities f WHERE f.kind = 'lot' AND f.{MINE}
        """,
    )
    assert rows
    for code, capacity, levels, opening_hours, _height, space_count, directions in rows:
        assert capacity == space_count, code
        assert levels >= 1
        assert opening_hours and {"days", "open", "close"} <= set(opening_hours[0])
        assert 1 <= len(directions) <= 4
        assert directions[0] == "entry"
        if len(directions) > 1:
            assert "exit" in directions
    curbs = await _fetch(
        owner_db,
        f"SELECT code, street_name, side, parking_angle FROM facilities WHERE kind = 'curb_zone' AND {MINE}",
    )
    for code, street, side, angle in curbs:
        assert street and side in ("left", "right", "both") and angle in ("parallel", "perpendicular", "angled")
        district, number = code.split("-")
        assert len(district) == 2 and number.isdigit(), code


async def test_space_codes_are_unique_within_each_tenant(seeded: DemoSpec, owner_db: Database) -> None:
    rows = await _fetch(
        owner_db, f"SELECT tenant_id, count(*), count(DISTINCT code) FROM spaces WHERE {MINE} GROUP BY tenant_id"
    )
    assert len(rows) >= 5
    for _tenant, total, distinct in rows:
        assert total == distinct


async def test_status_mix_and_staleness_are_realistic(seeded: DemoSpec, owner_db: Database) -> None:
    (row,) = await _fetch(
        owner_db,
        f"""
        SELECT count(*)::float,
               count(*) FILTER (WHERE status = 'vacant'),
               count(*) FILTER (WHERE status = 'occupied'),
               count(*) FILTER (WHERE status = 'reserved'),
               count(*) FILTER (WHERE status = 'out_of_service'),
               count(*) FILTER (WHERE status_confirmed_at < now() - interval '30 minutes'),
               count(*) FILTER (WHERE status_confirmed_at >= now() - interval '10 minutes'),
               count(*) FILTER (WHERE status_confirmed_at > now()),
               count(*) FILTER (WHERE ev_charger),
               count(*) FILTER (WHERE accessible),
               count(*) FILTER (WHERE covered),
               count(*) FILTER (WHERE shared),
               count(DISTINCT size_class)
        FROM spaces WHERE {MINE}
        """,
    )
    total, vacant, occupied, reserved, out_of_service, stale, recent, future, ev, accessible, covered, shared, sizes = (
        row
    )
    assert 0.25 <= vacant / total <= 0.50
    assert 0.42 <= occupied / total <= 0.68
    assert 0.01 <= reserved / total <= 0.06
    assert 0.005 <= out_of_service / total <= 0.045
    # About a tenth are stale (unknown to drivers); most of the rest were confirmed minutes ago.
    assert 0.06 <= stale / total <= 0.14
    assert recent / total >= 0.8
    assert future == 0
    assert 0.03 <= ev / total <= 0.15
    assert 0.008 <= accessible / total <= 0.04
    assert covered > 0 and shared > 0 and sizes >= 3


def test_if_empty_does_nothing_on_a_seeded_database(seeded: DemoSpec) -> None:
    before = asyncio.run(_counts())
    code, output = _seed_cli("--if-empty", "--slug-suffix", SUFFIX + "x")
    assert code == 0, output
    assert "not seeding" in output
    assert asyncio.run(_counts()) == before


def test_seeding_the_same_city_twice_fails_clearly_and_writes_nothing(seeded: DemoSpec) -> None:
    before = asyncio.run(_counts())
    code, output = _seed_cli("--slug-suffix", SUFFIX)
    assert code == 1
    assert "already loaded" in output
    assert asyncio.run(_counts()) == before


async def _counts() -> tuple[int, int, int, int]:
    conn = await repository.connect(get_settings().database_url)
    try:
        async with conn.transaction():
            await repository.set_platform_scope(conn)
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM facilities), "
                "(SELECT count(*) FROM lanes), (SELECT count(*) FROM spaces)"
            )
    finally:
        await conn.close()
    return tuple(row)  # type: ignore[return-value]


async def test_staged_load_with_index_rebuild_gives_the_same_rows_and_indexes(settings: Settings) -> None:
    """The path an owner without BYPASSRLS takes, and the path large loads take, on a tiny city."""
    suffix = f"-s{uuid.uuid4().hex[:6]}"
    spec = DemoSpec(spaces=300, seed=99, slug_suffix=suffix)
    conn = await repository.connect(settings.database_url)
    index_sql = "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'spaces'::regclass ORDER BY 1"
    try:
        indexes_before = [r[0] for r in await conn.fetch(index_sql)]
        counts = await repository.load_city(conn, plan_city(spec), datetime.now(UTC), staged=True, rebuild_indexes=True)
        indexes_after = [r[0] for r in await conn.fetch(index_sql)]
        async with conn.transaction():
            await repository.set_platform_scope(conn)
            loaded = await conn.fetchval(
                "SELECT count(*) FROM spaces WHERE tenant_id IN (SELECT id FROM tenants WHERE slug LIKE '%' || $1)",
                suffix,
            )
    finally:
        await conn.close()
        await _delete_tenants_with_suffix(settings, suffix)
    assert counts.spaces == loaded == 300
    assert indexes_after == indexes_before
    assert any("gist" in definition for definition in indexes_after)
