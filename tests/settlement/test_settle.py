"""A settlement run against the real ledger: statements that add up to the fen, idempotent re-runs, one statement
per transfer also under concurrent runs, local-midnight cuts, payouts confirmed and failed, provider_direct."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub.db import PLATFORM, Database, Scope
from hub.errors import Conflict, InvalidInput
from hub.ledger import service as ledger
from hub.ledger.rules import account_id
from hub.settlement import rules, service
from tests.settlement.conftest import (
    Operator,
    adjustment,
    coupon,
    make_operator,
    move,
    payable_balance,
    payment,
    refund,
    settle,
)


async def test_statement_lines_sum_to_the_payout_and_match_the_ledger(db: Database, operator: Operator) -> None:
    await move(db, [payment(operator, 1234), payment(operator, 8766), payment(operator, 84)])
    await move(db, [refund(operator, 500), coupon(operator, 300), adjustment(operator, -20), adjustment(operator, 7)])
    outcome = await settle(db, operator)
    s = outcome.statement
    assert outcome.created
    assert (s["gross"], s["refunds"], s["coupons"], s["other"], s["returned"]) == (10_084, 500, 300, -13, 0)
    assert s["fee"] == 58  # 0.6% of 9584 = 57.504 -> 58
    assert s["payout"] == 10_084 - 500 + 300 - 13 - 58
    assert s["carried_out"] == 0 and s["transfer_count"] == 7
    assert s["payout_status"] == "pending"
    async with db.transaction(PLATFORM) as session:
        assert await service.verify_statement(session, operator.tenant_id, s["id"]) == []
        listed = await service.statement_transfers(session, operator.tenant_id, s["id"], limit=100)
        fee_revenue = await ledger.balances(session, [account_id("platform_fee_revenue")])
    assert len(listed) == 7 and sum(1 for row in listed if row["line"] == "gross") == 3
    assert fee_revenue  # the fee landed in platform revenue
    balance = await payable_balance(db, operator)
    # posted: everything collected less the fee; the payout is reserved (pending) until confirmed
    assert balance.posted == s["payout"]
    assert balance.available == 0


async def test_rerun_is_a_noop_returning_the_same_statement(db: Database, operator: Operator) -> None:
    await move(db, [payment(operator, 1000)])
    first = await settle(db, operator)
    await move(db, [payment(operator, 999)])  # arrives after the run: not in the settled day's statement
    again = await settle(db, operator)
    assert not again.created
    assert again.statement["id"] == first.statement["id"]
    assert again.statement["gross"] == 1000
    async with db.transaction(PLATFORM) as session:
        assert await service.unsettled(session, operator.tenant_id) == (999, 1)


async def test_concurrent_runs_make_one_statement_and_list_each_transfer_once(db: Database, operator: Operator) -> None:
    await move(db, [payment(operator, 100 + n) for n in range(50)])
    results = await asyncio.gather(*(settle(db, operator) for _ in range(4)))
    assert sum(1 for r in results if r.created) == 1
    assert len({r.statement["id"] for r in results}) == 1
    async with db.transaction(PLATFORM) as session:
        rows = await service.statement_transfers(session, operator.tenant_id, results[0].statement["id"], limit=1000)
    assert len(rows) == 50 == len({row["transfer_id"] for row in rows})


async def test_a_transfer_is_never_in_two_statements(db: Database, operator: Operator) -> None:
    today = operator.today()
    await move(db, [payment(operator, 500)])
    earlier = await settle(db, operator, today - timedelta(days=1))
    assert earlier.statement["transfer_count"] == 0  # created today: after yesterday's cut
    first = await settle(db, operator, today)
    second = await settle(db, operator, today + timedelta(days=1))
    assert first.statement["gross"] == 500
    assert second.statement["gross"] == 0 and second.statement["transfer_count"] == 0


async def test_days_settle_in_order_and_only_when_due(db: Database, operator: Operator) -> None:
    today = operator.today()
    await settle(db, operator, today)
    with pytest.raises(Conflict):
        await settle(db, operator, today - timedelta(days=1))
    async with db.transaction(PLATFORM) as session:
        with pytest.raises(InvalidInput) as raised:
            await service.settle(session, operator.tenant_id, today + timedelta(days=1), now=datetime.now(UTC))
    assert raised.value.code == "NOT_DUE"


@pytest.mark.parametrize("time_zone", ["Asia/Shanghai", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
async def test_the_cut_is_local_midnight_of_the_tenant(db: Database, time_zone: str) -> None:
    op = await make_operator(db, time_zone=time_zone)
    await move(db, [payment(op, 700)])
    async with db.transaction(PLATFORM) as session:
        created_at = (await ledger.account_transfers(session, op.payable.id))[-1]["created_at"]
    local_day = created_at.astimezone(rules.zone(time_zone)).date()
    window = rules.business_day(local_day, time_zone)
    assert window.start <= created_at < window.end
    before = await settle(db, op, local_day - timedelta(days=1))
    on_the_day = await settle(db, op, local_day)
    assert before.statement["gross"] == 0
    assert on_the_day.statement["gross"] == 700
    assert on_the_day.statement["period_start"] == window.start


async def test_confirmed_payout_leaves_the_payable(db: Database, operator: Operator) -> None:
    await move(db, [payment(operator, 10_000)])
    s = (await settle(db, operator)).statement
    async with db.transaction(PLATFORM) as session:
        confirmed = await service.confirm_payout(session, s["id"], reference="bank-123")
        again = await service.confirm_payout(session, s["id"])
        transit = await ledger.balances(session, [account_id("tenant_payout_in_transit", operator.tenant_id)])
    assert confirmed["payout_status"] == again["payout_status"] == "confirmed"
    assert next(iter(transit.values())).posted == s["payout"] == 9_940
    balance = await payable_balance(db, operator)
    assert (balance.posted, balance.pending) == (0, 0)
    async with db.transaction(PLATFORM) as session:
        with pytest.raises(Conflict):
            await service.fail_payout(session, s["id"])


async def test_failed_payout_returns_on_the_next_statement(db: Database, operator: Operator) -> None:
    today = operator.today()
    await move(db, [payment(operator, 10_000)])
    s = (await settle(db, operator, today)).statement
    async with db.transaction(PLATFORM) as session:
        failed = await service.fail_payout(session, s["id"], reason="account closed")
    assert failed["payout_status"] == "failed"
    assert (await payable_balance(db, operator)).available == 9_940
    nxt = (await settle(db, operator, today + timedelta(days=1))).statement
    assert (nxt["returned"], nxt["gross"], nxt["fee"], nxt["payout"]) == (9_940, 0, 0, 9_940)
    async with db.transaction(PLATFORM) as session:
        assert await service.verify_statement(session, operator.tenant_id, nxt["id"]) == []
        with pytest.raises(Conflict):
            await service.confirm_payout(session, s["id"])


async def test_negative_net_carries_over_to_the_next_statement(db: Database, operator: Operator) -> None:
    today = operator.today()
    await move(db, [refund(operator, 2_000), payment(operator, 500)])
    first = (await settle(db, operator, today)).statement
    assert first["fee"] == -9  # 0.6% of -1500 = -9: the fee is refunded on net refunds
    assert (first["payout"], first["carried_out"], first["payout_status"]) == (0, -1_491, "none")
    await move(db, [payment(operator, 3_000)])
    second = (await settle(db, operator, today + timedelta(days=1))).statement
    assert second["carried_in"] == -1_491
    assert second["payout"] == 3_000 - 18 - 1_491
    assert second["previous_statement_id"] == first["id"]


async def test_provider_direct_reserves_into_the_providers_settled_account(db: Database, operator: Operator) -> None:
    await move(db, [payment(operator, 20_000)])
    s = (await settle(db, operator, mode=rules.PROVIDER_DIRECT, provider="sandbox")).statement
    assert (s["mode"], s["payout_account"], s["fee"], s["payout"]) == (
        "provider_direct",
        "provider_settled:sandbox",
        120,
        19_880,
    )
    async with db.transaction(PLATFORM) as session:
        await service.confirm_payout(session, s["id"], reference="provider-settlement-record-1")
        settled = await ledger.balances(session, [account_id("provider_settled", "sandbox")])
    assert next(iter(settled.values())).posted >= 19_880
    assert (await payable_balance(db, operator)).posted == 0


async def test_an_operator_sees_only_its_own_statements(db: Database, operator: Operator) -> None:
    other = await make_operator(db)
    await move(db, [payment(operator, 100), payment(other, 200)])
    mine = (await settle(db, operator)).statement
    theirs = (await settle(db, other)).statement
    async with db.transaction(Scope("operator", tenant_id=operator.tenant_id)) as session:
        listed = await service.statements(session, operator.tenant_id)
        assert [row["id"] for row in listed] == [mine["id"]]
        assert await service.statements(session, other.tenant_id) == []  # RLS hides another tenant's rows
        assert await service.statement_transfers(session, other.tenant_id, theirs["id"]) == []
        with pytest.raises(Exception):  # noqa: B017  (operators never write statements)
            await service.settle(
                session,
                operator.tenant_id,
                operator.today() + timedelta(days=1),
                now=datetime.now(UTC) + timedelta(days=5),
            )
