"""Fixtures of the ledger's tests: an operator and a driver of their own (so every test's accounts are its own), and
helpers to open accounts and apply transfers as the application role under the platform scope."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from hub.db import PLATFORM, Database
from hub.ledger import service
from hub.ledger.rules import AccountSpec, TransferSpec, account_spec, transfer_id


async def make_tenant(db: Database) -> uuid.UUID:
    slug = f"ledger-{uuid.uuid4().hex[:10]}"
    async with db.transaction(PLATFORM) as session:
        return (
            await session.execute(
                text(
                    "INSERT INTO tenants (slug, name, service_area) VALUES (:slug, :name, "
                    "ST_Multi(ST_MakeEnvelope(113.7, 22.4, 114.7, 22.9, 4326))) RETURNING id"
                ),
                {"slug": slug, "name": slug},
            )
        ).scalar_one()


async def make_driver(db: Database) -> uuid.UUID:
    async with db.transaction(PLATFORM) as session:
        return (
            await session.execute(
                text("INSERT INTO users (email) VALUES (:email) RETURNING id"),
                {"email": f"driver-{uuid.uuid4().hex[:10]}@example.com"},
            )
        ).scalar_one()


@dataclass(frozen=True)
class Books:
    """One operator's and one driver's accounts, with a provider's clearing account of their own."""

    tenant_id: uuid.UUID
    driver_id: uuid.UUID
    clearing: AccountSpec
    payable: AccountSpec
    prepaid: AccountSpec
    receivable: AccountSpec
    suspense: AccountSpec

    @property
    def all(self) -> list[AccountSpec]:
        return [self.clearing, self.payable, self.prepaid, self.receivable, self.suspense]


async def open_books(db: Database) -> Books:
    tenant_id, driver_id = await make_tenant(db), await make_driver(db)
    books = Books(
        tenant_id=tenant_id,
        driver_id=driver_id,
        clearing=account_spec("provider_clearing", f"test-{uuid.uuid4().hex[:10]}"),
        payable=account_spec("tenant_payable", tenant_id),
        prepaid=account_spec("driver_prepaid", driver_id),
        receivable=account_spec("driver_receivable", driver_id),
        suspense=account_spec("tenant_suspense", tenant_id),
    )
    async with db.transaction(PLATFORM) as session:
        await service.ensure_accounts(session, books.all)
    return books


@pytest.fixture
async def books(db: Database) -> Books:
    return await open_books(db)


async def apply(db: Database, transfers: Sequence[TransferSpec]) -> list[service.TransferResult]:
    async with db.transaction(PLATFORM) as session:
        return await service.create_transfers(session, transfers)


async def sums(db: Database, account: AccountSpec) -> tuple[int, int, int, int]:
    async with db.transaction(PLATFORM) as session:
        found = (await service.balances(session, [account.id]))[account.id]
    return (found.debits_pending, found.debits_posted, found.credits_pending, found.credits_posted)


def single(
    debit: AccountSpec, credit: AccountSpec, amount: int, *, code: str = "payment", **fields: object
) -> TransferSpec:
    return TransferSpec(transfer_id("test", uuid.uuid4()), debit.id, credit.id, amount, code, **fields)  # type: ignore[arg-type]
