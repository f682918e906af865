"""GraphQL types of payments: a payment with its receipt lines and refunds (amounts in integer fen)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from hub.payments import repository
from schema.context import Info
from schema.relay import row_ids


@strawberry.enum(description="Where a payment stands")
class PaymentState(enum.Enum):
    CREATED = "created"
    REQUESTED = "requested"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"


@strawberry.type(description="A refund of part or all of a payment")
class PaymentRefund:
    id: strawberry.ID
    amount_fen: int
    reason: str
    state: str
    created_at: datetime
    settled_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PaymentRefund:
        return cls(
            id=strawberry.ID(str(relay.GlobalID("PaymentRefund", str(row["id"])))),
            amount_fen=row["amount_fen"],
            reason=row["reason"],
            state=row["state"],
            created_at=row["created_at"],
            settled_at=row["settled_at"],
        )


@strawberry.type(description="A driver's payment to an operator; succeeded payments are the driver's receipts")
class Payment(relay.Node):
    id: relay.NodeID[str]
    purpose: str = strawberry.field(description="lot_session, street_session, arrears or pass")
    method: str = strawberry.field(description="charge (paid in the app) or deduct (auto-pay after leaving)")
    state: PaymentState
    amount_fen: int
    refunded_fen: int
    arrears_fen: int = strawberry.field(description="What a failed auto-pay deduction leaves owed (0 once paid)")
    currency: str
    plate: str | None
    provider: str
    period_start: datetime | None = strawberry.field(description="The stay paid for: from")
    period_end: datetime | None = strawberry.field(description="The stay paid for: until")
    created_at: datetime
    settled_at: datetime | None
    facility_id: strawberry.ID | None
    tenant_id: strawberry.Private[uuid.UUID]
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Payment:
        return cls(
            id=str(row["id"]),
            purpose=row["purpose"],
            method=row["method"],
            state=PaymentState(row["state"]),
            amount_fen=row["amount_fen"],
            refunded_fen=row["refunded_fen"],
            arrears_fen=row["arrears_fen"],
            currency=row["currency"],
            plate=row["plate"],
            provider=row["provider"],
            period_start=row["period_start"],
            period_end=row["period_end"],
            created_at=row["created_at"],
            settled_at=row["settled_at"],
            facility_id=None
            if row["facility_id"] is None
            else strawberry.ID(str(relay.GlobalID("Facility", str(row["facility_id"])))),
            tenant_id=row["tenant_id"],
            row_id=row["id"],
        )

    @strawberry.field(description="The payment's refunds, oldest first")
    async def refunds(self, info: Info) -> list[PaymentRefund]:
        async with info.context.read() as session:
            rows = await repository.refunds_of(session, [self.row_id])
        return [PaymentRefund.from_row(row) for row in rows]

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Payment | None]:
        principal = info.context.principal
        tenant = principal.tenant_id if principal.kind in ("operator", "connector") else None
        found: list[Payment | None] = []
        async with info.context.read() as session:
            for row_id in row_ids(node_ids):
                row = None if row_id is None else await repository.payment(session, tenant, row_id)
                if row is not None and principal.kind == "driver" and row["driver_id"] != principal.user_id:
                    row = None
                found.append(None if row is None else cls.from_row(row))
        return found


@strawberry.enum(description="When an operator's barriers open for auto-pay exits")
class AutoPayOpensOn(enum.Enum):
    ACCEPTED = "accepted"
    SUCCEEDED = "succeeded"


@strawberry.enum(description="Where an e-invoice request stands (issuing is a later integration)")
class InvoiceRequestState(enum.Enum):
    REQUESTED = "requested"
    ISSUED = "issued"
    REJECTED = "rejected"


@strawberry.type(description="A driver's request for an e-invoice of a payment")
class InvoiceRequest(relay.Node):
    id: relay.NodeID[str]
    payment_id: strawberry.ID
    title: str
    tax_id: str | None
    email: str
    amount_fen: int = strawberry.field(description="The payment's amount less its refunds when asked")
    state: InvoiceRequestState
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> InvoiceRequest:
        return cls(
            id=str(row["id"]),
            payment_id=strawberry.ID(str(relay.GlobalID("Payment", str(row["payment_id"])))),
            title=row["title"],
            tax_id=row["tax_id"],
            email=row["email"],
            amount_fen=row["amount_fen"],
            state=InvoiceRequestState(row["state"]),
            created_at=row["created_at"],
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[InvoiceRequest | None]:
        principal = info.context.principal
        found: list[InvoiceRequest | None] = []
        async with info.context.read() as session:
            for row_id in row_ids(node_ids):
                row = None if row_id is None else await repository.invoice_request(session, row_id)
                visible = row is not None and (
                    (principal.kind == "driver" and row["driver_id"] == principal.user_id)
                    or (principal.kind in ("operator", "connector") and row["tenant_id"] == principal.tenant_id)
                    or principal.kind in ("city", "platform")
                )
                found.append(cls.from_row(row) if visible and row is not None else None)
        return found
