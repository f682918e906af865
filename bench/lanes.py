"""The lanes benchmark (`python -m bench --only lanes`): exit decisions from 100 lanes at once, beside the same
server's trivial endpoint under the same load.

1. prepares the bench operator (bench/lanes_setup.py): ten lots of ten exit lanes (and entry lanes), the bench
   tariff of bench/pricing.py (weekday, weekend and night bands, tiers, day and rolling-24 h caps), a history of
   100,000 past stays with their decisions (written once) and a fresh native connector with a shared secret.
   Gates send `Authorization: Bearer <secret>`: the cheaper of the two ways a lane may authenticate (a signature
   costs an HMAC of the body and headers on top, a few microseconds);
2. starts `parkhub serve --workers N` and warms it up with held exits; the rate of the warm-up's second part
   sizes the measured runs' plans (every exit needs a vehicle of its own: the ones that leave are consumed);
3. `/healthz` with one wrk connection per lane, each sending its next request as soon as it has its answer;
4. exit decisions the same way ("back to back"): each of the 100 connections is one lane's gate (wrk with a
   thread per connection, each reading its own lane's pre-generated requests: bench/lanes_load.py), posting
   one passage after another with unique passage ids, each vehicle with an open session entered hours or days
   ago: visitors held with the amount due (65%), visitors who have just paid (5%), monthly pass holders (15%),
   whitelisted vehicles (5%) and plates with auto-pay (10%). A decision is: authenticate, read the passage,
   reconcile the reads, find the session, the plate's standing and pass windows, price the stay under its
   tariff version, look for an auto-pay authorization, write the decision (closing the session, with a pending
   charge for auto-pay) and its notification, commit, answer. This is saturation: the latency is mostly
   waiting (100 requests in flight divided by the rate);
5. the same lanes paced like gates ("paced"): each lane waits a random 0.5-1.5 times `interval_ms` (1 s by
   default: about 100 decisions/s in all, several times a real peak, when a barrier passes a car every 6-10 s),
   sends a passage and waits for its answer; then `/healthz` paced the same way. This is the latency a gate
   sees with all 100 lanes busy.

Before each exit run the sessions are written afresh, then held exits run for a moment so the server's
connections re-plan their statements (the deletes and new statistics invalidate their cached plans).

Every answer is checked: a 200 whose reason is the one its vehicle should get (`payment_due`, `paid`, `pass`,
`whitelisted`, `auto_pay`) counts; anything else is an error, and the reasons are tallied. CPU time of the
server's processes, the database's backends and wrk itself is read from /proc and getrusage; how the lanes'
connections were spread over the server's processes from /proc/net/tcp. Sessions, decisions, exceptions and
charges the runs wrote are deleted before each run and after the last.

`python -m bench.lanes_profile [exits [concurrency]]` runs the decision path in one process under cProfile:
where the Python time goes and each SQL statement's round trip.

Nothing is asserted: the figures depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.cpu_usage import cpu_between, group_cpu, snapshot
from bench.http_load import WrkError
from bench.ingest_setup import bench_backends
from bench.lanes_load import (
    LaneRun,
    healthz_request,
    lane_requests,
    request_record,
    run_lanes_wrk,
    write_lane_files,
)
from bench.lanes_setup import (
    LANES,
    MIX,
    MIX_SLOTS,
    WARMUP,
    LanesOperator,
    PlannedExit,
    database_sessions,
    ensure_history,
    ensure_lists,
    kind_counts,
    open_sessions,
    plan_exits,
    prepare_operator,
    reset_sessions,
)
from bench.server import ApiServer, ServerError
from hub.config import Settings
from hub.errors import DomainError

TARGET_P99_MS = 20.0
# The warm-up: unmeasured first (connections, statement caches, parsed tariffs), then measured to size the plans.
COLD_SECONDS = 2
CALIBRATION_SECONDS = 3
SETTLE_SECONDS = 2
WARMUP_PLATES_PER_LANE = 10
WARMUP_REQUESTS_PER_LANE = 400
# Every exit of a measured run needs a vehicle of its own. Lanes do not get equal shares of the server (the
# kernel deals the connections to the server's processes unevenly, and a lane on the less busy one is answered
# sooner), so a lane's plan is sized for SKEW times the average lane, or BUSIEST_HEADROOM times the busiest lane
# of the calibration, whichever is more. A lane that runs out anyway starts over and the run says so.
SKEW = 3.0
BUSIEST_HEADROOM = 1.5
HEALTHZ_SATURATED = "/healthz, back to back"
EXITS_SATURATED = "exits, back to back"
EXITS_PACED = "exits, paced"
HEALTHZ_PACED = "/healthz, paced"

# --- sizing the plans ---------------------------------------------------------------------------------------


def per_lane_for_rate(rate: float, busiest_lane_rate: float, seconds: float, lanes: int = LANES) -> int:
    """How many exits each lane needs for `seconds` back to back when the calibration ran at `rate` per second
    in all and its busiest lane at `busiest_lane_rate` (see SKEW), plus one round of the mix."""
    per_second = max(SKEW * rate / lanes, BUSIEST_HEADROOM * busiest_lane_rate)
    return math.ceil(per_second * seconds) + MIX_SLOTS


def per_lane_for_interval(interval_ms: float, seconds: float) -> int:
    """How many exits a paced lane can send at most: one per half interval (the shortest wait), and a margin."""
    return max(MIX_SLOTS, math.ceil(seconds * 1000 / (0.5 * interval_ms)) + 2)


# --- runs ---------------------------------------------------------------------------------------------------


@dataclass
class LanesReport:
    settings: Settings
    runs: dict[str, LaneRun] = field(default_factory=dict)
    warmup_rate: float = 0.0
    interval_ms: float = 0.0
    sessions: dict[str, int] = field(default_factory=dict)  # run -> open sessions written for it
    lists_added: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of the established TCP connections whose local port is `port`."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def connections_per_process(process_group: int | None, port: int) -> list[int]:
    """How many of the connections to `port` each process of the server's group holds, most first (the
    supervisor, which only listens, left out)."""
    inodes = _established_inodes(port)
    counts = []
    for pid in group_cpu(process_group):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        held = sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in inodes)
        if held:
            counts.append(held)
    return sorted(counts, reverse=True)


async def _measured(
    report: LanesReport, server: ApiServer, files: Sequence[Path], *, label: str, seconds: int, interval_ms: float
) -> LaneRun:
    group = server.process.pid if server.process else None
    backends = await bench_backends(report.settings)
    sessions_before = await database_sessions(report.settings)
    before = snapshot(group, None, backends)
    running = asyncio.create_task(
        asyncio.to_thread(run_lanes_wrk, server.base_url, files, label=label, seconds=seconds, interval_ms=interval_ms)
    )
    await asyncio.sleep(seconds / 2)
    spread = connections_per_process(group, server.port)
    run = await running
    backends = sorted(set(backends) | set(await bench_backends(report.settings)))
    cpu = cpu_between(before, snapshot(group, None, backends))
    await asyncio.sleep(0.6)  # backends report their sessions to the statistics within half a second
    opened = await database_sessions(report.settings) - sessions_before - 2  # less the two counting ones
    return LaneRun(**{**run.__dict__, "cpu": cpu, "connections": tuple(spread), "db_sessions": max(0, opened)})


async def _exit_run(
    console: Console,
    report: LanesReport,
    operator: LanesOperator,
    server: ApiServer,
    scratch: Path,
    *,
    label: str,
    per_lane: int,
    seconds: int,
    interval_ms: float,
) -> None:
    settings = report.settings
    plans = plan_exits(label, LANES, per_lane)
    added = await ensure_lists(settings, operator, kind_counts(plans))
    for kind, count in added.items():
        report.lists_added[kind] = report.lists_added.get(kind, 0) + count
    await reset_sessions(settings, operator)
    report.sessions[label] = await open_sessions(settings, operator, plans)
    await open_sessions(settings, operator, warmup_plans())
    directory = scratch / label.replace(" ", "-").replace(",", "")
    host = server.base_url.removeprefix("http://")
    per_lane_requests = lane_requests(host, operator, plans, f"b{int(time.time())}{len(report.runs)}")
    files = await asyncio.to_thread(write_lane_files, per_lane_requests, directory)
    # The deletes, the vacuum and the new sessions' statistics made every server connection's cached plans stale:
    # held exits back to back for a moment re-plan them, so the run measures the steady state.
    await _held_exits(report, operator, server, directory / "settle", phase=f"settle-{label}", seconds=SETTLE_SECONDS)
    console.print(f"{label}: {LANES} lanes, {report.sessions[label]:,} vehicles waiting, {seconds} s ...")
    report.runs[label] = await _measured(report, server, files, label=label, seconds=seconds, interval_ms=interval_ms)


async def _healthz_run(
    console: Console,
    report: LanesReport,
    server: ApiServer,
    scratch: Path,
    *,
    label: str,
    seconds: int,
    interval_ms: float,
) -> None:
    """GET /healthz from every lane's connection: the same server, its cheapest answer."""
    path = scratch / "healthz.bin"
    path.write_bytes(request_record(healthz_request(server.base_url.removeprefix("http://")), ""))
    console.print(f"{label}: {LANES} connections, {seconds} s ...")
    report.runs[label] = await _measured(
        report, server, [path] * LANES, label=label, seconds=seconds, interval_ms=interval_ms
    )


