"""The ASGI application: GraphQL, OAuth token endpoint and JWKS, health, readiness and metrics."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from arq import create_pool
from arq.connections import RedisSettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.http import routes as connector_routes
from connectors.lanes_http import routes as lane_routes
from hub import jobs, oauth, observability
from hub.auth import KeyStore
from hub.config import Settings, get_settings
from hub.db import Database
from hub.lanes.gate_broker import GateCommandBroker
from hub.live import LiveBroker, after_commit
from hub.notify.broker import NotificationBroker
from hub.payments import providers
from hub.queue.broker import QueueBroker
from schema.http import GraphQLEndpoint


class BodySizeLimit:
    """Refuses request bodies over the configured size with 413 before anything parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = {
            "error": "request_too_large",
            "error_description": f"request bodies are limited to {self.max_bytes} bytes",
        }
        await JSONResponse(body, status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        providers.check_configured(settings)
        db = Database.from_settings(settings)
        redis = aioredis.from_url(settings.redis_url)
        keystore = KeyStore(settings)
        await keystore.load(db)
        pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
        jobs.set_job_pool(pool)
        app.state.settings = settings
        app.state.db = db
        app.state.redis = redis
        app.state.keystore = keystore
        app.state.arq = pool
        # One Redis pattern subscription per process feeds every live GraphQL subscription it serves.
        live = LiveBroker(redis)
        await live.start()
        app.state.live = live
        # Likewise for drivers' notifications and agents' exception queues.
        app.state.notify_broker = NotificationBroker(redis)
        await app.state.notify_broker.start()
        app.state.queue_broker = QueueBroker(redis)
        await app.state.queue_broker.start()
        # And for gates waiting for a command (GET /lanes/{id}/commands).
        app.state.gate_broker = GateCommandBroker(redis)
        await app.state.gate_broker.start()
        # Everything built so far (schema, modules, pools) lives as long as the process: moved out of the
        # collector's sight, full collections stop re-scanning it, which otherwise shows up as latency spikes.
        gc.freeze()
        try:
            yield
        finally:
            await live.stop()  # ends open subscriptions before their Redis goes away
            await app.state.notify_broker.stop()
            await app.state.queue_broker.stop()
            await app.state.gate_broker.stop()  # gates still waiting poll for the rest of their wait
            # Notifications and queue changes committed just before shutdown still reach their subscribers.
            await after_commit.drain()
            await jobs.drain_dispatches()  # jobs committed just before shutdown still reach Redis
            jobs.set_job_pool(None)
            await pool.aclose()
            await redis.aclose()
            await db.dispose()

    graphql = GraphQLEndpoint(production=settings.production)
    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),  # subscriptions (graphql-transport-ws)
        *oauth.routes,
        *connector_routes,
        *lane_routes,
        *observability.routes,
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(observability.MetricsMiddleware),
            Middleware(BodySizeLimit, max_bytes=settings.max_request_bytes),
        ],
    )
