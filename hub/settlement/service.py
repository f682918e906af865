"""Use cases of settlement: settle one tenant's business day, confirm or fail its payout, read statements. Functions
never commit: the caller's transaction does, so a statement, the transfers it lists and its ledger transfers (fee,
payout) commit together or not at all.

A run for (tenant T, business date D), under a per-tenant advisory lock:
1. D's statement exists: return it (a re-run is a no-op). A later date already settled: Conflict (statements chain
   their carry in date order). D not due yet (its cut + rules.SAFETY_LAG still ahead): InvalidInput.
2. insert the statement, then attach every collectable transfer (rules.py) to it in one INSERT ... SELECT;
3. fee and payout from rules.statement_totals; one linked batch of ledger transfers with ids from (T, D, leg):
   the fee (payable -> platform_fee_revenue, or back for a negative fee) and, when the payout is positive, a
   PENDING payable -> tenant_payout_in_transit[T] (hub_collects) or -> provider_settled[provider] (provider_direct);
4. store the figures (a CHECK in the table makes the lines add up to payout + carried_out).

`confirm_payout` posts the pending (the bank, or the provider's settlement record, says it arrived); `fail_payout`
voids it: the money is back in the payable and the void's transfer lands on the next statement's `returned` line.

Runs execute under the platform scope (the cron job and the CLI); reads under the operator's scope see only their
tenant's statements (row-level security and explicit tenant filters)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import get_settings
from hub.db import driver_of
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.ledger import service as ledger
from hub.ledger.rules import PENDING, POST_PENDING, VOID_PENDING, TransferSpec, account_spec, transfer_id
from hub.principal import Principal
from hub.settlement import repository, rules

Row = repository.Row
CREATED, EXISTS = "created", "exists"
MAX_PAGE = 1000


@dataclass(frozen=True)
class SettleResult:
    statement: Row
    result: str  # created | exists

    @property
    def created(self) -> bool:
        return self.result == CREATED


def leg_id(tenant_id: uuid.UUID, day: date, leg: str) -> uuid.UUID:
    """The ledger transfer id of one leg of a settlement (fee, payout, payout_confirmed, payout_failed)."""
    return transfer_id("settlement", tenant_id, day.isoformat(), leg)


def payout_account(mode: str, tenant_id: uuid.UUID, provider: str, currency: str) -> ledger.AccountSpec:
    if mode == rules.PROVIDER_DIRECT:
        return account_spec("provider_settled", provider, currency)
    return account_spec("tenant_payout_in_transit", tenant_id, currency)


async def settle(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    day: date,
    *,
    now: datetime | None = None,
    mode: str | None = None,
    provider: str | None = None,
) -> SettleResult:
    """Settle `tenant_id`'s business date `day` (see the module's notes); idempotent."""
    settings = get_settings()
    mode = rules.mode_known(mode or settings.settlement_mode)
    provider = provider or settings.settlement_provider
    now = now or datetime.now(UTC)
    conn = await driver_of(session)
    await repository.lock_tenant(conn, tenant_id)
    existing = await repository.statement_for_date(conn, tenant_id, day)
    if existing is not None:
        return SettleResult(existing, EXISTS)
    terms = await repository.tenant_terms(conn, tenant_id)
    if terms is None:
        raise NotFound(f"no tenant with id {tenant_id}", code="TENANT_NOT_FOUND", field="tenant")
    business = rules.business_day(day, terms["time_zone"])
    if not business.due(now):
        raise InvalidInput(
            f"{day.isoformat()} is not due yet for {terms['slug']}: it closes at {business.end.isoformat()} "
            f"and settles {int(rules.SAFETY_LAG.total_seconds() // 60)} minutes later",
            code="NOT_DUE",
            field="date",
        )
    previous = await repository.latest_statement(conn, tenant_id)
    if previous is not None and previous["business_date"] > day:
        raise Conflict(
            f"{terms['slug']} is already settled up to {previous['business_date'].isoformat()}: days settle in order",
            code="SETTLED_LATER",
            field="date",
        )
    currency = terms["currency"]
    payable = account_spec("tenant_payable", tenant_id, currency)
    carried_in = int(previous["carried_out"]) if previous is not None else 0
    statement_id = uuid.uuid4()
    await repository.insert_statement(
        conn,
        {
            "tenant_id": tenant_id,
            "id": statement_id,
            "business_date": day,
            "time_zone": terms["time_zone"],
            "period_start": business.start,
            "period_end": business.end,
            "mode": mode,
            "currency": currency,
            "previous_statement_id": previous["id"] if previous is not None else None,
            "carried_in": carried_in,
            "gross": 0,
            "refunds": 0,
            "coupons": 0,
            "other": 0,
            "returned": 0,
            "fee_bps": terms["platform_fee_bps"],
            "fee": 0,
            "payout": 0,
            "carried_out": carried_in,
            "transfer_count": 0,
            "payout_status": rules.PAYOUT_NONE,
        },
    )
    collected = await repository.collect(
        conn, tenant_id, statement_id, payable.id, business.lookback_start, business.end
    )
    lines = rules.Lines(**{line: amount for line, (amount, _) in collected.items()})
    totals = rules.statement_totals(lines, carried_in, terms["platform_fee_bps"])

    reference = {"settlement": day.isoformat()}
    transfers: list[TransferSpec] = []
    fee_revenue = account_spec("platform_fee_revenue", "", currency)
    target = payout_account(mode, tenant_id, provider, currency)
    await ledger.ensure_accounts(conn, [payable, fee_revenue, target])
    fee_transfer_id = payout_transfer_id = None
    if totals.fee != 0:
        fee_transfer_id = leg_id(tenant_id, day, "fee")
        debit, credit = (payable, fee_revenue) if totals.fee > 0 else (fee_revenue, payable)
        transfers.append(
            TransferSpec(
                fee_transfer_id,
                debit.id,
                credit.id,
                abs(totals.fee),
                rules.FEE_CODE if totals.fee > 0 else rules.FEE_REBATE_CODE,
                currency=currency,
                tenant_id=tenant_id,
                reference=reference,
            )
        )
    if totals.payout > 0:
        payout_transfer_id = leg_id(tenant_id, day, "payout")
        transfers.append(
            TransferSpec(
                payout_transfer_id,
                payable.id,
                target.id,
                totals.payout,
                rules.PAYOUT_CODE,
                kind=PENDING,
                currency=currency,
                tenant_id=tenant_id,
                reference=reference,
            )
        )
    await ledger.create_transfers(conn, transfers)
    row = await repository.update_statement(
        conn,
        tenant_id,
        statement_id,
        {
            "gross": lines.gross,
            "refunds": lines.refunds,
            "coupons": lines.coupons,
            "other": lines.other,
            "returned": lines.returned,
            "fee": totals.fee,
            "payout": totals.payout,
            "carried_out": totals.carried_out,
            "transfer_count": sum(count for _, count in collected.values()),
            "fee_transfer_id": fee_transfer_id,
            "payout_transfer_id": payout_transfer_id,
            "payout_account": f"{target.kind}:{target.owner}" if payout_transfer_id else None,
            "payout_status": rules.PAYOUT_PENDING if totals.payout > 0 else rules.PAYOUT_NONE,
        },
    )
    return SettleResult(row, CREATED)


async def _statement_with_payout(conn: Any, tenant_id: uuid.UUID | None, statement_id: uuid.UUID) -> Row:
    row = await repository.statement(conn, tenant_id, statement_id)
    if row is None:
        raise NotFound(f"no settlement statement with id {statement_id}", code="STATEMENT_NOT_FOUND", field="id")
    if row["payout_status"] == rules.PAYOUT_NONE:
        raise Conflict("this statement has no payout (its net was not positive)", code="NO_PAYOUT", field="id")
    return row


async def confirm_payout(
    session: AsyncSession, statement_id: uuid.UUID, *, reference: str | None = None, tenant_id: uuid.UUID | None = None
) -> Row:
    """The payout arrived (the bank's confirmation, or in provider_direct the provider's settlement record): post
    the pending. Confirming again is a no-op; confirming a failed payout is a Conflict."""
    conn = await driver_of(session)
    row = await _statement_with_payout(conn, tenant_id, statement_id)
    if row["payout_status"] == rules.PAYOUT_CONFIRMED:
        return row
    if row["payout_status"] == rules.PAYOUT_FAILED:
        raise Conflict("this payout failed: its money returns on the next statement", code="PAYOUT_FAILED", field="id")
    tenant, day = row["tenant_id"], row["business_date"]
    await ledger.create_transfers(
        conn,
        [
            TransferSpec(
                leg_id(tenant, day, "payout_confirmed"),
                None,
                None,
                int(row["payout"]),
                rules.PAYOUT_CONFIRMED_CODE,
                kind=POST_PENDING,
                pending_id=row["payout_transfer_id"],
                currency=row["currency"],
                reference={"settlement": day.isoformat()},
            )
        ],
    )
    return await repository.update_statement(
        conn,
        tenant,
        statement_id,
        {"payout_status": rules.PAYOUT_CONFIRMED, "payout_reference": reference, "payout_resolved_at": _now()},
    )


async def fail_payout(
    session: AsyncSession, statement_id: uuid.UUID, *, reason: str | None = None, tenant_id: uuid.UUID | None = None
) -> Row:
    """The payout bounced: void the pending. The money is back in the payable; the void's transfer is collected by
    the next run (`returned` line). Failing again is a no-op; failing a confirmed payout is a Conflict."""
    conn = await driver_of(session)
    row = await _statement_with_payout(conn, tenant_id, statement_id)
    if row["payout_status"] == rules.PAYOUT_FAILED:
        return row
    if row["payout_status"] == rules.PAYOUT_CONFIRMED:
        raise Conflict("this payout was confirmed", code="PAYOUT_CONFIRMED", field="id")
    tenant, day = row["tenant_id"], row["business_date"]
    await ledger.create_transfers(
        conn,
        [
            TransferSpec(
                leg_id(tenant, day, "payout_failed"),
                None,
                None,
                0,
                rules.PAYOUT_FAILED_CODE,
                kind=VOID_PENDING,
                pending_id=row["payout_transfer_id"],
                currency=row["currency"],
                reference={"settlement": day.isoformat()},
            )
        ],
    )
    return await repository.update_statement(
        conn,
        tenant,
        statement_id,
        {"payout_status": rules.PAYOUT_FAILED, "payout_reference": reason, "payout_resolved_at": _now()},
    )


MAX_PAYOUT_NOTE = 200


def _payout_note(text: str | None, field: str, *, required: bool) -> str | None:
    text = (text or "").strip()
    if (required and not text) or len(text) > MAX_PAYOUT_NOTE:
        need = "1" if required else "0"
        raise InvalidInput(f"{field}: {need} to {MAX_PAYOUT_NOTE} characters", code="INVALID_INPUT", field=field)
    return text or None


def _require_platform(principal: Principal) -> None:
    # Operators see their payouts but never vouch for them: the money's arrival is the platform's bank's word.
    if principal.kind != "platform":
        raise Forbidden("only the platform admin confirms or fails payouts", code="FORBIDDEN", required_role="platform")


async def confirm_payout_as(
    session: AsyncSession, principal: Principal, statement_id: uuid.UUID, reference: str | None
) -> Row:
    """The platform admin records that a payout arrived, with the bank's or provider's reference."""
    _require_platform(principal)
    return await confirm_payout(session, statement_id, reference=_payout_note(reference, "reference", required=False))


async def fail_payout_as(session: AsyncSession, principal: Principal, statement_id: uuid.UUID, reason: str) -> Row:
    """The platform admin records that a payout bounced, and why; its money returns on the next statement."""
    _require_platform(principal)
    return await fail_payout(session, statement_id, reason=_payout_note(reason, "reason", required=True))


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------------- reads


async def find_statement(session: AsyncSession, tenant_id: uuid.UUID | None, statement_id: uuid.UUID) -> Row | None:
    """One statement, of `tenant_id` (None: any tenant the scope sees), or None."""
    return await repository.statement(await driver_of(session), tenant_id, statement_id)


async def statement(session: AsyncSession, tenant_id: uuid.UUID | None, statement_id: uuid.UUID) -> Row:
    row = await repository.statement(await driver_of(session), tenant_id, statement_id)
    if row is None:
        raise NotFound(f"no settlement statement with id {statement_id}", code="STATEMENT_NOT_FOUND", field="id")
    return row


async def statements(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    since: date | None = None,
    until: date | None = None,
    after: date | None = None,
    limit: int = 50,
) -> list[Row]:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", code="INVALID_INPUT", field="first")
    return await repository.statements(await driver_of(session), tenant_id, since, until, after, limit)


async def statement_transfers(
    session: AsyncSession, tenant_id: uuid.UUID, statement_id: uuid.UUID, *, after_seq: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", code="INVALID_INPUT", field="first")
    rows = await repository.statement_transfers(await driver_of(session), tenant_id, statement_id, after_seq, limit)
    return [{**dict(row), "reference": orjson.loads(row["reference"])} for row in rows]


async def verify_statement(session: AsyncSession, tenant_id: uuid.UUID, statement_id: uuid.UUID) -> list[str]:
    """Problems found when the statement's listed transfers are added up again and compared with its figures and
    the ledger's own fee and payout transfers (empty: it reconciles to the fen)."""
    conn = await driver_of(session)
    row = await statement(session, tenant_id, statement_id)
    problems: list[str] = []
    sums = {
        line["line"]: (int(line["amount"]), int(line["transfers"]))
        for line in await repository.statement_lines(conn, tenant_id, statement_id)
    }
    for line in rules.LINES:
        if sums.get(line, (0, 0))[0] != int(row[line]):
            problems.append(f"{line}: statement says {row[line]}, its transfers add up to {sums.get(line, (0, 0))[0]}")
    if sum(count for _, count in sums.values()) != row["transfer_count"]:
        problems.append("transfer_count differs from the transfers listed")
    legs = {
        t["id"]: t
        for t in await ledger.transfers(
            conn, [value for value in (row["fee_transfer_id"], row["payout_transfer_id"]) if value is not None]
        )
    }
    fee_leg = legs.get(row["fee_transfer_id"]) if row["fee_transfer_id"] else None
    if abs(int(row["fee"])) != (int(fee_leg["amount"]) if fee_leg else 0):
        problems.append(f"fee {row['fee']} but the ledger's fee transfer moved {fee_leg['amount'] if fee_leg else 0}")
    payout_leg = legs.get(row["payout_transfer_id"]) if row["payout_transfer_id"] else None
    if int(row["payout"]) != (int(payout_leg["amount"]) if payout_leg else 0):
        problems.append(
            f"payout {row['payout']} but the ledger's payout moved {payout_leg['amount'] if payout_leg else 0}"
        )
    return problems


