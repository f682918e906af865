"""All SQL of the vehicle lists. Every function filters by tenant explicitly; row-level security is the
second wall behind these filters."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ARRAY, Table, Text, any_, bindparam, func, insert, literal, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from hub.access.models import BlocklistEntry, PassOffer, VehiclePass, WhitelistEntry
from hub.access.rules import ListKind
from hub.db import driver_of
from hub.supply.models import Facility

Row = Mapping[str, Any]

TABLES: dict[ListKind, Table] = {
    "pass": VehiclePass.__table__,  # type: ignore[dict-item]
    "whitelist": WhitelistEntry.__table__,  # type: ignore[dict-item]
    "blocklist": BlocklistEntry.__table__,  # type: ignore[dict-item]
}
facilities = Facility.__table__
offers = PassOffer.__table__
passes = VehiclePass.__table__


# -------------------------------------------------------------------------------------------- standing


def plate_entries_sql(*, tenant: str, plate: str, at: str, facility: str) -> str:
    """A LATERAL subquery: every live entry of the plate on the three lists that can still matter at `at` at the
    facility row `facility` (an alias with `id` and `time_zone`), one row per entry in the columns STANDING_SQL
    returns after `time_zone`. The arguments are SQL expressions (placeholders, columns); lane decisions embed it
    in their context statement (hub/lanes/repository.py)."""
    return f"""
    SELECT 'blocklist' AS list, b.id, b.kind, NULL::text AS category, b.reason, NULL::uuid[] AS facility_ids,
           b.valid_from, b.valid_until, NULL::smallint[] AS weekdays, NULL::smallint AS window_start,
           NULL::smallint AS window_end, NULL::text AS vehicle_class
    FROM vehicle_blocklist b
    WHERE b.tenant_id = {tenant} AND b.plate = {plate} AND b.revoked_at IS NULL
      AND (b.valid_until IS NULL OR b.valid_until >= ({at} AT TIME ZONE {facility}.time_zone)::date - 1)
    UNION ALL
    SELECT 'whitelist', w.id, NULL, w.category, w.reason, w.facility_ids, w.valid_from, w.valid_until,
           NULL, NULL, NULL, NULL
    FROM vehicle_whitelist w
    WHERE w.tenant_id = {tenant} AND w.plate = {plate} AND w.revoked_at IS NULL
      AND (w.facility_ids IS NULL OR {facility}.id = ANY (w.facility_ids))
      AND (w.valid_until IS NULL OR w.valid_until >= ({at} AT TIME ZONE {facility}.time_zone)::date - 1)
    UNION ALL
    SELECT 'pass', p.id, NULL, NULL, NULL, p.facility_ids, p.valid_from, p.valid_until, p.weekdays,
           p.window_start, p.window_end, p.vehicle_class
    FROM vehicle_passes p
    WHERE p.tenant_id = {tenant} AND p.plate = {plate} AND p.revoked_at IS NULL
      AND (p.facility_ids IS NULL OR {facility}.id = ANY (p.facility_ids))
      AND p.valid_until >= ({at} AT TIME ZONE {facility}.time_zone)::date - 1
"""


# One round trip for a lane read: the facility's zone and every live entry of the plate on the three lists
# that can still matter at `$4` (the last valid day no earlier than yesterday in the facility's zone, since a
# pass's window may run past midnight). No row: the facility is not the tenant's. A row with a null `list`:
# the facility exists and the plate is on no list. The plate equality leads the (tenant_id, plate) indexes.
#   $1 tenant, $2 facility, $3 normalized plate, $4 the instant
STANDING_SQL = f"""
SELECT f.time_zone, e.list, e.id, e.kind, e.category, e.reason, e.facility_ids, e.valid_from, e.valid_until,
       e.weekdays, e.window_start, e.window_end, e.vehicle_class
FROM facilities f
LEFT JOIN LATERAL ({plate_entries_sql(tenant="$1", plate="$3", at="$4::timestamptz", facility="f")}) e ON true
WHERE f.tenant_id = $1 AND f.id = $2
"""


async def standing_rows(
    session: AsyncSession, tenant_id: uuid.UUID, facility_id: uuid.UUID, plate: str, at: datetime
) -> list[Row]:
    """See STANDING_SQL. Runs on the session's own asyncpg connection (inside its transaction and RLS
    scope), skipping SQLAlchemy's result layer: this is on the path of every lane read."""
    driver = await driver_of(session)
    return await driver.fetch(STANDING_SQL, tenant_id, facility_id, plate, at)


# ------------------------------------------------------------------------------------------------ reads


