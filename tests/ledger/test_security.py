"""The database itself guards the ledger: the application role can only read it (under row-level security) and call
the engine; nobody, the owner included, can change or remove a transfer; each caller reads only their rows."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hub.config import Settings
from hub.db import PLATFORM, Database, Scope
from hub.ledger import service
from tests.ledger.conftest import Books, apply, open_books, single


async def _refused(db: Database, scope: Scope, statement: str, params: dict[str, object]) -> str:
    with pytest.raises(DBAPIError) as raised:
        async with db.transaction(scope) as session:
            await session.execute(text(statement), params)
    return str(raised.value.orig)


async def test_the_app_role_cannot_write_the_tables_directly(db: Database, books: Books) -> None:
    payment = single(books.clearing, books.payable, 100, tenant_id=books.tenant_id)
    await apply(db, [payment])
    statements = [
        (
            "INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency, kind, code, "
            "batch_id) VALUES (:id, :d, :c, 5, 'CNY', 'single', 'forged', :id)",
            {"id": uuid.uuid4(), "d": books.clearing.id, "c": books.payable.id},
        ),
        ("UPDATE ledger_transfers SET amount = 1 WHERE id = :id", {"id": payment.id}),
        ("DELETE FROM ledger_transfers WHERE id = :id", {"id": payment.id}),
        ("UPDATE ledger_accounts SET credits_posted = 10 WHERE id = :id", {"id": books.payable.id}),
        (
            "INSERT INTO ledger_accounts (id, kind, owner) VALUES (:id, 'platform_suspense', 'forged')",
            {"id": uuid.uuid4()},
        ),
    ]
    for statement, params in statements:
        assert "permission denied" in await _refused(db, PLATFORM, statement, params)


async def test_only_the_app_role_may_call_the_engine(owner_db: Database, settings: Settings) -> None:
    async with owner_db.transaction(PLATFORM) as session:
        acls = (
            await session.execute(
                text(
                    "SELECT proname, proacl::text FROM pg_proc "
                    "WHERE proname IN ('ledger_apply', 'ledger_ensure_accounts') ORDER BY proname"
                )
            )
        ).all()
    assert [name for name, _ in acls] == ["ledger_apply", "ledger_ensure_accounts"]
    for _name, acl in acls:
        entries = acl.strip("{}").split(",")
        assert not any(entry.startswith("=") for entry in entries), acl  # no grant to PUBLIC
        assert any(entry.startswith(f"{settings.app_role}=X") for entry in entries), acl


async def test_not_even_the_owner_can_change_or_remove_a_transfer(
    db: Database, owner_db: Database, books: Books
) -> None:
    payment = single(books.clearing, books.payable, 100, tenant_id=books.tenant_id)
    await apply(db, [payment])
    for statement in (
        "UPDATE ledger_transfers SET amount = 1 WHERE id = :id",
        "DELETE FROM ledger_transfers WHERE id = :id",
        "TRUNCATE ledger_transfers CASCADE",
    ):
        message = await _refused(owner_db, PLATFORM, statement, {"id": payment.id})
        assert "ledger transfers are immutable" in message, message
    async with db.transaction(PLATFORM) as session:
        [stored] = await service.transfers(session, [payment.id])
    assert stored["amount"] == 100


async def test_each_caller_reads_only_their_ledger_rows(db: Database, books: Books) -> None:
    others = await open_books(db)
    mine = [
        single(books.clearing, books.payable, 10, tenant_id=books.tenant_id),
        single(books.clearing, books.prepaid, 20, driver_id=books.driver_id),
    ]
    theirs = [
        single(others.clearing, others.payable, 30, tenant_id=others.tenant_id),
        single(others.clearing, others.prepaid, 40, driver_id=others.driver_id),
    ]
    await apply(db, mine + theirs)
    every_id = [transfer.id for transfer in mine + theirs]
    every_account = [spec.id for spec in books.all + others.all]

    async def visible(scope: Scope) -> tuple[set[int], set[uuid.UUID]]:
        async with db.transaction(scope) as session:
            amounts = {row["amount"] for row in await service.transfers(session, every_id)}
            accounts = set(await service.balances(session, every_account))
        return amounts, accounts

    operator = await visible(Scope("operator", tenant_id=books.tenant_id))
    assert operator == ({10}, {books.payable.id, books.suspense.id})
    driver = await visible(Scope("driver", user_id=books.driver_id))
    assert driver == ({20}, {books.prepaid.id, books.receivable.id})
    assert await visible(Scope("anonymous")) == (set(), set())
    assert (await visible(Scope("city")))[0] == {10, 20, 30, 40}
    assert (await visible(PLATFORM))[1] == set(every_account)
