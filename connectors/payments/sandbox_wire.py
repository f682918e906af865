"""The sandbox's callback format: writing it (the sandbox's side) and reading it back (ParkHub's side).

One callback is one event, POSTed as JSON with Standard Webhooks headers (`webhook-id` is the event id).
Amounts are decimal strings in yuan, as several real providers write them, so that the exact conversion at
the edge (connectors.payments.money) is exercised on every callback:

    {"id": "evt_3f9c...", "type": "payment_succeeded", "created_at": "2026-11-21T08:00:01Z",
     "data": {"out_trade_no": "P20261121A0001", "out_refund_no": null, "reference": "sbx_pay_9a1e...",
              "amount": "15.00", "currency": "CNY", "occurred_at": "2026-11-21T08:00:01Z",
              "failure_code": null, "failure_message": null, "service_state": null, "details": {}}}

`type` is a ProviderEventKind value. `occurred_at` is when the thing happened at the provider; `created_at`
when the callback was written (a superseded event of the `reorder` outcome has an older `occurred_at`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors import signatures
from connectors.payments.base import CallbackRejected, ProviderEvent, ProviderEventKind, ServiceState
from connectors.payments.money import MoneyFormatError, decimal_to_fen

_TEXT_FIELDS = ("out_trade_no", "out_refund_no", "reference", "currency", "failure_code", "failure_message")


def encode(
    event_id: str, kind: ProviderEventKind, occurred_at: datetime, created_at: datetime, data: Mapping[str, Any]
) -> bytes:
    """The callback body; `data` gives the fields the event has (the others are written as null)."""
    complete: dict[str, Any] = dict.fromkeys(_TEXT_FIELDS)
    complete |= {"amount": None, "service_state": None, "details": {}, "occurred_at": iso(occurred_at)}
    complete |= data
    return orjson.dumps({"id": event_id, "type": kind.value, "created_at": iso(created_at), "data": complete})


def parse_callback(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> list[ProviderEvent]:
    """Verify (Standard Webhooks, 5-minute window) and read one sandbox callback. Raises CallbackRejected."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        webhook_id = signatures.verify([secret], lowered, body, now)
    except signatures.SignatureError as problem:
        raise CallbackRejected(401, "invalid_signature", problem.reason) from None
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise CallbackRejected(400, "malformed_payload", "the callback body is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
        raise CallbackRejected(400, "malformed_payload", 'expected {"id", "type", "data": {...}}')
    if message.get("id") != webhook_id:
        raise CallbackRejected(400, "malformed_payload", "the body's id is not the webhook-id")
    try:
        return [_event(message)]
    except (ValueError, TypeError) as problem:
        raise CallbackRejected(400, "malformed_payload", str(problem)) from None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event(message: dict[str, Any]) -> ProviderEvent:
    try:
        kind = ProviderEventKind(message.get("type"))
    except ValueError:
        raise ValueError(f"type {str(message.get('type'))[:40]!r} is not a sandbox event type") from None
    data = message["data"]
    occurred_text = data.get("occurred_at")
    if not isinstance(occurred_text, str):
        raise ValueError("data.occurred_at must be an ISO 8601 time")
    occurred_at = datetime.fromisoformat(occurred_text)
    if occurred_at.tzinfo is None:
        raise ValueError("data.occurred_at has no time zone")
    amount = data.get("amount")
    try:
        amount_fen = None if amount is None else decimal_to_fen(amount)
    except MoneyFormatError as problem:
        raise ValueError(f"data.amount: {problem}") from None
    texts = {name: data.get(name) for name in _TEXT_FIELDS}
    for name, value in texts.items():
        if value is not None and not isinstance(value, str):
            raise ValueError(f"data.{name} must be text")
    details = data.get("details") or {}
    if not isinstance(details, dict):
        raise ValueError("data.details must be an object")
    return ProviderEvent(
        event_id=message["id"],
        kind=kind,
        occurred_at=occurred_at.astimezone(UTC),
        out_trade_no=texts["out_trade_no"],
        out_refund_no=texts["out_refund_no"],
        provider_reference=texts["reference"],
        amount_fen=amount_fen,
        currency=texts["currency"],
        failure_code=texts["failure_code"],
        failure_message=texts["failure_message"],
        service_state=ServiceState(data["service_state"]) if data.get("service_state") else None,
        details=details,
        raw=message,
    )
