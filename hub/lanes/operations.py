"""Lanes for the people around them: operators' lane codes, read thresholds and reads of sessions and
decisions; drivers' scans of a lane's code (a vehicle without a plate) and their auto-pay authorizations.

Services authorize the caller, validate before writing, and leave the commit to the caller, except
`scan_lane_code`, which decides at the lane in a transaction of its own (as the gate's request does)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import Database, Scope, driver_of
from hub.drivers import rules as driver_rules
from hub.drivers import service as drivers
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.lanes import repository, rules
from hub.lanes.service import (
    DECISION_ATTEMPTS,
    ConcurrentChange,
    LaneAnswer,
    Passage,
    decide_passage,
    now_utc,
    operator_key,
    public_base_url,
)
from hub.principal import Principal, tenant_filter

# ------------------------------------------------------------------------------------------- lane codes


def _operator_tenant(principal: Principal) -> uuid.UUID:
    if principal.kind == "operator" and principal.tenant_id is not None:
        return principal.tenant_id
    raise Forbidden("lane sessions and decisions are for the operator's staff", required_role="operator_staff")


def _operator_admin(principal: Principal) -> uuid.UUID:
    if principal.is_operator_admin and principal.tenant_id is not None:
        return principal.tenant_id
    raise Forbidden("only an operator admin changes its lanes", required_role="operator_admin")


@dataclass(frozen=True)
class LaneCode:
    lane_id: uuid.UUID
    direction: str
    code: str
    link: str


async def lane_code(session: AsyncSession, principal: Principal, lane_id: uuid.UUID) -> LaneCode:
    """The lane's code for vehicles without a plate, to print as a QR code at the lane: the same code for as
    long as the lane lives. Drivers scan an entry lane's with scanEntryCode, an exit lane's with scanExitCode.
    May write (the operator's key, on first use)."""
    tenant_id = _operator_tenant(principal)
    lane = await repository.lane(session, lane_id, tenant_id)
    if lane is None:
        raise NotFound("no live lane with this id belongs to your operator", field="laneId")
    key = await operator_key(await driver_of(session), tenant_id, create=True)
    assert key is not None
    code = rules.sign_code(key, rules.LANE_CODE, tenant_id, lane_id)
    return LaneCode(lane_id, lane["direction"], code, rules.lane_code_link(public_base_url(), code))


async def scan_lane_code(db: Database, principal: Principal, code: str, direction: str) -> LaneAnswer:
    """A driver's app scanned a lane's code (`direction` says which mutation: entry or exit). At an entry lane a
    session bound to the driver's account opens (or the entry holds as for a visitor's plate); at an exit lane
    the driver's open session there is priced and closed, or held with the amount due. Committed before this
    returns."""
    driver_id = drivers.require_driver(principal)
    signed = rules.read_code(code, rules.LANE_CODE)
    source = f"{direction}_code"
    passage = Passage(f"{direction}-code:{uuid.uuid4()}", (), now_utc(), source=source, driver_id=driver_id)
    for attempt in range(DECISION_ATTEMPTS):
        try:
            # The code's signature, under the operator's key, proves the code is one of the operator's lanes: the
            # scan then acts for that lane, under the operator's connector scope.
            async with db.transaction(Scope("connector", tenant_id=signed.tenant_id)) as session:
                key = await operator_key(await driver_of(session), signed.tenant_id, create=False)
                if key is None or not signed.valid_under(key):
                    raise InvalidInput("not a lane code issued by ParkHub", code="INVALID_CODE", field="code")
                return await decide_passage(session, signed.tenant_id, signed.object_id, passage)
        except ConcurrentChange:
            if attempt == DECISION_ATTEMPTS - 1:
                raise
        except NotFound:
            raise NotFound("this lane code's lane is no longer in service", code="UNKNOWN_LANE", field="code") from None
    raise AssertionError("unreachable")


async def set_lane_threshold(
    session: AsyncSession, principal: Principal, lane_id: uuid.UUID, threshold: float
) -> Mapping[str, Any]:
    """The confidence every read of a passage at the lane must reach (0 to 1; 0.8 unless set)."""
    tenant_id = _operator_admin(principal)
    rules.check_threshold(threshold, "threshold")
    row = await repository.set_lane_threshold(session, tenant_id, lane_id, threshold)
    if row is None:
        raise NotFound("no live lane with this id belongs to your operator", field="laneId")
    return row


# ----------------------------------------------------------------------------------------------- reads


async def sessions_page(session: AsyncSession, principal: Principal, **criteria: Any) -> list[Mapping[str, Any]]:
    """The operator's lot sessions, newest entry first (see repository.sessions_page for the criteria); the
    plate is normalized as cameras' reads are."""
    tenant_id = _operator_tenant(principal)
    if criteria.get("plate") is not None:
        criteria["plate"] = rules.make_read(criteria["plate"]).plate
    return await repository.sessions_page(session, tenant_id, **criteria)


async def decisions_page(session: AsyncSession, principal: Principal, **criteria: Any) -> list[Mapping[str, Any]]:
    tenant_id = _operator_tenant(principal)
    return await repository.decisions_page(session, tenant_id, **criteria)


async def sessions_by_ids(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[Mapping[str, Any]]:
    """Sessions as the caller may see them: the operator's own, a driver's own (RLS), nobody else's."""
    if principal.kind not in ("operator", "driver"):
        return []
    return await repository.sessions_by_ids(session, ids, tenant_filter(principal))


async def decisions_by_ids(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[Mapping[str, Any]]:
    if principal.kind != "operator":
        return []
    return await repository.decisions_by_ids(session, ids, tenant_filter(principal))


async def exceptions_by_ids(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[Mapping[str, Any]]:
    if principal.kind != "operator":
        return []
    return await repository.exceptions_by_ids(session, ids, tenant_filter(principal))


# --------------------------------------------------------------------------------------------- auto-pay


@dataclass(frozen=True)
class AutoPay:
    plate: str
    enabled: bool
    since: datetime | None


def camera_form(plate: str) -> str:
    """A plate people typed, in the form cameras' reads take (what lanes match on)."""
    return rules.make_read(driver_rules.normalize_plate(plate)).plate


async def set_auto_pay(session: AsyncSession, principal: Principal, plate: str, enabled: bool) -> AutoPay:
    """Authorize (or stop) charging exits of one of the driver's own vehicles to their account. A stub of the
    payments issue: lanes open for an authorized plate and leave a pending charge; nothing is charged yet."""
    driver_id = drivers.require_driver(principal)
    wanted = camera_form(plate)
    vehicles = await drivers.my_vehicles(session, principal)
    if all(camera_form(vehicle["plate"]) != wanted for vehicle in vehicles):
        raise NotFound(f"{wanted} is not one of your vehicles: add it first", code="UNKNOWN_VEHICLE", field="plate")
    current = await repository.active_authorization(session, driver_id, wanted)
    if enabled:
        row = current or await repository.insert_authorization(session, driver_id, wanted)
        return AutoPay(wanted, True, row["created_at"])
    if current is not None:
        await repository.revoke_authorization(session, driver_id, wanted)
    return AutoPay(wanted, False, None)


@dataclass(frozen=True)
class AutoPayHolder:
    authorization_id: uuid.UUID
    driver_id: uuid.UUID


async def auto_pay_for_plate(session: AsyncSession, plate: str) -> AutoPayHolder | None:
    """Who pays automatically for a plate as a camera read it (for the on-street task's sightings, as exit lanes
    do): under a connector scope, which may read every driver's authorizations by plate. None: nobody."""
    row = await repository.authorization_for_plate(await driver_of(session), rules.make_read(plate).plate)
    return None if row is None else AutoPayHolder(row["id"], row["driver_id"])
