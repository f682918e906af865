"""The lanes benchmark's decision path in one process (`python -m bench.lanes_profile [exits [concurrency]]`),
for where the time goes when the lanes benchmark's figures disappoint.

No uvicorn and no wrk: the ASGI app (middleware, route, authentication, parsing, decision) is called directly
with the bench operator's exits (bench/lanes_setup.py, the same mix). Half the exits run plain, `concurrency`
at a time (as a server process does under load), for the cost per exit: Python CPU of this process, the
database backends' CPU from /proc, wall time. The other half run one at a time under cProfile counting CPU time
only, for where the Python time goes, by part and by function. Every SQL statement's round trip is timed,
whether it runs on the asyncpg driver directly (an asyncpg query logger) or through SQLAlchemy (cursor events;
those times include SQLAlchemy's own work around the driver). The sessions it wrote are deleted at the end."""

from __future__ import annotations

import asyncio
import cProfile
import io
import math
import pstats
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence

import orjson
from sqlalchemy import event

from bench.cpu_usage import cpu_between, snapshot
from bench.ingest_setup import bench_backends
from bench.lanes_load import passage_body
from bench.lanes_setup import (
    LANES,
    PlannedExit,
    ensure_history,
    ensure_lists,
    kind_counts,
    open_sessions,
    plan_exits,
    prepare_operator,
    reset_sessions,
)
from hub.config import Settings

STATEMENT_KINDS = (
    ("BEGIN", "begin"),
    ("set_config", "set scope"),
    ("FROM lanes l", "decision context"),
    ("vehicle_blocklist", "standing / pass windows"),
    ("UPDATE lot_sessions", "close session"),
    ("INSERT INTO lane_decisions", "insert decision"),
    ("INSERT INTO pending_charges", "insert charge"),
    ("INSERT INTO notifications", "insert notification"),
    ("FROM webhook_endpoints", "webhook endpoints"),
    ("COMMIT", "commit"),
)

# Where a function's own CPU time is counted: the first pattern its file (or name) contains.
PROFILE_PARTS = (
    ("starlette/", "Starlette routing and responses"),
    ("hub/app.py", "middleware (metrics, body limit)"),
    ("hub/observability.py", "middleware (metrics, body limit)"),
    ("prometheus_client", "middleware (metrics, body limit)"),
    ("connectors/", "lane route: authenticate, parse reads"),
    ("hub/lanes/", "decision logic"),
    ("hub/access/", "standing and pass windows"),
    ("hub/pricing/", "tariff engine"),
    ("hub/notify/", "notifications"),
    ("hub/db.py", "transactions (hub/db.py)"),
    ("sqlalchemy/", "SQLAlchemy session, engine, pool"),
    ("greenlet", "SQLAlchemy session, engine, pool"),
    ("asyncpg/", "asyncpg driver"),
    ("asyncpg.", "asyncpg driver"),
    ("orjson", "JSON"),
    ("json/", "JSON"),
    ("zoneinfo", "dates and zones"),
    ("datetime", "dates and zones"),
    ("asyncio/", "event loop"),
    ("uvloop", "event loop"),
    ("bench/lanes_profile.py", "this harness (the ASGI call)"),
)


def statement_kind(query: str) -> str:
    for marker, kind in STATEMENT_KINDS:
        if marker in query:
            return kind
    return " ".join(query.split())[:60]


def profile_part(filename: str, function: str) -> str:
    for pattern, part in PROFILE_PARTS:
        if pattern in filename or pattern in function:
            return part
    return "other (stdlib, uuid, re, ...)"


