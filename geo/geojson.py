"""GeoJSON (RFC 7946) in and out: strict parsing of geometry objects into shapely, validation against
ranges, validity and a service area, and serialisation back to GeoJSON.

Positions are [longitude, latitude] in WGS 84. A third number (altitude) is accepted and dropped: the hub
is two-dimensional. Parsing walks the input itself rather than handing it to shapely, so that every
defect is reported with the path to it (`coordinates[0][3]`) and as a `GeoError`, never as a crash.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Sequence
from typing import Any

import shapely
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
)
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from geo.bounds import first_out_of_range, swap_hint
from geo.errors import (
    CoordinatesOutOfRange,
    CoordinatesSwapped,
    EmptyGeometry,
    InvalidGeoJSON,
    InvalidGeometry,
    OutsideServiceArea,
    TooComplex,
    WrongGeometryType,
)

GEOMETRY_TYPES: tuple[str, ...] = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
)
PUNTAL = frozenset({"Point", "MultiPoint"})
LINEAL = frozenset({"LineString", "MultiLineString"})
POLYGONAL = frozenset({"Polygon", "MultiPolygon"})
ANY_GEOMETRY = frozenset(GEOMETRY_TYPES)

# Enough for a detailed lot outline or a long curb; bulk calls validate thousands of these at once.
MAX_VERTICES = 10_000
# JSON text longer than this cannot hold MAX_VERTICES sensible positions; refuse before parsing it.
MAX_JSON_CHARS = 2_000_000

# Old GeoJSON (2008) named a CRS; these names all mean WGS 84 longitude/latitude as RFC 7946 requires.
_WGS84_CRS_NAMES = frozenset(
    {"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "EPSG:4326", "urn:ogc:def:crs:EPSG::4326"}
)
_VALIDITY_REASON = re.compile(r"^(?P<reason>.*?)\s*\[(?P<x>\S+)\s+(?P<y>\S+)\]$")


def _describe(value: Any) -> str:
    """A JSON-flavoured name of what was given, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, str):
        shown = value if len(value) <= 24 else value[:21] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, float) or (isinstance(value, int) and abs(value) < 10**15):
        return f"a number ({value})"
    if isinstance(value, int):
        # Printing a huge integer is slow and, past 4300 digits, an error of its own.
        return "a number (an integer too large)"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return f"an array of {len(value)} item(s)"
    return type(value).__name__


def _path_detail(path: str) -> dict[str, str]:
    return {"path": path} if path else {}


