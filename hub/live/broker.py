"""The per-process live broker: one Redis pattern subscription fanned out to in-process subscribers.

Every API process holds one `LiveBroker` per kind of live message: occupancy changes (`tenant:*:occupancy`),
the exception queue (hub.queue) and drivers' notifications (hub.notify). It subscribes once to its pattern,
whichever process published, and a router reads each message and names its owner (a tenant, or a driver),
refusing a message that travels on another owner's channel. The message is offered to the owner's subscribers
and to those watching every owner, each of which keeps what its predicate accepts. Each subscriber has a bounded
queue: one that reads too slowly loses its oldest messages and never holds up the others. When Redis goes away the
broker reconnects with backoff; messages published meanwhile are lost to live subscribers only (the database
holds the truth).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from hub.live.events import OCCUPANCY_PATTERN, OccupancyChange, plain_uuid

logger = logging.getLogger("parkhub.live")

DEFAULT_QUEUE_SIZE = 1024
POLL_SECONDS = 1.0
# A connection that has been silent this long is asked for a PONG; no answer within the same time again
# means it died without telling us (a half-open TCP connection never raises by itself).
IDLE_PING_SECONDS = 15.0
FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 10.0

LIVE_SUBSCRIBERS = Gauge(
    "parkhub_live_subscribers", "Live subscribers attached to this process", multiprocess_mode="livesum"
)
LIVE_MESSAGES = Counter("parkhub_live_messages_total", "Messages received from Redis pub/sub by the live brokers")
LIVE_DROPPED = Counter(
    "parkhub_live_dropped_total", "Messages a slow live subscriber lost because its queue was full (oldest first)"
)
LIVE_RECONNECTS = Counter("parkhub_live_redis_reconnects_total", "Times a live broker lost Redis and retried")

ChangeFilter = Callable[[Any], bool]
# Reads a message (channel, data) into (its owner, the item), or None to drop it (logged by the router).
Router = Callable[[str, bytes | str], tuple[uuid.UUID, Any] | None]


def route_occupancy(channel: str, data: bytes | str) -> tuple[uuid.UUID, OccupancyChange] | None:
    try:
        change = OccupancyChange.from_json(data)
    except ValueError as error:
        logger.warning("live: ignoring a message on %r that is not an occupancy change: %s", channel, error)
        return None
    if channel.split(":")[1:2] != [str(change.tenant_id)]:
        # A change must travel on its own tenant's channel; anything else is a publisher's bug, and passing it on
        # could show one tenant's data to another's subscribers.
        logger.warning("live: ignoring a change of tenant %s published on %r", change.tenant_id, channel)
        return None
    return change.tenant_id, change


class Subscriber:
    """One consumer's view of the broker: an async iterator of the changes its filter accepts.

    Iteration ends when the broker stops. `dropped` counts the changes lost because the consumer fell
    more than the queue's size behind."""

    def __init__(self, accepts: ChangeFilter, max_queued: int) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be at least 1")
        self._accepts = accepts
        # None marks the end of the stream.
        self._queue: asyncio.Queue[OccupancyChange | None] = asyncio.Queue(maxsize=max_queued)
        self._closed = False
        self._ended = False
        self.dropped = 0

    def offer(self, change: Any) -> None:
        """Queue the message if the filter accepts it, evicting the oldest one when the queue is full."""
        if self._closed or not self._accepts(change):
            return
        self._put(change)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._put(None)

    def _put(self, item: Any) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            LIVE_DROPPED.inc()
        self._queue.put_nowait(item)

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Any:
        if self._ended:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            self._ended = True
            raise StopAsyncIteration
        return item


