"""The `parkhub` command: serve the API, run the worker, both at once for development, and set up the database.

Expected failures (an unreachable database or Redis, a failed set-up step, an out-of-date schema file) print
one plain sentence to stderr and exit 1; a traceback means a bug. Heavy imports (uvicorn, arq, the GraphQL
schema) happen inside the commands that need them, so `parkhub --help` stays quick.
"""

from __future__ import annotations

import asyncio
import ctypes
import difflib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import typer

from hub.config import Settings, asyncpg_dsn, database_name, get_settings, user_name

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "schema" / "schema.graphql"
SOURCE_DIRS = ("hub", "schema", "tenants", "geo", "connectors")
# How long `dev` lets a child finish after SIGTERM before killing it; above the worker's own job
# completion wait (hub.jobs.WorkerSettings.job_completion_wait) so running jobs may end.
DEV_STOP_GRACE_SECONDS = 30.0
REACHABILITY_TIMEOUT_SECONDS = 5.0

app = typer.Typer(
    name="parkhub",
    help="ParkHub: a multi-tenant GraphQL hub for a city's parking.",
    no_args_is_help=True,
    add_completion=False,
    # Expected failures are reported plainly below; anything else is a bug and keeps its normal traceback.
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database: create it, its roles and extensions, and migrate.", no_args_is_help=True)
schema_app = typer.Typer(help="The GraphQL schema's SDL file (schema/schema.graphql).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(schema_app, name="schema")


# --- plain errors ------------------------------------------------------------------------------


def fail(message: str) -> NoReturn:
    typer.echo(f"parkhub: {message}", err=True)
    raise typer.Exit(1)


def _reason(exc: BaseException) -> str:
    return str(exc).rstrip(".") or type(exc).__name__


def describe_location(url: str) -> str:
    """host:port/database of a URL, without its password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.hostname or 'localhost'}{port}{parts.path}"


@contextmanager
def plain_errors() -> Iterator[None]:
    """Turn the failures a person can fix (set-up, connection, migration) into one line on stderr."""
    import asyncpg
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DBAPIError

    from hub.dbsetup import SetupError

    try:
        yield
    except SetupError as exc:
        fail(str(exc))
    except CommandError as exc:
        fail(f"migration failed: {exc}")
    except DBAPIError as exc:
        # SQLAlchemy's message carries the statement and a link; the driver's own words are what helps.
        fail(f"database error: {exc.orig}")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        fail(f"database error: {exc}")


async def _database_problem(settings: Settings) -> str | None:
    import asyncpg

    url = settings.app_database_url
    try:
        connection = await asyncpg.connect(asyncpg_dsn(url), timeout=REACHABILITY_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return (
            f"cannot reach PostgreSQL at {describe_location(url)} as {user_name(url)}: {_reason(exc)}. "
            "Is the server running, and has `parkhub db prepare` run?"
        )
    await connection.close()
    return None


async def _redis_problem(settings: Settings) -> str | None:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.from_url(
        settings.redis_url,
        socket_connect_timeout=REACHABILITY_TIMEOUT_SECONDS,
        socket_timeout=REACHABILITY_TIMEOUT_SECONDS,
    )
    try:
        await client.ping()
    except (OSError, RedisError) as exc:
        return (
            f"cannot reach Redis at {describe_location(settings.redis_url)}: {_reason(exc)}. Is it running (REDIS_URL)?"
        )
    finally:
        await client.aclose()
    return None


def require_services(settings: Settings) -> None:
    """Refuse to start, in plain words, when the database or Redis is unreachable."""

    async def problems() -> list[str | None]:
        return list(await asyncio.gather(_database_problem(settings), _redis_problem(settings)))

    found = [problem for problem in asyncio.run(problems()) if problem]
    if found:
        fail("\nparkhub: ".join(found))


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# --- serve, worker, dev -------------------------------------------------------------------------


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (default: PARKHUB_HOST, else 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to listen on (default: PARKHUB_PORT, else 8000)."),
    workers: int = typer.Option(1, min=1, help="Server processes."),
    reload: bool = typer.Option(False, "--reload", help="Restart when source files change (development)."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request (off by default: it costs)."),
) -> None:
    """Serve the HTTP API (GraphQL, OAuth token endpoint, connectors, health and metrics)."""
    if reload and workers > 1:
        fail("--reload runs a single process; use either --reload or --workers")
    settings = get_settings()
    require_services(settings)

    import uvicorn

    options = {
        "factory": True,
        "host": host or settings.host,
        "port": port or settings.port,
        "workers": workers,
        "reload": reload,
        "access_log": access_log,
        "loop": "uvloop" if _has_module("uvloop") else "asyncio",
        "http": "httptools" if _has_module("httptools") else "h11",
        "timeout_graceful_shutdown": 10,
    }
    if reload:
        options["reload_dirs"] = [str(ROOT / name) for name in SOURCE_DIRS if (ROOT / name).is_dir()]
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each process counts its own requests; a shared directory lets /metrics sum them all.
        with tempfile.TemporaryDirectory(prefix="parkhub-metrics-") as metrics_dir:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
            uvicorn.run("hub.app:create_app", **options)
        return
    uvicorn.run("hub.app:create_app", **options)


@app.command()
def worker(verbose: bool = typer.Option(False, "--verbose", help="Log more about each job.")) -> None:
    """Run the background job worker (arq) until interrupted."""
    settings = get_settings()
    require_services(settings)

    import logging.config

    from arq.logs import default_log_config

    from hub.jobs import create_worker

    logging.config.dictConfig(default_log_config(verbose))
    # arq's Worker takes the current event loop when it is built; give it uvloop's when there is one.
    if _has_module("uvloop"):
        import uvloop

        asyncio.set_event_loop(uvloop.new_event_loop())
    else:
        asyncio.set_event_loop(asyncio.new_event_loop())
    create_worker(settings).run()


@dataclass(frozen=True)
class ChildSpec:
    """A process `dev` runs: what to call it in messages, and its command line."""

    name: str
    argv: Sequence[str]


_PR_SET_PDEATHSIG = 1


def _child_start_hook() -> Callable[[], None] | None:
    """On Linux, have the kernel send a child SIGTERM if `dev` itself dies without stopping it."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def die_with_parent() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent is already gone
            os._exit(1)

    return die_with_parent


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _stop(processes: Sequence[tuple[ChildSpec, subprocess.Popen[bytes]]], grace_seconds: float) -> None:
    for _, process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for spec, process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            typer.echo(f"parkhub dev: the {spec.name} did not stop within {grace_seconds:g}s; killing it", err=True)
            process.kill()
            process.wait()


def supervise(specs: Sequence[ChildSpec], *, grace_seconds: float = DEV_STOP_GRACE_SECONDS) -> int:
    """Run `specs` as child processes until one of them ends or SIGINT/SIGTERM arrives; then stop the rest.

    Returns 0 when stopped by a signal (Ctrl-C is how `make run` ends), 1 when a child ended on its own.
    Children get their own process group, so a terminal's Ctrl-C reaches only this supervisor, which then
    stops each child exactly once.
    """
    stop_signal: list[int] = []

    def request_stop(signum: int, _frame: object) -> None:
        stop_signal.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes: list[tuple[ChildSpec, subprocess.Popen[bytes]]] = []
    try:
        for spec in specs:
            process = subprocess.Popen(list(spec.argv), process_group=0, preexec_fn=_child_start_hook())
            processes.append((spec, process))
        while True:
            if stop_signal:
                _stop(processes, grace_seconds)
                return 0
            for spec, process in processes:
                code = process.poll()
                if code is not None:
                    others = ", ".join(other.name for other, _ in processes if other is not spec) or "nothing else"
                    typer.echo(f"parkhub dev: the {spec.name} {_describe_exit(code)}; stopping {others}", err=True)
                    _stop(processes, grace_seconds)
                    return 1
            time.sleep(0.1)
    finally:
        # Also reached when starting a child failed: leave nothing running behind.
        _stop(processes, grace_seconds)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command()
def dev(
    host: str | None = typer.Option(None, help="Interface to listen on (default: PARKHUB_HOST, else 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to listen on (default: PARKHUB_PORT, else 8000)."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
) -> None:
    """Run the API and the worker together; Ctrl-C stops both, and if one dies the other is stopped."""
    settings = get_settings()
    require_services(settings)
    command = [sys.executable, "-m", "hub.cli"]
    serve_argv = [*command, "serve", "--host", host or settings.host, "--port", str(port or settings.port)]
    if access_log:
        serve_argv.append("--access-log")
    code = supervise([ChildSpec("API server", serve_argv), ChildSpec("worker", [*command, "worker"])])
    raise typer.Exit(code)


# --- database -----------------------------------------------------------------------------------


@app.command()
def migrate(revision: str = typer.Option("head", help="Alembic revision to upgrade to.")) -> None:
    """Apply the Alembic migrations up to REVISION."""
    from hub.dbsetup import migrate as upgrade

    settings = get_settings()
    with plain_errors():
        upgrade(settings, revision)
    typer.echo(f"database {database_name(settings.database_url)} migrated to {revision}")


class _Outcome:
    text = "ok"


@contextmanager
def _step(label: str) -> Iterator[_Outcome]:
    """Print `label ... outcome` on one line; `failed` when the step raises (its error follows on stderr)."""
    typer.echo(f"{label} ... ", nl=False)
    outcome = _Outcome()
    try:
        yield outcome
    except BaseException:
        typer.echo("failed")
        raise
    typer.echo(outcome.text)


async def _prepare(settings: Settings, *, fresh: bool) -> None:
    from hub import dbsetup
    from hub.auth import ensure_signing_key
    from hub.db import Database, make_engine

    with _step(
        f"database {describe_location(settings.database_url)}" + (" (dropping it first)" if fresh else "")
    ) as done:
        created = await dbsetup.ensure_database(settings, fresh=fresh)
        done.text = "created" if created else "exists"
    with _step(f"PostGIS and the application role {settings.app_role}"):
        await dbsetup.ensure_extension_and_role(settings)
    with _step("migrations") as done:
        # Alembic's env runs its own event loop; keep it off ours.
        await asyncio.to_thread(dbsetup.migrate, settings)
        done.text = "at head"
    with _step("token signing key") as done:
        owner = Database(make_engine(settings.database_url, settings, pool_size=1))
        try:
            kid = await ensure_signing_key(owner)
        finally:
            await owner.dispose()
        done.text = f"created {kid}" if kid else "present"


@db_app.command("prepare")
def db_prepare(
    fresh: bool = typer.Option(False, "--fresh", help="Drop and re-create the database first: ALL DATA IS LOST."),
) -> None:
    """Create the database, PostGIS and the application role, migrate, and ensure a token signing key.
    Safe to repeat."""
    settings = get_settings()
    with plain_errors():
        asyncio.run(_prepare(settings, fresh=fresh))


# --- GraphQL schema -----------------------------------------------------------------------------


def render_schema_sdl() -> str:
    """The SDL of the API's schema exactly as `schema export` writes it (strawberry's printer, one final
    newline), for tests that check schema/schema.graphql is current."""
    from strawberry.printer import print_schema

    from schema.api import schema as api_schema

    return print_schema(api_schema) + "\n"


def write_or_check_sdl(sdl: str, path: Path, *, check: bool) -> int:
    """Write `sdl` to `path`, or with `check` compare them and show a unified diff. Returns the exit code."""
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == sdl:
        typer.echo(f"{path} is up to date")
        return 0
    if check:
        diff = difflib.unified_diff(
            (current or "").splitlines(keepends=True),
            sdl.splitlines(keepends=True),
            fromfile=f"{path} (in the tree)",
            tofile=f"{path} (from the code)",
        )
        typer.echo("".join(diff), nl=False)
        missing = "is missing" if current is None else "is out of date"
        typer.echo(f"parkhub: {path} {missing}; run `parkhub schema export` and commit it", err=True)
        return 1
    path.write_text(sdl, encoding="utf-8")
    typer.echo(f"wrote {path}")
    return 0


@schema_app.command("export")
def schema_export(
    check: bool = typer.Option(False, "--check", help="Do not write; exit 1 and show a diff if the file is stale."),
    output: Path = typer.Option(SCHEMA_FILE, help="Where the SDL goes."),
) -> None:
    """Write the GraphQL SDL of the API to schema/schema.graphql."""
    raise typer.Exit(write_or_check_sdl(render_schema_sdl(), output, check=check))


# --- other command groups -----------------------------------------------------------------------
# Each domain's command group, mounted after the core commands.
from hub.access.cli import vehicles_app  # noqa: E402
from hub.ledger.cli import ledger_app  # noqa: E402
from hub.seed.cli import seed_app  # noqa: E402  (mounted after the core commands are defined)
from hub.settlement.cli import reconcile_command, settle_command  # noqa: E402
from tenants.cli import client_app, connector_app, device_app, keys_app, tenant_app, token_app  # noqa: E402

app.add_typer(tenant_app, name="tenant")
app.add_typer(token_app, name="token")
app.add_typer(client_app, name="client")
app.add_typer(keys_app, name="keys")
app.add_typer(connector_app, name="connector")
app.add_typer(device_app, name="device")
app.add_typer(seed_app, name="seed")
app.add_typer(vehicles_app, name="vehicles")
app.add_typer(ledger_app, name="ledger")
app.command("settle")(settle_command)
app.command("reconcile")(reconcile_command)


if __name__ == "__main__":
    app()
