"""The ledger's service as the payment domains call it: accounts on first use, typed errors naming the failing
transfer with nothing written, idempotent replays, two-phase transfers, expiry, statements, and both kinds of
connection (an AsyncSession and the raw asyncpg connection of a hot path)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from hub.db import PLATFORM, Database
from hub.errors import Conflict, InvalidInput, NotFound
from hub.ledger import service
from hub.ledger.errors import (
    AccountConflict,
    AccountNotFound,
    InsufficientBalance,
    InvalidTransfer,
    PendingAlreadyResolved,
    PendingExpired,
    PendingNotFound,
    PostExceedsPending,
    TransferConflict,
)
from hub.ledger.rules import AccountSpec, TransferSpec, account_id, account_spec, transfer_id
from tests.ledger.conftest import Books, apply, single, sums


def _pending(books: Books, amount: int, **fields: object) -> TransferSpec:
    return single(books.prepaid, books.payable, amount, kind="pending", driver_id=books.driver_id, **fields)


def _resolve(kind: str, pending: TransferSpec, amount: int = 0) -> TransferSpec:
    return TransferSpec(
        transfer_id(kind, uuid.uuid4()), None, None, amount, "payment", kind=kind, pending_id=pending.id
    )  # type: ignore[arg-type]


async def test_accounts_are_created_once_whoever_asks_first(db: Database, books: Books) -> None:
    async with db.transaction(PLATFORM) as session:
        await service.ensure_accounts(session, books.all)  # again: nothing changes
        found = await service.balances(session, [spec.id for spec in books.all])
    assert set(found) == {spec.id for spec in books.all}
    assert found[books.payable.id].kind == "tenant_payable"
    assert found[books.payable.id].posted == 0


async def test_an_account_id_keeps_its_attributes(db: Database, books: Books) -> None:
    impostor = AccountSpec("tenant_suspense", books.suspense.owner, tenant_id=None)  # same id, no tenant
    assert impostor.id == books.suspense.id
    with pytest.raises(AccountConflict) as raised:
        async with db.transaction(PLATFORM) as session:
            await service.ensure_accounts(session, [impostor])
    assert raised.value.code == "ACCOUNT_CONFLICT"
    assert isinstance(raised.value, Conflict)


async def test_a_payment_moves_money_and_its_replay_changes_nothing(db: Database, books: Books) -> None:
    payment = single(books.clearing, books.payable, 1200, tenant_id=books.tenant_id, reference={"payment": "p-1"})
    first = await apply(db, [payment])
    again = await apply(db, [payment])
    assert [result.result for result in first + again] == ["created", "exists"]
    assert await sums(db, books.payable) == (0, 0, 0, 1200)
    assert await sums(db, books.clearing) == (0, 1200, 0, 0)
    async with db.transaction(PLATFORM) as session:
        stored = await service.transfers(session, [payment.id])
    assert [(row["amount"], row["code"], row["reference"]) for row in stored] == [(1200, "payment", {"payment": "p-1"})]


async def test_a_replay_that_differs_is_a_conflict_naming_the_field(db: Database, books: Books) -> None:
    payment = single(books.clearing, books.payable, 1200, tenant_id=books.tenant_id)
    await apply(db, [payment])
    with pytest.raises(TransferConflict) as raised:
        await apply(db, [replace(payment, amount=1300)])
    error = raised.value
    assert (error.code, error.detail, error.index, error.transfer_id) == ("TRANSFER_CONFLICT", "amount", 0, payment.id)
    assert error.extensions()["transfer_id"] == str(payment.id)
    assert await sums(db, books.payable) == (0, 0, 0, 1200)


async def test_a_linked_batch_with_a_bad_leg_writes_nothing(db: Database, books: Books) -> None:
    top_up = single(books.clearing, books.prepaid, 500, driver_id=books.driver_id)
    spend = single(books.prepaid, books.payable, 800, driver_id=books.driver_id, tenant_id=books.tenant_id)
    with pytest.raises(InsufficientBalance) as raised:
        await apply(db, [top_up, spend])
    assert (raised.value.code, raised.value.index, raised.value.detail) == (
        "BALANCE_BOUND_EXCEEDED",
        1,
        "debit account",
    )
    assert await sums(db, books.prepaid) == (0, 0, 0, 0)
    async with db.transaction(PLATFORM) as session:
        assert await service.transfers(session, [top_up.id, spend.id]) == []
    assert [result.result for result in await apply(db, [top_up])] == ["created"]  # the good leg alone


async def test_each_refusal_is_a_typed_error(db: Database, books: Books) -> None:
    await apply(db, [single(books.clearing, books.prepaid, 1000)])
    hold = _pending(books, 300)
    await apply(db, [hold])
    missing = account_id("tenant_payable", uuid.uuid4())
    cases: list[tuple[TransferSpec, type[Exception], str]] = [
        (single(books.clearing, books.clearing, 1), InvalidTransfer, "INVALID_TRANSFER"),
        (
            TransferSpec(transfer_id("x", uuid.uuid4()), missing, books.payable.id, 1, "p"),
            AccountNotFound,
            "ACCOUNT_NOT_FOUND",
        ),
        (_resolve("post_pending", single(books.clearing, books.payable, 1), 1), PendingNotFound, "PENDING_NOT_FOUND"),
        (_resolve("post_pending", hold, 301), PostExceedsPending, "POST_EXCEEDS_PENDING"),
        (single(books.clearing, books.payable, 0), InvalidTransfer, "INVALID_TRANSFER"),
        (single(books.clearing, books.payable, 5, currency="HKD"), InvalidTransfer, "INVALID_TRANSFER"),
    ]
    for transfer, error_type, code in cases:
        with pytest.raises(error_type) as raised:
            await apply(db, [transfer])
        assert raised.value.code == code, raised.value.message
        assert raised.value.transfer_id == transfer.id
    assert issubclass(AccountNotFound, NotFound) and issubclass(PostExceedsPending, InvalidInput)


async def test_a_pending_is_posted_or_voided_once(db: Database, books: Books) -> None:
    await apply(db, [single(books.clearing, books.prepaid, 1000)])
    hold = _pending(books, 600)
    await apply(db, [hold])
    async with db.transaction(PLATFORM) as session:
        wallet = (await service.balances(session, [books.prepaid.id]))[books.prepaid.id]
    assert (wallet.posted, wallet.available) == (1000, 400)  # reserved at once

    post = _resolve("post_pending", hold, 450)  # for less: 150 returns to the wallet
    await apply(db, [post])
    assert await sums(db, books.prepaid) == (0, 450, 0, 1000)
    assert await sums(db, books.payable) == (0, 0, 0, 450)
    async with db.transaction(PLATFORM) as session:
        [stored] = await service.transfers(session, [post.id])
    assert (stored["debit_account_id"], stored["driver_id"]) == (books.prepaid.id, books.driver_id)  # the pending's

    with pytest.raises(PendingAlreadyResolved) as raised:
        await apply(db, [_resolve("void_pending", hold)])
    assert raised.value.code == "PENDING_ALREADY_POSTED"

    other = _pending(books, 100)
    await apply(db, [other, _resolve("void_pending", other)])  # reserve and release in one batch
    with pytest.raises(PendingAlreadyResolved) as raised:
        await apply(db, [_resolve("post_pending", other, 100)])
    assert raised.value.code == "PENDING_ALREADY_VOIDED"
    assert await sums(db, books.prepaid) == (0, 450, 0, 1000)


async def test_an_expired_pending_cannot_be_posted_and_the_sweep_voids_it(db: Database, books: Books) -> None:
    await apply(db, [single(books.clearing, books.prepaid, 1000)])
    async with db.transaction(PLATFORM) as session:
        now = (await session.execute(text("SELECT now()"))).scalar_one()
    hold = _pending(books, 200, expires_at=now + timedelta(seconds=1))
    await apply(db, [hold])
    while True:  # wait until the database's clock has passed the expiry
        async with db.transaction(PLATFORM) as session:
            if (await session.execute(text("SELECT now()"))).scalar_one() > hold.expires_at:
                break
        await asyncio.sleep(0.2)
    with pytest.raises(PendingExpired) as raised:
        await apply(db, [_resolve("post_pending", hold, 200)])
    assert raised.value.code == "PENDING_EXPIRED"
    async with db.transaction(PLATFORM) as session:
        assert await service.void_expired_pendings(session) >= 1
    async with db.transaction(PLATFORM) as session:
        assert await service.void_expired_pendings(session) == 0
    assert await sums(db, books.prepaid) == (0, 0, 0, 1000)


async def test_a_pending_that_expires_in_the_past_is_invalid(db: Database, books: Books) -> None:
    with pytest.raises(InvalidTransfer) as raised:
        await apply(db, [_pending(books, 1, expires_at=datetime(2020, 1, 1, tzinfo=UTC))])
    assert raised.value.detail == "expires_at must be in the future"


async def test_an_account_statement_pages_in_order(db: Database, books: Books) -> None:
    moves = [single(books.clearing, books.payable, amount, tenant_id=books.tenant_id) for amount in (1, 2, 3, 4, 5)]
    moves.append(single(books.payable, books.suspense, 6, tenant_id=books.tenant_id))
    await apply(db, moves)
    seen: list[tuple[int, str]] = []
    cursor = None
    async with db.transaction(PLATFORM) as session:
        while page := await service.account_transfers(session, books.payable.id, after_seq=cursor, limit=4):
            seen.extend((row["amount"], row["side"]) for row in page)
            cursor = page[-1]["seq"]
    assert seen == [(1, "credit"), (2, "credit"), (3, "credit"), (4, "credit"), (5, "credit"), (6, "debit")]


async def test_the_raw_connection_of_a_hot_path_works_too(db: Database, books: Books) -> None:
    async with db.driver_transaction(PLATFORM) as conn:
        await service.ensure_accounts(conn, [account_spec("provider_clearing", f"raw-{uuid.uuid4().hex[:8]}")])
        await service.create_transfers(conn, [single(books.clearing, books.payable, 7, tenant_id=books.tenant_id)])
        found = await service.balances(conn, [books.payable.id])
    assert found[books.payable.id].posted == 7


async def test_a_failed_batch_leaves_the_transaction_usable(db: Database, books: Books) -> None:
    """The engine reports a refusal without aborting the caller's transaction (it wrote nothing): a caller may
    record why a payment failed in the same transaction."""
    async with db.transaction(PLATFORM) as session:
        with pytest.raises(InsufficientBalance):
            await service.create_transfers(session, [single(books.prepaid, books.payable, 5)])
        await service.create_transfers(session, [single(books.clearing, books.payable, 5)])
    assert await sums(db, books.payable) == (0, 0, 0, 5)
