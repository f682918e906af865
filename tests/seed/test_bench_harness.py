"""The benchmark's parts that can be checked without timing anything: where it searches, how it ranks
latencies, that its direct path runs the API's search under the same public scope, and that the ingest
benchmark sends what the webhook accepts and cleans up only its own jobs."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import shapely
from arq import create_pool

from bench.direct_load import _open, run_direct
from bench.http_load import NEAR_QUERY, lua_script
from bench.ingest import real_request_count
from bench.ingest_load import IngestRun, SignedFeed, generate_requests, write_request_files
from bench.ingest_load import lua_script as ingest_lua_script
from bench.ingest_setup import ARQ_QUEUE_KEY, purge_bench_jobs
from bench.live_latency import LatencyResult
from bench.noop_server import create_app as create_noop_app
from bench.points import DENSE_DISTRICTS, random_search_point
from bench.results import LoadResult, percentile
from connectors import signatures
from connectors.events import EventKind
from connectors.formats import ConnectorFormat, InboundRequest, parse
from hub import jobs
from hub.config import Settings
from hub.ingest.service import APPLY_JOB
from hub.seed import repository
from hub.seed.demo import SERVICE_AREA_BOUNDS, DemoSpec, plan_city
from hub.supply.repository import spaces_near_direct


def test_percentile_is_nearest_rank() -> None:
    samples = [float(value) for value in range(1, 101)]
    assert percentile(samples, 0.50) == 50.0
    assert percentile(samples, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


def test_search_points_land_in_the_dense_districts() -> None:
    rng = random.Random(5)
    west, south, east, north = SERVICE_AREA_BOUNDS
    points = [random_search_point(rng) for _ in range(2_000)]
    assert all(west < lon < east and south < lat < north for lon, lat in points)
    # Every dense district gets searched, each roughly in proportion to its weight.
    nearest = [min(DENSE_DISTRICTS, key=lambda d: (d.lon - lon) ** 2 + (d.lat - lat) ** 2).code for lon, lat in points]
    assert {d.code for d in DENSE_DISTRICTS} == set(nearest)


def test_wrk_script_posts_the_public_query_for_every_dense_district() -> None:
    script = lua_script()
    assert json.dumps(NEAR_QUERY) in script
    for district in DENSE_DISTRICTS:
        assert f"{{{district.lon}, {district.lat}, {district.spread_m}, {district.weight}}}" in script


async def test_direct_path_finds_seeded_spaces_as_the_public_sees_them(settings: Settings) -> None:
    suffix = f"-b{uuid.uuid4().hex[:6]}"
    plan = plan_city(DemoSpec(spaces=400, seed=31, slug_suffix=suffix))
    owner = await repository.connect(settings.database_url)
    try:
        await repository.load_city(owner, plan, datetime.now(UTC))
        target = plan.spaces_of(plan.facilities[0], datetime.now(UTC))[0]
        point = shapely.from_wkb(target.geom)
        conn = await _open(settings.app_database_url)
        try:
            rows = await spaces_near_direct(conn, lon=point.x, lat=point.y, radius_m=500, first=20)
        finally:
            await conn.close()
        result = await run_direct(settings.app_database_url, connections=4, seconds=0.5)
    finally:
        async with owner.transaction():
            await repository.set_platform_scope(owner)
            await owner.execute("DELETE FROM tenants WHERE slug LIKE '%' || $1", suffix)
        await owner.close()
    assert target.code in {row["code"] for row in rows}
    assert rows[0]["distance_m"] < 1.0
    assert result.requests > 0 and result.errors == 0


# --- the ingest benchmark ----------------------------------------------------------------------------------


def _split(raw: bytes) -> tuple[dict[str, str], bytes]:
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("POST /connectors/")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers["Content-Length"]) == len(body)
    return {name.lower(): value for name, value in headers.items()}, body


def test_pre_signed_requests_are_what_the_webhook_accepts() -> None:
    secret = signatures.generate_secret()
    feed = SignedFeed("127.0.0.1:1", uuid.uuid4(), secret, ("DEV-A", "DEV-B", "DEV-C"))
    now = datetime.now(UTC)
    singles = list(generate_requests(feed, prefix="s", count=4, events_per_request=1, now=now))
    batches = list(generate_requests(feed, prefix="b", count=2, events_per_request=5, now=now))
    seen_ids: list[str] = []
    readings: list[tuple[str, bool]] = []
    for raw, size in [(raw, 1) for raw in singles] + [(raw, 5) for raw in batches]:
        headers, body = _split(raw)
        webhook_id = signatures.verify([secret], headers, body, now)
        request = InboundRequest(body, "application/json", {}, webhook_id, now, ZoneInfo("Asia/Shanghai"))
        events = parse(ConnectorFormat.NATIVE, request).events
        assert len(events) == size
        seen_ids += [event.source_event_id for event in events]
        readings += [(event.device_external_id or "", bool(event.occupied)) for event in events]
        assert all(event.kind == EventKind.OCCUPANCY for event in events)
    assert len(seen_ids) == len(set(seen_ids)) == 14
    # Devices take turns, and each one's next reading is the opposite of its last.
    first_batch = readings[4:9]
    assert [device for device, _ in first_batch] == ["DEV-A", "DEV-B", "DEV-C", "DEV-A", "DEV-B"]
    assert first_batch[0][1] != first_batch[3][1]


def test_request_files_deal_requests_round_robin_as_sized_records(tmp_path: Path) -> None:
    requests = [f"request-{number}".encode() * (number + 1) for number in range(5)]
    files = write_request_files(iter(requests), tmp_path, threads=2)

    def records(path: Path) -> list[bytes]:
        data, found = path.read_bytes(), []
        while data:
            size, _, rest = data.partition(b"\n")
            found.append(rest[: int(size)])
            data = rest[int(size) :]
        return found

    assert records(files[0]) == [requests[0], requests[2], requests[4]]
    assert records(files[1]) == [requests[1], requests[3]]
    script = ingest_lua_script(files, 1000)
    assert '"\\"accepted\\":1000,"' in script and all(str(path) in script for path in files)
    assert 'local expected = ""' in ingest_lua_script(files, None)


def _noop_run(rate: float, events: int) -> IngestRun:
    load = LoadResult("no-op", 64, 10.0, int(rate * 10), 0, 1.0, 2.0)
    return IngestRun(load, events, rejected=0, short=0, wrapped=False)


def test_real_runs_get_enough_requests_but_not_unbounded_files() -> None:
    # Never more than the no-op managed (the API cannot beat it), with a margin.
    assert real_request_count(_noop_run(1_000, 1), 3_000, 20) == 24_000
    # Far past the target the exact figure does not matter: capped at the headroom over it.
    assert real_request_count(_noop_run(50_000, 1), 3_000, 20) == 180_000
    assert real_request_count(_noop_run(20_000, 1_000), 30_000, 20) == 1_800
    assert real_request_count(None, 3_000, 20) == 180_000


def test_latency_figures_are_nearest_rank_in_milliseconds() -> None:
    result = LatencyResult(rate=20.0, sent=100, latencies_s=[value / 1000 for value in range(100, 0, -1)])
    assert result.p(0.50) == 50.0
    assert result.p(0.99) == 99.0


async def test_noop_server_reads_the_body_and_answers_202() -> None:
    transport = httpx.ASGITransport(app=create_noop_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://noop") as client:
        response = await client.post(f"/connectors/{uuid.uuid4()}", content=b'{"events": []}' * 1000)
    assert response.status_code == 202
    assert set(response.json()) == {"accepted", "duplicates", "ignored"}


async def test_purge_removes_only_the_bench_operators_apply_jobs(settings: Settings) -> None:
    pool = await create_pool(jobs.redis_settings(settings))
    bench_tenant, other_tenant = str(uuid.uuid4()), str(uuid.uuid4())
    bench_ids = [uuid.uuid4().hex for _ in range(3)]
    kept_id = uuid.uuid4().hex
    try:
        for job_id in bench_ids:
            await pool.enqueue_job(APPLY_JOB, bench_tenant, [str(uuid.uuid4())], _job_id=job_id)
        await pool.enqueue_job(APPLY_JOB, other_tenant, [str(uuid.uuid4())], _job_id=kept_id)
        assert await purge_bench_jobs(settings.redis_url, uuid.UUID(bench_tenant)) == 3
        queued = {job.job_id for job in await pool.queued_jobs()}
        assert kept_id in queued and not queued & set(bench_ids)
    finally:
        await pool.zrem(ARQ_QUEUE_KEY, *bench_ids, kept_id)
        await pool.aclose()
