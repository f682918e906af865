"""`parkhub ledger check | balance`: the ledger from a shell, as the database owner (DATABASE_URL), which sees
every row.

`check` runs every invariant (each transfer balanced between two accounts of its currency, each account's sums
equal to its transfers', bounds held, each pending resolved at most once, debits equal to credits), printing each
step as it goes, then `ledger OK: N transfers, M accounts` and exit 0, or each violation and exit 1.
`balance KIND [OWNER]` prints the account's balance as JSON (exit 1 if it does not exist).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import asyncpg
import typer

from hub.config import asyncpg_dsn, get_settings

T = TypeVar("T")

ledger_app = typer.Typer(help="The double-entry ledger: invariant check and balances.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.echo(f"parkhub: {message}", err=True)
    raise typer.Exit(1)


def _run(work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `work` in one read-only REPEATABLE READ transaction of the owner (one snapshot for every query, a
    consistent picture even while transfers keep arriving); an unreachable database is one sentence on stderr."""
    settings = get_settings()

    async def main() -> T:
        conn = await asyncpg.connect(asyncpg_dsn(settings.database_url), timeout=10)
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute("SELECT set_config('app.role', 'platform', true)")
                return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except (OSError, TimeoutError, asyncpg.InterfaceError) as error:
        where = settings.database_url.rsplit("@", 1)[-1]
        _fail(f"cannot reach the database at {where}: {error}. Is PostgreSQL running?")
    except asyncpg.PostgresError as error:
        _fail(f"the database refused the request: {error}")


@ledger_app.command("check")
def check() -> None:
    """Check the ledger's invariants; exit 1 if any is violated."""
    from hub.ledger import service

    def progress(line: str) -> None:
        typer.echo(line, err=True)

    async def work(conn: asyncpg.Connection) -> tuple[list[service.Violation], tuple[int, int]]:
        return await service.check_invariants(conn, progress), await service.counts(conn)

    violations, (transfers, accounts) = _run(work)
    if violations:
        for violation in violations:
            typer.echo(f"violation: {violation}")
        typer.echo(f"ledger BROKEN: {len(violations):,} violation(s) in {transfers:,} transfers, {accounts:,} accounts")
        raise typer.Exit(1)
    typer.echo(f"ledger OK: {transfers:,} transfers, {accounts:,} accounts")


@ledger_app.command("balance")
def balance(
    kind: str = typer.Argument(..., help="Account kind, e.g. tenant_payable, driver_prepaid, platform_fee_revenue."),
    owner: str = typer.Argument("", help="Tenant id, driver id, merchant id or provider name; none for platform."),
    currency: str = typer.Option("CNY", "--currency", help="ISO 4217 currency of the account."),
) -> None:
    """Print one account's balance as JSON."""
    from hub.ledger import rules, service

    if kind not in rules.ACCOUNT_KINDS:
        _fail(f"unknown account kind {kind!r}; known: {', '.join(rules.ACCOUNT_KINDS)}")
    account = rules.account_id(kind, owner, currency)

    async def work(conn: asyncpg.Connection) -> dict[str, Any] | None:
        found = (await service.balances(conn, [account])).get(account)
        return service.balance_json(found) if found is not None else None

    shown = _run(work)
    if shown is None:
        _fail(f"no {kind} account for {owner or 'the platform'!r} in {currency}")
    typer.echo(json.dumps(shown, indent=2))
