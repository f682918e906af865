"""Use cases of devices: sensors, cameras and gate controllers, known by their senders' ids and bound to one
space, curb zone or lane. Functions never commit; their callers' transactions do."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import Conflict, Forbidden, NotFound
from hub.principal import Principal, require_operator_admin, tenant_filter
from hub.supply import repository, rules
from hub.supply.rules import problem
from hub.supply.service import now_utc


def require_device_reader(principal: Principal) -> None:
    if principal.kind not in ("operator", "city", "platform"):
        raise Forbidden(
            "devices are visible to their operator, the city and the platform", required_role="operator_staff"
        )


async def devices_by_ids(session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]) -> list[repository.Row]:
    return await repository.devices_by_ids(session, ids, tenant_filter(principal))


async def devices_page(
    session: AsyncSession, principal: Principal, *, kind: str | None = None, **criteria: Any
) -> list[repository.Row]:
    require_device_reader(principal)
    if kind is not None:
        rules.check_device_kind(kind, "kind")
    return await repository.devices_page(session, tenant_id=tenant_filter(principal), kind=kind, **criteria)


BINDING_LOOKUPS: dict[str, Callable[..., Any]] = {
    "space_id": repository.spaces_by_ids,
    "facility_id": repository.facilities_by_ids,
    "lane_id": repository.lanes_by_ids,
}


async def _device_binding(
    session: AsyncSession, tenant_id: uuid.UUID, kind: str, fields: dict[str, Any]
) -> dict[str, uuid.UUID | None]:
    """The facility, space and lane of the one place the device is bound to: live, the caller's own, and a
    place this kind of device may watch. A space's or lane's facility is copied."""
    name = rules.binding_field(fields, "input")
    if name is None:
        raise problem("input", "bind the device to a space (spaceId or spaceCode), a curb zone (facilityId) or a lane")
    field = f"input.{rules.BINDING_INPUT_NAMES[name]}"
    target = rules.BINDING_FIELDS[name]
    rules.check_device_target(kind, target, field)
    if name == "space_code":
        row = await repository.live_space_by_code(session, tenant_id, fields[name])
    else:
        found = await BINDING_LOOKUPS[name](session, [fields[name]], tenant_id)
        row = found[0] if found and found[0]["retired_at"] is None else None
    if row is None:
        raise NotFound(f"{field}: no live {target.replace('_', ' ')} of your operator has this id or code", field=field)
    if target == "space":
        return {"facility_id": row["facility_id"], "space_id": row["id"], "lane_id": None}
    if target == "lane":
        return {"facility_id": row["facility_id"], "space_id": None, "lane_id": row["id"]}
    if row["kind"] != "curb_zone":
        raise problem(field, "a device binds to a curb zone as a whole, never to a lot", code="BINDING_NOT_ALLOWED")
    return {"facility_id": row["id"], "space_id": None, "lane_id": None}


async def register_device(session: AsyncSession, principal: Principal, fields: dict[str, Any]) -> repository.Row:
    """A new device bound to one space (by id or code), curb zone or lane. Raises DUPLICATE_DEVICE when a live
    device of the operator already has its (normalized) external id."""
    tenant_id = require_operator_admin(principal)
    kind = rules.check_device_kind(fields.get("kind"), "input.kind")
    external_id = rules.normalize_external_id(fields.get("external_id"), "input.externalId")
    rules.check_offline_after(fields.get("offline_after_s"), "input.offlineAfterSeconds")
    values = {"tenant_id": tenant_id, "kind": kind, "external_id": external_id}
    values.update(await _device_binding(session, tenant_id, kind, fields))
    if fields.get("offline_after_s") is not None:
        values["offline_after_s"] = fields["offline_after_s"]
    row = await repository.insert_device(session, values)
    if row is None:
        raise Conflict(
            f"a live device of your operator already has external id {external_id!r}",
            code="DUPLICATE_DEVICE",
            field="input.externalId",
            external_id=external_id,
        )
    return row


async def update_device(
    session: AsyncSession, principal: Principal, device_id: uuid.UUID, changes: dict[str, Any]
) -> repository.Row:
    """Re-bind a device (one of the binding fields) and/or change how long it may stay silent."""
    tenant_id = require_operator_admin(principal)
    current = await repository.devices_by_ids(session, [device_id], tenant_id)
    if not current or current[0]["retired_at"] is not None:
        raise NotFound("no live device with this id belongs to your operator", field="id")
    rules.check_offline_after(changes.get("offline_after_s"), "input.offlineAfterSeconds")
    values: dict[str, Any] = {}
    if changes.get("offline_after_s") is not None:
        values["offline_after_s"] = changes["offline_after_s"]
    if rules.binding_field(changes, "input") is not None:
        values.update(await _device_binding(session, tenant_id, current[0]["kind"], changes))
    if not values:
        return current[0]
    updated = await repository.update_row(session, "devices", tenant_id, device_id, values)
    assert updated is not None  # checked live above, inside the same transaction
    return updated


async def retire_device(session: AsyncSession, principal: Principal, device_id: uuid.UUID) -> repository.Row:
    """Retire a device (kept for history); its external id becomes free for a replacement."""
    tenant_id = require_operator_admin(principal)
    retired = await repository.update_row(session, "devices", tenant_id, device_id, {"retired_at": now_utc()})
    if retired is None:
        raise NotFound("no live device with this id belongs to your operator", field="id")
    return retired
