"""The invariant check finds what is wrong (a balance that no longer equals its transfers), the table refuses a
balance below its bound even from the owner, and `parkhub ledger check | balance` report it as a person reads it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.config import asyncpg_dsn, get_settings
from hub.db import Database
from hub.ledger import service
from tests.ledger.conftest import Books, apply, single

runner = CliRunner()


@asynccontextmanager
async def owner_transaction() -> AsyncIterator[asyncpg.Connection]:
    """The owner's connection in a transaction that is always rolled back."""
    conn = await asyncpg.connect(asyncpg_dsn(get_settings().database_url))
    try:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield conn
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


async def _corrupt(conn: asyncpg.Connection, account: uuid.UUID, fen: int) -> None:
    await conn.execute("UPDATE ledger_accounts SET credits_posted = credits_posted + $2 WHERE id = $1", account, fen)


async def test_a_sound_ledger_has_no_violations(db: Database, books: Books) -> None:
    await apply(db, [single(books.clearing, books.payable, 300), single(books.payable, books.suspense, 100)])
    async with owner_transaction() as conn:
        assert await service.check_invariants(conn) == []


async def test_a_corrupted_balance_is_reported(db: Database, books: Books) -> None:
    await apply(db, [single(books.clearing, books.suspense, 300)])
    steps: list[str] = []
    async with owner_transaction() as conn:
        await _corrupt(conn, books.suspense.id, 1)
        violations = await service.check_invariants(conn, steps.append)
    by_check = {violation.check: violation for violation in violations}
    assert by_check["account_sums"].subject == str(books.suspense.id)
    assert "stored (0, 0, 0, 301), transfers add up to (0, 0, 0, 300)" in by_check["account_sums"].detail
    assert by_check["totals"].subject == "CNY"
    assert set(by_check) == {"account_sums", "totals"}
    assert any("account's sums" in step for step in steps)


async def test_the_table_refuses_a_balance_beyond_its_bound_even_from_the_owner(db: Database, books: Books) -> None:
    await apply(db, [single(books.clearing, books.prepaid, 300)])
    async with owner_transaction() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="bounds_hold"):
            await conn.execute(
                "UPDATE ledger_accounts SET debits_posted = debits_posted + 301 WHERE id = $1", books.prepaid.id
            )


def test_the_check_command_says_ok_or_lists_violations(books: Books) -> None:
    ok = runner.invoke(app, ["ledger", "check"])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("ledger OK: ") and "transfers" in ok.stdout and "accounts" in ok.stdout

    async def corrupt(fen: int) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(get_settings().database_url))
        try:
            await _corrupt(conn, books.suspense.id, fen)
        finally:
            await conn.close()

    asyncio.run(corrupt(5))
    try:
        broken = runner.invoke(app, ["ledger", "check"])
    finally:
        asyncio.run(corrupt(-5))
    assert broken.exit_code == 1, broken.output
    assert f"violation: account_sums: {books.suspense.id}: tenant_suspense" in broken.stdout
    assert "ledger BROKEN: 2 violation(s)" in broken.stdout
    assert runner.invoke(app, ["ledger", "check"]).exit_code == 0


def test_the_balance_command_prints_json(books: Books) -> None:
    shown = runner.invoke(app, ["ledger", "balance", "tenant_payable", str(books.tenant_id)])
    assert shown.exit_code == 0, shown.output
    balance = json.loads(shown.stdout)
    assert (balance["account_id"], balance["kind"], balance["posted"]) == (str(books.payable.id), "tenant_payable", 0)
    unknown = runner.invoke(app, ["ledger", "balance", "wallet"])
    assert unknown.exit_code == 1 and "unknown account kind" in unknown.stderr
    missing = runner.invoke(app, ["ledger", "balance", "tenant_payable", str(uuid.uuid4())])
    assert missing.exit_code == 1 and "no tenant_payable account" in missing.stderr
