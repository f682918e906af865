"""Live messages a use case stages on its session, published to Redis only once the transaction commits.

A use case calls `stage(session, channel_kind, items)`; after the commit, the publisher registered for that kind
sends them with the process's Redis client (the job pool, which the API and the worker both hold). A rollback
discards them. Publishers never raise for Redis being down: the rows are committed, the live view just misses
them (subscribers re-read after reconnecting)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from hub import jobs

logger = logging.getLogger("parkhub.live")

Publisher = Callable[[aioredis.Redis, Sequence[Any]], Awaitable[None]]
_publishers: dict[str, Publisher] = {}
# Publishes still running, kept referenced so the loop does not drop them half-way.
_publishing: set[asyncio.Task[None]] = set()


OCCUPANCY_CHANGES = "parkhub.live.occupancy_changes"


def register(kind: str, publisher: Publisher) -> None:
    """`publisher(redis, items)` sends what was staged under `kind` (the key on the session's info)."""
    _publishers[kind] = publisher


def stage(session: AsyncSession | Session, kind: str, items: Sequence[Any]) -> None:
    if kind not in _publishers:
        raise KeyError(f"no publisher registered for {kind!r}")
    session.info.setdefault(kind, []).extend(items)


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    _publish([(kind, session.info.pop(kind)) for kind in _publishers if session.info.get(kind)])


def publish_committed(kind: str, items: Sequence[Any]) -> None:
    """Publish `items` of work already committed outside a Session (a `Database.driver_transaction`), as a
    Session's commit publishes what was staged on it."""
    if kind not in _publishers:
        raise KeyError(f"no publisher registered for {kind!r}")
    if items:
        _publish([(kind, items)])


def _publish(staged: Sequence[tuple[str, Sequence[Any]]]) -> None:
    if not staged:
        return
    try:
        redis = jobs.get_job_pool()
    except jobs.JobPoolNotSet:
        logger.warning("live: no Redis client; %s not published", ", ".join(kind for kind, _ in staged))
        return
    loop = asyncio.get_running_loop()
    for kind, items in staged:
        task = loop.create_task(_publishers[kind](redis, items))
        _publishing.add(task)
        task.add_done_callback(_publishing.discard)


@event.listens_for(Session, "after_rollback")
def _discard_after_rollback(session: Session) -> None:
    for kind in _publishers:
        session.info.pop(kind, None)


async def drain() -> None:
    """Wait for the publishes still running (shutdown; tests)."""
    while _publishing:
        await asyncio.gather(*list(_publishing), return_exceptions=True)
