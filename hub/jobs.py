"""Background jobs on arq: the worker's settings, the job registry, and `enqueue()`.

A job is sent to Redis only after the transaction that asked for it commits, so a worker never picks up
work for rows that were rolled back, and never runs before the rows it needs are visible:

    async with db.transaction(scope) as session:
        await service.do_something(session)      # calls enqueue(session, "apply_inbox_event", inbox_id)
    await flush_jobs(session)                    # optional: wait until the jobs are in Redis

`enqueue()` only records the job in `session.info`. SQLAlchemy's `after_commit` event then starts sending
the recorded jobs on the running event loop; `after_rollback` discards them. `flush_jobs(session)` waits
for that sending to finish and raises if Redis refused a job; callers that do not need to know may skip
it (the DESIGN's inbox sweep re-enqueues anything a lost send leaves behind).

Merged jobs. A job `function(ctx, key, items)` whose items are independent pieces of work (the inbox's
event ids of one tenant) may be recorded with `enqueue_merged()` instead. After commit, the items of every
transaction of this process with the same function and key are sent together: as soon as the previous
such job was sent at least MERGE_INTERVAL_SECONDS ago (so an idle process adds no delay), otherwise when
that interval has passed, and at once when MERGED_JOB_MAX_ITEMS have gathered; one job carries at most
that many items. A busy webhook then costs one Redis round trip and one job per interval instead of one
per request. Items still gathering when the process dies are lost, so use it only for work that a sweep
re-enqueues (the inbox's does after a minute). Work committed outside a Session (a driver-level
transaction) is handed over with `send_merged()` after its commit, having been checked with
`check_job()` before it.

Domains register their jobs with the `@job` decorator (or `register_cron`) in their own `tasks.py`, and
list that module in `TASK_MODULES` below so the worker imports it before it starts.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import asyncpg
from arq import Retry, cron
from arq.connections import ArqRedis, RedisSettings
from arq.cron import CronJob
from arq.worker import Function, Worker
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from hub.config import Settings, get_settings
from hub.db import Database

logger = logging.getLogger(__name__)

JobContext = dict[str, Any]
JobFunction = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=JobFunction)

# Modules whose import registers jobs with `@job` / `register_cron`; one line per domain, e.g.
# "hub.supply.tasks". Imported by `load_task_modules()` before a worker starts or a job name is checked.
TASK_MODULES: list[str] = [
    "hub.ingest.tasks",
    "hub.notify.tasks",
    "hub.street.tasks",
    "hub.queue.tasks",
    "hub.payments.tasks",
    "hub.settlement.tasks",
]

# The registry. WorkerSettings refers to these same list objects, so registrations made before a
# worker is created are part of it.
JOB_FUNCTIONS: list[JobFunction | Function] = []
CRON_JOBS: list[CronJob] = []

HEARTBEAT_KEY = "parkhub:worker:heartbeat"
HEARTBEAT_INTERVAL_SECONDS = 30
# Long enough to survive one missed beat, short enough that a dead worker's key disappears.
HEARTBEAT_TTL_SECONDS = 3 * HEARTBEAT_INTERVAL_SECONDS

_PENDING_KEY = "parkhub.jobs.pending"
_MERGED_KEY = "parkhub.jobs.merged"
_DISPATCH_KEY = "parkhub.jobs.dispatch"

# Merged jobs (see the module's notes): at most one send per function and key in this interval, unless the
# items reach the maximum, which is also the most one job carries.
MERGE_INTERVAL_SECONDS = 0.1
MERGED_JOB_MAX_ITEMS = 1000


class UnknownJob(ValueError):
    """`enqueue()` named a function no task module registered (usually a typo)."""


class JobPoolNotSet(RuntimeError):
    """`enqueue()` was called before the app or worker called `set_job_pool()`."""


class JobDispatchError(RuntimeError):
    """Redis refused jobs of a committed transaction; the rows are committed, the jobs were not sent."""

    def __init__(self, failures: list[tuple[PendingJob, BaseException]]) -> None:
        names = ", ".join(f"{pending.function}: {exc}" for pending, exc in failures)
        super().__init__(f"{len(failures)} job(s) could not be sent to Redis after commit ({names})")
        self.failures = failures


@dataclass(frozen=True)
class PendingJob:
    function: str
    args: tuple[Any, ...]
    job_id: str | None


JobFailure = tuple[PendingJob, BaseException]


# --- registry -----------------------------------------------------------------------------------


def job(function: F) -> F:
    """Register a coroutine `async def name(ctx, *args)` as a job the worker runs. The worker runs it again, after a
    short delay, when it fails on a deadlock or a serialization failure (another transaction ran at the same
    moment: say two jobs moving money of one driver, whose ledger accounts they lock in different orders): its try
    was rolled back whole, and jobs are idempotent. Returns `function` itself, for direct calls."""
    if all(getattr(known, "__wrapped__", known) is not function for known in JOB_FUNCTIONS):

        @functools.wraps(function)
        async def retried_when_transient(ctx: JobContext, *args: Any, **kwargs: Any) -> Any:
            try:
                return await function(ctx, *args, **kwargs)
            except Exception as error:
                retry_if_transient(ctx, error)
                raise

        JOB_FUNCTIONS.append(retried_when_transient)
    return function


def unregister(function: Callable[..., Any]) -> None:
    """Forget a job registered with `job()` (tests register jobs of their own)."""
    JOB_FUNCTIONS[:] = [known for known in JOB_FUNCTIONS if getattr(known, "__wrapped__", known) is not function]


# Errors a transaction may hit only because another one ran at the same moment: trying again will do.
TRANSIENT_ERRORS = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)


def is_transient(error: BaseException) -> bool:
    """Whether `error` (raised by asyncpg directly, or wrapped by SQLAlchemy) is a deadlock or a serialization
    failure: the transaction was rolled back whole, and running it again may succeed."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, TRANSIENT_ERRORS):
            return True
        seen.add(id(current))
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def retry_if_transient(ctx: dict[str, Any], error: BaseException) -> None:
    """Raise arq's Retry (with a short growing delay) when `error` is transient; return otherwise, so the caller
    re-raises it. Jobs are idempotent, so running one again after its rolled-back try is safe."""
    if is_transient(error):
        raise Retry(defer=0.05 * ctx.get("job_try", 1)) from error


