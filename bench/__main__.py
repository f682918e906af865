"""`python -m bench` (what `make bench` runs): find-a-space, ingest, provider callbacks, lanes, the tariff engine,
then the ledger. `--only near`, `--only ingest`, `--only callbacks`, `--only lanes`, `--only tariff` or
`--only ledger` runs one.

find-a-space: over HTTP beside the same search run directly.

1. prepares `<name>_bench` and seeds the demo city at the requested size (kept between runs);
2. starts `parkhub serve --workers 2` on a free loopback port and waits for /readyz;
3. drives the public `spacesNear` query over HTTP with wrk at 32 connections for a fixed time;
4. runs the API's own SQL through asyncpg at 32 connections for the same time (the database's limit);
5. prints requests/s, p50 and p99 of both, their ratio, and whether this issue's targets are met.

ingest (bench/ingest.py): signed single-event webhooks and 1,000-event batches at 64 connections against the
API alone and with its worker running, beside a server answering 202 without work, and event-to-subscriber
latency.

callbacks (bench/callbacks.py): signed sandbox payment-success callbacks to an operator's payment connector at 32
connections, beside the no-op 202 server: accepted per second by the API alone, then applied per second (payments
succeeded with their ledger capture) with the worker running, and the ledger checked afterwards.

lanes (bench/lanes.py): exit decisions from 100 lanes at once (one wrk connection per lane, each vehicle with an
open session, priced under a tariff with bands and caps, checked against passes, the whitelist and auto-pay),
back to back and paced like gates, each beside `/healthz` of the same server under the same load.

tariff (bench/pricing.py): the tariff engine alone pricing 3-day stays with bands and caps, in this process.

ledger (bench/ledger.py): transfers per second through the ledger's engine, single and in linked batches of 100,
spread over many clearing accounts and through one hot account.

settlement (bench/settlement.py, only with `--only settlement`): 2,000,000 transfers across 200 operators for one
business day, generated once through the ledger's engine into `<name>_bench_settlement`, then the full settlement
run of that day, timed beside a plain count and sum over the same transfers.

Nothing is asserted: the figures depend on the machine.
"""

from __future__ import annotations

import asyncio
import enum
import math
import shlex
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from bench.city import ensure_city, use_bench_database
from bench.http_load import NEAR_QUERY, WrkError, run_wrk
from bench.results import LoadResult
from bench.server import ApiServer, ServerError, post_json
from hub.config import Settings, database_name
from hub.seed.places import DISTRICTS_BY_CODE

TARGET_RATIO = 0.25
TARGET_HTTP_P99_MS = 50.0
T = TypeVar("T")

bench_app = typer.Typer(add_completion=False)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def _sample_search(server: ApiServer) -> int:
    """One search at Futian's centre before the load: the API must answer it without errors."""
    futian = DISTRICTS_BY_CODE["FT"]
    status, body = post_json(
        f"{server.base_url}/graphql", {"query": NEAR_QUERY, "variables": {"lon": futian.lon, "lat": futian.lat}}
    )
    if status != 200 or body.get("errors") or not isinstance((body.get("data") or {}).get("spacesNear"), list):
        raise ServerError(f"spacesNear did not answer (HTTP {status}): {str(body)[:600]}")
    return len(body["data"]["spacesNear"])


def _http_run(console: Console, *, workers: int, connections: int, seconds: int) -> tuple[LoadResult | None, str]:
    server = ApiServer(workers=workers)
    try:
        console.print(f"Starting the API (parkhub serve --workers {workers}) on {server.base_url} ...")
        server.start()
        found = _sample_search(server)
        console.print(f"Sample search at Futian's centre returned {found} spaces. Running wrk for {seconds} s ...")
        return run_wrk(f"{server.base_url}/graphql", connections=connections, seconds=seconds), ""
    except (ServerError, WrkError) as exc:
        return None, str(exc)
    finally:
        server.stop()