async def _call_app(app: object, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """One HTTP request through the ASGI app, as uvicorn would hand it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    status, chunks = 0, []

    async def receive() -> dict[str, object]:
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])  # type: ignore[call-overload]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)  # type: ignore[operator]
    return status, b"".join(chunks)  # type: ignore[arg-type]


async def profile_exits(settings: Settings, exits: int, *, concurrency: int = 1, top: int = 25) -> str:
    """Decide `exits` exits of the bench mix in this process; returns the report (costs, statements, profile)."""
    from hub.app import create_app  # the whole API: only when profiling

    operator = await prepare_operator(settings)
    await ensure_history(settings, operator)
    warm = LANES * 4
    plans = plan_exits("profile", LANES, math.ceil((exits + warm) / LANES))
    await ensure_lists(settings, operator, kind_counts(plans))
    await reset_sessions(settings, operator)
    await open_sessions(settings, operator, plans)
    order = [planned for sequence in zip(*plans, strict=True) for planned in sequence][: exits + warm]
    plain, profiled = order[warm : warm + exits // 2], order[warm + exits // 2 :]
    app = create_app(settings)
    statements: dict[str, list[float]] = defaultdict(list)
    logged: set[int] = set()

    def log(record: object) -> None:
        statements[statement_kind(record.query)].append(record.elapsed)  # type: ignore[attr-defined]

    def attach(dbapi_connection: object, record: object, proxy: object) -> None:
        driver = dbapi_connection.driver_connection  # type: ignore[attr-defined]
        if id(driver) not in logged:
            logged.add(id(driver))
            driver.add_query_logger(log)

    def before(conn: object, cursor: object, statement: str, *args: object) -> None:
        conn.info["bench_started"] = time.perf_counter()  # type: ignore[attr-defined]

    def after(conn: object, cursor: object, statement: str, *args: object) -> None:
        started = conn.info.pop("bench_started", None)  # type: ignore[attr-defined]
        if started is not None:
            statements[statement_kind(statement)].append(time.perf_counter() - started)

    profiler = cProfile.Profile(time.process_time)
    answers: Counter[str] = Counter()
    try:
        async with app.router.lifespan_context(app):
            engine = app.state.db.engine.sync_engine
            event.listen(engine, "checkout", attach)
            event.listen(engine, "before_cursor_execute", before)
            event.listen(engine, "after_cursor_execute", after)
            headers = {"content-type": "application/json", "authorization": f"Bearer {operator.secret}"}

            async def decide(planned: PlannedExit) -> None:
                lane = operator.exit_lanes[planned.lane].id
                body = passage_body(f"profile-{planned.lane:03d}-{planned.sequence:06d}", planned, cameras=1)
                status, answer = await _call_app(app, f"/lanes/{lane}/reads", headers, body)
                answers[orjson.loads(answer).get("reason", str(status)) if status == 200 else str(status)] += 1

            async def clients(exits: Sequence[PlannedExit]) -> None:
                queue = iter(exits)

                async def client() -> None:
                    for planned in queue:
                        await decide(planned)

                await asyncio.gather(*(client() for _ in range(concurrency)))

            await clients(order[:warm])  # as many pooled connections as the run uses, their statements prepared
            statements.clear()
            answers.clear()
            backends = await bench_backends(settings)
            cpu_before = snapshot(None, None, backends)
            started, cpu_started = time.perf_counter(), time.process_time()
            await clients(plain)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            backends = sorted(set(backends) | set(await bench_backends(settings)))  # the pool may have grown
            postgres = cpu_between(cpu_before, snapshot(None, None, backends)).postgres
            profiler.enable()
            for planned in profiled:
                await decide(planned)
            profiler.disable()
    finally:
        await reset_sessions(settings, operator)
    decided = sum(answers.values())
    out = io.StringIO()
    per_exit = 1e6 / len(plain)
    out.write(
        f"{len(plain):,} exits {concurrency} at a time in this process, no profiler: {len(plain) / wall:,.0f}/s; "
        f"per exit {wall * per_exit:,.0f} µs wall, {cpu * per_exit:,.0f} µs Python CPU, "
        f"{postgres * per_exit:,.0f} µs PostgreSQL CPU\nanswers of all {decided:,}: {dict(answers)}\n\n"
        "statements per exit (round trip: the time from sending a statement to having its result):\n"
    )
    for kind, times in sorted(statements.items(), key=lambda item: -sum(item[1])):
        times.sort()
        out.write(
            f"  {kind:<28} {len(times) / decided:5.2f}/exit  mean {sum(times) / len(times) * 1e6:7,.0f} µs  "
            f"p99 {times[int(len(times) * 0.99)] * 1e6:7,.0f} µs  total {sum(times) / decided * 1e6:7,.0f} µs/exit\n"
        )
    stats = pstats.Stats(profiler, stream=out)
    parts: Counter[str] = Counter()
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        parts[profile_part(filename, function)] += own
    total = sum(parts.values())
    out.write(f"\nPython CPU under cProfile by part (own time; {total / len(profiled) * 1e6:,.0f} µs per exit):\n")
    for part, own in parts.most_common():
        out.write(f"  {part:<40} {own / len(profiled) * 1e6:7,.0f} µs/exit  {own / total:5.1%}\n")
    for sort in ("tottime", "cumulative"):
        out.write(f"\nPython CPU by {sort}:\n")
        stats.sort_stats(sort).print_stats(top)
    return out.getvalue()


if __name__ == "__main__":
    from bench.__main__ import _run
    from bench.city import use_bench_database
    from hub.dbsetup import prepare

    bench_settings = use_bench_database()
    _run(prepare(bench_settings))
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 4_000
    print(_run(profile_exits(bench_settings, count, concurrency=int(sys.argv[2]) if len(sys.argv) > 2 else 1)))
