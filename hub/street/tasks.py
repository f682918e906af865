"""Jobs of on-street sessions. Each receives ids, reloads rows and is idempotent (sightings are decided once,
sessions end once, flags are raised once per occupancy):

- `reconcile_curb_spaces(tenant_id, space_ids, zone_ids=None)`: bring curb bays' sessions and flags up to date
  with their cameras and sensors, and decide the sightings of the zones' own cameras (`zone_ids`, and the bays'
  zones); the driver's start enqueues it for its bay, and the inbox for the curb bays whose devices spoke and the
  curb zones whose zone cameras read plates (in `apply_inbox_events`' transaction, so it runs after they are
  committed).
- `sweep_street_sessions` (every minute): expiry, whatever a lost job left undone, and every enforcement flag.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from arq import cron

from hub.config import get_settings
from hub.db import PLATFORM, Scope
from hub.jobs import JobContext, job, register_cron
from hub.street import reconcile


def _stale_after() -> timedelta:
    return timedelta(seconds=get_settings().status_stale_after_seconds)


@job
async def reconcile_curb_spaces(
    ctx: JobContext, tenant_id: str, space_ids: list[str], zone_ids: list[str] | None = None
) -> int:
    """Returns how many sessions it started or ended."""
    tenant = uuid.UUID(tenant_id)
    async with ctx["db"].transaction(Scope("connector", tenant_id=tenant)) as session:
        done = await reconcile.reconcile_bays(
            session,
            tenant,
            [uuid.UUID(space_id) for space_id in space_ids],
            datetime.now(UTC),
            _stale_after(),
            zone_ids=[uuid.UUID(zone_id) for zone_id in zone_ids or []],
        )
    return done.started + done.ended


async def sweep_street_sessions(ctx: JobContext) -> int:
    """Returns how many sessions it started, ended or expired and flags it raised or resolved."""
    async with ctx["db"].transaction(PLATFORM) as session:
        done = await reconcile.sweep(session, datetime.now(UTC), _stale_after())
    return done.started + done.ended + done.expired + done.flags_raised + done.flags_resolved


register_cron(cron(sweep_street_sessions, second=50, unique=True, timeout=120))
