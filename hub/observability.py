"""Health, readiness and Prometheus metrics.

- `GET /healthz`: the process is alive (no I/O, so a slow database never gets a healthy process killed).
- `GET /readyz`: the database and Redis answer, each within a short timeout; 503 names what failed and why.
  The worker's heartbeat age is reported but does not decide readiness: the API serves without a worker.
- `GET /metrics`: Prometheus text format. With several server processes, set PROMETHEUS_MULTIPROC_DIR
  (`parkhub serve --workers N` does) and every process's counters are summed here.

`MetricsMiddleware` is a plain ASGI middleware: it is on every request's path, and BaseHTTPMiddleware would
add a task and a stream copy per request.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from sqlalchemy import literal, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.jobs import HEARTBEAT_KEY

READINESS_TIMEOUT_SECONDS = 2.0
UNMATCHED_ROUTE = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Finer at the low end than Prometheus' default: the API's targets are tens of milliseconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "parkhub_http_requests_total", "HTTP requests by method, route template and status", ["method", "route", "status"]
)
HTTP_REQUEST_DURATION = Histogram(
    "parkhub_http_request_duration_seconds",
    "HTTP request duration by method and route template, until the response is complete",
    ["method", "route"],
    buckets=DURATION_BUCKETS,
)


# --- probes ---------------------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _failure(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    detail = str(exc) or "no detail"
    return f"{type(exc).__name__}: {detail}"


async def _check_database(request: Request) -> None:
    database = request.app.state.db
    async with database.engine.connect() as connection:
        await connection.scalar(select(literal(1)))


async def _check_redis(request: Request) -> float | None:
    """PING Redis; returns the worker heartbeat's age in seconds (None when no worker has beaten lately)."""
    async with request.app.state.redis.pipeline(transaction=False) as pipeline:
        pipeline.ping()
        pipeline.get(HEARTBEAT_KEY)
        _, heartbeat = await pipeline.execute()
    if heartbeat is None:
        return None
    try:
        return round(max(0.0, time.time() - float(heartbeat)), 3)
    except ValueError:
        return None


async def _bounded(check: Callable[[], Awaitable[Any]], limit_seconds: float) -> tuple[Any, str | None]:
    try:
        async with asyncio.timeout(limit_seconds):
            return await check(), None
    except Exception as exc:  # any failure means not ready; the reason goes in the answer
        return None, _failure(exc, limit_seconds)


async def readyz(request: Request) -> Response:
    timeout = READINESS_TIMEOUT_SECONDS
    (_, database_error), (heartbeat_age, redis_error) = await asyncio.gather(
        _bounded(lambda: _check_database(request), timeout),
        _bounded(lambda: _check_redis(request), timeout),
    )
    body: dict[str, Any] = {
        "status": "ready",
        "database": "ok" if database_error is None else "failed",
        "redis": "ok" if redis_error is None else "failed",
        "worker_heartbeat_age_seconds": heartbeat_age,
    }
    failures = {name: error for name, error in (("database", database_error), ("redis", redis_error)) if error}
    if failures:
        body["status"] = "unavailable"
        body["failures"] = failures
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)


def _metrics_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


async def metrics(request: Request) -> Response:
    return Response(generate_latest(_metrics_registry()), media_type=CONTENT_TYPE_LATEST)


routes: list[Route] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]


# --- request metrics ----------------------------------------------------------------------------


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/connectors/{connector_id}`), never the raw path, so the number
    of label values stays bounded. Routes inside a Mount get the mount's path in front of theirs."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return UNMATCHED_ROUTE
    root_path: str = scope.get("root_path", "")
    mount_prefix = root_path[len(scope.get("app_root_path", root_path)) :]
    if isinstance(route, Mount):
        # A Mount's own match is already part of root_path.
        return mount_prefix or path
    return mount_prefix + path


class MetricsMiddleware:
    """Counts requests and times them by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Label children resolved once per label set: `.labels()` takes a lock and hashes every time.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        key = (method, route_template(scope), status)
        series = self._series.get(key)
        if series is None:
            series = (
                HTTP_REQUESTS.labels(method=method, route=key[1], status=str(status)),
                HTTP_REQUEST_DURATION.labels(method=method, route=key[1]),
            )
            self._series[key] = series
        counter, histogram = series
        counter.inc()
        histogram.observe(seconds)
