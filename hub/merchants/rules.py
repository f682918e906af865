"""Pure rules of merchant codes: the shape of books and codes, the text of keys and codes, what a redemption
reserves in the merchant's fund, and why a code cannot be redeemed. No I/O.

Who may act for a merchant. Merchants act through operator-issued credentials:

- a merchant API key (`K1.<base64url of tenant id, key id and a 32-byte secret>`), made by an operator admin and
  shown once; the hub keeps only the SHA-256 of the secret. The merchant's systems send it in the
  `X-Merchant-Key` header. The key names its merchant: the merchant a request acts for is the key's, never one
  named in the request, so one merchant can never issue on another's book or fund;
- or an operator admin acting for a merchant (the shop without a till: the operator's staff do it for them),
  naming the merchant explicitly.

Codes. A secret code (meeting, vip, prepay) is `C1.<base64url of tenant id, code id and a 16-byte random
secret>`: 128 random bits make it unguessable, and only the secret's SHA-256 is stored, so a leaked table does
not leak usable codes. The tenant and code ids in it only say where to look; the secret decides. A merchant code
given to a plate has no text at all: it is redeemed when the shop gives it.

Money. A book's funding moves count x unit price from the operator's payable into the merchant's coupon fund (the
operator received the cash from the merchant; online purchase through the payments domain comes later). A
redemption reserves (a pending ledger transfer from the fund to the operator's payable) the most the coupon can be
worth, `reservation_ceiling`, or what the fund still has when that is less: the fund is never over-committed, and a
coupon covers at most what was reserved for it. When the session closes the reservation is posted for the coupon's
value at exit and the rest released; a coupon worth nothing is voided.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hub.errors import Conflict, InvalidInput, NotFound
from hub.pricing.coupons import AMOUNT, COUPON_KINDS, MAX_COUPON_MINUTES, MINUTES, WAIVER, Coupon
from hub.pricing.rules import price
from hub.pricing.tariff import FIRST_FREE, Tariff

MERCHANT, MEETING, VIP, PREPAY = "merchant", "meeting", "vip", "prepay"
SECRET_CODE_KINDS = (MEETING, VIP, PREPAY)
KEY_PREFIX = "K1."
CODE_PREFIX = "C1."
KEY_SECRET_BYTES = 32
CODE_SECRET_BYTES = 16
MAX_COUNT = 1_000_000
MAX_FEN = 10**12
MAX_CODE_TEXT = 120
# A merchant code given to a plate is redeemed at once; its row stays valid this long for the record.
GIVEN_CODE_VALIDITY = timedelta(days=1)
MAX_CODE_VALIDITY = timedelta(days=366)

# Ledger codes of the coupon fund's transfers (hub/settlement reads `coupon` as the coupons line).
FUNDING_CODE = "coupon_funding"
COUPON_CODE = "coupon"
RELEASE_CODE = "coupon_release"


# -------------------------------------------------------------------------------------------------- errors


class CodeNotFound(NotFound):
    code = "CODE_NOT_FOUND"


class CodeExpired(Conflict):
    code = "CODE_EXPIRED"


class CodeExhausted(Conflict):
    code = "CODE_EXHAUSTED"


class NoOpenSession(NotFound):
    code = "NO_OPEN_SESSION"


class FundExhausted(Conflict):
    code = "FUND_EXHAUSTED"


class BookExhausted(Conflict):
    code = "BOOK_EXHAUSTED"


class StayPaid(Conflict):
    """A coupon on a stay already paid (or being paid) would be paid twice: by the driver, who paid the price
    without it, and by the merchant's fund at the exit."""

    code = "SESSION_PAID"


# --------------------------------------------------------------------------------------------------- books


@dataclass(frozen=True)
class BookShape:
    kind: str
    minutes: int | None
    amount_fen: int | None
    waiver_limit_fen: int | None
    count: int
    unit_price_fen: int

    @property
    def funded_fen(self) -> int:
        return self.count * self.unit_price_fen


def check_book(
    kind: str,
    *,
    count: int,
    unit_price_fen: int,
    minutes: int | None = None,
    amount_fen: int | None = None,
    waiver_limit_fen: int | None = None,
) -> BookShape:
    """A book's fields if they fit its kind: minutes (N minutes), amount (N fen) or waiver (up to a limit)."""
    if kind not in COUPON_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(COUPON_KINDS)}", code="INVALID_BOOK", field="kind")
    if not 0 < count <= MAX_COUNT:
        raise InvalidInput(f"count must be 1 to {MAX_COUNT}", code="INVALID_BOOK", field="count")
    if not 0 <= unit_price_fen <= MAX_FEN:
        raise InvalidInput("unit price must be 0 or more fen", code="INVALID_BOOK", field="unitPriceFen")
    given = {MINUTES: minutes, AMOUNT: amount_fen, WAIVER: waiver_limit_fen}
    fields = {MINUTES: "minutes", AMOUNT: "amountFen", WAIVER: "waiverLimitFen"}
    for other, value in given.items():
        if other != kind and value is not None:
            raise InvalidInput(f"a {kind} book takes no {fields[other]}", code="INVALID_BOOK", field=fields[other])
    value = given[kind]
    top = MAX_COUPON_MINUTES if kind == MINUTES else MAX_FEN
    if value is None or not 0 < value <= top:
        raise InvalidInput(f"a {kind} book needs {fields[kind]} above 0", code="INVALID_BOOK", field=fields[kind])
    return BookShape(kind, minutes, amount_fen, waiver_limit_fen, count, unit_price_fen)


