"""The ledger's pure rules: deterministic ids, account kinds and their owners, balances read on the normal side,
and the reference model's two-phase and linked semantics (the model is checked against the database elsewhere)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.ledger.rules import (
    ACCOUNT_KINDS,
    Balance,
    LedgerModel,
    Outcome,
    TransferSpec,
    account_id,
    account_spec,
    transfer_id,
)

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
TENANT = uuid.UUID("11111111-1111-4111-8111-111111111111")
DRIVER = uuid.UUID("22222222-2222-4222-8222-222222222222")


def test_account_ids_are_stable_and_differ_by_kind_owner_and_currency() -> None:
    assert account_id("tenant_payable", TENANT) == account_id("tenant_payable", str(TENANT))
    ids = {
        account_id("tenant_payable", TENANT),
        account_id("tenant_suspense", TENANT),
        account_id("tenant_payable", DRIVER),
        account_id("tenant_payable", TENANT, "HKD"),
        account_id("platform_fee_revenue"),
    }
    assert len(ids) == 5
    with pytest.raises(ValueError, match="unknown ledger account kind"):
        account_id("wallet", DRIVER)


def test_account_ids_never_change_between_releases() -> None:
    """Ids are stored: the namespace and the formula are fixed forever."""
    assert str(account_id("platform_fee_revenue")) == str(
        uuid.uuid5(uuid.UUID("5b0a3c52-4f0e-5d8e-9a47-6c1d2b7e4a10"), "platform_fee_revenue\x1f\x1fCNY")
    )


@given(st.lists(st.one_of(st.text(max_size=8), st.integers(), st.uuids()), min_size=1, max_size=4))
def test_transfer_ids_are_deterministic_and_separate_their_parts(parts: list[object]) -> None:
    assert transfer_id(*parts) == transfer_id(*parts)
    joined = "".join(str(part) for part in parts)
    if len(parts) > 1:
        assert transfer_id(*parts) != transfer_id(joined)


def test_account_specs_fill_the_tenant_or_driver_their_kind_implies() -> None:
    payable = account_spec("tenant_payable", TENANT)
    assert (payable.owner, payable.tenant_id, payable.driver_id) == (str(TENANT), TENANT, None)
    assert payable.bound is None  # a refund after a payout may take it below zero: the operator owes the hub
    wallet = account_spec("driver_prepaid", DRIVER)
    assert (wallet.tenant_id, wallet.driver_id) == (None, DRIVER)
    assert wallet.bound == "debits_must_not_exceed_credits"
    arrears = account_spec("driver_receivable", DRIVER)
    assert arrears.bound == "credits_must_not_exceed_debits"
    fund = account_spec("merchant_coupon_fund", "shop-7", tenant_id=TENANT)
    assert (fund.owner, fund.tenant_id) == ("shop-7", TENANT)
    assert account_spec("provider_clearing", "wechat").owner == "wechat"
    assert account_spec("platform_fee_revenue").id == account_id("platform_fee_revenue")


@pytest.mark.parametrize(
    ("kind", "owner", "kwargs", "message"),
    [
        ("platform_fee_revenue", "x", {}, "platform-wide"),
        ("tenant_payable", "", {}, "needs its owner"),
        ("tenant_payable", "not-a-uuid", {}, "badly formed"),
        ("merchant_coupon_fund", "shop-7", {}, "merchant's tenant"),
        ("provider_clearing", "wechat", {"currency": "rmb"}, "ISO 4217"),
    ],
)
def test_account_specs_refuse_owners_that_do_not_fit(kind: str, owner: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        account_spec(kind, owner, **kwargs)


def test_every_kind_has_a_normal_side_and_bounds_only_on_that_side() -> None:
    for kind in ACCOUNT_KINDS.values():
        assert kind.normal in ("debit", "credit")
        if kind.bound == "debits_must_not_exceed_credits":
            assert kind.normal == "credit"
        if kind.bound == "credits_must_not_exceed_debits":
            assert kind.normal == "debit"


def test_balances_read_on_the_normal_side() -> None:
    wallet = Balance(uuid.uuid4(), "driver_prepaid", "d", "CNY", 300, 200, 50, 1000)
    assert (wallet.posted, wallet.pending, wallet.available) == (800, -250, 500)
    arrears = Balance(uuid.uuid4(), "driver_receivable", "d", "CNY", 0, 900, 100, 300)
    assert (arrears.posted, arrears.pending, arrears.available) == (600, -100, 500)


def _model() -> tuple[LedgerModel, uuid.UUID, uuid.UUID]:
    model = LedgerModel()
    clearing, wallet = account_spec("provider_clearing", "p"), account_spec("driver_prepaid", DRIVER)
    model.open_account(clearing)
    model.open_account(wallet)
    return model, clearing.id, wallet.id


def test_a_pending_reserves_and_a_post_for_less_releases_the_rest() -> None:
    model, clearing, wallet = _model()
    top_up = TransferSpec(transfer_id("top-up"), clearing, wallet, 1000, "top_up")
    hold = TransferSpec(transfer_id("hold"), wallet, clearing, 600, "payment", kind="pending")
    assert model.apply([top_up, hold], NOW) == [Outcome("created"), Outcome("created")]
    assert model.sums(wallet) == (600, 0, 0, 1000)
    too_much = TransferSpec(transfer_id("spend"), wallet, clearing, 500, "payment")
    assert model.apply([too_much], NOW) == [Outcome("balance_bound_exceeded", "debit account")]
    post = TransferSpec(transfer_id("post"), None, None, 450, "payment", kind="post_pending", pending_id=hold.id)
    assert model.apply([post], NOW) == [Outcome("created")]
    assert model.sums(wallet) == (0, 450, 0, 1000)
    void = TransferSpec(transfer_id("void"), None, None, 0, "payment", kind="void_pending", pending_id=hold.id)
    assert model.apply([void], NOW) == [Outcome("pending_already_posted", "the pending transfer was posted")]


def test_a_linked_batch_fails_whole_and_an_unlinked_one_transfer_by_transfer() -> None:
    model, clearing, wallet = _model()
    good = TransferSpec(transfer_id("good"), clearing, wallet, 100, "top_up")
    bad = TransferSpec(transfer_id("bad"), wallet, clearing, 500, "payment")
    assert model.apply([good, bad], NOW) == [
        Outcome("linked_event_failed"),
        Outcome("balance_bound_exceeded", "debit account"),
    ]
    assert model.sums(wallet) == (0, 0, 0, 0)
    assert model.apply([good, bad], NOW, linked=False) == [
        Outcome("created"),
        Outcome("balance_bound_exceeded", "debit account"),
    ]
    assert model.sums(wallet) == (0, 0, 0, 100)


def test_an_expired_pending_can_be_voided_but_not_posted() -> None:
    model, clearing, wallet = _model()
    hold = TransferSpec(
        transfer_id("hold"), clearing, wallet, 10, "payment", kind="pending", expires_at=NOW + timedelta(minutes=5)
    )
    assert model.apply([hold], NOW) == [Outcome("created")]
    later = NOW + timedelta(minutes=6)
    post = TransferSpec(transfer_id("post"), None, None, 10, "payment", kind="post_pending", pending_id=hold.id)
    assert model.apply([post], later) == [Outcome("pending_expired", "the pending transfer expired")]
    void = TransferSpec(transfer_id("void"), None, None, 0, "payment", kind="void_pending", pending_id=hold.id)
    assert model.apply([void], later) == [Outcome("created")]
    assert model.transfers[void.id].amount == 10  # a void stores what it released
    assert model.apply([void], later) == [Outcome("exists")]  # a replay of the void with 0 again
