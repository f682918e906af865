"""Longitude/latitude ranges, search points and bounding boxes (WGS 84, lon-lat order)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geo.errors import CoordinatesOutOfRange, InvalidBbox

LON_MIN, LON_MAX = -180.0, 180.0
LAT_MIN, LAT_MAX = -90.0, 90.0


class Bbox(NamedTuple):
    west: float
    south: float
    east: float
    north: float


def lon_in_range(lon: float) -> bool:
    return LON_MIN <= lon <= LON_MAX


def lat_in_range(lat: float) -> bool:
    return LAT_MIN <= lat <= LAT_MAX


def swap_hint(lon: float, lat: float) -> str:
    """A hint when a pair only makes sense the other way round (positions are lon,lat, not lat,lon)."""
    if not (lon_in_range(lon) and lat_in_range(lat)) and lon_in_range(lat) and lat_in_range(lon):
        return f" (did you send lat,lon? [{lat}, {lon}] would be in range; positions are [longitude, latitude])"
    return ""


def first_out_of_range(geom: BaseGeometry) -> tuple[float, float] | None:
    """The first (lon, lat) of `geom` outside -180..180 / -90..90, or None when every position is in range."""
    coords = shapely.get_coordinates(geom)
    if coords.size == 0:
        return None
    bad = (np.abs(coords[:, 0]) > LON_MAX) | (np.abs(coords[:, 1]) > LAT_MAX)
    if not bad.any():
        return None
    lon, lat = coords[int(np.argmax(bad))]
    return float(lon), float(lat)


def _finite(value: float, field: str, error: type[CoordinatesOutOfRange] | type[InvalidBbox]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{field} must be a number, got {type(value).__name__}", field=field)
    try:
        number = float(value)
    except OverflowError:
        raise error(f"{field} must be a finite number, got an integer too large", field=field) from None
    if not math.isfinite(number):
        raise error(f"{field} must be a finite number, got {value}", field=field)
    return number


def validate_lon_lat(lon: float, lat: float, *, lon_field: str = "lon", lat_field: str = "lat") -> tuple[float, float]:
    """A search point given as two arguments, checked for range; returns (lon, lat) as floats."""
    lon = _finite(lon, lon_field, CoordinatesOutOfRange)
    lat = _finite(lat, lat_field, CoordinatesOutOfRange)
    hint = swap_hint(lon, lat)
    if not lon_in_range(lon):
        raise CoordinatesOutOfRange(
            f"{lon_field} must be a longitude between -180 and 180, got {lon}{hint}", field=lon_field, value=lon
        )
    if not lat_in_range(lat):
        raise CoordinatesOutOfRange(
            f"{lat_field} must be a latitude between -90 and 90, got {lat}{hint}", field=lat_field, value=lat
        )
    return lon, lat


def validate_bbox(west: float, south: float, east: float, north: float, *, field: str = "bbox") -> Bbox:
    """A bounding box as (west, south, east, north) in degrees. Boxes crossing the antimeridian
    (west > east) are not supported: ParkHub serves one city."""
    west, south, east, north = (_finite(v, field, InvalidBbox) for v in (west, south, east, north))
    box = Bbox(west, south, east, north)
    for name, value, low, high in (
        ("west", west, LON_MIN, LON_MAX),
        ("east", east, LON_MIN, LON_MAX),
        ("south", south, LAT_MIN, LAT_MAX),
        ("north", north, LAT_MIN, LAT_MAX),
    ):
        if not low <= value <= high:
            raise InvalidBbox(
                f"{field}: {name} must be between {low:g} and {high:g}, got {value}{_bbox_swap_hint(box)}",
                field=field,
                bbox=list(box),
            )
    if west >= east:
        raise InvalidBbox(f"{field}: west ({west}) must be less than east ({east})", field=field, bbox=list(box))
    if south >= north:
        raise InvalidBbox(f"{field}: south ({south}) must be less than north ({north})", field=field, bbox=list(box))
    return box


def _bbox_swap_hint(box: Bbox) -> str:
    swapped = Bbox(box.south, box.west, box.north, box.east)
    if all(lon_in_range(v) for v in (swapped.west, swapped.east)) and all(
        lat_in_range(v) for v in (swapped.south, swapped.north)
    ):
        return " (the box is ordered west, south, east, north: longitude first)"
    return ""
