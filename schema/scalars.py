"""Scalars: GeoJSON geometry (RFC 7946, lon/lat) in and out. Free-form JSON is strawberry's own `JSON`.

The NewType is what types and inputs annotate; SCALAR_MAP tells the schema how to read and write it."""

from __future__ import annotations

import json
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

GeoJSON = NewType("GeoJSON", object)


def _parse_geojson(value: Any) -> Any:
    # Structure and validity are checked by geo.validate_geometry in the service, which names the field.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


SCALAR_MAP: dict[object, ScalarDefinition] = {
    GeoJSON: strawberry.scalar(
        name="GeoJSON",
        description="A GeoJSON geometry object (RFC 7946): positions are [longitude, latitude] in WGS 84.",
        serialize=lambda value: value,
        parse_value=_parse_geojson,
    ),
}
