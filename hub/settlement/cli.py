"""`parkhub settle [--date YYYY-MM-DD] [--tenant SLUG]`: settle by hand, as the database owner under the platform
scope. Without --date each tenant settles its latest due business date (what the cron job does).

Progress goes to stderr, one line per tenant as it finishes (`[12/200] slug 2026-11-21: created, 10,004
transfers, payout 1,234.56`); the plain summary goes to stdout. Exit 0 when every tenant settled (or was already
settled), 1 when any failed (each failure named) or nothing matched, 2 for a malformed option."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime

import typer

from hub.config import get_settings


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def settle_command(
    day: str | None = typer.Option(None, "--date", help="Business date YYYY-MM-DD (default: each tenant's yesterday)."),
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant (its slug)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=32, help="Tenants settled at once."),
) -> None:
    """Settle operators for a business date: statements, platform fee and payouts (idempotent)."""
    from hub.db import Database, make_engine
    from hub.settlement.tasks import TenantOutcome, settle_tenants

    business_date: date | None = None
    if day is not None:
        try:
            business_date = datetime.strptime(day, "%Y-%m-%d").date()
        except ValueError:
            typer.echo(f"parkhub: --date {day!r} is not a date like 2026-11-21", err=True)
            raise typer.Exit(2) from None

    settings = get_settings()

    def progress(outcome: TenantOutcome, done: int, total: int) -> None:
        if outcome.result == "failed":
            detail = f"FAILED: {outcome.error}"
        else:
            detail = f"{outcome.result}, {outcome.transfers:,} transfers, payout {_yuan(outcome.payout)}"
        typer.echo(f"[{done}/{total}] {outcome.slug} {outcome.day.isoformat()}: {detail}", err=True)

    async def main() -> object:
        database = Database(make_engine(settings.database_url, settings, pool_size=concurrency))
        try:
            return await settle_tenants(
                database, business_date, slug=tenant, concurrency=concurrency, progress=progress
            )
        finally:
            await database.dispose()

    started = time.monotonic()
    try:
        summary = asyncio.run(main())
    except OSError as error:
        typer.echo(f"parkhub: cannot reach the database: {error}. Is PostgreSQL running?", err=True)
        raise typer.Exit(1) from None
    from hub.settlement.tasks import RunSummary

    assert isinstance(summary, RunSummary)
    if not summary.outcomes:
        typer.echo(f"parkhub: no tenant {'with slug ' + repr(tenant) if tenant else 'to settle'}", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"settled {len(summary.outcomes) - len(summary.failed)} of {len(summary.outcomes)} tenant(s) in "
        f"{time.monotonic() - started:.1f} s: {summary.count('created')} new statement(s), "
        f"{summary.count('exists')} already settled, {len(summary.failed)} failed; "
        f"{summary.transfers:,} transfers, fees {_yuan(summary.fees)}, payouts {_yuan(summary.payouts)}"
    )
    for failure in summary.failed:
        typer.echo(f"failed: {failure.slug} {failure.day.isoformat()}: {failure.error}")
    if summary.failed:
        raise typer.Exit(1)


def reconcile_command(
    provider: str = typer.Option("sandbox", "--provider", help="The payment provider whose daily bill to compare."),
    day: str = typer.Option(..., "--date", help="The bill's date YYYY-MM-DD (in the bill's time zone)."),
    records_file: str | None = typer.Option(
        None, "--records", help="The bill as a JSON array of lines (default: ask the provider for it)."
    ),
    time_zone: str = typer.Option("Asia/Shanghai", "--time-zone", help="The bill's time zone."),
    allow_empty: bool = typer.Option(False, "--allow-empty-bill", help="Accept an empty bill for a day with captures."),
) -> None:
    """Reconcile a provider's daily bill against the ledger: differences become items and move to suspense
    (idempotent). Exit 0 when the day reconciles or its differences were recorded, 1 on failure, 2 for a bad option."""
    import orjson

    from connectors.payments.base import SettlementRecord
    from hub.db import PLATFORM, Database, make_engine
    from hub.errors import DomainError
    from hub.settlement.reconciliation import ReconcileResult, reconcile

    try:
        business_date = datetime.strptime(day, "%Y-%m-%d").date()
    except ValueError:
        typer.echo(f"parkhub: --date {day!r} is not a date like 2026-11-21", err=True)
        raise typer.Exit(2) from None
    if records_file is not None:
        try:
            with open(records_file, "rb") as source:
                raw = orjson.loads(source.read())
            records = [
                SettlementRecord(**{**line, "occurred_at": datetime.fromisoformat(line["occurred_at"])}) for line in raw
            ]
        except (OSError, ValueError, TypeError, KeyError) as error:
            typer.echo(f"parkhub: cannot read the bill {records_file}: {error}", err=True)
            raise typer.Exit(2) from None
    else:
        from hub.payments import providers

        try:
            source_provider = providers.get(provider)
        except LookupError as error:
            typer.echo(f"parkhub: {error}", err=True)
            raise typer.Exit(2) from None
        bill = getattr(source_provider, "records_for_day", None)
        if bill is None:
            typer.echo(f"parkhub: {provider} gives no daily bill here; pass it with --records", err=True)
            raise typer.Exit(2)
        records = bill(business_date)
    typer.echo(f"{provider} {business_date.isoformat()}: {len(records)} bill line(s)", err=True)
    settings = get_settings()

    async def main() -> ReconcileResult:
        database = Database(make_engine(settings.database_url, settings, pool_size=1))
        try:
            async with database.transaction(PLATFORM) as session:
                return await reconcile(
                    session, provider, business_date, records, time_zone=time_zone, allow_empty_bill=allow_empty
                )
        finally:
            await database.dispose()

    try:
        result = asyncio.run(main())
    except DomainError as error:
        typer.echo(f"parkhub: {error}", err=True)
        raise typer.Exit(1) from None
    except OSError as error:
        typer.echo(f"parkhub: cannot reach the database: {error}. Is PostgreSQL running?", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"reconciled {provider} {business_date.isoformat()}: {result.records} bill line(s), {result.compared} "
        f"order(s) compared, {len(result.items)} new difference(s) moved to suspense ({_yuan(result.suspense_fen)} "
        f"into clearing), {result.already_recorded} already recorded"
    )
    for item in result.items:
        typer.echo(
            f"  {item['problem']}: {item['kind']} {item['out_trade_no']} provider {_yuan(item['provider_fen'])} "
            f"ledger {_yuan(item['ledger_fen'])} -> {item['suspense_account']}"
        )
