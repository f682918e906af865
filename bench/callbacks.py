"""The provider-callback benchmark (`python -m bench --only callbacks`): how many signed payment callbacks the
hub takes in, and how many it applies, beside a server answering 202 without work.

1. prepares the bench operator `bench-callbacks` (bench/callbacks_setup.py): its sandbox payment connector,
   a hundred drivers and N payments in state `requested` (20,000 by default), each awaiting its success
   callback;
2. the no-op baseline (bench/noop_server.py) under wrk at 32 connections, with the same signed callbacks;
3. run A, `parkhub serve` alone: one pre-signed sandbox `payment_succeeded` callback per payment (the sandbox's
   wire format and Standard Webhooks signature, secret `PAYMENT_SANDBOX_SECRET`), POSTed to
   `/connectors/{payment connector}` for the given time. Counted: 202s that accepted the callback into the inbox
   (committed). Then those inbox rows and their queued jobs are removed, so the payments are `requested` again;
4. run B, the same with `parkhub worker` running: callbacks signed afresh, POSTed for the same time, and the
   payments that reached `succeeded` (with their ledger capture) counted from the database when wrk ends and
   again once the worker has caught up. Then checked: every succeeded payment has exactly its two capture
   transfers, no other payment has any, and the ledger's invariants hold (hub.ledger.check_invariants).

The worker runs with the payment sweep pushed out (`PAYMENT_SWEEP_AFTER_SECONDS`): the worker's sandbox never
saw these orders, so asking it about them would cancel them in the middle of the run. If the API accepts faster
than there are payments, wrk starts over and the repeats are duplicates (202 accepting nothing): they are
counted as errors and the run is flagged; give more `--callback-payments`. Nothing is asserted.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.callbacks_setup import (
    Applied,
    CallbackOperator,
    Verification,
    applied,
    clean_up,
    clear_inbox,
    prepare_operator,
    signed_callbacks,
    verify,
)
from bench.http_load import WrkError
from bench.ingest_load import IngestRun, run_ingest_wrk, write_request_files
from bench.ingest_setup import WorkerProcess
from bench.noop_server import NoopServer
from bench.server import ApiServer, ServerError
from hub.config import Settings
from hub.errors import DomainError

WRK_THREADS = 2
NOOP_REQUESTS = 40_000  # the no-op forgets, so it may cycle through a few
NOOP = "no-op 202"
NO_WORKER = "A: ParkHub, no worker"
WITH_WORKER = "B: ParkHub + worker"
IDLE_AFTER_SECONDS = 10.0  # the worker's catching up ends when no payment succeeds for this long
SWEEP_PUSHED_OUT_SECONDS = "86400"


@dataclass
class CallbackReport:
    payments: int = 0
    prepare_seconds: float = 0.0
    runs: dict[str, IngestRun] = field(default_factory=dict)
    accepted_a: int = 0  # distinct callbacks in the inbox after run A
    during_b: Applied | None = None  # when run B's wrk ended
    after_b: Applied | None = None  # once the worker caught up
    run_b_started: datetime | None = None
    catch_up_seconds: float = 0.0
    verification: Verification | None = None
    removed: tuple[int, int] = (0, 0)  # inbox rows and unapplied payments removed at the end
    problems: list[str] = field(default_factory=list)

    @property
    def applied_rate(self) -> float:
        """Payments applied per second from run B's start to the last one applied."""
        after = self.after_b
        if after is None or not after.succeeded or after.last_settled is None or self.run_b_started is None:
            return 0.0
        span = (after.last_settled - self.run_b_started).total_seconds()
        return after.succeeded / span if span > 0 else 0.0


def _files(requests: Iterator[bytes], scratch: Path, name: str) -> list[Path]:
    directory = scratch / name
    directory.mkdir()
    return write_request_files(requests, directory, WRK_THREADS)


def _noop_run(
    console: Console, report: CallbackReport, settings: Settings, operator: CallbackOperator, scratch: Path, **load: int
) -> None:
    server = NoopServer(workers=load.pop("workers"))
    try:
        console.print(f"Starting the no-op baseline on {server.base_url} ...")
        server.start()
        host = server.base_url.removeprefix("http://")
        payments = operator.payments[:NOOP_REQUESTS]
        secret = settings.payment_sandbox_secret
        files = _files(signed_callbacks(host, operator.connector_id, secret, payments, label="noop"), scratch, "noop")
        console.print(f"{NOOP}: {load['connections']} connections, {load['seconds']} s ...")
        report.runs[NOOP] = run_ingest_wrk(
            f"{server.base_url}/connectors/{operator.connector_id}",
            files,
            label=NOOP,
            events_per_request=1,
            expect_all_accepted=False,
            **load,
        )
    except (ServerError, WrkError) as exc:
        report.problems.append(f"no-op baseline: {exc}")
    finally:
        server.stop()