def _table(results: list[LoadResult]) -> Table:
    table = Table(title="find-a-space: 500 m radius, first 20, random points in the dense districts")
    for column in ("path", "conns", "seconds", "searches", "errors", "req/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "path" else "right", no_wrap=True)
    for result in results:
        table.add_row(
            result.label,
            str(result.connections),
            f"{result.seconds:.1f}",
            f"{result.requests:,}",
            str(result.errors),
            f"{result.rate:,.0f}",
            f"{result.p50_ms:.1f}",
            f"{result.p99_ms:.1f}",
        )
    return table


def _verdict(met: bool) -> str:
    return "[green]met[/green]" if met else "[red]not met[/red]"


def _near(
    console: Console, settings: Settings, *, spaces: int, seconds: int, connections: int, workers: int, warmup: int
) -> None:
    from bench.direct_load import run_direct

    if warmup:
        _run(run_direct(settings.app_database_url, connections=connections, seconds=warmup))
    http_result, http_problem = _http_run(console, workers=workers, connections=connections, seconds=seconds)
    console.print(f"Running the same search directly through asyncpg for {seconds} s ...")
    direct_result = _run(run_direct(settings.app_database_url, connections=connections, seconds=seconds))

    console.print()
    results = [result for result in (http_result, direct_result) if result is not None]
    console.print(_table(results))
    for result in results:
        if result.note:
            console.print(f"{result.label}: {result.note}")
    console.print(f"city: {spaces:,} spaces; command: {_command()}")
    if http_result is None:
        console.print(f"[red]HTTP run unavailable:[/red] {http_problem}")
        return
    ratio = http_result.rate / direct_result.rate if direct_result.rate else math.nan
    # Latencies count only answered searches, so a run with failures cannot meet the latency target.
    http_clean = http_result.requests > 0 and http_result.errors == 0
    console.print(
        f"HTTP / direct rate: {ratio:.0%} (target ≥ {TARGET_RATIO:.0%}: {_verdict(ratio >= TARGET_RATIO)}); "
        f"HTTP p99 {http_result.p99_ms:.1f} ms (target < {TARGET_HTTP_P99_MS:.0f} ms without errors: "
        f"{_verdict(http_clean and http_result.p99_ms < TARGET_HTTP_P99_MS)})"
    )
    if http_result.errors or direct_result.errors:
        console.print(
            f"[yellow]failed searches: HTTP {http_result.errors} (non-200, GraphQL errors or timeouts after 10 s), "
            f"direct {direct_result.errors}[/yellow]"
        )


def _command() -> str:
    return shlex.join([sys.executable, "-m", "bench", *sys.argv[1:]])


class Only(enum.StrEnum):
    near = "near"
    ingest = "ingest"
    callbacks = "callbacks"
    lanes = "lanes"
    tariff = "tariff"
    ledger = "ledger"
    settlement = "settlement"


def _tariff(console: Console, seconds: float) -> None:
    from bench.pricing import run_tariff_throughput

    console.print(f"Pricing 3-day stays under the bench tariff (bands, tiers, day and 24 h caps) for {seconds:g} s ...")
    figures = run_tariff_throughput(seconds)
    table = Table(title="tariff engine: one 3-day stay with bands and caps per quote, one process")
    for column in ("quotes", "seconds", "quotes/s", "p50 µs", "p99 µs", "Tariff.from_dict µs"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_row(
        f"{int(figures['quotes']):,}",
        f"{figures['seconds']:.1f}",
        f"{figures['quotes_per_s']:,.0f}",
        f"{figures['p50_us']:,.1f}",
        f"{figures['p99_us']:,.1f}",
        f"{figures['from_dict_us']:,.1f}",
    )
    console.print(table)


@bench_app.command()
def main(
    spaces: int = typer.Option(1_000_000, "--spaces", min=1, help="Size of the demo city to search."),
    seconds: int = typer.Option(20, "--seconds", min=1, help="Duration of each measured run."),
    connections: int = typer.Option(32, "--connections", min=1, help="Concurrent connections of each search run."),
    workers: int = typer.Option(2, "--workers", min=1, help="API server processes."),
    warmup: int = typer.Option(3, "--warmup", min=0, help="Seconds of unmeasured searches first (warms caches)."),
    only: Only | None = typer.Option(
        None,
        "--only",
        help="Run one benchmark: near (find-a-space), ingest, callbacks, lanes, tariff, ledger or settlement.",
    ),
    callback_seconds: int = typer.Option(10, "--callback-seconds", min=1, help="Duration of each callback run."),
    callback_payments: int = typer.Option(
        20_000, "--callback-payments", min=1, help="Payments awaiting a callback (one callback each)."
    ),
    ingest_connections: int = typer.Option(64, "--ingest-connections", min=1, help="Connections of each ingest run."),
    latency_rate: float = typer.Option(20.0, "--latency-rate", min=0.1, help="Events per second of the latency run."),
    latency_seconds: int = typer.Option(15, "--latency-seconds", min=1, help="Duration of the latency run."),
    lanes_interval_ms: float = typer.Option(
        1000.0, "--lanes-interval-ms", min=10.0, help="Paced lanes: mean wait between a lane's passages."
    ),
    tariff_seconds: float = typer.Option(5.0, "--tariff-seconds", min=0.1, help="Duration of the tariff run."),
    ledger_seconds: float = typer.Option(5.0, "--ledger-seconds", min=0.1, help="Duration of each ledger run."),
    ledger_connections: int = typer.Option(16, "--ledger-connections", min=1, help="Connections of the ledger runs."),
    settlement_transfers: int = typer.Option(
        2_000_000, "--settlement-transfers", min=1, help="Transfers of the settlement bench's business day."
    ),
    settlement_tenants: int = typer.Option(
        200, "--settlement-tenants", min=1, help="Operators of the settlement bench."
    ),
    settlement_concurrency: int = typer.Option(2, "--settlement-concurrency", min=1, help="Operators settled at once."),
) -> None:
    """Benchmark find-a-space (HTTP against asyncpg), ingest and provider callbacks (webhooks against a no-op
    server), exit lanes (against /healthz), the tariff engine and the ledger."""
    console = Console(width=max(Console().width, 120))
    if only == Only.settlement:  # a database of its own (`<name>_bench_settlement`)
        from bench.settlement import print_settlement_report, run_settlement

        figures = _run(
            run_settlement(
                console,
                tenant_count=settlement_tenants,
                transfers=settlement_transfers,
                concurrency=settlement_concurrency,
                connections=2,
            )
        )
        print_settlement_report(console, figures)
        console.print(f"command: {_command()}")
        return
    if only == Only.tariff:  # the engine alone: no database, no server
        _tariff(console, tariff_seconds)
        console.print(f"command: {_command()}")
        return
    settings = use_bench_database()
    console.print(f"Benchmark database: {database_name(settings.database_url)}")
    if only in (None, Only.near, Only.ingest):
        _run(ensure_city(settings, spaces, console))
    else:  # the lanes and ledger benches make their own operators: the demo city is not needed
        from hub.dbsetup import prepare

        _run(prepare(settings))

    if only in (None, Only.near):
        _near(
            console, settings, spaces=spaces, seconds=seconds, connections=connections, workers=workers, warmup=warmup
        )
    if only in (None, Only.ingest):
        from bench.ingest import print_ingest_report, run_ingest

        if only is None:
            console.print()
        report = _run(
            run_ingest(
                console,
                settings,
                workers=workers,
                connections=ingest_connections,
                seconds=seconds,
                latency_rate=latency_rate,
                latency_seconds=latency_seconds,
            )
        )
        print_ingest_report(console, report, seconds=seconds, connections=ingest_connections)
        console.print(f"command: {_command()}")
    if only in (None, Only.callbacks):
        from bench.callbacks import print_callbacks_report, run_callbacks

        if only is None:
            console.print()
        callbacks_report = _run(
            run_callbacks(
                console,
                settings,
                workers=workers,
                connections=connections,
                seconds=callback_seconds,
                payments=callback_payments,
            )
        )
        print_callbacks_report(console, callbacks_report)
        console.print(f"command: {_command()}")
    if only in (None, Only.lanes):
        from bench.lanes import print_lanes_report, run_lanes

        if only is None:
            console.print()
        lanes_report = _run(
            run_lanes(console, settings, workers=workers, seconds=seconds, interval_ms=lanes_interval_ms)
        )
        print_lanes_report(console, lanes_report)
        console.print(f"command: {_command()}")
    if only is None:
        console.print()
        _tariff(console, tariff_seconds)
        console.print(f"command: {_command()}")
    if only in (None, Only.ledger):
        from bench.ledger import print_ledger_report, run_ledger

        if only is None:
            console.print()
        runs = _run(run_ledger(console, settings, seconds=ledger_seconds, connections=ledger_connections))
        print_ledger_report(console, runs)
        console.print(f"command: {_command()}")


if __name__ == "__main__":
    bench_app()
