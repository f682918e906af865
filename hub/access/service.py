"""Vehicle list use cases: passes, whitelist and blocklist entries one at a time or from CSV, and the standing
of a plate that lane decisions ask for.

Services authorize the caller, validate everything before writing anything, and leave the commit to the
caller, so a rejected call writes nothing. Operator admins change the lists; operator staff read them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from connectors.plates import normalize_camera_plate
from hub.access import csvfile, repository, rules
from hub.access.csvfile import RowError
from hub.access.rules import Collector, ListKind, Standing
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.principal import Principal, require_operator_admin

# The report lists at most this many problems of a file (and counts them all).
MAX_REPORTED_ERRORS = 1_000
LIST_NAMES: dict[ListKind, str] = {"pass": "pass", "whitelist": "whitelist entry", "blocklist": "blocklist entry"}


def now_utc() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------ authorization


def require_list_reader(principal: Principal) -> uuid.UUID:
    """Vehicle lists name people's cars: only the operator's own staff read them."""
    if principal.kind == "operator" and principal.tenant_id:
        return principal.tenant_id
    raise Forbidden("vehicle lists are visible to their operator's staff only", required_role="operator_staff")


# ---------------------------------------------------------------------------------------------- standing


def _entry_of_row(row: repository.Row) -> rules.Entry:
    facility_ids = row["facility_ids"]
    weekdays = row["weekdays"]
    return rules.Entry(
        list=row["list"],
        id=row["id"],
        plate="",
        kind=row["kind"],
        category=row["category"],
        reason=row["reason"],
        facility_ids=None if facility_ids is None else frozenset(facility_ids),
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
        weekdays=frozenset(weekdays) if weekdays else frozenset(rules.ALL_WEEKDAYS),
        window_start=row["window_start"],
        window_end=row["window_end"],
        vehicle_class=row["vehicle_class"],
    )


async def _entries_at(
    session: AsyncSession, tenant_id: uuid.UUID, facility_id: uuid.UUID, plate: str, at: datetime
) -> tuple[ZoneInfo, list[rules.Entry]]:
    rows = await repository.standing_rows(session, tenant_id, facility_id, normalize_camera_plate(plate)[0], at)
    if not rows:
        raise NotFound("no facility with this id belongs to the operator", code="UNKNOWN_FACILITY", field="facilityId")
    return ZoneInfo(rows[0]["time_zone"]), entries_of_rows(rows)


def entries_of_rows(rows: Sequence[repository.Row]) -> list[rules.Entry]:
    """The entries in rows of `repository.plate_entries_sql` (rows with a null `list` are none)."""
    return [_entry_of_row(row) for row in rows if row["list"] is not None]


async def standing_of(
    session: AsyncSession, tenant_id: uuid.UUID, facility_id: uuid.UUID, plate: str, at: datetime
) -> Standing:
    """What the tenant's lists say about `plate` at `facility_id` at the aware instant `at`: blacklisted,
    restricted, whitelisted, pass_holder (window open at `at`) or visitor, with the deciding entry (see
    hub/access/rules.py for the precedence and the time rules). The plate is normalized as cameras' reads are.
    One indexed query; the session's scope must see the tenant (operator or connector scope, or platform).
    Raises NotFound (UNKNOWN_FACILITY) when the facility is not the tenant's."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput("at must carry a time zone", code="INVALID_INSTANT", field="at")
    zone, entries = await _entries_at(session, tenant_id, facility_id, plate, at)
    return rules.standing(entries, facility_id, at, zone)


async def pass_windows_of(
    session: AsyncSession, tenant_id: uuid.UUID, facility_id: uuid.UUID, plate: str, start: datetime, end: datetime
) -> list[rules.Window]:
    """The parts of the stay [start, end) covered by the plate's live passes at the facility, merged, as UTC
    (start, end) pairs in order: the `pass_windows` the tariff engine leaves uncharged. One query."""
    if end <= start:
        return []
    zone, entries = await _entries_at(session, tenant_id, facility_id, plate, start)
    return merged_pass_windows(entries, zone, start, end)


def merged_pass_windows(
    entries: Sequence[rules.Entry], zone: ZoneInfo, start: datetime, end: datetime
) -> list[rules.Window]:
    """`pass_windows_of` from entries already read (at `start` or earlier) for the facility."""
    windows = sorted(
        window for entry in entries if entry.list == "pass" for window in rules.pass_windows(entry, zone, start, end)
    )
    merged: list[rules.Window] = []
    for window_start, window_end in windows:
        if merged and window_start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(window_end, merged[-1][1]))
        else:
            merged.append((window_start, window_end))
    return merged


