"""The ingest benchmark's fixtures: the bench operator with its sensors and connectors, the worker process,
and keeping the job queue free of the bench's leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
from arq.constants import job_key_prefix
from arq.jobs import DeserializationError, deserialize_job
from redis import Redis as SyncRedis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bench.live_latency import TimedSpace
from bench.server import ROOT, ServerError, parkhub_command
from hub.config import Settings
from hub.db import PLATFORM, Database, make_engine
from hub.ingest.service import APPLY_JOB
from hub.jobs import HEARTBEAT_KEY
from hub.principal import Principal
from hub.seed import repository as seed_repository
from hub.supply import devices as supply_devices
from hub.supply.rules import effective_status
from tenants import service as tenants_service

BENCH_OPERATOR = "futian-cbd-parking"
CONNECTOR_NAME_PREFIX = "bench ingest"
LOAD_SENSORS = 1_000  # the ingest runs' events take turns over these
TIMED_SENSORS = 1_000  # the latency run uses each of these at most once
LOAD_SENSOR_PREFIX = "BENCH-LOAD-"
TIMED_SENSOR_PREFIX = "BENCH-TIMED-"
ARQ_QUEUE_KEY = "arq:queue"


@dataclass(frozen=True)
class BenchOperator:
    id: uuid.UUID
    slug: str
    load_sensors: tuple[str, ...]
    timed_sensors: tuple[tuple[str, uuid.UUID, str], ...]  # (external id, space id, space code)


# --- the bench operator -------------------------------------------------------------------------------------


def _owner(settings: Settings) -> Database:
    return Database(make_engine(settings.database_url, settings, pool_size=2))


async def _sensors(session: AsyncSession, tenant_id: uuid.UUID, prefix: str) -> dict[str, tuple[uuid.UUID, str]]:
    """The operator's live sensors whose external id starts with `prefix`: their space's id and code."""
    rows = await session.execute(
        text(
            "SELECT d.external_id, s.id, s.code FROM devices d JOIN spaces s ON s.tenant_id = d.tenant_id "
            "AND s.id = d.space_id WHERE d.tenant_id = :t AND d.external_id LIKE :p AND d.retired_at IS NULL"
        ),
        {"t": tenant_id, "p": prefix + "%"},
    )
    return {row.external_id: (row.id, row.code) for row in rows}


async def prepare_operator(settings: Settings) -> BenchOperator:
    """The bench operator with its sensors (registered on first use), and no bench connectors left over
    from an interrupted run."""
    owner = _owner(settings)
    try:
        async with owner.transaction(PLATFORM) as session:
            tenant = await tenants_service.get_tenant_by_slug(session, BENCH_OPERATOR)
            await session.execute(
                text("DELETE FROM connectors WHERE tenant_id = :t AND name LIKE :n"),
                {"t": tenant.id, "n": CONNECTOR_NAME_PREFIX + "%"},
            )
            missing = []
            for prefix, count in ((LOAD_SENSOR_PREFIX, LOAD_SENSORS), (TIMED_SENSOR_PREFIX, TIMED_SENSORS)):
                existing = await _sensors(session, tenant.id, prefix)
                missing += [f"{prefix}{n:05d}" for n in range(1, count + 1) if f"{prefix}{n:05d}" not in existing]
            if missing:
                # Spaces that sensors report on (not reserved or out of service) and that no device watches yet.
                free = await session.execute(
                    text(
                        "SELECT s.id FROM spaces s WHERE s.tenant_id = :t AND s.retired_at IS NULL "
                        "AND s.status IN ('vacant', 'occupied') AND NOT EXISTS (SELECT 1 FROM devices d "
                        "WHERE d.tenant_id = s.tenant_id AND d.space_id = s.id AND d.retired_at IS NULL) "
                        "ORDER BY s.code LIMIT :n"
                    ),
                    {"t": tenant.id, "n": len(missing)},
                )
                admin = Principal("operator", subject="bench:ingest", tenant_id=tenant.id, role="operator_admin")
                # A small city may have fewer free spaces than sensors wanted: the runs use the sensors there are.
                for external_id, space_id in zip(missing, [row.id for row in free], strict=False):
                    fields = {"kind": "geomagnetic_sensor", "external_id": external_id, "space_id": space_id}
                    await supply_devices.register_device(session, admin, fields)
            load = await _sensors(session, tenant.id, LOAD_SENSOR_PREFIX)
            timed = await _sensors(session, tenant.id, TIMED_SENSOR_PREFIX)
    finally:
        await owner.dispose()
    return BenchOperator(
        id=tenant.id,
        slug=tenant.slug,
        load_sensors=tuple(sorted(load)),
        timed_sensors=tuple((external_id, *timed[external_id]) for external_id in sorted(timed)),
    )


async def create_connector(settings: Settings, operator: BenchOperator, phase: str) -> tuple[uuid.UUID, str]:
    owner = _owner(settings)
    try:
        async with owner.transaction(PLATFORM) as session:
            connector, secret = await tenants_service.create_connector(
                session,
                tenant_id=operator.id,
                name=f"{CONNECTOR_NAME_PREFIX} {phase} {datetime.now(UTC):%Y%m%d%H%M%S}",
                format="native",
                auth_mode="signature",
            )
    finally:
        await owner.dispose()
    return connector.id, secret


async def delete_connectors(settings: Settings, operator: BenchOperator, connector_ids: list[uuid.UUID]) -> None:
    """Delete the runs' connectors; their inbox rows go with them (ON DELETE CASCADE). Then vacuum the inbox
    at once, rather than have autovacuum do it in the middle of the next run."""
    if not connector_ids:
        return
    owner = _owner(settings)
    try:
        async with owner.transaction(PLATFORM) as session:
            await session.execute(
                text("DELETE FROM connectors WHERE tenant_id = :t AND id = ANY(:ids)"),
                {"t": operator.id, "ids": connector_ids},
            )
    finally:
        await owner.dispose()
    conn = await seed_repository.connect(settings.database_url)
    try:
        await conn.execute("VACUUM (ANALYZE) inbox_events")
    finally:
        await conn.close()


async def applied_events(settings: Settings, operator: BenchOperator, connector_id: uuid.UUID) -> int:
    owner = _owner(settings)
    try:
        async with owner.transaction(PLATFORM) as session:
            return int(
                await session.scalar(
                    text(
                        "SELECT count(*) FROM inbox_events WHERE tenant_id = :t AND connector_id = :c "
                        "AND state <> 'pending'"
                    ),
                    {"t": operator.id, "c": connector_id},
                )
                or 0
            )
    finally:
        await owner.dispose()


async def bench_backends(settings: Settings) -> list[int]:
    """Process ids of the PostgreSQL backends serving the bench database (the API's and the worker's)."""
    owner = _owner(settings)
    try:
        async with owner.engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            )
            return [row.pid for row in rows]
    finally:
        await owner.dispose()


async def timed_spaces_now(settings: Settings, operator: BenchOperator) -> list[TimedSpace]:
    """The latency sensors with what their spaces show now, so each event can be the opposite."""
    owner = _owner(settings)
    stale_after = timedelta(seconds=settings.status_stale_after_seconds)
    now = datetime.now(UTC)
    try:
        async with owner.transaction(PLATFORM) as session:
            rows = await session.execute(
                text("SELECT id, status, status_confirmed_at FROM spaces WHERE tenant_id = :t AND id = ANY(:ids)"),
                {"t": operator.id, "ids": [space_id for _, space_id, _ in operator.timed_sensors]},
            )
            shown = {row.id: effective_status(row.status, row.status_confirmed_at, now, stale_after) for row in rows}
    finally:
        await owner.dispose()
    return [
        TimedSpace(device_id=external_id, space_code=code, occupied_now=shown.get(space_id) == "occupied")
        for external_id, space_id, code in operator.timed_sensors
    ]


def issue_staff_token(operator: BenchOperator) -> str:
    command = [*parkhub_command(), "token", "issue", "--tenant", operator.slug, "--role", "operator_staff"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    if completed.returncode != 0:
        raise ServerError(f"could not issue a token: {completed.stderr.strip()[-500:]}")
    return completed.stdout.strip()


# --- the worker ---------------------------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """`parkhub worker` as a child process in a session of its own."""

    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkstemp(prefix="parkhub-bench-worker-", suffix=".log")[1])
    )

    def start(self, redis_url: str, ready_timeout: float = 60.0) -> None:
        env = {**os.environ, "PARKHUB_ENV": os.environ.get("PARKHUB_ENV", "production")}
        started = time.time()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*parkhub_command(), "worker"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        redis = SyncRedis.from_url(redis_url)
        try:
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerError(f"the worker exited with code {self.process.returncode}:\n{self.log_tail()}")
                beat = redis.get(HEARTBEAT_KEY)
                # Its first heartbeat runs at start-up, so a beat newer than the start is this worker's.
                if beat is not None and float(beat) >= started:
                    return
                time.sleep(0.2)
        finally:
            redis.close()
        raise ServerError(f"the worker did not start within {ready_timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


async def purge_bench_jobs(redis_url: str, tenant_id: uuid.UUID) -> int:
    """Remove queued jobs that apply the bench operator's events: the rows they name were deleted with the
    phases' connectors, so they would only keep the next worker busy. Other jobs are left alone."""
    redis = aioredis.from_url(redis_url)
    purged = 0
    try:
        job_ids: list[bytes] = await redis.zrange(ARQ_QUEUE_KEY, 0, -1)
        for start in range(0, len(job_ids), 1000):
            chunk = job_ids[start : start + 1000]
            stale = []
            found = await redis.mget([job_key_prefix + job_id.decode() for job_id in chunk])
            for job_id, data in zip(chunk, found, strict=True):
                if data is None:
                    continue
                try:
                    queued = deserialize_job(data)
                except DeserializationError:
                    continue
                if queued.function == APPLY_JOB and queued.args[:1] == (str(tenant_id),):
                    stale.append(job_id)
            if stale:
                async with redis.pipeline(transaction=False) as pipeline:
                    pipeline.zrem(ARQ_QUEUE_KEY, *stale)
                    pipeline.delete(*(job_key_prefix + job_id.decode() for job_id in stale))
                    await pipeline.execute()
                purged += len(stale)
    finally:
        await redis.aclose()
    return purged


async def queue_depth(redis_url: str) -> int:
    redis = aioredis.from_url(redis_url)
    try:
        return int(await redis.zcard(ARQ_QUEUE_KEY))
    finally:
        await redis.aclose()
