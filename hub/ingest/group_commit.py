"""Group commit of webhook accepts. A busy sender (a LoRaWAN network server, a camera fleet) sends many small
requests to one connector at once; each used to be its own `inbox_accept` statement, and the statements' fixed
cost in PostgreSQL and on the connection was most of an accept. Now the requests for one connector (and secret)
that arrive while its previous statement is in flight wait for it and are then written together by one statement:
an idle connector's request is written at once, a busy one's a statement later. Each request still answers only
after the statement that wrote its events committed, and learns which of its events were new from the ids written
(its own, made here), so a duplicate of another request in the same statement counts as a duplicate."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from hub.db import Database
from hub.ingest import repository
from hub.ingest.repository import InboxAccept

# The most events one statement writes (a request's own batch is never split).
MAX_EVENTS_PER_STATEMENT = 5_000
COLUMNS = ("ids", "source_event_ids", "kinds", "device_external_ids", "occurred_ats", "bodies", "image_refs")


@dataclass
class _Waiting:
    columns: dict[str, list[Any]]
    done: asyncio.Future[InboxAccept]


class _Groups:
    """The requests waiting per connector, and the task writing them, of one event loop."""

    def __init__(self) -> None:
        self.waiting: dict[Hashable, list[_Waiting]] = {}
        self.writers: dict[Hashable, asyncio.Task[None]] = {}


_groups: dict[asyncio.AbstractEventLoop, _Groups] = {}


async def accept(
    db: Database,
    tenant_id: uuid.UUID,
    connector_id: uuid.UUID,
    secret: str | None,
    columns: dict[str, list[Any]],
) -> InboxAccept:
    """Write one request's events (columns as repository.accept_inbox_events, `ids` included), together with other
    requests for the same connector that wait at the same time; committed when this returns. The refusal, and the
    ids of this request's events that were written."""
    loop = asyncio.get_running_loop()
    groups = _groups.get(loop)
    if groups is None:
        groups = _groups[loop] = _Groups()
        _forget_closed_loops()
    key = (id(db), tenant_id, connector_id, secret)
    waiting = _Waiting(columns, loop.create_future())
    groups.waiting.setdefault(key, []).append(waiting)
    if key not in groups.writers:
        groups.writers[key] = loop.create_task(_write(groups, key, db, tenant_id, connector_id, secret))
    return await waiting.done


async def _write(
    groups: _Groups, key: Hashable, db: Database, tenant_id: uuid.UUID, connector_id: uuid.UUID, secret: str | None
) -> None:
    """Write what waits for `key`, a statement at a time, until nothing does. A task of its own: a request that is
    cancelled (its sender hung up) never stops the others' write."""
    try:
        while groups.waiting.get(key):
            batch = _take(groups.waiting[key])
            if len(batch) == 1:  # an idle connector's request, or one big batch: nothing to merge
                merged = batch[0].columns
            else:
                merged = {name: [value for waiting in batch for value in waiting.columns[name]] for name in COLUMNS}
            try:
                async with db.driver_connection() as conn:
                    written = await repository.accept_inbox_events(conn, tenant_id, connector_id, secret, merged)
            except Exception as error:
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.set_exception(error)
                continue
            accepted = set(written.accepted)
            for waiting in batch:
                if not waiting.done.done():
                    mine = [row_id for row_id in waiting.columns["ids"] if row_id in accepted]
                    waiting.done.set_result(InboxAccept(written.refusal, mine))
    finally:
        # No await since the loop's last check: nothing can have joined the queue meanwhile.
        groups.writers.pop(key, None)
        if not groups.waiting.get(key):
            groups.waiting.pop(key, None)


def _take(queue: list[_Waiting]) -> list[_Waiting]:
    """The oldest requests, up to MAX_EVENTS_PER_STATEMENT events (at least one request), removed from `queue`."""
    count = events = 0
    for waiting in queue:
        size = len(waiting.columns["ids"])
        if count and events + size > MAX_EVENTS_PER_STATEMENT:
            break
        count, events = count + 1, events + size
    batch = queue[:count]
    del queue[:count]
    return batch


def _forget_closed_loops() -> None:
    for loop in [loop for loop in _groups if loop.is_closed()]:
        del _groups[loop]
