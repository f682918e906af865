"""Use cases of on-street sessions for people: drivers start, extend and end prepaid sessions by space code;
operators and the city read sessions and enforcement flags. (Curb cameras and bay sensors start and end postpaid
ones for plates with auto-pay: hub.street.reconcile.) Functions never commit: their callers' transactions do, so
a rejected call writes nothing.

How a driver names a bay: space codes are unique per operator (among its live spaces), so a bay is named by the
operator's slug and the code painted on it (`operator` + `spaceCode`, what the sign beside the bay shows), or by the
space's global id (`spaceId`, what an app that found the bay through find-a-space already holds).

Idempotency: start, extend and end accept a key, unique per driver and operator. A retried request with the same
key returns what the first one did (the session as it is now, the action the first made) and charges nothing
again; the same key on a different request is refused (IDEMPOTENCY_KEY_REUSED)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from hub import jobs
from hub.drivers.service import require_driver
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.lanes.operations import camera_form
from hub.lanes.rules import quote_json
from hub.payments import street as payments
from hub.pricing import service as pricing
from hub.principal import Principal
from hub.street import changes, repository, rules

Row = repository.Row
RECONCILE_SPACES_JOB = "reconcile_curb_spaces"


def now_utc() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------ authorization


def reader_tenant(principal: Principal) -> uuid.UUID | None:
    """Sessions and flags are read by the operator's staff (its own) and the city (every operator's)."""
    if principal.kind == "operator" and principal.tenant_id is not None:
        return principal.tenant_id
    if principal.kind in ("city", "platform"):
        return None
    raise Forbidden("street sessions are for the operator's staff and the city", required_role="operator_staff")


# ------------------------------------------------------------------------------------------------ drivers


@dataclass(frozen=True)
class SpaceRef:
    """How a driver names a bay: its global id, or the operator's slug and the bay's code."""

    space_id: uuid.UUID | None = None
    operator: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class Change:
    """What a driver's request did: the session as it is now and the action (with its amounts); `replayed` when
    the request repeated an idempotency key and nothing new happened."""

    session: Row
    action: Row
    replayed: bool = False


def _session_not_found() -> NotFound:
    # The same answer for a session that does not exist and one of another driver: nothing is revealed.
    return NotFound("no street session of yours has this id", code="NOT_YOUR_SESSION", field="id")


async def _find_space(session: AsyncSession, ref: SpaceRef) -> Row:
    by_code = ref.operator is not None or ref.code is not None
    if (ref.space_id is not None) == by_code or (by_code and not (ref.operator and ref.code)):
        raise InvalidInput(
            "name the bay by spaceId, or by operator and spaceCode (as on the sign), not both",
            code="INVALID_SPACE_REFERENCE",
            field="spaceId",
        )
    if ref.space_id is not None:
        space = await repository.space_by_id(session, ref.space_id)
    else:
        assert ref.operator is not None and ref.code is not None
        space = await repository.space_by_code(session, ref.operator.strip().lower(), ref.code.strip())
    if space is None:
        raise NotFound(
            "no bay in service has this code at this operator (it may have been retired)",
            code="SPACE_NOT_FOUND",
            field="spaceId" if ref.space_id is not None else "spaceCode",
        )
    if space["facility_kind"] != repository.CURB_ZONE:
        raise InvalidInput(
            f"space {space['code']} is in an off-street lot: its sessions start at the lot's lanes",
            code="NOT_ON_STREET",
            field="spaceId" if ref.space_id is not None else "spaceCode",
        )
    return space


async def _replay(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    driver_id: uuid.UUID,
    key: str | None,
    kind: str,
    same_request: Callable[[Row, Row], bool],
) -> Change | None:
    """What the request with this key did before, or None when the key is new. IDEMPOTENCY_KEY_REUSED when it
    belonged to a different request."""
    if key is None:
        return None
    action = await repository.action_by_key(session, tenant_id, driver_id, key)
    if action is None:
        return None
    [previous] = await repository.sessions_by_ids(session, [action["session_id"]], tenant_id)
    if action["kind"] != kind or not same_request(action, previous):
        raise changes.key_reused()
    return Change(previous, action, replayed=True)


async def start_session(
    session: AsyncSession,
    principal: Principal,
    ref: SpaceRef,
    plate: str,
    duration_minutes: int,
    vehicle_class: str,
    idempotency_key: str | None,
    now: datetime,
) -> Change:
    """A prepaid session of `duration_minutes` from now in the bay, for `plate`, priced by the zone's tariff in
    effect now (sealed for the session). The driver owes the price of the whole span (the action's charge)."""
    driver_id = require_driver(principal)
    key = rules.check_idempotency_key(idempotency_key)
    normalized = camera_form(plate)
    pricing.check_vehicle_class(vehicle_class)
    space = await _find_space(session, ref)
    tenant_id = space["tenant_id"]

    def same(action: Row, previous: Row) -> bool:
        return (
            previous["space_id"] == space["id"]
            and previous["plate"] == normalized
            and action["minutes"] == duration_minutes
        )

    if (replayed := await _replay(session, tenant_id, driver_id, key, "start", same)) is not None:
        return replayed
    version_id, tariff = await pricing.tariff_at(session, space["facility_id"], now, tenant_id=tenant_id)
    rules.check_minutes(duration_minutes, tariff, "durationMinutes")
    purchase = rules.buy(tariff, ZoneInfo(space["time_zone"]), vehicle_class, now, duration_minutes)
    row = await repository.insert_session(
        session,
        {
            "tenant_id": tenant_id,
            "facility_id": space["facility_id"],
            "space_id": space["id"],
            "space_code": space["code"],
            "driver_id": driver_id,
            "plate": normalized,
            "vehicle_class": vehicle_class,
            "payment_mode": rules.PREPAID,
            "origin": rules.DRIVER,
            "state": rules.ACTIVE,
            "started_at": now,
            "paid_until": purchase.paid_until,
            "prepaid_minutes": duration_minutes,
            "paid_fen": purchase.total_fen,
            "currency": space["currency"],
            "time_zone": space["time_zone"],
            "quote": quote_json(purchase.quote, version_id),
            "tariff_version_id": version_id,
        },
    )
    if row is None:
        # A concurrent retry of this very request may have won the bay: answer as it did.
        if (replayed := await _replay(session, tenant_id, driver_id, key, "start", same)) is not None:
            return replayed
        raise Conflict(f"bay {space['code']} already has a session running", code="SPACE_IN_SESSION", field="spaceCode")
    action = await changes.record_action(
        session, row, "start", now, driver_id, key, minutes=duration_minutes, charge=purchase.cost_fen
    )
    await payments.prepay(session, row, action)  # paid through the provider after commit (hub.payments.street)
    # An enforcement flag on the bay is resolved by the bay's reconciliation, right after this commits.
    jobs.enqueue(session, RECONCILE_SPACES_JOB, str(tenant_id), [str(space["id"])])
    return Change(row, action)


async def _locked_own_session(session: AsyncSession, driver_id: uuid.UUID, session_id: uuid.UUID) -> Row:
    row = await repository.lock_session(session, session_id, driver_id=driver_id)
    if row is None:
        raise _session_not_found()
    return row


async def extend_session(
    session: AsyncSession,
    principal: Principal,
    session_id: uuid.UUID,
    minutes: int,
    idempotency_key: str | None,
    now: datetime,
) -> Change:
    """`minutes` more for a running prepaid session: the whole new span is priced as one stay under the sealed
    tariff version, and the extension costs the difference (the action's charge)."""
    driver_id = require_driver(principal)
    key = rules.check_idempotency_key(idempotency_key)
    row = await _locked_own_session(session, driver_id, session_id)

    def same(action: Row, previous: Row) -> bool:
        return previous["id"] == row["id"] and action["minutes"] == minutes

    if (replayed := await _replay(session, row["tenant_id"], driver_id, key, "extend", same)) is not None:
        return replayed
    state = rules.transition(row["payment_mode"], row["state"], rules.EXTEND, row["paid_until"], now)
    tariff = await changes.tariff_of(session, row)
    rules.check_minutes(minutes, tariff, "minutes", already=row["prepaid_minutes"])
    purchase = rules.extend(
        tariff,
        ZoneInfo(row["time_zone"]),
        row["vehicle_class"],
        row["started_at"],
        row["paid_until"],
        row["paid_fen"],
        minutes,
    )
    updated = await repository.update_session(
        session,
        row["tenant_id"],
        row["id"],
        {
            "state": state,
            "paid_until": purchase.paid_until,
            "prepaid_minutes": row["prepaid_minutes"] + minutes,
            "paid_fen": row["paid_fen"] + purchase.cost_fen,
            "quote": quote_json(purchase.quote, row["tariff_version_id"]),
        },
    )
    action = await changes.record_action(
        session, updated, "extend", now, driver_id, key, minutes=minutes, charge=purchase.cost_fen
    )
    await payments.prepay(session, updated, action)
    return Change(updated, action)


async def end_session(
    session: AsyncSession, principal: Principal, session_id: uuid.UUID, idempotency_key: str | None, now: datetime
) -> Change:
    """End the driver's running session now. Prepaid: priced on the true span, the refund is what was paid minus
    that price (never negative). Postpaid (auto-pay): priced on the true span, charged pending."""
    driver_id = require_driver(principal)
    key = rules.check_idempotency_key(idempotency_key)
    row = await _locked_own_session(session, driver_id, session_id)

    def same(action: Row, previous: Row) -> bool:
        return previous["id"] == row["id"]

    if (replayed := await _replay(session, row["tenant_id"], driver_id, key, "end", same)) is not None:
        return replayed
    state = rules.transition(row["payment_mode"], row["state"], rules.END, row["paid_until"], now)
    updated, action = await changes.settle(session, row, state, now, driver_id, key, "end")
    return Change(updated, action)


# -------------------------------------------------------------------------------------------------- reads


async def my_sessions(
    session: AsyncSession,
    principal: Principal,
    *,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
    active: bool | None,
    now: datetime,
) -> list[Row]:
    driver_id = require_driver(principal)
    return await repository.sessions_page(
        session, first=first, now=now, after=after, driver_id=driver_id, active=active
    )


async def sessions_page(
    session: AsyncSession,
    principal: Principal,
    *,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
    facility_id: uuid.UUID | None,
    active: bool | None,
    now: datetime,
) -> list[Row]:
    tenant_id = reader_tenant(principal)
    return await repository.sessions_page(
        session,
        first=first,
        now=now,
        after=after,
        tenant_id=tenant_id,
        facility_id=facility_id,
        active=active,
    )


async def sessions_by_ids(session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]) -> list[Row]:
    """Sessions as the caller may see them: a driver's own, an operator's own, the city's all (RLS again)."""
    if principal.kind == "driver" and principal.user_id is not None:
        rows = await repository.sessions_by_ids(session, ids, None)
        return [row for row in rows if row["driver_id"] == principal.user_id]
    if principal.kind in ("operator", "city", "platform"):
        return await repository.sessions_by_ids(session, ids, reader_tenant(principal))
    return []


async def actions_of_sessions(
    session: AsyncSession, principal: Principal, session_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Row]]:
    visible = {row["id"] for row in await sessions_by_ids(session, principal, session_ids)}
    found: dict[uuid.UUID, list[Row]] = defaultdict(list)
    for action in await repository.actions_of_sessions(session, sorted(visible)):
        found[action["session_id"]].append(action)
    return found


async def flags_page(
    session: AsyncSession,
    principal: Principal,
    *,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
    facility_id: uuid.UUID | None,
    open_only: bool | None,
) -> list[Row]:
    return await repository.flags_page(
        session,
        first=first,
        after=after,
        tenant_id=reader_tenant(principal),
        facility_id=facility_id,
        open_only=open_only,
    )


async def flags_by_ids(session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]) -> list[Row]:
    if principal.kind not in ("operator", "city", "platform"):
        return []
    return await repository.flags_by_ids(session, ids, reader_tenant(principal))
