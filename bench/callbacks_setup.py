"""The provider-callback benchmark's fixtures: its operator, drivers and payments awaiting their callbacks, the
callbacks themselves (pre-signed in the sandbox's wire format), and what the database says afterwards.

Payments are made with hub.payments' own functions: the operator's payment connector through
`tenants.payment_connector` (created on first use, as paying does), each payment written through the payments
repository and moved to `requested` by `service.apply_word(..., accepted)`, exactly as the provider's
acceptance moves it, and the drivers' ledger accounts opened by `service.ensure_accounts`. They are lot-session
charges whose session is no longer open (the car left meanwhile: `pay_lot_session` would need an open, priced
lot session per payment): a success is exactly the two capture transfers (provider_clearing -> driver_prepaid
-> tenant_payable), and counting it towards the session finds none, so no gate command follows. That keeps the
run about the callback path.

Succeeded payments and their transfers stay (the ledger is append-only); everything else a run leaves (its
inbox rows, payments never applied, queued jobs) is removed before and after each run, so reruns start clean.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text

from bench.ingest_load import SignedFeed, signed_request
from bench.ingest_setup import purge_bench_jobs
from connectors.payments import sandbox_wire
from connectors.payments.base import ProviderEventKind
from connectors.payments.money import fen_to_decimal
from hub.config import Settings
from hub.db import PLATFORM, Database, make_engine
from hub.errors import NotFound
from hub.ledger import service as ledger
from hub.payments import providers, repository, rules, service
from tenants import service as tenants_service

BENCH_SLUG = "bench-callbacks"
BENCH_NAME = "Bench Callbacks Parking"
DRIVER_EMAIL = "callbacks-bench-{serial:05d}@example.com"
# Payments take turns over the drivers, so callbacks applied at the same moment are of different drivers, as they
# are in a city (a driver pays every few hours, not every few seconds). Fewer drivers, each with many payments in
# flight at once, make concurrent apply jobs lock the same driver accounts in different orders (deadlocks).
DRIVERS = 2_000
PROVIDER = "sandbox"
KEY_PREFIX = "bench-callbacks:"
CHUNK = 500  # payments written per transaction
PREPARERS = 4  # transactions writing payments at once
CAPTURE_CODES = ("payment_applied", "payment_in")


@dataclass(frozen=True)
class BenchPayment:
    id: uuid.UUID
    amount_fen: int


@dataclass(frozen=True)
class CallbackOperator:
    tenant_id: uuid.UUID
    connector_id: uuid.UUID  # its sandbox payment connector: where the provider calls back
    payments: tuple[BenchPayment, ...]  # in state `requested`, awaiting their callbacks


def owner_database(settings: Settings) -> Database:
    return Database(make_engine(settings.database_url, settings, pool_size=PREPARERS + 1))


def amount_of(number: int) -> int:
    """Amounts from 5.00 to 54.00 yuan, so the callbacks' decimal amounts vary."""
    return 500 + (number % 50) * 100


async def _tenant_and_drivers(db: Database, drivers: int) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    async with db.transaction(PLATFORM) as session:
        try:
            tenant_id = (await tenants_service.get_tenant_by_slug(session, BENCH_SLUG)).id
        except NotFound:
            tenant_id = (await tenants_service.create_tenant(session, slug=BENCH_SLUG, name=BENCH_NAME)).id
        connector_id = await tenants_service.payment_connector(
            session, tenant_id, providers.FORMAT_OF_PROVIDER[PROVIDER]
        )
        driver_ids = [
            (await tenants_service.ensure_user(session, DRIVER_EMAIL.format(serial=serial))).id
            for serial in range(drivers)
        ]
        for driver_id in driver_ids:  # their ledger accounts, as their first payment anywhere would have opened them
            await service.ensure_accounts(session, rules.Money(uuid.uuid4(), tenant_id, driver_id, PROVIDER, 1))
    return tenant_id, connector_id, driver_ids