def register_cron(cron_job: CronJob) -> CronJob:
    """Register a periodic job made with `arq.cron(...)`."""
    if all(existing.name != cron_job.name for existing in CRON_JOBS):
        CRON_JOBS.append(cron_job)
    return cron_job


_loaded_modules: set[str] = set()


def load_task_modules(modules: Iterable[str] | None = None) -> None:
    for module in TASK_MODULES if modules is None else modules:
        if module not in _loaded_modules:  # import_module's own lookup showed up on the webhooks' hot path
            importlib.import_module(module)
            _loaded_modules.add(module)


_known_names: tuple[int, int, frozenset[str]] = (-1, -1, frozenset())


def registered_function_names() -> frozenset[str]:
    """Names `enqueue()` accepts; recomputed only when the registry grew (enqueue is on hot paths)."""
    global _known_names
    load_task_modules()
    functions_seen, crons_seen, names = _known_names
    if (functions_seen, crons_seen) != (len(JOB_FUNCTIONS), len(CRON_JOBS)):
        names = frozenset(
            [getattr(function, "name", None) or function.__name__ for function in JOB_FUNCTIONS]
            + [cron_job.name for cron_job in CRON_JOBS]
        )
        _known_names = (len(JOB_FUNCTIONS), len(CRON_JOBS), names)
    return names


# --- the pool ---------------------------------------------------------------------------------

_job_pool: ArqRedis | None = None


def set_job_pool(pool: ArqRedis | None) -> None:
    """Called by the app's lifespan and the worker's start-up with their arq pool (None on shutdown)."""
    global _job_pool
    _job_pool = pool


def get_job_pool() -> ArqRedis:
    if _job_pool is None:
        raise JobPoolNotSet("no job pool: the app or worker must call hub.jobs.set_job_pool(pool) at start-up")
    return _job_pool


# --- enqueue after commit -----------------------------------------------------------------------


def check_job(function_name: str) -> None:
    """Raise UnknownJob or JobPoolNotSet now if a job `function_name` could not be sent."""
    if function_name not in registered_function_names():
        raise UnknownJob(f"no job named {function_name!r} is registered (see hub.jobs.TASK_MODULES)")
    get_job_pool()


def enqueue(session: AsyncSession, function_name: str, *args: Any, job_id: str | None = None) -> None:
    """Record a job to send to the worker once `session`'s transaction commits.

    Raises UnknownJob or JobPoolNotSet at once, inside the transaction, so a mistake rolls the
    transaction back instead of committing rows whose follow-up work can never run.
    `job_id` makes the job unique in arq: a second job with the same id is not queued while the first
    exists.
    """
    check_job(function_name)
    session.info.setdefault(_PENDING_KEY, []).append(PendingJob(function_name, args, job_id))


def enqueue_merged(session: AsyncSession, function_name: str, key: str, items: Sequence[Any]) -> None:
    """Record `items` for a merged job `function_name(ctx, key, items)`, sent after `session` commits
    together with other transactions' items for the same function and key (see the module's notes).
    Raises like `enqueue()`."""
    check_job(function_name)
    session.info.setdefault(_MERGED_KEY, []).append((function_name, key, list(items)))


