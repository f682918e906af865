"""shapely <-> PostGIS. Geometries cross the boundary as EWKB (binary with the SRID), which both geometry
and geography columns accept, in bound parameters and in COPY text alike."""

from __future__ import annotations

import re

import shapely
from geoalchemy2.elements import WKBElement, WKTElement
from shapely.geometry import LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry, BaseMultipartGeometry

WGS84 = 4326
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")
_EWKT_SRID = re.compile(r"^\s*SRID=(\d+);", re.IGNORECASE)


def to_ewkb(geom: BaseGeometry, srid: int = WGS84) -> bytes:
    """2-D extended WKB carrying `srid`."""
    return shapely.to_wkb(shapely.set_srid(geom, srid), output_dimension=2, include_srid=True)


def to_ewkb_hex(geom: BaseGeometry, srid: int = WGS84) -> str:
    """Hex EWKB, the form PostgreSQL's COPY (text format) reads into a geometry or geography column."""
    return to_ewkb(geom, srid).hex()


def to_db(geom: BaseGeometry, srid: int = WGS84) -> WKBElement:
    """A value to bind to a geometry or geography column (insert, update, or comparison).

    Plain WKB, not EWKB: geoalchemy2 binds an extended element as hex through ST_GeomFromEWKT, which
    PostGIS 3 rejects for geometry columns; a plain element is sent as full-precision EWKT instead."""
    return WKBElement(shapely.to_wkb(geom, output_dimension=2), srid=srid, extended=False)


def from_db(value: WKBElement | WKTElement | bytes | memoryview | str) -> BaseGeometry:
    """A shapely geometry from what the driver returned: a geoalchemy2 element, (E)WKB bytes, hex (E)WKB
    text, or (E)WKT text. The SRID, if any, is dropped: the hub stores only WGS 84."""
    if isinstance(value, WKBElement | WKTElement):
        value = value.data
    if isinstance(value, memoryview | bytearray):
        value = bytes(value)
    if isinstance(value, bytes):
        return shapely.set_srid(shapely.from_wkb(value), 0)
    if isinstance(value, str):
        if _HEX.match(value):
            return shapely.set_srid(shapely.from_wkb(value), 0)
        return shapely.from_wkt(_EWKT_SRID.sub("", value))
    raise TypeError(f"cannot read a geometry from {type(value).__name__}")


def representative_point(geom: BaseGeometry) -> Point:
    """One point that stands for a shape, e.g. a space's search location: a point itself, the midpoint
    along a line, and for a polygon its centroid when that lies inside, otherwise a point surely inside.
    Multi-part shapes use their largest part (longest line, largest polygon)."""
    if geom.is_empty:
        raise ValueError(f"an empty {geom.geom_type} has no representative point")
    if isinstance(geom, Point):
        return Point(geom.x, geom.y)
    if isinstance(geom, LineString):
        return _flat(geom.interpolate(0.5, normalized=True))
    if isinstance(geom, Polygon):
        centroid = geom.centroid
        return _flat(centroid if geom.contains(centroid) else geom.point_on_surface())
    if isinstance(geom, MultiPoint):
        # The member nearest the centre: a real position of the input, not an average of them.
        centroid = geom.centroid
        return _flat(min(geom.geoms, key=centroid.distance))
    if isinstance(geom, MultiLineString):
        return representative_point(max(geom.geoms, key=lambda line: line.length))
    if isinstance(geom, MultiPolygon):
        return representative_point(max(geom.geoms, key=lambda polygon: polygon.area))
    if isinstance(geom, BaseMultipartGeometry):
        # A collection: its highest-dimensional parts matter most (a lot outline over its entrance points).
        parts = [part for part in geom.geoms if not part.is_empty]
        top = max(shapely.get_dimensions(part) for part in parts)
        return representative_point(shapely.union_all([p for p in parts if shapely.get_dimensions(p) == top]))
    raise ValueError(f"unsupported geometry type {geom.geom_type}")


def _flat(point: Point) -> Point:
    return Point(point.x, point.y)