async def vehicle_standing(
    session: AsyncSession, principal: Principal, facility_id: uuid.UUID, plate: str, at: datetime | None
) -> Standing:
    """`standing_of` for the operator's staff (checking a plate at the front desk)."""
    tenant_id = require_list_reader(principal)
    rules.list_plate(plate)  # a person typed it: refuse what is not a plate, rather than answer "visitor"
    return await standing_of(session, tenant_id, facility_id, plate, at or now_utc())


# ------------------------------------------------------------------------------------------------- reads


async def entries_by_ids(
    session: AsyncSession, principal: Principal, kind: ListKind, ids: Sequence[uuid.UUID]
) -> list[repository.Row]:
    """Entries (revoked ones too) by id, as the caller may see them: none for anyone but the operator."""
    if principal.kind != "operator" or principal.tenant_id is None or not ids:
        return []
    return await repository.entries_by_ids(session, kind, ids, principal.tenant_id)


async def entries_page(
    session: AsyncSession, principal: Principal, kind: ListKind, *, plate: str | None = None, **criteria: Any
) -> list[repository.Row]:
    """One page of a list by plate; `plate` is normalized first, so any way of writing it finds the entry."""
    tenant_id = require_list_reader(principal)
    if plate is not None:
        try:
            plate = rules.list_plate(plate)
        except InvalidInput as error:
            raise InvalidInput(error.message, code=error.code, field="plate") from None
    return await repository.entries_page(session, kind, tenant_id=tenant_id, plate=plate, **criteria)


# ------------------------------------------------------------------------------------ one entry at a time


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def input_label(key: str) -> str:
    return f"input.{_camel(key)}"


async def _check_facilities(
    session: AsyncSession, tenant_id: uuid.UUID, facility_ids: Sequence[uuid.UUID] | None, problems: Collector
) -> None:
    if not facility_ids:
        return
    live = await repository.live_facility_ids(session, tenant_id, facility_ids)
    missing = [facility_id for facility_id in facility_ids if facility_id not in live]
    if missing:
        problems.add(
            "facility_ids", "UNKNOWN_FACILITY", f"no live facility with id {missing[0]} belongs to your operator"
        )


async def _refuse_overlap(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    kind: ListKind,
    values: dict[str, Any],
    except_id: uuid.UUID | None = None,
) -> None:
    candidate = rules.entry_of(kind, values, except_id)
    for row in await repository.live_entries_of_plates(session, kind, tenant_id, [values["plate"]]):
        if row["id"] != except_id and rules.overlaps(candidate, rules.entry_of(kind, row)):
            raise Conflict(
                f"{values['plate']} already has a live {LIST_NAMES[kind]} ({row['id']}) for the same days"
                + ("" if kind == "blocklist" else " and facilities")
                + "; change or revoke that one instead",
                code="DUPLICATE_ENTRY",
                field="input.plate",
                existing_id=str(row["id"]),
            )


async def create_entry(
    session: AsyncSession, principal: Principal, kind: ListKind, fields: dict[str, Any]
) -> repository.Row:
    """A new pass, whitelist or blocklist entry from the typed fields of its GraphQL input. DUPLICATE_ENTRY
    when a live entry of the plate on the same list overlaps it."""
    tenant_id = require_operator_admin(principal, "its vehicle lists")
    problems = Collector(input_label)
    values = rules.VALIDATORS[kind](fields, problems)
    await _check_facilities(session, tenant_id, values.get("facility_ids"), problems)
    if problems.problems:
        raise rules.first_problem_error(problems.problems, LIST_NAMES[kind])
    await repository.lock_lists(session, tenant_id, kind)
    await _refuse_overlap(session, tenant_id, kind, values)
    return await repository.insert_entry(session, kind, {**values, "tenant_id": tenant_id})


async def update_entry(
    session: AsyncSession, principal: Principal, kind: ListKind, entry_id: uuid.UUID, changes: dict[str, Any]
) -> repository.Row:
    """Change the given fields of a live entry (null clears an optional one); the whole entry is validated
    again as it will be stored."""
    tenant_id = require_operator_admin(principal, "its vehicle lists")
    await repository.lock_lists(session, tenant_id, kind)
    current = await repository.live_entry(session, kind, tenant_id, entry_id)
    if current is None:
        raise NotFound(f"no live {LIST_NAMES[kind]} with this id belongs to your operator", field="id")
    problems = Collector(input_label)
    values = rules.VALIDATORS[kind]({**rules.editable_fields(kind, current), **changes}, problems)
    if "facility_ids" in changes:
        await _check_facilities(session, tenant_id, values.get("facility_ids"), problems)
    if problems.problems:
        raise rules.first_problem_error(problems.problems, LIST_NAMES[kind])
    await _refuse_overlap(session, tenant_id, kind, values, except_id=entry_id)
    updated = await repository.update_entry(session, kind, tenant_id, entry_id, values)
    assert updated is not None  # checked live above, under the list's lock
    return updated