def warmup_plans() -> list[list[PlannedExit]]:
    """The warm-up's vehicles: WARMUP_PLATES_PER_LANE held visitors at each lane."""
    return plan_exits("warm-up", LANES, WARMUP_PLATES_PER_LANE, mix=(WARMUP,))


async def _held_exits(
    report: LanesReport, operator: LanesOperator, server: ApiServer, directory: Path, *, phase: str, seconds: int
) -> LaneRun:
    """Held exits of the warm-up's vehicles back to back, with passage ids of their own."""
    host = server.base_url.removeprefix("http://")
    tag = f"{phase}{int(time.time())}"
    requests = lane_requests(host, operator, warmup_plans(), tag, repeat_to=WARMUP_REQUESTS_PER_LANE)
    files = await asyncio.to_thread(write_lane_files, requests, directory)
    run = await asyncio.to_thread(run_lanes_wrk, server.base_url, files, label=phase, seconds=seconds)
    if run.load.errors:
        report.problems.append(f"{phase}: {run.load.errors} answers not as expected ({run.tallies})")
    return run


async def _warm_up(
    console: Console, report: LanesReport, operator: LanesOperator, server: ApiServer, scratch: Path
) -> tuple[float, float]:
    """Held exits back to back: COLD_SECONDS unmeasured, then CALIBRATION_SECONDS measured; returns the
    calibration's rate in all and its busiest lane's. Each phase sends passages of its own (a repeated passage
    id is a replay, cheaper than a decision)."""
    await open_sessions(report.settings, operator, warmup_plans())
    console.print(f"Warming up: held exits at {LANES} lanes for {COLD_SECONDS + CALIBRATION_SECONDS} s ...")
    measured: LaneRun | None = None
    for phase, seconds in (("cold", COLD_SECONDS), ("calibration", CALIBRATION_SECONDS)):
        measured = await _held_exits(report, operator, server, scratch / phase, phase=phase, seconds=seconds)
    assert measured is not None
    report.warmup_rate = measured.load.rate
    return measured.load.rate, measured.lane_range[1] / measured.load.seconds if measured.load.seconds else 0.0