async def unsettled(session: AsyncSession, tenant_id: uuid.UUID, currency: str = "CNY") -> tuple[int, int]:
    """What moved the tenant's payable and is in no statement yet: (signed amount, transfers)."""
    payable = account_spec("tenant_payable", tenant_id, currency)
    return await repository.unsettled_total(await driver_of(session), tenant_id, payable.id)


# ------------------------------------------------------------------------------------------ who may read what


def reader_tenant(principal: Principal, operator_id: uuid.UUID | None = None) -> uuid.UUID:
    """The tenant whose settlement `principal` reads: an operator's own (naming another is Forbidden), or for the
    platform admin the operator it names."""
    if principal.kind == "operator" and principal.tenant_id is not None:
        if operator_id is not None and operator_id != principal.tenant_id:
            raise Forbidden("an operator reads only its own settlement", code="FORBIDDEN", field="operatorId")
        return principal.tenant_id
    if principal.kind == "platform":
        if operator_id is None:
            raise InvalidInput("name the operator (operatorId)", code="INVALID_INPUT", field="operatorId")
        return operator_id
    raise Forbidden("settlement is read by the operator's staff and the platform admin", code="FORBIDDEN")


def node_tenant(principal: Principal) -> uuid.UUID | None:
    """For reading one statement by id: the operator's tenant, or None (every tenant) for the platform admin;
    anyone else reads nothing (Forbidden)."""
    if principal.kind == "operator" and principal.tenant_id is not None:
        return principal.tenant_id
    if principal.kind == "platform":
        return None
    raise Forbidden("settlement is read by the operator's staff and the platform admin", code="FORBIDDEN")


