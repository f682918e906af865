"""How the sandbox provider delivers its callbacks: signed POSTs in background tasks, retried, drainable.

A real provider calls back on its own schedule, so the sandbox does too: each batch of callbacks (the events
of one order, in the order they must arrive) is POSTed by one background task through the injected
httpx.AsyncClient, signed with Standard Webhooks headers (`webhook-id` = the event id, `webhook-timestamp` =
the moment of the attempt, `webhook-signature`). An answer other than 2xx, or no answer, is tried again after
`backoff_seconds`, doubling, up to `max_attempts` attempts; then the callback is given up (recorded in `log`),
as real providers give up, and only a query tells the truth.

Callbacks can also be held back (`hold`) and released later, newest first, which is how the sandbox delivers
out of order. `drain()` releases everything held and waits until nothing is in flight: tests call it instead
of sleeping.

`CallbackRecorder` is the other end for tests that do not need a real app: an httpx transport that keeps the
requests and answers them with the statuses it is told (200 by default).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson

from connectors import signatures


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One callback to send: its event id (the `webhook-id`), where, and the exact body."""

    event_id: str
    url: str
    body: bytes


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    event_id: str
    url: str
    attempt: int
    at: datetime
    status_code: int | None  # None: no answer (connection refused, timeout, the receiver crashed)
    outcome: str  # "delivered", "retrying" or "gave_up"
    error: str | None = None  # why there was no answer


class CallbackCourier:
    def __init__(
        self,
        client: httpx.AsyncClient,
        secret: str,
        clock: Callable[[], datetime],
        *,
        max_attempts: int = 5,
        backoff_seconds: float = 0.05,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        signatures.sign(secret, "probe", 0, b"")  # fails early on a secret that is not whsec_ + base64
        self._client = client
        self._secret = secret
        self._clock = clock
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: dict[str, list[Outgoing]] = {}
        self.log: list[DeliveryAttempt] = []

    def send(self, batch: Sequence[Outgoing], *, delay_seconds: float = 0.0) -> asyncio.Task[None] | None:
        """Deliver `batch` in order, in the background, after `delay_seconds`."""
        if not batch:
            return None
        task = asyncio.get_running_loop().create_task(self._deliver_batch(list(batch), delay_seconds))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def hold(self, key: str, batch: Iterable[Outgoing]) -> None:
        """Keep `batch` back until `release(key)` (or `drain()`)."""
        self._held.setdefault(key, []).extend(batch)

    def release(self, key: str, *, delay_seconds: float = 0.0) -> None:
        """Send what was held under `key`, newest first."""
        held = self._held.pop(key, [])
        self.send(list(reversed(held)), delay_seconds=delay_seconds)

    def release_after(self, key: str, tasks: Sequence[asyncio.Task[None] | None]) -> None:
        """Release `key` once `tasks` are done (so what they deliver arrives first)."""
        waiting = [task for task in tasks if task is not None]
        if not waiting:
            self.release(key)
            return

        async def wait_then_release() -> None:
            await asyncio.gather(*waiting, return_exceptions=True)
            self.release(key)

        task = asyncio.get_running_loop().create_task(wait_then_release())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        """Deliveries in flight or held back."""
        return len([task for task in self._tasks if not task.done()]) + sum(len(batch) for batch in self._held.values())

    async def drain(self) -> None:
        """Release everything held, then wait until every delivery has been made or given up."""
        while True:
            for key in list(self._held):
                self.release(key)
            running = [task for task in self._tasks if not task.done()]
            if not running and not self._held:
                return
            await asyncio.gather(*running, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop: held callbacks are dropped and deliveries in flight are cancelled."""
        self._held.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver_batch(self, batch: list[Outgoing], delay_seconds: float) -> None:
        if delay_seconds > 0:
            await asyncio.sleep(delay_seconds)
        for outgoing in batch:
            await self._deliver(outgoing)

    async def _deliver(self, outgoing: Outgoing) -> None:
        for attempt in range(1, self._max_attempts + 1):
            at = self._clock()
            timestamp = int(at.timestamp())
            headers = {
                "content-type": "application/json",
                "webhook-id": outgoing.event_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signatures.sign(self._secret, outgoing.event_id, timestamp, outgoing.body),
            }
            status: int | None = None
            error: str | None = None
            try:
                response = await self._client.post(outgoing.url, content=outgoing.body, headers=headers)
                status = response.status_code
            except Exception as problem:  # no answer, whatever the reason: like a real provider, try again later
                error = f"{type(problem).__name__}: {problem}"[:200]
            delivered = status is not None and 200 <= status < 300
            last = attempt == self._max_attempts
            outcome = "delivered" if delivered else ("gave_up" if last else "retrying")
            self.log.append(DeliveryAttempt(outgoing.event_id, outgoing.url, attempt, at, status, outcome, error))
            if delivered or last:
                return
            await asyncio.sleep(self._backoff * 2 ** (attempt - 1))


class CallbackRecorder:
    """An httpx transport for tests: records every request and answers with the next of `statuses`, then 200.

    `client()` gives an AsyncClient over it; `events()` the JSON bodies of the requests answered 2xx (what a
    receiver acted on), in the order they arrived."""

    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self._statuses: deque[int] = deque(statuses)
        self.requests: list[tuple[httpx.Request, bytes, int]] = []
        self.transport = httpx.MockTransport(self._answer)

    def answer_next(self, *statuses: int) -> None:
        self._statuses.extend(statuses)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport)

    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, body, status in self.requests if 200 <= status < 300]

    def _answer(self, request: httpx.Request) -> httpx.Response:
        status = self._statuses.popleft() if self._statuses else 200
        self.requests.append((request, request.read(), status))
        return httpx.Response(status, json={"received": 200 <= status < 300})
