"""Merchant codes' use cases: operators manage merchants, their keys and coupon books; merchants (by their key,
or an operator admin for them) give coupons to plates and make codes; drivers redeem codes against their open lot
session; the exit (hub/lanes) applies the session's coupons and settles them with the merchant's fund.

Functions never commit (the caller does), except those taking a `Database`, which run transactions of their own.
See hub/merchants/rules.py for who may act for a merchant and how the money moves."""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.plates import normalize_camera_plate
from hub.db import Database, Scope, driver_of
from hub.drivers import repository as drivers
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from hub.ledger import rules as ledger_rules
from hub.ledger import service as ledger
from hub.ledger.rules import TransferSpec, account_spec, transfer_id
from hub.merchants import repository, rules
from hub.merchants.rules import MERCHANT, BookExhausted, CodeNotFound, FundExhausted, NoOpenSession, StayPaid
from hub.pricing import service as pricing
from hub.principal import Principal, require_operator_admin, tenant_filter

Row = Mapping[str, Any]
MERCHANT_KEY_HEADER = "x-merchant-key"


@dataclass(frozen=True)
class MerchantActor:
    """Who acts for which merchant: the merchant a key belongs to, or an operator admin naming one. Everything a
    merchant does is filtered by `merchant_id`."""

    tenant_id: uuid.UUID
    merchant_id: uuid.UUID
    actor: str


def _operator_tenant(principal: Principal) -> uuid.UUID:
    tenant = tenant_filter(principal)
    if principal.kind != "operator" or tenant is None:
        raise Forbidden("only the operator's staff may read its merchants", required_role="operator_staff")
    return tenant


