"""The `parkhub` command as a person meets it: real processes, exit codes, and plain messages on failure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from hub.cli import ChildSpec, app, render_schema_sdl, supervise, write_or_check_sdl
from hub.config import get_settings

PARKHUB = [sys.executable, "-m", "hub.cli"]


def run_parkhub(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`parkhub ...` as a separate process (conftest has pointed DATABASE_URL and REDIS_URL at the test
    database and Redis)."""
    return subprocess.run(
        [*PARKHUB, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def invoke(*args: str, **env: str) -> Result:
    """`parkhub ...` in this process (quicker: the heavy imports are already loaded)."""
    get_settings.cache_clear()
    try:
        return CliRunner(env=env).invoke(app, list(args))
    finally:
        get_settings.cache_clear()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_plain_failure(result: subprocess.CompletedProcess[str] | Result, *expected: str) -> None:
    """Exit code 1 and the expected words on stderr, with no traceback and no uncaught exception."""
    if isinstance(result, Result):
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    else:
        assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr


# --- database -----------------------------------------------------------------------------------


def test_db_prepare_reports_each_step_and_can_be_repeated() -> None:
    result = invoke("db", "prepare")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith("... exists")  # the suite's database was made at session start
    assert lines[1].startswith("PostGIS and the application role") and lines[1].endswith("... ok")
    assert lines[2] == "migrations ... at head"
    assert lines[3].startswith("token signing key ... ")


def test_db_prepare_with_unreachable_server_says_so_plainly() -> None:
    result = invoke("db", "prepare", DATABASE_URL=f"postgresql://parkhub:parkhub@127.0.0.1:{closed_port()}/x")
    assert_plain_failure(result, "parkhub: cannot connect to PostgreSQL", "Is the server running")
    assert result.stdout.splitlines()[-1].endswith("... failed")


def test_migrate_to_head_and_to_an_unknown_revision() -> None:
    result = invoke("migrate")
    assert result.exit_code == 0, result.output
    assert "migrated to head" in result.stdout
    assert_plain_failure(invoke("migrate", "--revision", "nosuch"), "migration failed", "nosuch")


# --- serving ------------------------------------------------------------------------------------


def test_serve_refuses_to_start_without_redis() -> None:
    result = run_parkhub("serve", REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    assert_plain_failure(result, "cannot reach Redis at 127.0.0.1:")
    assert "PostgreSQL" not in result.stderr  # the database is fine and is not blamed


def test_worker_refuses_to_start_without_the_database() -> None:
    result = invoke("worker", APP_DATABASE_URL=f"postgresql://parkhub_app:x@127.0.0.1:{closed_port()}/x")
    assert_plain_failure(result, "cannot reach PostgreSQL at 127.0.0.1:", "parkhub db prepare")


def test_serve_rejects_reload_with_several_workers() -> None:
    assert_plain_failure(invoke("serve", "--reload", "--workers", "2"), "--reload")


# --- dev's supervision --------------------------------------------------------------------------


def sleeper(pid_file: Path, *, ignore_sigterm: bool = False) -> list[str]:
    """A child that records its pid and then waits to be stopped."""
    ignore = "signal.signal(signal.SIGTERM, signal.SIG_IGN); " if ignore_sigterm else ""
    code = f"import os, pathlib, signal, time; {ignore}pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); "
    code += "time.sleep(600)"
    return [sys.executable, "-c", code]


def quitter_after(pid_file: Path, code: int) -> list[str]:
    """A child that exits with `code` once the other child is up."""
    script = f"import pathlib, sys, time\nwhile not pathlib.Path({str(pid_file)!r}).exists(): time.sleep(0.01)\n"
    script += f"sys.exit({code})"
    return [sys.executable, "-c", script]


def wait_for(path: Path) -> int:
    deadline = time.monotonic() + 60
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return int(path.read_text())


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_when_one_child_dies_the_other_is_stopped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api_pid = tmp_path / "api.pid"
    code = supervise([ChildSpec("API server", sleeper(api_pid)), ChildSpec("worker", quitter_after(api_pid, 3))])

    assert code == 1
    assert "the worker exited with code 3; stopping API server" in capsys.readouterr().err
    assert not is_running(int(api_pid.read_text()))


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stubborn_pid = tmp_path / "stubborn.pid"
    specs = [
        ChildSpec("API server", sleeper(stubborn_pid, ignore_sigterm=True)),
        ChildSpec("worker", quitter_after(stubborn_pid, 0)),
    ]
    code = supervise(specs, grace_seconds=0.5)

    assert code == 1  # a child ending on its own is a failure even with code 0
    err = capsys.readouterr().err
    assert "the worker exited with code 0" in err
    assert "the API server did not stop within 0.5s; killing it" in err
    assert not is_running(int(stubborn_pid.read_text()))


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_both_children_and_exits_cleanly(tmp_path: Path, stop_with: signal.Signals) -> None:
    first, second = tmp_path / "first.pid", tmp_path / "second.pid"
    program = (
        "import sys\nfrom hub.cli import ChildSpec, supervise\n"
        f"sys.exit(supervise([ChildSpec('API server', {sleeper(first)!r}), ChildSpec('worker', {sleeper(second)!r})]))"
    )
    supervisor = subprocess.Popen([sys.executable, "-c", program], stderr=subprocess.PIPE, text=True)
    children = [wait_for(first), wait_for(second)]

    supervisor.send_signal(stop_with)
    _, err = supervisor.communicate(timeout=60)

    assert supervisor.returncode == 0, err
    assert not any(is_running(pid) for pid in children)


# --- schema export ------------------------------------------------------------------------------

SDL = "type Query {\n  hello: String!\n}\n"


def test_schema_export_writes_then_reports_up_to_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "schema.graphql"
    assert write_or_check_sdl(SDL, target, check=False) == 0
    assert target.read_text() == SDL
    assert write_or_check_sdl(SDL, target, check=True) == 0
    assert "up to date" in capsys.readouterr().out


def test_schema_check_fails_with_a_diff_when_stale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "schema.graphql"
    target.write_text(SDL)
    changed = SDL.replace("hello: String!", "hello: String!\n  spacesNear: Int")

    assert write_or_check_sdl(changed, target, check=True) == 1
    captured = capsys.readouterr()
    assert "+  spacesNear: Int" in captured.out
    assert "out of date; run `parkhub schema export`" in captured.err
    assert target.read_text() == SDL  # --check never writes


def test_schema_check_fails_when_the_file_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert write_or_check_sdl(SDL, tmp_path / "absent.graphql", check=True) == 1
    assert "is missing" in capsys.readouterr().err


def test_schema_export_of_the_real_api_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    assert invoke("schema", "export", "--output", str(target)).exit_code == 0
    assert target.read_text() == render_schema_sdl()
    assert "type Query" in target.read_text()
    assert invoke("schema", "export", "--check", "--output", str(target)).exit_code == 0
