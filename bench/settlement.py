"""Daily settlement at city scale: 2,000,000 ledger transfers across 200 operators for one business day, then the
full settlement run of that day (every operator's statement, fee and payout), timed.

The data goes through the ledger's engine (`create_transfers`, linked batches of 1,000 per operator, each operator
paid from its own provider clearing account so batches do not queue on one lock) into a database of its own
(`<name>_bench_settlement`, created if missing); a database that already holds the data is reused. The mix per
operator: 88% payments, 8% refunds, 4% coupons from the operator's merchant fund.

The run is `hub.settlement.tasks.settle_tenants` as the application role (statements from earlier runs of the
bench are truncated first; the fee and payout transfers they made are replayed as identical, i.e. no-ops). The
baseline, measured in the same run, is one plain `SELECT count(*), sum(amount)` over the same transfers: the least
any settlement must read. Figures only; nothing is asserted.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from hub.config import Settings, asyncpg_dsn, get_settings, use_sibling_database
from hub.db import SERVER_SETTINGS, Database
from hub.ledger import service as ledger
from hub.ledger.rules import TransferSpec, account_spec, transfer_id
from hub.settlement.tasks import settle_tenants

SLUG_PREFIX = "settle-bench-"
TIME_ZONE = "Asia/Shanghai"
BATCH = 1000
TARGET_SECONDS = 60.0


@dataclass(frozen=True)
class SettlementFigures:
    tenants: int
    transfers: int
    days: list[date]
    generated: int
    generate_seconds: float
    baseline_seconds: float
    baseline_count: int
    settle_seconds: float
    statements: int
    settled_transfers: int
    failed: int
    concurrency: int

    @property
    def transfers_per_s(self) -> float:
        return self.settled_transfers / self.settle_seconds if self.settle_seconds else 0.0


def use_settlement_database() -> Settings:
    use_sibling_database("_bench_settlement")
    return get_settings()


async def _owner(settings: Settings) -> asyncpg.Connection:
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url), server_settings=SERVER_SETTINGS)
    await conn.execute("SELECT set_config('app.role', 'platform', false)")
    return conn


async def _tenants(conn: asyncpg.Connection, count: int) -> list[uuid.UUID]:
    await conn.execute(
        """
        INSERT INTO tenants (slug, name, service_area, time_zone)
        SELECT $1 || lpad(n::text, 3, '0'), 'Settlement bench ' || n,
               ST_Multi(ST_MakeEnvelope(113.7, 22.4, 114.7, 22.9, 4326)), $3
        FROM generate_series(1, $2) AS n
        ON CONFLICT (slug) DO NOTHING
        """,
        SLUG_PREFIX,
        count,
        TIME_ZONE,
    )
    rows = await conn.fetch(
        "SELECT id FROM tenants WHERE slug LIKE $1 || '%' ORDER BY slug LIMIT $2", SLUG_PREFIX, count
    )
    return [row["id"] for row in rows]


async def _existing(conn: asyncpg.Connection, tenants: list[uuid.UUID]) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM ledger_transfers WHERE tenant_id = ANY($1::uuid[]) "
            "AND code IN ('payment', 'refund', 'coupon')",
            tenants,
        )
    )


async def _generate(
    console: Console, settings: Settings, tenants: list[uuid.UUID], per_tenant: int, connections: int
) -> int:
    pool = await asyncpg.create_pool(
        asyncpg_dsn(settings.app_database_url),
        min_size=connections,
        max_size=connections,
        server_settings={**SERVER_SETTINGS, "application_name": "parkhub-bench-settlement"},
    )
    made = 0
    try:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(tenants)):
            queue.put_nowait(index)
        columns = (TextColumn("generating transfers"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("transfers", total=len(tenants) * per_tenant)

            async def worker() -> None:
                nonlocal made
                async with pool.acquire() as conn:
                    while not queue.empty():
                        index = queue.get_nowait()
                        tenant = tenants[index]
                        shuffle = random.Random(index)
                        payable = account_spec("tenant_payable", tenant)
                        clearing = account_spec("provider_clearing", f"settle-bench-{index}")
                        fund = account_spec("merchant_coupon_fund", f"settle-bench-{index}", tenant_id=tenant)
                        async with conn.transaction():
                            await conn.execute("SELECT set_config('app.role', 'platform', true)")
                            await ledger.ensure_accounts(conn, [payable, clearing, fund])
                            await ledger.create_transfers(
                                conn,
                                [
                                    TransferSpec(
                                        transfer_id("settle-bench-fund", tenant),
                                        clearing.id,
                                        fund.id,
                                        10**12,
                                        "coupon_funding",
                                        tenant_id=tenant,
                                    )
                                ],
                            )
                        for start in range(0, per_tenant, BATCH):
                            batch = []
                            for n in range(start, min(start + BATCH, per_tenant)):
                                roll = shuffle.random()
                                amount = shuffle.randint(100, 5000)
                                if roll < 0.88:
                                    debit, credit, code = clearing, payable, "payment"
                                elif roll < 0.96:
                                    debit, credit, code = payable, clearing, "refund"
                                else:
                                    debit, credit, code = fund, payable, "coupon"
                                batch.append(
                                    TransferSpec(
                                        transfer_id("settle-bench", tenant, n),
                                        debit.id,
                                        credit.id,
                                        amount,
                                        code,
                                        tenant_id=tenant,
                                    )
                                )
                            async with conn.transaction():
                                await conn.execute("SELECT set_config('app.role', 'platform', true)")
                                await ledger.create_transfers(conn, batch)
                            made += len(batch)
                            bar.advance(task, len(batch))

            await asyncio.gather(*(worker() for _ in range(connections)))
    finally:
        await pool.close()
    return made


async def run_settlement(
    console: Console, *, tenant_count: int, transfers: int, concurrency: int, connections: int
) -> SettlementFigures:
    from hub.dbsetup import prepare

    settings = use_settlement_database()
    console.print(f"Settlement benchmark database: {settings.database_url.rsplit('/', 1)[-1]}")
    await prepare(settings)
    per_tenant = max(1, transfers // tenant_count)
    conn = await _owner(settings)
    try:
        tenants = await _tenants(conn, tenant_count)
        existing = await _existing(conn, tenants)
        if existing and existing != per_tenant * len(tenants):
            # Other data than asked for: earlier settlements of it (immutable ledger legs) would conflict. Start over.
            console.print(f"[yellow]{existing:,} transfers of another size: re-creating the database[/yellow]")
            await conn.close()
            await prepare(settings, fresh=True)
            conn = await _owner(settings)
            tenants = await _tenants(conn, tenant_count)
            existing = 0
        generated, generate_seconds = 0, 0.0
        if existing < per_tenant * len(tenants):
            started = time.perf_counter()
            generated = await _generate(console, settings, tenants, per_tenant, connections)
            generate_seconds = time.perf_counter() - started
            await conn.execute("VACUUM (ANALYZE) ledger_transfers")
            await conn.execute("CHECKPOINT")  # the generation's WAL is flushed now, not during the timed run
        else:
            console.print(f"Reusing {existing:,} transfers already generated.")
        day_rows = await conn.fetch(
            "SELECT DISTINCT (created_at AT TIME ZONE $2)::date AS day FROM ledger_transfers "
            "WHERE tenant_id = ANY($1::uuid[]) AND code IN ('payment', 'refund', 'coupon') ORDER BY 1",
            tenants,
            TIME_ZONE,
        )
        days = [row["day"] for row in day_rows]
        console.print("Clearing earlier runs' statements (TRUNCATE) ...")
        await conn.execute("TRUNCATE settlement_statement_transfers, settlement_statements")
        await conn.execute("VACUUM (ANALYZE) settlement_statement_transfers, settlement_statements")
        started = time.perf_counter()
        row = await conn.fetchrow(
            "SELECT count(*) AS n, sum(amount) AS total FROM ledger_transfers WHERE tenant_id = ANY($1::uuid[])",
            tenants,
        )
        total, baseline_count = int(row["n"]), int(row["n"])
        baseline_seconds = time.perf_counter() - started
    finally:
        await conn.close()

    database = Database.from_settings(settings)
    statements = settled = failed = 0
    try:
        started = time.perf_counter()
        with Progress(
            TextColumn("settling"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"), console=console
        ) as bar:
            for day in days:
                task = bar.add_task(day.isoformat(), total=len(tenants))

                def progress(outcome: object, finished: int, count: int, task: object = task) -> None:
                    bar.update(task, completed=finished)  # type: ignore[arg-type]

                summary = await settle_tenants(
                    database, day, now=datetime.now(UTC) + timedelta(days=2), concurrency=concurrency, progress=progress
                )
                statements += summary.count("created")
                settled += summary.transfers
                failed += len(summary.failed)
                for failure in summary.failed[:5]:
                    console.print(f"[red]{failure.slug}: {failure.error}[/red]")
        settle_seconds = time.perf_counter() - started
    finally:
        await database.dispose()
    return SettlementFigures(
        tenants=len(tenants),
        transfers=total,
        days=days,
        generated=generated,
        generate_seconds=generate_seconds,
        baseline_seconds=baseline_seconds,
        baseline_count=baseline_count,
        settle_seconds=settle_seconds,
        statements=statements,
        settled_transfers=settled,
        failed=failed,
        concurrency=concurrency,
    )


def print_settlement_report(console: Console, figures: SettlementFigures) -> None:
    if figures.generated:
        console.print(
            f"generated {figures.generated:,} transfers through the ledger engine in "
            f"{figures.generate_seconds:.1f} s ({figures.generated / figures.generate_seconds:,.0f}/s)"
        )
    table = Table(
        title=f"settlement: {figures.tenants} operators, business day(s) "
        f"{', '.join(day.isoformat() for day in figures.days)}"
    )
    for column in ("run", "transfers", "seconds", "transfers/s", "statements", "failed"):
        table.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
    table.add_row(
        f"settle (concurrency {figures.concurrency})",
        f"{figures.settled_transfers:,}",
        f"{figures.settle_seconds:.1f}",
        f"{figures.transfers_per_s:,.0f}",
        str(figures.statements),
        str(figures.failed),
    )
    rate = figures.transfers / figures.baseline_seconds if figures.baseline_seconds else 0.0
    table.add_row(
        "baseline: count(*), sum(amount)",
        f"{figures.transfers:,}",
        f"{figures.baseline_seconds:.1f}",
        f"{rate:,.0f}",
        "",
        "",
    )
    console.print(table)
    ratio = figures.settle_seconds / figures.baseline_seconds if figures.baseline_seconds else float("nan")
    verdict = "met" if figures.settle_seconds <= TARGET_SECONDS else "not met"
    console.print(
        f"settlement / baseline time: {ratio:.1f}x; target {TARGET_SECONDS:.0f} s or less: {verdict} "
        f"({figures.settle_seconds:.1f} s)"
    )
