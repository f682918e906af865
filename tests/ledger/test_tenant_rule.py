"""The ledger's tenant rule (migration 0019): settlement collects an operator's money by the transfers' tenant_id, so
a transfer on a tenant's account carries that tenant. One that names none takes it (and its replay is `exists`),
one that names another tenant is refused, and money never moves between two tenants' accounts directly; an operator
then sees, as the application role, the transfers on its accounts even when the caller named no tenant."""

from __future__ import annotations

import uuid

import pytest

from hub.db import PLATFORM, Database, Scope
from hub.ledger import service
from hub.ledger.errors import InvalidTransfer
from hub.ledger.rules import TransferSpec, account_spec, transfer_id
from tests.ledger.conftest import Books, apply, open_books, single


async def _stored(db: Database, transfer: uuid.UUID) -> dict[str, object]:
    async with db.transaction(PLATFORM) as session:
        (row,) = await service.transfers(session, [transfer])
    return dict(row)


async def test_a_transfer_naming_no_tenant_takes_its_accounts_tenant(db: Database, books: Books) -> None:
    payment = single(books.clearing, books.payable, 1200)
    assert payment.tenant_id is None
    assert [r.result for r in await apply(db, [payment])] == ["created"]
    assert (await _stored(db, payment.id))["tenant_id"] == books.tenant_id
    # The same request again derives the same tenant: an identical replay, not a conflict.
    assert [r.result for r in await apply(db, [payment])] == ["exists"]
    async with db.transaction(Scope("operator", tenant_id=books.tenant_id)) as session:
        visible = await service.transfers(session, [payment.id])
    assert [row["id"] for row in visible] == [payment.id]


async def test_a_transfer_naming_another_tenant_is_refused_and_writes_nothing(db: Database, books: Books) -> None:
    other = await open_books(db)
    funded = single(books.clearing, books.payable, 100, tenant_id=books.tenant_id)
    wrong = single(books.clearing, books.payable, 500, tenant_id=other.tenant_id)
    with pytest.raises(InvalidTransfer) as raised:
        await apply(db, [funded, wrong])
    assert raised.value.code == "INVALID_TRANSFER"
    assert raised.value.detail == "tenant_id differs from the tenant owning its account"
    assert raised.value.details["index"] == 1
    async with db.transaction(PLATFORM) as session:
        assert await service.transfers(session, [funded.id, wrong.id]) == []


async def test_money_never_moves_between_two_tenants_accounts(db: Database, books: Books) -> None:
    other = await open_books(db)
    for tenant in (None, books.tenant_id, other.tenant_id):
        with pytest.raises(InvalidTransfer) as raised:
            await apply(db, [single(books.payable, other.payable, 100, tenant_id=tenant)])
        assert raised.value.detail == "the debit and credit accounts belong to different tenants"


async def test_accounts_of_no_tenant_leave_the_tenant_to_the_caller(db: Database, books: Books) -> None:
    """A driver's wallet and a provider's clearing belong to no operator: the transfer keeps what it names."""
    top_up = single(books.clearing, books.prepaid, 300, driver_id=books.driver_id)
    applied = single(books.clearing, books.prepaid, 200, tenant_id=books.tenant_id, driver_id=books.driver_id)
    await apply(db, [top_up, applied])
    assert (await _stored(db, top_up.id))["tenant_id"] is None
    assert (await _stored(db, applied.id))["tenant_id"] == books.tenant_id


async def test_a_merchant_fund_belongs_to_its_tenant(db: Database, books: Books) -> None:
    fund = account_spec("merchant_coupon_fund", f"shop-{uuid.uuid4().hex[:8]}", tenant_id=books.tenant_id)
    async with db.transaction(PLATFORM) as session:
        await service.ensure_accounts(session, [fund])
    funding = single(books.clearing, fund, 1000)
    await apply(db, [funding])
    assert (await _stored(db, funding.id))["tenant_id"] == books.tenant_id
    other = await open_books(db)
    with pytest.raises(InvalidTransfer):
        await apply(db, [single(fund, other.payable, 100)])


async def test_a_post_and_a_void_take_their_pendings_tenant(db: Database, books: Books) -> None:
    first = single(books.clearing, books.payable, 800, kind="pending")
    second = single(books.clearing, books.payable, 300, kind="pending")
    post = TransferSpec(transfer_id("post", uuid.uuid4()), None, None, 500, "payment", "post_pending", first.id)
    void = TransferSpec(transfer_id("void", uuid.uuid4()), None, None, 0, "payment", "void_pending", second.id)
    await apply(db, [first, second, post, void])
    for transfer in (first, second, post, void):
        assert (await _stored(db, transfer.id))["tenant_id"] == books.tenant_id
    async with db.transaction(PLATFORM) as session:
        assert [v for v in await service.check_invariants(session) if v.check == "tenant_rule"] == []
