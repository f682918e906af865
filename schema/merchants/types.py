"""GraphQL types of merchant codes: merchants, their keys and coupon books (with the fund's balance from the
ledger), codes and redemptions. Amounts in integer fen."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from hub.merchants import service
from schema.context import Info
from schema.relay import row_ids


def _gid(type_name: str, value: uuid.UUID | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(relay.GlobalID(type_name, str(value))))


@strawberry.enum(description="What a coupon takes off a stay")
class CouponKind(enum.Enum):
    MINUTES = "minutes"
    AMOUNT = "amount"
    WAIVER = "waiver"


@strawberry.enum(description="What a code does")
class MerchantCodeKind(enum.Enum):
    MERCHANT = "merchant"
    MEETING = "meeting"
    VIP = "vip"
    PREPAY = "prepay"


@strawberry.enum(description="Where a redeemed coupon stands")
class CouponRedemptionState(enum.Enum):
    RESERVED = "reserved"
    APPLIED = "applied"
    RELEASED = "released"


@strawberry.type(description="A merchant's coupon fund in the ledger")
class CouponFund:
    currency: str
    balance_fen: int = strawberry.field(description="Paid in, less what coupons paid the operator")
    reserved_fen: int = strawberry.field(description="Held for coupons bound to sessions still open")
    available_fen: int = strawberry.field(description="What new coupons may still reserve")


async def _fund(info: Info, tenant_id: uuid.UUID, merchant_id: uuid.UUID, currency: str) -> CouponFund:
    async with info.context.read() as session:
        found = await service.fund_balances(session, tenant_id, [(merchant_id, currency)])
    balance = found.get((merchant_id, currency))
    if balance is None:
        return CouponFund(currency=currency, balance_fen=0, reserved_fen=0, available_fen=0)
    return CouponFund(
        currency=currency,
        balance_fen=balance.posted,
        reserved_fen=-balance.pending,
        available_fen=balance.available,
    )


@strawberry.type(description="A shop or venue giving coupons to its customers' stays at the operator's lots")
class Merchant(relay.Node):
    id: relay.NodeID[str]
    name: str
    contact: str | None
    created_at: datetime
    retired_at: datetime | None
    tenant_id: strawberry.Private[uuid.UUID]
    row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Merchant:
        return cls(
            id=str(row["id"]),
            name=row["name"],
            contact=row["contact"],
            created_at=row["created_at"],
            retired_at=row["retired_at"],
            tenant_id=row["tenant_id"],
            row_id=row["id"],
        )

    @strawberry.field(description="The merchant's coupon fund (in the operator's currency)")
    async def fund(self, info: Info) -> CouponFund:
        async with info.context.read() as session:
            currency = await service.tenant_currency(session, self.tenant_id)
        return await _fund(info, self.tenant_id, self.row_id, currency)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Merchant | None]:
        principal = info.context.principal
        found: list[Merchant | None] = []
        async with info.context.read() as session:
            for row_id in row_ids(node_ids):
                row = None
                if row_id is not None and principal.kind == "operator" and principal.tenant_id is not None:
                    row = await service.merchant(session, principal.tenant_id, row_id)
                found.append(None if row is None else cls.from_row(row))
        return found


@strawberry.type(description="A merchant's API key (its text is shown only when issued)")
class MerchantKey:
    id: strawberry.ID
    merchant_id: strawberry.ID
    label: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MerchantKey:
        return cls(
            id=strawberry.ID(str(relay.GlobalID("MerchantKey", str(row["id"])))),
            merchant_id=strawberry.ID(str(relay.GlobalID("Merchant", str(row["merchant_id"])))),
            label=row["label"],
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
        )


@strawberry.type(description="A new merchant key: send `key` as the X-Merchant-Key header; it is not shown again")
class IssuedMerchantKey:
    key: str
    merchant_key: MerchantKey


@strawberry.type(description="A book of coupons a merchant bought, funded into its coupon fund")
class CouponBook:
    id: strawberry.ID
    merchant_id: strawberry.ID
    kind: CouponKind
    minutes: int | None
    amount_fen: int | None
    waiver_limit_fen: int | None
    count: int
    allocated: int = strawberry.field(description="Coupons given to plates or held by codes")
    unit_price_fen: int
    funded_fen: int
    currency: str
    note: str | None
    created_at: datetime
    tenant_id: strawberry.Private[uuid.UUID]
    merchant_row_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CouponBook:
        return cls(
            id=strawberry.ID(str(relay.GlobalID("CouponBook", str(row["id"])))),
            merchant_id=strawberry.ID(str(relay.GlobalID("Merchant", str(row["merchant_id"])))),
            kind=CouponKind(row["kind"]),
            minutes=row["minutes"],
            amount_fen=row["amount_fen"],
            waiver_limit_fen=row["waiver_limit_fen"],
            count=row["count"],
            allocated=row["allocated"],
            unit_price_fen=row["unit_price_fen"],
            funded_fen=row["funded_fen"],
            currency=row["currency"],
            note=row["note"],
            created_at=row["created_at"],
            tenant_id=row["tenant_id"],
            merchant_row_id=row["merchant_id"],
        )

    @strawberry.field(description="The merchant's coupon fund, which this book paid into")
    async def fund(self, info: Info) -> CouponFund:
        return await _fund(info, self.tenant_id, self.merchant_row_id, self.currency)


@strawberry.type(description="A code drawing coupons from a merchant's book")
class MerchantCode:
    id: strawberry.ID
    merchant_id: strawberry.ID
    book_id: strawberry.ID
    kind: MerchantCodeKind
    plate: str | None
    label: str | None
    limit: int
    used: int
    valid_from: datetime
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MerchantCode:
        return cls(
            id=strawberry.ID(str(relay.GlobalID("MerchantCode", str(row["id"])))),
            merchant_id=strawberry.ID(str(relay.GlobalID("Merchant", str(row["merchant_id"])))),
            book_id=strawberry.ID(str(relay.GlobalID("CouponBook", str(row["book_id"])))),
            kind=MerchantCodeKind(row["kind"]),
            plate=row["plate"],
            label=row["label"],
            limit=row["use_limit"],
            used=row["used"],
            valid_from=row["valid_from"],
            expires_at=row["expires_at"],
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
        )


@strawberry.type(description="A new code: `code` is what drivers scan (a QR code of it); it is not shown again")
class IssuedMerchantCode:
    code: str
    merchant_code: MerchantCode


@strawberry.type(description="One coupon bound to one lot session")
class CouponRedemption:
    id: strawberry.ID
    merchant_id: strawberry.ID
    code_id: strawberry.ID
    session_id: strawberry.ID
    facility_id: strawberry.ID
    plate: str | None
    kind: CouponKind
    minutes: int | None
    amount_fen: int | None
    reserved_fen: int = strawberry.field(description="Held in the merchant's fund: the most this coupon covers")
    value_fen: int | None = strawberry.field(description="What the coupon took off the stay (once it ended)")
    state: CouponRedemptionState
    redeemed_at: datetime
    settled_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CouponRedemption:
        return cls(
            id=strawberry.ID(str(relay.GlobalID("CouponRedemption", str(row["id"])))),
            merchant_id=strawberry.ID(str(relay.GlobalID("Merchant", str(row["merchant_id"])))),
            code_id=strawberry.ID(str(relay.GlobalID("MerchantCode", str(row["code_id"])))),
            session_id=strawberry.ID(str(relay.GlobalID("LotSession", str(row["session_id"])))),
            facility_id=strawberry.ID(str(relay.GlobalID("Facility", str(row["facility_id"])))),
            plate=row["plate"],
            kind=CouponKind(row["kind"]),
            minutes=row["minutes"],
            amount_fen=row["amount_fen"],
            reserved_fen=row["reserved_fen"],
            value_fen=row["value_fen"],
            state=CouponRedemptionState(row["state"]),
            redeemed_at=row["redeemed_at"],
            settled_at=row["settled_at"],
        )