async def entries_by_ids(
    session: AsyncSession, kind: ListKind, ids: Sequence[uuid.UUID], tenant_id: uuid.UUID
) -> list[Row]:
    table = TABLES[kind]
    stmt = select(table).where(table.c.tenant_id == tenant_id, table.c.id.in_(ids))
    return list((await session.execute(stmt)).mappings().all())


async def live_entry(session: AsyncSession, kind: ListKind, tenant_id: uuid.UUID, entry_id: uuid.UUID) -> Row | None:
    table = TABLES[kind]
    stmt = select(table).where(table.c.tenant_id == tenant_id, table.c.id == entry_id, table.c.revoked_at.is_(None))
    return (await session.execute(stmt)).mappings().first()


async def live_entries_of_plates(
    session: AsyncSession, kind: ListKind, tenant_id: uuid.UUID, plates: Sequence[str]
) -> list[Row]:
    """The live entries of these plates (duplicates are judged against them)."""
    if not plates:
        return []
    table = TABLES[kind]
    stmt = select(table).where(
        table.c.tenant_id == tenant_id,
        table.c.plate == func.any(bindparam("plates", list(plates), type_=ARRAY(Text))),
        table.c.revoked_at.is_(None),
    )
    return list((await session.execute(stmt)).mappings().all())


async def entries_page(
    session: AsyncSession,
    kind: ListKind,
    *,
    tenant_id: uuid.UUID,
    first: int,
    after: tuple[str, uuid.UUID] | None = None,
    plate: str | None = None,
    facility_id: uuid.UUID | None = None,
    category: str | None = None,
    blocklist_kind: str | None = None,
    valid_on: date | None = None,
    include_revoked: bool = False,
) -> list[Row]:
    """One page of entries by plate (then id), plus one row more when a next page exists."""
    table = TABLES[kind]
    stmt = select(table).where(table.c.tenant_id == tenant_id)
    if not include_revoked:
        stmt = stmt.where(table.c.revoked_at.is_(None))
    if plate is not None:
        stmt = stmt.where(table.c.plate == plate)
    if facility_id is not None and "facility_ids" in table.c:
        stmt = stmt.where(
            or_(table.c.facility_ids.is_(None), literal(facility_id, PG_UUID()) == any_(table.c.facility_ids))
        )
    if category is not None:
        stmt = stmt.where(table.c.category == category)
    if blocklist_kind is not None:
        stmt = stmt.where(table.c.kind == blocklist_kind)
    if valid_on is not None:
        stmt = stmt.where(
            or_(table.c.valid_from.is_(None), table.c.valid_from <= valid_on),
            or_(table.c.valid_until.is_(None), table.c.valid_until >= valid_on),
        )
    if after is not None:
        stmt = stmt.where(
            tuple_(table.c.plate, table.c.id) > tuple_(literal(after[0], Text), literal(after[1], PG_UUID()))
        )
    stmt = stmt.order_by(table.c.plate, table.c.id).limit(first + 1)
    return list((await session.execute(stmt)).mappings().all())


async def live_facility_keys(session: AsyncSession, tenant_id: uuid.UUID) -> list[Row]:
    """{id, code} of the tenant's live facilities: what a CSV file may name them by."""
    stmt = select(facilities.c.id, facilities.c.code).where(
        facilities.c.tenant_id == tenant_id, facilities.c.retired_at.is_(None)
    )
    return list((await session.execute(stmt)).mappings().all())


