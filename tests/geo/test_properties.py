"""Properties over generated input: valid shapes survive GeoJSON round trips unchanged, valid boxes are
accepted, and whatever else arrives is refused with a GeoError, never another exception."""

from __future__ import annotations

import json
from typing import Any

import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon

from geo import (
    ANY_GEOMETRY,
    GEOMETRY_TYPES,
    POLYGONAL,
    GeoError,
    InvalidBbox,
    parse_geometry,
    to_geojson,
    validate_bbox,
    validate_geometry,
)
from tests.geo.shapes import SHENZHEN, lats, lons, shenzhen_lats, shenzhen_lons, star_polygons

FIELD = "geom"


def same_shape(a: Any, b: Any) -> bool:
    """Equal vertex for vertex, ignoring ring orientation and starting vertex."""
    return bool(shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), tolerance=0))


@given(lon=lons, lat=lats)
def test_points_round_trip_exactly(lon: float, lat: float) -> None:
    point = Point(lon, lat)
    for value in (to_geojson(point), json.dumps(to_geojson(point))):
        parsed = validate_geometry(value, allowed={"Point"}, field=FIELD)
        assert (parsed.x, parsed.y) == (lon, lat)


@given(star_polygons(shenzhen_lons, shenzhen_lats))
def test_polygons_round_trip_through_text_with_ccw_exteriors(polygon: Polygon) -> None:
    out = to_geojson(polygon)
    assert shapely.LinearRing(out["coordinates"][0]).is_ccw
    parsed = validate_geometry(json.dumps(out), allowed=POLYGONAL, field=FIELD, service_area=SHENZHEN)
    assert same_shape(parsed, polygon)


@given(st.lists(star_polygons(lons.map(lambda v: v * 0.9), lats.map(lambda v: v * 0.9)), min_size=1, max_size=4))
def test_multipolygons_anywhere_round_trip(polygons: list[Polygon]) -> None:
    shape = MultiPolygon(polygons)
    assert same_shape(parse_geometry(to_geojson(shape), allowed=POLYGONAL, field=FIELD), shape)


@st.composite
def boxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    west, east = sorted(draw(st.lists(lons, min_size=2, max_size=2, unique=True)))
    south, north = sorted(draw(st.lists(lats, min_size=2, max_size=2, unique=True)))
    return west, south, east, north


@given(boxes())
def test_random_boxes_are_accepted(box: tuple[float, float, float, float]) -> None:
    assert tuple(validate_bbox(*box)) == box


@given(boxes())
def test_reversed_boxes_are_refused(box: tuple[float, float, float, float]) -> None:
    west, south, east, north = box
    for bad in ((east, south, west, north), (west, north, east, south)):
        try:
            validate_bbox(*bad)
        except InvalidBbox as error:
            assert error.details["field"] == "bbox"
        else:
            raise AssertionError(f"{bad} was accepted")


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**5000), max_value=10**5000)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(GEOMETRY_TYPES)
)
json_like = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=40,
)
# Close to GeoJSON, so the generated input gets past the first checks and reaches the deeper ones.
numbers = st.floats(min_value=-200, max_value=200) | st.sampled_from([114.05, 22.54, 113.8, 22.8])
nested_numbers = st.recursive(numbers, lambda children: st.lists(children, max_size=6), max_leaves=60)
almost_geojson = st.fixed_dictionaries(
    {"type": st.sampled_from(GEOMETRY_TYPES)},
    optional={
        "coordinates": nested_numbers | json_like,
        "geometries": st.lists(json_like, max_size=3),
        "crs": json_like | st.fixed_dictionaries({"properties": json_like}),
    },
)

# Right in shape, random in content: positions from Shenzhen, swapped Shenzhen, or anywhere at all.
positions = st.one_of(
    st.tuples(shenzhen_lons, shenzhen_lats).map(list),
    st.tuples(shenzhen_lats, shenzhen_lons).map(list),
    st.lists(numbers, min_size=2, max_size=3),
)


@st.composite
def rings(draw: st.DrawFn) -> list[list[float]]:
    ring = draw(st.lists(positions, min_size=3, max_size=6))
    # Usually closed, as GeoJSON requires; sometimes not, to reach the closure check.
    return [*ring, ring[0]] if draw(st.integers(0, 9)) else ring


lines = st.lists(positions, min_size=1, max_size=5)
polygon_coordinates = st.lists(rings(), min_size=1, max_size=2)
shaped_geojson = st.one_of(
    st.fixed_dictionaries({"type": st.just("Point"), "coordinates": positions}),
    st.fixed_dictionaries({"type": st.just("MultiPoint"), "coordinates": st.lists(positions, max_size=4)}),
    st.fixed_dictionaries({"type": st.just("LineString"), "coordinates": lines}),
    st.fixed_dictionaries({"type": st.just("MultiLineString"), "coordinates": st.lists(lines, max_size=3)}),
    st.fixed_dictionaries({"type": st.just("Polygon"), "coordinates": polygon_coordinates}),
    st.fixed_dictionaries({"type": st.just("MultiPolygon"), "coordinates": st.lists(polygon_coordinates, max_size=3)}),
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_like, almost_geojson, shaped_geojson, shaped_geojson.map(json.dumps), st.text(max_size=40)))
def test_anything_is_a_geometry_or_a_geo_error(value: Any) -> None:
    try:
        geom = validate_geometry(value, allowed=ANY_GEOMETRY, field=FIELD, service_area=SHENZHEN)
    except GeoError as error:
        assert error.details["field"] == FIELD
        assert error.message
    else:
        assert geom.is_valid and not geom.is_empty and SHENZHEN.covers(geom)


@given(st.one_of(json_like, st.floats(), st.text(max_size=10)), st.sampled_from(range(4)))
def test_any_box_is_a_box_or_an_invalid_bbox(value: Any, position: int) -> None:
    box = [113.8, 22.4, 114.6, 22.8]
    box[position] = value
    try:
        accepted = validate_bbox(*box)
    except InvalidBbox as error:
        assert error.details["field"] == "bbox"
    else:
        assert accepted.west < accepted.east and accepted.south < accepted.north
        assert accepted.west >= -180 and accepted.east <= 180 and accepted.south >= -90 and accepted.north <= 90
