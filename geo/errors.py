"""Typed errors for spatial input. Every one names the input field it is about (`field` in its details,
so it reaches clients as `extensions.field`) and says what is wrong in words a person can act on."""

from __future__ import annotations

from typing import Any

from hub.errors import DomainError


class GeoError(DomainError):
    """Base of every spatial input error; catch this to handle them all."""

    code = "INVALID_GEOJSON"

    def __init__(self, message: str, *, field: str, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class InvalidGeoJSON(GeoError):
    """Not JSON, not an object, a missing or malformed `type`/`coordinates`, non-numeric coordinates,
    unclosed rings, too few positions."""

    code = "INVALID_GEOJSON"


class WrongGeometryType(GeoError):
    code = "WRONG_GEOMETRY_TYPE"


class InvalidGeometry(GeoError):
    """Well-formed GeoJSON describing an invalid shape (self-intersection, ring self-contact, ...)."""

    code = "INVALID_GEOMETRY"


class CoordinatesOutOfRange(GeoError):
    code = "COORDINATES_OUT_OF_RANGE"


class CoordinatesSwapped(GeoError):
    """Outside the service area as given, inside it with every pair swapped: the caller sent lat,lon."""

    code = "COORDINATES_SWAPPED"


class OutsideServiceArea(GeoError):
    code = "OUTSIDE_SERVICE_AREA"


class EmptyGeometry(GeoError):
    code = "EMPTY_GEOMETRY"


class TooComplex(GeoError):
    code = "TOO_COMPLEX"


class InvalidBbox(GeoError):
    code = "INVALID_BBOX"
