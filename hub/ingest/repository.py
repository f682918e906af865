"""All SQL of the ingest domain: the inbox, and the rows that applying events reads and writes (spaces'
status, their history, devices' health, plate sightings). Every statement filters by tenant explicitly;
row-level security is the second wall."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Row = Mapping[str, Any]

# The whole accept in one statement (migration 0022's `inbox_accept`): it sets the connector's scope, refuses a
# connector that is unknown or disabled or a secret that is no longer live, and writes the events, skipping
# duplicates (already in the inbox, or twice in this request) by the sender's id. Run outside an explicit
# transaction, it is committed when the answer arrives: one round trip. Written for the driver (asyncpg,
# positional parameters): the webhook's hot path runs it without the ORM session.
ACCEPT_INBOX_SQL = "SELECT refusal, accepted_ids FROM inbox_accept($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"


@dataclass(frozen=True)
class InboxAccept:
    refusal: str | None  # unknown_connector, connector_disabled, secret_expired; None: written
    accepted: list[uuid.UUID]  # ids of the rows written; the other events were duplicates


async def accept_inbox_events(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    connector_id: uuid.UUID,
    secret: str | None,
    columns: Mapping[str, list[Any]],
) -> InboxAccept:
    """columns: ids (of the rows to write), source_event_ids, kinds, device_external_ids, occurred_ats, bodies (JSON
    text), image_refs. `secret`: the one the requests proved (checked still live), None for senders with none of
    ours."""
    # fetch, not fetchrow: no row limit, so the statement runs to completion before the commit at Sync.
    [row] = await conn.fetch(
        ACCEPT_INBOX_SQL,
        tenant_id,
        connector_id,
        secret,
        columns["ids"],
        columns["source_event_ids"],
        columns["kinds"],
        columns["device_external_ids"],
        columns["occurred_ats"],
        columns["bodies"],
        columns["image_refs"],
    )
    return InboxAccept(row[0], list(row[1]))


async def lock_pending_events(session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[Row]:
    """Pending events among `ids`, oldest first, locked; rows another job holds are skipped (it applies them)."""
    result = await session.execute(
        text("""
            SELECT id, connector_id, source_event_id, kind, device_external_id, occurred_at, body, image_ref
            FROM inbox_events
            WHERE tenant_id = :tenant_id AND id = ANY(CAST(:ids AS uuid[])) AND state = 'pending'
            ORDER BY occurred_at, received_at, id
            FOR UPDATE SKIP LOCKED
        """),
        {"tenant_id": tenant_id, "ids": list(ids)},
    )
    return list(result.mappings())


async def devices_by_external_ids(
    session: AsyncSession, tenant_id: uuid.UUID, external_ids: Sequence[str]
) -> list[Row]:
    result = await session.execute(
        text("""
            SELECT id, kind, external_id, facility_id, space_id, lane_id, offline_since, last_message_at
            FROM devices
            WHERE tenant_id = :tenant_id AND external_id = ANY(CAST(:external_ids AS text[])) AND retired_at IS NULL
        """),
        {"tenant_id": tenant_id, "external_ids": list(external_ids)},
    )
    return list(result.mappings())


async def lock_spaces(session: AsyncSession, tenant_id: uuid.UUID, space_ids: Sequence[uuid.UUID]) -> list[Row]:
    """Spaces with their open history interval's start, locked in id order (no deadlocks between jobs)."""
    result = await session.execute(
        text("""
            SELECT s.id, s.facility_id, s.facility_kind, s.code, s.status, s.status_confirmed_at,
                   ST_X(s.location::geometry) AS lon, ST_Y(s.location::geometry) AS lat,
                   (SELECT i.started_at FROM space_status_intervals i
                     WHERE i.tenant_id = s.tenant_id AND i.space_id = s.id AND i.ended_at IS NULL) AS status_since
            FROM spaces s
            WHERE s.tenant_id = :tenant_id AND s.id = ANY(CAST(:space_ids AS uuid[]))
            ORDER BY s.id
            FOR UPDATE OF s
        """),
        {"tenant_id": tenant_id, "space_ids": list(space_ids)},
    )
    return list(result.mappings())


async def update_spaces(session: AsyncSession, tenant_id: uuid.UUID, rows: Sequence[Row]) -> None:
    """rows: {id, status, confirmed_at}"""
    if rows:
        await session.execute(
            text("""
                UPDATE spaces SET status = :status, status_confirmed_at = :confirmed_at, updated_at = now()
                WHERE tenant_id = :tenant_id AND id = :id
            """),
            [{"tenant_id": tenant_id, **row} for row in rows],
        )


