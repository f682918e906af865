"""GraphQL types of settlement: statements with their lines, payout and the ledger transfers they include (paged,
one query per request for a whole list of statements), revenue rows, and the city's view across operators.
Amounts in integer fen."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader

from hub.errors import InvalidInput
from hub.settlement import rules, service
from schema.context import Context, Info
from schema.relay import check_first, row_ids
from schema.tenants.types import Operator

MAX_TRANSFERS_PAGE = 100


def _gid(type_name: str, value: uuid.UUID | str | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(relay.GlobalID(type_name, str(value))))


@strawberry.enum(description="Where a statement's payout stands")
class PayoutState(enum.Enum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"


@strawberry.enum(description="A statement line")
class StatementLineKind(enum.Enum):
    GROSS = "gross"
    REFUNDS = "refunds"
    COUPONS = "coupons"
    OTHER = "other"
    RETURNED = "returned"


@strawberry.enum(description="How revenue is grouped")
class RevenueGroup(enum.Enum):
    FACILITY = "facility"
    CHANNEL = "channel"


@strawberry.type(description="A statement's payout: reserved in the ledger when settled, posted or voided later")
class SettlementPayout:
    state: PayoutState
    amount_fen: int
    account: str | None = strawberry.field(description="Where it goes: tenant_payout_in_transit or provider_settled")
    transfer_id: strawberry.ID = strawberry.field(description="The ledger's pending transfer of the payout")
    reference: str | None = strawberry.field(description="The bank's or provider's reference, or why it failed")
    resolved_at: datetime | None


@strawberry.type(description="One line of a statement: what its transfers add up to")
class StatementLine:
    line: StatementLineKind
    amount_fen: int = strawberry.field(description="Refunds positive (they are subtracted); other signed")


@strawberry.type(description="A ledger transfer a statement includes")
class StatementTransfer:
    transfer_id: strawberry.ID
    seq: int
    line: StatementLineKind
    code: str
    kind: str
    amount_fen: int = strawberry.field(description="Its effect on the line (signed on the other line)")
    created_at: datetime
    payment_id: strawberry.ID | None = strawberry.field(description="The payment it is about, when it names one")

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StatementTransfer:
        payment = row["reference"].get("payment_id") if isinstance(row["reference"], dict) else None
        return cls(
            transfer_id=strawberry.ID(str(row["transfer_id"])),
            seq=row["seq"],
            line=StatementLineKind(row["line"]),
            code=row["code"],
            kind=row["kind"],
            amount_fen=row["amount"],
            created_at=row["created_at"],
            payment_id=_gid("Payment", payment),
        )


@strawberry.type(description="A page of a statement's transfers, by ledger order")
class StatementTransferPage:
    items: list[StatementTransfer]
    has_next_page: bool
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page")


PageKey = tuple[uuid.UUID | None, uuid.UUID, int, int]  # (tenant scope, statement, after seq, size + 1)


def transfer_pages(context: Context) -> DataLoader[PageKey, list[dict[str, Any]]]:
    """The request's loader of statements' transfer pages: all pages asked in one tick, one query."""

    async def load(keys: list[PageKey]) -> list[list[dict[str, Any]]]:
        tenant = keys[0][0]
        async with context.read() as session:
            return await service.statement_transfer_pages(
                session, tenant, [(statement, after, size) for _, statement, after, size in keys]
            )

    return DataLoader(load_fn=load)


@strawberry.type(description="An operator's settlement of one business day (T+1): lines, fee, payout, carry")
class SettlementStatement(relay.Node):
    id: relay.NodeID[str]
    business_date: date
    time_zone: str
    period_start: datetime
    period_end: datetime
    mode: str = strawberry.field(description="hub_collects or provider_direct")
    currency: str
    carried_in_fen: int = strawberry.field(description="A negative net carried over from the previous statement")
    gross_fen: int
    refunds_fen: int
    coupons_fen: int
    other_fen: int
    returned_fen: int = strawberry.field(description="Failed payouts back in the payable")
    fee_bps: int
    fee_fen: int
    payout_fen: int
    carried_out_fen: int = strawberry.field(description="A negative net carried to the next statement")
    transfer_count: int
    created_at: datetime
    operator_id: strawberry.ID
    payout: SettlementPayout | None
    tenant_id: strawberry.Private[uuid.UUID]
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SettlementStatement:
        payout = None
        if row["payout_status"] != rules.PAYOUT_NONE:
            payout = SettlementPayout(
                state=PayoutState(row["payout_status"]),
                amount_fen=row["payout"],
                account=row["payout_account"],
                transfer_id=strawberry.ID(str(row["payout_transfer_id"])),
                reference=row["payout_reference"],
                resolved_at=row["payout_resolved_at"],
            )
        return cls(
            id=str(row["id"]),
            business_date=row["business_date"],
            time_zone=row["time_zone"],
            period_start=row["period_start"],
            period_end=row["period_end"],
            mode=row["mode"],
            currency=row["currency"],
            carried_in_fen=row["carried_in"],
            gross_fen=row["gross"],
            refunds_fen=row["refunds"],
            coupons_fen=row["coupons"],
            other_fen=row["other"],
            returned_fen=row["returned"],
            fee_bps=row["fee_bps"],
            fee_fen=row["fee"],
            payout_fen=row["payout"],
            carried_out_fen=row["carried_out"],
            transfer_count=row["transfer_count"],
            created_at=row["created_at"],
            operator_id=strawberry.ID(str(relay.GlobalID("Operator", str(row["tenant_id"])))),
            payout=payout,
            tenant_id=row["tenant_id"],
            row_id=row["id"],
        )

    @strawberry.field(description="The statement's lines, in order; they add up to payout + carried out")
    def lines(self) -> list[StatementLine]:
        amounts = {
            "gross": self.gross_fen,
            "refunds": self.refunds_fen,
            "coupons": self.coupons_fen,
            "other": self.other_fen,
            "returned": self.returned_fen,
        }
        return [StatementLine(line=StatementLineKind(line), amount_fen=amounts[line]) for line in rules.LINES]

    @strawberry.field(description="The ledger transfers the statement includes, in ledger order (paged)")
    async def transfers(self, info: Info, first: int | None = 50, after: str | None = None) -> StatementTransferPage:
        size = check_first(first, default=50)
        after_seq = _seq_cursor(after)
        loader = info.context.loaders.of("settlement_transfer_pages", transfer_pages)
        rows = await loader.load((self.tenant_id, self.row_id, after_seq, size + 1))
        items = [StatementTransfer.from_row(row) for row in rows[:size]]
        return StatementTransferPage(
            items=items,
            has_next_page=len(rows) > size,
            end_cursor=str(items[-1].seq) if items else None,
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[SettlementStatement | None]:
        principal = info.context.principal
        if principal.kind not in ("operator", "platform"):
            return [None for _ in node_ids]
        tenant = service.node_tenant(principal)
        found: list[SettlementStatement | None] = []
        async with info.context.read() as session:
            for row_id in row_ids(node_ids):
                row = None if row_id is None else await service.find_statement(session, tenant, row_id)
                found.append(None if row is None else cls.from_row(row))
        return found


def _seq_cursor(after: str | None) -> int:
    if after is None:
        return 0
    try:
        value = int(after)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidInput("after: not a cursor returned by this API", code="INVALID_CURSOR", field="after")
    return value


@strawberry.type(description="An operator's revenue of one facility or channel over a period")
class RevenueRow:
    facility_id: strawberry.ID | None = strawberry.field(description="By facility: which (null: not attributed)")
    channel: str | None = strawberry.field(
        description="By channel: provider/method/purpose of the payments, merchant_coupon, or unattributed"
    )
    gross_fen: int
    refunds_fen: int
    coupons_fen: int = strawberry.field(description="Merchants' coupon funds paying the operator")
    net_fen: int = strawberry.field(description="gross - refunds + coupons (before the platform fee)")
    payments: int = strawberry.field(description="Distinct payments behind the row")

    @classmethod
    def from_row(cls, row: Mapping[str, Any], group: RevenueGroup) -> RevenueRow:
        key = row["key"]
        return cls(
            facility_id=_gid("Facility", key) if group is RevenueGroup.FACILITY else None,
            channel=key if group is RevenueGroup.CHANNEL else None,
            gross_fen=row["gross"],
            refunds_fen=row["refunds"],
            coupons_fen=row["coupons"],
            net_fen=row["gross"] - row["refunds"] + row["coupons"],
            payments=row["payments"],
        )


@strawberry.type(description="One operator's revenue and collection over a period (the city's view)")
class OperatorRevenue:
    operator_id: strawberry.ID
    gross_fen: int = strawberry.field(description="Collected: drivers' payments captured in the period")
    refunds_fen: int
    coupons_fen: int
    net_fen: int
    open_arrears_fen: int = strawberry.field(description="Failed auto-pay deductions of the period still owed")
    open_arrears: int
    collection_rate_bps: int | None = strawberry.field(
        description="collected / (collected + open arrears), in basis points rounded half up (null: nothing due)"
    )
    tenant_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The operator")
    async def operator(self, info: Info) -> Operator | None:
        return await info.context.loaders.operator.load(self.tenant_id)


@strawberry.type(description="Revenue and collection across every operator over a period")
class CityRevenue:
    since: datetime
    until: datetime
    gross_fen: int
    refunds_fen: int
    coupons_fen: int
    net_fen: int
    open_arrears_fen: int
    collection_rate_bps: int | None
    operators: list[OperatorRevenue]

    @classmethod
    def from_rows(cls, rows: list[Mapping[str, Any]], since: datetime, until: datetime) -> CityRevenue:
        operators = [
            OperatorRevenue(
                operator_id=strawberry.ID(str(relay.GlobalID("Operator", str(row["tenant_id"])))),
                gross_fen=row["gross"],
                refunds_fen=row["refunds"],
                coupons_fen=row["coupons"],
                net_fen=row["gross"] - row["refunds"] + row["coupons"],
                open_arrears_fen=row["open_arrears"],
                open_arrears=row["open_count"],
                collection_rate_bps=row["collection_rate_bps"],
                tenant_id=row["tenant_id"],
            )
            for row in rows
        ]
        gross = sum(o.gross_fen for o in operators)
        arrears = sum(o.open_arrears_fen for o in operators)
        return cls(
            since=since,
            until=until,
            gross_fen=gross,
            refunds_fen=sum(o.refunds_fen for o in operators),
            coupons_fen=sum(o.coupons_fen for o in operators),
            net_fen=sum(o.net_fen for o in operators),
            open_arrears_fen=arrears,
            collection_rate_bps=rules.collection_rate_bps(gross, arrears),
            operators=operators,
        )
