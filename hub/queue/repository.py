"""All SQL of the exception queue. Every statement filters by tenant explicitly, except the barrier-held sweep,
which reads every operator's lanes under the platform scope; row-level security is the second wall.

The exceptions' own rows (and their audit trail's first line) are written by hub.lanes.repository; this module
reads the queue, locks an exception for an agent's action and changes its state.

The queue is read with one statement (ITEM_SQL): the exception with its facility's and lane's names, the passage
that raised it, and a summary of its lot session, each joined by primary key. The open and claimed exceptions
are found through the partial index `ix_exceptions_queue` (tenant, facility, created_at WHERE state <> 'resolved'),
which only ever holds the exceptions waiting now, however long the history grows."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

Row = Mapping[str, Any]

ITEM_SQL = """
SELECT x.id, x.tenant_id, x.kind, x.state, x.facility_id, f.name AS facility_name,
       x.lane_id, l.name AS lane_name, l.direction AS lane_direction,
       x.decision_id, d.reason AS decision_reason, d.passed_at,
       x.plate, x.reads, x.detail,
       s.id AS session_id, s.plate AS session_plate, s.state AS session_state, s.entered_at AS session_entered_at,
       s.exited_at AS session_exited_at, s.price_fen AS session_price_fen, s.paid_fen AS session_paid_fen,
       coalesce((x.detail #>> '{redecision,amount_due_fen}')::int, d.amount_due_fen) AS amount_due_fen,
       x.claimed_by, x.claimed_at, x.resolved_by, x.resolved_at, x.resolution, x.created_at
FROM exceptions x
JOIN facilities f ON f.tenant_id = x.tenant_id AND f.id = x.facility_id
LEFT JOIN lanes l ON l.tenant_id = x.tenant_id AND l.id = x.lane_id
LEFT JOIN lane_decisions d ON d.tenant_id = x.tenant_id AND d.id = x.decision_id
LEFT JOIN lot_sessions s
       ON s.tenant_id = x.tenant_id AND s.id = coalesce(x.session_id, (x.detail ->> 'candidate_session_id')::uuid)
"""

_FACILITY_FILTER = "(CAST(:facility_ids AS uuid[]) IS NULL OR x.facility_id = ANY(CAST(:facility_ids AS uuid[])))"

# Waiting longest first. `state <> 'resolved'` spelled out so the planner may use the partial index.
QUEUE_SQL = f"""{ITEM_SQL}
WHERE x.tenant_id = :tenant_id AND x.state <> 'resolved' AND x.state = ANY(CAST(:states AS text[]))
  AND {_FACILITY_FILTER}
  AND (CAST(:after_at AS timestamptz) IS NULL OR (x.created_at, x.id) > (:after_at, :after_id))
ORDER BY x.created_at, x.id
LIMIT :limit
"""

# Newest first (by when raised), along `ix_exceptions_created`.
HISTORY_SQL = f"""{ITEM_SQL}
WHERE x.tenant_id = :tenant_id AND x.state = 'resolved' AND {_FACILITY_FILTER}
  AND (CAST(:after_at AS timestamptz) IS NULL OR (x.created_at, x.id) < (:after_at, :after_id))
ORDER BY x.created_at DESC, x.id DESC
LIMIT :limit
"""

ITEMS_SQL = f"""{ITEM_SQL}
WHERE x.tenant_id = ANY(CAST(:tenant_ids AS uuid[])) AND x.id = ANY(CAST(:ids AS uuid[]))
"""

# The exception an agent acts on, locked until the action's transaction ends: two agents acting at once take turns,
# and the second sees what the first did.
LOCK_SQL = text("""
SELECT x.id, x.tenant_id, x.kind, x.state, x.facility_id, x.lane_id, x.session_id, x.decision_id, x.plate,
       x.detail, x.claimed_by, l.direction AS lane_direction, d.passed_at
FROM exceptions x
LEFT JOIN lanes l ON l.tenant_id = x.tenant_id AND l.id = x.lane_id
LEFT JOIN lane_decisions d ON d.tenant_id = x.tenant_id AND d.id = x.decision_id
WHERE x.tenant_id = :tenant_id AND x.id = :id
FOR UPDATE OF x
""")

CLAIM_SQL = text("""
UPDATE exceptions SET state = 'claimed', claimed_by = :agent, claimed_at = now()
WHERE tenant_id = :tenant_id AND id = :id AND state <> 'resolved'
""")

RELEASE_SQL = text("""
UPDATE exceptions SET state = 'open', claimed_by = NULL, claimed_at = NULL
WHERE tenant_id = :tenant_id AND id = :id AND state = 'claimed'
""")

RESOLVE_SQL = text("""
UPDATE exceptions
SET state = 'resolved', resolved_by = :agent, resolved_at = now(), resolution = CAST(:resolution AS jsonb)
WHERE tenant_id = :tenant_id AND id = :id AND state <> 'resolved'
""")

# After a corrected plate: the plate is the agent's, the session the re-decision's, the re-decision in the detail.
CORRECTED_SQL = text("""
UPDATE exceptions
SET plate = :plate, session_id = coalesce(CAST(:session_id AS uuid), session_id),
    detail = detail || CAST(:detail AS jsonb)
WHERE tenant_id = :tenant_id AND id = :id
""")

CLOSE_SESSION_SQL = text("""
UPDATE lot_sessions
SET state = 'closed', exit_lane_id = :exit_lane_id, exited_at = greatest(CAST(:exited_at AS timestamptz), entered_at),
    price_fen = :price_fen, close_reason = :close_reason, updated_at = now()
WHERE tenant_id = :tenant_id AND id = :id AND state = 'open'
RETURNING id, price_fen, exited_at
""")

# A transaction's `raised` line and the agent's next one share now(): `raised` comes first.
ACTIONS_SQL = text("""
SELECT id, exception_id, actor, action, reason, detail, at FROM exception_actions
WHERE tenant_id = :tenant_id AND exception_id = ANY(CAST(:ids AS uuid[]))
ORDER BY exception_id, at, action <> 'raised', id
""")

# Only one barrier-held sweep at a time (the cron is unique, this makes sure of it): a transaction-level lock.
SWEEP_LOCK_SQL = text("SELECT pg_try_advisory_xact_lock(hashtext('parkhub.queue.barrier_held'))")

# Each live lane's latest passage (one probe of ix_lane_decisions_lane_time per lane), kept when it held, raised no
# exception of its own, was decided within [since, held_before) and has no barrier_held exception yet.
HELD_BARRIERS_SQL = text("""
SELECT l.tenant_id, l.id AS lane_id, l.facility_id, d.id AS decision_id, d.plate, d.reads, d.reason,
       d.passage_id, d.session_id, d.decided_at
FROM lanes l
JOIN LATERAL (
    SELECT * FROM lane_decisions d
    WHERE d.tenant_id = l.tenant_id AND d.lane_id = l.id
    ORDER BY d.decided_at DESC, d.id DESC
    LIMIT 1
) d ON true
WHERE l.retired_at IS NULL
  AND d.decision = 'hold' AND d.exception_id IS NULL
  AND d.decided_at >= :since AND d.decided_at < :held_before
  AND NOT EXISTS (
      SELECT 1 FROM exceptions x
      WHERE x.tenant_id = l.tenant_id AND x.created_at >= d.decided_at AND x.kind = 'barrier_held'
        AND x.decision_id = d.id
  )
ORDER BY d.decided_at
""")


def _page_params(
    tenant_id: uuid.UUID,
    facility_ids: Sequence[uuid.UUID] | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "facility_ids": None if facility_ids is None else list(facility_ids),
        "after_at": None if after is None else after[0],
        "after_id": None if after is None else after[1],
        "limit": limit,
    }


async def queue_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    states: Sequence[str],
    facility_ids: Sequence[uuid.UUID] | None,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Row]:
    """Waiting exceptions, longest waiting first, plus one row more when a next page exists."""
    params = _page_params(tenant_id, facility_ids, after, first + 1) | {"states": list(states)}
    return list((await session.execute(text(QUEUE_SQL), params)).mappings().all())


async def history_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    facility_ids: Sequence[uuid.UUID] | None,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Row]:
    """Resolved exceptions, newest first, plus one row more when a next page exists."""
    params = _page_params(tenant_id, facility_ids, after, first + 1)
    return list((await session.execute(text(HISTORY_SQL), params)).mappings().all())


def _items_params(keys: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> dict[str, Any]:
    return {"tenant_ids": list({tenant_id for tenant_id, _ in keys}), "ids": [row_id for _, row_id in keys]}


async def items(session: AsyncSession, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> list[Row]:
    """Queue items of (tenant id, exception id) pairs."""
    if not keys:
        return []
    return list((await session.execute(text(ITEMS_SQL), _items_params(keys))).mappings().all())


def items_in_commit(session: Session, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> list[Row]:
    """`items` from a synchronous session event (before commit: SQLAlchemy runs it where it may emit SQL)."""
    if not keys:
        return []
    return list(session.execute(text(ITEMS_SQL), _items_params(keys)).mappings().all())


async def lock_exception(session: AsyncSession, tenant_id: uuid.UUID, exception_id: uuid.UUID) -> Row | None:
    return (await session.execute(LOCK_SQL, {"tenant_id": tenant_id, "id": exception_id})).mappings().first()


async def claim(session: AsyncSession, tenant_id: uuid.UUID, exception_id: uuid.UUID, agent: str) -> None:
    await session.execute(CLAIM_SQL, {"tenant_id": tenant_id, "id": exception_id, "agent": agent})


async def release(session: AsyncSession, tenant_id: uuid.UUID, exception_id: uuid.UUID) -> None:
    await session.execute(RELEASE_SQL, {"tenant_id": tenant_id, "id": exception_id})


async def resolve(
    session: AsyncSession, tenant_id: uuid.UUID, exception_id: uuid.UUID, agent: str, resolution: str
) -> None:
    """`resolution` is JSON text."""
    params = {"tenant_id": tenant_id, "id": exception_id, "agent": agent, "resolution": resolution}
    await session.execute(RESOLVE_SQL, params)


async def record_correction(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    exception_id: uuid.UUID,
    plate: str,
    session_id: uuid.UUID | None,
    detail: str,
) -> None:
    """`detail` is JSON text, merged into the exception's detail."""
    params = {"tenant_id": tenant_id, "id": exception_id, "plate": plate, "session_id": session_id, "detail": detail}
    await session.execute(CORRECTED_SQL, params)


async def close_session(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    exit_lane_id: uuid.UUID | None,
    exited_at: datetime,
    price_fen: int,
    close_reason: str,
) -> Row | None:
    """None when the session is not open (any more)."""
    params = {
        "tenant_id": tenant_id,
        "id": session_id,
        "exit_lane_id": exit_lane_id,
        "exited_at": exited_at,
        "price_fen": price_fen,
        "close_reason": close_reason,
    }
    return (await session.execute(CLOSE_SESSION_SQL, params)).mappings().first()


async def actions(session: AsyncSession, tenant_id: uuid.UUID, exception_ids: Sequence[uuid.UUID]) -> list[Row]:
    """The audit trails of exceptions, each oldest first."""
    result = await session.execute(ACTIONS_SQL, {"tenant_id": tenant_id, "ids": list(exception_ids)})
    return list(result.mappings().all())


async def lock_sweep(session: AsyncSession) -> bool:
    """False when another sweep holds the lock."""
    return bool((await session.execute(SWEEP_LOCK_SQL)).scalar_one())


async def held_barriers(session: AsyncSession, *, since: datetime, held_before: datetime) -> list[Row]:
    result = await session.execute(HELD_BARRIERS_SQL, {"since": since, "held_before": held_before})
    return list(result.mappings().all())
