"""Live use cases: publishing committed occupancy changes, and deciding what a subscriber may watch."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession

import geo
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.live import after_commit
from hub.live.events import OccupancyChange, occupancy_channel
from hub.live.rules import OccupancyWatch
from hub.principal import Principal
from hub.supply import service as supply_service
from tenants import service as tenants_service

logger = logging.getLogger("parkhub.live")

# Publishing runs right after a commit on the event pipeline's path: an unreachable Redis must not hold it up.
PUBLISH_TIMEOUT_SECONDS = 2.0
# Who may watch a whole operator's changes (an operator only its own).
WHOLE_OPERATOR_WATCHERS = ("city", "platform", "operator")


async def publish(redis: aioredis.Redis, messages: Sequence[tuple[str, bytes | str]], what: str) -> None:
    """Publish committed (channel, data) messages in one round trip.

    Never raises because Redis is down or slow (or is a client of another event loop): the database already holds
    the truth, so the messages are logged as lost to live subscribers and the caller carries on."""
    if not messages:
        return
    try:
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            async with redis.pipeline(transaction=False) as pipeline:
                for channel, data in messages:
                    pipeline.publish(channel, data)
                await pipeline.execute()
    except Exception as error:
        reason = str(error) or type(error).__name__
        logger.warning("live: %d %s not published, Redis unavailable: %s", len(messages), what, reason)


async def publish_occupancy_changes(redis: aioredis.Redis, changes: Sequence[OccupancyChange]) -> None:
    """Publish committed changes, each on its tenant's channel (see `publish`)."""
    await publish(redis, [(occupancy_channel(c.tenant_id), c.to_json()) for c in changes], "occupancy change(s)")


after_commit.register(after_commit.OCCUPANCY_CHANGES, publish_occupancy_changes)


async def occupancy_watch(
    session: AsyncSession,
    principal: Principal,
    *,
    facility_id: uuid.UUID | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    operator_id: uuid.UUID | None = None,
) -> OccupancyWatch:
    """What `principal` may watch given exactly one of a facility, a bbox (west, south, east, north) or an
    operator; a typed error otherwise.

    A facility must be visible to the caller (an operator sees only its own; drivers and anonymous callers
    see every operator's public supply). A bbox is public supply, except that an operator watches only its
    own spaces in it. A whole operator is for the city and platform, and for that operator's own staff."""
    given = [
        name
        for name, value in (("facilityId", facility_id), ("bbox", bbox), ("operatorId", operator_id))
        if value is not None
    ]
    if len(given) != 1:
        raise InvalidInput(
            f"give exactly one of facilityId, bbox or operatorId (got {', '.join(given) or 'none'})",
            fields=["facilityId", "bbox", "operatorId"],
        )
    if facility_id is not None:
        rows = await supply_service.facilities_by_ids(session, principal, [facility_id])
        if not rows:
            raise NotFound("no facility with this id is visible to you", field="facilityId")
        return OccupancyWatch(tenant_id=rows[0]["tenant_id"], facility_id=facility_id)
    if bbox is not None:
        box = geo.validate_bbox(*bbox, field="bbox")
        return OccupancyWatch(tenant_id=supply_service.tenant_filter(principal), bbox=box)
    assert operator_id is not None
    if principal.kind not in WHOLE_OPERATOR_WATCHERS:
        raise Forbidden(
            "watching a whole operator is for the city and the operator's own staff; watch a facility or a bbox",
            field="operatorId",
            required_role="city",
        )
    if principal.kind == "operator":
        if operator_id != principal.tenant_id:
            raise Forbidden("an operator token watches only its own operator", field="operatorId")
        return OccupancyWatch(tenant_id=operator_id)
    if not await tenants_service.tenants_by_ids(session, [operator_id]):
        raise NotFound("no operator with this id", field="operatorId")
    return OccupancyWatch(tenant_id=operator_id)
