"""Merged jobs: items of several committed transactions travel in one job; rolled-back ones never do."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from arq import create_pool
from arq.connections import ArqRedis

from hub import jobs
from hub.config import Settings
from hub.db import PLATFORM, Database

QUEUE = "parkhub:test:merged-jobs"


async def collect_items(ctx: jobs.JobContext, key: str, items: list[str]) -> int:
    return len(items)


@pytest.fixture
async def job_pool(settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(jobs.redis_settings(settings), default_queue_name=QUEUE)
    await pool.delete(QUEUE)
    jobs.set_job_pool(pool)
    jobs.job(collect_items)
    yield pool
    jobs.unregister(collect_items)
    jobs.set_job_pool(None)
    await pool.delete(QUEUE)
    await pool.aclose()


async def _queued(pool: ArqRedis) -> list[tuple[str, tuple]]:
    return sorted((job.function, tuple(job.args)) for job in await pool.queued_jobs(queue_name=QUEUE))


async def test_items_of_transactions_committed_together_travel_in_one_job(db: Database, job_pool: ArqRedis) -> None:
    key = str(uuid.uuid4())
    sessions = []
    for number in range(3):
        async with db.transaction(PLATFORM) as session:
            jobs.enqueue_merged(session, "collect_items", key, [f"item-{number}"])
        sessions.append(session)
    for session in sessions:
        await jobs.flush_jobs(session)
    queued = await _queued(job_pool)
    assert sorted(item for _, (k, items) in queued if k == key for item in items) == ["item-0", "item-1", "item-2"]
    assert len(queued) < 3


async def test_rolled_back_items_are_never_sent(db: Database, job_pool: ArqRedis) -> None:
    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with db.transaction(PLATFORM) as session:
            jobs.enqueue_merged(session, "collect_items", "k", ["lost"])
            raise Abandon
    await jobs.drain_dispatches()
    assert await _queued(job_pool) == []


async def test_a_job_carries_at_most_the_maximum(job_pool: ArqRedis) -> None:
    items = [str(number) for number in range(jobs.MERGED_JOB_MAX_ITEMS + 5)]
    task = jobs.send_merged("collect_items", "big", items)
    assert task is not None and await task == []
    sizes = sorted(len(args[1]) for _, args in await _queued(job_pool))
    assert sizes == [5, jobs.MERGED_JOB_MAX_ITEMS]


async def test_unknown_merged_job_fails_inside_the_transaction(db: Database, job_pool: ArqRedis) -> None:
    with pytest.raises(jobs.UnknownJob):
        async with db.transaction(PLATFORM) as session:
            jobs.enqueue_merged(session, "collect_itemz", "k", ["x"])