# --------------------------------------------------------------------------------------------------- codes


@dataclass(frozen=True)
class CodeShape:
    kind: str
    use_limit: int
    valid_from: datetime
    expires_at: datetime


def check_code(
    kind: str, book_kind: str, use_limit: int | None, valid_from: datetime, expires_at: datetime | None
) -> CodeShape:
    """A secret code's fields: meeting codes take a limit, vip and prepay codes are used once; prepay codes draw
    on amount books (they cover the stay up to their value); every code expires within a year."""
    if kind not in SECRET_CODE_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(SECRET_CODE_KINDS)}", code="INVALID_CODE", field="kind")
    if kind == PREPAY and book_kind != AMOUNT:
        raise InvalidInput("a prepay code draws on an amount book", code="INVALID_CODE", field="bookId")
    if kind == MEETING:
        if use_limit is None or not 0 < use_limit <= MAX_COUNT:
            raise InvalidInput(f"a meeting code needs a limit of 1 to {MAX_COUNT}", code="INVALID_CODE", field="limit")
    elif use_limit not in (None, 1):
        raise InvalidInput(f"a {kind} code is used once", code="INVALID_CODE", field="limit")
    if valid_from.tzinfo is None or (expires_at is not None and expires_at.tzinfo is None):
        raise InvalidInput("times must carry a time zone", code="INVALID_TIME", field="expiresAt")
    if expires_at is None or not valid_from < expires_at <= valid_from + MAX_CODE_VALIDITY:
        raise InvalidInput(
            "a code expires after it becomes valid, within a year", code="INVALID_TIME", field="expiresAt"
        )
    return CodeShape(kind, use_limit or 1, valid_from, expires_at)


def unusable(code: dict | None, now: datetime) -> Exception | None:
    """Why a code (its row: revoked_at, valid_from, expires_at, used, use_limit) cannot be redeemed now."""
    if code is None or code["revoked_at"] is not None:
        return CodeNotFound("no such code", field="code")
    if not code["valid_from"] <= now < code["expires_at"]:
        return CodeExpired("the code is not valid now", field="code", expires_at=code["expires_at"].isoformat())
    if code["used"] >= code["use_limit"]:
        return CodeExhausted("the code has been used up", field="code", limit=code["use_limit"])
    return None


# ------------------------------------------------------------------------------------------ keys and codes


def secret_hash(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()


def _text(prefix: str, tenant_id: uuid.UUID, row_id: uuid.UUID, secret: bytes) -> str:
    return prefix + base64.urlsafe_b64encode(tenant_id.bytes + row_id.bytes + secret).decode().rstrip("=")


def key_text(tenant_id: uuid.UUID, key_id: uuid.UUID, secret: bytes) -> str:
    return _text(KEY_PREFIX, tenant_id, key_id, secret)


def code_text(tenant_id: uuid.UUID, code_id: uuid.UUID, secret: bytes) -> str:
    return _text(CODE_PREFIX, tenant_id, code_id, secret)


@dataclass(frozen=True)
class Presented:
    """A key or code as presented: where to look (tenant, row) and the secret to compare with the stored hash."""

    tenant_id: uuid.UUID
    row_id: uuid.UUID
    secret: bytes


def _read(text: object, prefix: str, secret_bytes: int) -> Presented | None:
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text.startswith(prefix) or len(text) > MAX_CODE_TEXT:
        return None
    body = text[len(prefix) :]
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        return None
    if len(payload) != 32 + secret_bytes:
        return None
    return Presented(uuid.UUID(bytes=payload[:16]), uuid.UUID(bytes=payload[16:32]), payload[32:])


def read_key(text: object) -> Presented | None:
    return _read(text, KEY_PREFIX, KEY_SECRET_BYTES)


def read_code(text: object) -> Presented | None:
    return _read(text, CODE_PREFIX, CODE_SECRET_BYTES)


# --------------------------------------------------------------------------------------------------- money


def reservation_ceiling(
    book: dict,
    tariff: Tariff | None,
    zone: ZoneInfo,
    vehicle_class: str,
    entered_at: datetime,
) -> int:
    """The most a coupon of `book` can be worth on a stay that entered at `entered_at`: an amount coupon its
    amount, a waiver its limit, a minute coupon what its minutes cost as a stay of their own from the start of
    charging (0 in a free lot)."""
    if book["kind"] == AMOUNT:
        return int(book["amount_fen"])
    if book["kind"] == WAIVER:
        return int(book["waiver_limit_fen"])
    if tariff is None:
        return 0
    charge_from = entered_at
    if tariff.free_mode == FIRST_FREE:
        charge_from += timedelta(minutes=tariff.free_minutes)
    return price(tariff, zone, vehicle_class, entered_at, charge_from + timedelta(minutes=book["minutes"])).total_fen


def pricing_coupon(redemption: dict) -> Coupon:
    """A redeemed coupon as the tariff engine takes it: its value is limited to its reservation."""
    return Coupon(
        ref=str(redemption["id"]),
        kind=redemption["kind"],
        minutes=redemption["minutes"] or 0,
        amount_fen=redemption["amount_fen"] or 0,
        limit_fen=redemption["reserved_fen"],
    )
