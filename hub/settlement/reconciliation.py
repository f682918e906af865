"""Reconciliation of a provider's daily bill against the ledger: every difference becomes an item, and its amount
moves into suspense so the provider's clearing account agrees with the provider. Functions never commit.

`reconcile(session, provider, day, records)` (run under the platform scope, by the CLI `parkhub reconcile` or a job):
1. the bill's lines (connectors' SettlementRecord: kind payment or refund, out_trade_no, amount) summed per
   (kind, out_trade_no);
2. the ledger's posted movements of provider_clearing[provider] created in the bill's day (local midnight to
   midnight in the bill's time zone), per (kind, payment named in the reference; out_trade_no = its id's hex);
3. rules.mismatches: missing in the ledger, missing at the provider, amounts that differ;
4. for each difference not yet recorded for this (provider, day): one ledger transfer of rules.Mismatch.clearing_effect
   between provider_clearing[provider] and suspense (tenant_suspense[T] when the payment's tenant is known, else
   platform_suspense), id transfer_id("reconciliation", provider, day, kind, out_trade_no), and the item row naming it.

Re-running a day is a no-op: items are unique per (provider, day, kind, out_trade_no) and their transfers' ids are
derived from the same key; a difference that appears only later (a late ledger write) is added then, one already
recorded is never changed (its correction is a new transfer, after resolution).

An empty bill against a day the ledger booked movements on is refused (EMPTY_BILL) unless allowed explicitly.

Known limit: the ledger side is cut by the transfers' created_at, the bill by the provider's own time; a payment
captured seconds before midnight whose callback lands after it shows as a difference on both days (missing in the
ledger on D, missing at the provider on D+1); both items are visible and net to zero in suspense.

Items are read by the platform admin (all) and by an operator (its tenant's); either resolves one with a note
(operators: admins, their own tenant's)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import driver_of
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.ledger import service as ledger
from hub.ledger.rules import AccountSpec, TransferSpec, account_spec, transfer_id
from hub.principal import Principal
from hub.settlement import repository, rules

Row = repository.Row
DEFAULT_BILL_ZONE = "Asia/Shanghai"
MAX_NOTE = 2000
MAX_PAGE = 100


class BillLine(Protocol):
    """What reconciliation reads of a provider's bill line (connectors.payments.base.SettlementRecord)."""

    kind: str
    out_trade_no: str
    provider_reference: str
    amount_fen: int
    currency: str


@dataclass(frozen=True)
class ReconcileResult:
    provider: str
    day: date
    records: int
    compared: int
    items: list[Row]  # created by this run
    already_recorded: int

    @property
    def suspense_fen(self) -> int:
        return sum(
            rules.Mismatch(i["kind"], i["out_trade_no"], i["provider_fen"], i["ledger_fen"]).clearing_effect
            for i in self.items
        )


def _out_trade_no(payment_ref: str) -> str:
    try:
        return uuid.UUID(payment_ref).hex
    except ValueError:
        return payment_ref


