"""The benchmark's parts that can be checked without timing anything: where it searches, how it ranks
latencies, that its direct path runs the API's search under the same public scope, and that the ingest
benchmark sends what the webhook accepts and cleans up only its own jobs."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
import shapely
from arq import create_pool

from bench.direct_load import _open, run_direct
from bench.http_load import NEAR_QUERY, WrkError, lua_script
from bench.ingest import real_request_count
from bench.ingest_load import IngestRun, SignedFeed, generate_requests, write_request_files
from bench.ingest_load import lua_script as ingest_lua_script
from bench.ingest_setup import ARQ_QUEUE_KEY, purge_bench_jobs
from bench.lanes import per_lane_for_interval, per_lane_for_rate
from bench.lanes_load import (
    REASONS,
    cameras_at,
    lane_requests,
    parse_wrk_output,
    passage_body,
    write_lane_files,
)
from bench.lanes_load import lua_script as lanes_lua_script
from bench.lanes_profile import profile_part, statement_kind
from bench.lanes_setup import (
    AUTO_PAY,
    MIX,
    MIX_SLOTS,
    PASS_HOLDER,
    VISITOR,
    WARMUP,
    WHITELISTED,
    BenchLane,
    LanesOperator,
    kind_counts,
    plan_exits,
    plate_of,
    session_values,
)
from bench.live_latency import LatencyResult
from bench.noop_server import create_app as create_noop_app
from bench.points import DENSE_DISTRICTS, random_search_point
from bench.pricing import ZONE, bench_tariff
from bench.results import LoadResult, percentile
from connectors import signatures
from connectors.events import EventKind
from connectors.formats import ConnectorFormat, InboundRequest, parse
from connectors.lanes_http import parse_passage
from connectors.plates import normalize_camera_plate
from connectors.signatures import presented_secret
from hub import jobs
from hub.access.repository import STANDING_SQL
from hub.config import Settings
from hub.ingest.service import APPLY_JOB
from hub.lanes.repository import CLOSE_SESSION_SQL, CONTEXT_SQL, INSERT_CHARGE_SQL, INSERT_DECISION_SQL
from hub.lanes.rules import DEFAULT_READ_THRESHOLD, exit_outcome, price_exit
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


# --- the lanes benchmark -----------------------------------------------------------------------------------


def _bench_operator(lots: int = 2, exits_per_lot: int = 2) -> LanesOperator:
    facilities = [uuid.uuid4() for _ in range(lots)]
    exits = tuple(
        BenchLane(uuid.uuid4(), facility, f"Exit {number}")
        for facility in facilities
        for number in range(exits_per_lot)
    )
    return LanesOperator(
        tenant_id=uuid.uuid4(),
        exit_lanes=exits,
        entry_lane_of={facility: uuid.uuid4() for facility in facilities},
        tariff_version_of={facility: uuid.uuid4() for facility in facilities},
        connector_id=uuid.uuid4(),
        secret="token-bench",
    )


def test_each_lane_sends_the_mix_in_every_round_and_every_vehicle_exits_once() -> None:
    plans = plan_exits("run", lanes=4, per_lane=3 * MIX_SLOTS)
    for lane, plan in enumerate(plans):
        assert [planned.lane for planned in plan] == [lane] * len(plan)
        for start in range(0, len(plan), MIX_SLOTS):
            kinds = Counter(planned.kind.name for planned in plan[start : start + MIX_SLOTS])
            assert kinds == {kind.name: kind.share for kind in MIX}
    plates = [planned.plate for plan in plans for planned in plan]
    assert len(plates) == len(set(plates))
    # Lanes do not all send the same kind at once, and the plan is the same every time for a label.
    assert len({tuple(planned.kind.name for planned in plan[:MIX_SLOTS]) for plan in plans}) > 1
    assert plan_exits("run", lanes=4, per_lane=3 * MIX_SLOTS) == plans
    assert kind_counts(plans)[VISITOR.name] == 4 * 3 * VISITOR.share


def test_bench_plates_are_valid_plates_of_their_kind() -> None:
    for kind in (*MIX, WARMUP):
        plates = [plate_of(kind, number) for number in (0, 1, 33, 34, 1_000_000)]
        assert all(normalize_camera_plate(plate) == (plate, True) for plate in plates)
        assert all(plate[1] == kind.letter for plate in plates)
        assert len(set(plates)) == len(plates)
    assert len({kind.letter for kind in (*MIX, WARMUP)}) == len(MIX) + 1
    with pytest.raises(ValueError):
        plate_of(VISITOR, 34**5)


def test_the_sessions_written_get_the_reason_each_vehicle_is_planned_for() -> None:
    """What the bench expects of every exit follows from the session it writes, under the lanes' own rules."""
    operator = _bench_operator()
    tariff = bench_tariff()
    now = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
    plans = plan_exits("reasons", lanes=len(operator.exit_lanes), per_lane=2 * MIX_SLOTS)
    values = session_values(operator, plans, now, tariff, ZONE)
    exits = [planned for plan in plans for planned in plan]
    assert len(values) == len(exits)
    leaving = now + timedelta(minutes=1)
    for planned, (_, facility, plate, standing, vehicle_class, entry_lane, entered_at, version, paid, paid_at) in zip(
        exits, values, strict=True
    ):
        lane = operator.exit_lanes[planned.lane]
        assert (facility, plate, standing) == (lane.facility_id, planned.plate, planned.kind.standing)
        assert (entry_lane, version) == (operator.entry_lane_of[facility], operator.tariff_version_of[facility])
        assert entered_at == now - planned.stay and planned.stay >= timedelta(minutes=20)
        if planned.kind is WHITELISTED:
            outcome = exit_outcome(has_session=True, standing="whitelisted", priced=None, paid_fen=0, auto_pay=False)
        else:
            windows = [(entered_at, leaving + timedelta(days=1))] if planned.kind is PASS_HOLDER else []
            priced = price_exit(
                tariff, ZONE, vehicle_class, entered_at, leaving, paid_fen=paid, paid_at=paid_at, pass_windows=windows
            )
            outcome = exit_outcome(
                has_session=True,
                standing=standing,
                priced=priced,
                paid_fen=paid,
                auto_pay=planned.kind is AUTO_PAY,
            )
        assert outcome.reason == planned.kind.reason, planned
        assert outcome.closes_session == planned.kind.closes