def send_merged(function_name: str, key: str, items: Sequence[Any]) -> asyncio.Task[list[JobFailure]] | None:
    """Hand over `items` of work already committed outside a Session, merged like `enqueue_merged()`.
    Call `check_job()` before the transaction. Never raises: the work is committed, so a job that cannot be
    sent is logged (the sweep picks its items up). Returns the send's task, to await when it matters."""
    if _job_pool is None:
        logger.error("job pool is unset; %d item(s) of committed work not sent: %s", len(items), function_name)
        return None
    return _merger.add(_job_pool, function_name, key, items)


def send_committed(jobs: Sequence[PendingJob]) -> asyncio.Task[list[JobFailure]] | None:
    """Send `jobs` for work already committed outside a Session (a `Database.driver_transaction`), as
    `enqueue()` does after a Session's commit. Call `check_job()` for each before the transaction. Never raises:
    the work is committed, so a job that cannot be sent is logged. Returns the send's task, to await when it
    matters."""
    if not jobs:
        return None
    if _job_pool is None:
        logger.error("job pool is unset; %d job(s) of committed work not sent: %s", len(jobs), jobs)
        return None
    task = asyncio.get_running_loop().create_task(_send(_job_pool, list(jobs)))
    _track(task)
    return task


async def flush_jobs(session: AsyncSession) -> None:
    """Wait until the jobs of `session`'s committed transactions are in Redis.

    A no-op when nothing was enqueued or the transaction rolled back. Raises JobDispatchError when Redis
    refused some of them. Merged jobs may take up to MERGE_INTERVAL_SECONDS longer.
    """
    dispatches: list[asyncio.Task[list[JobFailure]]] = session.info.pop(_DISPATCH_KEY, [])
    failures = [failure for task in dispatches for failure in await task]
    if failures:
        raise JobDispatchError(failures)


# Dispatch tasks still running, kept referenced so the loop does not drop them half-way.
_in_flight: set[asyncio.Task[Any]] = set()


def _track(task: asyncio.Task[Any]) -> None:
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


async def drain_dispatches() -> None:
    """Send merged jobs now and wait for every send still in flight (call on shutdown, before closing the
    pool; tests call it to have the jobs of the requests they made in Redis)."""
    _merger.send_all_now()
    while _in_flight:
        await asyncio.gather(*list(_in_flight), return_exceptions=True)
        _merger.send_all_now()


async def _send(pool: ArqRedis, jobs: list[PendingJob]) -> list[JobFailure]:
    failures: list[JobFailure] = []
    for pending in jobs:
        try:
            await pool.enqueue_job(pending.function, *pending.args, _job_id=pending.job_id)
        except Exception as exc:
            logger.exception("could not send job %s after commit", pending.function)
            failures.append((pending, exc))
    return failures


@dataclass
class _MergedBatch:
    """Items gathering for one merged job (or a few, past MERGED_JOB_MAX_ITEMS), until their send starts."""

    pool: ArqRedis
    function: str
    key: str
    loop: asyncio.AbstractEventLoop
    items: list[Any] = field(default_factory=list)
    due: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[list[JobFailure]] | None = None


class _Merger:
    """This process's merged jobs: one gathering batch per (pool, function, key)."""

    def __init__(self) -> None:
        self._gathering: dict[tuple[int, str, str], _MergedBatch] = {}
        self._last_sent: dict[tuple[str, str], float] = {}

    def add(self, pool: ArqRedis, function: str, key: str, items: Sequence[Any]) -> asyncio.Task[list[JobFailure]]:
        loop = asyncio.get_running_loop()
        batch_key = (id(pool), function, key)
        batch = self._gathering.get(batch_key)
        if batch is None or batch.loop is not loop or batch.task is None or batch.task.done():
            # (A batch of another event loop, left by one that closed, can never be sent: its items are the
            # sweep's now.)
            batch = self._gathering[batch_key] = _MergedBatch(pool, function, key, loop)
            wait = self._last_sent.get((function, key), -math.inf) + MERGE_INTERVAL_SECONDS - loop.time()
            batch.task = loop.create_task(self._send_when_due(batch_key, batch, wait))
            _track(batch.task)
        batch.items.extend(items)
        if len(batch.items) >= MERGED_JOB_MAX_ITEMS:
            batch.due.set()
        return batch.task

    async def _send_when_due(
        self, batch_key: tuple[int, str, str], batch: _MergedBatch, wait: float
    ) -> list[JobFailure]:
        if wait > 0 and not batch.due.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await batch.due.wait()
        # From here on nothing awaits until the jobs are built, so items added later start the next batch.
        if self._gathering.get(batch_key) is batch:
            del self._gathering[batch_key]
        if len(self._last_sent) > 100_000:
            self._last_sent.clear()
        self._last_sent[(batch.function, batch.key)] = batch.loop.time()
        items = batch.items
        jobs = [
            PendingJob(batch.function, (batch.key, items[start : start + MERGED_JOB_MAX_ITEMS]), None)
            for start in range(0, len(items), MERGED_JOB_MAX_ITEMS)
        ]
        return await _send(batch.pool, jobs)

    def send_all_now(self) -> None:
        for batch in list(self._gathering.values()):
            batch.due.set()