async def _post_callbacks(
    console: Console,
    settings: Settings,
    operator: CallbackOperator,
    server: ApiServer,
    scratch: Path,
    *,
    label: str,
    tag: str,
    connections: int,
    seconds: int,
) -> IngestRun:
    host = server.base_url.removeprefix("http://")
    requests = signed_callbacks(
        host, operator.connector_id, settings.payment_sandbox_secret, operator.payments, label=tag
    )
    files = await asyncio.to_thread(_files, requests, scratch, tag)
    console.print(f"{label}: {len(operator.payments):,} signed callbacks, {connections} connections, {seconds} s ...")
    return await asyncio.to_thread(
        run_ingest_wrk,
        f"{server.base_url}/connectors/{operator.connector_id}",
        files,
        label=label,
        events_per_request=1,
        connections=connections,
        seconds=seconds,
    )


async def _catch_up(settings: Settings, operator: CallbackOperator, report: CallbackReport, limit: float) -> None:
    """Wait until the worker has applied every accepted callback, stops making progress, or `limit` passes."""
    started = time.monotonic()
    last, last_change = -1, started
    while True:
        now_applied = await applied(settings, operator)
        if now_applied.succeeded != last:
            last, last_change = now_applied.succeeded, time.monotonic()
        report.after_b = now_applied
        done = now_applied.succeeded >= now_applied.accepted
        if done or time.monotonic() - last_change > IDLE_AFTER_SECONDS or time.monotonic() - started > limit:
            report.catch_up_seconds = time.monotonic() - started
            return
        await asyncio.sleep(0.5)


def _start_worker(worker: WorkerProcess, redis_url: str) -> None:
    before = os.environ.get("PAYMENT_SWEEP_AFTER_SECONDS")
    os.environ["PAYMENT_SWEEP_AFTER_SECONDS"] = SWEEP_PUSHED_OUT_SECONDS
    try:
        worker.start(redis_url)
    finally:
        if before is None:
            os.environ.pop("PAYMENT_SWEEP_AFTER_SECONDS", None)
        else:
            os.environ["PAYMENT_SWEEP_AFTER_SECONDS"] = before


async def _api_runs(
    console: Console,
    report: CallbackReport,
    settings: Settings,
    operator: CallbackOperator,
    scratch: Path,
    *,
    workers: int,
    connections: int,
    seconds: int,
    catch_up_limit: float,
) -> None:
    server = ApiServer(workers=workers)
    worker = WorkerProcess()
    try:
        console.print(f"Starting the API (parkhub serve --workers {workers}) on {server.base_url} ...")
        await asyncio.to_thread(server.start)
        report.runs[NO_WORKER] = await _post_callbacks(
            console,
            settings,
            operator,
            server,
            scratch,
            label=NO_WORKER,
            tag="a",
            connections=connections,
            seconds=seconds,
        )
        report.accepted_a = (await applied(settings, operator)).accepted
        await clear_inbox(settings, operator)  # the payments are `requested` again, and no job is left for them

        console.print("Starting parkhub worker ...")
        await asyncio.to_thread(_start_worker, worker, settings.redis_url)
        report.run_b_started = datetime.now(UTC)
        report.runs[WITH_WORKER] = await _post_callbacks(
            console,
            settings,
            operator,
            server,
            scratch,
            label=WITH_WORKER,
            tag="b",
            connections=connections,
            seconds=seconds,
        )
        report.during_b = await applied(settings, operator)
        console.print("Waiting for the worker to apply what was accepted ...")
        await _catch_up(settings, operator, report, catch_up_limit)
        console.print("Checking the payments' transfers and the ledger's invariants ...")
        report.verification = await verify(settings, operator)
    except (ServerError, WrkError, DomainError, RuntimeError, OSError) as exc:
        report.problems.append(f"ParkHub runs: {exc}")
    finally:
        await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(server.stop)