async def live_facility_ids(
    session: AsyncSession, tenant_id: uuid.UUID, facility_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    stmt = select(facilities.c.id).where(
        facilities.c.tenant_id == tenant_id, facilities.c.id.in_(facility_ids), facilities.c.retired_at.is_(None)
    )
    return set((await session.execute(stmt)).scalars().all())


# ----------------------------------------------------------------------------------------------- writes


async def lock_lists(session: AsyncSession, tenant_id: uuid.UUID, kind: ListKind) -> None:
    """Serialize writes to one tenant's list until the transaction ends, so two concurrent calls cannot both
    pass the duplicate check (overlap is not a constraint the database can express simply)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"vehicle-list:{kind}:{tenant_id}"}
    )


async def insert_entry(session: AsyncSession, kind: ListKind, values: dict[str, Any]) -> Row:
    table = TABLES[kind]
    return (await session.execute(insert(table).values(**values).returning(table))).mappings().one()


async def insert_entries(session: AsyncSession, kind: ListKind, rows: list[dict[str, Any]]) -> int:
    """Insert rows in batches (one multi-row statement per batch) and return how many."""
    if rows:
        await session.execute(insert(TABLES[kind]), rows)
    return len(rows)


async def update_entry(
    session: AsyncSession, kind: ListKind, tenant_id: uuid.UUID, entry_id: uuid.UUID, values: dict[str, Any]
) -> Row | None:
    """Change a live entry; None when there is no live entry of the tenant with this id."""
    table = TABLES[kind]
    stmt = (
        update(table)
        .where(table.c.tenant_id == tenant_id, table.c.id == entry_id, table.c.revoked_at.is_(None))
        .values(**values, updated_at=func.now())
        .returning(table)
    )
    return (await session.execute(stmt)).mappings().first()


# ------------------------------------------------------------------------------------------- pass offers


async def insert_offer(session: AsyncSession, values: dict[str, Any]) -> Row:
    return (await session.execute(insert(offers).values(**values).returning(offers))).mappings().one()


async def update_offer(
    session: AsyncSession, tenant_id: uuid.UUID, offer_id: uuid.UUID, values: dict[str, Any]
) -> Row | None:
    stmt = (
        update(offers)
        .where(offers.c.tenant_id == tenant_id, offers.c.id == offer_id)
        .values(**values, updated_at=func.now())
        .returning(offers)
    )
    return (await session.execute(stmt)).mappings().first()


async def offer(session: AsyncSession, tenant_id: uuid.UUID, offer_id: uuid.UUID, *, lock: bool = False) -> Row | None:
    stmt = select(offers).where(offers.c.tenant_id == tenant_id, offers.c.id == offer_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).mappings().first()


async def offers_by_ids(session: AsyncSession, offer_ids: Sequence[uuid.UUID]) -> list[Row]:
    """Offers by id as the session's scope sees them (an operator its own, anyone else those on sale)."""
    if not offer_ids:
        return []
    return list((await session.execute(select(offers).where(offers.c.id.in_(offer_ids)))).mappings().all())


async def offer_tenant(session: AsyncSession, offer_id: uuid.UUID) -> uuid.UUID | None:
    """The operator of an offer on sale (public read)."""
    stmt = select(offers.c.tenant_id).where(offers.c.id == offer_id, offers.c.on_sale)
    return (await session.execute(stmt)).scalar_one_or_none()


async def tenant_offers(session: AsyncSession, tenant_id: uuid.UUID, include_off_sale: bool) -> list[Row]:
    stmt = select(offers).where(offers.c.tenant_id == tenant_id)
    if not include_off_sale:
        stmt = stmt.where(offers.c.on_sale)
    return list((await session.execute(stmt.order_by(offers.c.name, offers.c.id))).mappings().all())


async def offers_on_sale_at(session: AsyncSession, facility_id: uuid.UUID) -> list[Row]:
    """The offers on sale covering a live facility, cheapest first (the facility's operator's only)."""
    stmt = (
        select(offers)
        .join(facilities, facilities.c.tenant_id == offers.c.tenant_id)
        .where(
            facilities.c.id == facility_id,
            facilities.c.retired_at.is_(None),
            offers.c.on_sale,
            offers.c.facility_ids.op("@>")(literal([facility_id], ARRAY(PG_UUID(as_uuid=True)))),  # the GIN index
        )
        .order_by(offers.c.price_fen, offers.c.id)
    )
    return list((await session.execute(stmt)).mappings().all())


async def facility_zones(
    session: AsyncSession, tenant_id: uuid.UUID, facility_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The time zones of the tenant's live facilities among these."""
    stmt = select(facilities.c.id, facilities.c.time_zone).where(
        facilities.c.tenant_id == tenant_id, facilities.c.id.in_(facility_ids), facilities.c.retired_at.is_(None)
    )
    return {row.id: row.time_zone for row in await session.execute(stmt)}


async def insert_sold_pass(session: AsyncSession, values: dict[str, Any]) -> Row | None:
    """The pass a payment bought, or None when that payment already made one (unique by payment)."""
    stmt = (
        pg_insert(passes)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["tenant_id", "payment_id"])
        .returning(passes)
    )
    return (await session.execute(stmt)).mappings().first()


async def revoke_pass_of_payment(
    session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID, at: datetime
) -> Row | None:
    """End the live pass a payment bought at `at`; None when it has none live."""
    stmt = (
        update(passes)
        .where(passes.c.tenant_id == tenant_id, passes.c.payment_id == payment_id, passes.c.revoked_at.is_(None))
        .values(revoked_at=at, updated_at=func.now())
        .returning(passes)
    )
    return (await session.execute(stmt)).mappings().first()


async def pass_of_payment(session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID) -> Row | None:
    stmt = select(passes).where(passes.c.tenant_id == tenant_id, passes.c.payment_id == payment_id)
    return (await session.execute(stmt)).mappings().first()
