"""WeChat Pay v3 words and shapes in ParkHub's terms: plate colors, trade and refund states, times, and the
decrypted callback resources turned into ProviderEvents. Pure functions, no I/O.

Trade states (`trade_state`), of the parking deductions (/v3/vehicle/transactions) and of ordinary payments
(/v3/pay/transactions):

| WeChat | ParkHub | meaning |
|---|---|---|
| SUCCESS | succeeded | paid (for Pay Score parking also when WeChat advanced the money: `user_repaid` N) |
| REFUND | succeeded | paid, then (partly) refunded: the refunds are separate orders |
| ACCEPT, ACCEPTED | accepted | deduction taken, WeChat is collecting |
| NOTPAY, USERPAYING | accepted | waiting for the payer |
| PAY_FAIL, PAYERROR | failed | the deduction or payment failed |
| CLOSED, REVOKED | failed | closed before it was paid |

Any other word reads as `accepted` (not final: ask again later) rather than guessing an outcome.
Refund states (`status` / `refund_status`): SUCCESS → succeeded, PROCESSING → accepted, CLOSED and ABNORMAL
(the money could not reach the payer; needs handling by hand) → failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.payments.base import (
    CallbackRejected,
    OrderStatus,
    PlateColor,
    ProviderEvent,
    ProviderEventKind,
    ReplyStatus,
    ServiceState,
)

# WeChat Pay writes its times in Beijing time (rfc3339 with +08:00); ParkHub sends them the same way.
BEIJING = ZoneInfo("Asia/Shanghai")

PLATE_COLORS: dict[PlateColor, str] = {
    PlateColor.BLUE: "BLUE",
    PlateColor.GREEN: "GREEN",
    PlateColor.YELLOW: "YELLOW",
    PlateColor.BLACK: "BLACK",
    PlateColor.WHITE: "WHITE",
    PlateColor.YELLOW_GREEN: "LIMEGREEN",
}
PLATE_COLORS_BACK = {wechat: ours for ours, wechat in PLATE_COLORS.items()}

TRADE_STATES: dict[str, OrderStatus] = {
    "SUCCESS": OrderStatus.SUCCEEDED,
    "REFUND": OrderStatus.SUCCEEDED,
    "ACCEPT": OrderStatus.ACCEPTED,
    "ACCEPTED": OrderStatus.ACCEPTED,
    "NOTPAY": OrderStatus.ACCEPTED,
    "USERPAYING": OrderStatus.ACCEPTED,
    "PAY_FAIL": OrderStatus.FAILED,
    "PAYERROR": OrderStatus.FAILED,
    "CLOSED": OrderStatus.FAILED,
    "REVOKED": OrderStatus.FAILED,
}
REFUND_STATES: dict[str, OrderStatus] = {
    "SUCCESS": OrderStatus.SUCCEEDED,
    "PROCESSING": OrderStatus.ACCEPTED,
    "CLOSED": OrderStatus.FAILED,
    "ABNORMAL": OrderStatus.FAILED,
}
SERVICE_STATES: dict[str, ServiceState] = {
    "NORMAL": ServiceState.NORMAL,
    "PAUSE": ServiceState.PAUSED,
    "OUT_SERVICE": ServiceState.NOT_ENABLED,
}
PARKING_STATES: dict[str, ServiceState] = {"NORMAL": ServiceState.NORMAL, "BLOCKED": ServiceState.BLOCKED}

PAYMENT_EVENTS: dict[str, ProviderEventKind] = {
    "TRANSACTION.SUCCESS": ProviderEventKind.PAYMENT_SUCCEEDED,
    "TRANSACTION.FAIL": ProviderEventKind.PAYMENT_FAILED,
    "TRANSACTION.PAY_BACK": ProviderEventKind.PAYMENT_REPAID,
}
REFUND_EVENTS: dict[str, ProviderEventKind] = {
    "REFUND.SUCCESS": ProviderEventKind.REFUND_SUCCEEDED,
    "REFUND.ABNORMAL": ProviderEventKind.REFUND_FAILED,
    "REFUND.CLOSED": ProviderEventKind.REFUND_FAILED,
}
SERVICE_EVENT = "VEHICLE.ENTRANCE_STATE_CHANGE"


def wechat_plate_color(color: PlateColor | str) -> str:
    return PLATE_COLORS[PlateColor(color)]


def wechat_time(moment: datetime) -> str:
    """rfc3339 in Beijing time, whole seconds: `2026-11-21T16:00:03+08:00`."""
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def parse_time(value: object) -> datetime | None:
    """A WeChat rfc3339 time as an aware UTC datetime; None when absent or not a time with an offset."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def trade_status(state: object) -> OrderStatus:
    return TRADE_STATES.get(state, OrderStatus.ACCEPTED) if isinstance(state, str) else OrderStatus.ACCEPTED


def refund_status(state: object) -> OrderStatus:
    return REFUND_STATES.get(state, OrderStatus.ACCEPTED) if isinstance(state, str) else OrderStatus.ACCEPTED


def reply_status(status: OrderStatus) -> ReplyStatus:
    return {
        OrderStatus.SUCCEEDED: ReplyStatus.SUCCEEDED,
        OrderStatus.FAILED: ReplyStatus.FAILED,
    }.get(status, ReplyStatus.ACCEPTED)


def fen(value: object, where: str) -> int:
    """An integer amount of fen as WeChat v3 sends it; anything else (a float, a string, a bool) is refused."""
    if type(value) is not int or value < 0:
        raise ValueError(f"{where} must be a non-negative integer number of fen")
    return value


def text(container: Mapping[str, Any], name: str) -> str | None:
    value = container.get(name)
    return value if isinstance(value, str) and value else None