class _Parser:
    """One parse: carries the field name for errors and counts positions against the vertex cap."""

    def __init__(self, field: str, max_vertices: int) -> None:
        self.field = field
        self.max_vertices = max_vertices
        self.vertices = 0

    def where(self, path: str) -> str:
        return f"{self.field}.{path}" if path else self.field

    def invalid(self, path: str, problem: str) -> InvalidGeoJSON:
        return InvalidGeoJSON(f"{self.where(path)} {problem}", field=self.field, **_path_detail(path))

    def number(self, raw: Any, path: str, axis: str) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise self.invalid(path, f"must be a number ({axis}), got {_describe(raw)}")
        try:
            value = float(raw)
        except OverflowError:
            raise self.invalid(path, f"must be a finite number ({axis}), got an integer too large") from None
        if not math.isfinite(value):
            raise self.invalid(path, f"must be a finite number ({axis}), got {raw}")
        return value

    def array(self, raw: Any, path: str, what: str) -> Sequence[Any]:
        if not isinstance(raw, list | tuple):
            raise self.invalid(path, f"must be {what}, got {_describe(raw)}")
        return raw

    def position(self, raw: Any, path: str) -> tuple[float, float]:
        items = self.array(raw, path, "a position [longitude, latitude]")
        if len(items) < 2:
            raise self.invalid(path, f"must be a position [longitude, latitude], got {len(items)} item(s)")
        if len(items) > 3:
            wanted = "[longitude, latitude] or [longitude, latitude, altitude]"
            raise self.invalid(path, f"must be {wanted}, got {len(items)} items")
        lon = self.number(items[0], f"{path}[0]", "longitude")
        lat = self.number(items[1], f"{path}[1]", "latitude")
        if len(items) == 3:
            self.number(items[2], f"{path}[2]", "altitude")
        self.vertices += 1
        if self.vertices > self.max_vertices:
            raise TooComplex(
                f"{self.field} has more than {self.max_vertices} positions; simplify the shape",
                field=self.field,
                max_vertices=self.max_vertices,
            )
        return lon, lat

    def positions(self, raw: Any, path: str, what: str, minimum: int) -> list[tuple[float, float]]:
        items = self.array(raw, path, what)
        if len(items) < minimum:
            raise self.invalid(path, f"must have at least {minimum} positions, got {len(items)}")
        return [self.position(item, f"{path}[{i}]") for i, item in enumerate(items)]

    def line(self, raw: Any, path: str) -> list[tuple[float, float]]:
        return self.positions(raw, path, "an array of positions (a line)", 2)

    def ring(self, raw: Any, path: str) -> list[tuple[float, float]]:
        ring = self.positions(raw, path, "an array of positions (a linear ring)", 4)
        if ring[0] != ring[-1]:
            raise self.invalid(
                path,
                f"is not closed: a linear ring must end with its first position {list(ring[0])}, "
                f"but ends with {list(ring[-1])}",
            )
        return ring

    def polygon(self, raw: Any, path: str) -> Polygon:
        rings = self.array(raw, path, "an array of linear rings (a polygon)")
        if not rings:
            raise self.invalid(path, "must have an exterior ring, got none")
        shell, *holes = (self.ring(ring, f"{path}[{i}]") for i, ring in enumerate(rings))
        return Polygon(shell, holes)

    def members(self, raw: Any, path: str, what: str) -> Sequence[Any]:
        items = self.array(raw, path, what)
        if not items:
            raise EmptyGeometry(f"{self.where(path)} is empty; give at least one part", field=self.field, path=path)
        return items

    def coordinates(self, gtype: str, raw: Any, path: str) -> BaseGeometry:
        if isinstance(raw, list | tuple) and not raw:
            raise EmptyGeometry(
                f"{self.where(path)} is empty: a {gtype} needs at least one position", field=self.field, path=path
            )
        if gtype == "Point":
            return Point(self.position(raw, path))
        if gtype == "MultiPoint":
            items = self.members(raw, path, "an array of positions")
            return MultiPoint([self.position(item, f"{path}[{i}]") for i, item in enumerate(items)])
        if gtype == "LineString":
            return LineString(self.line(raw, path))
        if gtype == "MultiLineString":
            items = self.members(raw, path, "an array of lines")
            return MultiLineString([self.line(item, f"{path}[{i}]") for i, item in enumerate(items)])
        if gtype == "Polygon":
            return self.polygon(raw, path)
        items = self.members(raw, path, "an array of polygons")
        return MultiPolygon([self.polygon(item, f"{path}[{i}]") for i, item in enumerate(items)])

    def geometry(self, obj: Any, allowed: Collection[str], path: str = "") -> BaseGeometry:
        if not isinstance(obj, dict):
            raise self.invalid(path, f"must be a GeoJSON geometry object, got {_describe(obj)}")
        gtype = self.geometry_type(obj, path)
        if gtype not in allowed:
            expected = [t for t in GEOMETRY_TYPES if t in allowed]
            wording = expected[0] if len(expected) == 1 else f"{', '.join(expected[:-1])} or {expected[-1]}"
            raise WrongGeometryType(
                f"{self.where(path)} must be a {wording}, got a {gtype}",
                field=self.field,
                **_path_detail(path),
                expected=expected,
                given=gtype,
            )
        crs = obj.get("crs")
        if crs is not None and not path:
            self.check_crs(crs)
        if gtype == "GeometryCollection":
            if "geometries" not in obj:
                raise self.invalid(path, "is a GeometryCollection without a 'geometries' member")
            members = self.members(obj["geometries"], self.join(path, "geometries"), "an array of geometries")
            # RFC 7946 discourages nesting; one level keeps parsing bounded.
            member_types = [t for t in GEOMETRY_TYPES if t != "GeometryCollection"]
            return GeometryCollection(
                [
                    self.geometry(member, member_types, self.join(path, f"geometries[{i}]"))
                    for i, member in enumerate(members)
                ]
            )
        if "coordinates" not in obj:
            raise self.invalid(path, f"is a {gtype} without a 'coordinates' member")
        return self.coordinates(gtype, obj["coordinates"], self.join(path, "coordinates"))

    @staticmethod
    def join(path: str, member: str) -> str:
        return f"{path}.{member}" if path else member

    def geometry_type(self, obj: dict[str, Any], path: str) -> str:
        if "type" not in obj:
            raise self.invalid(path, "has no 'type' member; a GeoJSON geometry needs one, e.g. \"Polygon\"")
        gtype = obj["type"]
        if not isinstance(gtype, str):
            raise self.invalid(self.join(path, "type"), f"must be a string, got {_describe(gtype)}")
        if gtype in ("Feature", "FeatureCollection"):
            raise self.invalid(path, f"is a {gtype}; give a geometry object (a Feature's 'geometry' member)")
        if gtype not in GEOMETRY_TYPES:
            known = {t.lower(): t for t in GEOMETRY_TYPES}
            hint = f"; type names are case-sensitive: {known[gtype.lower()]!r}" if gtype.lower() in known else ""
            raise self.invalid(
                self.join(path, "type"),
                f"{gtype!r} is not a GeoJSON geometry type (one of {', '.join(GEOMETRY_TYPES)}){hint}",
            )
        return gtype

    def check_crs(self, crs: Any) -> None:
        properties = crs.get("properties") if isinstance(crs, dict) else None
        name = properties.get("name") if isinstance(properties, dict) else None
        if not isinstance(name, str) or name not in _WGS84_CRS_NAMES:
            raise self.invalid(
                "crs",
                f"names a coordinate system other than WGS 84 ({_describe(name)}); "
                "RFC 7946 GeoJSON is always longitude/latitude in WGS 84",
            )


