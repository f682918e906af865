"""Turning GraphQL inputs into the plain dictionaries services take."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

import strawberry

from schema.relay import uuid_of

# Input fields holding global ids, and the node type each must name.
ID_FIELDS = {"facility_id": "Facility"}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return input_fields(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def input_fields(value: Any, prefix: str = "input") -> dict[str, Any]:
    """The fields the caller set (UNSET ones left out), enums as their stored values, ids as row ids."""
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if item is strawberry.UNSET:
            continue
        if field.name in ID_FIELDS and item is not None:
            node_type = ID_FIELDS[field.name]
            fields[field.name] = uuid_of(item, node_type, f"{prefix}.{field.name}")
        else:
            fields[field.name] = _plain(item)
    return fields
