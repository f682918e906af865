"""Search points and bounding boxes given as plain numbers: refused with a message naming the argument."""

from __future__ import annotations

from typing import Any

import pytest

from geo import Bbox, CoordinatesOutOfRange, InvalidBbox, validate_bbox, validate_lon_lat


def test_a_point_in_range_comes_back_as_floats() -> None:
    assert validate_lon_lat(114, 22.54) == (114.0, 22.54)


@pytest.mark.parametrize(
    ("lon", "lat", "field"),
    [(181, 22.5, "lon"), (-180.5, 22.5, "lon"), (114.05, 95, "lat"), (114.05, -90.1, "lat")],
)
def test_out_of_range_names_the_argument(lon: float, lat: float, field: str) -> None:
    with pytest.raises(CoordinatesOutOfRange) as caught:
        validate_lon_lat(lon, lat)
    assert caught.value.details["field"] == field
    assert caught.value.message.startswith(field)


def test_swapped_search_point_gets_a_hint() -> None:
    with pytest.raises(CoordinatesOutOfRange, match="did you send lat,lon"):
        validate_lon_lat(22.54, 114.05)


def test_argument_names_are_the_callers() -> None:
    with pytest.raises(CoordinatesOutOfRange) as caught:
        validate_lon_lat(0, float("nan"), lon_field="near.lon", lat_field="near.lat")
    assert caught.value.details["field"] == "near.lat"


def test_a_box_comes_back_named() -> None:
    assert validate_bbox(113.75, 22.4, 114.65, 22.87) == Bbox(west=113.75, south=22.4, east=114.65, north=22.87)


@pytest.mark.parametrize(
    ("box", "words"),
    [
        ((114.65, 22.4, 113.75, 22.87), "west (114.65) must be less than east (113.75)"),
        ((114.0, 22.4, 114.0, 22.87), "west (114.0) must be less than east (114.0)"),
        ((113.75, 22.87, 114.65, 22.4), "south (22.87) must be less than north (22.4)"),
        ((113.75, 22.4, 190.0, 22.87), "east must be between -180 and 180"),
        ((113.75, -91.0, 114.65, 22.87), "south must be between -90 and 90"),
        ((22.4, 113.75, 22.87, 114.65), "longitude first"),
        ((113.75, 22.4, float("inf"), 22.87), "finite"),
        ((113.75, "22.4", 114.65, 22.87), "must be a number"),
        ((113.75, None, 114.65, 22.87), "must be a number"),
    ],
)
def test_bad_boxes_are_refused_naming_the_problem(box: tuple[Any, ...], words: str) -> None:
    with pytest.raises(InvalidBbox) as caught:
        validate_bbox(*box, field="within.bbox")
    assert caught.value.code == "INVALID_BBOX"
    assert caught.value.details["field"] == "within.bbox"
    assert words in caught.value.message