def _payment_id(out_trade_no: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(hex=out_trade_no)
    except (ValueError, TypeError):
        return None


async def reconcile(
    session: AsyncSession,
    provider: str,
    day: date,
    records: Sequence[BillLine],
    *,
    time_zone: str = DEFAULT_BILL_ZONE,
    currency: str = "CNY",
    allow_empty_bill: bool = False,
) -> ReconcileResult:
    """Compare `provider`'s bill for `day` with the ledger (see the module's notes); idempotent."""
    if not provider:
        raise InvalidInput("name the provider", code="INVALID_INPUT", field="provider")
    billed: dict[tuple[str, str], int] = {}
    references: dict[tuple[str, str], list[str]] = {}
    for record in records:
        if record.kind not in rules.RECONCILED_KINDS:
            raise InvalidInput(f"a bill line's kind is payment or refund, not {record.kind!r}", code="INVALID_INPUT")
        if record.currency != currency:
            raise InvalidInput(f"the bill mixes currencies: {record.currency} is not {currency}", code="INVALID_INPUT")
        key = (record.kind, record.out_trade_no)
        billed[key] = billed.get(key, 0) + record.amount_fen
        references.setdefault(key, []).append(record.provider_reference)
    conn = await driver_of(session)
    await repository.lock_reconciliation(conn, provider, day)
    business = rules.business_day(day, time_zone)
    clearing = account_spec("provider_clearing", provider, currency)
    booked: dict[tuple[str, str], int] = {}
    for row in await repository.clearing_movements(conn, clearing.id, business.start, business.end):
        key = (row["kind"], _out_trade_no(row["payment_ref"]))
        booked[key] = booked.get(key, 0) + int(row["amount"])
    if not billed and booked and not allow_empty_bill:
        # An empty bill against a day of captures is far likelier a bill not fetched (the sandbox keeps its books in
        # the memory of the process that took the payments) than a provider that lost a whole day.
        raise InvalidInput(
            f"{provider}'s bill for {day.isoformat()} is empty but the ledger booked {len(booked)} movement(s) that "
            "day: refusing to move them all to suspense (allow an empty bill explicitly if it really is empty)",
            code="EMPTY_BILL",
            field="records",
        )
    found = rules.mismatches(billed, booked)
    recorded = await repository.recorded_items(conn, provider, day)
    new = [m for m in found if (m.kind, m.out_trade_no) not in recorded]
    if not new:
        return ReconcileResult(provider, day, len(records), len(set(billed) | set(booked)), [], len(found))
    payment_ids = [pid for pid in (_payment_id(m.out_trade_no) for m in new) if pid is not None]
    tenants = await repository.payment_tenants(conn, payment_ids)
    accounts: dict[uuid.UUID, AccountSpec] = {clearing.id: clearing}
    transfers: list[TransferSpec] = []
    rows: list[dict[str, Any]] = []
    for mismatch in new:
        payment_id = _payment_id(mismatch.out_trade_no)
        tenant = tenants.get(payment_id) if payment_id is not None else None
        suspense = (
            account_spec("tenant_suspense", tenant, currency)
            if tenant is not None
            else account_spec("platform_suspense", "", currency)
        )
        accounts[suspense.id] = suspense
        effect = mismatch.clearing_effect
        debit, credit = (clearing, suspense) if effect > 0 else (suspense, clearing)
        leg = transfer_id(rules.RECONCILIATION_CODE, provider, day.isoformat(), mismatch.kind, mismatch.out_trade_no)
        transfers.append(
            TransferSpec(
                leg,
                debit.id,
                credit.id,
                abs(effect),
                rules.RECONCILIATION_CODE,
                currency=currency,
                tenant_id=tenant,
                reference={
                    "provider": provider,
                    "date": day.isoformat(),
                    "kind": mismatch.kind,
                    "out_trade_no": mismatch.out_trade_no,
                },
            )
        )
        rows.append(
            {
                "tenant_id": tenant,
                "provider": provider,
                "business_date": day,
                "kind": mismatch.kind,
                "out_trade_no": mismatch.out_trade_no,
                "payment_id": payment_id if tenant is not None else None,
                "problem": mismatch.problem,
                "provider_fen": mismatch.provider_fen,
                "ledger_fen": mismatch.ledger_fen,
                "currency": currency,
                "provider_references": ", ".join(references.get((mismatch.kind, mismatch.out_trade_no), [])) or None,
                "suspense_account": f"{suspense.kind}:{suspense.owner}" if suspense.owner else suspense.kind,
                "suspense_transfer_id": leg,
            }
        )
    await ledger.ensure_accounts(conn, list(accounts.values()))
    await ledger.create_transfers(conn, transfers)
    created = await repository.insert_items(conn, rows)
    return ReconcileResult(
        provider, day, len(records), len(set(billed) | set(booked)), created, len(found) - len(created)
    )


# --------------------------------------------------------------------------------------------------- items


def _reader(principal: Principal) -> uuid.UUID | None:
    """The tenant whose items `principal` reads (None: every item, for the platform admin)."""
    if principal.kind == "platform":
        return None
    if principal.kind == "operator" and principal.tenant_id is not None:
        return principal.tenant_id
    raise Forbidden("reconciliation is read by the platform admin and the operator's staff", code="FORBIDDEN")


async def items(
    session: AsyncSession,
    principal: Principal,
    *,
    provider: str | None = None,
    since: date | None = None,
    until: date | None = None,
    unresolved_only: bool = False,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 20,
) -> list[Row]:
    if not 1 <= limit <= MAX_PAGE + 1:
        raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", code="INVALID_INPUT", field="first")
    return await repository.items(
        await driver_of(session), _reader(principal), provider, since, until, unresolved_only, after, limit
    )


async def item(session: AsyncSession, principal: Principal, item_id: uuid.UUID) -> Row | None:
    return await repository.item(await driver_of(session), _reader(principal), item_id)


async def resolve(session: AsyncSession, principal: Principal, item_id: uuid.UUID, note: str) -> Row:
    """Resolve an item with a note (the platform admin: any; an operator admin: its tenant's). Resolving again
    is a Conflict; the money stays in suspense until a correction transfer moves it."""
    if principal.kind == "operator" and not principal.is_operator_admin:
        raise Forbidden("only an operator admin may resolve reconciliation items", required_role="operator_admin")
    tenant = _reader(principal)
    note = note.strip()
    if not note or len(note) > MAX_NOTE:
        raise InvalidInput(f"a note of 1 to {MAX_NOTE} characters is required", code="INVALID_INPUT", field="note")
    conn = await driver_of(session)
    row = await repository.resolve_item(conn, tenant, item_id, note, principal.subject or principal.kind, _now())
    if row is not None:
        return row
    existing = await repository.item(conn, tenant, item_id)
    if existing is None:
        raise NotFound(f"no reconciliation item with id {item_id}", code="RECONCILIATION_ITEM_NOT_FOUND", field="id")
    raise Conflict("this item is already resolved", code="ALREADY_RESOLVED", field="id")


def _now() -> datetime:
    return datetime.now(UTC)