def normalize_callback(envelope: Mapping[str, Any], resource: Mapping[str, Any]) -> list[ProviderEvent]:
    """The events of one authenticated, decrypted notification. Event types ParkHub does not act on give no
    events (the caller acknowledges them so WeChat stops resending). Raises CallbackRejected(400) when the
    resource lacks what its event type needs."""
    event_type = envelope["event_type"]
    event_id = envelope["id"]
    notified_at = parse_time(envelope.get("create_time"))
    raw = {**envelope, "resource": dict(resource)}
    try:
        if event_type in PAYMENT_EVENTS:
            return [_payment_event(event_id, PAYMENT_EVENTS[event_type], resource, notified_at, raw)]
        if event_type in REFUND_EVENTS:
            return [_refund_event(event_id, REFUND_EVENTS[event_type], resource, notified_at, raw)]
        if event_type == SERVICE_EVENT:
            return [_service_event(event_id, resource, notified_at, raw)]
    except ValueError as problem:
        raise CallbackRejected(400, "malformed_payload", f"{event_type} resource: {problem}") from None
    return []


def _payment_event(
    event_id: str,
    kind: ProviderEventKind,
    resource: Mapping[str, Any],
    notified_at: datetime | None,
    raw: dict[str, Any],
) -> ProviderEvent:
    out_trade_no = text(resource, "out_trade_no")
    if out_trade_no is None:
        raise ValueError("out_trade_no is missing")
    amount = resource.get("amount")
    if not isinstance(amount, Mapping):
        raise ValueError("amount is missing")
    total = fen(amount.get("total"), "amount.total")
    state = text(resource, "trade_state")
    if kind is ProviderEventKind.PAYMENT_SUCCEEDED and state not in (None, "SUCCESS"):
        raise ValueError(f"trade_state {state!r} in a TRANSACTION.SUCCESS notification")
    occurred_at = parse_time(resource.get("success_time")) or notified_at
    if occurred_at is None:
        raise ValueError("neither success_time nor create_time is an rfc3339 time")
    parking = resource.get("parking_info") if isinstance(resource.get("parking_info"), Mapping) else {}
    details = {
        "trade_state": state,
        "user_repaid": text(resource, "user_repaid"),
        "payer_total_fen": amount.get("payer_total"),
        "plate": text(parking, "plate_number"),
        "plate_color": PLATE_COLORS_BACK.get(text(parking, "plate_color") or ""),
        "parking_id": text(parking, "parking_id"),
        "sub_merchant": text(resource, "sub_mchid"),
    }
    failed = kind is ProviderEventKind.PAYMENT_FAILED
    return ProviderEvent(
        event_id=event_id,
        kind=kind,
        occurred_at=occurred_at,
        out_trade_no=out_trade_no,
        provider_reference=text(resource, "transaction_id"),
        amount_fen=total,
        currency=text(amount, "currency") or "CNY",
        failure_code=(state or "PAY_FAIL") if failed else None,
        failure_message=text(resource, "trade_state_description") if failed else None,
        details={name: value for name, value in details.items() if value is not None},
        raw=raw,
    )


def _refund_event(
    event_id: str,
    kind: ProviderEventKind,
    resource: Mapping[str, Any],
    notified_at: datetime | None,
    raw: dict[str, Any],
) -> ProviderEvent:
    out_refund_no = text(resource, "out_refund_no")
    out_trade_no = text(resource, "out_trade_no")
    if out_refund_no is None or out_trade_no is None:
        raise ValueError("out_refund_no and out_trade_no are required")
    amount = resource.get("amount")
    if not isinstance(amount, Mapping):
        raise ValueError("amount is missing")
    refunded = fen(amount.get("refund"), "amount.refund")
    status = text(resource, "refund_status")
    occurred_at = parse_time(resource.get("success_time")) or notified_at
    if occurred_at is None:
        raise ValueError("neither success_time nor create_time is an rfc3339 time")
    failed = kind is ProviderEventKind.REFUND_FAILED
    return ProviderEvent(
        event_id=event_id,
        kind=kind,
        occurred_at=occurred_at,
        out_trade_no=out_trade_no,
        out_refund_no=out_refund_no,
        provider_reference=text(resource, "refund_id"),
        amount_fen=refunded,
        currency=text(amount, "currency") or "CNY",
        failure_code=(status or "ABNORMAL") if failed else None,
        failure_message=None,
        details={
            name: value
            for name, value in {
                "refund_status": status,
                "transaction_id": text(resource, "transaction_id"),
                "user_received_account": text(resource, "user_received_account"),
                "payment_total_fen": amount.get("total"),
            }.items()
            if value is not None
        },
        raw=raw,
    )


def _service_event(
    event_id: str, resource: Mapping[str, Any], notified_at: datetime | None, raw: dict[str, Any]
) -> ProviderEvent:
    state = text(resource, "parking_state")
    if state not in PARKING_STATES:
        raise ValueError(f"parking_state {state!r} is not NORMAL or BLOCKED")
    occurred_at = parse_time(resource.get("state_update_time")) or notified_at
    if occurred_at is None:
        raise ValueError("neither state_update_time nor create_time is an rfc3339 time")
    details = {
        "parking_id": text(resource, "parking_id"),
        "out_parking_no": text(resource, "out_parking_no"),
        "plate": text(resource, "plate_number"),
        "plate_color": PLATE_COLORS_BACK.get(text(resource, "plate_color") or ""),
        "block_reason": text(resource, "blocked_state_description") or text(resource, "block_reason"),
    }
    return ProviderEvent(
        event_id=event_id,
        kind=ProviderEventKind.SERVICE_STATE,
        occurred_at=occurred_at,
        service_state=PARKING_STATES[state],
        details={name: value for name, value in details.items() if value is not None},
        raw=raw,
    )
