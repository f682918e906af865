"""The exception queue's changes over Redis pub/sub: publishing committed changes, and the per-process broker behind
`exceptionQueueChanged` subscriptions.

The broker is hub.live's (one pattern subscription per process, bounded per-subscriber queues that drop the
oldest, reconnection with backoff), listening on `tenant:*:exceptions` and reading queue events instead of
occupancy changes. `app_queue_broker()` starts it on the first subscription of a process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from hub.live import LiveBroker
from hub.queue.events import QUEUE_PATTERN, QueueEvent, queue_channel

logger = logging.getLogger("parkhub.queue")

# Publishing runs right after a commit, on a gate's or an agent's request path: an unreachable Redis must not
# hold it up.
PUBLISH_TIMEOUT_SECONDS = 2.0
# An agent's screen needs every change; a subscriber this far behind is not reading and loses the oldest.
QUEUE_SIZE = 512


async def publish_queue_events(redis: aioredis.Redis, events: Sequence[QueueEvent]) -> None:
    """Publish committed changes, each on its tenant's channel, in one round trip. Never raises: the rows are
    committed, so a change Redis did not take is logged as lost to live subscribers (the queue query has it)."""
    if not events:
        return
    try:
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            async with redis.pipeline(transaction=False) as pipeline:
                for event in events:
                    pipeline.publish(queue_channel(event.tenant_id), event.to_json())
                await pipeline.execute()
    except Exception as error:  # Redis down or slow, or a client of another event loop: never the caller's problem
        reason = str(error) or type(error).__name__
        logger.warning("queue: %d exception queue change(s) not published: %s", len(events), reason)


class QueueBroker(LiveBroker):
    """hub.live's broker on the exception queue's channels."""

    def __init__(self, redis: aioredis.Redis, *, queue_size: int = QUEUE_SIZE) -> None:
        super().__init__(redis, pattern=QUEUE_PATTERN, queue_size=queue_size)

    def _dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        channel_name = channel.decode() if isinstance(channel, bytes) else channel
        try:
            event = QueueEvent.from_json(data)
        except ValueError as error:
            logger.warning("queue: ignoring a message on %r that is not a queue event: %s", channel_name, error)
            return
        if channel_name != queue_channel(event.tenant_id):
            # An event travels on its own tenant's channel; passing on any other could show one operator's queue
            # to another's agents.
            logger.warning("queue: ignoring an event of tenant %s published on %r", event.tenant_id, channel_name)
            return
        for subscriber in (*self._by_tenant.get(event.tenant_id, ()), *self._every_tenant):
            try:
                subscriber.offer(event)  # type: ignore[arg-type]  (the live Subscriber is agnostic of the type)
            except Exception:
                logger.exception("queue: a subscriber's filter failed; the others still get the event")


async def app_queue_broker(state: Any) -> QueueBroker:
    """The process's broker, kept on the app's `state` beside `state.redis` and started on first use. The app's
    start-up may create (and stop) it itself as `state.queue_broker`; then that one is used."""
    broker: QueueBroker | None = getattr(state, "queue_broker", None)
    if broker is None:
        broker = QueueBroker(state.redis)
        state.queue_broker = broker
        await broker.start()
    return broker