async def run_callbacks(
    console: Console,
    settings: Settings,
    *,
    workers: int,
    connections: int,
    seconds: int,
    payments: int,
    catch_up_limit: float = 90.0,
) -> CallbackReport:
    report = CallbackReport(payments=payments)
    console.print(f"Preparing {payments:,} payments awaiting their sandbox callback ...")
    started = time.monotonic()
    operator = await prepare_operator(settings, payments)
    report.prepare_seconds = time.monotonic() - started
    try:
        with tempfile.TemporaryDirectory(prefix="parkhub-callbacks-") as directory:
            scratch = Path(directory)
            await asyncio.to_thread(
                _noop_run,
                console,
                report,
                settings,
                operator,
                scratch,
                workers=workers,
                connections=connections,
                seconds=seconds,
            )
            await _api_runs(
                console,
                report,
                settings,
                operator,
                scratch,
                workers=workers,
                connections=connections,
                seconds=seconds,
                catch_up_limit=catch_up_limit,
            )
    finally:
        report.removed = await clean_up(settings, operator)
    return report


# --- the report ---------------------------------------------------------------------------------------------


def callbacks_table(report: CallbackReport) -> Table:
    table = Table(title=f"provider callbacks: signed sandbox payment_succeeded, {report.payments:,} payments")
    for column in ("server", "conns", "seconds", "202s counted", "errors", "accepted/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "server" else "right", no_wrap=True)
    table.add_column("applied/s during run", justify="right", no_wrap=True)
    for server in (NOOP, NO_WORKER, WITH_WORKER):
        run = report.runs.get(server)
        if run is None:
            continue
        applied_now = ""
        if server == WITH_WORKER and report.during_b is not None and run.load.seconds:
            applied_now = f"{report.during_b.succeeded / run.load.seconds:,.0f}"
        table.add_row(
            server,
            str(run.load.connections),
            f"{run.load.seconds:.1f}",
            f"{run.load.requests:,}",
            str(run.load.errors),
            f"{run.load.rate:,.0f}",
            f"{run.load.p50_ms:.1f}",
            f"{run.load.p99_ms:.1f}",
            applied_now,
        )
    return table


def print_callbacks_report(console: Console, report: CallbackReport) -> None:
    console.print()
    console.print(f"prepared {report.payments:,} requested payments in {report.prepare_seconds:.1f} s")
    console.print(callbacks_table(report))
    noop, run_a, run_b = (report.runs.get(name) for name in (NOOP, NO_WORKER, WITH_WORKER))
    if run_a is not None:
        ratio = f" = {run_a.load.rate / noop.load.rate:.1%} of the no-op's" if noop and noop.load.rate else ""
        console.print(f"A accepted {run_a.load.rate:,.0f} callbacks/s{ratio} ({report.accepted_a:,} distinct)")
    if run_b is not None and report.after_b is not None:
        after = report.after_b
        console.print(
            f"B accepted {run_b.load.rate:,.0f} callbacks/s; applied {report.applied_rate:,.0f} payments/s "
            f"(start of B to the last applied: {after.succeeded:,} of {after.accepted:,} accepted applied, "
            f"{report.catch_up_seconds:.1f} s of catching up after wrk)"
        )
        if run_a is not None and run_a.load.rate:
            console.print(f"applied (B) / accepted (A): {report.applied_rate / run_a.load.rate:.1%}")
    for name, run in report.runs.items():
        if name != NOOP and run.wrapped:
            console.print(
                f"[yellow]{name}: the payments ran out and wrk started over; the repeats are duplicates (202 "
                "accepting nothing), counted as errors: give more --callback-payments[/yellow]"
            )
        if name != NOOP and run.rejected:
            console.print(f"[red]{name}: {run.rejected} answers other than 202[/red]")
    check = report.verification
    if check is not None:
        verdict = "[green]clean[/green]" if check.clean else "[red]NOT clean[/red]"
        console.print(
            f"verification {verdict}: {check.succeeded:,} succeeded payments, {check.wrong_transfers} without exactly "
            f"their two capture transfers, {check.unapplied_captures} unapplied with transfers, "
            f"{len(check.violations)} ledger invariant violation(s)"
        )
        for violation in check.violations[:10]:
            console.print(f"[red]  {violation}[/red]")
    inbox, unapplied = report.removed
    console.print(f"cleaned up: {inbox:,} inbox rows and {unapplied:,} unapplied payments removed")
    for problem in report.problems:
        console.print(f"[red]{problem}[/red]")
