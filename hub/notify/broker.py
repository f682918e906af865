"""Drivers' notifications over Redis pub/sub: the message, its channel, publishing, and the per-process broker
that feeds `notificationReceived` subscriptions.

Each driver has a channel, `driver:<user id>:notifications` (drivers are city-wide, so it is not a tenant's
channel). A notification is published after the transaction that wrote it commits; the database row is the
truth, so when Redis is down the message is lost to live subscribers only and `myNotifications` still has it.

Every API process holds one broker: one pattern subscription (`driver:*:notifications`) fanned out to the
subscribers of this process by driver, each with a bounded queue that drops its oldest message when the driver
reads too slowly; it is hub.live's broker with a router for notices. The app starts one per process
(`app.state.notify_broker`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from hub.live import LiveBroker, Subscriber
from hub.live.events import plain_uuid
from hub.live.service import publish

logger = logging.getLogger("parkhub.notify")

CHANNEL_PREFIX = "driver:"
CHANNEL_SUFFIX = ":notifications"
PATTERN = f"{CHANNEL_PREFIX}*{CHANNEL_SUFFIX}"
QUEUE_SIZE = 256


def driver_channel(driver_id: uuid.UUID) -> str:
    return f"{CHANNEL_PREFIX}{driver_id}{CHANNEL_SUFFIX}"


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
            object.__setattr__(self, name, plain_uuid(getattr(self, name)))
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
    """Publish committed notices, each on its driver's channel (never raises; see hub.live.publish)."""
    await publish(redis, [(driver_channel(n.driver_id), n.to_json()) for n in notices], "driver notification(s)")


def route_driver_notice(channel: str, data: bytes | str) -> tuple[uuid.UUID, DriverNotice] | None:
    try:
        notice = DriverNotice.from_json(data)
    except ValueError as error:
        logger.warning("notify: ignoring a message on %r that is not a driver notification: %s", channel, error)
        return None
    if channel != driver_channel(notice.driver_id):
        # A notice must travel on its own driver's channel; passing on any other could show one driver's
        # notification to another.
        logger.warning("notify: ignoring a notice for driver %s published on %r", notice.driver_id, channel)
        return None
    return notice.driver_id, notice


class NotificationBroker(LiveBroker):
    """hub.live's broker on drivers' channels: each subscriber is one driver's."""

    def __init__(self, redis: aioredis.Redis, *, queue_size: int = QUEUE_SIZE) -> None:
        super().__init__(redis, pattern=PATTERN, route=route_driver_notice, queue_size=queue_size)

    def notices_of(self, driver_id: uuid.UUID) -> AbstractAsyncContextManager[Subscriber]:
        """The notices of one driver from now on, until the block exits."""
        return self.subscribe(owner=driver_id)
