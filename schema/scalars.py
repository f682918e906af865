"""Scalars: GeoJSON geometry (RFC 7946, lon/lat) in and out; free-form JSON."""

from __future__ import annotations

import json
from typing import Any, NewType

import strawberry


def _parse_geojson(value: Any) -> Any:
    # Structure and validity are checked by geo.validate_geometry in the service, which names the field.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


GeoJSON = strawberry.scalar(
    NewType("GeoJSON", object),
    description="A GeoJSON geometry object (RFC 7946): positions are [longitude, latitude] in WGS 84.",
    serialize=lambda value: value,
    parse_value=_parse_geojson,
)

JSON = strawberry.scalar(
    NewType("JSON", object),
    description="Arbitrary JSON.",
    serialize=lambda value: value,
    parse_value=lambda value: value,
)