async def run_lanes(
    console: Console, settings: Settings, *, workers: int, seconds: int, interval_ms: float
) -> LanesReport:
    report = LanesReport(settings=settings, interval_ms=interval_ms)
    console.print(f"Preparing the bench operator (lots, {LANES} exit lanes, tariffs, connector, history) ...")
    operator = await prepare_operator(settings)
    written = await ensure_history(settings, operator)
    if written:
        console.print(f"Wrote the bench operator's history: {written:,} past stays with their decisions")
    server = ApiServer(workers=workers)
    with tempfile.TemporaryDirectory(prefix="parkhub-lanes-") as directory:
        scratch = Path(directory)
        try:
            await reset_sessions(settings, operator)
            console.print(f"Starting the API (parkhub serve --workers {workers}) on {server.base_url} ...")
            await asyncio.to_thread(server.start)
            rate, busiest = await _warm_up(console, report, operator, server, scratch)
            await _healthz_run(
                console, report, server, scratch, label=HEALTHZ_SATURATED, seconds=seconds, interval_ms=0.0
            )
            await _exit_run(
                console,
                report,
                operator,
                server,
                scratch,
                label=EXITS_SATURATED,
                per_lane=per_lane_for_rate(rate, busiest, seconds),
                seconds=seconds,
                interval_ms=0.0,
            )
            await _exit_run(
                console,
                report,
                operator,
                server,
                scratch,
                label=EXITS_PACED,
                per_lane=per_lane_for_interval(interval_ms, seconds),
                seconds=seconds,
                interval_ms=interval_ms,
            )
            await _healthz_run(
                console, report, server, scratch, label=HEALTHZ_PACED, seconds=seconds, interval_ms=interval_ms
            )
        except (ServerError, WrkError, DomainError, RuntimeError, OSError) as exc:
            report.problems.append(f"lanes runs: {exc}")
        finally:
            await asyncio.to_thread(server.stop)
            await reset_sessions(settings, operator)
    return report


# --- the report ---------------------------------------------------------------------------------------------

RUN_ORDER = (HEALTHZ_SATURATED, EXITS_SATURATED, EXITS_PACED, HEALTHZ_PACED)


def _verdict(met: bool) -> str:
    return "[green]met[/green]" if met else "[red]not met[/red]"


