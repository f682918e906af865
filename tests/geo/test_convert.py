"""shapely <-> PostGIS conversions and representative points, without a database (the database side is
in test_sql.py)."""

from __future__ import annotations

import pytest
from geoalchemy2.elements import WKBElement, WKTElement
from hypothesis import given
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
    box,
)

from geo import from_db, representative_point, to_db, to_ewkb, to_ewkb_hex
from tests.geo.shapes import shenzhen_lats, shenzhen_lons, star_polygons

L_SHAPED = Polygon([(0, 0), (10, 0), (10, 1), (1, 1), (1, 10), (0, 10), (0, 0)])


def test_to_db_is_a_wgs84_element_that_reads_back() -> None:
    lot = box(114.05, 22.54, 114.06, 22.55)
    element = to_db(lot)
    assert isinstance(element, WKBElement)
    assert element.srid == 4326
    assert from_db(element).equals(lot)


def test_ewkb_carries_the_srid_and_drops_z() -> None:
    ewkb = to_ewkb(Point(114.05, 22.54, 30.0))
    # Little-endian point with the SRID flag (0x20000000) set and no Z flag, then SRID 4326.
    assert ewkb[:9] == bytes.fromhex("0101000020e6100000")
    assert to_ewkb_hex(Point(114.05, 22.54)) == ewkb.hex()


@pytest.mark.parametrize(
    "raw",
    [
        to_ewkb(Point(114.05, 22.54)),
        memoryview(to_ewkb(Point(114.05, 22.54))),
        to_ewkb_hex(Point(114.05, 22.54)),
        to_ewkb_hex(Point(114.05, 22.54)).upper(),
        "SRID=4326;POINT(114.05 22.54)",
        "POINT (114.05 22.54)",
        WKTElement("POINT(114.05 22.54)", srid=4326),
    ],
)
def test_from_db_reads_every_form_the_driver_may_return(raw: object) -> None:
    geom = from_db(raw)  # type: ignore[arg-type]
    assert (geom.x, geom.y) == (114.05, 22.54)


def test_from_db_refuses_other_values() -> None:
    with pytest.raises(TypeError):
        from_db(42)  # type: ignore[arg-type]


def test_representative_point_of_a_point_is_itself() -> None:
    assert representative_point(Point(114.05, 22.54, 9)).equals(Point(114.05, 22.54))


def test_representative_point_of_a_line_is_its_midpoint_along_it() -> None:
    bent = LineString([(0, 0), (4, 0), (4, 2)])  # length 6: the midpoint is 3 along, still on the first leg
    assert representative_point(bent).equals(Point(3, 0))


def test_representative_point_of_a_convex_polygon_is_its_centroid() -> None:
    assert representative_point(box(0, 0, 2, 4)).equals(Point(1, 2))


def test_representative_point_of_a_concave_polygon_lies_inside() -> None:
    assert not L_SHAPED.contains(L_SHAPED.centroid)
    assert L_SHAPED.contains(representative_point(L_SHAPED))


def test_representative_point_of_multi_shapes_uses_the_largest_part() -> None:
    big, small = box(0, 0, 10, 10), box(20, 20, 21, 21)
    assert big.contains(representative_point(MultiPolygon([small, big])))
    long, short = LineString([(0, 0), (10, 0)]), LineString([(50, 50), (51, 50)])
    assert representative_point(MultiLineString([short, long])).equals(Point(5, 0))
    points = MultiPoint([(0, 0), (1, 1), (10, 10)])
    assert representative_point(points) in list(points.geoms)
    collection = GeometryCollection([Point(50, 50), big])
    assert big.contains(representative_point(collection))


def test_representative_point_of_empty_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        representative_point(Polygon())


@given(star_polygons(shenzhen_lons, shenzhen_lats))
def test_representative_point_is_always_inside_a_polygon(polygon: Polygon) -> None:
    assert polygon.contains(representative_point(polygon))