def test_a_gates_request_is_a_passage_the_lane_endpoint_reads() -> None:
    operator = _bench_operator()
    [plan, *_] = plan_exits("requests", lanes=len(operator.exit_lanes), per_lane=MIX_SLOTS)
    [(raw, reason), *rest] = lane_requests("127.0.0.1:8000", operator, [plan], "t1")[0]
    assert len(rest) == MIX_SLOTS - 1 and reason == plan[0].kind.reason
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == f"POST /lanes/{operator.exit_lanes[0].id}/reads HTTP/1.1"
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    assert int(headers["content-length"]) == len(body)
    assert presented_secret(headers) == operator.secret
    received = datetime.now(UTC)
    passage = parse_passage(body, ZONE, received, operator.connector_id)
    assert passage.passage_id == "t1-000-000000" and passage.at == received
    # Lane 0 has two cameras; both read the plate above the lanes' default threshold.
    assert [read.plate for read in passage.reads] == [plan[0].plate] * cameras_at(0) == [plan[0].plate] * 2
    assert all(read.confidence is not None and read.confidence >= DEFAULT_READ_THRESHOLD for read in passage.reads)
    assert len(parse_passage(passage_body("p", plan[1], cameras=cameras_at(1)), ZONE, received, None).reads) == 1


def test_held_vehicles_come_back_with_new_passage_ids(tmp_path: Path) -> None:
    operator = _bench_operator(lots=1, exits_per_lot=1)
    plans = plan_exits("warm", lanes=1, per_lane=3, mix=(WARMUP,))
    [requests] = lane_requests("h:1", operator, plans, "w", repeat_to=7)
    bodies = [orjson.loads(raw.split(b"\r\n\r\n", 1)[1]) for raw, _ in requests]
    assert len({body["passage_id"] for body in bodies}) == 7
    assert [body["reads"][0]["plate"] for body in bodies] == [plans[0][n % 3].plate for n in range(7)]
    [path] = write_lane_files([requests], tmp_path / "lanes")
    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    size, want = header.decode().split(" ")
    assert (rest[: int(size)], want) == requests[0]
    assert data.count(b"HTTP/1.1") == 7


def test_the_wrk_script_and_its_result_line() -> None:
    files = [Path("/tmp/lane-000.bin"), Path("/tmp/lane-001.bin")]
    closed, paced = lanes_lua_script(files, 0), lanes_lua_script(files, 750)
    assert all(json.dumps(str(path)) in closed for path in files)
    assert all(json.dumps(reason) in closed for reason in REASONS)
    assert "local interval = 0\n" in closed and "local interval = 750\n" in paced
    tallies = ",".join(str(n) for n in range(len(REASONS) + 1))  # "other" first, then REASONS in order
    line = (
        "BENCH requests=1000 duration_us=2000000 p50_us=1500 p90_us=2500 p99_us=9000 max_us=12000 bad_status=3 "
        f"mismatched=2 wrapped=0 socket_errors=1 lane_min=4 lane_max=17 tallies={tallies}\n"
    )
    run = parse_wrk_output("Running 2s test\n" + line, label="exits", connections=100)
    assert (run.load.requests, run.load.errors, run.load.rate) == (995, 6, 497.5)
    assert (run.load.p50_ms, run.p90_ms, run.load.p99_ms, run.max_ms) == (1.5, 2.5, 9.0, 12.0)
    assert (run.lane_range, run.wrapped) == ((4, 17), False)
    assert run.tallies == {REASONS[n - 1]: n for n in range(1, len(REASONS) + 1)}  # "other" was 0
    with pytest.raises(WrkError):
        parse_wrk_output("wrk: connection refused", label="exits", connections=100)


def test_plans_are_sized_for_the_busiest_lane_and_the_shortest_pause() -> None:
    # 1,000 decisions/s over 100 lanes is 10 a lane; lanes are unequal, so three times that, or half as much
    # again as the busiest lane of the calibration when it was busier still.
    assert per_lane_for_rate(1_000, 20, seconds=10, lanes=100) == 300 + MIX_SLOTS
    assert per_lane_for_rate(1_000, 40, seconds=10, lanes=100) == 600 + MIX_SLOTS
    # Paced lanes wait at least half the interval: at most 2 passages a second at 1 s, and a margin.
    assert per_lane_for_interval(1_000, seconds=10) == 22
    assert per_lane_for_interval(100_000, seconds=1) == MIX_SLOTS


def test_the_profiler_names_the_decisions_statements() -> None:
    assert statement_kind(CONTEXT_SQL) == "decision context"
    assert statement_kind(STANDING_SQL) == "standing / pass windows"
    assert statement_kind(INSERT_DECISION_SQL) == "insert decision"
    assert statement_kind(CLOSE_SESSION_SQL) == "close session"
    assert statement_kind(INSERT_CHARGE_SQL) == "insert charge"
    assert profile_part("/x/site-packages/sqlalchemy/orm/session.py", "execute") == "SQLAlchemy session, engine, pool"
    assert profile_part("/work/main/hub/pricing/rules.py", "price") == "tariff engine"