async def statement_transfer_pages(
    session: AsyncSession, tenant_id: uuid.UUID | None, pages: list[tuple[uuid.UUID, int, int]]
) -> list[list[dict[str, Any]]]:
    """Several statements' transfer pages in one query (a GraphQL list of statements with their transfers): one
    list per (statement id, after seq, size) asked, in order."""
    for _, _, size in pages:
        if not 1 <= size <= MAX_PAGE:
            raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", code="INVALID_INPUT", field="first")
    rows = await repository.statement_transfer_pages(await driver_of(session), tenant_id, pages)
    found: list[list[dict[str, Any]]] = [[] for _ in pages]
    for row in rows:
        found[row["page"] - 1].append({**dict(row), "reference": orjson.loads(row["reference"])})
    return found


# ------------------------------------------------------------------------------------------------ revenue

REVENUE_GROUPS = ("facility", "channel")
MAX_REVENUE_PERIOD = timedelta(days=366)


def _period(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("since and until need a time zone", code="INVALID_INPUT", field="since")
    if until <= since:
        raise InvalidInput("until must be after since", code="INVALID_PERIOD", field="until")
    if until - since > MAX_REVENUE_PERIOD:
        raise InvalidInput("a revenue period is at most 366 days", code="INVALID_PERIOD", field="until")


async def revenue(
    session: AsyncSession, principal: Principal, since: datetime, until: datetime, group_by: str
) -> list[Row]:
    """An operator's revenue in [since, until) by facility or by channel (provider/method/purpose of the payment;
    `merchant_coupon` for coupon funding; `unattributed` when a transfer names no payment): gross, refunds, coupons
    and the number of payments. Read from the ledger's posted movements of the operator's payable; facility and
    channel come from the payments row each transfer's reference names."""
    if group_by not in REVENUE_GROUPS:
        raise InvalidInput(f"groupBy must be one of {', '.join(REVENUE_GROUPS)}", code="INVALID_INPUT", field="groupBy")
    _period(since, until)
    tenant_id = reader_tenant(principal)
    conn = await driver_of(session)
    currency = (await repository.tenant_terms(conn, tenant_id) or {}).get("currency", "CNY")
    payable = account_spec("tenant_payable", tenant_id, currency)
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    return await repository.revenue(conn, tenant_id, payable.id, since, until, group_by)


async def city_revenue(session: AsyncSession, principal: Principal, since: datetime, until: datetime) -> list[Row]:
    """Revenue and collection across every operator in [since, until) (the city and the platform admin): per tenant
    gross, refunds, coupons, open arrears and the collection rate (rules.collection_rate_bps)."""
    if principal.kind not in ("city", "platform"):
        raise Forbidden("city revenue is read by the city and the platform admin", code="FORBIDDEN")
    _period(since, until)
    rows = await repository.city_revenue(await driver_of(session), since, until)
    return [
        {**dict(row), "collection_rate_bps": rules.collection_rate_bps(int(row["gross"]), int(row["open_arrears"]))}
        for row in rows
    ]
