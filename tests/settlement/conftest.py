"""Fixtures of the settlement tests: an operator of their own per test with its payable, a provider's clearing
account and a merchant's coupon fund, helpers that move money through the ledger's engine as the payments domain
would (codes 'payment', 'refund', 'coupon'), and a check that the whole ledger is sound after each test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from hub.db import PLATFORM, Database
from hub.ledger import service as ledger
from hub.ledger.rules import AccountSpec, TransferSpec, account_spec, transfer_id
from hub.settlement import rules, service

LATER = timedelta(days=30)


@dataclass(frozen=True)
class Operator:
    tenant_id: uuid.UUID
    slug: str
    time_zone: str
    payable: AccountSpec
    clearing: AccountSpec
    fund: AccountSpec

    def today(self) -> date:
        return datetime.now(UTC).astimezone(rules.zone(self.time_zone)).date()


async def make_operator(db: Database, *, time_zone: str = "Asia/Shanghai", fee_bps: int = 60) -> Operator:
    slug = f"settle-{uuid.uuid4().hex[:10]}"
    async with db.transaction(PLATFORM) as session:
        tenant_id = (
            await session.execute(
                text(
                    "INSERT INTO tenants (slug, name, service_area, time_zone, platform_fee_bps) VALUES (:slug, :name, "
                    "ST_Multi(ST_MakeEnvelope(113.7, 22.4, 114.7, 22.9, 4326)), :tz, :fee) RETURNING id"
                ),
                {"slug": slug, "name": slug, "tz": time_zone, "fee": fee_bps},
            )
        ).scalar_one()
        operator = Operator(
            tenant_id,
            slug,
            time_zone,
            account_spec("tenant_payable", tenant_id),
            account_spec("provider_clearing", f"test-{uuid.uuid4().hex[:10]}"),
            account_spec("merchant_coupon_fund", uuid.uuid4(), tenant_id=tenant_id),
        )
        await ledger.ensure_accounts(session, [operator.payable, operator.clearing, operator.fund])
        await ledger.create_transfers(
            session,
            [
                TransferSpec(
                    transfer_id("fund", uuid.uuid4()),
                    operator.clearing.id,
                    operator.fund.id,
                    10_000_000,
                    "coupon_funding",
                    tenant_id=tenant_id,
                )
            ],
        )
    return operator


@pytest.fixture
async def operator(db: Database) -> Operator:
    return await make_operator(db)


def payment(op: Operator, amount: int) -> TransferSpec:
    return TransferSpec(
        transfer_id("payment", uuid.uuid4()), op.clearing.id, op.payable.id, amount, "payment", tenant_id=op.tenant_id
    )


def refund(op: Operator, amount: int) -> TransferSpec:
    return TransferSpec(
        transfer_id("refund", uuid.uuid4()), op.payable.id, op.clearing.id, amount, "refund", tenant_id=op.tenant_id
    )


def coupon(op: Operator, amount: int) -> TransferSpec:
    return TransferSpec(
        transfer_id("coupon", uuid.uuid4()), op.fund.id, op.payable.id, amount, "coupon", tenant_id=op.tenant_id
    )


def adjustment(op: Operator, amount: int) -> TransferSpec:
    """A movement of the payable with a code settlement does not know: lands on `other`, signed."""
    debit, credit = (op.clearing, op.payable) if amount > 0 else (op.payable, op.clearing)
    return TransferSpec(
        transfer_id("adjust", uuid.uuid4()),
        debit.id,
        credit.id,
        abs(amount),
        "manual_adjustment",
        tenant_id=op.tenant_id,
    )


async def move(db: Database, transfers: list[TransferSpec]) -> None:
    async with db.transaction(PLATFORM) as session:
        await ledger.create_transfers(session, transfers)


async def settle(db: Database, op: Operator, day: date | None = None, **options: object) -> service.SettleResult:
    async with db.transaction(PLATFORM) as session:
        return await service.settle(
            session,
            op.tenant_id,
            day or op.today(),
            now=datetime.now(UTC) + LATER,
            **options,  # type: ignore[arg-type]
        )


async def payable_balance(db: Database, op: Operator) -> ledger.Balance:
    async with db.transaction(PLATFORM) as session:
        return (await ledger.balances(session, [op.payable.id]))[op.payable.id]


@pytest.fixture(autouse=True)
async def ledger_sound(db: Database):  # type: ignore[no-untyped-def]
    yield
    async with db.transaction(PLATFORM) as session:
        assert [str(v) for v in await ledger.check_invariants(session)] == []
