"""A really running API (uvicorn on a free loopback port, in a thread of its own) and a graphql-transport-ws
client for it, so live tests cross a real WebSocket, the real Redis pub/sub and the app's broker."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from hub.app import create_app
from hub.auth import ensure_signing_key
from hub.config import Settings
from hub.db import Database
from hub.live import OccupancyChange, publish_occupancy_changes
from tests.api.conftest import Callers

HOST = "127.0.0.1"
# Generous: these bound a wait for something that is expected to happen, they do not measure anything.
WAIT_SECONDS = 20.0
PROBE_EVERY_SECONDS = 0.2
PROBE_CODE = "probe"

SUBSCRIPTION = """
subscription($facilityId: ID, $bbox: BBoxInput, $operatorId: ID) {
  occupancyChanged(facilityId: $facilityId, bbox: $bbox, operatorId: $operatorId) {
    spaceId spaceCode facilityId operatorId status previousStatus changedAt location
  }
}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def global_id(type_name: str, row_id: uuid.UUID) -> str:
    return base64.b64encode(f"{type_name}:{row_id}".encode()).decode()


def occupancy_change(
    tenant_id: uuid.UUID,
    facility_id: uuid.UUID | None = None,
    *,
    code: str = "A-001",
    lon: float = 114.05,
    lat: float = 22.54,
    status: str = "occupied",
    previous: str | None = "vacant",
) -> OccupancyChange:
    return OccupancyChange(
        tenant_id=tenant_id,
        facility_id=facility_id or uuid.uuid4(),
        space_id=uuid.uuid4(),
        space_code=code,
        status=status,
        previous_status=previous,
        changed_at=datetime.now(UTC),
        lon=lon,
        lat=lat,
    )


@dataclass
class LiveServer:
    app: Starlette
    port: int

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/graphql"


@pytest.fixture(scope="session")
async def live_server(settings: Settings, owner_db: Database) -> AsyncIterator[LiveServer]:
    await ensure_signing_key(owner_db)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on"))
    # A thread with its own event loop: the server runs as it would in production, beside the tests' loop.
    thread = threading.Thread(target=server.run, name="live-test-server", daemon=True)
    thread.start()
    async with asyncio.timeout(WAIT_SECONDS):
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the live test server stopped during start-up; see its log above")
            await asyncio.sleep(0.05)
    yield LiveServer(app=app, port=port)
    server.should_exit = True
    await asyncio.to_thread(thread.join, WAIT_SECONDS)


@pytest.fixture(scope="session")
async def live_http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.http_url, trust_env=False, timeout=WAIT_SECONDS) as client:
        yield client


@pytest.fixture(scope="session")
def live_callers(live_http: httpx.AsyncClient, live_server: LiveServer, db: Database) -> Callers:
    """Callers of the running server (HTTP for set-up), with tokens signed by its key store."""
    return Callers(live_http, live_server.app, db)


class GraphQLSocket:
    """A graphql-transport-ws client connection."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._next_id = 0

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        """The next message other than a ping (answered) or a probe event."""
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                message = json.loads(await self.connection.recv())
                if message["type"] == "ping":
                    await self.send({"type": "pong"})
                    continue
                if message["type"] == "next" and _is_probe(message):
                    continue
                return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.send({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def subscribe(self, variables: dict[str, Any], query: str = SUBSCRIPTION) -> str:
        self._next_id += 1
        operation_id = str(self._next_id)
        await self.send({"id": operation_id, "type": "subscribe", "payload": {"query": query, "variables": variables}})
        return operation_id

    async def complete(self, operation_id: str) -> None:
        await self.send({"id": operation_id, "type": "complete"})

    async def error_code(self, variables: dict[str, Any]) -> str:
        """Subscribe expecting a refusal; the refusal's `extensions.code`."""
        operation_id = await self.subscribe(variables)
        message = await self.receive()
        assert message["type"] == "error", message
        assert message["id"] == operation_id
        return message["payload"][0]["extensions"]["code"]

    async def event(self, operation_id: str) -> dict[str, Any]:
        message = await self.receive()
        assert message["type"] == "next" and message["id"] == operation_id, message
        assert not message["payload"].get("errors"), message
        return message["payload"]["data"]["occupancyChanged"]

    async def wait_until_live(
        self, operation_ids: str | list[str], redis: aioredis.Redis, probe: OccupancyChange
    ) -> None:
        """Publish `probe` (its code must be PROBE_CODE) until every one of these subscriptions delivered it.

        The protocol does not acknowledge a subscribe, so this is how a test knows the server has attached
        the subscriber; later reads skip the probes still in flight."""
        assert probe.space_code == PROBE_CODE
        waiting = {operation_ids} if isinstance(operation_ids, str) else set(operation_ids)
        async with asyncio.timeout(WAIT_SECONDS):
            while waiting:
                await publish_occupancy_changes(redis, [probe])
                try:
                    async with asyncio.timeout(PROBE_EVERY_SECONDS):
                        while waiting:
                            message = json.loads(await self.connection.recv())
                            if message["type"] != "next" or not _is_probe(message):
                                raise AssertionError(f"expected a probe, got {message}")
                            waiting.discard(message["id"])
                except TimeoutError:
                    continue


def _is_probe(message: dict[str, Any]) -> bool:
    data = (message.get("payload") or {}).get("data") or {}
    return (data.get("occupancyChanged") or {}).get("spaceCode") == PROBE_CODE


@asynccontextmanager
async def graphql_socket(
    server: LiveServer, *, token: str | None = None, header_token: str | None = None, init: bool = True
) -> AsyncIterator[GraphQLSocket]:
    """A connected socket, initialised (the token in `connection_init`) and acknowledged unless init=False."""
    headers = {"Authorization": f"Bearer {header_token}"} if header_token else None
    async with connect(
        server.ws_url,
        subprotocols=[Subprotocol("graphql-transport-ws")],
        additional_headers=headers,
        proxy=None,
        open_timeout=WAIT_SECONDS,
    ) as connection:
        socket_ = GraphQLSocket(connection)
        if init:
            ack = await socket_.init({"authorization": f"Bearer {token}"} if token else None)
            assert ack["type"] == "connection_ack", ack
        yield socket_