async def _currency(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> str:
    return await repository.tenant_currency(conn, tenant_id) or "CNY"


async def tenant_currency(session: AsyncSession, tenant_id: uuid.UUID) -> str:
    return await _currency(await driver_of(session), tenant_id)


def fund_account(tenant_id: uuid.UUID, merchant_id: uuid.UUID, currency: str) -> ledger_rules.AccountSpec:
    return account_spec("merchant_coupon_fund", merchant_id, currency, tenant_id=tenant_id)


def payable_account(tenant_id: uuid.UUID, currency: str) -> ledger_rules.AccountSpec:
    return account_spec("tenant_payable", tenant_id, currency)


# -------------------------------------------------------------------------------------------- acting for


async def actor_from_key(db: Database, key: str) -> MerchantActor:
    """The merchant an API key acts for; Unauthenticated INVALID_MERCHANT_KEY when it is not a live key."""
    presented = rules.read_key(key)
    if presented is not None:
        async with db.transaction(Scope("operator", tenant_id=presented.tenant_id)) as session:
            row = await repository.live_key(await driver_of(session), presented.tenant_id, presented.row_id)
        if row is not None and hmac.compare_digest(row["secret_hash"], rules.secret_hash(presented.secret)):
            return MerchantActor(presented.tenant_id, row["merchant_id"], f"merchant_key:{row['id']}")
    raise Unauthenticated("not a live merchant key", code="INVALID_MERCHANT_KEY", field="X-Merchant-Key")


def actor_for(principal: Principal, merchant_id: uuid.UUID) -> MerchantActor:
    """An operator admin acting for one of the operator's merchants (checked when the merchant is used)."""
    tenant_id = require_operator_admin(principal, "coupons for a merchant")
    return MerchantActor(tenant_id, merchant_id, f"operator:{principal.subject}")


# --------------------------------------------------------------------------------------------- merchants


async def create_merchant(session: AsyncSession, principal: Principal, name: str, contact: str | None) -> Row:
    tenant_id = require_operator_admin(principal, "its merchants")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("a merchant needs a name of 1 to 200 characters", field="name")
    row = await repository.insert_merchant(await driver_of(session), tenant_id, name, contact)
    if row is None:
        raise Conflict(f"a merchant named {name!r} exists already", code="MERCHANT_EXISTS", field="name")
    return row


async def retire_merchant(session: AsyncSession, principal: Principal, merchant_id: uuid.UUID) -> Row:
    """Retire a merchant: its keys stop working and its codes can no longer be redeemed. Coupons already
    reserved on sessions are still settled at exit."""
    tenant_id = require_operator_admin(principal, "its merchants")
    row = await repository.retire_merchant(await driver_of(session), tenant_id, merchant_id)
    if row is None:
        raise NotFound("no live merchant with this id belongs to the operator", field="id")
    return row


async def merchants(session: AsyncSession, principal: Principal, include_retired: bool = False) -> list[Row]:
    return await repository.merchants(await driver_of(session), _operator_tenant(principal), include_retired)


async def merchant(session: AsyncSession, tenant_id: uuid.UUID, merchant_id: uuid.UUID) -> Row | None:
    return await repository.merchant(await driver_of(session), tenant_id, merchant_id)


async def _live_merchant(conn: asyncpg.Connection, tenant_id: uuid.UUID, merchant_id: uuid.UUID) -> Row:
    row = await repository.merchant(conn, tenant_id, merchant_id)
    if row is None or row["retired_at"] is not None:
        raise NotFound("no live merchant with this id belongs to the operator", field="merchantId")
    return row


async def issue_key(
    session: AsyncSession, principal: Principal, merchant_id: uuid.UUID, label: str | None
) -> tuple[Row, str]:
    """A new API key for the merchant: the row and the key's text, shown this once (only its hash is kept)."""
    tenant_id = require_operator_admin(principal, "its merchants' keys")
    conn = await driver_of(session)
    await _live_merchant(conn, tenant_id, merchant_id)
    key_id, secret = uuid.uuid4(), secrets.token_bytes(rules.KEY_SECRET_BYTES)
    row = await repository.insert_key(conn, tenant_id, key_id, merchant_id, rules.secret_hash(secret), label)
    return row, rules.key_text(tenant_id, key_id, secret)


async def revoke_key(session: AsyncSession, principal: Principal, key_id: uuid.UUID) -> Row:
    tenant_id = require_operator_admin(principal, "its merchants' keys")
    row = await repository.revoke_key(await driver_of(session), tenant_id, key_id)
    if row is None:
        raise NotFound("no merchant key with this id belongs to the operator", field="id")
    return row


# ------------------------------------------------------------------------------------------------- books


async def record_book(
    session: AsyncSession,
    principal: Principal,
    merchant_id: uuid.UUID,
    *,
    kind: str,
    count: int,
    unit_price_fen: int,
    minutes: int | None = None,
    amount_fen: int | None = None,
    waiver_limit_fen: int | None = None,
    note: str | None = None,
) -> Row:
    """Record a coupon book the merchant paid the operator for, and fund it: count x unit price moves from the
    operator's payable into the merchant's coupon fund (the operator holds the cash; transfer id from the book
    id, so the funding applies once)."""
    tenant_id = require_operator_admin(principal, "its merchants' coupon books")
    shape = rules.check_book(
        kind,
        count=count,
        unit_price_fen=unit_price_fen,
        minutes=minutes,
        amount_fen=amount_fen,
        waiver_limit_fen=waiver_limit_fen,
    )
    conn = await driver_of(session)
    await _live_merchant(conn, tenant_id, merchant_id)
    currency = await _currency(conn, tenant_id)
    book_id = uuid.uuid4()
    funding_id = transfer_id(rules.FUNDING_CODE, book_id) if shape.funded_fen > 0 else None
    row = await repository.insert_book(
        conn,
        {
            "tenant_id": tenant_id,
            "id": book_id,
            "merchant_id": merchant_id,
            "kind": shape.kind,
            "minutes": shape.minutes,
            "amount_fen": shape.amount_fen,
            "waiver_limit_fen": shape.waiver_limit_fen,
            "count": shape.count,
            "unit_price_fen": shape.unit_price_fen,
            "funded_fen": shape.funded_fen,
            "currency": currency,
            "funding_transfer_id": funding_id,
            "note": note,
            "created_by": f"operator:{principal.subject}",
        },
    )
    fund, payable = fund_account(tenant_id, merchant_id, currency), payable_account(tenant_id, currency)
    await ledger.ensure_accounts(conn, [fund, payable])
    if funding_id is not None:
        await ledger.create_transfers(
            conn,
            [
                TransferSpec(
                    id=funding_id,
                    debit_account_id=payable.id,
                    credit_account_id=fund.id,
                    amount=shape.funded_fen,
                    code=rules.FUNDING_CODE,
                    currency=currency,
                    tenant_id=tenant_id,
                    reference={"book": str(book_id), "merchant": str(merchant_id)},
                )
            ],
        )
    return row


async def books(session: AsyncSession, principal: Principal, merchant_id: uuid.UUID | None) -> list[Row]:
    return await repository.books(await driver_of(session), _operator_tenant(principal), merchant_id)


async def fund_balances(
    session: AsyncSession, tenant_id: uuid.UUID, merchants_and_currencies: Sequence[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], ledger_rules.Balance]:
    """The coupon funds' balances from the ledger, by (merchant, currency)."""
    specs = {pair: fund_account(tenant_id, pair[0], pair[1]) for pair in merchants_and_currencies}
    found = await ledger.balances(await driver_of(session), [spec.id for spec in specs.values()])
    return {pair: found[spec.id] for pair, spec in specs.items() if spec.id in found}


# ------------------------------------------------------------------------------------------------- codes


async def _merchant_book(conn: asyncpg.Connection, actor: MerchantActor, book_id: uuid.UUID) -> Row:
    await _live_merchant(conn, actor.tenant_id, actor.merchant_id)
    book = await repository.book(conn, actor.tenant_id, book_id, actor.merchant_id)
    if book is None:
        raise NotFound("no coupon book with this id belongs to the merchant", code="BOOK_NOT_FOUND", field="bookId")
    return book


async def _allocate(conn: asyncpg.Connection, actor: MerchantActor, book_id: uuid.UUID, coupons: int) -> None:
    if await repository.allocate(conn, actor.tenant_id, actor.merchant_id, book_id, coupons) is None:
        raise BookExhausted(f"the book has fewer than {coupons} coupon(s) left", field="bookId")


async def create_code(
    session: AsyncSession,
    actor: MerchantActor,
    *,
    kind: str,
    book_id: uuid.UUID,
    use_limit: int | None,
    valid_from: datetime,
    expires_at: datetime | None,
    label: str | None = None,
) -> tuple[Row, str]:
    """A meeting, VIP or prepay code drawing on the merchant's book, which gives up the code's limit in coupons
    now. Returns the row and the code's text, shown this once (only its hash is kept)."""
    conn = await driver_of(session)
    book = await _merchant_book(conn, actor, book_id)
    shape = rules.check_code(kind, book["kind"], use_limit, valid_from, expires_at)
    await _allocate(conn, actor, book_id, shape.use_limit)
    code_id, secret = uuid.uuid4(), secrets.token_bytes(rules.CODE_SECRET_BYTES)
    row = await repository.insert_code(
        conn,
        {
            "tenant_id": actor.tenant_id,
            "id": code_id,
            "merchant_id": actor.merchant_id,
            "book_id": book_id,
            "kind": shape.kind,
            "secret_hash": rules.secret_hash(secret),
            "label": label,
            "use_limit": shape.use_limit,
            "valid_from": shape.valid_from,
            "expires_at": shape.expires_at,
            "created_by": actor.actor,
        },
    )
    return row, rules.code_text(actor.tenant_id, code_id, secret)


async def revoke_code(session: AsyncSession, actor: MerchantActor, code_id: uuid.UUID) -> Row:
    row = await repository.revoke_code(await driver_of(session), actor.tenant_id, code_id, actor.merchant_id)
    if row is None:
        raise CodeNotFound("no code with this id belongs to the merchant", field="id")
    return row


async def give_coupon_to_plate(
    session: AsyncSession,
    actor: MerchantActor,
    *,
    book_id: uuid.UUID,
    plate: str,
    now: datetime,
    facility_id: uuid.UUID | None = None,
) -> Row:
    """The shop gives one coupon of its book to a plate parked in one of the operator's lots (in `facility_id`,
    when given): a merchant code redeemed at once against the plate's open session. Returns the redemption."""
    conn = await driver_of(session)
    book = await _merchant_book(conn, actor, book_id)
    normalized = _plate(plate)
    lot_session = await repository.open_session(conn, actor.tenant_id, [normalized], None, facility_id)
    if lot_session is None:
        raise NoOpenSession(f"{normalized} is not parked in the operator's lots", field="plate")
    await _allocate(conn, actor, book_id, 1)
    code = await repository.insert_code(
        conn,
        {
            "tenant_id": actor.tenant_id,
            "id": uuid.uuid4(),
            "merchant_id": actor.merchant_id,
            "book_id": book_id,
            "kind": MERCHANT,
            "plate": normalized,
            "use_limit": 1,
            "used": 1,
            "valid_from": now,
            "expires_at": now + rules.GIVEN_CODE_VALIDITY,
            "created_by": actor.actor,
        },
    )
    return await _reserve(session, conn, actor.tenant_id, code, book, lot_session, None, now)


def _plate(plate: str) -> str:
    normalized, valid = normalize_camera_plate(plate or "")
    if not valid:
        raise InvalidInput(f"{plate!r} is not a recognizable plate", code="INVALID_PLATE", field="plate")
    return normalized


# ----------------------------------------------------------------------------------------------- redeeming


async def redeem_code(
    db: Database, principal: Principal, code: str, plate: str | None, now: datetime
) -> tuple[uuid.UUID, Row]:
    """A driver scans a code: one coupon of it binds to the open lot session of `plate` (or of one of the
    driver's vehicles) at the code's operator. Redeeming the same code on the same session again returns that
    redemption. Typed errors: CODE_NOT_FOUND, CODE_EXPIRED, CODE_EXHAUSTED, NO_OPEN_SESSION, FUND_EXHAUSTED,
    SESSION_PAID (the stay is paid or being paid: see `_reserve`).
    Returns the operator's id and the redemption."""
    if principal.kind != "driver" or principal.user_id is None:
        raise Forbidden("only a signed-in driver may redeem a code", required_role="driver")
    presented = rules.read_code(code)
    if presented is None:
        raise CodeNotFound("not a code issued by ParkHub", field="code")
    if plate is not None:
        plates = [_plate(plate)]
    else:
        async with db.transaction(principal.db_scope()) as session:
            plates = [row["plate"] for row in await drivers.vehicles_of(session, principal.user_id)]
    tenant_id = presented.tenant_id
    # The code's secret proves it is the operator's: the redemption acts under the operator's scope, as a lane
    # code's scan does (hub/lanes).
    async with db.transaction(Scope("connector", tenant_id=tenant_id)) as session:
        conn = await driver_of(session)
        row = await repository.code_with_secret(conn, tenant_id, presented.row_id)
        if (
            row is None
            or row["secret_hash"] is None
            or not hmac.compare_digest(row["secret_hash"], rules.secret_hash(presented.secret))
        ):
            raise CodeNotFound("not a code issued by ParkHub", field="code")
        lot_session = await repository.open_session(conn, tenant_id, plates, principal.user_id, None)
        if lot_session is not None:  # a repeated scan on the same stay: that coupon again
            existing = await repository.redemption_of(conn, tenant_id, row["id"], lot_session["id"])
            if existing is not None:
                return tenant_id, existing
        problem = rules.unusable(dict(row), now)
        if problem is not None:
            raise problem
        if lot_session is None:
            raise NoOpenSession("none of your plates is parked in this operator's lots", field="plate")
        used = await repository.use_code(conn, tenant_id, row["id"], now)
        if used is None:  # used up (or expired) while this request waited for the code's row
            fresh = await repository.code_with_secret(conn, tenant_id, row["id"])
            raise rules.unusable(None if fresh is None else dict(fresh), now) or rules.CodeExhausted(
                "the code has been used up", field="code"
            )
        book = await repository.book(conn, tenant_id, row["book_id"])
        assert book is not None
        redemption = await _reserve(session, conn, tenant_id, used, book, lot_session, principal.user_id, now)
        return tenant_id, redemption


async def _reserve(
    session: AsyncSession,
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    code: Row,
    book: Row,
    lot_session: Row,
    driver_id: uuid.UUID | None,
    now: datetime,
) -> Row:
    """Bind one coupon of `book` to the session and reserve its most possible value in the merchant's fund (or
    what the fund still has): FUND_EXHAUSTED when the fund has nothing left for it. A stay already paid, or with a
    payment or an auto-pay charge on its way, takes no coupon (SESSION_PAID): its price was asked without it, so
    the merchant's fund would pay again for what the driver paid (found by the money-path simulation)."""
    merchant_id = code["merchant_id"]
    stay = await repository.lock_stay_for_coupon(conn, tenant_id, lot_session["id"])
    if stay is None:
        raise NoOpenSession("the car has left meanwhile", field="plate")
    if stay["paid_fen"] > 0 or stay["paying"] or stay["charged"]:
        raise StayPaid("this stay is paid, or being paid, without the coupon: it no longer takes one", field="code")
    if not await repository.lock_live_merchant(conn, tenant_id, merchant_id):
        raise CodeNotFound("the code's merchant no longer gives coupons", field="code")
    tariff = None
    if lot_session["tariff_version_id"] is not None:
        tariff = await pricing.tariff_version(session, lot_session["tariff_version_id"], tenant_id=tenant_id)
    ceiling = rules.reservation_ceiling(
        dict(book), tariff, ZoneInfo(lot_session["time_zone"]), lot_session["vehicle_class"], lot_session["entered_at"]
    )
    fund = fund_account(tenant_id, merchant_id, book["currency"])
    balance = (await ledger.balances(conn, [fund.id])).get(fund.id)
    available = 0 if balance is None else balance.available
    reserved = min(ceiling, available)
    if ceiling > 0 and reserved <= 0:
        raise FundExhausted("the merchant's coupon fund has nothing left", field="code", merchant_id=str(merchant_id))
    redemption_id = uuid.uuid4()
    reserve_id = transfer_id("coupon_reserve", redemption_id) if reserved > 0 else None
    row = await repository.insert_redemption(
        conn,
        {
            "tenant_id": tenant_id,
            "id": redemption_id,
            "code_id": code["id"],
            "merchant_id": merchant_id,
            "book_id": book["id"],
            "session_id": lot_session["id"],
            "facility_id": lot_session["facility_id"],
            "plate": lot_session["plate"],
            "driver_id": driver_id,
            "kind": book["kind"],
            "minutes": book["minutes"],
            "amount_fen": book["amount_fen"],
            "reserved_fen": reserved,
            "reserve_transfer_id": reserve_id,
            "redeemed_at": now,
        },
    )
    if row is None:
        raise Conflict("this code was redeemed on this session meanwhile", code="CONCURRENT_CHANGE", field="code")
    if reserve_id is not None:
        payable = payable_account(tenant_id, book["currency"])
        await ledger.create_transfers(
            conn,
            [
                TransferSpec(
                    id=reserve_id,
                    debit_account_id=fund.id,
                    credit_account_id=payable.id,
                    amount=reserved,
                    code=rules.COUPON_CODE,
                    kind=ledger_rules.PENDING,
                    currency=book["currency"],
                    tenant_id=tenant_id,
                    reference=_reference(lot_session["id"], redemption_id, merchant_id),
                )
            ],
        )
    return row


def _reference(session_id: uuid.UUID, redemption_id: uuid.UUID, merchant_id: uuid.UUID) -> dict[str, str]:
    return {"session": str(session_id), "coupon": str(redemption_id), "merchant": str(merchant_id)}


# ---------------------------------------------------------------------------------------------- at the exit


async def reserved_coupons(conn: asyncpg.Connection, tenant_id: uuid.UUID, session_id: uuid.UUID) -> list[Row]:
    """The session's coupons still reserved (for the exit's pricing: `rules.pricing_coupon`)."""
    return await repository.reserved_coupons(conn, tenant_id, session_id)


async def settle_session_coupons(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    coupons: Sequence[Row],
    values: Mapping[str, int],
    at: datetime,
    currency: str,
) -> None:
    """The session closed: each coupon's fund pays the operator what the coupon was worth (`values`, by
    redemption id; never above its reservation), posting its reservation for that much and releasing the rest;
    a coupon worth nothing is voided. Transfer ids from the redemption ids, so this applies once."""
    transfers = []
    for coupon in coupons:
        value = min(values.get(str(coupon["id"]), 0), coupon["reserved_fen"])
        pending = coupon["reserve_transfer_id"]
        if pending is not None:
            reference = _reference(session_id, coupon["id"], coupon["merchant_id"])
            if value > 0:
                transfers.append(
                    TransferSpec(
                        id=transfer_id(rules.COUPON_CODE, coupon["id"]),
                        debit_account_id=None,
                        credit_account_id=None,
                        amount=value,
                        code=rules.COUPON_CODE,
                        kind=ledger_rules.POST_PENDING,
                        pending_id=pending,
                        currency=currency,
                        reference=reference,
                    )
                )
            else:
                transfers.append(
                    TransferSpec(
                        id=transfer_id(rules.RELEASE_CODE, coupon["id"]),
                        debit_account_id=None,
                        credit_account_id=None,
                        amount=0,
                        code=rules.RELEASE_CODE,
                        kind=ledger_rules.VOID_PENDING,
                        pending_id=pending,
                        currency=currency,
                        reference=reference,
                    )
                )
        await repository.settle_redemption(conn, tenant_id, coupon["id"], value, at)
    if transfers:
        await ledger.create_transfers(conn, transfers)


# ------------------------------------------------------------------------------------------------- reading


async def codes(
    session: AsyncSession,
    principal: Principal,
    merchant_id: uuid.UUID | None,
    first: int,
    after: repository.Cursor,
) -> list[Row]:
    return await repository.codes(await driver_of(session), _operator_tenant(principal), merchant_id, first, after)


async def redemptions(
    session: AsyncSession,
    principal: Principal,
    merchant_id: uuid.UUID | None,
    session_id: uuid.UUID | None,
    first: int,
    after: repository.Cursor,
) -> list[Row]:
    conn = await driver_of(session)
    return await repository.redemptions(conn, _operator_tenant(principal), merchant_id, session_id, first, after)