async def _write_payments(
    db: Database, tenant_id: uuid.UUID, drivers: Sequence[uuid.UUID], run: str, numbers: range
) -> list[BenchPayment]:
    now = datetime.now(UTC)
    made = []
    async with db.transaction(service.connector_scope(tenant_id)) as session:
        for number in numbers:
            row = await repository.insert_payment(
                session,
                {
                    "tenant_id": tenant_id,
                    "id": uuid.uuid4(),
                    "driver_id": drivers[number % len(drivers)],
                    "purpose": rules.LOT_SESSION,
                    "subject_id": uuid.uuid4(),  # a session that has ended: nothing to count the payment towards
                    "method": rules.CHARGE,
                    "amount_fen": amount_of(number),
                    "currency": "CNY",
                    "provider": PROVIDER,
                    "idempotency_key": f"{KEY_PREFIX}{run}:{number}",
                },
            )
            assert row is not None, "a fresh idempotency key"
            reference = f"sbx_pay_{row['id'].hex}"
            await service.apply_word(session, tenant_id, row["id"], rules.ACCEPTED, now, reference=reference)
            made.append(BenchPayment(row["id"], row["amount_fen"]))
    return made


async def prepare_operator(settings: Settings, payments: int, drivers: int = DRIVERS) -> CallbackOperator:
    """The bench operator, its payment connector and drivers (made on first use), nothing left over from an
    earlier run, and `payments` fresh payments in state `requested`."""
    db = owner_database(settings)
    try:
        tenant_id, connector_id, driver_ids = await _tenant_and_drivers(db, min(drivers, payments))
        await clear_leftovers(settings, db, tenant_id, connector_id)
        run = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]
        chunks = [range(start, min(start + CHUNK, payments)) for start in range(0, payments, CHUNK)]
        made: list[BenchPayment] = []
        for wave in range(0, len(chunks), PREPARERS):
            written = await asyncio.gather(
                *(
                    _write_payments(db, tenant_id, driver_ids, run, numbers)
                    for numbers in chunks[wave : wave + PREPARERS]
                )
            )
            made += [payment for part in written for payment in part]
    finally:
        await db.dispose()
    return CallbackOperator(tenant_id, connector_id, tuple(made))


async def clear_leftovers(
    settings: Settings, db: Database, tenant_id: uuid.UUID, connector_id: uuid.UUID
) -> tuple[int, int]:
    """Remove the connector's inbox rows, the bench's payments never applied and their queued jobs; returns
    (inbox rows, payments) removed."""
    async with db.transaction(PLATFORM) as session:
        inbox = await session.execute(
            text("DELETE FROM inbox_events WHERE tenant_id = :t AND connector_id = :c"),
            {"t": tenant_id, "c": connector_id},
        )
        open_payments = await session.execute(
            text("DELETE FROM payments WHERE tenant_id = :t AND idempotency_key LIKE :k AND state = ANY(:s)"),
            {"t": tenant_id, "k": KEY_PREFIX + "%", "s": list(rules.OPEN_STATES)},
        )
    await purge_bench_jobs(settings.redis_url, tenant_id)
    return int(inbox.rowcount or 0), int(open_payments.rowcount or 0)  # type: ignore[attr-defined]


async def clean_up(settings: Settings, operator: CallbackOperator) -> tuple[int, int]:
    db = owner_database(settings)
    try:
        return await clear_leftovers(settings, db, operator.tenant_id, operator.connector_id)
    finally:
        await db.dispose()


async def clear_inbox(settings: Settings, operator: CallbackOperator) -> None:
    """Forget the callbacks accepted so far (their rows and queued jobs), leaving the payments `requested`."""
    db = owner_database(settings)
    try:
        async with db.transaction(PLATFORM) as session:
            await session.execute(
                text("DELETE FROM inbox_events WHERE tenant_id = :t AND connector_id = :c"),
                {"t": operator.tenant_id, "c": operator.connector_id},
            )
    finally:
        await db.dispose()
    await purge_bench_jobs(settings.redis_url, operator.tenant_id)


# --- the callbacks ------------------------------------------------------------------------------------------


