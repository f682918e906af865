"""Reconciliation of a provider's daily bill against the ledger: each difference (amount differs, missing at the
provider, missing in the ledger; payments and refunds) becomes one item and moves to the tenant's suspense (the
platform's when the payment is unknown), after which the clearing account agrees with the provider's bill to the
fen; a re-run is a no-op; items show for the platform admin and for their operator only, and resolve with a note."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from connectors.payments.base import SettlementRecord
from hub.db import PLATFORM, Database
from hub.errors import InvalidInput
from hub.ledger import service as ledger
from hub.ledger.rules import TransferSpec, account_id, account_spec, transfer_id
from hub.settlement import reconciliation
from tests.api.conftest import Callers, app, callers, client  # noqa: F401
from tests.settlement.conftest import Operator, make_operator, move
from tests.settlement.test_cli import parkhub

ITEMS = """
query($unresolved: Boolean) {
  reconciliationItems(first: 50, unresolvedOnly: $unresolved) {
    edges { node { id kind outTradeNo problem providerFen ledgerFen operatorId paymentId suspenseAccount
                   resolvedAt resolutionNote } }
  }
}
"""
RESOLVE = "mutation($id: ID!, $note: String!) { resolveReconciliationItem(id: $id, note: $note) { id resolvedBy } }"


async def _payment(db: Database, op: Operator, amount: int) -> uuid.UUID:
    async with db.transaction(PLATFORM) as session:
        return (
            await session.execute(
                text(
                    "INSERT INTO payments (tenant_id, purpose, method, amount_fen, provider, state, idempotency_key) "
                    "VALUES (:t, 'lot_session', 'charge', :a, 'sandbox', 'succeeded', :k) RETURNING id"
                ),
                {"t": op.tenant_id, "a": amount, "k": uuid.uuid4().hex},
            )
        ).scalar_one()


def _line(kind: str, payment: uuid.UUID, amount: int) -> SettlementRecord:
    return SettlementRecord(
        kind=kind,
        out_trade_no=payment.hex,
        out_refund_no=f"r-{uuid.uuid4().hex[:8]}" if kind == "refund" else None,
        provider_reference=f"ref-{uuid.uuid4().hex[:8]}",
        amount_fen=amount,
        fee_fen=0,
        currency="CNY",
        occurred_at=datetime.now(UTC),
    )


class Day:
    """One operator's day at a provider of its own: what the ledger booked and what the provider's bill says."""

    def __init__(self, op: Operator, provider: str) -> None:
        self.op, self.provider = op, provider
        self.clearing = account_spec("provider_clearing", provider)

    def captured(self, payment: uuid.UUID, amount: int) -> TransferSpec:
        return TransferSpec(
            transfer_id("recon-test", uuid.uuid4()),
            self.clearing.id,
            self.op.payable.id,
            amount,
            "payment_applied",
            tenant_id=self.op.tenant_id,
            reference={"payment_id": str(payment)},
        )

    def refunded(self, payment: uuid.UUID, amount: int) -> TransferSpec:
        return TransferSpec(
            transfer_id("recon-test", uuid.uuid4()),
            self.op.payable.id,
            self.clearing.id,
            amount,
            "refund",
            tenant_id=self.op.tenant_id,
            reference={"payment_id": str(payment)},
        )


@pytest.fixture
async def day(db: Database) -> tuple[Day, list[SettlementRecord]]:
    op = await make_operator(db)
    d = Day(op, f"recon-{uuid.uuid4().hex[:8]}")
    async with db.transaction(PLATFORM) as session:
        await ledger.ensure_accounts(session, [d.clearing])
    matched, short, unbilled, unbooked = [await _payment(db, op, amount) for amount in (1000, 2000, 500, 700)]
    stranger = uuid.uuid4()  # a payment the hub never heard of
    await move(db, [d.captured(matched, 1000), d.captured(short, 2000), d.captured(unbilled, 500)])
    await move(db, [d.refunded(matched, 100)])
    bill = [
        _line("payment", matched, 1000),
        _line("payment", short, 1800),  # the provider took less than the ledger booked
        _line("payment", unbooked, 700),  # the ledger never heard of this capture
        _line("payment", stranger, 300),
        _line("refund", matched, 100),
        _line("refund", short, 50),  # a refund the ledger does not have
    ]
    return d, bill


async def _reconcile(db: Database, d: Day, bill: list[SettlementRecord]) -> reconciliation.ReconcileResult:
    async with db.transaction(PLATFORM) as session:
        return await reconciliation.reconcile(session, d.provider, d.op.today(), bill)


async def test_differences_become_items_and_suspense_makes_clearing_agree(
    db: Database, day: tuple[Day, list[SettlementRecord]]
) -> None:
    d, bill = day
    result = await _reconcile(db, d, bill)
    problems = sorted((i["kind"], i["problem"], i["provider_fen"], i["ledger_fen"]) for i in result.items)
    assert problems == [
        ("payment", "amount_differs", 1800, 2000),
        ("payment", "missing_at_provider", 0, 500),
        ("payment", "missing_in_ledger", 300, 0),
        ("payment", "missing_in_ledger", 700, 0),
        ("refund", "missing_in_ledger", 50, 0),
    ]
    stranger = next(i for i in result.items if i["provider_fen"] == 300)
    assert stranger["tenant_id"] is None and stranger["suspense_account"] == "platform_suspense"
    assert {i["tenant_id"] for i in result.items if i is not stranger} == {d.op.tenant_id}
    async with db.transaction(PLATFORM) as session:
        found = await ledger.balances(
            session, [d.clearing.id, account_id("tenant_suspense", d.op.tenant_id), account_id("platform_suspense")]
        )
    billed_net = sum(r.amount_fen if r.kind == "payment" else -r.amount_fen for r in bill)
    assert found[d.clearing.id].posted == billed_net == 3650  # the clearing account now says what the bill says
    assert found[account_id("tenant_suspense", d.op.tenant_id)].posted == 700 - 200 - 500 - 50
    assert result.suspense_fen == 3650 - (3500 - 100)

    again = await _reconcile(db, d, bill)  # a re-run of the day: nothing new, nothing moved
    assert again.items == [] and again.already_recorded == 5
    async with db.transaction(PLATFORM) as session:
        assert (await ledger.balances(session, [d.clearing.id]))[d.clearing.id].posted == 3650


async def test_an_empty_bill_for_a_day_with_captures_is_refused(
    db: Database, day: tuple[Day, list[SettlementRecord]]
) -> None:
    d, _ = day
    with pytest.raises(InvalidInput) as raised:
        await _reconcile(db, d, [])
    assert raised.value.code == "EMPTY_BILL"


async def test_items_show_for_the_platform_and_their_operator_and_resolve_with_a_note(
    db: Database,
    callers: Callers,  # noqa: F811
    day: tuple[Day, list[SettlementRecord]],
) -> None:
    d, bill = day
    result = await _reconcile(db, d, bill)
    mine = {str(i["id"]) for i in result.items if i["tenant_id"] is not None}
    admin = await callers.operator("operator_admin", tenant_id=d.op.tenant_id)
    staff = await callers.operator("operator_staff", tenant_id=d.op.tenant_id)
    seen = (await staff.data(ITEMS))["reconciliationItems"]["edges"]
    assert len(seen) == 4 and {e["node"]["suspenseAccount"] for e in seen} == {f"tenant_suspense:{d.op.tenant_id}"}
    assert (await (await callers.operator()).data(ITEMS))["reconciliationItems"]["edges"] == []
    assert await callers.city().error_code(ITEMS) == "FORBIDDEN"
    platform = callers.platform()
    everything = [e["node"] for e in (await platform.data(ITEMS))["reconciliationItems"]["edges"]]
    ours = [n for n in everything if n["outTradeNo"] in {i["out_trade_no"] for i in result.items}]
    assert len(ours) == 5 and len(mine) == 4

    target = seen[0]["node"]["id"]
    assert await staff.error_code(RESOLVE, {"id": target, "note": "looked"}) == "FORBIDDEN"
    assert await admin.error_code(RESOLVE, {"id": target, "note": "  "}) == "INVALID_INPUT"
    resolved = await admin.data(RESOLVE, {"id": target, "note": "bank statement shows 1,800"})
    assert resolved["resolveReconciliationItem"]["id"] == target
    assert await admin.error_code(RESOLVE, {"id": target, "note": "again"}) == "ALREADY_RESOLVED"
    stranger = next(n for n in ours if n["operatorId"] is None)
    assert await admin.error_code(RESOLVE, {"id": stranger["id"], "note": "not ours"}) == (
        "RECONCILIATION_ITEM_NOT_FOUND"
    )
    await platform.data(RESOLVE, {"id": stranger["id"], "note": "unknown order: asked the provider"})
    open_items = (await staff.data(ITEMS, {"unresolved": True}))["reconciliationItems"]["edges"]
    assert len(open_items) == 3 and target not in {e["node"]["id"] for e in open_items}


async def test_the_cli_reconciles_a_bill_file_once(
    db: Database, day: tuple[Day, list[SettlementRecord]], tmp_path: Path
) -> None:
    d, bill = day
    path = tmp_path / "bill.json"
    path.write_bytes(orjson.dumps([dataclasses.asdict(line) for line in bill]))
    args = ("reconcile", "--provider", d.provider, "--date", d.op.today().isoformat(), "--records", str(path))
    first = await parkhub(*args)
    assert first.returncode == 0, first.stderr
    assert "6 bill line(s)" in first.stdout and "5 new difference(s)" in first.stdout
    assert "amount_differs: payment" in first.stdout
    again = await parkhub(*args)
    assert again.returncode == 0 and "0 new difference(s)" in again.stdout and "5 already recorded" in again.stdout
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"[]")
    refused = await parkhub(*args[:-1], str(empty))
    assert refused.returncode == 1 and "EMPTY_BILL" not in refused.stdout and "is empty" in refused.stderr
    malformed = await parkhub("reconcile", "--provider", d.provider, "--date", "yesterday")
    assert malformed.returncode == 2 and "Traceback" not in malformed.stderr
