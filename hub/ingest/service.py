"""Use cases of the inbox: accept normalized events durably, apply them once, sweep what was left behind,
and let operators see and replay dead events. Functions never commit; their callers' transactions do."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.events import EventKind, NormalizedEvent
from hub import jobs
from hub.db import Database
from hub.errors import DomainError, Forbidden
from hub.history import service as history
from hub.history.service import SpaceTransitions
from hub.ingest import group_commit, repository, rules
from hub.ingest.images import store_image
from hub.ingest.rules import DeviceState, Outcome, SpaceState
from hub.live import OccupancyChange
from hub.principal import Principal
from hub.supply.rules import UNKNOWN, effective_status, normalize_external_id

APPLY_JOB = "apply_inbox_events"
# Columns of their own in the inbox; the rest of a normalized event goes into its JSON body.
_COLUMNS = {"source_event_id", "kind", "occurred_at", "device_external_id", "image", "image_content_type"}
_BODY_FIELDS = tuple(f.name for f in dataclasses.fields(NormalizedEvent) if f.name not in _COLUMNS)


@dataclass(frozen=True)
class AcceptResult:
    accepted: list[uuid.UUID]
    duplicates: int


def _body(event: NormalizedEvent) -> str:
    # Empty fields left out, as ever; the names are computed once, as this runs for every event of a batch.
    fields = {name: value for name in _BODY_FIELDS if (value := getattr(event, name)) is not None and value != {}}
    return orjson.dumps(fields).decode()


def _inbox_columns(events: Sequence[NormalizedEvent], image_refs: Sequence[str | None]) -> dict[str, list[Any]]:
    return {
        "source_event_ids": [event.source_event_id for event in events],
        "kinds": [str(event.kind) for event in events],
        "device_external_ids": [event.device_external_id for event in events],
        "occurred_ats": [event.occurred_at for event in events],
        "bodies": [_body(event) for event in events],
        "image_refs": list(image_refs),
    }


async def _store_images(media_dir: str, events: Sequence[NormalizedEvent]) -> list[str | None]:
    """Each event's image stored by content hash (off the event loop: it writes files); one upload shared by
    every plate in the picture is stored once."""
    stored: dict[int, str] = {}
    for event in events:
        if event.image and id(event.image) not in stored:
            stored[id(event.image)] = await asyncio.to_thread(store_image, media_dir, event.image)
    return [stored[id(event.image)] if event.image else None for event in events]


class AcceptRefused(DomainError):
    """The inbox refused the request as a whole, writing nothing: the connector is unknown or disabled, or the
    secret the request proved is no longer live (the API's cached view of the connector was out of date)."""

    code = "ACCEPT_REFUSED"

    def __init__(self, reason: str) -> None:
        super().__init__(_REFUSALS.get(reason, reason), code=reason)
        self.reason = reason


_REFUSALS = {
    "unknown_connector": "no connector has this id",
    "connector_disabled": "this connector is disabled; its operator can enable it again",
    "secret_expired": "this secret has expired or was rotated out; sign or authenticate with the current one",
}


async def accept_webhook_events(
    db: Database,
    tenant_id: uuid.UUID,
    connector_id: uuid.UUID,
    events: Sequence[NormalizedEvent],
    media_dir: str,
    *,
    secret: str | None = None,
) -> AcceptResult:
    """Write the events to the inbox (skipping ones already there), committed when this returns (unlike the other
    use cases here), then hand the new ones to a merged job (hub.jobs), since one job per request of a busy sender
    swamps the worker. `secret`: the one the request proved, checked still live as the events are written.
    Raises AcceptRefused (nothing written) when the connector is unknown or disabled or the secret expired."""
    if not events:
        return AcceptResult([], 0)
    jobs.check_job(APPLY_JOB)  # a mistake is refused before anything is written
    columns = _inbox_columns(events, await _store_images(media_dir, events))
    return await _accept(db, tenant_id, connector_id, secret, columns)


PAYMENT_EVENT_KIND = "payment"


async def accept_payment_events(
    db: Database,
    tenant_id: uuid.UUID,
    connector_id: uuid.UUID,
    events: Sequence[tuple[str, datetime, dict[str, Any]]],
) -> AcceptResult:
    """Payment providers' callbacks (event id, when, body) into the inbox, deduplicated by the provider's event
    id, then handed to the apply job like device events (which hands them to hub.payments). The provider's own
    signature authenticated them, so there is no secret of ours to check."""
    if not events:
        return AcceptResult([], 0)
    jobs.check_job(APPLY_JOB)
    columns = {
        "source_event_ids": [event_id for event_id, _, _ in events],
        "kinds": [PAYMENT_EVENT_KIND] * len(events),
        "device_external_ids": [None] * len(events),
        "occurred_ats": [at for _, at, _ in events],
        "bodies": [orjson.dumps(body).decode() for _, _, body in events],
        "image_refs": [None] * len(events),
    }
    return await _accept(db, tenant_id, connector_id, None, columns)


async def _accept(
    db: Database, tenant_id: uuid.UUID, connector_id: uuid.UUID, secret: str | None, columns: dict[str, list[Any]]
) -> AcceptResult:
    """One statement outside an explicit transaction, shared with other requests for the connector waiting at the
    same time (group_commit.py): PostgreSQL commits it before it answers, so the events are durable when this
    returns; the job is sent only after that."""
    columns["ids"] = [uuid.uuid4() for _ in columns["source_event_ids"]]
    written = await group_commit.accept(db, tenant_id, connector_id, secret, columns)
    if written.refusal is not None:
        raise AcceptRefused(written.refusal)
    if written.accepted:
        jobs.send_merged(APPLY_JOB, str(tenant_id), [str(event_id) for event_id in written.accepted])
    return AcceptResult(written.accepted, len(columns["source_event_ids"]) - len(written.accepted))


# --------------------------------------------------------------------------------------------- apply


@dataclass
class _Space:
    """A locked space while a job applies events to it: its state, and the history to write."""

    id: uuid.UUID
    facility_id: uuid.UUID
    facility_kind: str
    code: str
    lon: float
    lat: float
    before: SpaceState
    state: SpaceState
    # (status as history records it, since when), in order; the first closes the open interval.
    transitions: list[tuple[str, datetime]] = dataclasses.field(default_factory=list)

    def move_to(self, state: SpaceState, at: datetime) -> None:
        if _history_status(state) != _history_status(self.state):
            self.transitions.append((_history_status(state), at))
        self.state = state


def _history_status(state: SpaceState) -> str:
    return state.status if state.confirmed_at is not None else UNKNOWN


def _space_state(row: Any) -> SpaceState:
    moments = [moment for moment in (row["status_confirmed_at"], row["status_since"]) if moment is not None]
    return SpaceState(row["status"], row["status_confirmed_at"], max(moments) if moments else None)


async def _lock_spaces(
    session: AsyncSession, tenant_id: uuid.UUID, space_ids: set[uuid.UUID]
) -> dict[uuid.UUID, _Space]:
    rows = await repository.lock_spaces(session, tenant_id, sorted(space_ids)) if space_ids else []
    return {
        row["id"]: _Space(
            row["id"],
            row["facility_id"],
            row["facility_kind"],
            row["code"],
            row["lon"],
            row["lat"],
            _space_state(row),
            _space_state(row),
        )
        for row in rows
    }


class _Health:
    """What a job learned about one device, written once at the end. Starts from the device's stored state so
    late events are judged against what is already known."""

    def __init__(self, device: DeviceState) -> None:
        self.was_offline = device.offline_since is not None
        self.last_message_at = device.last_message_at
        self.offline_since = device.offline_since
        self.values: dict[str, Any] = {
            "last_message_at": None,
            "last_heartbeat_at": None,
            "battery_percent": None,
            "temperature_c": None,
            "firmware": None,
        }

    def later(self, key: str, at: datetime) -> None:
        current = self.values[key]
        self.values[key] = at if current is None or at > current else current

    def life_sign(self, at: datetime) -> None:
        self.later("last_message_at", at)
        self.last_message_at = max(filter(None, (self.last_message_at, at)))
        self.offline_since = rules.offline_after_life_sign(self.offline_since, at)

    def lost(self, at: datetime) -> bool:
        """Record a comms loss; False when the device spoke after it (the report is old news)."""
        if not rules.loss_applies(self.last_message_at, at):
            return False
        self.offline_since = self.offline_since or at
        return True

    def row(self, device_id: uuid.UUID) -> dict[str, Any]:
        return {
            "id": device_id,
            **self.values,
            "offline_since": self.offline_since,
            "clear_offline": self.was_offline and self.offline_since is None,
        }


def _device_key(external_id: str) -> str:
    """Devices are registered under normalized ids (DevEUIs upper-case); senders do not all normalize."""
    try:
        return normalize_external_id(external_id, "device_id")
    except DomainError:
        return external_id


@dataclass(frozen=True)
class Applied:
    """What a job applied: the occupancy changes drivers can see (to publish after commit), the curb bays whose
    devices spoke and the curb zones whose own cameras (bound to the zone, not a bay) read plates (on-street
    sessions follow them)."""

    changes: list[OccupancyChange]
    curb_space_ids: list[uuid.UUID]
    curb_zone_ids: list[uuid.UUID] = dataclasses.field(default_factory=list)


async def apply_events(
    session: AsyncSession, tenant_id: uuid.UUID, event_ids: Sequence[uuid.UUID], now: datetime, stale_after: timedelta
) -> Applied:
    """Apply pending inbox events (oldest first). Events already applied (or held by another job) are skipped:
    each applies once."""
    events = await repository.lock_pending_events(session, tenant_id, event_ids)
    if any(event["kind"] == PAYMENT_EVENT_KIND for event in events):
        from hub.payments import service as payments  # payments builds on lanes, which builds on ingest

        paid = [event for event in events if event["kind"] == PAYMENT_EVENT_KIND]
        await repository.finish_events(
            session, tenant_id, await payments.apply_provider_events(session, tenant_id, paid, now)
        )
        events = [event for event in events if event["kind"] != PAYMENT_EVENT_KIND]
    if not events:
        return Applied([], [])
    external_ids = {_device_key(event["device_external_id"]) for event in events if event["device_external_id"]}
    device_rows = await repository.devices_by_external_ids(session, tenant_id, sorted(external_ids))
    devices = {
        row["external_id"]: DeviceState(
            row["id"],
            row["kind"],
            row["facility_id"],
            row["space_id"],
            row["lane_id"],
            row["offline_since"],
            row["last_message_at"],
        )
        for row in device_rows
    }
    spaces = await _lock_spaces(session, tenant_id, {d.space_id for d in devices.values() if d.space_id})
    health: dict[uuid.UUID, _Health] = {}
    finished: list[dict[str, Any]] = []
    sightings: list[dict[str, Any]] = []
    curb_spaces: set[uuid.UUID] = set()
    curb_zones: set[uuid.UUID] = set()

    for event in events:
        kind = EventKind(event["kind"])
        body: dict[str, Any] = event["body"]
        at: datetime = event["occurred_at"]
        device = devices.get(_device_key(event["device_external_id"])) if event["device_external_id"] else None
        reason = rules.dead_reason(kind, device, body.get("occupied"), event["device_external_id"])
        if reason is not None or device is None:
            finished.append({"id": event["id"], "state": "dead", "outcome": reason})
            continue
        space = spaces.get(device.space_id) if device.space_id else None
        device_health = health.setdefault(device.id, _Health(device))
        outcome = Outcome.RECORDED
        if kind in rules.LIFE_SIGNS:
            device_health.life_sign(at)
        if kind == EventKind.HEARTBEAT:
            device_health.later("last_heartbeat_at", at)
        for reading in ("battery_percent", "temperature_c"):
            if body.get(reading) is not None:
                device_health.values[reading] = body[reading]
        if (firmware := (body.get("details") or {}).get("firmware")) is not None:
            device_health.values["firmware"] = str(firmware)

        if kind in (EventKind.COMMS_LOST, EventKind.DECOMMISSIONED):
            lost = device_health.lost(at)
            if lost and space is not None and (space.state.since is None or at >= space.state.since):
                space.move_to(rules.withdraw_confirmation(space.state, at), at)
        elif kind in rules.OCCUPANCY_BEARING and body.get("occupied") is not None and space is not None:
            decision = rules.decide_space(space.state, bool(body["occupied"]), at)
            outcome = decision.outcome
            if decision.space is not None and outcome != Outcome.STALE:
                space.move_to(decision.space, at)
        elif kind == EventKind.PLATE_READ and body.get("plate"):
            sightings.append(
                {
                    "inbox_event_id": event["id"],
                    "device_id": device.id,
                    "facility_id": device.facility_id,
                    "space_id": device.space_id,
                    "lane_id": device.lane_id,
                    "plate": body["plate"],
                    "plate_valid": bool(body.get("plate_valid", True)),
                    "confidence": body.get("confidence"),
                    "seen_at": at,
                    "image_ref": event["image_ref"],
                }
            )
            if device.kind == "curb_camera" and device.space_id is None:  # a camera watching a whole curb zone
                curb_zones.add(device.facility_id)
        finished.append({"id": event["id"], "state": "applied", "outcome": str(outcome)})
        if space is not None and space.facility_kind == "curb_zone":
            curb_spaces.add(space.id)

    await _write_spaces(session, tenant_id, spaces.values())
    await repository.update_device_health(session, tenant_id, [h.row(device_id) for device_id, h in health.items()])
    await repository.insert_plate_sightings(session, tenant_id, sightings)
    await repository.finish_events(session, tenant_id, finished)
    return Applied(
        _visible_changes(tenant_id, spaces.values(), now, stale_after), sorted(curb_spaces), sorted(curb_zones)
    )


async def _write_spaces(session: AsyncSession, tenant_id: uuid.UUID, spaces: Any) -> None:
    touched = [space for space in spaces if space.state != space.before]
    await repository.update_spaces(
        session,
        tenant_id,
        [{"id": s.id, "status": s.state.status, "confirmed_at": s.state.confirmed_at} for s in touched],
    )
    await history.record_transitions(
        session, tenant_id, [SpaceTransitions(s.id, s.facility_id, s.transitions) for s in touched]
    )


def _visible_changes(tenant_id: uuid.UUID, spaces: Any, now: datetime, stale_after: timedelta) -> list[OccupancyChange]:
    """Changes of the status drivers see (effective status), one per space whatever the events were."""
    changes = []
    for space in spaces:
        before = effective_status(space.before.status, space.before.confirmed_at, now, stale_after)
        after = effective_status(space.state.status, space.state.confirmed_at, now, stale_after)
        if before != after:
            changes.append(
                OccupancyChange(
                    tenant_id=tenant_id,
                    # asyncpg's own UUID type is not one JSON encoders know.
                    facility_id=uuid.UUID(str(space.facility_id)),
                    space_id=uuid.UUID(str(space.id)),
                    space_code=space.code,
                    status=after,
                    previous_status=before,
                    changed_at=space.state.since or now,
                    lon=space.lon,
                    lat=space.lat,
                )
            )
    return changes


# --------------------------------------------------------------------------------------------- sweeps


async def requeue_overdue_events(session: AsyncSession, now: datetime, older_than: timedelta, limit: int) -> int:
    """Enqueue (after commit) every pending event accepted before `now - older_than`, per tenant."""
    rows = await repository.overdue_pending_events(session, now - older_than, limit)
    by_tenant: dict[uuid.UUID, list[str]] = defaultdict(list)
    for row in rows:
        by_tenant[row["tenant_id"]].append(str(row["id"]))
    for tenant_id, event_ids in by_tenant.items():
        for start in range(0, len(event_ids), 1000):
            jobs.enqueue(session, APPLY_JOB, str(tenant_id), event_ids[start : start + 1000])
    return len(rows)


async def mark_silent_devices_offline(
    session: AsyncSession, now: datetime, stale_after: timedelta
) -> list[OccupancyChange]:
    """Devices silent for longer than their interval go offline; their spaces read unknown from then on."""
    offline = await repository.mark_silent_devices_offline(session, now)
    by_tenant: dict[uuid.UUID, dict[uuid.UUID, datetime]] = defaultdict(dict)
    for row in offline:
        if row["space_id"] is not None:
            by_tenant[row["tenant_id"]][row["space_id"]] = row["offline_since"]
    changes: list[OccupancyChange] = []
    for tenant_id, silent_since in by_tenant.items():
        spaces = await _lock_spaces(session, tenant_id, set(silent_since))
        for space in spaces.values():
            at = silent_since[space.id]
            if space.state.since is None or at >= space.state.since:
                space.move_to(rules.withdraw_confirmation(space.state, at), at)
        await _write_spaces(session, tenant_id, spaces.values())
        changes += _visible_changes(tenant_id, spaces.values(), now, stale_after)
    return changes


# --------------------------------------------------------------------------------------- dead letters


async def replay_dead_events(session: AsyncSession, tenant_id: uuid.UUID, event_ids: Sequence[uuid.UUID]) -> int:
    """Put dead events back in the queue (after, say, registering the device they named)."""
    revived = await repository.revive_dead_events(session, tenant_id, event_ids)
    if revived:
        jobs.enqueue(session, APPLY_JOB, str(tenant_id), [str(event_id) for event_id in revived])
    return len(revived)


def _operator_tenant(principal: Principal, *, admin: bool) -> uuid.UUID:
    if principal.kind == "operator" and principal.tenant_id and (not admin or principal.role == "operator_admin"):
        return principal.tenant_id
    raise Forbidden(
        "only the operator's admins may replay its events" if admin else "dead events are for the operator's staff",
        required_role="operator_admin" if admin else "operator_staff",
    )


async def dead_letters(
    session: AsyncSession, principal: Principal, first: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Any]:
    return await repository.dead_events_page(session, _operator_tenant(principal, admin=False), first, after)


async def replay_dead_letters(session: AsyncSession, principal: Principal, event_ids: Sequence[uuid.UUID]) -> int:
    return await replay_dead_events(session, _operator_tenant(principal, admin=True), event_ids)
