"""All SQL of the gate command channel (`gate_commands`). Every statement filters by tenant explicitly, and the gate's
statements by lane too; row-level security is the second wall.

A lane's gate fetches with one statement that finds its live commands and marks them delivered (an UPDATE ...
RETURNING): unacknowledged, not expired, requested within MAX_TTL (so it reads a short range of
`ix_gate_commands_lane_time`, however many commands the lane has had)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Row = Mapping[str, Any]

COLUMNS = """id, tenant_id, lane_id, command, reason, requested_by, exception_id, requested_at, expires_at,
       delivered_at, deliveries, acknowledged_at, acknowledged_by, outcome, outcome_detail, fault_exception_id"""

INSERT_SQL = text(f"""
INSERT INTO gate_commands (tenant_id, id, lane_id, command, reason, requested_by, exception_id, requested_at,
                           expires_at)
VALUES (:tenant_id, :id, :lane_id, :command, :reason, :requested_by, :exception_id, :requested_at, :expires_at)
RETURNING {COLUMNS}
""")

# Oldest first is the caller's job: an UPDATE's RETURNING comes in no particular order.
DELIVER_SQL = text(f"""
UPDATE gate_commands
SET delivered_at = coalesce(delivered_at, :now), deliveries = deliveries + 1
WHERE tenant_id = :tenant_id AND lane_id = :lane_id AND requested_at >= :since
  AND acknowledged_at IS NULL AND expires_at > :now
RETURNING {COLUMNS}
""")

# The command a gate acknowledges, with its lane's facility (where a failed open's gate_fault goes), locked until the
# acknowledgement's transaction ends: two acknowledgements at once take turns, and the second sees the first.
LOCK_SQL = text("""
SELECT c.*, l.facility_id
FROM gate_commands c
JOIN lanes l ON l.tenant_id = c.tenant_id AND l.id = c.lane_id
WHERE c.tenant_id = :tenant_id AND c.lane_id = :lane_id AND c.id = :id
FOR UPDATE OF c
""")

ACKNOWLEDGE_SQL = text(f"""
UPDATE gate_commands
SET acknowledged_at = :at, acknowledged_by = :connector_id, outcome = :outcome,
    outcome_detail = CAST(:detail AS jsonb), fault_exception_id = :fault_exception_id,
    delivered_at = coalesce(delivered_at, :at)
WHERE tenant_id = :tenant_id AND id = :id AND acknowledged_at IS NULL
RETURNING {COLUMNS}
""")

OF_EXCEPTIONS_SQL = text(f"""
SELECT {COLUMNS} FROM gate_commands
WHERE tenant_id = :tenant_id AND exception_id = ANY(CAST(:ids AS uuid[]))
""")


async def insert_command(session: AsyncSession, values: Mapping[str, Any]) -> Row:
    return (await session.execute(INSERT_SQL, dict(values))).mappings().one()


async def deliver(
    session: AsyncSession, tenant_id: uuid.UUID, lane_id: uuid.UUID, *, now: datetime, since: datetime
) -> list[Row]:
    """The lane's live commands, marked delivered (first delivery kept, deliveries counted)."""
    params = {"tenant_id": tenant_id, "lane_id": lane_id, "now": now, "since": since}
    return list((await session.execute(DELIVER_SQL, params)).mappings().all())


async def lock_command(
    session: AsyncSession, tenant_id: uuid.UUID, lane_id: uuid.UUID, command_id: uuid.UUID
) -> Row | None:
    params = {"tenant_id": tenant_id, "lane_id": lane_id, "id": command_id}
    return (await session.execute(LOCK_SQL, params)).mappings().first()


async def acknowledge(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    command_id: uuid.UUID,
    *,
    at: datetime,
    outcome: str,
    detail: str,
    connector_id: uuid.UUID | None,
    fault_exception_id: uuid.UUID | None,
) -> Row:
    """`detail` is JSON text. The command must be locked and not yet acknowledged."""
    params = {
        "tenant_id": tenant_id,
        "id": command_id,
        "at": at,
        "outcome": outcome,
        "detail": detail,
        "connector_id": connector_id,
        "fault_exception_id": fault_exception_id,
    }
    return (await session.execute(ACKNOWLEDGE_SQL, params)).mappings().one()


async def of_exceptions(session: AsyncSession, tenant_id: uuid.UUID, exception_ids: Sequence[uuid.UUID]) -> list[Row]:
    """The commands the exceptions' resolutions sent (at most one each)."""
    if not exception_ids:
        return []
    params = {"tenant_id": tenant_id, "ids": list(exception_ids)}
    return list((await session.execute(OF_EXCEPTIONS_SQL, params)).mappings().all())
