"""Fixtures for notifications: a fake webhook receiver on 127.0.0.1 that checks Standard Webhooks signatures,
operators with endpoints, `notify()` called the way lane decisions will call it, and the real worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from connectors import signatures
from hub import jobs
from hub.db import Database, Scope
from hub.notify import Notification, NotifyResult, notify
from hub.notify import tasks as notify_tasks
from tests.api.conftest import Caller, Callers, app, callers, client  # noqa: F401 (fixtures shared with the API tests)
from tests.ingest.conftest import run_worker  # noqa: F401 (the real arq worker, in burst mode)
from tests.live.conftest import live_callers, live_http, live_server  # noqa: F401 (a running server, for subscriptions)

CREATE_ENDPOINT = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { secret endpoint { id url eventTypes enabled description } }
}
"""
ENDPOINTS = """
query { webhookEndpoints { id url eventTypes enabled disabledReason consecutiveFailures failingSince } }
"""
DELIVERIES = """
query($endpointId: ID!, $first: Int, $after: String, $state: WebhookDeliveryState) {
  webhookDeliveries(endpointId: $endpointId, first: $first, after: $after, state: $state) {
    edges { cursor node {
      id webhookId eventType idempotencyKey state attempts lastAttemptAt lastStatusCode lastError nextAttemptAt
      deliveredAt occurredAt data endpoint { id }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
REDELIVER = "mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { id state attempts nextAttemptAt } }"
ROTATE = """
mutation($id: ID!, $overlapHours: Int!) {
  rotateWebhookEndpointSecret(id: $id, overlapHours: $overlapHours) { secret endpoint { id } }
}
"""
DISABLE = "mutation($id: ID!) { disableWebhookEndpoint(id: $id) { id enabled disabledReason } }"
ENABLE = "mutation($id: ID!) { enableWebhookEndpoint(id: $id) { id enabled disabledReason consecutiveFailures } }"
UPDATE = """
mutation($id: ID!, $input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(id: $id, input: $input) { id url eventTypes description }
}
"""
MY_NOTIFICATIONS = """
query($first: Int, $after: String) {
  myNotifications(first: $first, after: $after) {
    edges { node { id type operatorId occurredAt subjectIds payload } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@pytest.fixture(autouse=True)
def _jobs_sent_from_this_loop(request: pytest.FixtureRequest) -> None:
    """Jobs and live publishes of the tests' own transactions go through the in-process app's Redis pool.

    The pool is one per process (hub.jobs); a running test server (tests/live) started in another thread installs
    its own, bound to that thread's event loop, which this loop cannot use."""
    if "live_server" in request.fixturenames:
        request.getfixturevalue("live_server")  # started first, so the pool set below is the one left in place
    if "app" in request.fixturenames:
        jobs.set_job_pool(request.getfixturevalue("app").state.arq)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int


@dataclass
class FakeReceiver:
    """An operator's webhook receiver: answers 401 to a request whose signature none of `secrets` verifies, 503
    to the next `fail_next` requests, 200 otherwise; keeps every request."""

    secrets: list[str] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 503
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/parkhub"

    @property
    def webhook_ids(self) -> list[str]:
        return [request.headers["webhook-id"] for request in self.received]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()  # the request line
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            try:
                signatures.verify(self.secrets, headers, body, datetime.now(UTC))
                verified = True
            except signatures.SignatureError:
                verified = False
            if not verified:
                status = 401
            elif self.fail_next > 0:
                self.fail_next -= 1
                status = self.fail_status
            else:
                status = 200
            self.received.append(Received(headers, body, verified, status))
            answer = b"bad signature" if status == 401 else b"try later" if status >= 300 else b"ok"
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {len(answer)}\r\n"
                "connection: close\r\n\r\n".encode()
                + answer
            )
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[FakeReceiver]:
    fake = FakeReceiver()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Endpoint:
    id: str  # global id
    secret: str


async def create_endpoint(
    admin: Caller, receiver: FakeReceiver, event_types: list[str], *, trust_secret: bool = True
) -> Endpoint:
    """An endpoint of the admin's operator pointing at `receiver`, which learns its secret (unless told not to)."""
    created = (await admin.data(CREATE_ENDPOINT, {"input": {"url": receiver.url, "eventTypes": event_types}}))[
        "createWebhookEndpoint"
    ]
    if trust_secret:
        receiver.secrets.append(created["secret"])
    return Endpoint(created["endpoint"]["id"], created["secret"])


async def deliveries(admin: Caller, endpoint: Endpoint, **variables: Any) -> list[dict[str, Any]]:
    page = (await admin.data(DELIVERIES, {"endpointId": endpoint.id, "first": 100, **variables}))["webhookDeliveries"]
    return [edge["node"] for edge in page["edges"]]


async def endpoint_state(admin: Caller, endpoint: Endpoint) -> dict[str, Any]:
    endpoints = (await admin.data(ENDPOINTS))["webhookEndpoints"]
    return next(item for item in endpoints if item["id"] == endpoint.id)


def a_notification(tenant_id: uuid.UUID, event_type: str = "session.entered", **fields: Any) -> Notification:
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "type": event_type,
        "idempotency_key": f"{event_type}:{uuid.uuid4()}",
        "occurred_at": datetime.now(UTC),
        "subject_ids": {"session_id": uuid.uuid4(), "lane_id": uuid.uuid4()},
        "payload": {"plate": "粤B12345"},
    }
    return Notification(**{**values, **fields})


Notify = Callable[[Notification], Awaitable[NotifyResult]]


@pytest.fixture
def send_notification(db: Database, app: Any) -> Notify:  # noqa: F811 (the app fixture sets the job pool)
    """notify() in a transaction of its own, in the tenant's connector scope, as a lane decision makes it."""

    async def send(notification: Notification) -> NotifyResult:
        async with db.transaction(Scope("connector", tenant_id=notification.tenant_id)) as session:
            return await notify(session, notification)

    return send


@pytest.fixture
def make_due(owner_db: Database) -> Callable[[list[str]], Awaitable[None]]:
    """Bring deliveries' next attempt to now, as if their backoff had passed (instead of sleeping through it)."""

    async def due(webhook_ids: list[str]) -> None:
        async with owner_db.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' "
                    "WHERE id = ANY(CAST(:ids AS uuid[])) AND state = 'pending'"
                ),
                {"ids": [uuid.UUID(webhook_id) for webhook_id in webhook_ids]},
            )

    return due


@pytest.fixture
def sweep_and_work(db: Database, run_worker: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[int]]:  # noqa: F811
    """The sweep cron (queues due deliveries), then the worker until the queue is empty."""

    async def run() -> int:
        await notify_tasks.sweep_webhook_deliveries({"db": db})
        return await run_worker()

    return run
