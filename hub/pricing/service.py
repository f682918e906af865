"""Tariff use cases: operator admins set sealed tariff versions per facility; anyone who may see a facility
gets quotes under its tariff; sessions (and find-a-space) price stays under the version in effect at entry.

Services authorize the caller, validate everything before writing anything, and leave the commit to the
caller, so a rejected call writes nothing.

A stay is priced entirely by the version in effect when it starts (the version a session seals at entry): a
version that takes effect during the stay does not reprice it. Parsed tariffs are cached per process by
version id; versions are never changed, so a cached tariff is never stale."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import Forbidden, InvalidInput, NotFound
from hub.pricing import repository
from hub.pricing.rules import Quote, price
from hub.pricing.tariff import VEHICLE_CLASSES, Tariff, validate
from hub.principal import Principal, require_operator_admin, tenant_filter

DEFAULT_VEHICLE_CLASS = "standard"
# The longest stay a quote (or find-a-space's planned stay) prices: a month of parking is already a pass.
MAX_STAY = timedelta(days=31)
MAX_STAY_DAYS = MAX_STAY.days
# GraphQL's Int is 32-bit: a price beyond it cannot be shown (only a nonsensical tariff gets there).
MAX_PRICE_FEN = 2**31 - 1
CACHE_SIZE = 2_048


def now_utc() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------ authorization


def require_history_reader(principal: Principal) -> None:
    """A facility's tariff history (past and scheduled versions, who set them) is its operator's business and
    the city's; drivers see the version in effect and the one they are quoted."""
    if principal.kind not in ("operator", "city", "platform"):
        raise Forbidden("tariff history is visible to the facility's operator and the city", required_role="operator")


# ----------------------------------------------------------------------------------------- parsed tariffs