_merger = _Merger()


@event.listens_for(Session, "after_commit")
def _send_after_commit(session: Session) -> None:
    jobs: list[PendingJob] = session.info.pop(_PENDING_KEY, None) or []
    merged: list[tuple[str, str, list[Any]]] = session.info.pop(_MERGED_KEY, None) or []
    if not jobs and not merged:
        return
    if _job_pool is None:
        # Raising here would report a failure for a transaction that did commit; say it loudly instead.
        logger.error(
            "job pool was unset before commit; %d job(s) not sent: %s", len(jobs) + len(merged), jobs or merged
        )
        return
    dispatches: list[asyncio.Task[list[JobFailure]]] = session.info.setdefault(_DISPATCH_KEY, [])
    if jobs:
        task = asyncio.get_running_loop().create_task(_send(_job_pool, jobs))
        _track(task)
        dispatches.append(task)
    for function, key, items in merged:
        task = _merger.add(_job_pool, function, key, items)
        if task not in dispatches:
            dispatches.append(task)


@event.listens_for(Session, "after_rollback")
def _discard_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_MERGED_KEY, None)


# --- jobs of the hub itself ---------------------------------------------------------------------


async def worker_heartbeat(ctx: JobContext) -> float:
    """Tell readiness checks a worker is alive: the current time (Unix seconds) under HEARTBEAT_KEY."""
    now = time.time()
    await ctx["redis"].set(HEARTBEAT_KEY, repr(now), ex=HEARTBEAT_TTL_SECONDS)
    return now


register_cron(cron(worker_heartbeat, second={0, 30}, run_at_startup=True, unique=True, timeout=10))


# --- the worker ---------------------------------------------------------------------------------


async def on_startup(ctx: JobContext) -> None:
    from hub.payments import providers  # the payment domain imports this module

    providers.check_configured(get_settings())
    ctx["db"] = Database.from_settings(get_settings())
    # Jobs may enqueue follow-up jobs through the worker's own connection.
    set_job_pool(ctx["redis"])


async def on_shutdown(ctx: JobContext) -> None:
    await drain_dispatches()
    if _job_pool is ctx.get("redis"):
        set_job_pool(None)
    database: Database | None = ctx.pop("db", None)
    if database is not None:
        await database.dispose()


def redis_settings(settings: Settings | None = None) -> RedisSettings:
    return RedisSettings.from_dsn((settings or get_settings()).redis_url)


class WorkerSettings:
    """What `arq`'s Worker reads (`parkhub worker` runs it); the lists are the live registry."""

    functions = JOB_FUNCTIONS
    cron_jobs = CRON_JOBS
    redis_settings = redis_settings()
    on_startup = on_startup
    on_shutdown = on_shutdown
    max_jobs = 20
    # How often an idle worker asks Redis for jobs: arq's 0.5 s was most of an event's way to a live
    # subscriber (bench: p50 347 -> 81 ms); 20 cheap polls a second cost nothing worth measuring.
    poll_delay = 0.05
    job_timeout = 300
    keep_result = 3600
    # On SIGTERM, let running jobs finish for a while before cancelling them.
    job_completion_wait = 20


def create_worker(settings: Settings | None = None, **overrides: Any) -> Worker:
    """An arq Worker for the hub: task modules imported, Redis from `settings` (read now, not at import)."""
    load_task_modules()
    options: dict[str, Any] = {
        key: value for key, value in vars(WorkerSettings).items() if not key.startswith("_") and key != "functions"
    }
    options["functions"] = list(JOB_FUNCTIONS)
    # arq keeps the next run time on each CronJob; give each worker its own copies.
    options["cron_jobs"] = [_fresh_cron(cron_job) for cron_job in CRON_JOBS]
    options["redis_settings"] = redis_settings(settings)
    options.update(overrides)
    return Worker(**options)


def _fresh_cron(cron_job: CronJob) -> CronJob:
    return replace(cron_job, next_run=None)
