"""The ingest benchmark (`python -m bench --only ingest`): signed webhooks into the inbox, beside a server
that answers 202 without doing anything, and the time from a sensor's event to a live subscriber.

1. prepares the bench operator (`futian-cbd-parking` of the bench city): sensors bound to its spaces
   (registered once, kept between runs), a fresh native connector with a Standard Webhooks secret per run,
   and an operator staff token (bench/ingest_setup.py);
2. the no-op baseline (bench/noop_server.py: uvicorn + Starlette, the same process count, reads the body,
   answers a constant 202) under the same wrk load as the API;
3. `parkhub serve --workers N` with no worker: single-event webhooks, then batches of 1,000 events, each at
   64 connections for the given time, with pre-signed requests (bench/ingest_load.py). This is the accept
   path alone: what the API and the database take in durably when nothing else of ParkHub competes;
4. `parkhub worker` started, and as soon as it is up and idle, event-to-subscriber latency: single events at
   a steady rate, each a visible change of its own space, timed from the POST to the subscriber's message
   (bench/live_latency.py);
5. the runs of 3 again with the worker running, as in production: it applies what is accepted (spaces,
   history, device health, live changes) and competes with the API for the same cores, so these rows show
   what the machine takes in while also applying; the table says how fast the worker applied meanwhile.

Only a 202 whose `accepted` equals the events sent counts: the hub answers 202 after the commit, so those
events are durably in the inbox. The verdicts are given for both ways of running. After each part its
connectors are deleted, and their inbox rows with them, so the bench database does not grow from run to run,
and queued jobs for those rows are removed from Redis (REDIS_URL: a worker of another ParkHub on the same
Redis database would take the bench's jobs, and the bench's worker theirs). Nothing is asserted: the figures
depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.cpu_usage import CpuUse, cpu_between, snapshot
from bench.http_load import WrkError
from bench.ingest_load import IngestRun, SignedFeed, generate_requests, run_ingest_wrk, write_request_files
from bench.ingest_setup import (
    BENCH_OPERATOR,
    LOAD_SENSORS,
    TIMED_SENSORS,
    BenchOperator,
    WorkerProcess,
    applied_events,
    bench_backends,
    create_connector,
    delete_connectors,
    issue_staff_token,
    prepare_operator,
    purge_bench_jobs,
    queue_depth,
    timed_spaces_now,
)
from bench.live_latency import LatencyResult, measure_latency
from bench.noop_server import NoopServer
from bench.server import ApiServer, ServerError
from hub.config import Settings
from hub.errors import DomainError

TARGET_SINGLE_EVENTS_PER_S = 3_000
TARGET_BATCH_EVENTS_PER_S = 30_000
TARGET_LATENCY_P99_MS = 1_000.0
BATCH_EVENTS = 1_000
WRK_THREADS = 2
# The no-op server forgets everything, so it can cycle through a small set of requests.
NOOP_SINGLE_REQUESTS = 40_000
NOOP_BATCH_REQUESTS = 200
# The API needs a distinct request for every send: enough for the no-op's rate (which the API cannot beat),
# but at most this many times the target, which keeps the request files to a few hundred MB.
HEADROOM_OVER_TARGET = 2.5

NOOP = "no-op 202"
NO_WORKER = "ParkHub, no worker"
WITH_WORKER = "ParkHub + worker"
SHAPES = (("single", 1, TARGET_SINGLE_EVENTS_PER_S), ("batch", BATCH_EVENTS, TARGET_BATCH_EVENTS_PER_S))


@dataclass
class IngestReport:
    runs: dict[tuple[str, str], IngestRun] = field(default_factory=dict)  # (server, shape) -> run
    applied: dict[str, int] = field(default_factory=dict)  # shape -> events the worker applied during the run
    cpu: dict[tuple[str, str], CpuUse] = field(default_factory=dict)  # (server, shape) -> CPU spent in the run
    latency: LatencyResult | None = None
    other_jobs_queued: int = 0  # jobs of others in the queue when the worker started (it runs them too)
    purged: int = 0  # bench jobs removed from the queue (rows deleted with their connectors)
    problems: list[str] = field(default_factory=list)


def real_request_count(noop: IngestRun | None, target_events_per_s: int, seconds: int) -> int:
    """How many distinct requests an API run needs: its rate is at most the no-op's, and beyond
    HEADROOM_OVER_TARGET times the target the verdict no longer depends on the exact figure."""
    per_request = noop.events_per_request if noop else 1
    ceiling = HEADROOM_OVER_TARGET * target_events_per_s / per_request
    rate = min(noop.load.rate, ceiling) if noop and noop.load.rate > 0 else ceiling
    return max(WRK_THREADS * 64, math.ceil(rate * seconds * 1.2))


def _files(feed: SignedFeed, scratch: Path, *, prefix: str, count: int, events: int) -> list[Path]:
    directory = scratch / prefix
    directory.mkdir()
    requests: Iterator[bytes] = generate_requests(feed, prefix=prefix, count=count, events_per_request=events)
    return write_request_files(requests, directory, WRK_THREADS)


def _noop_runs(console: Console, report: IngestReport, scratch: Path, *, workers: int, c: int, s: int) -> None:
    server = NoopServer(workers=workers)
    try:
        console.print(
            f"Starting the no-op baseline (uvicorn + Starlette, {workers} processes) on {server.base_url} ..."
        )
        server.start()
        # Any connector id and secret do: the baseline checks nothing.
        feed = SignedFeed(server.base_url.removeprefix("http://"), uuid.uuid4(), "whsec_" + "QUJD" * 8, ("NOOP",))
        url = f"{server.base_url}/connectors/{feed.connector_id}"
        for shape, events, _ in SHAPES:
            count = NOOP_SINGLE_REQUESTS if events == 1 else NOOP_BATCH_REQUESTS
            files = _files(feed, scratch, prefix=f"noop-{shape}", count=count, events=events)
            console.print(f"{NOOP}: {shape} ({events:,} event(s) a request), {c} connections, {s} s ...")
            group = server.process.pid if server.process else None
            before = snapshot(group, None, [])
            report.runs[(NOOP, shape)] = run_ingest_wrk(
                url, files, label=NOOP, events_per_request=events, connections=c, seconds=s, expect_all_accepted=False
            )
            report.cpu[(NOOP, shape)] = cpu_between(before, snapshot(group, None, []))
    except (ServerError, WrkError) as exc:
        report.problems.append(f"no-op baseline: {exc}")
    finally:
        server.stop()


async def _accept_runs(
    console: Console,
    report: IngestReport,
    settings: Settings,
    operator: BenchOperator,
    server: ApiServer,
    worker: WorkerProcess,
    scratch: Path,
    *,
    label: str,
    connections: int,
    seconds: int,
) -> list[uuid.UUID]:
    """Singles, then batches, against the running API; returns the connectors made (the caller deletes them)."""
    host = server.base_url.removeprefix("http://")
    server_group = server.process.pid if server.process else None
    worker_group = worker.process.pid if worker.process and worker.process.poll() is None else None
    connectors: list[uuid.UUID] = []
    for shape, events, target in SHAPES:
        connector_id, secret = await create_connector(settings, operator, shape)
        connectors.append(connector_id)
        feed = SignedFeed(host, connector_id, secret, operator.load_sensors)
        count = real_request_count(report.runs.get((NOOP, shape)), target, seconds)
        console.print(f"Signing {count:,} requests of {events:,} event(s) ...")
        files = await asyncio.to_thread(
            _files, feed, scratch, prefix=f"{shape}-{uuid.uuid4().hex[:8]}", count=count, events=events
        )
        console.print(f"{label}: {shape}, {connections} connections, {seconds} s ...")
        backends = await bench_backends(settings)
        before = snapshot(server_group, worker_group, backends)
        report.runs[(label, shape)] = await asyncio.to_thread(
            run_ingest_wrk,
            f"{server.base_url}/connectors/{connector_id}",
            files,
            label=label,
            events_per_request=events,
            connections=connections,
            seconds=seconds,
        )
        backends = sorted(set(backends) | set(await bench_backends(settings)))
        report.cpu[(label, shape)] = cpu_between(before, snapshot(server_group, worker_group, backends))
        if label == WITH_WORKER:
            report.applied[shape] = await applied_events(settings, operator, connector_id)
        for path in files:
            path.unlink()
    return connectors


async def _latency_run(
    console: Console,
    report: IngestReport,
    settings: Settings,
    operator: BenchOperator,
    server: ApiServer,
    *,
    rate: float,
    seconds: int,
) -> list[uuid.UUID]:
    connector_id, secret = await create_connector(settings, operator, "latency")
    token = await asyncio.to_thread(issue_staff_token, operator)
    spaces = await timed_spaces_now(settings, operator)
    host = server.base_url.removeprefix("http://")
    console.print(f"Event-to-subscriber latency: {rate:g} events/s for {seconds} s ...")
    report.latency = await measure_latency(
        base_url=server.base_url,
        ws_url=f"ws://{host}/graphql",
        redis_url=settings.redis_url,
        token=token,
        tenant_id=operator.id,
        feed=SignedFeed(host, connector_id, secret, ()),
        spaces=spaces,
        rate=rate,
        seconds=seconds,
    )
    return [connector_id]


async def _clean_up(
    settings: Settings, report: IngestReport, operator: BenchOperator, connectors: list[uuid.UUID]
) -> None:
    await delete_connectors(settings, operator, connectors)
    report.purged += await purge_bench_jobs(settings.redis_url, operator.id)


async def _api_runs(
    console: Console,
    report: IngestReport,
    settings: Settings,
    operator: BenchOperator,
    scratch: Path,
    *,
    workers: int,
    connections: int,
    seconds: int,
    latency_rate: float,
    latency_seconds: int,
) -> None:
    server = ApiServer(workers=workers)
    worker = WorkerProcess()
    connectors: list[uuid.UUID] = []
    try:
        console.print(f"Starting the API (parkhub serve --workers {workers}) on {server.base_url} ...")
        await asyncio.to_thread(server.start)
        report.purged += await purge_bench_jobs(settings.redis_url, operator.id)  # left by an interrupted run
        connectors = await _accept_runs(
            console,
            report,
            settings,
            operator,
            server,
            worker,
            scratch,
            label=NO_WORKER,
            connections=connections,
            seconds=seconds,
        )
        # Before the worker starts: what it would find of these runs is gone, rows and jobs.
        await _clean_up(settings, report, operator, connectors)
        connectors = []

        report.other_jobs_queued = await queue_depth(settings.redis_url)
        console.print("Starting parkhub worker ...")
        await asyncio.to_thread(worker.start, settings.redis_url)
        # First, while the worker has nothing else to do.
        connectors += await _latency_run(
            console, report, settings, operator, server, rate=latency_rate, seconds=latency_seconds
        )
        connectors += await _accept_runs(
            console,
            report,
            settings,
            operator,
            server,
            worker,
            scratch,
            label=WITH_WORKER,
            connections=connections,
            seconds=seconds,
        )
    except (ServerError, WrkError, DomainError, RuntimeError, OSError) as exc:
        report.problems.append(f"ParkHub runs: {exc}")
    finally:
        await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(server.stop)
        await _clean_up(settings, report, operator, connectors)


async def run_ingest(
    console: Console,
    settings: Settings,
    *,
    workers: int,
    connections: int,
    seconds: int,
    latency_rate: float,
    latency_seconds: int,
) -> IngestReport:
    report = IngestReport()
    console.print(f"Preparing the bench operator {BENCH_OPERATOR} ({LOAD_SENSORS + TIMED_SENSORS:,} sensors) ...")
    operator = await prepare_operator(settings)
    with tempfile.TemporaryDirectory(prefix="parkhub-ingest-") as directory:
        scratch = Path(directory)
        await asyncio.to_thread(_noop_runs, console, report, scratch, workers=workers, c=connections, s=seconds)
        await _api_runs(
            console,
            report,
            settings,
            operator,
            scratch,
            workers=workers,
            connections=connections,
            seconds=seconds,
            latency_rate=latency_rate,
            latency_seconds=latency_seconds,
        )
    return report


# --- the report ---------------------------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "[green]met[/green]" if met else "[red]not met[/red]"


def ingest_table(report: IngestReport, *, seconds: int, connections: int) -> Table:
    table = Table(title=f"ingest: signed native webhooks, {connections} connections, {seconds} s a run (wrk)")
    for column in ("server", "events/req", "202s counted", "errors", "req/s", "events/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "server" else "right", no_wrap=True)
    table.add_column("worker applied", justify="right", no_wrap=True)
    for shape, _, _ in SHAPES:
        for server in (NOOP, NO_WORKER, WITH_WORKER):
            run = report.runs.get((server, shape))
            if run is None:
                continue
            applied = report.applied.get(shape) if server == WITH_WORKER else None
            table.add_row(
                server,
                f"{run.events_per_request:,}",
                f"{run.load.requests:,}",
                str(run.load.errors),
                f"{run.load.rate:,.0f}",
                f"{run.events_rate:,.0f}",
                f"{run.load.p50_ms:.1f}",
                f"{run.load.p99_ms:.1f}",
                "" if applied is None else f"{applied / run.load.seconds:,.0f}/s",
            )
    return table


def cpu_table(report: IngestReport) -> Table:
    table = Table(title="where the CPU went during each run, in µs per accepted event (read from /proc)")
    columns = ("server", "events/req", "server procs", "PostgreSQL", "worker", "ParkHub total", "everything else")
    for column in (*columns, "busy"):
        table.add_column(column, justify="left" if column == "server" else "right", no_wrap=True)
    for shape, events, _ in SHAPES:
        for server in (NOOP, NO_WORKER, WITH_WORKER):
            run, use = report.runs.get((server, shape)), report.cpu.get((server, shape))
            if run is None or use is None or run.load.requests == 0:
                continue
            per_event = 1e6 / (run.load.requests * events)
            table.add_row(
                server,
                f"{events:,}",
                f"{use.server * per_event:,.1f}",
                f"{use.postgres * per_event:,.1f}",
                f"{use.worker * per_event:,.1f}" if server == WITH_WORKER else "",
                f"{(use.server + use.postgres + use.worker) * per_event:,.1f}",
                f"{use.others * per_event:,.1f}",
                f"{use.machine_busy / use.machine_total:.0%}" if use.machine_total else "",
            )
    return table


def latency_table(result: LatencyResult) -> Table:
    table = Table(title="event-to-subscriber latency: single signed events, each a visible change of its space")
    for column in ("rate/s", "sent", "heard", "missing", "failed POSTs", "p50 ms", "p99 ms", "POST p50", "POST p99"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_row(
        f"{result.rate:g}",
        str(result.sent),
        str(len(result.latencies_s)),
        str(result.missing),
        str(result.failed_posts),
        f"{result.p(0.50):.0f}",
        f"{result.p(0.99):.0f}",
        f"{result.p(0.50, accept=True):.1f}",
        f"{result.p(0.99, accept=True):.1f}",
    )
    return table


def print_ingest_report(console: Console, report: IngestReport, *, seconds: int, connections: int) -> None:
    console.print()
    console.print(ingest_table(report, seconds=seconds, connections=connections))
    console.print(cpu_table(report))
    if report.latency is not None:
        console.print(latency_table(report.latency))
    console.print(
        f"{NOOP}: the same stack answering 202 without work. {NO_WORKER}: `parkhub serve` alone, the accept path. "
        f"{WITH_WORKER}: `parkhub worker` running beside it, applying what is accepted and competing for the same "
        "cores, as in production. 202s counted: answers after the commit whose `accepted` equals the events sent. "
        'Other programs on this machine (tests, for one) make the figures noisy: "everything else" is the rest '
        "of the machine's busy time (the load generator, Redis, other programs), spread over the same events. The "
        "worker's CPU and much of PostgreSQL's in the + worker rows is applying, not accepting."
    )
    if report.other_jobs_queued:
        console.print(f"[yellow]{report.other_jobs_queued} other job(s) were queued when the worker started[/yellow]")
    if report.purged:
        console.print(f"{report.purged} queued job(s) of the bench's deleted rows were removed from Redis")
    for (server, shape), run in report.runs.items():
        if server != NOOP and run.wrapped:  # the no-op forgets, so it cycles through its requests on purpose
            console.print(
                f"[yellow]{server}, {shape}: the pre-signed requests ran out and started over; the repeats are "
                "duplicates, counted as errors[/yellow]"
            )
        if server != NOOP and (run.rejected or run.short):
            console.print(f"{server}, {shape}: {run.rejected} non-202 answers, {run.short} 202s accepting fewer events")
    for problem in report.problems:
        console.print(f"[red]{problem}[/red]")
    for shape, _, target in SHAPES:
        noop = report.runs.get((NOOP, shape))
        parts = []
        for server in (NO_WORKER, WITH_WORKER):
            run = report.runs.get((server, shape))
            if run is None:
                parts.append(f"{server}: [red]not measured[/red]")
                continue
            ratio = f", {run.events_rate / noop.events_rate:.1%} of the no-op's" if noop and noop.events_rate else ""
            parts.append(f"{server} {run.events_rate:,.0f}/s{ratio}: {_verdict(run.events_rate >= target)}")
        console.print(f"{shape} events accepted durably (target ≥ {target:,}/s): " + "; ".join(parts))
    if report.latency is None:
        console.print("event-to-subscriber latency: [red]not measured[/red]")
    else:
        latency = report.latency
        complete = latency.sent > 0 and latency.missing == 0 and latency.failed_posts == 0
        p99 = latency.p(0.99)
        console.print(
            f"event-to-subscriber p99: {p99:.0f} ms, p50 {latency.p(0.50):.0f} ms "
            f"(target < {TARGET_LATENCY_P99_MS:,.0f} ms with every change heard: "
            f"{_verdict(complete and p99 < TARGET_LATENCY_P99_MS)})"
        )
