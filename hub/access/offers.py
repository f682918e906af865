"""Pass offers: monthly passes an operator sells to drivers. Operator admins define them (name, facilities, price
per calendar month, weekdays and daily window, on sale or not); anyone lists those on sale at a facility; a driver
buys one through hub/payments (`buy_pass`), and the payment's success makes the vehicle pass here, exactly once
(`create_sold_pass`, unique by payment); a full refund revokes it (`revoke_sold_pass`).

Services authorize the caller, validate everything before writing anything, and leave the commit to the caller."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from hub.access import offer_rules, repository, rules
from hub.access.rules import Collector
from hub.access.service import input_label, require_list_reader
from hub.errors import Conflict, NotFound
from hub.principal import Principal, require_operator_admin

Row = Mapping[str, Any]


async def _validated(session: AsyncSession, tenant_id: uuid.UUID, fields: Mapping[str, Any]) -> dict[str, Any]:
    problems = Collector(input_label)
    values = offer_rules.offer_values(fields, problems)
    facility_ids = values["facility_ids"] or []
    live = await repository.live_facility_ids(session, tenant_id, facility_ids) if facility_ids else set()
    missing = [facility_id for facility_id in facility_ids if facility_id not in live]
    if missing:
        problems.add(
            "facility_ids", "UNKNOWN_FACILITY", f"no live facility with id {missing[0]} belongs to your operator"
        )
    if problems.problems:
        raise rules.first_problem_error(problems.problems, "pass offer")
    return values


async def create_offer(session: AsyncSession, principal: Principal, fields: dict[str, Any]) -> Row:
    tenant_id = require_operator_admin(principal, "its pass offers")
    values = await _validated(session, tenant_id, fields)
    return await repository.insert_offer(session, {**values, "tenant_id": tenant_id})


async def update_offer(
    session: AsyncSession, principal: Principal, offer_id: uuid.UUID, changes: dict[str, Any]
) -> Row:
    """Change the given fields (the whole offer is validated again); passes already sold keep their terms."""
    tenant_id = require_operator_admin(principal, "its pass offers")
    current = await repository.offer(session, tenant_id, offer_id, lock=True)
    if current is None:
        raise NotFound("no pass offer with this id belongs to your operator", field="id")
    values = await _validated(session, tenant_id, {**offer_rules.editable_fields(current), **changes})
    updated = await repository.update_offer(session, tenant_id, offer_id, values)
    assert updated is not None  # locked above
    return updated


async def operator_offers(session: AsyncSession, principal: Principal, include_off_sale: bool) -> list[Row]:
    return await repository.tenant_offers(session, require_list_reader(principal), include_off_sale)


async def offers_at_facility(session: AsyncSession, facility_id: uuid.UUID) -> list[Row]:
    """The offers on sale at a facility (public)."""
    return await repository.offers_on_sale_at(session, facility_id)


async def offers_by_ids(session: AsyncSession, offer_ids: Sequence[uuid.UUID]) -> list[Row]:
    return await repository.offers_by_ids(session, offer_ids)


async def offer_tenant(session: AsyncSession, offer_id: uuid.UUID) -> uuid.UUID | None:
    return await repository.offer_tenant(session, offer_id)


# ---------------------------------------------------------------------------------------- selling passes


async def offer_for_sale(
    session: AsyncSession, tenant_id: uuid.UUID, offer_id: uuid.UUID
) -> tuple[Row, uuid.UUID, ZoneInfo]:
    """An offer on sale with the facility a sold month is dated by (its first live facility) and that facility's
    zone. NotFound (OFFER_NOT_ON_SALE) when it is not on sale or none of its facilities is live."""
    offer = await repository.offer(session, tenant_id, offer_id)
    zones = {} if offer is None else await repository.facility_zones(session, tenant_id, offer["facility_ids"])
    if offer is None or not offer["on_sale"] or not zones:
        raise NotFound("this pass offer is not on sale", code="OFFER_NOT_ON_SALE", field="offerId")
    facility_id = next(facility_id for facility_id in offer["facility_ids"] if facility_id in zones)
    return offer, facility_id, ZoneInfo(zones[facility_id])


def month_of_pass(
    tenant_id: uuid.UUID,
    terms: Mapping[str, Any],
    plate: str,
    payment_id: uuid.UUID,
    period: tuple[datetime, datetime],
    zone: ZoneInfo,
) -> dict[str, Any]:
    """The vehicle pass a month bought with these terms makes (the stored row's values)."""
    valid_from, valid_until = offer_rules.days_of(period[0], period[1], zone)
    return offer_rules.sold_pass_values(tenant_id, terms, plate, payment_id, valid_from, valid_until)


async def refuse_overlapping_month(
    session: AsyncSession, tenant_id: uuid.UUID, month: Mapping[str, Any], being_bought: Sequence[Mapping[str, Any]]
) -> None:
    """Conflict PASS_OVERLAPS when the month a driver is buying meets a live pass of the plate (bought, or granted
    by the operator), or a month of the plate still being paid for (`being_bought`: their passes' values), at a
    shared facility, day and window. Serialized with the operator's own pass writes until the transaction ends."""
    await repository.lock_lists(session, tenant_id, "pass")
    candidate = rules.entry_of("pass", month)
    for row in await repository.live_entries_of_plates(session, "pass", tenant_id, [month["plate"]]):
        if rules.overlaps(candidate, rules.entry_of("pass", row)):
            raise Conflict(
                f"{month['plate']} already has a pass for some of these days and facilities (valid "
                f"{row['valid_from'].isoformat()} to {row['valid_until'].isoformat()}): choose a later start",
                code="PASS_OVERLAPS",
                field="startsOn",
                existing_pass_id=str(row["id"]),
            )
    for other in being_bought:
        if rules.overlaps(candidate, rules.entry_of("pass", other)):
            raise Conflict(
                f"a month of a pass for {month['plate']} on some of these days is being paid for right now",
                code="PASS_OVERLAPS",
                field="startsOn",
                payment_id=str(other["payment_id"]),
            )


async def create_sold_pass(session: AsyncSession, payment: Row, terms: Mapping[str, Any] | None = None) -> Row | None:
    """The vehicle pass a succeeded pass payment bought: the terms kept on the payment (those of the offer when it
    was bought), the plate and the month paid for; None when the payment already made it (applied again). A payment
    bought before terms were kept takes its offer's current terms (None when the offer is gone)."""
    if terms is None:
        offer = await repository.offer(session, payment["tenant_id"], payment["subject_id"])
        if offer is None:
            return None
        terms = offer_rules.pass_terms(offer)
    zones = await repository.facility_zones(session, payment["tenant_id"], [payment["facility_id"]])
    zone = ZoneInfo(zones.get(payment["facility_id"], "Asia/Shanghai"))
    values = month_of_pass(
        payment["tenant_id"],
        terms,
        payment["plate"],
        payment["id"],
        (payment["period_start"], payment["period_end"]),
        zone,
    )
    return await repository.insert_sold_pass(session, values)


async def revoke_sold_pass(session: AsyncSession, tenant_id: uuid.UUID, payment_id: uuid.UUID, at: datetime) -> None:
    """End the pass a payment bought at `at` (its sale was refunded in full); nothing when none is live."""
    await repository.revoke_pass_of_payment(session, tenant_id, payment_id, at)
