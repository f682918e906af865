"""Ledger throughput: transfers per second through `hub.ledger.service.create_transfers`, as the application role,
one transaction per call (what a payment path pays: the engine call and the commit).

Four runs, each for the same time at the same concurrency:
- single, spread: one transfer per call, each connection paying out of its own clearing account;
- single, hot: one transfer per call, every connection through ONE clearing account (a single provider's account:
  the engine locks it, so these calls queue on it; the figure says what one hot account can take);
- batch 100, spread / hot: linked batches of 100 transfers per call.
Each transfer credits one of 200 operators' payables. Latency is per call (p50, p99).

`python -m bench --only ledger` runs it; nothing is asserted: the figures depend on the machine.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass

import asyncpg
from rich.console import Console
from rich.table import Table

from bench.results import percentile
from hub.config import Settings, asyncpg_dsn
from hub.db import SERVER_SETTINGS
from hub.ledger import service
from hub.ledger.rules import AccountSpec, TransferSpec, account_spec, transfer_id

TENANTS = 200
BATCH = 100


@dataclass(frozen=True)
class LedgerRun:
    label: str
    connections: int
    seconds: float
    calls: int
    transfers: int
    p50_ms: float
    p99_ms: float

    @property
    def transfers_per_s(self) -> float:
        return self.transfers / self.seconds if self.seconds else 0.0


async def _bench_tenants(settings: Settings) -> list[uuid.UUID]:
    """The bench's operators (created once, kept between runs)."""
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        existing = await conn.fetch("SELECT id FROM tenants WHERE slug LIKE 'ledger-bench-%' ORDER BY slug")
        if len(existing) >= TENANTS:
            return [row["id"] for row in existing[:TENANTS]]
        await conn.execute(
            """
            INSERT INTO tenants (slug, name, service_area)
            SELECT 'ledger-bench-' || lpad(n::text, 3, '0'), 'Ledger bench ' || n,
                   ST_Multi(ST_MakeEnvelope(113.7, 22.4, 114.7, 22.9, 4326))
            FROM generate_series(1, $1) AS n
            ON CONFLICT (slug) DO NOTHING
            """,
            TENANTS,
        )
        rows = await conn.fetch("SELECT id FROM tenants WHERE slug LIKE 'ledger-bench-%' ORDER BY slug")
        return [row["id"] for row in rows]
    finally:
        await conn.close()


async def _run(
    pool: asyncpg.Pool,
    label: str,
    *,
    connections: int,
    seconds: float,
    batch: int,
    clearing: list[AccountSpec],
    payables: list[AccountSpec],
) -> LedgerRun:
    deadline = time.perf_counter() + seconds
    timings: list[float] = []
    moved = 0

    async def worker(index: int) -> None:
        nonlocal moved
        source = clearing[index % len(clearing)]
        shuffle = random.Random(index)
        async with pool.acquire() as conn:
            while time.perf_counter() < deadline:
                transfers = [
                    TransferSpec(
                        transfer_id("bench", uuid.uuid4()),
                        source.id,
                        (payable := shuffle.choice(payables)).id,
                        shuffle.randint(100, 3000),
                        "payment",
                        tenant_id=payable.tenant_id,
                    )
                    for _ in range(batch)
                ]
                started = time.perf_counter()
                async with conn.transaction():
                    await conn.execute("SELECT set_config('app.role', 'platform', true)")
                    await service.create_transfers(conn, transfers)
                timings.append((time.perf_counter() - started) * 1000)
                moved += batch

    started = time.perf_counter()
    await asyncio.gather(*(worker(index) for index in range(connections)))
    elapsed = time.perf_counter() - started
    timings.sort()
    return LedgerRun(
        label, connections, elapsed, len(timings), moved, percentile(timings, 0.5), percentile(timings, 0.99)
    )


async def run_ledger(console: Console, settings: Settings, *, seconds: float, connections: int) -> list[LedgerRun]:
    tenants = await _bench_tenants(settings)
    payables = [account_spec("tenant_payable", tenant) for tenant in tenants]
    spread = [account_spec("provider_clearing", f"bench-{index}") for index in range(connections)]
    hot = [account_spec("provider_clearing", "bench-hot")]
    pool = await asyncpg.create_pool(
        asyncpg_dsn(settings.app_database_url),
        min_size=connections,
        max_size=connections,
        server_settings={**SERVER_SETTINGS, "application_name": "parkhub-bench-ledger"},
    )
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT set_config('app.role', 'platform', true)")
            await service.ensure_accounts(conn, [*payables, *spread, *hot])
        runs = []
        for label, batch, clearing in (
            ("single, spread", 1, spread),
            ("single, hot account", 1, hot),
            (f"batch {BATCH}, spread", BATCH, spread),
            (f"batch {BATCH}, hot account", BATCH, hot),
        ):
            console.print(f"Ledger: {label} for {seconds:g} s at {connections} connections ...")
            runs.append(
                await _run(
                    pool,
                    label,
                    connections=connections,
                    seconds=seconds,
                    batch=batch,
                    clearing=clearing,
                    payables=payables,
                )
            )
        return runs
    finally:
        await pool.close()


def print_ledger_report(console: Console, runs: list[LedgerRun]) -> None:
    table = Table(title=f"ledger: create_transfers, one transaction per call, {TENANTS} operators' payables")
    for column in ("run", "conns", "seconds", "calls", "transfers", "transfers/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
    for run in runs:
        table.add_row(
            run.label,
            str(run.connections),
            f"{run.seconds:.1f}",
            f"{run.calls:,}",
            f"{run.transfers:,}",
            f"{run.transfers_per_s:,.0f}",
            f"{run.p50_ms:.1f}",
            f"{run.p99_ms:.1f}",
        )
    console.print(table)
