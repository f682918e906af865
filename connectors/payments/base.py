"""The contract between payment providers and the hub: requests the hub makes, replies and events it gets back.

Providers (the sandbox, WeChat Pay) speak their own formats and never touch the database; the payments domain
(hub/payments) calls them and records what they say in the ledger. Everything here is in ParkHub's terms:
amounts are integer fen with an ISO currency code, times are timezone-aware and reported in UTC, and every
money operation carries the caller's own idempotency key (`out_trade_no`, `out_refund_no`), which the provider
also uses to find the order again.

What a call's result means, for the caller:

- `ProviderReply.status == "accepted"`: the provider took the order; the outcome comes later as a callback
  (`parse_callback`) or by asking (`query_payment` / `query_refund`).
- `"succeeded"` / `"failed"`: the provider already knows the outcome. A `failed` reply means nothing was taken
  (or refunded); `failure_code` says why in the provider's words.
- `ProviderUnavailable` raised: the call timed out, the connection broke, or the provider answered 5xx (or an
  answer that could not be authenticated). The caller does NOT know whether the provider took the order: it
  must not assume failure (the money may have moved), and must not create a new order for the same purpose.
  It keeps the order open and either waits for the callback or asks `query_payment(out_trade_no)`; repeating
  the same request with the same `out_trade_no` is safe (providers deduplicate on it).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

# WeChat Pay's rules for merchant order numbers, which are the narrowest of the providers ParkHub speaks to.
OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_*\-]{6,32}")
OUT_REFUND_NO = re.compile(r"[A-Za-z0-9_*|@\-]{1,64}")
CURRENCY = re.compile(r"[A-Z]{3}")
# An amount any single order may carry: 100 million yuan, far beyond a parking fee but inside every
# provider's integer range.
MAX_AMOUNT_FEN = 10_000_000_000


class ReplyStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # taken; the outcome comes later (callback or query)
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class OrderStatus(enum.StrEnum):
    """The provider's truth about one payment or refund, as `query_payment` / `query_refund` tell it."""

    NOT_FOUND = "not_found"  # the provider never took an order with this number: safe to try again
    ACCEPTED = "accepted"  # taken, still in progress
    SUCCEEDED = "succeeded"  # captured (a payment) or paid back (a refund)
    FAILED = "failed"  # final failure: nothing moved


class ProviderEventKind(enum.StrEnum):
    PAYMENT_ACCEPTED = "payment_accepted"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    # The payer repaid an amount the provider had advanced to the merchant (WeChat Pay Score parking): the
    # merchant had already been paid, so this moves no money for ParkHub; it is informational.
    PAYMENT_REPAID = "payment_repaid"
    REFUND_SUCCEEDED = "refund_succeeded"
    REFUND_FAILED = "refund_failed"
    # A plate's auto-pay service (or an open parking entry) became usable or unusable.
    SERVICE_STATE = "service_state"


class ServiceState(enum.StrEnum):
    """Whether a plate can be charged after it leaves ("leave first, pay later")."""

    NORMAL = "normal"  # enabled and usable
    PAUSED = "paused"  # enabled by the payer but suspended (paused by the payer, or overdue)
    NOT_ENABLED = "not_enabled"  # the payer never enabled it for this plate, or removed it
    BLOCKED = "blocked"  # a parking entry that can no longer be charged automatically


class PlateColor(enum.StrEnum):
    """Plate colors as ParkHub names them (providers have their own words: see each adapter)."""

    BLUE = "blue"
    GREEN = "green"  # small new-energy vehicles (8 characters, D/F third)
    YELLOW = "yellow"
    BLACK = "black"
    WHITE = "white"
    YELLOW_GREEN = "yellow_green"  # large new-energy vehicles (8 characters, D/F last)


class InvalidPaymentRequest(ValueError):
    """A request the hub built is malformed (a programming error, caught before anything is sent)."""