class _TariffCache:
    """Parsed tariffs by version id, least recently used dropped first. Each entry keeps its tenant so a
    tenant-scoped lookup never gets another tenant's version from the cache."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[uuid.UUID, tuple[uuid.UUID, Tariff]] = OrderedDict()

    def get(self, version_id: uuid.UUID) -> tuple[uuid.UUID, Tariff] | None:
        entry = self.entries.get(version_id)
        if entry is not None:
            self.entries.move_to_end(version_id)
        return entry

    def put(self, version_id: uuid.UUID, tenant_id: uuid.UUID, tariff: Tariff) -> None:
        self.entries[version_id] = (tenant_id, tariff)
        self.entries.move_to_end(version_id)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()


TARIFFS = _TariffCache(CACHE_SIZE)


def parsed_tariff(row: repository.Row) -> Tariff:
    """The Tariff of a stored version row (which must carry its definition), parsed once per process."""
    cached = TARIFFS.get(row["id"])
    if cached is not None:
        return cached[1]
    tariff = Tariff.from_dict(row["definition"])
    TARIFFS.put(row["id"], row["tenant_id"], tariff)
    return tariff


# ------------------------------------------------------------------------------------------ input checks


def require_aware(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(
            f"{field} must carry a time zone offset (e.g. 2026-11-21T08:00:00+08:00)", code="INVALID_TIME", field=field
        )
    return moment


def check_vehicle_class(vehicle_class: str, field: str = "vehicleClass") -> str:
    if vehicle_class not in VEHICLE_CLASSES:
        raise InvalidInput(
            f"{field} must be one of {', '.join(VEHICLE_CLASSES)}, got {vehicle_class!r}",
            code="UNKNOWN_VEHICLE_CLASS",
            field=field,
        )
    return vehicle_class


def check_stay(start: datetime, end: datetime, prefix: str = "") -> None:
    """A stay to price: aware instants, ending after it starts, at most MAX_STAY long."""
    require_aware(start, f"{prefix}from")
    require_aware(end, f"{prefix}to")
    if end <= start:
        raise InvalidInput(f"{prefix}to must come after {prefix}from", code="INVALID_STAY", field=f"{prefix}to")
    if end - start > MAX_STAY:
        raise InvalidInput(
            f"a stay to price may last at most {MAX_STAY_DAYS} days, this one lasts {end - start}",
            code="STAY_TOO_LONG",
            field=f"{prefix}to",
            max_days=MAX_STAY_DAYS,
        )


# ----------------------------------------------------------------------------------------------- setting


def _rejected(problems: list[dict[str, str]]) -> InvalidInput:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    tariff_problems = [item for item in problems if item["code"] != "TARIFF_BACKDATED"]
    return InvalidInput(
        f"tariff rejected, nothing was written: {first['field']}: {first['message']}{more}",
        code="INVALID_TARIFF" if tariff_problems else "TARIFF_BACKDATED",
        field=first["field"],
        problems=problems,
    )


def _tariff_problems(definition: Any, field_of: Callable[[str], str]) -> tuple[Tariff | None, list[dict[str, str]]]:
    """The tariff read from its JSON form, or every problem of it (unreadable fields first, then the values)."""
    try:
        tariff = Tariff.from_dict(definition)
    except InvalidInput as error:
        found = list(error.details.get("problems", []))
        return None, [{**item, "field": field_of(item["field"])} for item in found]
    return tariff, [{**problem.as_dict(), "field": field_of(problem.field)} for problem in validate(tariff)]


async def set_tariff(
    session: AsyncSession,
    principal: Principal,
    facility_id: uuid.UUID,
    definition: Any,
    valid_from: datetime | None = None,
    *,
    field_of: Callable[[str], str] = lambda path: path,
) -> repository.Row:
    """A new sealed version of the facility's tariff from `definition` (the engine's JSON form), in effect
    from `valid_from` (now when None). Every problem of the tariff is reported at once, each with its field
    path as `field_of` names it for the caller (the engine's path goes in, e.g. `bands[2].start`), and nothing
    is written. A version may not start before the facility's latest version does (TARIFF_BACKDATED): the
    versions in effect over time then follow their numbers."""
    tenant_id = require_operator_admin(principal, "its tariffs")
    facility = await repository.facility(session, facility_id, tenant_id)
    if facility is None:
        raise NotFound("no live facility with this id belongs to your operator", field="facilityId")
    tariff, problems = _tariff_problems(definition, field_of)
    start = now_utc() if valid_from is None else require_aware(valid_from, "validFrom")
    await repository.lock_facility_tariffs(session, tenant_id, facility_id)
    last = await repository.last_version(session, tenant_id, facility_id)
    if last is not None and start < last["valid_from"]:
        problems.append(
            {
                "field": "validFrom",
                "code": "TARIFF_BACKDATED",
                "message": f"must not be before {last['valid_from'].isoformat()}, when version {last['version']} "
                "takes effect (a new version cannot be back-dated before the latest one)",
            }
        )
    if problems or tariff is None:
        raise _rejected(problems)
    row = await repository.insert_version(
        session,
        {
            "tenant_id": tenant_id,
            "facility_id": facility_id,
            "version": 1 if last is None else last["version"] + 1,
            "definition": tariff.to_dict(),
            "valid_from": start,
            "created_by": principal.subject or f"operator:{tenant_id}",
        },
    )
    TARIFFS.put(row["id"], tenant_id, tariff)
    return row


# ------------------------------------------------------------------------------------------------- reads


async def tariff_history(
    session: AsyncSession, principal: Principal, facility_id: uuid.UUID
) -> tuple[repository.Row, list[repository.Row]]:
    """The facility (retired ones too) and every version of its tariff, newest first."""
    require_history_reader(principal)
    facility = await repository.facility(session, facility_id, tenant_filter(principal), live_only=False)
    if facility is None:
        raise NotFound("no facility with this id is visible to you", field="facilityId")
    return facility, await repository.versions_of_facility(session, facility_id, tenant_filter(principal))


async def current_tariffs(
    session: AsyncSession, principal: Principal, facility_ids: Sequence[uuid.UUID], at: datetime | None = None
) -> dict[uuid.UUID, repository.Row]:
    """The version in effect at `at` (now by default) of each facility that has one, by facility id."""
    if not facility_ids:
        return {}
    rows = await repository.versions_at(session, facility_ids, at or now_utc(), tenant_filter(principal))
    return {row["facility_id"]: row for row in rows}


async def tariff_versions_by_ids(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[repository.Row]:
    return await repository.versions_by_ids(session, ids, tenant_filter(principal))


# ------------------------------------------------------------------------------------------------ quotes


@dataclass(frozen=True)
class PricedStay:
    """A quote: the stay's itemized price under the tariff version in effect at its start."""

    facility_id: uuid.UUID
    currency: str
    version: repository.Row
    quote: Quote


def _showable(quote: Quote) -> bool:
    amounts = [quote.total_fen, *(line.amount_fen for line in quote.segments)]
    amounts += [line.amount_fen for line in quote.adjustments]
    return all(abs(amount) <= MAX_PRICE_FEN for amount in amounts)


async def quote(
    session: AsyncSession,
    principal: Principal,
    facility_id: uuid.UUID,
    vehicle_class: str,
    start: datetime,
    end: datetime,
) -> PricedStay:
    """What a stay from `start` to `end` would cost at the facility, itemized. NO_TARIFF when the facility has
    no tariff in effect at `start`; INVALID_STAY / STAY_TOO_LONG / INVALID_TIME for a bad window."""
    check_vehicle_class(vehicle_class)
    check_stay(start, end)
    facility = await repository.facility(session, facility_id, tenant_filter(principal))
    if facility is None:
        raise NotFound("no live facility with this id is visible to you", field="facilityId")
    version = await repository.version_at(session, facility_id, start, facility["tenant_id"], definition=True)
    if version is None:
        raise NotFound(
            f"the facility has no tariff in effect at {start.isoformat()}", code="NO_TARIFF", field="facilityId"
        )
    priced = price(parsed_tariff(version), ZoneInfo(facility["time_zone"]), vehicle_class, start, end)
    if not _showable(priced):
        raise InvalidInput("the price of this stay is too large to quote", code="QUOTE_TOO_LARGE", field="to")
    return PricedStay(facility_id, facility["currency"], version, priced)


async def stay_prices(
    session: AsyncSession,
    zones_by_version: Mapping[uuid.UUID, str],
    vehicle_class: str,
    start: datetime,
    end: datetime,
) -> dict[uuid.UUID, int]:
    """The total of one stay under each tariff version (id -> its facility's time zone), for find-a-space: each
    version priced once however many spaces share it, and the definitions not cached yet read in one batched
    query under the caller's scope. A version whose price is beyond MAX_PRICE_FEN is left out (unpriceable).
    The stay must have passed `check_stay`."""
    missing = [version_id for version_id in zones_by_version if TARIFFS.get(version_id) is None]
    for row in await repository.versions_by_ids(session, missing, None):
        parsed_tariff(row)
    prices: dict[uuid.UUID, int] = {}
    for version_id, zone in zones_by_version.items():
        cached = TARIFFS.get(version_id)
        if cached is None:  # not visible to this caller after all
            continue
        total = price(cached[1], ZoneInfo(zone), vehicle_class, start, end).total_fen
        if total <= MAX_PRICE_FEN:
            prices[version_id] = total
    return prices


# ---------------------------------------------------------------------------------------------- sessions


async def tariff_at(
    session: AsyncSession, facility_id: uuid.UUID, at: datetime, *, tenant_id: uuid.UUID | None = None
) -> tuple[uuid.UUID, Tariff]:
    """The id and tariff of the facility's version in effect at `at`: what a session starting then seals.
    Reads under the session's RLS scope (and `tenant_id` when given). NotFound NO_TARIFF when there is none."""
    require_aware(at, "at")
    row = await repository.version_at(session, facility_id, at, tenant_id, definition=False)
    if row is None:
        raise NotFound(
            f"the facility has no tariff in effect at {at.isoformat()}", code="NO_TARIFF", field="facilityId"
        )
    return row["id"], await tariff_version(session, row["id"], tenant_id=row["tenant_id"])


async def tariff_version(session: AsyncSession, version_id: uuid.UUID, *, tenant_id: uuid.UUID | None = None) -> Tariff:
    """The tariff of a sealed version (the one a session stored), from the process cache when parsed before.
    A cache hit asks the database nothing, so pass an id read under your own scope, and `tenant_id` when you
    know it: a version of another tenant is then never returned. NotFound UNKNOWN_TARIFF_VERSION when the
    scope cannot see the version."""
    cached = TARIFFS.get(version_id)
    if cached is not None and (tenant_id is None or cached[0] == tenant_id):
        return cached[1]
    rows = await repository.versions_by_ids(session, [version_id], tenant_id)
    if not rows:
        raise NotFound("no tariff version with this id is visible", code="UNKNOWN_TARIFF_VERSION", field="versionId")
    return parsed_tariff(rows[0])
