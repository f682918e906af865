"""All SQL of notifications: the notifications themselves (drivers' inbox), webhook endpoints and their secrets,
and deliveries. Every statement names its tenant (or driver) explicitly; row-level security is the second wall.
The sweep's statements run in the platform scope, across tenants."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Row = Mapping[str, Any]

ENDPOINT_COLUMNS = (
    "tenant_id, id, url, description, event_types, consecutive_failures, failing_since, created_at, updated_at, "
    "disabled_at, disabled_reason"
)
DELIVERY_COLUMNS = """
    d.tenant_id, d.id, d.endpoint_id, d.notification_id, d.state, d.attempts, d.next_attempt_at, d.last_attempt_at,
    d.last_status_code, d.last_error, d.delivered_at, d.created_at, d.updated_at,
    n.type, n.idempotency_key, n.occurred_at, n.subject_ids, n.payload
"""
NOTIFICATION_COLUMNS = "tenant_id, id, type, idempotency_key, subject_ids, payload, driver_id, occurred_at, created_at"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# ------------------------------------------------------------------------------------------- endpoints


async def insert_endpoint(
    session: AsyncSession, tenant_id: uuid.UUID, url: str, description: str | None, event_types: Sequence[str]
) -> Row:
    result = await session.execute(
        text(f"""
            INSERT INTO webhook_endpoints (tenant_id, url, description, event_types)
            VALUES (:tenant_id, :url, :description, CAST(:event_types AS text[]))
            RETURNING {ENDPOINT_COLUMNS}
        """),
        {"tenant_id": tenant_id, "url": url, "description": description, "event_types": list(event_types)},
    )
    return result.mappings().one()


async def find_endpoints(session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[Row]:
    result = await session.execute(
        text(f"""
            SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
            WHERE tenant_id = :tenant_id AND id = ANY(CAST(:ids AS uuid[]))
        """),
        {"tenant_id": tenant_id, "ids": list(ids)},
    )
    return list(result.mappings())


async def list_endpoints(session: AsyncSession, tenant_id: uuid.UUID) -> list[Row]:
    result = await session.execute(
        text(f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = :tenant_id ORDER BY created_at, id"),
        {"tenant_id": tenant_id},
    )
    return list(result.mappings())


async def enabled_endpoints(session: AsyncSession, tenant_id: uuid.UUID) -> list[Row]:
    result = await session.execute(
        text("""
            SELECT id, event_types FROM webhook_endpoints
            WHERE tenant_id = :tenant_id AND disabled_at IS NULL
        """),
        {"tenant_id": tenant_id},
    )
    return list(result.mappings())


async def update_endpoint(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, values: Mapping[str, Any]
) -> Row | None:
    """Set the given columns (url, description, event_types, or none: then it only locks the row until the
    transaction ends); None when the tenant has no such endpoint."""
    assignments = {
        "url": "url = :url",
        "description": "description = :description",
        "event_types": "event_types = CAST(:event_types AS text[])",
    }
    unknown = set(values) - set(assignments)
    if unknown:
        raise ValueError(f"not endpoint columns one may set: {sorted(unknown)}")
    sets = ", ".join([assignments[name] for name in values] + ["updated_at = now()"])
    result = await session.execute(
        text(f"""
            UPDATE webhook_endpoints SET {sets}
            WHERE tenant_id = :tenant_id AND id = :id
            RETURNING {ENDPOINT_COLUMNS}
        """),
        {"tenant_id": tenant_id, "id": endpoint_id, **values},
    )
    return result.mappings().one_or_none()


async def disable_endpoint(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, at: datetime, reason: str
) -> Row | None:
    """Disable it (an endpoint already disabled keeps its first time and reason)."""
    result = await session.execute(
        text(f"""
            UPDATE webhook_endpoints
            SET disabled_at = coalesce(disabled_at, :at), disabled_reason = coalesce(disabled_reason, :reason),
                updated_at = now()
            WHERE tenant_id = :tenant_id AND id = :id
            RETURNING {ENDPOINT_COLUMNS}
        """),
        {"tenant_id": tenant_id, "id": endpoint_id, "at": at, "reason": reason},
    )
    return result.mappings().one_or_none()


async def enable_endpoint(session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> Row | None:
    """Enable it with a clean record: the failures that disabled it no longer count."""
    result = await session.execute(
        text(f"""
            UPDATE webhook_endpoints
            SET disabled_at = NULL, disabled_reason = NULL, consecutive_failures = 0, failing_since = NULL,
                updated_at = now()
            WHERE tenant_id = :tenant_id AND id = :id
            RETURNING {ENDPOINT_COLUMNS}
        """),
        {"tenant_id": tenant_id, "id": endpoint_id},
    )
    return result.mappings().one_or_none()


async def count_endpoint_success(session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    """A 2xx: the endpoint's run of failures is over (written only when there was one)."""
    await session.execute(
        text("""
            UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL
            WHERE tenant_id = :tenant_id AND id = :id AND (consecutive_failures > 0 OR failing_since IS NOT NULL)
        """),
        {"tenant_id": tenant_id, "id": endpoint_id},
    )


