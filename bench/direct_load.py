"""The same search straight through asyncpg: the database's limit for find-a-space on this machine.

Each of the connections logs in as the application role, takes the anonymous scope once for the session
(so row-level security applies exactly as it does to the API's anonymous searches), and then runs the
API's own statement (`hub.supply.repository.spaces_near_direct`) back to back at random points, one round
trip per search, for the given time."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg

from bench.points import random_search_point
from bench.results import LoadResult, percentile
from hub.config import asyncpg_dsn
from hub.db import SERVER_SETTINGS
from hub.supply.repository import spaces_near_direct

RADIUS_M = 500.0
FIRST = 20


async def _open(app_database_url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(asyncpg_dsn(app_database_url), server_settings=SERVER_SETTINGS, timeout=10)
    # Session-level on purpose: these connections exist only for this measurement.
    await conn.execute("SELECT set_config('app.role', 'anonymous', false)")
    return conn


async def _searcher(
    conn: asyncpg.Connection, rng: random.Random, deadline: float, latencies: list[float], found: list[int]
) -> int:
    errors = 0
    while time.perf_counter() < deadline:
        lon, lat = random_search_point(rng)
        started = time.perf_counter()
        try:
            rows = await spaces_near_direct(conn, lon=lon, lat=lat, radius_m=RADIUS_M, first=FIRST)
        except asyncpg.PostgresError:
            errors += 1
            continue
        latencies.append(time.perf_counter() - started)
        found.append(len(rows))
    return errors


async def run_direct(app_database_url: str, *, connections: int, seconds: float, seed: int = 1) -> LoadResult:
    pool = [await _open(app_database_url) for _ in range(connections)]
    try:
        latencies: list[float] = []
        found: list[int] = []
        started = time.perf_counter()
        deadline = started + seconds
        errors = await asyncio.gather(
            *(
                _searcher(conn, random.Random(seed * 1000 + index), deadline, latencies, found)
                for index, conn in enumerate(pool)
            )
        )
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(conn.close() for conn in pool), return_exceptions=True)
    latencies.sort()
    mean_found = sum(found) / len(found) if found else 0.0
    return LoadResult(
        label="direct (asyncpg)",
        connections=connections,
        seconds=elapsed,
        requests=len(latencies),
        errors=sum(errors),
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        note=f"{mean_found:.1f} spaces per search on average",
    )
