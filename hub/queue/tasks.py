"""Jobs of the exception queue:

- `notify_exceptions_raised(tenant_id, exception_ids)`: tell the operator's webhooks (`exception.raised`); queued
  after the transaction that raised them commits. Idempotent (one notification per exception).
- `sweep_held_barriers` (every 30 seconds): a `barrier_held` exception for each lane whose latest passage was held
  longer than PARKHUB_BARRIER_HELD_SECONDS (120 unless set) with no passage at that lane since; once per passage.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from arq import cron

from hub.config import get_settings
from hub.db import PLATFORM, Scope
from hub.jobs import JobContext, job, register_cron
from hub.queue import service


def barrier_held_after() -> timedelta:
    """How long a held barrier waits before it is an exception (PARKHUB_BARRIER_HELD_SECONDS, see hub.config)."""
    seconds = get_settings().barrier_held_seconds
    if seconds <= 0:
        raise ValueError(f"PARKHUB_BARRIER_HELD_SECONDS must be a positive number of seconds, got {seconds}")
    return timedelta(seconds=seconds)


@job
async def notify_exceptions_raised(ctx: JobContext, tenant_id: str, exception_ids: list[str]) -> int:
    """Returns how many exceptions it found (each notified once, however often this runs)."""
    tenant = uuid.UUID(tenant_id)
    async with ctx["db"].transaction(Scope("connector", tenant_id=tenant)) as session:
        return await service.notify_raised(session, tenant, [uuid.UUID(value) for value in exception_ids])


async def sweep_held_barriers(ctx: JobContext) -> int:
    """Returns how many barrier_held exceptions it raised."""
    async with ctx["db"].transaction(PLATFORM) as session:
        return await service.sweep_held_barriers(session, datetime.now(UTC), held_after=barrier_held_after())


register_cron(cron(sweep_held_barriers, second={15, 45}, unique=True, timeout=60))
