"""The sandbox payment provider: behaves like a real provider, with every misbehaviour available on demand.

Used by `make run`'s demo and by tests. It keeps its own books (orders, refunds, parking entries), answers
`charge`, `deduct` and `refund` with `accepted` at once, and tells the outcome later in a signed callback
POSTed to the request's `notify_url` (see sandbox_delivery: Standard Webhooks headers, retries, `drain()`).
`query_payment` / `query_refund` always tell the truth, callbacks or not. It deduplicates on the caller's
numbers: the same request with the same `out_trade_no` gets the same order back (never a second one), a
different request with a used number is refused. It never refunds more than was captured.

Outcomes are chosen by the request (`sandbox:<word>` tokens in a charge's `payer` or `description`, a
deduction's `plate` or `description`, a refund's `reason`) or scripted by a test for one number with
`set_outcome(number, *words)`: succeed, fail, pending, timeout, unavailable, duplicate, renotify, reorder,
lost, slow. sandbox_scenarios.py says what each does; sandbox_wire.py shows the callbacks' JSON.

Auto-pay service (check_service, open_parking, deduct): a plate is enabled unless its text carries
`sandbox:paused` or `sandbox:not_enabled`, or a test sets it with `set_service_state`; a deduction for a plate
that is not enabled, or on a blocked entry, fails (`SERVICE_NOT_AVAILABLE`, `PARKING_BLOCKED`).

`records_for_day(day)` is the provider's daily bill: every payment captured and refund paid that local day
(the bill's time zone, Asia/Shanghai by default), with the provider's fee (`fee_bps`, rounded half up to the
fen, returned in proportion on refunds).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

from connectors.payments import sandbox_wire
from connectors.payments.base import (
    ChargeRequest,
    DeductionRequest,
    InvalidPaymentRequest,
    OrderStatus,
    ParkingEntry,
    ParkingEntryRequest,
    PlateColor,
    ProviderEvent,
    ProviderEventKind,
    ProviderOrder,
    ProviderReply,
    ProviderUnavailable,
    RefundRequest,
    ReplyStatus,
    ServiceQuery,
    ServiceState,
    ServiceStatus,
    SettlementRecord,
)
from connectors.payments.money import fen_to_decimal
from connectors.payments.sandbox_delivery import CallbackCourier, DeliveryAttempt, Outgoing
from connectors.payments.sandbox_scenarios import Scenario, scenario_words

_SERVICE_WORDS = re.compile(r"sandbox:(paused|not_enabled)\b")


@dataclass(slots=True)
class _Payment:
    out_trade_no: str
    fingerprint: tuple[Any, ...]
    reference: str
    amount_fen: int
    currency: str
    notify_url: str
    sub_merchant: str | None
    scenario: Scenario
    created_at: datetime
    status: OrderStatus = OrderStatus.ACCEPTED
    settled_at: datetime | None = None
    failure_code: str | None = None
    refunded_fen: int = 0
    reserved_fen: int = 0  # refunds accepted but not yet paid back


@dataclass(slots=True)
class _Refund:
    out_refund_no: str
    fingerprint: tuple[Any, ...]
    reference: str
    payment: _Payment
    amount_fen: int
    notify_url: str
    scenario: Scenario
    created_at: datetime
    status: OrderStatus = OrderStatus.ACCEPTED
    settled_at: datetime | None = None
    failure_code: str | None = None


@dataclass(slots=True)
class _Parking:
    parking_id: str
    out_parking_no: str
    plate: str
    notify_url: str
    state: ServiceState
    block_reason: str | None = None


@dataclass(slots=True)
class _Event:
    kind: ProviderEventKind
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


class SandboxProvider:
    """See the module docstring. `secret` (`whsec_...`) signs the callbacks; `client` delivers them."""

    name = "sandbox"

    def __init__(
        self,
        *,
        secret: str,
        client: httpx.AsyncClient,
        clock: Callable[[], datetime] | None = None,
        seed: int | None = None,
        fee_bps: int = 60,
        bill_timezone: str = "Asia/Shanghai",
        max_attempts: int = 5,
        retry_backoff_seconds: float = 0.05,
        slow_seconds: float = 1.0,
    ) -> None:
        self._secret = secret
        self._clock = clock or (lambda: datetime.now(UTC))
        self._random = random.Random(seed)
        self._fee_bps = fee_bps
        self._bill_zone = ZoneInfo(bill_timezone)
        self._slow_seconds = slow_seconds
        self._courier = CallbackCourier(
            client, secret, self._clock, max_attempts=max_attempts, backoff_seconds=retry_backoff_seconds
        )
        self._payments: dict[str, _Payment] = {}
        self._refunds: dict[str, _Refund] = {}
        self._parkings: dict[str, _Parking] = {}
        self._parking_ids: dict[str, str] = {}  # out_parking_no -> parking_id
        self._services: dict[str, ServiceState] = {}
        self._scripted: dict[str, tuple[str, ...]] = {}
        self._first_call_failed: set[str] = set()
        self.lost: list[dict[str, Any]] = []  # callbacks the `lost` outcome swallowed (bodies), for tests

    # -- what tests steer and inspect --------------------------------------------------------------------------

    def set_outcome(self, number: str, *words: str) -> None:
        """Script the outcome of the order or refund with this number (words as in the module docstring)."""
        Scenario.from_words(words)  # refuse unknown or contradictory words now, not at the call
        self._scripted[number] = tuple(words)

    def set_service_state(self, plate: str, state: ServiceState) -> None:
        self._services[plate] = ServiceState(state)

    def set_parking_state(self, parking_id: str, state: ServiceState, reason: str | None = None) -> None:
        """Change an entry's state (as the provider would when the payer pauses the service) and call back."""
        parking = self._parkings[parking_id]
        parking.state, parking.block_reason = ServiceState(state), reason
        event = _Event(
            ProviderEventKind.SERVICE_STATE,
            self._clock(),
            {"service_state": parking.state.value, "details": {"parking_id": parking_id, "plate": parking.plate}},
        )
        self._dispatch(parking.notify_url, parking_id, [event], Scenario())

    def complete(self, number: str, *, succeed: bool = True) -> None:
        """Settle a `pending` order or refund now (its callbacks follow as scripted)."""
        if number in self._payments and self._payments[number].status is OrderStatus.ACCEPTED:
            self._settle_payment(self._payments[number], succeed=succeed)
        elif number in self._refunds and self._refunds[number].status is OrderStatus.ACCEPTED:
            self._settle_refund(self._refunds[number], succeed=succeed)
        else:
            raise KeyError(f"{number!r} is not a pending order or refund of the sandbox")

    @property
    def deliveries(self) -> list[DeliveryAttempt]:
        return self._courier.log

    @property
    def pending_deliveries(self) -> int:
        return self._courier.pending

    async def drain(self) -> None:
        """Deliver everything held back and wait until every callback is delivered or given up."""
        await self._courier.drain()

    async def aclose(self) -> None:
        await self._courier.aclose()

    # -- money calls -------------------------------------------------------------------------------------------

    async def charge(self, request: ChargeRequest) -> ProviderReply:
        scenario = self._scenario(request.out_trade_no, request.payer, request.description)
        fingerprint = ("charge", request.amount_fen, request.currency, request.payer, request.sub_merchant)
        return self._take_payment(request.out_trade_no, fingerprint, request, scenario)

    async def deduct(self, request: DeductionRequest) -> ProviderReply:
        scenario = self._scenario(request.out_trade_no, request.plate, request.description)
        fingerprint = ("deduct", request.amount_fen, request.currency, request.plate, request.parking_id)
        if request.out_trade_no not in self._payments:
            parking = self._parkings.get(request.parking_id)
            if parking is not None and parking.state is not ServiceState.NORMAL:
                return _failed(
                    "PARKING_BLOCKED", f"the parking entry is blocked ({parking.block_reason or 'no reason'})"
                )
            if self._service_state(request.plate) is not ServiceState.NORMAL:
                return _failed("SERVICE_NOT_AVAILABLE", "auto-pay is not enabled for this plate")
        return self._take_payment(request.out_trade_no, fingerprint, request, scenario)

    async def refund(self, request: RefundRequest) -> ProviderReply:
        scenario = self._scenario(request.out_refund_no, request.reason)
        if scenario.reorder:
            raise InvalidPaymentRequest("the sandbox's `reorder` applies to payments, not refunds")
        fingerprint = (request.out_trade_no, request.amount_fen, request.total_fen, request.currency)
        existing = self._refunds.get(request.out_refund_no)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                return _failed("OUT_REFUND_NO_USED", "out_refund_no was already used for a different refund")
            return _reply(existing.status, existing.reference, existing.failure_code)
        self._fail_first_call_if_unavailable(request.out_refund_no, scenario, "refund")

        payment = self._payments.get(request.out_trade_no)
        if payment is None:
            return _failed("ORDER_NOT_FOUND", "no payment with this out_trade_no")
        if payment.status is not OrderStatus.SUCCEEDED:
            return _failed("PAYMENT_NOT_CAPTURED", "the payment has not been captured")
        if request.total_fen != payment.amount_fen or request.currency != payment.currency:
            return _failed("TOTAL_MISMATCH", "total_fen and currency must be the payment's")
        available = payment.amount_fen - payment.refunded_fen - payment.reserved_fen
        if request.amount_fen > available:
            return _failed("REFUND_EXCEEDS_CAPTURED", f"only {available} fen of the payment can still be refunded")

        refund = _Refund(
            out_refund_no=request.out_refund_no,
            fingerprint=fingerprint,
            reference=self._new_id("sbx_ref_"),
            payment=payment,
            amount_fen=request.amount_fen,
            notify_url=request.notify_url,
            scenario=scenario,
            created_at=self._clock(),
        )
        payment.reserved_fen += refund.amount_fen
        self._refunds[refund.out_refund_no] = refund
        if scenario.outcome != "pending":
            self._settle_refund(refund, succeed=scenario.outcome == "succeed")
        self._fail_first_call_if_timeout(request.out_refund_no, scenario, "refund")
        return ProviderReply(status=ReplyStatus.ACCEPTED, provider_reference=refund.reference)

    # -- queries -----------------------------------------------------------------------------------------------

    async def query_payment(self, out_trade_no: str, *, sub_merchant: str | None = None) -> ProviderOrder:
        payment = self._payments.get(out_trade_no)
        if payment is None:
            return ProviderOrder(status=OrderStatus.NOT_FOUND, out_trade_no=out_trade_no)
        return ProviderOrder(
            status=payment.status,
            out_trade_no=out_trade_no,
            provider_reference=payment.reference,
            amount_fen=payment.amount_fen,
            currency=payment.currency,
            succeeded_at=payment.settled_at if payment.status is OrderStatus.SUCCEEDED else None,
            failure_code=payment.failure_code,
            provider_state=payment.status.value.upper(),
            raw={"refunded_fen": payment.refunded_fen, "refunding_fen": payment.reserved_fen},
        )

    async def query_refund(self, out_refund_no: str, *, sub_merchant: str | None = None) -> ProviderOrder:
        refund = self._refunds.get(out_refund_no)
        if refund is None:
            return ProviderOrder(status=OrderStatus.NOT_FOUND, out_trade_no=None, out_refund_no=out_refund_no)
        return ProviderOrder(
            status=refund.status,
            out_trade_no=refund.payment.out_trade_no,
            out_refund_no=out_refund_no,
            provider_reference=refund.reference,
            amount_fen=refund.amount_fen,
            currency=refund.payment.currency,
            succeeded_at=refund.settled_at if refund.status is OrderStatus.SUCCEEDED else None,
            failure_code=refund.failure_code,
            provider_state=refund.status.value.upper(),
        )

    async def check_service(self, query: ServiceQuery) -> ServiceStatus:
        return ServiceStatus(
            plate=query.plate, plate_color=PlateColor(query.plate_color), state=self._service_state(query.plate)
        )

    async def open_parking(self, request: ParkingEntryRequest) -> ParkingEntry:
        known = self._parking_ids.get(request.out_parking_no)
        if known is None:
            state = self._service_state(request.plate)
            parking = _Parking(
                parking_id=self._new_id("sbx_park_"),
                out_parking_no=request.out_parking_no,
                plate=request.plate,
                notify_url=request.notify_url,
                state=ServiceState.NORMAL if state is ServiceState.NORMAL else ServiceState.BLOCKED,
                block_reason=None if state is ServiceState.NORMAL else state.value,
            )
            self._parkings[parking.parking_id] = parking
            self._parking_ids[request.out_parking_no] = parking.parking_id
            known = parking.parking_id
        parking = self._parkings[known]
        return ParkingEntry(
            parking_id=parking.parking_id,
            out_parking_no=parking.out_parking_no,
            state=parking.state,
            block_reason=parking.block_reason,
        )

    def records_for_day(self, day: date) -> list[SettlementRecord]:
        """The daily bill: payments captured and refunds paid back on `day` in the bill's time zone."""
        start = datetime(day.year, day.month, day.day, tzinfo=self._bill_zone)
        end = start + timedelta(days=1)
        records: list[SettlementRecord] = []
        for payment in self._payments.values():
            if payment.status is OrderStatus.SUCCEEDED and payment.settled_at and start <= payment.settled_at < end:
                records.append(
                    SettlementRecord(
                        kind="payment",
                        out_trade_no=payment.out_trade_no,
                        out_refund_no=None,
                        provider_reference=payment.reference,
                        amount_fen=payment.amount_fen,
                        fee_fen=self._fee(payment.amount_fen),
                        currency=payment.currency,
                        occurred_at=payment.settled_at,
                        sub_merchant=payment.sub_merchant,
                    )
                )
        for refund in self._refunds.values():
            if refund.status is OrderStatus.SUCCEEDED and refund.settled_at and start <= refund.settled_at < end:
                records.append(
                    SettlementRecord(
                        kind="refund",
                        out_trade_no=refund.payment.out_trade_no,
                        out_refund_no=refund.out_refund_no,
                        provider_reference=refund.reference,
                        amount_fen=refund.amount_fen,
                        fee_fen=-self._fee(refund.amount_fen),
                        currency=refund.payment.currency,
                        occurred_at=refund.settled_at,
                        sub_merchant=refund.payment.sub_merchant,
                    )
                )
        return sorted(records, key=lambda record: (record.occurred_at, record.kind, record.provider_reference))

    # -- callbacks ---------------------------------------------------------------------------------------------

    def parse_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> list[ProviderEvent]:
        """Verify (Standard Webhooks signature under the sandbox secret, 5-minute window) and normalize."""
        return sandbox_wire.parse_callback(self._secret, headers, body, now)

    # -- inside ------------------------------------------------------------------------------------------------

    def _take_payment(
        self,
        out_trade_no: str,
        fingerprint: tuple[Any, ...],
        request: ChargeRequest | DeductionRequest,
        scenario: Scenario,
    ) -> ProviderReply:
        existing = self._payments.get(out_trade_no)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                return _failed("OUT_TRADE_NO_USED", "out_trade_no was already used for a different order")
            return _reply(existing.status, existing.reference, existing.failure_code)
        self._fail_first_call_if_unavailable(out_trade_no, scenario, "payment")
        payment = _Payment(
            out_trade_no=out_trade_no,
            fingerprint=fingerprint,
            reference=self._new_id("sbx_pay_"),
            amount_fen=request.amount_fen,
            currency=request.currency,
            notify_url=request.notify_url,
            sub_merchant=request.sub_merchant,
            scenario=scenario,
            created_at=self._clock(),
        )
        self._payments[out_trade_no] = payment
        if scenario.outcome != "pending":
            self._settle_payment(payment, succeed=scenario.outcome == "succeed")
        self._fail_first_call_if_timeout(out_trade_no, scenario, "payment")
        return ProviderReply(status=ReplyStatus.ACCEPTED, provider_reference=payment.reference)

    def _settle_payment(self, payment: _Payment, *, succeed: bool) -> None:
        now = self._clock()
        payment.status = OrderStatus.SUCCEEDED if succeed else OrderStatus.FAILED
        payment.settled_at = now
        payment.failure_code = None if succeed else "INSUFFICIENT_FUNDS"
        base = {"out_trade_no": payment.out_trade_no, "reference": payment.reference}
        money = {"amount": fen_to_decimal(payment.amount_fen), "currency": payment.currency}
        if succeed:
            final = _Event(ProviderEventKind.PAYMENT_SUCCEEDED, now, base | money)
            stale = _Event(
                ProviderEventKind.PAYMENT_FAILED,
                now - timedelta(seconds=1),
                base | money | {"failure_code": "FIRST_ATTEMPT_DECLINED", "failure_message": "superseded by a retry"},
            )
        else:
            final = _Event(
                ProviderEventKind.PAYMENT_FAILED,
                now,
                base
                | money
                | {"failure_code": "INSUFFICIENT_FUNDS", "failure_message": "the payer's balance is too low"},
            )
            stale = _Event(ProviderEventKind.PAYMENT_ACCEPTED, now - timedelta(seconds=1), base | money)
        events = [stale, final] if payment.scenario.reorder else [final]
        self._dispatch(payment.notify_url, payment.out_trade_no, events, payment.scenario)

    def _settle_refund(self, refund: _Refund, *, succeed: bool) -> None:
        payment = refund.payment
        payment.reserved_fen -= refund.amount_fen
        if succeed:
            payment.refunded_fen += refund.amount_fen
        refund.status = OrderStatus.SUCCEEDED if succeed else OrderStatus.FAILED
        refund.settled_at = self._clock()
        refund.failure_code = None if succeed else "REFUND_DECLINED"
        data = {
            "out_trade_no": payment.out_trade_no,
            "out_refund_no": refund.out_refund_no,
            "reference": refund.reference,
            "amount": fen_to_decimal(refund.amount_fen),
            "currency": payment.currency,
        }
        if not succeed:
            data |= {"failure_code": "REFUND_DECLINED", "failure_message": "the refund was declined"}
        kind = ProviderEventKind.REFUND_SUCCEEDED if succeed else ProviderEventKind.REFUND_FAILED
        event = _Event(kind, refund.settled_at, data)
        tasks = self._dispatch(refund.notify_url, refund.out_refund_no, [event], refund.scenario)
        # A payment whose callbacks are held back (`reorder`) gets them delivered after its refund's.
        self._courier.release_after(payment.out_trade_no, tasks)

    def _dispatch(self, url: str, key: str, events: list[_Event], scenario: Scenario) -> list[Any]:
        """Turn events into callbacks as the scenario says; returns the delivery tasks started."""
        outgoing = [self._outgoing(url, event) for event in events]
        if scenario.lost:
            self.lost.extend(orjson.loads(item.body) for item in outgoing)
            return []
        if scenario.renotify:
            outgoing.append(self._outgoing(url, events[-1]))
        if scenario.duplicate:
            outgoing = [copy for item in outgoing for copy in (item, item)]
        delay = self._slow_seconds if scenario.slow else 0.0
        if scenario.reorder:
            self._courier.hold(key, outgoing)
            return []
        return [self._courier.send(outgoing, delay_seconds=delay)]

    def _outgoing(self, url: str, event: _Event) -> Outgoing:
        event_id = self._new_id("evt_")
        body = sandbox_wire.encode(event_id, event.kind, event.occurred_at, self._clock(), event.data)
        return Outgoing(event_id=event_id, url=url, body=body)

    def _scenario(self, number: str, *texts: str | None) -> Scenario:
        words = list(self._scripted.get(number, ()))
        for text in texts:
            words.extend(scenario_words(text))
        try:
            return Scenario.from_words(words)
        except ValueError as problem:
            raise InvalidPaymentRequest(str(problem)) from None

    def _fail_first_call_if_unavailable(self, number: str, scenario: Scenario, what: str) -> None:
        if scenario.call == "unavailable" and number not in self._first_call_failed:
            self._first_call_failed.add(number)
            raise ProviderUnavailable(
                f"sandbox: the {what} call could not connect (the order was not taken)", reference=number
            )

    def _fail_first_call_if_timeout(self, number: str, scenario: Scenario, what: str) -> None:
        if scenario.call == "timeout" and number not in self._first_call_failed:
            self._first_call_failed.add(number)
            raise ProviderUnavailable(f"sandbox: the {what} call timed out (the order WAS taken)", reference=number)

    def _service_state(self, plate: str) -> ServiceState:
        if plate in self._services:
            return self._services[plate]
        match = _SERVICE_WORDS.search(plate)
        return ServiceState(match.group(1)) if match else ServiceState.NORMAL

    def _fee(self, amount_fen: int) -> int:
        return int((Decimal(amount_fen) * self._fee_bps / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{self._random.getrandbits(80):020x}"


def _failed(code: str, message: str) -> ProviderReply:
    return ProviderReply(status=ReplyStatus.FAILED, failure_code=code, failure_message=message)


def _reply(status: OrderStatus, reference: str, failure_code: str | None) -> ProviderReply:
    mapped = {OrderStatus.SUCCEEDED: ReplyStatus.SUCCEEDED, OrderStatus.FAILED: ReplyStatus.FAILED}
    return ProviderReply(
        status=mapped.get(status, ReplyStatus.ACCEPTED), provider_reference=reference, failure_code=failure_code
    )
