"""Health, readiness and metrics, through a small Starlette app carrying the real routes and middleware."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from hub import observability
from hub.config import Settings
from hub.db import Database, make_engine
from hub.jobs import HEARTBEAT_KEY


async def show_item(request: Request) -> Response:
    return PlainTextResponse(request.path_params["item_id"])


async def explode(request: Request) -> Response:
    raise RuntimeError("boom")


def build_app(database: Database, redis_client: aioredis.Redis) -> Starlette:
    app = Starlette(
        routes=[
            *observability.routes,
            Route("/items/{item_id}", show_item),
            Route("/explode", explode),
            Mount("/api", routes=[Route("/items/{item_id}", show_item)]),
        ],
        middleware=[Middleware(observability.MetricsMiddleware)],
    )
    app.state.db = database
    app.state.redis = redis_client
    return app


def client_for(app: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://hub.test")


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def unreachable_redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(f"redis://127.0.0.1:{closed_port()}/0")
    yield client
    await client.aclose()


@pytest.fixture
async def unreachable_database(settings: Settings) -> AsyncIterator[Database]:
    database = Database(make_engine(f"postgresql://nobody:x@127.0.0.1:{closed_port()}/nothing", settings, pool_size=1))
    yield database
    await database.dispose()


async def test_healthz_answers_without_touching_anything(
    unreachable_database: Database, unreachable_redis: aioredis.Redis
) -> None:
    async with client_for(build_app(unreachable_database, unreachable_redis)) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_database_redis_and_worker_heartbeat(db: Database, redis: aioredis.Redis) -> None:
    await redis.set(HEARTBEAT_KEY, repr(time.time() - 12))
    async with client_for(build_app(db, redis)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["redis"]) == ("ready", "ok", "ok")
    assert 12 <= body["worker_heartbeat_age_seconds"] < 3600


async def test_readyz_without_a_worker_is_still_ready(db: Database, redis: aioredis.Redis) -> None:
    await redis.delete(HEARTBEAT_KEY)
    async with client_for(build_app(db, redis)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["worker_heartbeat_age_seconds"] is None


async def test_readyz_names_unreachable_redis(db: Database, unreachable_redis: aioredis.Redis) -> None:
    async with client_for(build_app(db, unreachable_redis)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["redis"] == "failed"
    assert set(body["failures"]) == {"redis"}
    assert "Connection" in body["failures"]["redis"]


async def test_readyz_names_unreachable_database(unreachable_database: Database, redis: aioredis.Redis) -> None:
    async with client_for(build_app(unreachable_database, redis)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert (body["database"], body["redis"]) == ("failed", "ok")
    assert set(body["failures"]) == {"database"}


async def test_readyz_gives_up_on_a_redis_that_never_answers(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept the connection, read, never reply

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
    monkeypatch.setattr(observability, "READINESS_TIMEOUT_SECONDS", 0.2)
    try:
        async with client_for(build_app(db, silent)) as client:
            response = await client.get("/readyz")
    finally:
        await silent.aclose()
        server.close()
    assert response.status_code == 503
    assert response.json()["failures"] == {"redis": "no answer within 0.2s"}


def _requests(route: str, status: str, method: str = "GET") -> float:
    value = REGISTRY.get_sample_value(
        "parkhub_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return value or 0.0


def _timed(route: str, method: str = "GET") -> float:
    value = REGISTRY.get_sample_value("parkhub_http_request_duration_seconds_count", {"method": method, "route": route})
    return value or 0.0


async def test_requests_are_counted_by_route_template_not_raw_path(db: Database, redis: aioredis.Redis) -> None:
    before = {
        "items": _requests("/items/{item_id}", "200"),
        "mounted": _requests("/api/items/{item_id}", "200"),
        "unmatched": _requests(observability.UNMATCHED_ROUTE, "404"),
        "error": _requests("/explode", "500"),
        "timed": _timed("/items/{item_id}"),
    }
    async with client_for(build_app(db, redis)) as client:
        for item in ("a", "b", "c"):
            assert (await client.get(f"/items/{item}")).status_code == 200
        assert (await client.get("/api/items/z")).status_code == 200
        assert (await client.get("/no/such/page")).status_code == 404
        assert (await client.get("/explode")).status_code == 500
        exposition = (await client.get("/metrics")).text

    assert _requests("/items/{item_id}", "200") - before["items"] == 3
    assert _requests("/api/items/{item_id}", "200") - before["mounted"] == 1
    assert _requests(observability.UNMATCHED_ROUTE, "404") - before["unmatched"] == 1
    assert _requests("/explode", "500") - before["error"] == 1
    assert _timed("/items/{item_id}") - before["timed"] == 3
    assert 'route="/items/a"' not in exposition
    assert "parkhub_http_requests_total{" in exposition
    assert "parkhub_http_request_duration_seconds_bucket{" in exposition


async def test_unknown_methods_share_one_label(db: Database, redis: aioredis.Redis) -> None:
    before = _requests("/items/{item_id}", "405", method="OTHER")
    async with client_for(build_app(db, redis)) as client:
        await client.request("BREW", "/items/x")
        await client.request("WHATEVER", "/items/y")
    assert _requests("/items/{item_id}", "405", method="OTHER") - before == 2
