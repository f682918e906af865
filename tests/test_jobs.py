"""Jobs reach Redis only when their transaction commits, and a real arq worker runs them."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from arq import create_pool
from arq.connections import ArqRedis
from arq.worker import Worker

from hub import jobs
from hub.config import Settings
from hub.db import PLATFORM, Database
from tenants.models import Tenant

# A queue of its own, so jobs other tests leave in Redis never reach these workers.
QUEUE = "parkhub:test:jobs"
SERVICE_AREA = "SRID=4326;MULTIPOLYGON(((113.7 22.4,114.7 22.4,114.7 22.9,113.7 22.9,113.7 22.4)))"


def _seen_key(tenant_id: str) -> str:
    return f"parkhub:test:seen-tenant:{tenant_id}"


async def remember_tenant_name(ctx: jobs.JobContext, tenant_id: str) -> None:
    """A job that needs the committed row: it reads the tenant through the worker's database."""
    database: Database = ctx["db"]
    async with database.transaction(PLATFORM) as session:
        tenant = await session.get(Tenant, uuid.UUID(tenant_id))
    await ctx["redis"].set(_seen_key(tenant_id), tenant.name if tenant else "<missing>")


@pytest.fixture
async def job_pool(settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(jobs.redis_settings(settings), default_queue_name=QUEUE)
    await pool.delete(QUEUE)
    jobs.set_job_pool(pool)
    jobs.job(remember_tenant_name)
    yield pool
    jobs.unregister(remember_tenant_name)
    jobs.set_job_pool(None)
    await pool.aclose()


def _worker(settings: Settings, *, with_cron_jobs: bool = False) -> Worker:
    """The hub's worker, in-process, draining the test queue once and stopping."""
    options: dict[str, object] = {"queue_name": QUEUE, "burst": True, "handle_signals": False, "poll_delay": 0.05}
    if not with_cron_jobs:
        options["cron_jobs"] = []
    return jobs.create_worker(settings, **options)


async def _run_burst(worker: Worker) -> int:
    try:
        return await worker.run_check()
    finally:
        await worker.close()


def _new_tenant() -> Tenant:
    slug = f"jobs-{uuid.uuid4().hex[:10]}"
    return Tenant(slug=slug, name=f"Operator {slug}", service_area=SERVICE_AREA)


async def test_job_enqueued_in_committed_transaction_runs_after_commit(
    db: Database, redis: aioredis.Redis, job_pool: ArqRedis, settings: Settings
) -> None:
    tenant = _new_tenant()
    async with db.transaction(PLATFORM) as session:
        session.add(tenant)
        await session.flush()
        jobs.enqueue(session, "remember_tenant_name", str(tenant.id), job_id=f"remember:{tenant.id}")
        # Still inside the transaction: nothing may be in Redis yet.
        assert await job_pool.zcard(QUEUE) == 0
    await jobs.flush_jobs(session)

    assert [queued.function for queued in await job_pool.queued_jobs(queue_name=QUEUE)] == ["remember_tenant_name"]
    assert await _run_burst(_worker(settings)) == 1
    assert await redis.get(_seen_key(str(tenant.id))) == tenant.name.encode()


async def test_job_of_rolled_back_transaction_never_reaches_redis(
    db: Database, owner_db: Database, redis: aioredis.Redis, job_pool: ArqRedis, settings: Settings
) -> None:
    tenant = _new_tenant()
    job_id = f"remember:{uuid.uuid4()}"

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with db.transaction(PLATFORM) as session:
            session.add(tenant)
            await session.flush()
            jobs.enqueue(session, "remember_tenant_name", str(tenant.id), job_id=job_id)
            raise Abandon
    await jobs.flush_jobs(session)

    assert await job_pool.zcard(QUEUE) == 0
    assert await redis.exists(f"arq:job:{job_id}") == 0
    assert await _run_burst(_worker(settings)) == 0
    assert await redis.get(_seen_key(str(tenant.id))) is None
    async with owner_db.transaction(PLATFORM) as check:
        assert await check.get(Tenant, tenant.id) is None


async def test_same_job_id_is_queued_once(db: Database, job_pool: ArqRedis) -> None:
    tenant_id = str(uuid.uuid4())
    for _ in range(2):
        async with db.transaction(PLATFORM) as session:
            jobs.enqueue(session, "remember_tenant_name", tenant_id, job_id=f"remember:{tenant_id}")
        await jobs.flush_jobs(session)
    assert await job_pool.zcard(QUEUE) == 1


async def test_unknown_job_name_fails_inside_the_transaction(
    db: Database, owner_db: Database, job_pool: ArqRedis
) -> None:
    tenant = _new_tenant()
    with pytest.raises(jobs.UnknownJob, match="remember_tenant_nmae"):
        async with db.transaction(PLATFORM) as session:
            session.add(tenant)
            await session.flush()
            jobs.enqueue(session, "remember_tenant_nmae", str(tenant.id))
    assert await job_pool.zcard(QUEUE) == 0
    async with owner_db.transaction(PLATFORM) as check:
        assert await check.get(Tenant, tenant.id) is None


async def test_enqueue_without_a_pool_is_refused(db: Database) -> None:
    jobs.set_job_pool(None)
    with pytest.raises(jobs.JobPoolNotSet, match="set_job_pool"):
        async with db.transaction(PLATFORM) as session:
            jobs.enqueue(session, "cron:worker_heartbeat")


async def test_heartbeat_cron_writes_the_current_time(redis: aioredis.Redis, settings: Settings) -> None:
    await redis.delete(jobs.HEARTBEAT_KEY)
    before = time.time()
    assert await _run_burst(_worker(settings, with_cron_jobs=True)) >= 1
    after = time.time()

    written = float(await redis.get(jobs.HEARTBEAT_KEY))
    assert before <= written <= after
    assert 0 < await redis.ttl(jobs.HEARTBEAT_KEY) <= jobs.HEARTBEAT_TTL_SECONDS


async def test_a_deadlock_is_transient_and_a_job_is_retried_for_it(owner_db) -> None:  # type: ignore[no-untyped-def]
    """Two transactions taking two locks in opposite orders: PostgreSQL rolls one back with a deadlock, which a job
    runs again (arq Retry) instead of failing; other errors are not retried."""
    import asyncio

    from arq import Retry
    from sqlalchemy import text

    from hub import jobs

    async def lock_both(first: int, second: int, both_hold_one: asyncio.Barrier) -> None:
        async with owner_db.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": first})
            await both_hold_one.wait()
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": second})

    barrier = asyncio.Barrier(2)
    results = await asyncio.gather(
        lock_both(7_001, 7_002, barrier), lock_both(7_002, 7_001, barrier), return_exceptions=True
    )
    [deadlock] = [result for result in results if isinstance(result, BaseException)]
    assert jobs.is_transient(deadlock)  # wrapped by SQLAlchemy, the asyncpg error underneath
    with pytest.raises(Retry):
        jobs.retry_if_transient({"job_try": 1}, deadlock)
    jobs.retry_if_transient({"job_try": 1}, ValueError("not a database race"))  # returns: the caller re-raises
    assert not jobs.is_transient(ValueError("not a database race"))


async def deadlocks_on_its_first_try(ctx: jobs.JobContext, key: str) -> int:
    """A job whose first try meets a deadlock, as two jobs moving one driver's money can."""
    import asyncpg

    tries = await ctx["redis"].incr(key)
    if tries == 1:
        raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
    return tries


async def test_the_worker_runs_a_job_again_after_a_deadlock(job_pool: ArqRedis, settings: Settings) -> None:
    jobs.job(deadlocks_on_its_first_try)
    try:
        key = f"parkhub:test:tries:{uuid.uuid4().hex}"
        await job_pool.enqueue_job("deadlocks_on_its_first_try", key)
        worker = _worker(settings)
        assert await _run_burst(worker) == 1  # finished, not failed: run_check raises for a failed job
        assert int(await job_pool.get(key)) == 2
        assert worker.jobs_retried == 1
    finally:
        jobs.unregister(deadlocks_on_its_first_try)