class LiveBroker:
    """This process's single listener on Redis pub/sub, and the subscribers it feeds (see the module's notes)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        pattern: str = OCCUPANCY_PATTERN,
        route: Router = route_occupancy,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        first_retry_seconds: float = FIRST_RETRY_SECONDS,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
    ) -> None:
        self._redis = redis
        self._pattern = pattern
        self._route = route
        self._queue_size = queue_size
        self._first_retry_seconds = first_retry_seconds
        self._max_retry_seconds = max_retry_seconds
        self._retry_seconds = first_retry_seconds
        # Subscribers that watch one owner (a tenant, a driver), by owner, and those that watch every owner: a
        # message is offered only to its owner's subscribers and the city-wide ones.
        self._by_owner: dict[uuid.UUID, set[Subscriber]] = {}
        self._every_owner: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._stopped = False

    # Life cycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening in the background. Returns at once: Redis being down delays live updates, not
        the process's start-up."""
        if self._task is None:
            self._stopped = False
            self._task = asyncio.create_task(self._run(), name="parkhub-live-broker")

    async def stop(self) -> None:
        """Stop listening and end every subscriber's iteration."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self._subscribed.clear()
        for subscriber in [*self._every_owner, *(s for group in self._by_owner.values() for s in group)]:
            subscriber.close()

    @property
    def subscribed(self) -> bool:
        """Whether the Redis pattern subscription is in place right now."""
        return self._subscribed.is_set()

    async def wait_subscribed(self) -> None:
        await self._subscribed.wait()

    @property
    def subscriber_count(self) -> int:
        return len(self._every_owner) + sum(len(group) for group in self._by_owner.values())

    # Subscribers --------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(
        self,
        accepts: ChangeFilter = lambda _message: True,
        *,
        owner: uuid.UUID | None = None,
        max_queued: int | None = None,
    ) -> AsyncIterator[Subscriber]:
        """A subscriber for the messages `accepts` lets through, detached when the block exits.

        `owner` promises that `accepts` only ever accepts that owner's messages (a tenant's, a driver's), so the
        others are not even offered. A subscriber made after `stop()` ends at once."""
        subscriber = Subscriber(accepts, max_queued or self._queue_size)
        owner = plain_uuid(owner) if owner is not None else None
        group = self._every_owner if owner is None else self._by_owner.setdefault(owner, set())
        group.add(subscriber)
        LIVE_SUBSCRIBERS.inc()
        if self._stopped:
            subscriber.close()
        try:
            yield subscriber
        finally:
            subscriber.close()
            group.discard(subscriber)
            if owner is not None and not group and self._by_owner.get(owner) is group:
                del self._by_owner[owner]
            LIVE_SUBSCRIBERS.dec()

    def _dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        routed = self._route(channel.decode() if isinstance(channel, bytes) else channel, data)
        if routed is None:
            return
        owner, item = routed
        for subscriber in (*self._by_owner.get(owner, ()), *self._every_owner):
            try:
                subscriber.offer(item)
            except Exception:
                logger.exception("live: a subscriber's filter failed; the others still get the message")

    # The Redis side -----------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                LIVE_RECONNECTS.inc()
                reason = str(error) or type(error).__name__
                logger.warning("live: Redis pub/sub unavailable (%s); retrying in %.1fs", reason, self._retry_seconds)
            except Exception:
                LIVE_RECONNECTS.inc()
                logger.exception("live: the broker failed unexpectedly; retrying in %.1fs", self._retry_seconds)
            finally:
                self._subscribed.clear()
            # Jitter, so every process of a fleet does not reconnect in the same instant after an outage.
            await asyncio.sleep(self._retry_seconds * random.uniform(0.5, 1.0))
            self._retry_seconds = min(self._retry_seconds * 2, self._max_retry_seconds)

    async def _listen(self) -> None:
        """Receive until the connection fails (which raises); never returns otherwise."""
        pubsub = self._redis.pubsub()
        try:
            await pubsub.psubscribe(self._pattern)
            last_heard = time.monotonic()
            pinged = False
            while True:
                message: dict[str, Any] | None = await pubsub.get_message(timeout=POLL_SECONDS)
                now = time.monotonic()
                if message is None:
                    silent_for = now - last_heard
                    if pinged and silent_for > 2 * IDLE_PING_SECONDS:
                        raise ConnectionError(f"no answer from Redis for {silent_for:.0f}s")
                    if not pinged and silent_for > IDLE_PING_SECONDS:
                        await pubsub.ping()
                        pinged = True
                    continue
                last_heard, pinged = now, False
                kind = message["type"]
                if kind == "pmessage":
                    LIVE_MESSAGES.inc()
                    self._dispatch(message["channel"], message["data"])
                elif kind == "psubscribe":
                    self._retry_seconds = self._first_retry_seconds
                    self._subscribed.set()
                    logger.info("live: subscribed to %s", self._pattern)
        finally:
            self._subscribed.clear()
            with suppress(Exception):
                await pubsub.aclose()