async def count_endpoint_failure(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, at: datetime
) -> Row | None:
    """One more failed attempt in the endpoint's run; returns the run (consecutive_failures, failing_since,
    disabled_at)."""
    result = await session.execute(
        text("""
            UPDATE webhook_endpoints
            SET consecutive_failures = consecutive_failures + 1, failing_since = coalesce(failing_since, :at)
            WHERE tenant_id = :tenant_id AND id = :id
            RETURNING consecutive_failures, failing_since, disabled_at
        """),
        {"tenant_id": tenant_id, "id": endpoint_id, "at": at},
    )
    return result.mappings().one_or_none()


# ------------------------------------------------------------------------------------------- secrets


async def insert_endpoint_secret(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, secret: str
) -> uuid.UUID:
    # clock_timestamp, not the transaction's now(): the newest secret sorts first even when a rotation happens in
    # the transaction that created the endpoint.
    result = await session.execute(
        text("""
            INSERT INTO webhook_endpoint_secrets (tenant_id, endpoint_id, secret, created_at)
            VALUES (:tenant_id, :endpoint_id, :secret, clock_timestamp())
            RETURNING id
        """),
        {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "secret": secret},
    )
    return result.scalar_one()


async def expire_endpoint_secrets(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, keep_id: uuid.UUID, at: datetime, now: datetime
) -> None:
    """Every secret but `keep_id` expires at `at` (or sooner, if it was due to), and the expired ones go."""
    await session.execute(
        text("""
            UPDATE webhook_endpoint_secrets SET expires_at = LEAST(coalesce(expires_at, :at), :at)
            WHERE tenant_id = :tenant_id AND endpoint_id = :endpoint_id AND id <> :keep_id
        """),
        {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "keep_id": keep_id, "at": at},
    )
    await session.execute(
        text("""
            DELETE FROM webhook_endpoint_secrets
            WHERE tenant_id = :tenant_id AND endpoint_id = :endpoint_id AND expires_at <= :now
        """),
        {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "now": now},
    )


async def signing_secrets(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, now: datetime
) -> list[str]:
    """The endpoint's secrets still valid at `now`, newest first."""
    result = await session.execute(
        text("""
            SELECT secret FROM webhook_endpoint_secrets
            WHERE tenant_id = :tenant_id AND endpoint_id = :endpoint_id AND (expires_at IS NULL OR expires_at > :now)
            ORDER BY created_at DESC, id
        """),
        {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "now": now},
    )
    return list(result.scalars())


# ------------------------------------------------------------------------------------------- notifications