def _load(value: Any, field: str) -> Any:
    if isinstance(value, bytes | bytearray):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidGeoJSON(f"{field} is not UTF-8 text", field=field) from None
    if not isinstance(value, str):
        return value
    if len(value) > MAX_JSON_CHARS:
        raise TooComplex(
            f"{field} is {len(value)} characters of JSON; at most {MAX_JSON_CHARS} are accepted",
            field=field,
            max_chars=MAX_JSON_CHARS,
        )
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidGeoJSON(
            f"{field} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field=field
        ) from None
    except ValueError:
        # Python refuses integers of more than 4300 digits while decoding.
        raise InvalidGeoJSON(f"{field} holds a number too long to read", field=field) from None
    except RecursionError:
        raise InvalidGeoJSON(f"{field} is JSON nested too deeply to be a geometry", field=field) from None


def parse_geometry(
    value: dict[str, Any] | str, *, allowed: Collection[str], field: str, max_vertices: int = MAX_VERTICES
) -> BaseGeometry:
    """A GeoJSON geometry object (or its JSON text) as a shapely geometry, 2-D, in lon/lat.

    Checks structure only: the type is one of `allowed`, coordinates are finite numbers, lines have two
    positions, rings are closed with four. Ranges, validity and the service area are `validate_geometry`'s.
    """
    parser = _Parser(field, max_vertices)
    return parser.geometry(_load(value, field), allowed)


def _swapped(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda xy: xy[:, ::-1])


def _fits_when_swapped(geom: BaseGeometry, service_area: BaseGeometry) -> bool:
    swapped = _swapped(geom)
    return first_out_of_range(swapped) is None and service_area.covers(swapped)


def _bounds_text(area: BaseGeometry) -> str:
    west, south, east, north = area.bounds
    return f"lon {west:.4f}..{east:.4f}, lat {south:.4f}..{north:.4f}"


def _swapped_error(field: str, geom: BaseGeometry, service_area: BaseGeometry) -> CoordinatesSwapped:
    lon, lat = shapely.get_coordinates(geom)[0]
    return CoordinatesSwapped(
        f"{field} lies outside the service area ({_bounds_text(service_area)}) but inside it with each pair "
        f"swapped: positions are [longitude, latitude], e.g. [{lat}, {lon}] rather than [{lon}, {lat}]",
        field=field,
        position=[float(lon), float(lat)],
    )


