"""WeChat Pay API v3 adapter: Pay Score parking ("leave first, pay later"), one-off payments, and refunds.

The parking flow, as WeChat Pay designs it:
1. `check_service`: has this payer enabled auto-pay for this plate? (GET /v3/vehicle/parking/services/find)
2. `open_parking`: the car came in; WeChat answers with its entry id (POST /v3/vehicle/parking/parkings) and
   later tells of changes to the entry's state (VEHICLE.ENTRANCE_STATE_CHANGE callbacks).
3. `deduct`: the car left; WeChat accepts the deduction (trade_state ACCEPTED) and collects asynchronously
   (POST /v3/vehicle/transactions/parking), then calls back TRANSACTION.SUCCESS or TRANSACTION.FAIL.
4. `query_payment`: the truth about an order (GET /v3/vehicle/transactions/out-trade-no/{out_trade_no}, then the
   ordinary /v3/pay/transactions/out-trade-no/{out_trade_no} for one-off payments).

`charge` creates a one-off payment for the payer's app: JSAPI when the payer's openid is known (the answer
carries the signed parameters for wx.requestPayment), Native (a code_url to show as a QR code) otherwise.
Refunds use /v3/refund/domestic/refunds for both kinds.

In service-provider mode (`sub_merchant` set) the vehicle and refund calls carry `sub_mchid`, one-off payments
use the /v3/pay/partner/ paths. Every request is signed (see wechatpay_crypto); every answer below 500 is
verified against the platform keys before it is believed, except that an unsigned 4xx is accepted as a refusal
(WeChat does not sign the answer to a request it could not authenticate). A timeout, a 5xx, an unreadable or
unauthentic answer raise ProviderUnavailable: the outcome is unknown (see base.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.payments import wechatpay_crypto as crypto
from connectors.payments import wechatpay_formats as formats
from connectors.payments.base import (
    CallbackRejected,
    ChargeRequest,
    DeductionRequest,
    InvalidPaymentRequest,
    OrderStatus,
    ParkingEntry,
    ParkingEntryRequest,
    PlateColor,
    ProviderError,
    ProviderEvent,
    ProviderOrder,
    ProviderReply,
    ProviderUnavailable,
    RefundRequest,
    ReplyStatus,
    ServiceQuery,
    ServiceState,
    ServiceStatus,
)

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"


class ResponseNotAuthentic(ProviderUnavailable):
    """An answer whose signature did not verify: it cannot be believed, so the outcome is unknown."""


@dataclass(frozen=True, slots=True)
class WeChatPayConfig:
    mchid: str  # the merchant (or service provider) number
    appid: str  # the app the payers' openids belong to
    merchant_serial_no: str  # serial of the merchant API certificate whose private key signs requests
    merchant_private_key: rsa.RSAPrivateKey
    apiv3_key: bytes  # 32 bytes: decrypts callback resources
    # The keys WeChat Pay signs answers and callbacks with, by the name it sends in Wechatpay-Serial.
    platform_keys: Mapping[str, rsa.RSAPublicKey] = field(default_factory=dict)
    base_url: str = DEFAULT_BASE_URL

    @classmethod
    def from_pem(
        cls,
        *,
        mchid: str,
        appid: str,
        merchant_serial_no: str,
        merchant_private_key_pem: str | bytes,
        apiv3_key: str | bytes,
        platform_keys_pem: Mapping[str, str | bytes],
        base_url: str = DEFAULT_BASE_URL,
    ) -> WeChatPayConfig:
        return cls(
            mchid=mchid,
            appid=appid,
            merchant_serial_no=merchant_serial_no,
            merchant_private_key=crypto.load_private_key(merchant_private_key_pem),
            apiv3_key=crypto.check_apiv3_key(apiv3_key),
            platform_keys={serial: crypto.load_public_key(pem) for serial, pem in platform_keys_pem.items()},
            base_url=base_url.rstrip("/"),
        )


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        return str(self.body.get("code") or f"HTTP_{self.status}")

    @property
    def message(self) -> str:
        return str(self.body.get("message") or "")


class WeChatPayProvider:
    """The PaymentProvider for WeChat Pay v3. `client` is the caller's httpx.AsyncClient (its timeouts apply);
    `clock` gives "now" for checking answers' timestamps."""

    name = "wechatpay"

    def __init__(
        self,
        config: WeChatPayConfig,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        crypto.check_apiv3_key(config.apiv3_key)
        self._config = config
        self._client = client
        self._clock = clock or (lambda: datetime.now(UTC))

    # -- Pay Score parking -------------------------------------------------------------------------------------

    async def check_service(self, query: ServiceQuery) -> ServiceStatus:
        if not query.payer:
            raise InvalidPaymentRequest("WeChat Pay needs the payer's openid to check a plate's service")
        params = {
            "appid": self._config.appid,
            "sub_mchid": query.sub_merchant,
            "plate_number": query.plate,
            "plate_color": formats.wechat_plate_color(query.plate_color),
            "openid": query.payer,
        }
        answer = await self._call("GET", "/v3/vehicle/parking/services/find", params=params, operation="check_service")
        if not answer.ok:
            raise ProviderError(answer.code, answer.message, http_status=answer.status)
        state = formats.SERVICE_STATES.get(str(answer.body.get("service_state")), ServiceState.NOT_ENABLED)
        return ServiceStatus(
            plate=query.plate,
            plate_color=PlateColor(query.plate_color),
            state=state,
            enabled_at=formats.parse_time(answer.body.get("service_open_time")),
            raw=answer.body,
        )

    async def open_parking(self, request: ParkingEntryRequest) -> ParkingEntry:
        body = _without_none(
            {
                "sub_mchid": request.sub_merchant,
                "out_parking_no": request.out_parking_no,
                "plate_number": request.plate,
                "plate_color": formats.wechat_plate_color(request.plate_color),
                "notify_url": request.notify_url,
                "start_time": formats.wechat_time(request.started_at),
                "parking_name": request.facility_name,
                "free_duration": request.free_minutes * 60,
            }
        )
        answer = await self._call("POST", "/v3/vehicle/parking/parkings", body=body, operation="open_parking")
        if not answer.ok:
            raise ProviderError(answer.code, answer.message, http_status=answer.status)
        parking_id = formats.text(answer.body, "id")
        if parking_id is None:
            raise ProviderUnavailable("WeChat Pay's answer to the parking entry has no id", operation="open_parking")
        return ParkingEntry(
            parking_id=parking_id,
            out_parking_no=request.out_parking_no,
            state=formats.PARKING_STATES.get(str(answer.body.get("state")), ServiceState.BLOCKED),
            block_reason=formats.text(answer.body, "block_reason"),
            raw=answer.body,
        )

    async def deduct(self, request: DeductionRequest) -> ProviderReply:
        charging_seconds = int((request.ended_at - request.started_at).total_seconds())
        body = _without_none(
            {
                "appid": self._config.appid,
                "sub_mchid": request.sub_merchant,
                "description": request.description,
                "out_trade_no": request.out_trade_no,
                "trade_scene": "PARKING",
                "notify_url": request.notify_url,
                "profit_sharing": "Y" if request.profit_sharing else "N",
                "amount": {"total": request.amount_fen, "currency": request.currency},
                "parking_info": _without_none(
                    {
                        "parking_id": request.parking_id,
                        "plate_number": request.plate,
                        "plate_color": formats.wechat_plate_color(request.plate_color),
                        "start_time": formats.wechat_time(request.started_at),
                        "end_time": formats.wechat_time(request.ended_at),
                        "parking_name": request.facility_name,
                        "charging_duration": charging_seconds,
                        "device_id": request.device_id,
                    }
                ),
            }
        )
        answer = await self._call(
            "POST", "/v3/vehicle/transactions/parking", body=body, operation="deduct", reference=request.out_trade_no
        )
        if not answer.ok:
            return _refusal(answer)
        state = answer.body.get("trade_state")
        status = formats.trade_status(state)
        return ProviderReply(
            status=formats.reply_status(status),
            provider_reference=formats.text(answer.body, "transaction_id"),
            failure_code=str(state) if status is OrderStatus.FAILED else None,
            failure_message=formats.text(answer.body, "trade_state_description")
            if status is OrderStatus.FAILED
            else None,
            raw=answer.body,
        )

    # -- one-off payments and refunds --------------------------------------------------------------------------

    async def charge(self, request: ChargeRequest) -> ProviderReply:
        kind = "jsapi" if request.payer else "native"
        partner = request.sub_merchant is not None
        body: dict[str, Any] = {
            "description": request.description,
            "out_trade_no": request.out_trade_no,
            "time_expire": formats.wechat_time(request.expires_at) if request.expires_at else None,
            "notify_url": request.notify_url,
            "amount": {"total": request.amount_fen, "currency": request.currency},
        }
        if partner:
            body |= {"sp_appid": self._config.appid, "sp_mchid": self._config.mchid, "sub_mchid": request.sub_merchant}
            if request.payer:
                body["payer"] = {"sp_openid": request.payer}
            path = f"/v3/pay/partner/transactions/{kind}"
        else:
            body |= {"appid": self._config.appid, "mchid": self._config.mchid}
            if request.payer:
                body["payer"] = {"openid": request.payer}
            path = f"/v3/pay/transactions/{kind}"
        answer = await self._call(
            "POST", path, body=_without_none(body), operation="charge", reference=request.out_trade_no
        )
        if not answer.ok:
            return _refusal(answer)
        if kind == "jsapi":
            prepay_id = formats.text(answer.body, "prepay_id")
            if prepay_id is None:
                raise ProviderUnavailable("WeChat Pay's answer has no prepay_id", operation="charge")
            action = self._jsapi_parameters(prepay_id)
        else:
            code_url = formats.text(answer.body, "code_url")
            if code_url is None:
                raise ProviderUnavailable("WeChat Pay's answer has no code_url", operation="charge")
            action = {"code_url": code_url}
        return ProviderReply(status=ReplyStatus.ACCEPTED, client_action=action, raw=answer.body)

    async def refund(self, request: RefundRequest) -> ProviderReply:
        body = _without_none(
            {
                "sub_mchid": request.sub_merchant,
                "out_trade_no": request.out_trade_no,
                "out_refund_no": request.out_refund_no,
                "reason": request.reason,
                "notify_url": request.notify_url,
                "amount": {"refund": request.amount_fen, "total": request.total_fen, "currency": request.currency},
            }
        )
        answer = await self._call(
            "POST", "/v3/refund/domestic/refunds", body=body, operation="refund", reference=request.out_refund_no
        )
        if not answer.ok:
            return _refusal(answer)
        state = answer.body.get("status")
        status = formats.refund_status(state)
        return ProviderReply(
            status=formats.reply_status(status),
            provider_reference=formats.text(answer.body, "refund_id"),
            failure_code=str(state) if status is OrderStatus.FAILED else None,
            raw=answer.body,
        )

    async def query_payment(self, out_trade_no: str, *, sub_merchant: str | None = None) -> ProviderOrder:
        number = quote(out_trade_no, safe="")
        answer = await self._call(
            "GET",
            f"/v3/vehicle/transactions/out-trade-no/{number}",
            params={"sub_mchid": sub_merchant},
            operation="query_payment",
        )
        if answer.status == 404:
            if sub_merchant is None:
                path, params = f"/v3/pay/transactions/out-trade-no/{number}", {"mchid": self._config.mchid}
            else:
                path = f"/v3/pay/partner/transactions/out-trade-no/{number}"
                params = {"sp_mchid": self._config.mchid, "sub_mchid": sub_merchant}
            answer = await self._call("GET", path, params=params, operation="query_payment")
        if answer.status == 404:
            return ProviderOrder(status=OrderStatus.NOT_FOUND, out_trade_no=out_trade_no, provider_state=answer.code)
        if not answer.ok:
            raise ProviderError(answer.code, answer.message, http_status=answer.status)
        state = answer.body.get("trade_state")
        status = formats.trade_status(state)
        amount = answer.body.get("amount") if isinstance(answer.body.get("amount"), Mapping) else {}
        return ProviderOrder(
            status=status,
            out_trade_no=out_trade_no,
            provider_reference=formats.text(answer.body, "transaction_id"),
            amount_fen=_optional_fen(amount.get("total")),
            currency=formats.text(amount, "currency"),
            succeeded_at=formats.parse_time(answer.body.get("success_time"))
            if status is OrderStatus.SUCCEEDED
            else None,
            failure_code=str(state) if status is OrderStatus.FAILED else None,
            failure_message=formats.text(answer.body, "trade_state_description")
            if status is OrderStatus.FAILED
            else None,
            provider_state=state if isinstance(state, str) else None,
            raw=answer.body,
        )

    async def query_refund(self, out_refund_no: str, *, sub_merchant: str | None = None) -> ProviderOrder:
        answer = await self._call(
            "GET",
            f"/v3/refund/domestic/refunds/{quote(out_refund_no, safe='')}",
            params={"sub_mchid": sub_merchant},
            operation="query_refund",
        )
        if answer.status == 404:
            return ProviderOrder(
                status=OrderStatus.NOT_FOUND, out_trade_no=None, out_refund_no=out_refund_no, provider_state=answer.code
            )
        if not answer.ok:
            raise ProviderError(answer.code, answer.message, http_status=answer.status)
        state = answer.body.get("status")
        status = formats.refund_status(state)
        amount = answer.body.get("amount") if isinstance(answer.body.get("amount"), Mapping) else {}
        return ProviderOrder(
            status=status,
            out_trade_no=formats.text(answer.body, "out_trade_no"),
            out_refund_no=out_refund_no,
            provider_reference=formats.text(answer.body, "refund_id"),
            amount_fen=_optional_fen(amount.get("refund")),
            currency=formats.text(amount, "currency"),
            succeeded_at=formats.parse_time(answer.body.get("success_time"))
            if status is OrderStatus.SUCCEEDED
            else None,
            failure_code=str(state) if status is OrderStatus.FAILED else None,
            provider_state=state if isinstance(state, str) else None,
            raw=answer.body,
        )

    # -- callbacks ---------------------------------------------------------------------------------------------

    def parse_callback(self, headers: Mapping[str, str], body: bytes, now: datetime) -> list[ProviderEvent]:
        """Verify a notification's signature (known platform key, 5-minute window), decrypt its resource with
        the APIv3 key, check it is for this merchant, and normalize it (see wechatpay_formats)."""
        try:
            crypto.verify_signed(self._config.platform_keys, headers, body, now)
        except crypto.WeChatSignatureError as problem:
            raise CallbackRejected(401, problem.code, problem.reason) from None
        envelope = _json_object(body, "the notification")
        for name in ("id", "event_type"):
            if not isinstance(envelope.get(name), str) or not envelope[name]:
                raise CallbackRejected(400, "malformed_payload", f"the notification has no {name}")
        resource = envelope.get("resource")
        if not isinstance(resource, dict):
            raise CallbackRejected(400, "malformed_payload", "the notification has no resource object")
        try:
            plaintext = crypto.decrypt_resource(self._config.apiv3_key, resource)
        except crypto.WeChatDecryptionError as problem:
            raise CallbackRejected(400, "decryption_failed", str(problem)) from None
        decrypted = _json_object(plaintext, "the decrypted resource")
        merchant = decrypted.get("sp_mchid") or decrypted.get("mchid")
        if merchant is not None and merchant != self._config.mchid:
            raise CallbackRejected(400, "wrong_merchant", "the notification is for another merchant number")
        return formats.normalize_callback(envelope, decrypted)

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _jsapi_parameters(self, prepay_id: str) -> dict[str, str]:
        timestamp = int(self._clock().timestamp())
        nonce = crypto.new_nonce()
        package = f"prepay_id={prepay_id}"
        return {
            "appId": self._config.appid,
            "timeStamp": str(timestamp),
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": crypto.jsapi_pay_sign(
                self._config.merchant_private_key,
                appid=self._config.appid,
                timestamp=timestamp,
                nonce=nonce,
                package=package,
            ),
        }

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | None] | None = None,
        body: dict[str, Any] | None = None,
        operation: str,
        reference: str | None = None,
    ) -> _Answer:
        content = orjson.dumps(body) if body is not None else b""
        query = {name: value for name, value in (params or {}).items() if value is not None}
        headers = {"Accept": "application/json", "User-Agent": "ParkHub-WeChatPay/1"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = self._client.build_request(
            method, self._config.base_url + path, params=query or None, content=content, headers=headers
        )
        # The signature covers the request target exactly as it goes on the wire (percent-encoding included).
        target = request.url.raw_path.decode("ascii")
        request.headers["Authorization"] = crypto.authorization(
            mchid=self._config.mchid,
            serial_no=self._config.merchant_serial_no,
            private_key=self._config.merchant_private_key,
            method=method,
            target=target,
            body=content,
            timestamp=int(self._clock().timestamp()),
            nonce=crypto.new_nonce(),
        )
        try:
            response = await self._client.send(request)
            raw = await response.aread()
        except httpx.TimeoutException:
            raise ProviderUnavailable(
                f"WeChat Pay did not answer {operation} in time", operation=operation, reference=reference
            ) from None
        except httpx.TransportError as problem:
            raise ProviderUnavailable(
                f"WeChat Pay could not be reached for {operation}: {type(problem).__name__}",
                operation=operation,
                reference=reference,
            ) from None
        # 5xx: WeChat may or may not have acted. 429 (FREQUENCY_LIMITED): it did not, but the same request with
        # the same number is what the caller should send again later, exactly as after a timeout.
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(
                f"WeChat Pay answered {operation} with HTTP {response.status_code}",
                operation=operation,
                reference=reference,
            )
        signed = "wechatpay-signature" in response.headers
        if response.is_success or signed:
            try:
                crypto.verify_signed(self._config.platform_keys, response.headers, raw, self._clock())
            except crypto.WeChatSignatureError as problem:
                raise ResponseNotAuthentic(
                    f"WeChat Pay's answer to {operation} is not authentic: {problem.reason}",
                    operation=operation,
                    reference=reference,
                ) from None
        if not raw.strip():
            return _Answer(response.status_code, {})
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            if response.is_success:
                raise ProviderUnavailable(
                    f"WeChat Pay's answer to {operation} is not a JSON object", operation=operation, reference=reference
                )
            parsed = {}
        return _Answer(response.status_code, parsed)


def _refusal(answer: _Answer) -> ProviderReply:
    return ProviderReply(
        status=ReplyStatus.FAILED, failure_code=answer.code, failure_message=answer.message, raw=answer.body
    )


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _optional_fen(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CallbackRejected(400, "malformed_payload", f"{what} is not JSON") from None
    if not isinstance(parsed, dict):
        raise CallbackRejected(400, "malformed_payload", f"{what} is not a JSON object")
    return parsed