# A new notification and its deliveries in one round trip (the lanes' exit path runs this on every decision):
# one delivery per enabled endpoint of the tenant subscribed to the type ('*', the type, or its category's
# 'category.*', as rules.event_type_matches). No row: the tenant already has a notification with this key.
#   $1 tenant, $2 type, $3 key, $4 subject ids (JSON text), $5 payload (JSON text), $6 driver, $7 occurred at,
#   $8 now (the deliveries' first attempt)
RECORD_NOTIFICATION_SQL = f"""
WITH n AS (
    INSERT INTO notifications (tenant_id, type, idempotency_key, subject_ids, payload, driver_id, occurred_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING {NOTIFICATION_COLUMNS}
), d AS (
    INSERT INTO webhook_deliveries (tenant_id, endpoint_id, notification_id, next_attempt_at, dispatched_at)
    SELECT n.tenant_id, e.id, n.id, $8, $8
    FROM n JOIN webhook_endpoints e ON e.tenant_id = n.tenant_id AND e.disabled_at IS NULL
    WHERE e.event_types && ARRAY['*', n.type, split_part(n.type, '.', 1) || '.*']
    ON CONFLICT (tenant_id, endpoint_id, notification_id) DO NOTHING
    RETURNING id
)
SELECT {NOTIFICATION_COLUMNS}, ARRAY(SELECT id FROM d) AS delivery_ids FROM n
"""


async def record_notification(
    conn: asyncpg.Connection,
    *,
    tenant_id: uuid.UUID,
    type: str,
    idempotency_key: str,
    subject_ids: Mapping[str, Any],
    payload: Mapping[str, Any],
    driver_id: uuid.UUID | None,
    occurred_at: datetime,
    now: datetime,
) -> asyncpg.Record | None:
    """See RECORD_NOTIFICATION_SQL: the new notification with its `delivery_ids`, or None when the tenant already
    has one with this idempotency key. On the asyncpg connection (inside the caller's transaction and scope)."""
    return await conn.fetchrow(
        RECORD_NOTIFICATION_SQL,
        tenant_id,
        type,
        idempotency_key,
        _json({name: str(value) for name, value in subject_ids.items()}),
        _json(dict(payload)),
        driver_id,
        occurred_at,
        now,
    )


async def find_notification_by_key(session: AsyncSession, tenant_id: uuid.UUID, idempotency_key: str) -> Row | None:
    result = await session.execute(
        text(f"""
            SELECT {NOTIFICATION_COLUMNS} FROM notifications
            WHERE tenant_id = :tenant_id AND idempotency_key = :key
        """),
        {"tenant_id": tenant_id, "key": idempotency_key},
    )
    return result.mappings().one_or_none()


async def driver_notifications_page(
    session: AsyncSession, driver_id: uuid.UUID, first: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Row]:
    """A driver's notifications newest first, keyset-paged on (created_at, id); `first + 1` rows."""
    result = await session.execute(
        text(f"""
            SELECT {NOTIFICATION_COLUMNS} FROM notifications
            WHERE driver_id = :driver_id
              AND (CAST(:after_at AS timestamptz) IS NULL OR (created_at, id) < (:after_at, :after_id))
            ORDER BY created_at DESC, id DESC
            LIMIT :limit
        """),
        {
            "driver_id": driver_id,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": first + 1,
        },
    )
    return list(result.mappings())


