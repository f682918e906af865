"""Merchant codes over GraphQL. Operators: merchants, their keys, coupon books (with the fund's balance), codes and
redemptions. Merchants (with their key in the `X-Merchant-Key` header, or an operator admin naming `merchantId`):
give a coupon to a plate, make meeting, VIP and prepay codes. Drivers: `redeemCode`. Resolvers are thin:
hub.merchants.service does the work."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from hub.db import Scope
from hub.errors import Forbidden
from hub.merchants import service
from hub.merchants.service import MERCHANT_KEY_HEADER, MerchantActor
from schema.context import Info
from schema.merchants.types import (
    CouponBook,
    CouponKind,
    CouponRedemption,
    IssuedMerchantCode,
    IssuedMerchantKey,
    Merchant,
    MerchantCode,
    MerchantCodeKind,
    MerchantKey,
)
from schema.relay import check_first, connection, decode_time_cursor, uuid_of


@strawberry.input(description="A coupon book the merchant paid the operator for")
class CouponBookInput:
    merchant_id: relay.GlobalID
    kind: CouponKind
    count: int
    unit_price_fen: int = strawberry.field(description="What the merchant paid per coupon")
    minutes: int | None = strawberry.field(default=None, description="Minute coupons: the minutes each covers")
    amount_fen: int | None = strawberry.field(default=None, description="Amount coupons: the fen each takes off")
    waiver_limit_fen: int | None = strawberry.field(default=None, description="Waivers: the most each covers")
    note: str | None = None


@strawberry.input(description="A code drivers scan")
class MerchantCodeInput:
    kind: MerchantCodeKind
    book_id: relay.GlobalID
    limit: int | None = strawberry.field(default=None, description="Meeting codes: how many coupons (scans)")
    valid_from: datetime | None = strawberry.field(default=None, description="Default: now")
    expires_at: datetime
    label: str | None = None


async def _actor(info: Info, merchant_id: relay.GlobalID | None) -> MerchantActor:
    """The merchant this request acts for: its key's, or the one an operator admin names."""
    headers = getattr(info.context.request, "headers", None)
    key = headers.get(MERCHANT_KEY_HEADER) if headers is not None else None
    if key:
        actor = await service.actor_from_key(info.context.db, key)
        if merchant_id is not None and uuid_of(merchant_id, "Merchant", "merchantId") != actor.merchant_id:
            raise Forbidden("a merchant key acts only for its own merchant", code="FORBIDDEN", field="merchantId")
        return actor
    if merchant_id is None:
        raise Forbidden("send the merchant's key (X-Merchant-Key), or name merchantId as an operator admin")
    return service.actor_for(info.context.principal, uuid_of(merchant_id, "Merchant", "merchantId"))


