"""Drivers' notifications over Redis pub/sub: the message, its channel, publishing, and the per-process broker
that feeds `notificationReceived` subscriptions.

Each driver has a channel, `driver:<user id>:notifications` (drivers are city-wide, so it is not a tenant's
channel). A notification is published after the transaction that wrote it commits; the database row is the
truth, so when Redis is down the message is lost to live subscribers only and `myNotifications` still has it.

Every API process holds one broker: one pattern subscription (`driver:*:notifications`) fanned out to the
subscribers of this process by driver, each with a bounded queue that drops its oldest message when the driver
reads too slowly. The broker reconnects with backoff when Redis goes away. `app_broker()` starts it on the
first subscription unless the app's start-up made one already.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger("parkhub.notify")

CHANNEL_PREFIX = "driver:"
CHANNEL_SUFFIX = ":notifications"
PATTERN = f"{CHANNEL_PREFIX}*{CHANNEL_SUFFIX}"
# Publishing runs right after a commit on a request's path: an unreachable Redis must not hold it up.
PUBLISH_TIMEOUT_SECONDS = 2.0
QUEUE_SIZE = 256
POLL_SECONDS = 1.0
# A silent connection is asked for a PONG; no answer within as long again means it died without telling us.
IDLE_PING_SECONDS = 15.0
FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 10.0


def driver_channel(driver_id: uuid.UUID) -> str:
    return f"{CHANNEL_PREFIX}{driver_id}{CHANNEL_SUFFIX}"


def _plain(value: uuid.UUID) -> uuid.UUID:
    return value if type(value) is uuid.UUID else uuid.UUID(int=value.int)


@dataclass(frozen=True, slots=True)
class DriverNotice:
    """A notification as a driver receives it live: the same fields `myNotifications` reads from the table."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    driver_id: uuid.UUID
    type: str
    subject_ids: dict[str, str]
    payload: dict[str, Any]
    occurred_at: datetime
    created_at: datetime

    def __post_init__(self) -> None:
        # Ids read by asyncpg are its own UUID subclass; keep plain ones so they compare and serialize alike.
        for name in ("id", "tenant_id", "driver_id"):
            object.__setattr__(self, name, _plain(getattr(self, name)))
        if self.occurred_at.tzinfo is None or self.created_at.tzinfo is None:
            raise ValueError("occurred_at and created_at must be timezone-aware")

    @classmethod
    def of_row(cls, row: Any) -> DriverNotice:
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            driver_id=row["driver_id"],
            type=row["type"],
            subject_ids=dict(row["subject_ids"]),
            payload=dict(row["payload"]),
            occurred_at=row["occurred_at"],
            created_at=row["created_at"],
        )

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "tenant_id": self.tenant_id,
                "driver_id": self.driver_id,
                "type": self.type,
                "subject_ids": self.subject_ids,
                "payload": self.payload,
                "occurred_at": self.occurred_at,
                "created_at": self.created_at,
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> DriverNotice:
        """The notice in a message; ValueError for anything that is not one."""
        try:
            fields: Any = orjson.loads(data)
            subject_ids, payload = fields["subject_ids"], fields["payload"]
            if (
                not isinstance(subject_ids, dict)
                or not isinstance(payload, dict)
                or not isinstance(fields["type"], str)
            ):
                raise TypeError("type, subject_ids or payload of the wrong kind")
            return cls(
                id=uuid.UUID(fields["id"]),
                tenant_id=uuid.UUID(fields["tenant_id"]),
                driver_id=uuid.UUID(fields["driver_id"]),
                type=fields["type"],
                subject_ids=subject_ids,
                payload=payload,
                occurred_at=datetime.fromisoformat(fields["occurred_at"]),
                created_at=datetime.fromisoformat(fields["created_at"]),
            )
        except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"not a driver notification: {exc!r}") from exc