async def revoke_entry(
    session: AsyncSession, principal: Principal, kind: ListKind, entry_id: uuid.UUID
) -> repository.Row:
    """End an entry now; it is kept (revoked) for the record and no longer counts."""
    tenant_id = require_operator_admin(principal, "its vehicle lists")
    revoked = await repository.update_entry(session, kind, tenant_id, entry_id, {"revoked_at": now_utc()})
    if revoked is None:
        raise NotFound(f"no live {LIST_NAMES[kind]} with this id belongs to your operator", field="id")
    return revoked


# -------------------------------------------------------------------------------------------------- import


@dataclass(frozen=True)
class ImportReport:
    """What an import did: `imported` rows were written (0 on a dry run or when any row has a problem:
    all or nothing); `errors` lists the first MAX_REPORTED_ERRORS problems of `error_count`."""

    kind: ListKind
    dry_run: bool
    rows_read: int
    valid_rows: int
    imported: int
    error_count: int
    errors: list[RowError] = field(default_factory=list)

    @property
    def errors_truncated(self) -> bool:
        return self.error_count > len(self.errors)


def _facility_keys(rows: Sequence[repository.Row]) -> dict[str, uuid.UUID]:
    keys: dict[str, uuid.UUID] = {}
    for row in rows:
        keys[str(row["id"])] = row["id"]
        if row["code"]:
            keys[row["code"]] = row["id"]
    return keys


async def _overlaps_with_live(
    session: AsyncSession, tenant_id: uuid.UUID, kind: ListKind, parsed: csvfile.ParsedFile
) -> list[RowError]:
    plates = sorted({item.entry.plate for item in parsed.rows})
    live: dict[str, list[rules.Entry]] = {}
    for row in await repository.live_entries_of_plates(session, kind, tenant_id, plates):
        live.setdefault(row["plate"], []).append(rules.entry_of(kind, row))
    errors = []
    for item in parsed.rows:
        existing = next((entry for entry in live.get(item.entry.plate, ()) if rules.overlaps(item.entry, entry)), None)
        if existing is not None:
            errors.append(
                RowError(
                    item.row,
                    "plate",
                    "DUPLICATE_ENTRY",
                    f"{item.entry.plate} overlaps the live {LIST_NAMES[kind]} {existing.id}; revoke it first",
                )
            )
    return errors


async def import_list(
    session: AsyncSession,
    principal: Principal,
    kind: ListKind,
    text: str,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import a CSV list (see hub/access/csvfile.py for the columns): every row checked, duplicates within
    the file and against the live entries reported, and then either every row written or none."""
    tenant_id = require_operator_admin(principal, "its vehicle lists")
    say = progress or (lambda _message: None)
    if not dry_run:
        # Taken before reading the live entries, so none can appear between the check and the insert.
        await repository.lock_lists(session, tenant_id, kind)
    facilities = _facility_keys(await repository.live_facility_keys(session, tenant_id))
    parsed = csvfile.read_list(kind, text, facilities)
    say(f"read {parsed.rows_read:,} rows, {len(parsed.errors):,} problems")
    errors = [*parsed.errors, *await _overlaps_with_live(session, tenant_id, kind, parsed)]
    errors.sort(key=csvfile.error_order(kind))
    say(f"checked against the live {kind} list: {len(errors):,} problems in all")
    imported = 0
    if not errors and not dry_run:
        rows = [{**item.values, "tenant_id": tenant_id} for item in parsed.rows]
        imported = await repository.insert_entries(session, kind, rows)
        say(f"wrote {imported:,} entries")
    return ImportReport(
        kind=kind,
        dry_run=dry_run,
        rows_read=parsed.rows_read,
        valid_rows=len(parsed.rows) - len({error.row for error in errors if error.code in DUPLICATE_CODES}),
        imported=imported,
        error_count=len(errors),
        errors=errors[:MAX_REPORTED_ERRORS],
    )


DUPLICATE_CODES = ("DUPLICATE_ROW", "DUPLICATE_ENTRY")


def parse_list_kind(raw: str) -> ListKind:
    """A list kind as people name it on the command line: pass, whitelist, blocklist (blacklist too)."""
    name = re.sub(r"[\s\-_]+", "", raw.strip().lower())
    aliases: dict[str, ListKind] = {
        "pass": "pass",
        "passes": "pass",
        "whitelist": "whitelist",
        "blocklist": "blocklist",
        "blacklist": "blocklist",
    }
    if name not in aliases:
        raise InvalidInput(f"kind must be pass, whitelist or blocklist, got {raw!r}", code="INVALID_KIND", field="kind")
    return aliases[name]
