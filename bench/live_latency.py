"""Event-to-subscriber latency: from the moment a sensor's webhook is sent to the moment a live subscriber
hears that its space changed.

One graphql-transport-ws client subscribes to `occupancyChanged` for the whole bench operator (an operator
staff token in `connection_init`) and waits until a probe published straight to Redis reaches it, so the
subscription is known to be live. Then single signed events go out at a steady rate, each to a space of its
own, each the opposite of that space's current status so that every event is a visible change. A change's
latency is its receipt time minus the send time of the event for the same space. The path crosses the API
(accept and commit), Redis (the job), the worker (apply, commit, publish), Redis pub/sub and the API's live
broker to the socket. Events whose change never arrives are counted as missing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.ingest_load import SignedFeed, native_event
from bench.results import percentile
from connectors.signatures import sign
from hub.live import OccupancyChange, publish_occupancy_changes

SUBSCRIPTION = "subscription($operatorId: ID) { occupancyChanged(operatorId: $operatorId) { spaceCode status } }"
PROBE_CODE = "bench-probe"
CONNECT_SECONDS = 20.0
# How long to wait for the changes of the last events after sending stops.
STRAGGLER_SECONDS = 10.0


@dataclass(frozen=True)
class TimedSpace:
    """A sensor the latency run may use, and the status its space shows now."""

    device_id: str
    space_code: str
    occupied_now: bool


@dataclass
class LatencyResult:
    rate: float
    sent: int
    latencies_s: list[float] = field(default_factory=list)
    accept_latencies_s: list[float] = field(default_factory=list)
    failed_posts: int = 0
    missing: int = 0

    def p(self, fraction: float, *, accept: bool = False) -> float:
        """Percentile in milliseconds, of event-to-subscriber latency or (`accept`) of the POST alone."""
        return percentile(sorted(self.accept_latencies_s if accept else self.latencies_s), fraction) * 1000


def global_id(type_name: str, row_id: uuid.UUID) -> str:
    return base64.b64encode(f"{type_name}:{row_id}".encode()).decode()


class _Socket:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, message: dict[str, object]) -> None:
        await self.connection.send(json.dumps(message))

    async def next_change(self) -> dict[str, str] | None:
        """The next `occupancyChanged` payload (None for other messages); answers pings."""
        message = json.loads(await self.connection.recv())
        if message.get("type") == "ping":
            await self.send({"type": "pong"})
            return None
        if message.get("type") == "error":
            raise RuntimeError(f"the subscription was refused: {message.get('payload')}")
        if message.get("type") != "next":
            return None
        payload = message.get("payload") or {}
        if payload.get("errors"):
            raise RuntimeError(f"the subscription failed: {payload['errors']}")
        return (payload.get("data") or {}).get("occupancyChanged")


async def _wait_until_live(socket: _Socket, redis: aioredis.Redis, tenant_id: uuid.UUID) -> None:
    probe = OccupancyChange(
        tenant_id=tenant_id,
        facility_id=uuid.uuid4(),
        space_id=uuid.uuid4(),
        space_code=PROBE_CODE,
        status="occupied",
        previous_status="vacant",
        changed_at=datetime.now(UTC),
        lon=114.05,
        lat=22.54,
    )
    async with asyncio.timeout(CONNECT_SECONDS):
        while True:
            await publish_occupancy_changes(redis, [probe])
            try:
                async with asyncio.timeout(0.25):
                    while True:
                        change = await socket.next_change()
                        if change and change.get("spaceCode") == PROBE_CODE:
                            return
            except TimeoutError:
                continue


async def measure_latency(
    *,
    base_url: str,
    ws_url: str,
    redis_url: str,
    token: str,
    tenant_id: uuid.UUID,
    feed: SignedFeed,
    spaces: list[TimedSpace],
    rate: float,
    seconds: float,
) -> LatencyResult:
    """Send min(rate * seconds, len(spaces)) events at `rate` per second and time each one's change."""
    count = min(int(rate * seconds), len(spaces))
    result = LatencyResult(rate=rate, sent=count)
    sent_at: dict[str, float] = {}
    redis = aioredis.from_url(redis_url)
    try:
        async with (
            connect(
                ws_url, subprotocols=[Subprotocol("graphql-transport-ws")], proxy=None, open_timeout=CONNECT_SECONDS
            ) as connection,
            httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30.0) as http,
        ):
            socket = _Socket(connection)
            await socket.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
            ack = json.loads(await asyncio.wait_for(connection.recv(), CONNECT_SECONDS))
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"the server did not acknowledge the socket: {ack}")
            variables = {"operatorId": global_id("Operator", tenant_id)}
            await socket.send(
                {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": variables}}
            )
            await _wait_until_live(socket, redis, tenant_id)

            async def post(space: TimedSpace) -> None:
                now = datetime.now(UTC)
                at = now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                webhook_id = f"latency-{uuid.uuid4().hex}"
                body = native_event(webhook_id, space.device_id, not space.occupied_now, at).encode()
                timestamp = int(now.timestamp())
                headers = {
                    "content-type": "application/json",
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign(feed.secret, webhook_id, timestamp, body),
                }
                started = time.perf_counter()
                sent_at[space.space_code] = started
                try:
                    response = await http.post(f"/connectors/{feed.connector_id}", content=body, headers=headers)
                except httpx.HTTPError:
                    result.failed_posts += 1
                    sent_at.pop(space.space_code, None)
                    return
                if response.status_code != 202 or response.json().get("accepted") != 1:
                    result.failed_posts += 1
                    sent_at.pop(space.space_code, None)
                    return
                result.accept_latencies_s.append(time.perf_counter() - started)

            async def send_all() -> None:
                posts = []
                begin = time.perf_counter()
                for number, space in enumerate(spaces[:count]):
                    # A fixed schedule: a slow answer never delays the next send.
                    delay = begin + number / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    posts.append(asyncio.create_task(post(space)))
                await asyncio.gather(*posts)

            async def receive_all(sending: asyncio.Task[None]) -> None:
                heard = 0
                deadline: float | None = None
                while heard < count:
                    if sending.done() and deadline is None:
                        deadline = time.perf_counter() + STRAGGLER_SECONDS
                    timeout = 0.5 if deadline is None else deadline - time.perf_counter()
                    if timeout <= 0:
                        break
                    try:
                        change = await asyncio.wait_for(socket.next_change(), timeout)
                    except TimeoutError:
                        continue
                    if change is None:
                        continue
                    started = sent_at.pop(change.get("spaceCode", ""), None)
                    if started is not None:
                        result.latencies_s.append(time.perf_counter() - started)
                        heard += 1

            sending = asyncio.create_task(send_all())
            await receive_all(sending)
            await sending
    finally:
        await redis.aclose()
    result.missing = count - result.failed_posts - len(result.latencies_s)
    return result
