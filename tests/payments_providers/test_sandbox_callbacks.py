"""Reading the sandbox's callbacks (signature, replay window, malformed bodies) and its daily bill."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from connectors.payments import CallbackRejected, ProviderEventKind
from connectors.payments.sandbox import SandboxProvider
from connectors.payments.sandbox_delivery import CallbackRecorder
from connectors.signatures import generate_secret, sign
from tests.payments_providers.support import charge, refund

SECRET = generate_secret()
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def signed(body: dict | bytes, *, secret: str = SECRET, at: datetime = NOW, webhook_id: str = "evt_1") -> tuple:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    timestamp = int(at.timestamp())
    headers = {
        "Webhook-Id": webhook_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": sign(secret, webhook_id, timestamp, raw),
    }
    return headers, raw


def callback(**data: object) -> dict:
    fields: dict[str, object] = {
        "out_trade_no": "PAY0000001",
        "reference": "sbx_pay_1",
        "amount": "15.00",
        "currency": "CNY",
        "occurred_at": "2026-11-21T07:59:58Z",
    }
    return {"id": "evt_1", "type": "payment_succeeded", "created_at": "2026-11-21T08:00:00Z", "data": fields | data}


@pytest.fixture
def sandbox() -> SandboxProvider:
    return SandboxProvider(secret=SECRET, client=CallbackRecorder().client())


def test_a_signed_callback_is_read_with_any_header_case(sandbox: SandboxProvider) -> None:
    [event] = sandbox.parse_callback(*signed(callback()), NOW)
    assert (event.event_id, event.kind, event.amount_fen) == ("evt_1", ProviderEventKind.PAYMENT_SUCCEEDED, 1500)
    assert event.occurred_at == datetime(2026, 11, 21, 7, 59, 58, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        (lambda h, b: (h, b.replace(b"15.00", b"1500.00")), "invalid_signature", "no signature matches"),
        (lambda h, b: ({**h, "Webhook-Id": "evt_2"}, b), "invalid_signature", "no signature matches"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "Webhook-Signature"}, b), "invalid_signature", "missing"),
    ],
    ids=["tampered body", "replayed under another id", "unsigned"],
)
def test_tampered_or_unsigned_callbacks_are_rejected(sandbox: SandboxProvider, change, error: str, words: str) -> None:
    headers, body = change(*signed(callback()))
    with pytest.raises(CallbackRejected) as rejected:
        sandbox.parse_callback(headers, body, NOW)
    assert (rejected.value.status, rejected.value.error) == (401, error)
    assert words in rejected.value.message


def test_stale_wrong_key_and_future_callbacks_are_rejected(sandbox: SandboxProvider) -> None:
    for headers, body, now in (
        (*signed(callback()), NOW + timedelta(minutes=6)),  # stale
        (*signed(callback()), NOW - timedelta(minutes=6)),  # from the future
        (*signed(callback(), secret=generate_secret()), NOW),
    ):
        with pytest.raises(CallbackRejected) as rejected:
            sandbox.parse_callback(headers, body, now)
        assert rejected.value.status == 401
    assert "5 minutes old" in _message(sandbox, *signed(callback()), NOW + timedelta(minutes=6))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (callback(amount="15.001"), "more than two decimals"),
        (callback(amount=15.0), "decimal string"),
        (callback(amount="1e3"), "exponent"),
        (callback(occurred_at="2026-11-21T07:59:58"), "no time zone"),
        ({**callback(), "type": "payment_exploded"}, "not a sandbox event type"),
        ({**callback(), "id": "evt_other"}, "not the webhook-id"),
        ({**callback(), "data": []}, "expected"),
        (b"not json", "not JSON"),
    ],
)
def test_malformed_callbacks_are_rejected_with_the_reason(sandbox: SandboxProvider, body, words: str) -> None:
    with pytest.raises(CallbackRejected) as rejected:
        sandbox.parse_callback(*signed(body), NOW)
    assert (rejected.value.status, rejected.value.error) == (400, "malformed_payload")
    assert words in rejected.value.message
    assert rejected.value.as_json() == {"error": "malformed_payload", "message": rejected.value.message}


async def test_the_daily_bill_lists_captures_and_refunds_of_the_local_day_with_fees() -> None:
    clock = {"now": datetime(2026, 11, 20, 15, 59, tzinfo=UTC)}  # 23:59 in Shanghai, 20 November
    recorder = CallbackRecorder()
    sandbox = SandboxProvider(secret=SECRET, client=recorder.client(), clock=lambda: clock["now"], fee_bps=60)

    await sandbox.charge(charge("PAY0000030", 1000))  # the 20th, local time
    clock["now"] = datetime(2026, 11, 20, 16, 1, tzinfo=UTC)  # 00:01 on the 21st in Shanghai
    await sandbox.charge(charge("PAY0000031", 2550, payer="sandbox:lost"))  # in the bill, callback or not
    await sandbox.charge(charge("PAY0000032", 999, payer="sandbox:fail"))  # failed: not in the bill
    await sandbox.refund(refund("REF0000030", "PAY0000030", 250, 1000))
    await sandbox.drain()

    assert [(r.kind, r.out_trade_no) for r in sandbox.records_for_day(date(2026, 11, 20))] == [
        ("payment", "PAY0000030")
    ]
    bill = sandbox.records_for_day(date(2026, 11, 21))
    assert [(r.kind, r.out_trade_no, r.out_refund_no, r.amount_fen, r.fee_fen) for r in bill] == [
        ("payment", "PAY0000031", None, 2550, 15),  # 15.3 fen, rounded half up
        ("refund", "PAY0000030", "REF0000030", 250, -2),  # 1.5 fen returned, rounded half up
    ]
    assert [r.net_fen for r in bill] == [2535, -248]
    await sandbox.aclose()


def _message(sandbox: SandboxProvider, headers: dict, body: bytes, now: datetime) -> str:
    with pytest.raises(CallbackRejected) as rejected:
        sandbox.parse_callback(headers, body, now)
    return rejected.value.message
