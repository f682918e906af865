"""Settlement runs over many tenants, and the cron job.

- `settle_tenants(db, day=None, ...)`: settle each tenant (or one, by slug) for `day`, or for each tenant's latest
  due business date when `day` is None, one transaction per tenant, `concurrency` tenants at a time; each tenant's
  outcome is reported to `progress` as it finishes. A tenant that fails does not stop the others.
- `settle_due` (cron, every 15 minutes): settles every tenant whose local midnight (+ rules.SAFETY_LAG) has passed
  for yesterday. Idempotent: a tenant already settled for that day costs one lookup.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from arq import cron

from hub.db import PLATFORM, Database, driver_of
from hub.errors import DomainError
from hub.jobs import JobContext, register_cron
from hub.settlement import repository, rules, service


@dataclass(frozen=True)
class TenantOutcome:
    tenant_id: uuid.UUID
    slug: str
    day: date
    result: str  # created | exists | failed
    transfers: int = 0
    payout: int = 0
    fee: int = 0
    error: str | None = None


@dataclass
class RunSummary:
    outcomes: list[TenantOutcome] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.result == result)

    @property
    def transfers(self) -> int:
        return sum(outcome.transfers for outcome in self.outcomes if outcome.result == service.CREATED)

    @property
    def payouts(self) -> int:
        return sum(outcome.payout for outcome in self.outcomes if outcome.result == service.CREATED)

    @property
    def fees(self) -> int:
        return sum(outcome.fee for outcome in self.outcomes if outcome.result == service.CREATED)

    @property
    def failed(self) -> list[TenantOutcome]:
        return [outcome for outcome in self.outcomes if outcome.result == "failed"]


Progress = Callable[[TenantOutcome, int, int], None]


async def _tenant_list(db: Database, slug: str | None) -> list[repository.Row]:
    async with db.transaction(PLATFORM) as session:
        return await repository.tenants(await driver_of(session), slug)


async def settle_tenants(
    db: Database,
    day: date | None = None,
    *,
    slug: str | None = None,
    now: datetime | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> RunSummary:
    now = now or datetime.now(UTC)
    tenants = await _tenant_list(db, slug)
    summary = RunSummary()
    queue: asyncio.Queue[repository.Row] = asyncio.Queue()
    for tenant in tenants:
        queue.put_nowait(tenant)

    async def one(tenant: repository.Row) -> TenantOutcome:
        target = day or rules.last_due_date(now, tenant["time_zone"])
        try:
            async with db.transaction(PLATFORM) as session:
                outcome = await service.settle(session, tenant["id"], target, now=now)
        except DomainError as error:
            return TenantOutcome(tenant["id"], tenant["slug"], target, "failed", error=f"{error.code}: {error}")
        statement = outcome.statement
        return TenantOutcome(
            tenant["id"],
            tenant["slug"],
            target,
            outcome.result,
            transfers=int(statement["transfer_count"]),
            payout=int(statement["payout"]),
            fee=int(statement["fee"]),
        )

    async def worker() -> None:
        while not queue.empty():
            outcome = await one(queue.get_nowait())
            summary.outcomes.append(outcome)
            if progress is not None:
                progress(outcome, len(summary.outcomes), len(tenants))

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(tenants) or 1)))))
    return summary


async def settle_due(ctx: JobContext) -> int:
    """Returns how many statements it created."""
    summary = await settle_tenants(ctx["db"], concurrency=2)
    return summary.count(service.CREATED)


register_cron(cron(settle_due, minute={0, 15, 30, 45}, second=30, unique=True, timeout=1800))