class ProviderUnavailable(Exception):
    """The provider could not be reached, timed out, answered 5xx, or answered something that could not be
    authenticated. The outcome of the call is UNKNOWN: see the module docstring for what the caller does."""

    def __init__(self, message: str, *, operation: str | None = None, reference: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.reference = reference


class ProviderError(Exception):
    """The provider refused a query or a non-money call (bad credentials, bad parameters): the request itself
    is wrong, retrying the same will not help. Money calls report refusals as a `failed` ProviderReply instead."""

    def __init__(self, code: str, message: str, *, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


class CallbackRejected(Exception):
    """A provider callback that must not be acted on: bad or stale signature, unknown key, undecryptable or
    malformed body. `status` is the HTTP status to answer (4xx: the provider will retry or give up),
    `error` a stable machine word, `message` plain English safe to send back."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.status = status
        self.error = error
        self.message = message

    def as_json(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeRequest:
    """A one-off payment the payer completes in their app: at the exit code, in the lot, or a curb prepayment."""

    out_trade_no: str
    amount_fen: int
    description: str
    notify_url: str
    currency: str = "CNY"
    # The payer as the provider knows them (a WeChat openid); without it the provider gives a code to scan.
    payer: str | None = None
    # The operator's sub-merchant id when the provider settles directly to operators (service-provider mode).
    sub_merchant: str | None = None
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        check_out_trade_no(self.out_trade_no)
        check_amount("amount_fen", self.amount_fen)
        check_currency(self.currency)
        check_text("description", self.description, 127)
        check_url(self.notify_url)
        check_aware("expires_at", self.expires_at, optional=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeductionRequest:
    """Auto-pay after the car left ("leave first, pay later"): charge the payer who bound this plate."""

    out_trade_no: str
    amount_fen: int
    plate: str
    plate_color: PlateColor | str
    # The provider's id of the parking entry (what `open_parking` returned when the car came in).
    parking_id: str
    started_at: datetime
    ended_at: datetime
    facility_name: str
    notify_url: str
    sub_merchant: str | None = None
    # Whether the provider should hold the funds for a later split (service-provider mode, platform fee).
    profit_sharing: bool = False
    currency: str = "CNY"
    description: str = "停车费"
    device_id: str | None = None

    def __post_init__(self) -> None:
        check_out_trade_no(self.out_trade_no)
        check_amount("amount_fen", self.amount_fen)
        check_currency(self.currency)
        check_text("plate", self.plate, 32)
        check_text("parking_id", self.parking_id, 64)
        check_text("facility_name", self.facility_name, 127)
        check_text("description", self.description, 127)
        check_url(self.notify_url)
        check_aware("started_at", self.started_at)
        check_aware("ended_at", self.ended_at)
        if self.ended_at < self.started_at:
            raise InvalidPaymentRequest("ended_at is before started_at")
        try:
            PlateColor(self.plate_color)
        except ValueError:
            raise InvalidPaymentRequest(f"plate_color {self.plate_color!r} is not one of {_PLATE_COLORS}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundRequest:
    """Give back part or all of a captured payment. `total_fen` is the original payment's amount (providers
    check it); `amount_fen` what to give back now."""

    out_refund_no: str
    out_trade_no: str
    amount_fen: int
    total_fen: int
    reason: str
    notify_url: str
    currency: str = "CNY"
    sub_merchant: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.out_refund_no, str) or not OUT_REFUND_NO.fullmatch(self.out_refund_no):
            raise InvalidPaymentRequest("out_refund_no must be 1 to 64 of letters, digits and _-|*@")
        check_out_trade_no(self.out_trade_no)
        check_amount("amount_fen", self.amount_fen)
        check_amount("total_fen", self.total_fen)
        if self.amount_fen > self.total_fen:
            raise InvalidPaymentRequest("amount_fen is more than total_fen: a refund cannot exceed the payment")
        check_currency(self.currency)
        check_text("reason", self.reason, 80)
        check_url(self.notify_url)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceQuery:
    """Is auto-pay usable for this plate (and, for WeChat, this payer)?"""

    plate: str
    plate_color: PlateColor | str
    payer: str | None = None
    sub_merchant: str | None = None

    def __post_init__(self) -> None:
        check_text("plate", self.plate, 32)
        try:
            PlateColor(self.plate_color)
        except ValueError:
            raise InvalidPaymentRequest(f"plate_color {self.plate_color!r} is not one of {_PLATE_COLORS}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParkingEntryRequest:
    """Tell the provider an auto-pay car came in; the reply's `parking_id` goes into the later deduction."""

    out_parking_no: str
    plate: str
    plate_color: PlateColor | str
    started_at: datetime
    facility_name: str
    notify_url: str
    free_minutes: int = 0
    sub_merchant: str | None = None

    def __post_init__(self) -> None:
        check_text("out_parking_no", self.out_parking_no, 64)
        check_text("plate", self.plate, 32)
        check_text("facility_name", self.facility_name, 127)
        check_url(self.notify_url)
        check_aware("started_at", self.started_at)
        if type(self.free_minutes) is not int or self.free_minutes < 0:
            raise InvalidPaymentRequest("free_minutes must be a non-negative integer")
        try:
            PlateColor(self.plate_color)
        except ValueError:
            raise InvalidPaymentRequest(f"plate_color {self.plate_color!r} is not one of {_PLATE_COLORS}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderReply:
    """What a money call answered (see the module docstring for what each status means)."""

    status: ReplyStatus
    provider_reference: str | None = None  # the provider's own id of the order or refund, when it gives one
    failure_code: str | None = None
    failure_message: str | None = None
    # What the payer's app needs to finish a `charge` (WeChat: the signed JSAPI parameters, or a code_url).
    client_action: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderOrder:
    """The provider's truth about one payment (`out_refund_no` None) or one refund."""

    status: OrderStatus
    out_trade_no: str | None  # None only for a refund the provider does not know
    out_refund_no: str | None = None
    provider_reference: str | None = None
    amount_fen: int | None = None  # the payment's (or the refund's) amount
    currency: str | None = None
    succeeded_at: datetime | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    provider_state: str | None = None  # the provider's own word for the state (SUCCESS, ACCEPTED, ...)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderEvent:
    """One callback, normalized. `event_id` is the provider's own id of the notification, unique per provider:
    the inbox deduplicates on it (a provider resending the same notification sends the same id)."""

    event_id: str
    kind: ProviderEventKind
    occurred_at: datetime  # UTC: when the thing happened at the provider (not when it was delivered)
    out_trade_no: str | None = None
    out_refund_no: str | None = None
    provider_reference: str | None = None
    amount_fen: int | None = None
    currency: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    service_state: ServiceState | None = None
    # Provider specifics worth keeping (plate, parking id, whether the payer repaid an advance...).
    details: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceStatus:
    plate: str
    plate_color: PlateColor
    state: ServiceState
    enabled_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParkingEntry:
    parking_id: str  # the provider's id of the entry: DeductionRequest.parking_id
    out_parking_no: str
    state: ServiceState  # NORMAL (chargeable at exit) or BLOCKED
    block_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SettlementRecord:
    """One line of a provider's daily bill, for reconciliation. `amount_fen` is positive for both kinds;
    `fee_fen` is the provider's fee charged (positive) or given back with a refund (negative)."""

    kind: str  # "payment" or "refund"
    out_trade_no: str
    out_refund_no: str | None
    provider_reference: str
    amount_fen: int
    fee_fen: int
    currency: str
    occurred_at: datetime
    sub_merchant: str | None = None

    @property
    def net_fen(self) -> int:
        """What the line does to the merchant's balance at the provider."""
        return self.amount_fen - self.fee_fen if self.kind == "payment" else -self.amount_fen - self.fee_fen


@runtime_checkable
class PaymentProvider(Protocol):
    """What every provider offers the hub. Money calls (`charge`, `deduct`, `refund`) raise ProviderUnavailable
    when the outcome is unknown; queries raise it when the provider cannot be asked right now."""

    name: str

    async def charge(self, request: ChargeRequest) -> ProviderReply: ...

    async def deduct(self, request: DeductionRequest) -> ProviderReply: ...

    async def refund(self, request: RefundRequest) -> ProviderReply: ...

    async def query_payment(self, out_trade_no: str, *, sub_merchant: str | None = None) -> ProviderOrder: ...

    async def query_refund(self, out_refund_no: str, *, sub_merchant: str | None = None) -> ProviderOrder: ...

    async def check_service(self, query: ServiceQuery) -> ServiceStatus: ...

    async def open_parking(self, request: ParkingEntryRequest) -> ParkingEntry: ...

    def parse_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> list[ProviderEvent]:
        """Verify (signature, 5-minute replay window), decrypt and normalize one callback request.
        Raises CallbackRejected; never returns events it could not authenticate."""
        ...


_PLATE_COLORS = ", ".join(color.value for color in PlateColor)


def check_out_trade_no(value: object) -> None:
    if not isinstance(value, str) or not OUT_TRADE_NO.fullmatch(value):
        raise InvalidPaymentRequest("out_trade_no must be 6 to 32 of letters, digits and _-*")


def check_amount(name: str, value: object) -> None:
    # bool is an int in Python, and a float is never money: both are refused outright.
    if type(value) is not int:
        raise InvalidPaymentRequest(f"{name} must be an integer number of fen, got {type(value).__name__}")
    if not 0 < value <= MAX_AMOUNT_FEN:
        raise InvalidPaymentRequest(f"{name} must be between 1 and {MAX_AMOUNT_FEN} fen, got {value}")


def check_currency(value: object) -> None:
    if not isinstance(value, str) or not CURRENCY.fullmatch(value):
        raise InvalidPaymentRequest("currency must be a three-letter ISO 4217 code such as CNY")


def check_text(name: str, value: object, max_length: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidPaymentRequest(f"{name} must be non-empty text")
    if len(value) > max_length:
        raise InvalidPaymentRequest(f"{name} is longer than {max_length} characters")


def check_url(value: object) -> None:
    if not isinstance(value, str) or not re.match(r"https?://[^\s/]+", value):
        raise InvalidPaymentRequest("notify_url must be an absolute http(s) URL")


def check_aware(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidPaymentRequest(f"{name} must be a timezone-aware datetime")