def success_callback(payment: BenchPayment, event_id: str, at: datetime) -> bytes:
    """The sandbox's `payment_succeeded` callback body for `payment`, as sandbox.py writes it."""
    data = {
        "out_trade_no": rules.out_trade_no(payment.id),
        "reference": f"sbx_pay_{payment.id.hex}",
        "amount": fen_to_decimal(payment.amount_fen),
        "currency": "CNY",
    }
    return sandbox_wire.encode(event_id, ProviderEventKind.PAYMENT_SUCCEEDED, at, at, data)


def signed_callbacks(
    host: str, connector_id: uuid.UUID, secret: str, payments: Sequence[BenchPayment], *, label: str
) -> Iterator[bytes]:
    """One raw signed HTTP request per payment (Standard Webhooks: `webhook-id` is the event id, signed now)."""
    now = datetime.now(UTC)
    timestamp = int(now.timestamp())
    feed = SignedFeed(host, connector_id, secret, ())
    for number, payment in enumerate(payments):
        event_id = f"evt_{label}_{number}_{payment.id.hex[:12]}"
        yield signed_request(feed, event_id, timestamp, success_callback(payment, event_id, now))


# --- what the database says ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    succeeded: int  # of the bench payments
    accepted: int  # callbacks in the connector's inbox
    first_settled: datetime | None
    last_settled: datetime | None


async def applied(settings: Settings, operator: CallbackOperator) -> Applied:
    db = owner_database(settings)
    ids = [payment.id for payment in operator.payments]
    try:
        async with db.transaction(PLATFORM) as session:
            row = (
                await session.execute(
                    text(
                        "SELECT count(*) AS n, min(settled_at) AS first, max(settled_at) AS last FROM payments "
                        "WHERE tenant_id = :t AND id = ANY(:ids) AND state = 'succeeded'"
                    ),
                    {"t": operator.tenant_id, "ids": ids},
                )
            ).one()
            accepted = await session.scalar(
                text("SELECT count(*) FROM inbox_events WHERE tenant_id = :t AND connector_id = :c"),
                {"t": operator.tenant_id, "c": operator.connector_id},
            )
    finally:
        await db.dispose()
    return Applied(int(row.n), int(accepted or 0), row.first, row.last)


@dataclass(frozen=True)
class Verification:
    succeeded: int
    wrong_transfers: int  # succeeded payments without exactly their two capture transfers
    unapplied_captures: int  # payments not succeeded that nevertheless have capture transfers
    violations: list[str]  # the whole ledger's invariants (hub.ledger.check_invariants)

    @property
    def clean(self) -> bool:
        return self.wrong_transfers == 0 and self.unapplied_captures == 0 and not self.violations


async def verify(settings: Settings, operator: CallbackOperator) -> Verification:
    """Every succeeded bench payment has exactly its two capture transfers, no other has any, and the ledger's
    invariants hold."""
    db = owner_database(settings)
    ids = [str(payment.id) for payment in operator.payments]
    try:
        async with db.transaction(PLATFORM) as session:
            rows = await session.execute(
                text(
                    "SELECT p.id, p.state, coalesce(t.codes, '{}') AS codes FROM payments p LEFT JOIN ("
                    "  SELECT reference->>'payment_id' AS payment_id, array_agg(code ORDER BY code) AS codes"
                    "  FROM ledger_transfers WHERE tenant_id = :t AND reference->>'payment_id' = ANY(:ids)"
                    "  GROUP BY 1) t ON t.payment_id = p.id::text "
                    "WHERE p.tenant_id = :t AND p.id::text = ANY(:ids)"
                ),
                {"t": operator.tenant_id, "ids": ids},
            )
            succeeded = wrong = unapplied = 0
            for row in rows:
                if row.state == rules.SUCCEEDED:
                    succeeded += 1
                    wrong += tuple(row.codes) != CAPTURE_CODES
                elif row.codes:
                    unapplied += 1
            violations = await ledger.check_invariants(session)
    finally:
        await db.dispose()
    return Verification(succeeded, wrong, unapplied, [f"{v.check}: {v.subject} {v.detail}" for v in violations])