async def publish_driver_notices(redis: aioredis.Redis, notices: Sequence[DriverNotice]) -> None:
    """Publish committed notices, each on its driver's channel, in one round trip. Never raises because Redis
    is down or slow: the rows are committed, so the notices are logged as lost to live subscribers."""
    if not notices:
        return
    try:
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            async with redis.pipeline(transaction=False) as pipeline:
                for notice in notices:
                    pipeline.publish(driver_channel(notice.driver_id), notice.to_json())
                await pipeline.execute()
    except (RedisError, OSError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        logger.warning("notify: %d driver notification(s) not published, Redis unavailable: %s", len(notices), reason)


class NoticeStream:
    """One subscriber's notices, as an async iterator that ends when the broker stops. `dropped` counts the
    notices lost because the reader fell more than the queue's size behind."""

    def __init__(self, max_queued: int) -> None:
        self._queue: asyncio.Queue[DriverNotice | None] = asyncio.Queue(maxsize=max_queued)
        self._closed = False
        self._ended = False
        self.dropped = 0

    def offer(self, notice: DriverNotice | None) -> None:
        if self._closed:
            return
        if notice is None:
            self._closed = True
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(notice)

    def close(self) -> None:
        self.offer(None)

    def __aiter__(self) -> NoticeStream:
        return self

    async def __anext__(self) -> DriverNotice:
        if self._ended:
            raise StopAsyncIteration
        notice = await self._queue.get()
        if notice is None:
            self._ended = True
            raise StopAsyncIteration
        return notice


class NotificationBroker:
    """This process's single listener on drivers' channels, and the subscribers it feeds (see the module)."""

    def __init__(self, redis: aioredis.Redis, *, queue_size: int = QUEUE_SIZE) -> None:
        self._redis = redis
        self._queue_size = queue_size
        self._by_driver: dict[uuid.UUID, set[NoticeStream]] = {}
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._stopped = False
        self._retry_seconds = FIRST_RETRY_SECONDS

    def start(self) -> None:
        """Start listening in the background; Redis being down delays notices, not the caller."""
        if self._task is None:
            self._stopped = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="parkhub-notify-broker")

    async def stop(self) -> None:
        """Stop listening and end every subscriber's iteration."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self._subscribed.clear()
        for group in self._by_driver.values():
            for stream in group:
                stream.close()

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    async def wait_subscribed(self) -> None:
        await self._subscribed.wait()

    @property
    def subscriber_count(self) -> int:
        return sum(len(group) for group in self._by_driver.values())

    @asynccontextmanager
    async def subscribe(self, driver_id: uuid.UUID) -> AsyncIterator[NoticeStream]:
        """The notices of one driver from now on, until the block exits."""
        driver_id = _plain(driver_id)
        stream = NoticeStream(self._queue_size)
        group = self._by_driver.setdefault(driver_id, set())
        group.add(stream)
        if self._stopped:
            stream.close()
        try:
            yield stream
        finally:
            stream.close()
            group.discard(stream)
            if not group and self._by_driver.get(driver_id) is group:
                del self._by_driver[driver_id]

    def _dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        channel_name = channel.decode() if isinstance(channel, bytes) else channel
        try:
            notice = DriverNotice.from_json(data)
        except ValueError as error:
            logger.warning(
                "notify: ignoring a message on %r that is not a driver notification: %s", channel_name, error
            )
            return
        if channel_name != driver_channel(notice.driver_id):
            # A notice must travel on its own driver's channel; passing on any other could show one driver's
            # notification to another.
            logger.warning("notify: ignoring a notice for driver %s published on %r", notice.driver_id, channel_name)
            return
        for stream in self._by_driver.get(notice.driver_id, ()):
            stream.offer(notice)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                reason = str(error) or type(error).__name__
                logger.warning("notify: Redis pub/sub unavailable (%s); retrying in %.1fs", reason, self._retry_seconds)
            except Exception:
                logger.exception("notify: the broker failed unexpectedly; retrying in %.1fs", self._retry_seconds)
            finally:
                self._subscribed.clear()
            # Jitter, so a fleet of processes does not reconnect in the same instant after an outage.
            await asyncio.sleep(self._retry_seconds * random.uniform(0.5, 1.0))
            self._retry_seconds = min(self._retry_seconds * 2, MAX_RETRY_SECONDS)

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.psubscribe(PATTERN)
            last_heard, pinged = time.monotonic(), False
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
                if message["type"] == "pmessage":
                    self._dispatch(message["channel"], message["data"])
                elif message["type"] == "psubscribe":
                    self._retry_seconds = FIRST_RETRY_SECONDS
                    self._subscribed.set()
        finally:
            self._subscribed.clear()
            with suppress(Exception):
                await pubsub.aclose()


def app_broker(state: Any) -> NotificationBroker:
    """The process's broker kept on the app's `state` (beside `state.redis`), started on first use. The app's
    start-up may create and stop it itself as `state.notify_broker`; then that one is used."""
    broker: NotificationBroker | None = getattr(state, "notify_broker", None)
    if broker is None:
        broker = NotificationBroker(state.redis)
        broker.start()
        state.notify_broker = broker
    return broker
