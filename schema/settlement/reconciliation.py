"""Reconciliation items over GraphQL: the platform admin reads every item, an operator its tenant's; either
resolves one with a note (operators: admins). Resolvers are thin: hub.settlement.reconciliation does the work."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import strawberry
from strawberry import relay

from hub.settlement import reconciliation
from schema.context import Info
from schema.relay import check_first, connection, decode_time_cursor, row_ids, uuid_of


@strawberry.enum(description="What differs between the provider's bill and the ledger")
class ReconciliationProblem(enum.Enum):
    MISSING_IN_LEDGER = "missing_in_ledger"
    MISSING_AT_PROVIDER = "missing_at_provider"
    AMOUNT_DIFFERS = "amount_differs"


@strawberry.type(description="A difference between a provider's daily bill and the ledger, moved to suspense")
class ReconciliationItem(relay.Node):
    id: relay.NodeID[str]
    provider: str
    business_date: date
    kind: str = strawberry.field(description="payment or refund")
    out_trade_no: str = strawberry.field(description="The provider's merchant order number (the payment id's hex)")
    payment_id: strawberry.ID | None
    operator_id: strawberry.ID | None = strawberry.field(description="null: no known payment (the platform's)")
    problem: ReconciliationProblem
    provider_fen: int = strawberry.field(description="What the provider's bill says")
    ledger_fen: int = strawberry.field(description="What the ledger booked that day")
    currency: str
    provider_references: str | None
    suspense_account: str = strawberry.field(description="tenant_suspense:<tenant> or platform_suspense")
    suspense_transfer_id: strawberry.ID
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ReconciliationItem:
        return cls(
            id=str(row["id"]),
            provider=row["provider"],
            business_date=row["business_date"],
            kind=row["kind"],
            out_trade_no=row["out_trade_no"],
            payment_id=_gid("Payment", row["payment_id"]),
            operator_id=_gid("Operator", row["tenant_id"]),
            problem=ReconciliationProblem(row["problem"]),
            provider_fen=row["provider_fen"],
            ledger_fen=row["ledger_fen"],
            currency=row["currency"],
            provider_references=row["provider_references"],
            suspense_account=row["suspense_account"],
            suspense_transfer_id=strawberry.ID(str(row["suspense_transfer_id"])),
            created_at=row["created_at"],
            resolved_at=row["resolved_at"],
            resolved_by=row["resolved_by"],
            resolution_note=row["resolution_note"],
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ReconciliationItem | None]:
        if info.context.principal.kind not in ("platform", "operator"):
            return [None for _ in node_ids]
        found: list[ReconciliationItem | None] = []
        async with info.context.read() as session:
            for row_id in row_ids(node_ids):
                row = None if row_id is None else await reconciliation.item(session, info.context.principal, row_id)
                found.append(None if row is None else cls.from_row(row))
        return found


def _gid(type_name: str, value: uuid.UUID | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(relay.GlobalID(type_name, str(value))))


@strawberry.type
class ReconciliationQuery:
    @strawberry.field(
        description="Reconciliation items, newest first, business dates in [since, until): every item for the "
        "platform admin, the operator's own for its staff."
    )
    async def reconciliation_items(
        self,
        info: Info,
        provider: str | None = None,
        since: date | None = None,
        until: date | None = None,
        unresolved_only: bool = False,
        first: int | None = 20,
        after: str | None = None,
    ) -> relay.Connection[ReconciliationItem]:
        page_size = check_first(first)
        async with info.context.read() as session:
            rows = await reconciliation.items(
                session,
                info.context.principal,
                provider=provider,
                since=since,
                until=until,
                unresolved_only=unresolved_only,
                after=decode_time_cursor(after),
                limit=page_size + 1,
            )
        return connection(rows, page_size, after is not None, ReconciliationItem.from_row, "created_at")


@strawberry.type
class ReconciliationMutation:
    @strawberry.mutation(
        description="Resolve a reconciliation item with a note (the platform admin; operator admins: their own). "
        "The money stays in suspense until a correction transfer moves it."
    )
    async def resolve_reconciliation_item(self, info: Info, id: relay.GlobalID, note: str) -> ReconciliationItem:
        item_id = uuid_of(id, "ReconciliationItem")
        async with info.context.write() as session:
            row = await reconciliation.resolve(session, info.context.principal, item_id, note)
        return ReconciliationItem.from_row(row)
