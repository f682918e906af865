"""The pure spatial toolkit: GeoJSON <-> shapely <-> PostGIS, validation with typed errors, and SQL
expression builders for the spatial predicates. No sessions and no I/O here."""

from geo.bounds import Bbox, validate_bbox, validate_lon_lat
from geo.convert import WGS84, from_db, representative_point, to_db, to_ewkb, to_ewkb_hex
from geo.errors import (
    CoordinatesOutOfRange,
    CoordinatesSwapped,
    EmptyGeometry,
    GeoError,
    InvalidBbox,
    InvalidGeoJSON,
    InvalidGeometry,
    OutsideServiceArea,
    TooComplex,
    WrongGeometryType,
)
from geo.geojson import (
    ANY_GEOMETRY,
    GEOMETRY_TYPES,
    LINEAL,
    MAX_VERTICES,
    POLYGONAL,
    PUNTAL,
    parse_geometry,
    to_geojson,
    validate_geometry,
)
from geo.sql import distance_meters, envelope, geog_point, in_bbox, in_polygon, nearest, shape_param, within_meters

__all__ = [
    "ANY_GEOMETRY",
    "GEOMETRY_TYPES",
    "LINEAL",
    "MAX_VERTICES",
    "POLYGONAL",
    "PUNTAL",
    "WGS84",
    "Bbox",
    "CoordinatesOutOfRange",
    "CoordinatesSwapped",
    "EmptyGeometry",
    "GeoError",
    "InvalidBbox",
    "InvalidGeoJSON",
    "InvalidGeometry",
    "OutsideServiceArea",
    "TooComplex",
    "WrongGeometryType",
    "distance_meters",
    "envelope",
    "from_db",
    "geog_point",
    "in_bbox",
    "in_polygon",
    "nearest",
    "parse_geometry",
    "representative_point",
    "shape_param",
    "to_db",
    "to_ewkb",
    "to_ewkb_hex",
    "to_geojson",
    "validate_bbox",
    "validate_geometry",
    "validate_lon_lat",
    "within_meters",
]