def validate_geometry(
    value: dict[str, Any] | str,
    *,
    allowed: Collection[str],
    field: str,
    service_area: BaseGeometry | None = None,
    max_vertices: int = MAX_VERTICES,
) -> BaseGeometry:
    """Parse, then check lon/lat ranges, validity (OGC: no self-intersection) and, when a service area
    is given, that the shape lies inside it. A shape that fits only with every pair swapped is reported
    as COORDINATES_SWAPPED, the usual lat,lon mistake.

    `service_area` is prepared in place (shapely.prepare) so that bulk calls against one area stay fast.
    """
    geom = parse_geometry(value, allowed=allowed, field=field, max_vertices=max_vertices)
    if service_area is not None and not shapely.is_prepared(service_area):
        shapely.prepare(service_area)

    out_of_range = first_out_of_range(geom)
    if out_of_range is not None:
        if service_area is not None and _fits_when_swapped(geom, service_area):
            raise _swapped_error(field, geom, service_area)
        lon, lat = out_of_range
        raise CoordinatesOutOfRange(
            f"{field} has a position [{lon}, {lat}] outside longitude -180..180 / latitude -90..90"
            f"{swap_hint(lon, lat)}",
            field=field,
            position=[lon, lat],
        )

    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        details: dict[str, Any] = {"reason": reason}
        match = _VALIDITY_REASON.match(reason)
        where = ""
        if match:
            details["reason"] = match["reason"]
            try:
                details["location"] = [float(match["x"]), float(match["y"])]
                where = f" at [{match['x']}, {match['y']}]"
            except ValueError:
                pass
        raise InvalidGeometry(
            f"{field} is not a valid {geom.geom_type}: {details['reason']}{where}", field=field, **details
        )

    if service_area is not None and not service_area.covers(geom):
        if _fits_when_swapped(geom, service_area):
            raise _swapped_error(field, geom, service_area)
        raise OutsideServiceArea(
            f"{field} is not inside the service area ({_bounds_text(service_area)})",
            field=field,
            service_area_bbox=list(service_area.bounds),
        )
    return geom


def _ring_coordinates(ring: BaseGeometry) -> list[list[float]]:
    return shapely.get_coordinates(ring).tolist()


def _polygon_coordinates(polygon: Polygon) -> list[list[list[float]]]:
    # RFC 7946 section 3.1.6: exterior rings counter-clockwise, holes clockwise.
    oriented = orient(polygon, sign=1.0)
    return [_ring_coordinates(oriented.exterior), *(_ring_coordinates(r) for r in oriented.interiors)]


def to_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """An RFC 7946 geometry object: 2-D [lon, lat] positions, polygon exteriors counter-clockwise."""
    if geom.is_empty:
        raise ValueError(f"an empty {geom.geom_type} has no GeoJSON representation")
    if isinstance(geom, Point):
        return {"type": "Point", "coordinates": [geom.x, geom.y]}
    if isinstance(geom, MultiPoint):
        return {"type": "MultiPoint", "coordinates": [[p.x, p.y] for p in geom.geoms]}
    if isinstance(geom, LineString):
        # A LinearRing is a closed LineString; GeoJSON has no separate type for it.
        return {"type": "LineString", "coordinates": _ring_coordinates(geom)}
    if isinstance(geom, MultiLineString):
        return {"type": "MultiLineString", "coordinates": [_ring_coordinates(line) for line in geom.geoms]}
    if isinstance(geom, Polygon):
        return {"type": "Polygon", "coordinates": _polygon_coordinates(geom)}
    if isinstance(geom, MultiPolygon):
        return {"type": "MultiPolygon", "coordinates": [_polygon_coordinates(p) for p in geom.geoms]}
    if isinstance(geom, GeometryCollection):
        return {"type": "GeometryCollection", "geometries": [to_geojson(g) for g in geom.geoms if not g.is_empty]}
    raise ValueError(f"unsupported geometry type {geom.geom_type}")
