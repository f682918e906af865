"""The SQL builders against real PostgreSQL+PostGIS: they select what an independent computation says
they should (ST_Distance written by hand, shapely on the client), and the planner can answer the search
predicates from a GiST index on a geography column.

Each test works in a temporary table dropped at the end of its transaction; no app tables are touched.
"""

from __future__ import annotations

import io
import itertools
import math
import random

from geoalchemy2 import Geography, Geometry
from shapely.geometry import LineString, Point, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from geo import (
    distance_meters,
    from_db,
    in_bbox,
    in_polygon,
    nearest,
    representative_point,
    to_db,
    to_ewkb_hex,
    within_meters,
)
from hub.db import PLATFORM, Database
from tests.geo.shapes import EAST, NORTH, SOUTH, WEST, random_shapes, star_polygon

probe = Table(
    "geo_probe",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("g", Geography("POINT", srid=4326, spatial_index=False)),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False)),
)

CREATE_PROBE = text(
    "CREATE TEMP TABLE geo_probe (id int PRIMARY KEY, g geography(Point, 4326), geom geometry(Geometry, 4326)) "
    "ON COMMIT DROP"
)
INDEX_PROBE = [
    text("CREATE INDEX geo_probe_g_gist ON geo_probe USING gist (g)"),
    text("CREATE INDEX geo_probe_geom_gist ON geo_probe USING gist (geom)"),
    text("ANALYZE geo_probe"),
]
# Written out by hand rather than with the builders, as the independent reference.
REFERENCE_DISTANCES = text(
    "SELECT id, ST_Distance(g, CAST(ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326) "
    "AS geography)) AS d FROM geo_probe"
)


async def fill_probe(session: AsyncSession, shapes: list[BaseGeometry]) -> None:
    """One row per shape: the shape itself in `geom`, its representative point as geography in `g`."""
    await session.execute(CREATE_PROBE)
    rows = [{"id": i, "g": to_db(representative_point(shape)), "geom": to_db(shape)} for i, shape in enumerate(shapes)]
    await session.execute(insert(probe), rows)


def scattered_points(rng: random.Random, count: int) -> list[BaseGeometry]:
    return [Point(rng.uniform(WEST, EAST), rng.uniform(SOUTH, NORTH)) for _ in range(count)]


async def ids(session: AsyncSession, query: Select) -> set[int]:
    return set((await session.execute(query)).scalars())


async def explain(session: AsyncSession, query: Select) -> str:
    """EXPLAIN of the query exactly as the application sends it: with bound parameters, not literals."""
    connection = await session.connection()
    compiled = query.compile(dialect=connection.dialect)
    params = compiled.construct_params()
    positional = tuple(params[name] for name in compiled.positiontup or ())
    result = await connection.exec_driver_sql("EXPLAIN " + compiled.string, positional)
    return "\n".join(row[0] for row in result)


def haversine_meters(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lon1, lat1), (lon2, lat2) = a, b
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


async def test_within_meters_agrees_with_st_distance(owner_db: Database) -> None:
    rng = random.Random(7)
    # Clustered around a few centres so that every radius catches some points and misses others.
    centres = [(rng.uniform(113.9, 114.5), rng.uniform(22.5, 22.8)) for _ in range(6)]
    points = [Point(lon + rng.gauss(0, 0.01), lat + rng.gauss(0, 0.01)) for lon, lat in centres for _ in range(100)]
    async with owner_db.transaction(PLATFORM) as session:
        await fill_probe(session, points)
        for lon, lat in centres:
            radius = rng.uniform(200, 2500)
            reference = {row.id: row.d for row in await session.execute(REFERENCE_DISTANCES, {"lon": lon, "lat": lat})}
            # Points within a centimetre of the circle may fall either way by rounding; judge the rest.
            clear = {i for i, d in reference.items() if abs(d - radius) > 0.01}
            expected = {i for i in clear if reference[i] <= radius}
            found = await ids(session, select(probe.c.id).where(within_meters(probe.c.g, lon, lat, radius)))
            assert found & clear == expected
            assert 0 < len(expected) < len(points)

            measured = dict((await session.execute(select(probe.c.id, distance_meters(probe.c.g, lon, lat)))).all())
            for i, d in measured.items():
                assert abs(d - reference[i]) < 1e-6
                # The spheroid and a sphere agree within half a percent at this latitude.
                assert abs(d - haversine_meters((lon, lat), points[i].coords[0])) <= 0.005 * d + 0.01