def _per_request_us(seconds: float, run: LaneRun) -> str:
    answered = run.load.requests + run.load.errors
    return f"{seconds / answered * 1e6:,.0f}" if answered else "-"


def latency_table(report: LanesReport) -> Table:
    table = Table(title=f"exit lanes: {LANES} lanes at once, one wrk connection (and thread) each")
    columns = ("run", "answered", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "per lane")
    for column in (*columns, "conns/proc"):
        table.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
    for label in RUN_ORDER:
        run = report.runs.get(label)
        if run is None:
            continue
        table.add_row(
            label,
            f"{run.load.requests:,}",
            str(run.load.errors),
            f"{run.load.rate:,.0f}",
            f"{run.load.p50_ms:.1f}",
            f"{run.p90_ms:.1f}",
            f"{run.load.p99_ms:.1f}",
            f"{run.max_ms:.1f}",
            f"{run.lane_range[0]:,}-{run.lane_range[1]:,}",
            "/".join(str(count) for count in run.connections) or "-",
        )
    return table


def cpu_table(report: LanesReport) -> Table:
    table = Table(title="where the CPU went, in µs per answered request (read from /proc and getrusage)")
    for column in ("run", "server procs", "PostgreSQL", "wrk", "everything else", "machine busy", "DB conns opened"):
        table.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
    for label in RUN_ORDER:
        run = report.runs.get(label)
        if run is None or run.cpu is None:
            continue
        cpu = run.cpu
        others = max(0.0, cpu.others - run.client_cpu_s)
        table.add_row(
            label,
            _per_request_us(cpu.server, run),
            _per_request_us(cpu.postgres, run),
            _per_request_us(run.client_cpu_s, run),
            _per_request_us(others, run),
            f"{cpu.machine_busy / cpu.machine_total:.0%}" if cpu.machine_total else "-",
            f"{run.db_sessions:,}",
        )
    return table


def _mix_line(run: LaneRun) -> str:
    total = sum(run.tallies.values())
    if not total:
        return "no decisions"
    ordered = sorted(run.tallies.items(), key=lambda item: -item[1])
    return ", ".join(f"{reason} {count / total:.0%}" for reason, count in ordered)


def print_lanes_report(console: Console, report: LanesReport) -> None:
    console.print()
    console.print(latency_table(report))
    console.print(cpu_table(report))
    planned = ", ".join(f"{kind.reason} {kind.share / MIX_SLOTS:.0%}" for kind in MIX)
    console.print(f"planned exits: {planned}; Bearer secret; every other lane sends two camera reads a passage")
    console.print(
        f"warm-up (held exits, back to back) {report.warmup_rate:,.0f}/s; paced lanes wait "
        f"{report.interval_ms * 0.5:,.0f}-{report.interval_ms * 1.5:,.0f} ms after each answer"
    )
    added = ", ".join(f"{count:,} {kind}" for kind, count in report.lists_added.items() if count)
    if added:
        console.print(f"added to the bench operator's lists and drivers this time: {added}")
    for label in (EXITS_SATURATED, EXITS_PACED):
        run = report.runs.get(label)
        if run is None:
            continue
        console.print(f"{label}: decided {_mix_line(run)} ({report.sessions.get(label, 0):,} vehicles were waiting)")
        if run.wrapped:
            console.print(
                f"[yellow]{label}: a lane ran out of vehicles and started over; the exits of sessions it had "
                "closed answer exit_without_entry and count as errors[/yellow]"
            )
        if run.bad_status or run.mismatched:
            console.print(f"[yellow]{label}: {run.bad_status} non-200 answers, {run.mismatched} unexpected reasons")
    for problem in report.problems:
        console.print(f"[red]{problem}[/red]")
    for exits_label, healthz_label in ((EXITS_SATURATED, HEALTHZ_SATURATED), (EXITS_PACED, HEALTHZ_PACED)):
        exits, healthz = report.runs.get(exits_label), report.runs.get(healthz_label)
        if exits is None:
            console.print(f"{exits_label}: [red]not measured[/red]")
            continue
        clean = exits.load.requests > 0 and exits.load.errors == 0
        beside = ""
        if healthz is not None:
            beside = f"; /healthz the same way: p99 {healthz.load.p99_ms:.1f} ms at {healthz.load.rate:,.0f}/s"
        console.print(
            f"{exits_label}: p99 {exits.load.p99_ms:.1f} ms, p50 {exits.load.p50_ms:.1f} ms at "
            f"{exits.load.rate:,.0f} decisions/s (target p99 ≤ {TARGET_P99_MS:.0f} ms without errors: "
            f"{_verdict(clean and exits.load.p99_ms <= TARGET_P99_MS)}){beside}"
        )
