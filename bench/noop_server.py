"""The ingest benchmark's baseline: the same server stack as `parkhub serve` (uvicorn with the same loop, HTTP
parser and process count, a Starlette app) answering `POST /connectors/{id}` with 202 and doing no work.

It reads the whole body, as the real endpoint must, and answers a constant JSON body shaped like the real
answer, so the difference between the two runs is what ParkHub itself does per request: authenticate, parse,
commit to the inbox and enqueue."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.server import HOST, ROOT, ApiServer, ServerError

_ANSWER = b'{"accepted":0,"duplicates":0,"ignored":0}'


async def _accept_nothing(request: Request) -> Response:
    await request.body()
    return Response(_ANSWER, status_code=202, media_type="application/json")


async def _healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


def create_app() -> Starlette:
    """The uvicorn factory (`bench.noop_server:create_app`)."""
    return Starlette(
        routes=[
            Route("/connectors/{connector_id}", _accept_nothing, methods=["POST"]),
            Route("/healthz", _healthz, methods=["GET"]),
        ]
    )


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


class NoopServer(ApiServer):
    """The baseline as a child process, started and stopped like the API (`ApiServer`)."""

    def start(self, ready_timeout: float = 30.0) -> None:
        # The same choices `parkhub serve` makes (hub/cli.py), so only the application differs.
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.noop_server:create_app",
            "--factory",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop" if _has_module("uvloop") else "asyncio",
            "--http",
            "httptools" if _has_module("httptools") else "h11",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"the no-op server exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise ServerError(f"the no-op server was not ready within {ready_timeout:.0f} s:\n{self.log_tail()}")
