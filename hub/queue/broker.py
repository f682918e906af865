"""The exception queue's changes over Redis pub/sub: publishing committed changes, and the per-process broker behind
`exceptionQueueChanged` subscriptions.

The broker is hub.live's (one pattern subscription per process, bounded per-subscriber queues that drop the
oldest, reconnection with backoff), listening on `tenant:*:exceptions` and reading queue events instead of
occupancy changes. The app starts one per process (`app.state.queue_broker`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis

from hub.live import LiveBroker
from hub.live.service import publish
from hub.queue.events import QUEUE_PATTERN, QueueEvent, queue_channel

logger = logging.getLogger("parkhub.queue")

# An agent's screen needs every change; a subscriber this far behind is not reading and loses the oldest.
QUEUE_SIZE = 512


async def publish_queue_events(redis: aioredis.Redis, events: Sequence[QueueEvent]) -> None:
    """Publish committed changes, each on its tenant's channel (never raises; see hub.live.publish)."""
    await publish(redis, [(queue_channel(e.tenant_id), e.to_json()) for e in events], "exception queue change(s)")


def route_queue_event(channel: str, data: bytes | str) -> tuple[uuid.UUID, QueueEvent] | None:
    try:
        event = QueueEvent.from_json(data)
    except ValueError as error:
        logger.warning("queue: ignoring a message on %r that is not a queue event: %s", channel, error)
        return None
    if channel != queue_channel(event.tenant_id):
        # An event travels on its own tenant's channel; passing on any other could show one operator's queue to
        # another's agents.
        logger.warning("queue: ignoring an event of tenant %s published on %r", event.tenant_id, channel)
        return None
    return event.tenant_id, event


class QueueBroker(LiveBroker):
    """hub.live's broker on the exception queue's channels."""

    def __init__(self, redis: aioredis.Redis, *, queue_size: int = QUEUE_SIZE) -> None:
        super().__init__(redis, pattern=QUEUE_PATTERN, route=route_queue_event, queue_size=queue_size)
