"""Relay helpers: global ids to row ids, opaque cursors, connections over keyset pages."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from strawberry import relay

from hub.errors import InvalidInput

T = TypeVar("T")
MAX_PAGE = 100


def uuid_of(global_id: relay.GlobalID | str, type_name: str | tuple[str, ...], field: str = "id") -> uuid.UUID:
    """The row id inside a global id, checked to be of the expected type."""
    try:
        gid = global_id if isinstance(global_id, relay.GlobalID) else relay.GlobalID.from_id(global_id)
        names = (type_name,) if isinstance(type_name, str) else type_name
        if gid.type_name not in names:
            raise ValueError
        return uuid.UUID(gid.node_id)
    except (ValueError, TypeError, AttributeError):
        expected = type_name if isinstance(type_name, str) else " or ".join(type_name)
        raise InvalidInput(f"{field}: not a valid {expected} id", code="INVALID_ID", field=field) from None


def row_ids(node_ids: Iterable[str]) -> list[uuid.UUID | None]:
    """Row ids of node ids; a malformed one becomes None (resolves to null, like an invisible row)."""
    ids: list[uuid.UUID | None] = []
    for node_id in node_ids:
        try:
            ids.append(uuid.UUID(node_id))
        except (ValueError, TypeError):
            ids.append(None)
    return ids


def check_first(first: int | None, default: int = 20) -> int:
    first = default if first is None else first
    if not (1 <= first <= MAX_PAGE):
        raise InvalidInput(f"first must be between 1 and {MAX_PAGE}, got {first}", code="INVALID_INPUT", field="first")
    return first


def encode_cursor(sort_value: str, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{row_id}|{sort_value}".encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[str, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        row_id, sort_value = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return sort_value, uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("after: not a cursor returned by this API", code="INVALID_CURSOR", field="after") from None


def decode_time_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """A cursor of a page sorted by a time, then by id."""
    decoded = decode_cursor(cursor)
    if decoded is None:
        return None
    try:
        return datetime.fromisoformat(decoded[0]), decoded[1]
    except ValueError:
        raise InvalidInput("after: not a cursor returned by this API", code="INVALID_CURSOR", field="after") from None


def connection(
    rows: Sequence[Any],
    first: int,
    has_previous: bool,
    make_node: Callable[[Any], T],
    sort_key: str | Callable[[Any], tuple[str, uuid.UUID]],
) -> relay.Connection[T]:
    """A connection from a keyset page that fetched `first + 1` rows (the extra one proves a next page).
    `sort_key` names the sort column of a mapping row, or gives (sort value, id) of any other row."""

    def key(row: Any) -> tuple[str, uuid.UUID]:
        return (str(row[sort_key]), row["id"]) if isinstance(sort_key, str) else sort_key(row)

    edges = [relay.Edge(node=make_node(row), cursor=encode_cursor(*key(row))) for row in rows[:first]]
    return relay.Connection(
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=len(rows) > first,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
