"""Reading a vehicle list from CSV (pure, no I/O): the columns of each list, one typed value per cell, and
every problem of every row, so an operator fixes the whole file in one go.

The file is UTF-8 text with a header row (a byte-order mark, as Excel writes, is ignored). Column names are
matched without regard to case, spaces or hyphens, and may come in any order; optional columns may be left out,
unknown ones are refused (a misspelt column would otherwise be silently ignored). Empty cells are absent values.
Rows are numbered as a spreadsheet shows them: the header is row 1, the first entry row 2. Blank lines are
skipped but keep their number.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.access import rules
from hub.access.rules import Collector, ListKind
from hub.errors import DomainError, InvalidInput

MAX_ROWS = 50_000


@dataclass(frozen=True)
class Column:
    name: str
    # The validator's field this column fills.
    key: str
    required: bool = False
    # Text to typed value; None keeps the trimmed text.
    parse: Callable[[str], Any] | None = None


_FACILITIES = Column("facilities", "facility_ids")  # parsed against the tenant's facilities, see read_list
_VALID_FROM = Column("valid_from", "valid_from", parse=rules.parse_date)
_VALID_UNTIL = Column("valid_until", "valid_until", parse=rules.parse_date)

COLUMNS: dict[ListKind, tuple[Column, ...]] = {
    "pass": (
        Column("plate", "plate", required=True),
        Column("valid_from", "valid_from", required=True, parse=rules.parse_date),
        Column("valid_until", "valid_until", required=True, parse=rules.parse_date),
        _FACILITIES,
        Column("weekdays", "weekdays", parse=rules.parse_weekdays),
        Column("window_start", "window_start"),
        Column("window_end", "window_end"),
        Column("vehicle_class", "vehicle_class"),
        Column("holder_name", "holder_name"),
        Column("holder_phone", "holder_phone"),
        Column("note", "note"),
    ),
    "whitelist": (
        Column("plate", "plate", required=True),
        Column("category", "category", required=True),
        _FACILITIES,
        _VALID_FROM,
        _VALID_UNTIL,
        Column("reason", "reason"),
    ),
    "blocklist": (
        Column("plate", "plate", required=True),
        Column("kind", "kind", required=True),
        Column("reason", "reason", required=True),
        _VALID_FROM,
        _VALID_UNTIL,
    ),
}

# What each cell may hold, for people writing a file (and for the GraphQL description).
COLUMN_HELP = {
    "plate": "the plate as written on it (粤B·12345 and 粤b12345 are the same plate)",
    "valid_from": "first valid day, YYYY-MM-DD (or YYYY/MM/DD)",
    "valid_until": "last valid day, inclusive",
    "facilities": "facility codes or ids separated by ';' (empty: every facility of the operator)",
    "weekdays": "ISO weekdays: 1-5, 1;3;5, 6-7, mon-fri (empty: every day)",
    "window_start": "daily window start HH:MM (empty with window_end: all day)",
    "window_end": "daily window end HH:MM; before the start runs past midnight; 24:00 allowed",
    "vehicle_class": "small, standard (default), large or new_energy",
    "holder_name": "the holder's name",
    "holder_phone": "the holder's phone number",
    "note": "anything staff should know",
    "category": "official, vip, reserved or team",
    "kind": "blacklist (never enters) or restricted (an agent decides)",
    "reason": "why the plate is on the list",
}


@dataclass(frozen=True)
class RowError:
    """A problem of one row (`row` 1 for the header), in the column `field` when there is one."""

    row: int
    field: str | None
    code: str
    message: str


@dataclass(frozen=True)
class ParsedRow:
    row: int
    values: dict[str, Any]
    entry: rules.Entry


@dataclass
class ParsedFile:
    rows_read: int = 0
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def column_name(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def describe_columns(kind: ListKind) -> str:
    """One line per column: name, required or optional, what it holds."""
    return "\n".join(
        f"{column.name} ({'required' if column.required else 'optional'}): {COLUMN_HELP[column.name]}"
        for column in COLUMNS[kind]
    )


def _header(cells: list[str], kind: ListKind, errors: list[RowError]) -> dict[int, Column]:
    known = {column.name: column for column in COLUMNS[kind]}
    positions: dict[int, Column] = {}
    seen: set[str] = set()
    for position, cell in enumerate(cells):
        name = column_name(cell.lstrip("\ufeff"))
        if not name:
            errors.append(RowError(1, None, "EMPTY_COLUMN_NAME", f"column {position + 1} of the header has no name"))
        elif name not in known:
            expected = ", ".join(known)
            errors.append(RowError(1, name, "UNKNOWN_COLUMN", f"unknown column {name!r}; the columns are {expected}"))
        elif name in seen:
            errors.append(RowError(1, name, "DUPLICATE_COLUMN", f"column {name!r} appears twice"))
        else:
            seen.add(name)
            positions[position] = known[name]
    for column in COLUMNS[kind]:
        if column.required and column.name not in seen:
            errors.append(RowError(1, column.name, "MISSING_COLUMN", f"the header lacks the column {column.name!r}"))
    return positions


def parse_facilities(text: str, facilities: Mapping[str, uuid.UUID]) -> list[uuid.UUID]:
    """Facility codes or ids separated by ';', ',', '|' or spaces, each one of the operator's live facilities."""
    found: list[uuid.UUID] = []
    for token in (part for part in re.split(r"[;,|\s]+", text) if part):
        facility_id = facilities.get(token) or facilities.get(token.lower())
        if facility_id is None:
            raise InvalidInput(
                f"{token!r} is neither the code nor the id of one of your live facilities", code="UNKNOWN_FACILITY"
            )
        found.append(facility_id)
    return found