@strawberry.type
class MerchantsQuery:
    @strawberry.field(description="The operator's merchants (operator staff)")
    async def merchants(self, info: Info, include_retired: bool = False) -> list[Merchant]:
        async with info.context.read() as session:
            rows = await service.merchants(session, info.context.principal, include_retired)
        return [Merchant.from_row(row) for row in rows]

    @strawberry.field(description="Coupon books, newest first, of one merchant or all (operator staff)")
    async def coupon_books(self, info: Info, merchant_id: relay.GlobalID | None = None) -> list[CouponBook]:
        merchant = None if merchant_id is None else uuid_of(merchant_id, "Merchant", "merchantId")
        async with info.context.read() as session:
            rows = await service.books(session, info.context.principal, merchant)
        return [CouponBook.from_row(row) for row in rows]

    @strawberry.field(description="Merchants' codes, newest first (operator staff)")
    async def merchant_codes(
        self, info: Info, merchant_id: relay.GlobalID | None = None, first: int | None = 20, after: str | None = None
    ) -> relay.Connection[MerchantCode]:
        page_size = check_first(first)
        merchant = None if merchant_id is None else uuid_of(merchant_id, "Merchant", "merchantId")
        async with info.context.read() as session:
            rows = await service.codes(session, info.context.principal, merchant, page_size, decode_time_cursor(after))
        return connection(rows, page_size, after is not None, MerchantCode.from_row, "created_at")

    @strawberry.field(description="Coupons redeemed on sessions, newest first (operator staff)")
    async def coupon_redemptions(
        self,
        info: Info,
        merchant_id: relay.GlobalID | None = None,
        session_id: relay.GlobalID | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> relay.Connection[CouponRedemption]:
        page_size = check_first(first)
        merchant = None if merchant_id is None else uuid_of(merchant_id, "Merchant", "merchantId")
        lot_session = None if session_id is None else uuid_of(session_id, "LotSession", "sessionId")
        async with info.context.read() as session:
            rows = await service.redemptions(
                session, info.context.principal, merchant, lot_session, page_size, decode_time_cursor(after)
            )
        return connection(rows, page_size, after is not None, CouponRedemption.from_row, "redeemed_at")


@strawberry.type
class MerchantsMutation:
    @strawberry.mutation(description="Add a merchant (operator admins)")
    async def create_merchant(self, info: Info, name: str, contact: str | None = None) -> Merchant:
        async with info.context.write() as session:
            row = await service.create_merchant(session, info.context.principal, name, contact)
        return Merchant.from_row(row)

    @strawberry.mutation(description="Retire a merchant: its keys and codes stop working (operator admins)")
    async def retire_merchant(self, info: Info, id: relay.GlobalID) -> Merchant:
        async with info.context.write() as session:
            row = await service.retire_merchant(session, info.context.principal, uuid_of(id, "Merchant"))
        return Merchant.from_row(row)

    @strawberry.mutation(description="A new API key for a merchant, shown once (operator admins)")
    async def issue_merchant_key(
        self, info: Info, merchant_id: relay.GlobalID, label: str | None = None
    ) -> IssuedMerchantKey:
        merchant = uuid_of(merchant_id, "Merchant", "merchantId")
        async with info.context.write() as session:
            row, key = await service.issue_key(session, info.context.principal, merchant, label)
        return IssuedMerchantKey(key=key, merchant_key=MerchantKey.from_row(row))

    @strawberry.mutation(description="Revoke a merchant's API key (operator admins)")
    async def revoke_merchant_key(self, info: Info, id: strawberry.ID) -> MerchantKey:
        async with info.context.write() as session:
            row = await service.revoke_key(session, info.context.principal, uuid_of(id, "MerchantKey"))
        return MerchantKey.from_row(row)

    @strawberry.mutation(
        description="Record a coupon book the merchant paid for; count x unit price moves from the operator's "
        "payable into the merchant's coupon fund (operator admins)"
    )
    async def record_coupon_book(self, info: Info, input: CouponBookInput) -> CouponBook:
        async with info.context.write() as session:
            row = await service.record_book(
                session,
                info.context.principal,
                uuid_of(input.merchant_id, "Merchant", "merchantId"),
                kind=input.kind.value,
                count=input.count,
                unit_price_fen=input.unit_price_fen,
                minutes=input.minutes,
                amount_fen=input.amount_fen,
                waiver_limit_fen=input.waiver_limit_fen,
                note=input.note,
            )
        return CouponBook.from_row(row)

    @strawberry.mutation(
        description="A merchant gives one coupon of its book to a plate parked in the operator's lots (merchant "
        "key, or operator admin with merchantId). SESSION_PAID when the stay is paid or being paid already"
    )
    async def give_coupon_to_plate(
        self,
        info: Info,
        book_id: relay.GlobalID,
        plate: str,
        facility_id: relay.GlobalID | None = None,
        merchant_id: relay.GlobalID | None = None,
    ) -> CouponRedemption:
        actor = await _actor(info, merchant_id)
        facility = None if facility_id is None else uuid_of(facility_id, "Facility", "facilityId")
        async with info.context.db.transaction(Scope("operator", tenant_id=actor.tenant_id)) as session:
            row = await service.give_coupon_to_plate(
                session,
                actor,
                book_id=uuid_of(book_id, "CouponBook", "bookId"),
                plate=plate,
                facility_id=facility,
                now=info.context.now,
            )
        return CouponRedemption.from_row(row)

    @strawberry.mutation(
        description="A merchant makes a meeting, VIP or prepay code of its book; the code's text is shown once "
        "(merchant key, or operator admin with merchantId)"
    )
    async def create_merchant_code(
        self, info: Info, input: MerchantCodeInput, merchant_id: relay.GlobalID | None = None
    ) -> IssuedMerchantCode:
        actor = await _actor(info, merchant_id)
        async with info.context.db.transaction(Scope("operator", tenant_id=actor.tenant_id)) as session:
            row, code = await service.create_code(
                session,
                actor,
                kind=input.kind.value,
                book_id=uuid_of(input.book_id, "CouponBook", "bookId"),
                use_limit=input.limit,
                valid_from=input.valid_from or info.context.now,
                expires_at=input.expires_at,
                label=input.label,
            )
        return IssuedMerchantCode(code=code, merchant_code=MerchantCode.from_row(row))

    @strawberry.mutation(description="Revoke one of the merchant's codes (merchant key, or operator admin)")
    async def revoke_merchant_code(
        self, info: Info, id: strawberry.ID, merchant_id: relay.GlobalID | None = None
    ) -> MerchantCode:
        actor = await _actor(info, merchant_id)
        async with info.context.db.transaction(Scope("operator", tenant_id=actor.tenant_id)) as session:
            row = await service.revoke_code(session, actor, uuid_of(id, "MerchantCode"))
        return MerchantCode.from_row(row)

    @strawberry.mutation(
        description="A driver redeems a code: one coupon binds to the open lot session of `plate` (or of one of "
        "the driver's vehicles). Errors: CODE_NOT_FOUND, CODE_EXPIRED, CODE_EXHAUSTED, NO_OPEN_SESSION, "
        "SESSION_PAID (the stay is paid, being paid, or charged to auto-pay), FUND_EXHAUSTED"
    )
    async def redeem_code(self, info: Info, code: str, plate: str | None = None) -> CouponRedemption:
        _, row = await service.redeem_code(info.context.db, info.context.principal, code, plate, info.context.now)
        return CouponRedemption.from_row(row)
