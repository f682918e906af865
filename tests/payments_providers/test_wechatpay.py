"""The WeChat Pay v3 adapter against an offline WeChat Pay that verifies our signatures and signs its answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.payments import (
    ChargeRequest,
    DeductionRequest,
    InvalidPaymentRequest,
    OrderStatus,
    ParkingEntryRequest,
    PaymentProvider,
    ProviderError,
    ProviderUnavailable,
    RefundRequest,
    ReplyStatus,
    ServiceQuery,
    ServiceState,
)
from connectors.payments import wechatpay_crypto as crypto
from connectors.payments.wechatpay import ResponseNotAuthentic, WeChatPayProvider
from tests.payments_providers.support import STARTED
from tests.payments_providers.wechat_fake import APPID, NOTIFY_URL, FakeWeChatPay, config, generated_keys


@pytest.fixture
async def fake() -> FakeWeChatPay:
    return FakeWeChatPay()


@pytest.fixture
async def wechat(fake: FakeWeChatPay) -> AsyncIterator[WeChatPayProvider]:
    async with fake.client() as client:
        yield WeChatPayProvider(config(), client)


def entry(plate: str = "粤B888888", color: str = "blue") -> ParkingEntryRequest:
    return ParkingEntryRequest(
        out_parking_no="IN20261121000001",
        plate=plate,
        plate_color=color,
        started_at=STARTED,
        facility_name="欢乐海岸停车场",
        notify_url=NOTIFY_URL,
        free_minutes=15,
    )


def deduction(out_trade_no: str, parking_id: str, amount_fen: int = 888, **extra: object) -> DeductionRequest:
    return DeductionRequest(
        out_trade_no=out_trade_no,
        amount_fen=amount_fen,
        plate="粤B888888",
        plate_color="blue",
        parking_id=parking_id,
        started_at=STARTED,
        ended_at=STARTED + timedelta(hours=1, minutes=30),
        facility_name="欢乐海岸停车场",
        notify_url=NOTIFY_URL,
        **extra,  # type: ignore[arg-type]
    )


async def test_the_adapter_is_a_payment_provider(wechat: WeChatPayProvider) -> None:
    assert isinstance(wechat, PaymentProvider)
    assert wechat.name == "wechatpay"


async def test_a_plates_service_status(fake: FakeWeChatPay, wechat: WeChatPayProvider) -> None:
    query = ServiceQuery(plate="粤B888888", plate_color="blue", payer="oUpF8uMuAJOM2pxb1Q")
    status = await wechat.check_service(query)
    assert (status.state, status.plate_color) == (ServiceState.NORMAL, "blue")
    assert status.enabled_at is not None and status.enabled_at.utcoffset() == timedelta(0)

    method, target, _ = fake.seen[-1]
    assert method == "GET"
    assert unquote(target).startswith("/v3/vehicle/parking/services/find?appid=" + APPID)
    assert "plate_number=%E7%B2%A4B888888" in target  # signed exactly as sent, percent-encoded

    fake.services["粤B888888"] = "PAUSE"
    assert (await wechat.check_service(query)).state == ServiceState.PAUSED
    fake.services["粤B888888"] = "OUT_SERVICE"
    assert (await wechat.check_service(query)).state == ServiceState.NOT_ENABLED
    with pytest.raises(InvalidPaymentRequest, match="openid"):
        await wechat.check_service(ServiceQuery(plate="粤B888888", plate_color="blue"))


async def test_the_parking_flow_entry_deduction_query(fake: FakeWeChatPay, wechat: WeChatPayProvider) -> None:
    parking = await wechat.open_parking(entry())
    assert parking.state == ServiceState.NORMAL
    _, _, sent = fake.seen[-1]
    assert sent == {
        "out_parking_no": "IN20261121000001",
        "plate_number": "粤B888888",
        "plate_color": "BLUE",
        "notify_url": NOTIFY_URL,
        "start_time": "2026-11-21T16:00:00+08:00",
        "parking_name": "欢乐海岸停车场",
        "free_duration": 900,
    }

    reply = await wechat.deduct(deduction("PK20261121000001", parking.parking_id, profit_sharing=True))
    assert reply.status == ReplyStatus.ACCEPTED
    assert reply.provider_reference and reply.provider_reference.startswith("42000")
    _, target, sent = fake.seen[-1]
    assert target == "/v3/vehicle/transactions/parking"
    assert sent is not None
    assert (sent["amount"], sent["profit_sharing"], sent["trade_scene"]) == (
        {"total": 888, "currency": "CNY"},
        "Y",
        "PARKING",
    )
    assert sent["parking_info"] == {
        "parking_id": parking.parking_id,
        "plate_number": "粤B888888",
        "plate_color": "BLUE",
        "start_time": "2026-11-21T16:00:00+08:00",
        "end_time": "2026-11-21T17:30:00+08:00",
        "parking_name": "欢乐海岸停车场",
        "charging_duration": 5400,
    }

    accepted = await wechat.query_payment("PK20261121000001")
    assert (accepted.status, accepted.provider_state, accepted.amount_fen) == (OrderStatus.ACCEPTED, "ACCEPTED", 888)
    fake.settle("PK20261121000001")
    done = await wechat.query_payment("PK20261121000001")
    assert (done.status, done.provider_reference) == (OrderStatus.SUCCEEDED, reply.provider_reference)
    assert done.succeeded_at is not None
    fake.settle("PK20261121000001", "PAY_FAIL", "余额不足")
    failed = await wechat.query_payment("PK20261121000001")
    assert (failed.status, failed.failure_code, failed.failure_message) == (OrderStatus.FAILED, "PAY_FAIL", "余额不足")


async def test_blocked_entries_and_refusals_are_failed_replies(fake: FakeWeChatPay, wechat: WeChatPayProvider) -> None:
    fake.services["粤B888888"] = "PAUSE"
    parking = await wechat.open_parking(entry())
    assert (parking.state, parking.block_reason) == (ServiceState.BLOCKED, "PAUSE")
    refused = await wechat.deduct(deduction("PK20261121000002", parking.parking_id))
    assert (refused.status, refused.failure_code, refused.failure_message) == (
        ReplyStatus.FAILED,
        "RULE_LIMIT",
        "车牌状态不可用",
    )
    with pytest.raises(ProviderError, match="PARAM_ERROR"):
        await wechat.open_parking(
            ParkingEntryRequest(
                out_parking_no="IN2",
                plate="粤B888888",
                plate_color="green",
                started_at=STARTED,
                facility_name="P1",
                notify_url="http://not-https.example/cb",
            )
        )


async def test_unknown_outcomes_raise_provider_unavailable(fake: FakeWeChatPay, wechat: WeChatPayProvider) -> None:
    parking = await wechat.open_parking(entry())
    for fault in ("timeout", "disconnect", 500, 429):
        fake.faults.append(fault)
        with pytest.raises(ProviderUnavailable) as unknown:
            await wechat.deduct(deduction("PK20261121000003", parking.parking_id))
        assert (unknown.value.operation, unknown.value.reference) == ("deduct", "PK20261121000003")
    # The 500 above came after WeChat took the order: asking tells the truth.
    assert (await wechat.query_payment("PK20261121000003")).status == OrderStatus.ACCEPTED


@pytest.mark.parametrize("fault", ["tamper", "unknown_serial", "stale"])
async def test_answers_that_do_not_verify_are_not_believed(
    fake: FakeWeChatPay, wechat: WeChatPayProvider, fault: str
) -> None:
    parking = await wechat.open_parking(entry())
    fake.faults.append(fault)
    with pytest.raises(ResponseNotAuthentic, match="not authentic"):
        await wechat.deduct(deduction("PK20261121000004", parking.parking_id))


async def test_the_fake_refuses_requests_we_did_not_sign(fake: FakeWeChatPay) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with fake.client() as client:
        wrong = WeChatPayProvider(config(merchant_key=impostor), client)
        with pytest.raises(ProviderError) as refused:
            await wrong.check_service(ServiceQuery(plate="粤B888888", plate_color="blue", payer="o1"))
        assert (refused.value.code, refused.value.http_status) == ("SIGN_ERROR", 401)
        reply = await wrong.refund(_refund("RF20261121000009", "PK20261121000009", 1, 1))
        assert (reply.status, reply.failure_code) == (ReplyStatus.FAILED, "SIGN_ERROR")


async def test_one_off_charges_jsapi_and_native(fake: FakeWeChatPay, wechat: WeChatPayProvider) -> None:
    reply = await wechat.charge(
        ChargeRequest(
            out_trade_no="EX20261121000001",
            amount_fen=1500,
            description="Civic Centre P1 exit",
            notify_url=NOTIFY_URL,
            payer="oUpF8uMuAJOM2pxb1Q",
            expires_at=STARTED + timedelta(minutes=15),
        )
    )
    assert reply.status == ReplyStatus.ACCEPTED
    action = reply.client_action or {}
    assert action["appId"] == APPID and action["package"].startswith("prepay_id=wx") and action["signType"] == "RSA"
    message = f"{APPID}\n{action['timeStamp']}\n{action['nonceStr']}\n{action['package']}\n".encode()
    assert crypto.rsa_verify(generated_keys().merchant.public_key(), message, action["paySign"])
    _, target, sent = fake.seen[-1]
    assert target == "/v3/pay/transactions/jsapi"
    assert sent is not None and sent["time_expire"] == "2026-11-21T16:15:00+08:00"
    assert sent["payer"] == {"openid": "oUpF8uMuAJOM2pxb1Q"}

    native = await wechat.charge(
        ChargeRequest(out_trade_no="EX20261121000002", amount_fen=500, description="Bay A-17", notify_url=NOTIFY_URL)
    )
    assert (native.client_action or {})["code_url"].startswith("weixin://wxpay/bizpayurl")

    # Queries find one-off payments after the vehicle endpoint says it does not know them.
    order = await wechat.query_payment("EX20261121000001")
    assert (order.status, order.provider_state, order.amount_fen) == (OrderStatus.ACCEPTED, "NOTPAY", 1500)
    assert [target.split("?")[0] for _, target, _ in fake.seen[-2:]] == [
        "/v3/vehicle/transactions/out-trade-no/EX20261121000001",
        "/v3/pay/transactions/out-trade-no/EX20261121000001",
    ]
    missing = await wechat.query_payment("EX20261121999999")
    assert missing.status == OrderStatus.NOT_FOUND


async def test_refunds_partial_and_beyond_the_payment(fake: FakeWeChatPay, wechat: WeChatPayProvider) -> None:
    parking = await wechat.open_parking(entry())
    paid = await wechat.deduct(deduction("PK20261121000005", parking.parking_id, 1000))
    fake.settle("PK20261121000005")

    first = await wechat.refund(_refund("RF20261121000001", "PK20261121000005", 400, 1000))
    assert first.status == ReplyStatus.ACCEPTED
    assert first.provider_reference and first.provider_reference.startswith("50300")
    _, _, sent = fake.seen[-1]
    assert sent is not None and sent["amount"] == {"refund": 400, "total": 1000, "currency": "CNY"}

    too_much = await wechat.refund(_refund("RF20261121000002", "PK20261121000005", 601, 1000))
    assert (too_much.status, too_much.failure_code) == (ReplyStatus.FAILED, "INVALID_REQUEST")

    refund = await wechat.query_refund("RF20261121000001")
    assert (refund.status, refund.out_trade_no, refund.amount_fen) == (OrderStatus.ACCEPTED, "PK20261121000005", 400)
    fake.refunds["RF20261121000001"]["status"] = "SUCCESS"
    fake.refunds["RF20261121000001"]["success_time"] = "2026-11-21T16:45:00+08:00"
    refund = await wechat.query_refund("RF20261121000001")
    assert (refund.status, refund.succeeded_at and refund.succeeded_at.hour) == (OrderStatus.SUCCEEDED, 8)
    fake.refunds["RF20261121000001"]["status"] = "ABNORMAL"
    assert (await wechat.query_refund("RF20261121000001")).failure_code == "ABNORMAL"
    assert (await wechat.query_refund("RF20261121999999")).status == OrderStatus.NOT_FOUND

    # A payment that was refunded reads as captured: refunds are orders of their own.
    assert (await wechat.query_payment("PK20261121000005")).status == OrderStatus.SUCCEEDED
    assert paid.provider_reference == (await wechat.query_payment("PK20261121000005")).provider_reference


def _refund(out_refund_no: str, out_trade_no: str, amount_fen: int, total_fen: int) -> RefundRequest:
    return RefundRequest(
        out_refund_no=out_refund_no,
        out_trade_no=out_trade_no,
        amount_fen=amount_fen,
        total_fen=total_fen,
        reason="提前离场",
        notify_url=NOTIFY_URL,
    )