def _row_fields(
    cells: list[str], positions: dict[int, Column], facilities: Mapping[str, uuid.UUID], problems: Collector
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for position, column in positions.items():
        text = cells[position].strip() if position < len(cells) else ""
        if not text:
            continue
        try:
            if column is _FACILITIES:
                fields[column.key] = parse_facilities(text, facilities)
            else:
                fields[column.key] = column.parse(text) if column.parse else text
        except DomainError as error:
            problems.add(column.key, error.code, error.message)
            fields[column.key] = _UNREADABLE
    return fields


# A cell that could not be read: not reported again as missing by the validator.
_UNREADABLE = object()


def read_list(kind: ListKind, text: str, facilities: Mapping[str, uuid.UUID]) -> ParsedFile:
    """Every row of a CSV list checked: the valid rows' values (ready to store, duplicates within the file
    reported) and every row's problems. `facilities` maps the operator's live facility codes and ids (as text)
    to ids. Raises TOO_MANY_ROWS past MAX_ROWS entries, before reading further."""
    parsed = ParsedFile()
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), strict=True)
    labels = {column.key: column.name for column in COLUMNS[kind]}
    validate = rules.VALIDATORS[kind]
    positions: dict[int, Column] | None = None
    row = 0
    try:
        for cells in reader:
            row += 1
            if not any(cell.strip() for cell in cells):
                continue
            if positions is None:
                positions = _header(cells, kind, parsed.errors)
                if parsed.errors:
                    return parsed  # without its columns no row can be read
                width = len(cells)
                continue
            parsed.rows_read += 1
            if parsed.rows_read > MAX_ROWS:
                raise InvalidInput(
                    f"a list import takes at most {MAX_ROWS:,} rows; split the file",
                    code="TOO_MANY_ROWS",
                    field="csv",
                    max_rows=MAX_ROWS,
                )
            _read_row(kind, row, cells, width, positions, facilities, labels, validate, parsed)
    except csv.Error as error:
        parsed.errors.append(RowError(row + 1, None, "MALFORMED_CSV", f"the file is not valid CSV here: {error}"))
        return parsed
    if positions is None:
        parsed.errors.append(RowError(1, None, "MISSING_HEADER", "the file is empty; it needs a header row"))
    elif parsed.rows_read == 0:
        parsed.errors.append(RowError(1, None, "NO_ROWS", "the file has a header but no entries"))
    for later, earlier in rules.duplicates_among([item.entry for item in parsed.rows]):
        parsed.errors.append(
            RowError(
                parsed.rows[later].row,
                "plate",
                "DUPLICATE_ROW",
                f"{parsed.rows[later].entry.plate} overlaps row {parsed.rows[earlier].row} of this file",
            )
        )
    parsed.errors.sort(key=error_order(kind))
    return parsed


def error_order(kind: ListKind) -> Callable[[RowError], tuple[int, int]]:
    """Problems by row, and within a row in the order of the list's columns (row-wide ones first)."""
    positions = {column.name: index for index, column in enumerate(COLUMNS[kind])}
    return lambda error: (error.row, positions.get(error.field or "", -1))


def _read_row(
    kind: ListKind,
    row: int,
    cells: list[str],
    width: int,
    positions: dict[int, Column],
    facilities: Mapping[str, uuid.UUID],
    labels: dict[str, str],
    validate: Callable[..., dict[str, Any]],
    parsed: ParsedFile,
) -> None:
    problems = Collector(lambda key: labels.get(key, key))
    if len(cells) > width and any(cell.strip() for cell in cells[width:]):
        problems.add("", "EXTRA_VALUES", f"the row has {len(cells)} values, the header {width} columns")
    fields = _row_fields(cells, positions, facilities, problems)
    unreadable = {key for key, value in fields.items() if value is _UNREADABLE}
    values = validate({key: value for key, value in fields.items() if key not in unreadable}, problems)
    # A cell that could not be read was reported; the validator's "missing" for it would repeat it.
    found = [p for p in problems.problems if not (p.code == "MISSING_VALUE" and p.field in map(labels.get, unreadable))]
    if found:
        parsed.errors.extend(RowError(row, p.field or None, p.code, p.message) for p in found)
        return
    parsed.rows.append(ParsedRow(row, values, rules.entry_of(kind, values)))