async def test_nearest_orders_by_distance(owner_db: Database) -> None:
    rng = random.Random(11)
    points = scattered_points(rng, 800)
    async with owner_db.transaction(PLATFORM) as session:
        await fill_probe(session, points)
        for _ in range(5):
            lon, lat = rng.uniform(WEST, EAST), rng.uniform(SOUTH, NORTH)
            reference = {row.id: row.d for row in await session.execute(REFERENCE_DISTANCES, {"lon": lon, "lat": lat})}
            query = select(probe.c.id).order_by(nearest(probe.c.g, lon, lat)).limit(20)
            ranked = list((await session.execute(query)).scalars())
            assert len(ranked) == 20
            distances = [reference[i] for i in ranked]
            # `<->` ranks on the sphere; the spheroid distances may differ by well under half a percent.
            assert all(a <= b * 1.005 for a, b in itertools.pairwise(distances))
            closest_left_out = min(d for i, d in reference.items() if i not in set(ranked))
            assert distances[-1] <= closest_left_out * 1.005


async def test_in_bbox_and_in_polygon_agree_with_shapely(owner_db: Database) -> None:
    rng = random.Random(3)
    shapes = random_shapes(rng, 900)
    async with owner_db.transaction(PLATFORM) as session:
        await fill_probe(session, shapes)
        for _ in range(8):
            west, east = sorted(rng.uniform(WEST, EAST) for _ in range(2))
            south, north = sorted(rng.uniform(SOUTH, NORTH) for _ in range(2))
            found = await ids(session, select(probe.c.id).where(in_bbox(probe.c.geom, west, south, east, north)))
            area = box(west, south, east, north)
            assert found == {i for i, shape in enumerate(shapes) if area.intersects(shape)}

            n = rng.randint(3, 10)
            lon, lat = rng.uniform(WEST, EAST), rng.uniform(SOUTH, NORTH)
            radii, jitters = [rng.uniform(0.02, 0.2) for _ in range(n)], [rng.random() for _ in range(n)]
            polygon = star_polygon(lon, lat, radii, jitters)
            found = await ids(session, select(probe.c.id).where(in_polygon(probe.c.geom, polygon)))
            expected = {i for i, shape in enumerate(shapes) if polygon.intersects(shape)}
            assert found == expected
            assert expected, "the polygon should catch some shapes for the check to mean anything"


async def test_in_bbox_is_exact_not_just_overlapping_envelopes(owner_db: Database) -> None:
    # A line cutting past the box's north-east corner: its envelope overlaps the box, the line does not.
    corner_cutter = LineString([(114.09, 22.62), (114.12, 22.59)])
    crossing = LineString([(114.09, 22.60), (114.11, 22.58)])
    async with owner_db.transaction(PLATFORM) as session:
        await fill_probe(session, [corner_cutter, crossing])
        found = await ids(session, select(probe.c.id).where(in_bbox(probe.c.geom, 114.0, 22.5, 114.1, 22.6)))
    assert found == {1}


async def test_search_predicates_use_the_gist_index(owner_db: Database) -> None:
    rng = random.Random(5)
    async with owner_db.transaction(PLATFORM) as session:
        await fill_probe(session, scattered_points(rng, 5000))
        for statement in INDEX_PROBE:
            await session.execute(statement)
        lon, lat = 114.05, 22.54

        plan = await explain(session, select(probe.c.id).where(within_meters(probe.c.g, lon, lat, 300)))
        assert "geo_probe_g_gist" in plan, plan
        assert "Seq Scan" not in plan, plan

        plan = await explain(session, select(probe.c.id).order_by(nearest(probe.c.g, lon, lat)).limit(10))
        assert "Index Scan using geo_probe_g_gist" in plan, plan
        assert "Order By: (g <->" in plan, plan
        assert "Sort" not in plan.replace("Order By", ""), plan

        plan = await explain(session, select(probe.c.id).where(in_bbox(probe.c.geom, 114.0, 22.5, 114.01, 22.51)))
        assert "geo_probe_geom_gist" in plan, plan


async def test_copy_with_hex_ewkb_and_reading_raw_values_back(owner_db: Database) -> None:
    lot = box(114.05, 22.54, 114.06, 22.55)
    point = Point(114.055, 22.545)
    async with owner_db.transaction(PLATFORM) as session:
        await session.execute(CREATE_PROBE)
        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        line = f"1\t{to_ewkb_hex(point)}\t{to_ewkb_hex(lot)}\n"
        await raw.copy_to_table("geo_probe", source=io.BytesIO(line.encode()), format="text")

        row = (await session.execute(select(probe.c.g, probe.c.geom))).one()
        assert from_db(row.g).equals(point) and from_db(row.geom).equals(lot)
        # Without geoalchemy2's result processing the driver hands back hex EWKB text.
        hex_text, srid = (await session.execute(text("SELECT geom::text, ST_SRID(geom) FROM geo_probe"))).one()
        assert from_db(hex_text).equals(lot)
        assert srid == 4326