async def update_device_health(session: AsyncSession, tenant_id: uuid.UUID, rows: Sequence[Row]) -> None:
    """rows: {id, last_message_at, last_heartbeat_at, battery_percent, temperature_c, firmware, offline_since,
    clear_offline}. Times only move forward; absent readings keep the previous ones."""
    if rows:
        await session.execute(
            text("""
                UPDATE devices SET
                    last_message_at = greatest(last_message_at, :last_message_at),
                    last_heartbeat_at = greatest(last_heartbeat_at, :last_heartbeat_at),
                    battery_percent = coalesce(:battery_percent, battery_percent),
                    temperature_c = coalesce(:temperature_c, temperature_c),
                    firmware = coalesce(:firmware, firmware),
                    offline_since = CASE WHEN :clear_offline THEN NULL
                                         ELSE coalesce(offline_since, :offline_since) END,
                    updated_at = now()
                WHERE tenant_id = :tenant_id AND id = :id
            """),
            [{"tenant_id": tenant_id, **row} for row in rows],
        )


async def insert_plate_sightings(session: AsyncSession, tenant_id: uuid.UUID, rows: Sequence[Row]) -> None:
    if rows:
        await session.execute(
            text("""
                INSERT INTO plate_sightings (tenant_id, inbox_event_id, device_id, facility_id, space_id, lane_id,
                                             plate, plate_valid, confidence, seen_at, image_ref)
                VALUES (:tenant_id, :inbox_event_id, :device_id, :facility_id, :space_id, :lane_id,
                        :plate, :plate_valid, :confidence, :seen_at, :image_ref)
                ON CONFLICT (tenant_id, inbox_event_id) DO NOTHING
            """),
            [{"tenant_id": tenant_id, **row} for row in rows],
        )


async def finish_events(session: AsyncSession, tenant_id: uuid.UUID, rows: Sequence[Row]) -> None:
    """rows: {id, state ('applied' or 'dead'), outcome}"""
    if rows:
        await session.execute(
            text("""
                UPDATE inbox_events SET state = :state, outcome = :outcome, attempts = attempts + 1,
                       applied_at = CASE WHEN :state = 'applied' THEN now() END
                WHERE tenant_id = :tenant_id AND id = :id
            """),
            [{"tenant_id": tenant_id, **row} for row in rows],
        )


# ------------------------------------------------------------------------------------------- sweeps


async def overdue_pending_events(session: AsyncSession, received_before: datetime, limit: int) -> list[Row]:
    """Pending events accepted before the cut-off, across tenants (the sweep runs in the platform scope)."""
    result = await session.execute(
        text("""
            SELECT tenant_id, id FROM inbox_events
            WHERE state = 'pending' AND received_at < :received_before
            ORDER BY received_at LIMIT :limit
        """),
        {"received_before": received_before, "limit": limit},
    )
    return list(result.mappings())


async def mark_silent_devices_offline(session: AsyncSession, now: datetime) -> list[Row]:
    """Devices silent longer than their interval become offline; returns them with their space, if any."""
    result = await session.execute(
        text("""
            UPDATE devices d
            SET offline_since = coalesce(d.last_message_at, d.created_at) + make_interval(secs => d.offline_after_s),
                updated_at = now()
            WHERE d.offline_since IS NULL AND d.retired_at IS NULL
              AND coalesce(d.last_message_at, d.created_at) + make_interval(secs => d.offline_after_s) < :now
            RETURNING d.tenant_id, d.id, d.space_id, d.offline_since
        """),
        {"now": now},
    )
    return list(result.mappings())


# ------------------------------------------------------------------------------------- dead letters


async def dead_events_page(
    session: AsyncSession, tenant_id: uuid.UUID, first: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Row]:
    """Dead events newest first, keyset-paged on (received_at, id)."""
    result = await session.execute(
        text("""
            SELECT id, connector_id, source_event_id, kind, device_external_id, occurred_at, received_at, body,
                   outcome, attempts
            FROM inbox_events
            WHERE tenant_id = :tenant_id AND state = 'dead'
              AND (CAST(:after_at AS timestamptz) IS NULL OR (received_at, id) < (:after_at, :after_id))
            ORDER BY received_at DESC, id DESC
            LIMIT :limit
        """),
        {
            "tenant_id": tenant_id,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": first + 1,
        },
    )
    return list(result.mappings())


async def revive_dead_events(session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    result = await session.execute(
        text("""
            UPDATE inbox_events SET state = 'pending', outcome = NULL
            WHERE tenant_id = :tenant_id AND id = ANY(CAST(:ids AS uuid[])) AND state = 'dead'
            RETURNING id
        """),
        {"tenant_id": tenant_id, "ids": list(ids)},
    )
    return [row[0] for row in result]
