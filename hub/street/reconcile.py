"""Bays that run themselves: curb cameras' sightings of plates with auto-pay start postpaid sessions, bays' sensors
end them, and occupied bays with no session are flagged for enforcement. Jobs (hub.street.tasks) call this after
the inbox applied the devices' events, and the sweep for whatever a lost job left behind. Never commits.

A camera bound to one bay decides its sightings for that bay (`rules.auto_session_start`); a camera bound to a
whole curb zone has each sighting attributed to a bay of the zone first (`rules.attribute_zone_sighting`), then
starts the session there the same way. Every sighting is decided once (street_sightings keeps the outcome); one
too early to tell is left undecided for a later run. A run reads what it needs for all its sightings at once:
the bays' history and sessions, and the plates' auto-pay authorizations, in one query each."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub import jobs
from hub.errors import NotFound
from hub.lanes.rules import make_read
from hub.pricing import service as pricing
from hub.street import changes, repository, rules

Row = repository.Row
SWEEP_LIMIT = 5_000


@dataclass
class Reconciled:
    """What reconciling bays did."""

    started: int = 0
    ended: int = 0
    expired: int = 0
    flags_raised: int = 0
    flags_resolved: int = 0

    def add(self, other: Reconciled) -> None:
        for name in ("started", "ended", "expired", "flags_raised", "flags_resolved"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class _Payer:
    authorization_id: uuid.UUID
    driver_id: uuid.UUID


@dataclass
class _Bays:
    """The locked bays of one run and what is known of them: their rows, their zones (of the zones whose own
    cameras' sightings are to decide), sensed history and sessions (kept current as sessions start)."""

    rows: dict[uuid.UUID, Row]
    zones: dict[uuid.UUID, list[uuid.UUID]]
    history: dict[uuid.UUID, list[rules.Interval]] = field(default_factory=lambda: defaultdict(list))
    held: dict[uuid.UUID, list[rules.Held]] = field(default_factory=lambda: defaultdict(list))

    def of_zone(self, zone_id: uuid.UUID) -> dict[uuid.UUID, rules.ZoneBay]:
        return {bay: rules.ZoneBay(self.history[bay], self.held[bay]) for bay in self.zones.get(zone_id, [])}


async def _bays_to_reconcile(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    space_ids: Sequence[uuid.UUID],
    zone_ids: Sequence[uuid.UUID],
    since: datetime,
) -> _Bays:
    """The live curb bays among `space_ids`, and every live bay of the zones (among `zone_ids` and the bays'
    zones) whose own cameras have sightings to decide: attributing one to a bay looks at all of them."""
    rows = {row["id"]: row for row in await repository.curb_bays(session, tenant_id, space_ids)} if space_ids else {}
    zones: dict[uuid.UUID, list[uuid.UUID]] = {}
    if wanted := set(zone_ids) | {row["facility_id"] for row in rows.values()}:
        for row in await repository.zone_bays_to_decide(session, tenant_id, sorted(wanted), since):
            bays = zones.setdefault(row["zone_id"], [])
            if row["id"] is not None:
                bays.append(row["id"])
                rows.setdefault(row["id"], row)
    return _Bays(rows, zones)


async def reconcile_bays(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    space_ids: Sequence[uuid.UUID],
    now: datetime,
    stale_after: timedelta,
    *,
    zone_ids: Sequence[uuid.UUID] = (),
    refresh_flags: bool = True,
) -> Reconciled:
    """Bring curb bays' sessions up to date with their cameras and sensors, once per sighting and change: each
    undecided sighting (of the bays' cameras, and of the zones' own cameras in `zone_ids` or of the bays' zones)
    of a plate with an active auto-pay authorization starts a postpaid session, or is recorded with why not; an
    open postpaid session whose bay went vacant after it started ends then, priced, with its charge pending; then
    (unless `refresh_flags` is False: the caller refreshes every flag) the bays' enforcement flags are raised or
    resolved. Idempotent."""
    done = Reconciled()
    since = now - rules.SIGHTING_WINDOW
    bays = await _bays_to_reconcile(session, tenant_id, space_ids, zone_ids, since)
    if not bays.rows and not bays.zones:
        return done
    ids = sorted(bays.rows)
    await repository.lock_bays(session, tenant_id, ids)
    open_sessions = await repository.open_sessions_of_spaces(session, tenant_id, ids)
    history_from = min([since, *(row["started_at"] for row in open_sessions)]) - rules.SIGHTING_LEAD
    for row in await repository.history_since(session, tenant_id, ids, history_from):
        bays.history[row["space_id"]].append(rules.Interval(row["status"], row["started_at"], row["ended_at"]))
    # The sessions that held a bay during any stretch read: who was paid for, and until when.
    held_from = min([history_from, *(item.start for items in bays.history.values() for item in items)])
    for row in await repository.sessions_holding_since(session, tenant_id, ids, held_from):
        bays.held[row["space_id"]].append(rules.Held(row["id"], row["plate"], row["started_at"], row["held_until"]))

    sightings = await repository.undecided_sightings(session, tenant_id, ids, sorted(bays.zones), since)
    payers = {
        row["plate"]: _Payer(row["id"], row["driver_id"])
        for row in await repository.authorizations_for_plates(session, [_plate(s) for s in sightings])
    }
    decided: list[dict[str, Any]] = []
    for sighting in sightings:
        outcome = await _decide(session, tenant_id, bays, sighting, payers.get(_plate(sighting)), now)
        if outcome is not None:
            decided.append(outcome)
            done.started += 1 if outcome["outcome"] == rules.STARTED else 0
    await repository.record_sightings(session, decided)

    for row in await repository.open_sessions_of_spaces(session, tenant_id, ids):
        if row["payment_mode"] != rules.POSTPAID:
            continue
        vacant_from = rules.sensor_end(row["started_at"], bays.history.get(row["space_id"], []))
        if vacant_from is None:
            continue
        state = rules.transition(row["payment_mode"], row["state"], rules.VACATE, row["paid_until"], now)
        await changes.settle(session, row, state, vacant_from, row["driver_id"], None, "sensor_end")
        done.ended += 1

    if refresh_flags:
        done.add(await refresh_enforcement(session, now, stale_after, tenant_id=tenant_id, space_ids=ids))
    return done


def _plate(sighting: Row) -> str:
    """The plate as lanes and authorizations hold it (connectors send it so already; this makes sure)."""
    return make_read(sighting["plate"]).plate


async def _decide(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    bays: _Bays,
    sighting: Row,
    payer: _Payer | None,
    now: datetime,
) -> dict[str, Any] | None:
    """Decide one sighting: start its session, or say why not (the street_sightings row to record); None when
    it is too early to tell."""

    def outcome(what: str, space_id: uuid.UUID | None, session_id: uuid.UUID | None = None) -> dict[str, Any]:
        return {
            "tenant_id": tenant_id,
            "sighting_id": sighting["id"],
            "facility_id": sighting["facility_id"],
            "space_id": space_id,
            "plate": sighting["plate"],
            "seen_at": sighting["seen_at"],
            "outcome": what,
            "session_id": session_id,
        }

    plate, seen_at, space_id = _plate(sighting), sighting["seen_at"], sighting["space_id"]
    if payer is None:
        return outcome(rules.NO_AUTHORIZATION, space_id)
    if space_id is None:  # a zone's own camera: which bay, first
        attributed = rules.attribute_zone_sighting(plate, seen_at, bays.of_zone(sighting["facility_id"]), now)
        if attributed.start is None or attributed.space_id is None:
            if attributed.outcome is None:
                return None
            return outcome(attributed.outcome, attributed.space_id, attributed.session_id)
        space_id, start = attributed.space_id, attributed.start
    else:  # a bay's own camera
        held = bays.held[space_id]
        decision = rules.auto_session_start(seen_at, bays.history[space_id], rules.covered_until(held, seen_at), now)
        if decision.start is None:
            return None if decision.outcome is None else outcome(decision.outcome, space_id)
        start = decision.start
    why, row = await _start(session, tenant_id, bays.rows[space_id], sighting["id"], plate, payer, start)
    if row is None:
        return outcome(why, space_id)
    bays.held[space_id].append(rules.Held(row["id"], plate, start, None))
    return outcome(why, space_id, row["id"])


async def _start(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    bay: Row,
    sighting_id: uuid.UUID,
    plate: str,
    payer: _Payer,
    start: datetime,
) -> tuple[str, Row | None]:
    """Start the postpaid session of the sighting in `bay` at `start`, under the zone's tariff then: STARTED and
    the session, or why not (NO_TARIFF: the zone has none then; SPACE_HAS_SESSION: another session holds the
    bay) and None."""
    try:
        version_id, _ = await pricing.tariff_at(session, bay["facility_id"], start, tenant_id=tenant_id)
    except NotFound:
        return rules.NO_TARIFF, None
    row = await repository.insert_session(
        session,
        {
            "tenant_id": tenant_id,
            "facility_id": bay["facility_id"],
            "space_id": bay["id"],
            "space_code": bay["code"],
            "driver_id": payer.driver_id,
            "plate": plate,
            "vehicle_class": pricing.DEFAULT_VEHICLE_CLASS,
            "payment_mode": rules.POSTPAID,
            "origin": rules.CAMERA,
            "state": rules.ACTIVE,
            "started_at": start,
            "currency": bay["currency"],
            "time_zone": bay["time_zone"],
            "tariff_version_id": version_id,
            "authorization_id": payer.authorization_id,
            "sighting_id": sighting_id,
        },
    )
    if row is None:
        return rules.SPACE_HAS_SESSION, None
    await changes.record_action(session, row, "camera_start", start, row["driver_id"], None)
    return rules.STARTED, row


# ------------------------------------------------------------------------------------------ enforcement


async def refresh_enforcement(
    session: AsyncSession,
    now: datetime,
    stale_after: timedelta,
    *,
    tenant_id: uuid.UUID | None = None,
    space_ids: Sequence[uuid.UUID] | None = None,
) -> Reconciled:
    """Raise a flag on each occupied curb bay with no session for longer than the grace, and resolve the open
    flags whose bay now has a session, is vacant, or stopped being sensed (of one tenant's bays, or every one)."""
    done = Reconciled()
    confirmed_after = now - stale_after
    raised = [
        {
            "tenant_id": bay["tenant_id"],
            "facility_id": bay["facility_id"],
            "space_id": bay["space_id"],
            "space_code": bay["code"],
            "occupied_since": bay["occupied_since"],
            "unpaid_since": rules.unpaid_since(bay["occupied_since"], bay["covered_until"]),
            "raised_at": now,
        }
        for bay in await repository.unflagged_occupied_bays(
            session, now, confirmed_after, tenant_id=tenant_id, space_ids=space_ids
        )
        if rules.needs_enforcement(bay["occupied_since"], bay["covered_until"], now)
    ]
    await repository.insert_flags(session, raised)
    done.flags_raised = len(raised)
    resolved = []
    for flag in await repository.open_flags_to_check(
        session, now, confirmed_after, tenant_id=tenant_id, space_ids=space_ids
    ):
        resolution = rules.flag_resolution(
            flag["status"], flag["confirmed"], flag["retired"], flag["session_id"] is not None
        )
        if resolution is not None:
            resolved.append(
                {
                    "tenant_id": flag["tenant_id"],
                    "id": flag["id"],
                    "resolved_at": now,
                    "resolution": resolution,
                    "session_id": flag["session_id"],
                }
            )
    await repository.resolve_flags(session, resolved)
    done.flags_resolved = len(resolved)
    return done


# ------------------------------------------------------------------------------------------------ sweep


async def sweep(session: AsyncSession, now: datetime, stale_after: timedelta) -> Reconciled:
    """The periodic safety net, across tenants (platform scope): write `expired` on prepaid sessions whose time
    ran out, reconcile the bays and zones a lost or not-yet-sent job left behind (undecided sightings, postpaid
    sessions whose bay went vacant), then raise or resolve every enforcement flag, once."""
    done = Reconciled()
    expired = await repository.expire_due_sessions(session, now, SWEEP_LIMIT)
    await repository.insert_actions(
        session,
        [
            {
                "tenant_id": row["tenant_id"],
                "session_id": row["id"],
                "driver_id": row["driver_id"],
                "kind": "expire",
                "at": row["paid_until"],
                "paid_until": row["paid_until"],
            }
            for row in expired
        ],
    )
    done.expired = len(expired)
    for row in expired:  # their holds are posted (nothing is refunded: the whole paid span was used)
        jobs.enqueue(session, changes.SETTLE_PREPAY_JOB, str(row["tenant_id"]), str(row["id"]))
    bays: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    zones: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for row in await repository.places_with_undecided_sightings(session, now - rules.SIGHTING_WINDOW, SWEEP_LIMIT):
        if row["space_id"] is not None:
            bays[row["tenant_id"]].add(row["space_id"])
        else:
            zones[row["tenant_id"]].add(row["facility_id"])
    for row in await repository.bays_with_sessions_to_close(session, SWEEP_LIMIT):
        bays[row["tenant_id"]].add(row["space_id"])
    for tenant_id in sorted(bays.keys() | zones.keys()):
        done.add(
            await reconcile_bays(
                session,
                tenant_id,
                sorted(bays[tenant_id]),
                now,
                stale_after,
                zone_ids=sorted(zones[tenant_id]),
                refresh_flags=False,
            )
        )
    done.add(await refresh_enforcement(session, now, stale_after))
    return done
