"""SQLAlchemy Core expression builders for the spatial predicates the hub uses. Each returns a column
expression for select()/where()/order_by(), with coordinates as bound parameters (never interpolated).

Each predicate is written so that PostgreSQL can answer it from a GiST index on the column:
`ST_DWithin` and `&&` are index-aware, and `<->` in ORDER BY ... LIMIT is a KNN index scan.
Distances on geography columns are metres on the WGS 84 spheroid.
"""

from __future__ import annotations

from geoalchemy2 import Geography
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, Float, LargeBinary, and_, bindparam, cast, func, literal_column
from sqlalchemy.sql.elements import KeyedColumnElement

from geo.convert import WGS84, to_ewkb

# Inlined rather than bound: a constant the planner and readers of EXPLAIN should see as such.
_SRID = literal_column(str(WGS84))

Number = float | int | ColumnElement[float]


def _float(value: Number) -> ColumnElement[float]:
    """A bound float parameter, or an existing SQL expression (e.g. a column in a lateral join) as is."""
    if isinstance(value, ColumnElement):
        return value
    return bindparam(None, float(value), type_=Float, unique=True)


def geog_point(lon: Number, lat: Number) -> ColumnElement[object]:
    """A WGS 84 geography point from bound parameters."""
    point = func.ST_SetSRID(func.ST_MakePoint(_float(lon), _float(lat)), _SRID)
    return cast(point, Geography(srid=WGS84, spatial_index=False))


def within_meters(
    geog_column: KeyedColumnElement[object], lon: Number, lat: Number, meters: Number
) -> ColumnElement[bool]:
    """Rows whose geography lies within `meters` of (lon, lat), spheroid distance; uses the GiST index."""
    return func.ST_DWithin(geog_column, geog_point(lon, lat), _float(meters))


def distance_meters(geog_column: KeyedColumnElement[object], lon: Number, lat: Number) -> ColumnElement[float]:
    """The spheroid distance in metres from (lon, lat) to the row's geography."""
    return func.ST_Distance(geog_column, geog_point(lon, lat), type_=Float)


def nearest(geog_column: KeyedColumnElement[object], lon: Number, lat: Number) -> ColumnElement[float]:
    """The KNN ordering key: ORDER BY nearest(...) LIMIT n walks the GiST index nearest first.
    Its value is a sphere distance, good for ordering; report distances with `distance_meters`."""
    return geog_column.op("<->", return_type=Float)(geog_point(lon, lat))


def envelope(west: Number, south: Number, east: Number, north: Number) -> ColumnElement[object]:
    return func.ST_MakeEnvelope(_float(west), _float(south), _float(east), _float(north), _SRID)


def in_bbox(
    geom_column: KeyedColumnElement[object], west: Number, south: Number, east: Number, north: Number
) -> ColumnElement[bool]:
    """Rows whose geometry intersects the box: `&&` prefilters on the index, ST_Intersects is exact."""
    box = envelope(west, south, east, north)
    return and_(geom_column.op("&&", is_comparison=True)(box), func.ST_Intersects(geom_column, box))


def shape_param(shape: BaseGeometry) -> ColumnElement[object]:
    """A shapely shape as a bound EWKB parameter turned into a WGS 84 geometry inside the query."""
    return func.ST_GeomFromEWKB(bindparam(None, to_ewkb(shape), type_=LargeBinary, unique=True))


def in_polygon(geom_column: KeyedColumnElement[object], shape: BaseGeometry) -> ColumnElement[bool]:
    """Rows whose geometry intersects `shape` (touching the boundary counts); uses the GiST index."""
    return func.ST_Intersects(geom_column, shape_param(shape))
