"""WeChat Pay v3 callbacks in the real format: verified, decrypted, checked and normalized, or rejected clearly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from connectors.payments import CallbackRejected, ProviderEventKind, ServiceState
from connectors.payments.wechatpay import WeChatPayProvider
from tests.payments_providers.wechat_fake import (
    MCHID,
    PLATFORM_SERIAL,
    config,
    generated_keys,
    notification,
    signed_headers,
)

NOW = datetime(2026, 11, 21, 9, 0, 5, tzinfo=UTC)


def vehicle_transaction(**changes: Any) -> dict[str, Any]:
    """The decrypted resource of a Pay Score parking payment notification, as WeChat Pay documents it."""
    resource = {
        "appid": "wxd678efh567hg6787",
        "sp_mchid": MCHID,
        "out_trade_no": "PK20261121000001",
        "transaction_id": "4200001762202611211234567890",
        "trade_state": "SUCCESS",
        "trade_state_description": "扣款成功",
        "bank_type": "BPA",
        "success_time": "2026-11-21T17:00:01+08:00",
        "create_time": "2026-11-21T16:59:58+08:00",
        "user_repaid": "Y",
        "description": "停车场扣费",
        "trade_scene": "PARKING",
        "payer": {"openid": "oUpF8uN95-Ptaags6E_roPHg7AG0"},
        "amount": {"total": 888, "discount_total": 0, "payer_total": 888, "currency": "CNY"},
        "parking_info": {
            "parking_id": "5K8264ILTKCH16CQ250",
            "plate_number": "粤B888888",
            "plate_color": "BLUE",
            "start_time": "2026-11-21T15:30:00+08:00",
            "end_time": "2026-11-21T16:59:50+08:00",
            "parking_name": "欢乐海岸停车场",
            "charging_duration": 5390,
            "device_id": "12321",
        },
    }
    return resource | changes


def refund_resource(**changes: Any) -> dict[str, Any]:
    resource = {
        "mchid": MCHID,
        "transaction_id": "4200001762202611211234567890",
        "out_trade_no": "PK20261121000001",
        "refund_id": "50300908092026112112345678901",
        "out_refund_no": "RF20261121000001",
        "refund_status": "SUCCESS",
        "success_time": "2026-11-21T17:10:00+08:00",
        "user_received_account": "招商银行信用卡0403",
        "amount": {"total": 888, "refund": 300, "payer_total": 888, "payer_refund": 300},
    }
    return resource | changes


def entrance_state(state: str = "BLOCKED") -> dict[str, Any]:
    return {
        "sp_mchid": MCHID,
        "parking_id": "5K8264ILTKCH16CQ250",
        "out_parking_no": "IN20261121000001",
        "plate_number": "粤B888888",
        "plate_color": "LIMEGREEN",
        "start_time": "2026-11-21T15:30:00+08:00",
        "parking_name": "欢乐海岸停车场",
        "free_duration": 900,
        "parking_state": state,
        "blocked_state_description": "PAUSE" if state == "BLOCKED" else None,
        "state_update_time": "2026-11-21T16:20:35.120+08:00",
    }


@pytest.fixture
def wechat() -> WeChatPayProvider:
    return WeChatPayProvider(config(), httpx.AsyncClient())


def test_a_payment_success(wechat: WeChatPayProvider) -> None:
    headers, body = notification(
        "TRANSACTION.SUCCESS", vehicle_transaction(), notification_id="EV-2026112190001", at=NOW
    )
    [event] = wechat.parse_callback(headers, body, NOW)
    assert event.event_id == "EV-2026112190001"
    assert event.kind == ProviderEventKind.PAYMENT_SUCCEEDED
    assert (event.out_trade_no, event.provider_reference) == ("PK20261121000001", "4200001762202611211234567890")
    assert (event.amount_fen, event.currency) == (888, "CNY")
    assert event.occurred_at == datetime(2026, 11, 21, 9, 0, 1, tzinfo=UTC)
    assert event.details["plate"] == "粤B888888" and event.details["plate_color"] == "blue"
    assert event.details["user_repaid"] == "Y"
    assert event.raw["resource"]["trade_state"] == "SUCCESS"  # decrypted, kept for the inbox


def test_a_payment_failure_and_a_repayment(wechat: WeChatPayProvider) -> None:
    failed = vehicle_transaction(trade_state="PAY_FAIL", trade_state_description="余额不足", success_time=None)
    [event] = wechat.parse_callback(*notification("TRANSACTION.FAIL", failed, at=NOW), NOW)
    assert (event.kind, event.failure_code, event.failure_message) == (
        ProviderEventKind.PAYMENT_FAILED,
        "PAY_FAIL",
        "余额不足",
    )
    # No success_time: the notification's own time.
    assert event.occurred_at == NOW.replace(microsecond=0)

    [repaid] = wechat.parse_callback(*notification("TRANSACTION.PAY_BACK", vehicle_transaction(), at=NOW), NOW)
    assert repaid.kind == ProviderEventKind.PAYMENT_REPAID


def test_refund_outcomes(wechat: WeChatPayProvider) -> None:
    [paid] = wechat.parse_callback(*notification("REFUND.SUCCESS", refund_resource(), at=NOW), NOW)
    assert (paid.kind, paid.out_refund_no, paid.out_trade_no, paid.amount_fen, paid.currency) == (
        ProviderEventKind.REFUND_SUCCEEDED,
        "RF20261121000001",
        "PK20261121000001",
        300,
        "CNY",
    )
    assert paid.provider_reference == "50300908092026112112345678901"
    abnormal = refund_resource(refund_status="ABNORMAL", success_time=None)
    [failed] = wechat.parse_callback(*notification("REFUND.ABNORMAL", abnormal, at=NOW), NOW)
    assert (failed.kind, failed.failure_code) == (ProviderEventKind.REFUND_FAILED, "ABNORMAL")


def test_an_entry_blocked_then_usable(wechat: WeChatPayProvider) -> None:
    [blocked] = wechat.parse_callback(*notification("VEHICLE.ENTRANCE_STATE_CHANGE", entrance_state(), at=NOW), NOW)
    assert (blocked.kind, blocked.service_state) == (ProviderEventKind.SERVICE_STATE, ServiceState.BLOCKED)
    assert blocked.details == {
        "parking_id": "5K8264ILTKCH16CQ250",
        "out_parking_no": "IN20261121000001",
        "plate": "粤B888888",
        "plate_color": "yellow_green",
        "block_reason": "PAUSE",
    }
    assert blocked.occurred_at == datetime(2026, 11, 21, 8, 20, 35, 120000, tzinfo=UTC)
    normal = notification("VEHICLE.ENTRANCE_STATE_CHANGE", entrance_state("NORMAL"), at=NOW)
    assert wechat.parse_callback(*normal, NOW)[0].service_state == ServiceState.NORMAL


def test_event_types_parkhub_does_not_use_are_acknowledged_without_events(wechat: WeChatPayProvider) -> None:
    headers, body = notification("MCHTRANSFER.BILL.FINISHED", {"mchid": MCHID, "out_bill_no": "X1"}, at=NOW)
    assert wechat.parse_callback(headers, body, NOW) == []


def _rejection(
    wechat: WeChatPayProvider, headers: dict[str, str], body: bytes, now: datetime = NOW
) -> CallbackRejected:
    with pytest.raises(CallbackRejected) as rejected:
        wechat.parse_callback(headers, body, now)
    return rejected.value


def test_a_tampered_body_is_rejected(wechat: WeChatPayProvider) -> None:
    headers, body = notification("TRANSACTION.SUCCESS", vehicle_transaction(), at=NOW)
    envelope = orjson.loads(body)
    envelope["event_type"] = "TRANSACTION.FAIL"
    rejected = _rejection(wechat, headers, orjson.dumps(envelope))
    assert (rejected.status, rejected.error) == (401, "bad_signature")
    assert "does not match" in rejected.message


def test_a_wrong_serial_is_rejected(wechat: WeChatPayProvider) -> None:
    stranger = generated_keys().stranger
    headers, body = notification(
        "TRANSACTION.SUCCESS", vehicle_transaction(), key=stranger, serial="PUB_KEY_ID_X", at=NOW
    )
    rejected = _rejection(wechat, headers, body)
    assert (rejected.status, rejected.error) == (401, "unknown_serial")
    # A trusted serial with someone else's signature is no better.
    headers, body = notification(
        "TRANSACTION.SUCCESS", vehicle_transaction(), key=stranger, serial=PLATFORM_SERIAL, at=NOW
    )
    assert _rejection(wechat, headers, body).error == "bad_signature"


def test_a_stale_or_replayed_notification_is_rejected(wechat: WeChatPayProvider) -> None:
    headers, body = notification("TRANSACTION.SUCCESS", vehicle_transaction(), at=NOW - timedelta(minutes=6))
    rejected = _rejection(wechat, headers, body)
    assert (rejected.status, rejected.error) == (401, "stale_timestamp")
    assert "5 minutes" in rejected.message


def test_a_resource_under_another_apiv3_key_is_rejected(wechat: WeChatPayProvider) -> None:
    headers, body = notification("TRANSACTION.SUCCESS", vehicle_transaction(), apiv3_key=b"0" * 32, at=NOW)
    rejected = _rejection(wechat, headers, body)
    assert (rejected.status, rejected.error) == (400, "decryption_failed")
    assert "APIv3 key" in rejected.message


def test_a_notification_for_another_merchant_is_rejected(wechat: WeChatPayProvider) -> None:
    headers, body = notification("TRANSACTION.SUCCESS", vehicle_transaction(sp_mchid="1900000999"), at=NOW)
    assert _rejection(wechat, headers, body).error == "wrong_merchant"


@pytest.mark.parametrize(
    ("resource", "words"),
    [
        (vehicle_transaction(amount={"total": "8.88", "currency": "CNY"}), "amount.total"),
        (vehicle_transaction(amount={"total": 8.88, "currency": "CNY"}), "amount.total"),
        (vehicle_transaction(out_trade_no=None), "out_trade_no"),
        (vehicle_transaction(trade_state="PAY_FAIL"), "trade_state"),
    ],
)
def test_malformed_resources_are_rejected(wechat: WeChatPayProvider, resource: dict[str, Any], words: str) -> None:
    rejected = _rejection(wechat, *notification("TRANSACTION.SUCCESS", resource, at=NOW))
    assert (rejected.status, rejected.error) == (400, "malformed_payload")
    assert words in rejected.message


def test_envelopes_that_are_not_notifications_are_rejected(wechat: WeChatPayProvider) -> None:
    for body, words in ((b"[1]", "not a JSON object"), (b"{]", "not JSON"), (b'{"id": "EV-1"}', "event_type")):
        rejected = _rejection(wechat, signed_headers(body, at=NOW), body)
        assert (rejected.status, words in rejected.message) == (400, True)
    no_resource = orjson.dumps({"id": "EV-1", "event_type": "TRANSACTION.SUCCESS"})
    assert "resource" in _rejection(wechat, signed_headers(no_resource, at=NOW), no_resource).message
