"""Jobs of the inbox: apply accepted events, re-enqueue what a lost job left pending, and notice devices
that went silent. Each receives ids, reloads rows and is idempotent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from arq import cron

from hub import jobs
from hub.config import get_settings
from hub.db import PLATFORM, Scope
from hub.ingest import service
from hub.jobs import JobContext, job, register_cron
from hub.live import publish_occupancy_changes

# An event still pending this long after it was accepted lost its job (Redis or a worker was down).
OVERDUE_AFTER = timedelta(minutes=1)
SWEEP_LIMIT = 50_000


def _stale_after() -> timedelta:
    return timedelta(seconds=get_settings().status_stale_after_seconds)


@job
async def apply_inbox_events(ctx: JobContext, tenant_id: str, event_ids: list[str]) -> int:
    # Two merged jobs applying payments of the same drivers at once can deadlock on their ledger accounts: the
    # loser was rolled back whole and runs again at once (hub.jobs.job) rather than wait for the inbox sweep.
    applied = await _apply(ctx, tenant_id, event_ids)
    await publish_occupancy_changes(ctx["redis"], applied.changes)
    return len(applied.changes)


async def _apply(ctx: JobContext, tenant_id: str, event_ids: list[str]) -> service.Applied:
    tenant = uuid.UUID(tenant_id)
    async with ctx["db"].transaction(Scope("connector", tenant_id=tenant)) as session:
        applied = await service.apply_events(
            session, tenant, [uuid.UUID(event_id) for event_id in event_ids], datetime.now(UTC), _stale_after()
        )
        if applied.curb_space_ids or applied.curb_zone_ids:
            # Curb sessions follow the bays' sensors and cameras and the zones' cameras (hub.street); its sweep
            # covers a lost job.
            jobs.enqueue(
                session,
                "reconcile_curb_spaces",
                tenant_id,
                [str(i) for i in applied.curb_space_ids],
                [str(i) for i in applied.curb_zone_ids],
            )
    return applied


async def sweep_inbox(ctx: JobContext) -> int:
    async with ctx["db"].transaction(PLATFORM) as session:
        return await service.requeue_overdue_events(session, datetime.now(UTC), OVERDUE_AFTER, SWEEP_LIMIT)


async def sweep_silent_devices(ctx: JobContext) -> int:
    async with ctx["db"].transaction(PLATFORM) as session:
        changes = await service.mark_silent_devices_offline(session, datetime.now(UTC), _stale_after())
    await publish_occupancy_changes(ctx["redis"], changes)
    return len(changes)


register_cron(cron(sweep_inbox, second=15, run_at_startup=True, unique=True, timeout=120))
register_cron(cron(sweep_silent_devices, second=45, unique=True, timeout=120))
