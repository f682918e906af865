"""Lane exceptions: what the machines cannot settle goes into the facility's queue for a remote agent (hub.queue)
as an open exception with the first line of its audit trail; agents' actions add lines. Raised by lane decisions
(hub.lanes.service), gates' fault reports and acknowledgements (hub.lanes.gates), the queue's barrier-held sweep and
the on-street tasks, each in its caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import Database, Scope, driver_of
from hub.errors import InvalidInput, NotFound
from hub.lanes import repository
from hub.lanes.models import EXCEPTION_KINDS
from hub.lanes.rules import Read

SYSTEM_ACTOR = "system"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# The exceptions a transaction raised, kept on its session for the exception queue (hub.queue), which tells the
# agents' live queues about them once the transaction commits. Recording only: nothing here reads it.
RAISED_EXCEPTIONS_KEY = "parkhub.lanes.raised_exceptions"


def note_raised_exception(session: AsyncSession, tenant_id: uuid.UUID, exception_id: uuid.UUID) -> None:
    session.info.setdefault(RAISED_EXCEPTIONS_KEY, []).append((tenant_id, exception_id))


def _reads_json(reads: Sequence[Read | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [read.as_json() if isinstance(read, Read) else dict(read) for read in reads]


async def raise_exception(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    kind: str,
    facility_id: uuid.UUID,
    lane_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    decision_id: uuid.UUID | None = None,
    plate: str | None = None,
    reads: Sequence[Read | Mapping[str, Any]] = (),
    detail: Mapping[str, Any] | None = None,
    actor: str = SYSTEM_ACTOR,
    reason: str | None = None,
    exception_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Put an exception in the facility's queue (state open, waiting from now) with the first line of its audit
    trail (`raised` by `actor`), in the caller's transaction; returns its id. For the lane decisions here, the
    queue's barrier-held sweep and the on-street task. One statement."""
    if kind not in EXCEPTION_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(EXCEPTION_KINDS)}, got {kind!r}", field="kind")
    exception_id = exception_id or uuid.uuid4()
    await repository.raise_exception(
        await driver_of(session),
        (
            tenant_id,
            exception_id,
            kind,
            facility_id,
            lane_id,
            session_id,
            decision_id,
            plate,
            _json(_reads_json(reads)),
            _json(dict(detail or {})),
            actor,
            reason,
        ),
    )
    note_raised_exception(session, tenant_id, exception_id)
    return exception_id


async def record_exception_action(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    exception_id: uuid.UUID,
    actor: str,
    action: str,
    reason: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> uuid.UUID:
    """Add a line to an exception's audit trail (who, what, why); for the exception queue's claim and resolve."""
    row = await repository.insert_action(
        await driver_of(session),
        (tenant_id, exception_id, actor, action, reason, _json(dict(detail or {}))),
    )
    return row["id"]


async def report_gate_fault(
    db: Database,
    tenant_id: uuid.UUID,
    lane_id: uuid.UUID,
    fault: str,
    detail: Any,
    at: datetime,
    connector_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A gate controller's fault at its lane, as a `gate_fault` exception in the facility's queue."""
    async with db.transaction(Scope("connector", tenant_id=tenant_id)) as session:
        lane = await repository.lane(session, lane_id, tenant_id)
        if lane is None:
            raise NotFound("no live lane with this id belongs to the operator", code="UNKNOWN_LANE", field="laneId")
        return await raise_exception(
            session,
            tenant_id=tenant_id,
            kind="gate_fault",
            facility_id=lane["facility_id"],
            lane_id=lane_id,
            detail={
                "fault": fault,
                "detail": detail,
                "at": at.isoformat(),
                "connector_id": None if connector_id is None else str(connector_id),
            },
            reason=fault,
        )
