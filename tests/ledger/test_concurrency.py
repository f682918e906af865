"""The engine under concurrent transactions of the application role: one pending resolved once however many try,
a bounded account never below zero however many debit it at once, identical replays applied once, and batches
crossing the same accounts in every order never deadlocking."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import pytest
from sqlalchemy import text

from hub.db import PLATFORM, Database
from hub.ledger import service
from hub.ledger.errors import InsufficientBalance, LedgerError, PendingAlreadyResolved, TransferConflict
from hub.ledger.rules import TransferSpec, account_spec, transfer_id
from tests.ledger.conftest import Books, apply, single, sums

T = TypeVar("T")
RACERS = 12


async def _race(db: Database, work: Callable[[int], Callable[..., Awaitable[T]]]) -> list[T | BaseException]:
    """Run RACERS transactions that each open, wait until all are open, then do their work at once."""
    everyone_in = asyncio.Barrier(RACERS)

    async def racer(index: int) -> T:
        async with db.transaction(PLATFORM) as session:
            await session.execute(text("SELECT 1"))  # hold a connection and a transaction before the start
            # Never wait forever: a racer that could not get a connection would leave the others at the barrier.
            async with asyncio.timeout(30):
                await everyone_in.wait()
            return await work(index)(session)

    return await asyncio.gather(*(racer(index) for index in range(RACERS)), return_exceptions=True)


async def test_many_posts_and_voids_of_one_pending_one_wins(db: Database, books: Books) -> None:
    await apply(db, [single(books.clearing, books.prepaid, 1000)])
    hold = single(books.prepaid, books.payable, 700, kind="pending")
    await apply(db, [hold])

    def resolve(index: int) -> Callable[..., Awaitable[list[service.TransferResult]]]:
        kind = "post_pending" if index % 2 else "void_pending"
        amount = 500 + index if kind == "post_pending" else 0
        transfer = TransferSpec(transfer_id("race", index, hold.id), None, None, amount, "payment", kind, hold.id)
        return lambda session: service.create_transfers(session, [transfer])

    outcomes = await _race(db, resolve)
    winners = [outcome for outcome in outcomes if isinstance(outcome, list)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, PendingAlreadyResolved)]
    assert len(winners) == 1 and len(losers) == RACERS - 1, outcomes
    debits_pending, debits_posted, _, _ = await sums(db, books.prepaid)
    assert debits_pending == 0
    assert debits_posted in {0} | {500 + index for index in range(1, RACERS, 2)}
    async with db.transaction(PLATFORM) as session:
        resolutions = (
            await session.execute(text("SELECT count(*) FROM ledger_transfers WHERE pending_id = :p"), {"p": hold.id})
        ).scalar_one()
    assert resolutions == 1


async def test_concurrent_debits_never_take_a_wallet_below_zero(db: Database, books: Books) -> None:
    await apply(db, [single(books.clearing, books.prepaid, 1000)])

    def spend(_index: int) -> Callable[..., Awaitable[list[service.TransferResult]]]:
        transfer = single(books.prepaid, books.payable, 150, driver_id=books.driver_id, tenant_id=books.tenant_id)
        return lambda session: service.create_transfers(session, [transfer])

    outcomes = await _race(db, spend)
    spent = [outcome for outcome in outcomes if isinstance(outcome, list)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, InsufficientBalance)]
    assert (len(spent), len(refused)) == (6, RACERS - 6), outcomes  # 6 x 150 fits in 1000, a 7th would not
    assert await sums(db, books.prepaid) == (0, 900, 0, 1000)


async def test_concurrent_identical_replays_make_one_transfer(db: Database, books: Books) -> None:
    payment = single(books.clearing, books.payable, 999, tenant_id=books.tenant_id)

    def pay(_index: int) -> Callable[..., Awaitable[list[service.TransferResult]]]:
        return lambda session: service.create_transfers(session, [payment])

    outcomes = await _race(db, pay)
    results = sorted(outcome[0].result for outcome in outcomes if isinstance(outcome, list))
    assert results == ["created"] + ["exists"] * (RACERS - 1), outcomes
    assert await sums(db, books.payable) == (0, 0, 0, 999)


async def test_batches_crossing_accounts_in_every_order_do_not_deadlock(db: Database, books: Books) -> None:
    pool = [account_spec("provider_clearing", f"mesh-{index}-{uuid.uuid4().hex[:6]}") for index in range(5)]
    async with db.transaction(PLATFORM) as session:
        await service.ensure_accounts(session, pool)
    shuffler = random.Random(7)
    batches = []
    for _ in range(RACERS):
        legs = []
        for _ in range(4):
            debit, credit = shuffler.sample(pool, 2)
            legs.append(single(debit, credit, shuffler.randint(1, 50)))
        batches.append(legs)

    def move(index: int) -> Callable[..., Awaitable[list[service.TransferResult]]]:
        return lambda session: service.create_transfers(session, batches[index])

    outcomes = await _race(db, move)
    assert all(isinstance(outcome, list) for outcome in outcomes), outcomes
    async with db.transaction(PLATFORM) as session:
        found = await service.balances(session, [spec.id for spec in pool])
    assert sum(balance.debits_posted for balance in found.values()) == sum(leg.amount for b in batches for leg in b)
    assert sum(balance.posted for balance in found.values()) == 0  # unbounded accounts: money only moved around
    assert not any(isinstance(outcome, LedgerError) for outcome in outcomes)


async def test_a_different_transfer_racing_for_the_same_id_fails_retryably(
    db: Database, owner_db: Database, books: Books
) -> None:
    """Two different requests with one id on disjoint accounts: the later one waits on the first's insert, then
    fails with a serialization failure (nothing written); retried, it reports the conflict."""
    shared_id = transfer_id("race", uuid.uuid4())
    first = TransferSpec(shared_id, books.clearing.id, books.payable.id, 10, "payment")
    second = TransferSpec(shared_id, books.receivable.id, books.suspense.id, 10, "payment")  # no account shared
    pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def later() -> None:
        async with db.transaction(PLATFORM) as session:
            pid.set_result((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            await service.create_transfers(session, [second])

    async with db.transaction(PLATFORM) as session:
        await service.create_transfers(session, [first])
        racing = asyncio.create_task(later())
        backend = await pid
        while True:  # until the later transaction is blocked on this one's row
            async with owner_db.transaction(PLATFORM) as watcher:
                waiting = (
                    await watcher.execute(
                        text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                        {"pid": backend},
                    )
                ).scalar_one()
            if waiting:
                break
            await asyncio.sleep(0.05)
    outcome = (await asyncio.gather(racing, return_exceptions=True))[0]
    assert isinstance(outcome, asyncpg.SerializationError), outcome
    with pytest.raises(TransferConflict) as raised:
        await apply(db, [second])
    assert raised.value.detail == "debit_account_id"
    assert await sums(db, books.suspense) == (0, 0, 0, 0)
