"""Each kind of bad GeoJSON is refused with its own code and a message naming the field and the problem;
good GeoJSON comes back as the shape it describes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

import geo
from geo import (
    ANY_GEOMETRY,
    LINEAL,
    POLYGONAL,
    GeoError,
    parse_geometry,
    to_geojson,
    validate_geometry,
)
from tests.geo.shapes import SHENZHEN

FIELD = "input.geom"
LOT = [[114.05, 22.54], [114.06, 22.54], [114.06, 22.55], [114.05, 22.55], [114.05, 22.54]]


def polygon(*rings: list[list[Any]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def rejection(value: Any, *, allowed: frozenset[str] = ANY_GEOMETRY, area: Any = SHENZHEN) -> GeoError:
    with pytest.raises(GeoError) as caught:
        validate_geometry(value, allowed=allowed, field=FIELD, service_area=area)
    error = caught.value
    assert error.details["field"] == FIELD
    assert error.message.startswith(FIELD), error.message
    assert error.extensions()["code"] == error.code
    return error


def test_a_lot_outline_in_shenzhen_is_accepted() -> None:
    geom = validate_geometry(polygon(LOT), allowed=POLYGONAL, field=FIELD, service_area=SHENZHEN)
    assert geom.equals(box(114.05, 22.54, 114.06, 22.55))


def test_json_text_is_accepted_like_the_object() -> None:
    as_text = validate_geometry(json.dumps(polygon(LOT)), allowed=POLYGONAL, field=FIELD, service_area=SHENZHEN)
    assert as_text.equals(box(114.05, 22.54, 114.06, 22.55))


def test_bow_tie_polygon_is_invalid_with_reason_and_location() -> None:
    bow_tie = [[114.05, 22.54], [114.06, 22.55], [114.06, 22.54], [114.05, 22.55], [114.05, 22.54]]
    error = rejection(polygon(bow_tie))
    assert error.code == "INVALID_GEOMETRY"
    assert error.details["reason"] == "Self-intersection"
    assert error.details["location"] == pytest.approx([114.055, 22.545])
    assert "Self-intersection" in error.message


def test_unclosed_ring_names_the_ring() -> None:
    error = rejection(polygon(LOT[:-1]))
    assert error.code == "INVALID_GEOJSON"
    assert error.details["path"] == "coordinates[0]"
    assert "not closed" in error.message


def test_ring_with_too_few_positions() -> None:
    error = rejection(polygon([[114.05, 22.54], [114.06, 22.54], [114.05, 22.54]]))
    assert error.code == "INVALID_GEOJSON"
    assert "at least 4 positions" in error.message


def test_string_coordinates_name_the_position() -> None:
    error = rejection(polygon([LOT[0], ["114.06", "22.54"], *LOT[2:]]))
    assert error.code == "INVALID_GEOJSON"
    assert error.details["path"] == "coordinates[0][1][0]"
    assert "must be a number (longitude)" in error.message


@pytest.mark.parametrize("bad", [True, None, float("nan"), float("inf"), 10**400, [114.05], {"lon": 114.05}])
def test_non_numeric_or_non_finite_coordinates(bad: Any) -> None:
    error = rejection({"type": "Point", "coordinates": [bad, 22.54]})
    assert error.code == "INVALID_GEOJSON"
    assert error.details["path"] == "coordinates[0]"


def test_latitude_95_is_out_of_range() -> None:
    error = rejection({"type": "Point", "coordinates": [114.05, 95]})
    assert error.code == "COORDINATES_OUT_OF_RANGE"
    assert error.details["position"] == [114.05, 95]


def test_out_of_range_without_service_area_hints_at_swapped_order() -> None:
    error = rejection({"type": "Point", "coordinates": [22.54, 114.05]}, area=None)
    assert error.code == "COORDINATES_OUT_OF_RANGE"
    assert "lat,lon" in error.message


def test_swapped_shenzhen_point_is_recognised() -> None:
    error = rejection({"type": "Point", "coordinates": [22.54, 114.05]})
    assert error.code == "COORDINATES_SWAPPED"
    assert "[114.05, 22.54]" in error.message


def test_swapped_shenzhen_polygon_is_recognised() -> None:
    error = rejection(polygon([[lat, lon] for lon, lat in LOT]))
    assert error.code == "COORDINATES_SWAPPED"


def test_swapped_order_in_range_but_outside_area_is_recognised() -> None:
    # Both orders are in range here (a small area near lon 22 / lat 22), so only the area can tell.
    area = box(21.0, 21.0, 23.0, 23.5)
    error = rejection({"type": "Point", "coordinates": [23.2, 22.5]}, area=area)
    assert error.code == "COORDINATES_SWAPPED"


def test_outside_service_area() -> None:
    error = rejection({"type": "Point", "coordinates": [121.47, 31.23]})  # Shanghai
    assert error.code == "OUTSIDE_SERVICE_AREA"
    assert error.details["service_area_bbox"] == pytest.approx([113.75, 22.40, 114.65, 22.87])


def test_polygon_straddling_the_service_area_edge_is_outside() -> None:
    straddling = [[114.60, 22.5], [114.70, 22.5], [114.70, 22.6], [114.60, 22.6], [114.60, 22.5]]
    assert rejection(polygon(straddling)).code == "OUTSIDE_SERVICE_AREA"


def test_wrong_geometry_type_names_expected_and_given() -> None:
    error = rejection({"type": "Point", "coordinates": [114.05, 22.54]}, allowed=POLYGONAL)
    assert error.code == "WRONG_GEOMETRY_TYPE"
    assert error.details["expected"] == ["Polygon", "MultiPolygon"]
    assert error.details["given"] == "Point"
    assert "must be a Polygon or MultiPolygon, got a Point" in error.message


@pytest.mark.parametrize(
    "empty",
    [
        {"type": "Point", "coordinates": []},
        {"type": "Polygon", "coordinates": []},
        {"type": "MultiPolygon", "coordinates": []},
        {"type": "LineString", "coordinates": []},
        {"type": "GeometryCollection", "geometries": []},
    ],
)
def test_empty_geometry(empty: dict[str, Any]) -> None:
    assert rejection(empty).code == "EMPTY_GEOMETRY"


def test_too_many_vertices() -> None:
    ring = [[114.05 + 0.00001 * i, 22.54 + 0.00001 * (i % 2)] for i in range(10_001)]
    error = rejection({"type": "LineString", "coordinates": ring})
    assert error.code == "TOO_COMPLEX"
    assert error.details["max_vertices"] == geo.MAX_VERTICES


@pytest.mark.parametrize(
    ("value", "expected_words"),
    [
        ('{"type": "Point", "coordinates": [114.05, 22.54]', "not valid JSON"),
        ("[114.05, 22.54]", "must be a GeoJSON geometry object, got an array"),
        (42, "must be a GeoJSON geometry object, got a number"),
        ({"coordinates": [114.05, 22.54]}, "has no 'type' member"),
        ({"type": "point", "coordinates": [114.05, 22.54]}, "case-sensitive: 'Point'"),
        ({"type": "Circle", "coordinates": [114.05, 22.54]}, "not a GeoJSON geometry type"),
        ({"type": 7, "coordinates": [114.05, 22.54]}, "must be a string"),
        ({"type": "Polygon"}, "without a 'coordinates' member"),
        ({"type": "Feature", "geometry": None}, "is a Feature"),
        ({"type": "Point", "coordinates": "114.05,22.54"}, "must be a position"),
        ({"type": "Point", "coordinates": [114.05, 22.54, 10, 1]}, "got 4"),
        ({"type": "LineString", "coordinates": [[114.05, 22.54]]}, "at least 2 positions"),
        ({"type": "Polygon", "coordinates": [[]]}, "at least 4 positions"),
        ({"type": "MultiPolygon", "coordinates": [[]]}, "must have an exterior ring"),
        (
            {"type": "Point", "coordinates": [114.05, 22.54], "crs": {"properties": {"name": "EPSG:3857"}}},
            "other than WGS 84",
        ),
        ({"type": "Point", "coordinates": [114.05, 22.54], "crs": {"properties": []}}, "other than WGS 84"),
        ('{"type": "Point", "coordinates": [1' + "0" * 5000 + ", 22.54]}", "number too long"),
        ({"type": 10**5000}, "must be a string, got a number (an integer too large)"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_geojson(value: Any, expected_words: str) -> None:
    error = rejection(value)
    assert error.code == "INVALID_GEOJSON"
    assert expected_words in error.message


def test_errors_inside_a_collection_name_the_member() -> None:
    collection = {
        "type": "GeometryCollection",
        "geometries": [{"type": "Point", "coordinates": [114.05, 22.54]}, {"type": "Point", "coordinates": [1]}],
    }
    error = rejection(collection)
    assert error.details["path"] == "geometries[1].coordinates"


def test_altitude_is_accepted_and_dropped() -> None:
    geom = parse_geometry({"type": "Point", "coordinates": [114.05, 22.54, 30.5]}, allowed=ANY_GEOMETRY, field=FIELD)
    assert not geom.has_z
    assert to_geojson(geom) == {"type": "Point", "coordinates": [114.05, 22.54]}


def test_clockwise_input_is_accepted_and_written_counter_clockwise() -> None:
    clockwise = list(reversed(LOT))
    hole_ccw = [[114.052, 22.542], [114.054, 22.542], [114.054, 22.544], [114.052, 22.544], [114.052, 22.542]]
    geom = validate_geometry(polygon(clockwise, hole_ccw), allowed=POLYGONAL, field=FIELD, service_area=SHENZHEN)
    out = to_geojson(geom)
    exterior, hole = (Polygon(ring).exterior for ring in out["coordinates"])
    assert exterior.is_ccw
    assert not hole.is_ccw
    assert Polygon(*out["coordinates"][:1], out["coordinates"][1:]).equals(geom)


def test_to_geojson_covers_every_type() -> None:
    shapes = [
        Point(114.05, 22.54),
        LineString([(114.05, 22.54), (114.06, 22.55)]),
        MultiPolygon([box(114.0, 22.5, 114.01, 22.51), box(114.02, 22.5, 114.03, 22.51)]),
    ]
    for shape in shapes:
        out = to_geojson(shape)
        assert json.loads(json.dumps(out)) == out
        assert parse_geometry(out, allowed=ANY_GEOMETRY, field=FIELD).equals(shape)


def test_lineal_curb_zone() -> None:
    curb = {"type": "LineString", "coordinates": [[114.05, 22.54], [114.051, 22.541]]}
    assert validate_geometry(curb, allowed=LINEAL, field=FIELD, service_area=SHENZHEN).length > 0