async def find_notifications(
    session: AsyncSession, ids: Sequence[uuid.UUID], *, tenant_id: uuid.UUID | None, driver_id: uuid.UUID | None
) -> list[Row]:
    """Notifications by id, of one tenant or of one driver (exactly one of the two is given)."""
    if (tenant_id is None) == (driver_id is None):
        raise ValueError("give exactly one of tenant_id and driver_id")
    owner = "tenant_id = :tenant_id" if tenant_id is not None else "driver_id = :driver_id"
    result = await session.execute(
        text(f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE {owner} AND id = ANY(CAST(:ids AS uuid[]))"),
        {"tenant_id": tenant_id, "driver_id": driver_id, "ids": list(ids)},
    )
    return list(result.mappings())


# ------------------------------------------------------------------------------------------- deliveries


async def insert_deliveries(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    notification_id: uuid.UUID,
    endpoint_ids: Sequence[uuid.UUID],
    now: datetime,
) -> list[uuid.UUID]:
    """One pending delivery per endpoint, due now and dispatched now (the caller queues their jobs); endpoints
    that already have this notification are skipped. Returns the new deliveries' ids."""
    if not endpoint_ids:
        return []
    result = await session.execute(
        text("""
            INSERT INTO webhook_deliveries (tenant_id, endpoint_id, notification_id, next_attempt_at, dispatched_at)
            SELECT CAST(:tenant_id AS uuid), endpoint_id, CAST(:notification_id AS uuid), CAST(:now AS timestamptz),
                   CAST(:now AS timestamptz)
            FROM unnest(CAST(:endpoint_ids AS uuid[])) AS endpoint_id
            ON CONFLICT (tenant_id, endpoint_id, notification_id) DO NOTHING
            RETURNING id
        """),
        {"tenant_id": tenant_id, "notification_id": notification_id, "endpoint_ids": list(endpoint_ids), "now": now},
    )
    return list(result.scalars())


async def claim_delivery(
    session: AsyncSession, tenant_id: uuid.UUID, delivery_id: uuid.UUID, now: datetime, lease_until: datetime
) -> Row | None:
    """Take a due delivery for one attempt: it is not due again until `lease_until` (so a second job for it does
    nothing, and a worker that dies mid-attempt only delays it). None when it is not pending or not due. Returns
    what the attempt needs: the endpoint and the notification."""
    result = await session.execute(
        text("""
            WITH claimed AS (
                UPDATE webhook_deliveries
                SET next_attempt_at = :lease_until, dispatched_at = NULL, updated_at = now()
                WHERE tenant_id = :tenant_id AND id = :id AND state = 'pending' AND next_attempt_at <= :now
                RETURNING tenant_id, id, endpoint_id, notification_id, attempts
            )
            SELECT c.tenant_id, c.id, c.endpoint_id, c.attempts, e.url, e.disabled_at,
                   n.id AS notification_id, n.type, n.occurred_at, n.subject_ids, n.payload
            FROM claimed c
            JOIN webhook_endpoints e ON e.tenant_id = c.tenant_id AND e.id = c.endpoint_id
            JOIN notifications n ON n.tenant_id = c.tenant_id AND n.id = c.notification_id
        """),
        {"tenant_id": tenant_id, "id": delivery_id, "now": now, "lease_until": lease_until},
    )
    return result.mappings().one_or_none()


async def lock_delivery(session: AsyncSession, tenant_id: uuid.UUID, delivery_id: uuid.UUID) -> Row | None:
    result = await session.execute(
        text("""
            SELECT id, endpoint_id, state, attempts FROM webhook_deliveries
            WHERE tenant_id = :tenant_id AND id = :id
            FOR UPDATE
        """),
        {"tenant_id": tenant_id, "id": delivery_id},
    )
    return result.mappings().one_or_none()


async def record_attempt(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    state: str,
    attempts: int,
    next_attempt_at: datetime | None,
    attempted_at: datetime,
    status_code: int | None,
    error: str | None,
) -> None:
    await session.execute(
        text("""
            UPDATE webhook_deliveries
            SET state = :state, attempts = :attempts, next_attempt_at = :next_attempt_at, dispatched_at = NULL,
                last_attempt_at = :attempted_at, last_status_code = :status_code, last_error = :error,
                delivered_at = CASE WHEN :state = 'delivered' THEN CAST(:attempted_at AS timestamptz) END,
                updated_at = now()
            WHERE tenant_id = :tenant_id AND id = :id
        """),
        {
            "tenant_id": tenant_id,
            "id": delivery_id,
            "state": state,
            "attempts": attempts,
            "next_attempt_at": next_attempt_at,
            "attempted_at": attempted_at,
            "status_code": status_code,
            "error": error,
        },
    )


async def fail_delivery(session: AsyncSession, tenant_id: uuid.UUID, delivery_id: uuid.UUID, error: str) -> None:
    """A pending delivery that will not be attempted (its endpoint is disabled)."""
    await session.execute(
        text("""
            UPDATE webhook_deliveries
            SET state = 'failed', next_attempt_at = NULL, dispatched_at = NULL, last_error = :error, updated_at = now()
            WHERE tenant_id = :tenant_id AND id = :id AND state = 'pending'
        """),
        {"tenant_id": tenant_id, "id": delivery_id, "error": error},
    )


async def fail_pending_deliveries(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, error: str
) -> int:
    """Every pending delivery of the endpoint fails (it was disabled); their last error says why."""
    result = await session.execute(
        text("""
            UPDATE webhook_deliveries
            SET state = 'failed', next_attempt_at = NULL, dispatched_at = NULL,
                last_error = CASE WHEN last_error IS NULL THEN :error ELSE last_error || ' | ' || :error END,
                updated_at = now()
            WHERE tenant_id = :tenant_id AND endpoint_id = :endpoint_id AND state = 'pending'
        """),
        {"tenant_id": tenant_id, "endpoint_id": endpoint_id, "error": error},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def restart_delivery(
    session: AsyncSession, tenant_id: uuid.UUID, delivery_id: uuid.UUID, now: datetime
) -> uuid.UUID | None:
    """Due now with a fresh set of attempts (and dispatched now: the caller queues its job)."""
    result = await session.execute(
        text("""
            UPDATE webhook_deliveries
            SET state = 'pending', attempts = 0, next_attempt_at = :now, dispatched_at = :now, delivered_at = NULL,
                updated_at = now()
            WHERE tenant_id = :tenant_id AND id = :id
            RETURNING id
        """),
        {"tenant_id": tenant_id, "id": delivery_id, "now": now},
    )
    return result.scalar_one_or_none()


async def dispatch_due_deliveries(
    session: AsyncSession, now: datetime, redispatch_before: datetime, limit: int
) -> list[Row]:
    """Pending deliveries that are due and have no job queued (none ever, or one queued before
    `redispatch_before` that never ran), across tenants, marked dispatched now; the caller queues their jobs."""
    result = await session.execute(
        text("""
            UPDATE webhook_deliveries d SET dispatched_at = :now
            FROM (
                SELECT tenant_id, id FROM webhook_deliveries
                WHERE state = 'pending' AND next_attempt_at <= :now
                  AND (dispatched_at IS NULL OR dispatched_at < :redispatch_before)
                ORDER BY next_attempt_at
                LIMIT :limit
                FOR UPDATE SKIP LOCKED
            ) due
            WHERE d.tenant_id = due.tenant_id AND d.id = due.id
            RETURNING d.tenant_id, d.id
        """),
        {"now": now, "redispatch_before": redispatch_before, "limit": limit},
    )
    return list(result.mappings())


async def find_deliveries(session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> list[Row]:
    result = await session.execute(
        text(f"""
            SELECT {DELIVERY_COLUMNS}
            FROM webhook_deliveries d
            JOIN notifications n ON n.tenant_id = d.tenant_id AND n.id = d.notification_id
            WHERE d.tenant_id = :tenant_id AND d.id = ANY(CAST(:ids AS uuid[]))
        """),
        {"tenant_id": tenant_id, "ids": list(ids)},
    )
    return list(result.mappings())


async def deliveries_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    state: str | None,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Row]:
    """An endpoint's deliveries newest first, optionally in one state, keyset-paged on (created_at, id)."""
    result = await session.execute(
        text(f"""
            SELECT {DELIVERY_COLUMNS}
            FROM webhook_deliveries d
            JOIN notifications n ON n.tenant_id = d.tenant_id AND n.id = d.notification_id
            WHERE d.tenant_id = :tenant_id AND d.endpoint_id = :endpoint_id
              AND (CAST(:state AS text) IS NULL OR d.state = :state)
              AND (CAST(:after_at AS timestamptz) IS NULL OR (d.created_at, d.id) < (:after_at, :after_id))
            ORDER BY d.created_at DESC, d.id DESC
            LIMIT :limit
        """),
        {
            "tenant_id": tenant_id,
            "endpoint_id": endpoint_id,
            "state": state,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": first + 1,
        },
    )
    return list(result.mappings())
