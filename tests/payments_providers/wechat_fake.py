"""An offline WeChat Pay v3 for the adapter's tests, faithful where it matters.

- It VERIFIES every request's `Authorization: WECHATPAY2-SHA256-RSA2048 ...` with the merchant's public key over
  `METHOD\\nTARGET\\nTIMESTAMP\\nNONCE\\nBODY\\n` (401 SIGN_ERROR, unsigned, when it does not verify), and checks
  the merchant number, the certificate serial and the 5-minute window.
- It answers in the real formats (field names, rfc3339 +08:00 times, integer fen, {"code", "message"} errors)
  and signs its answers with a test platform key (`Wechatpay-*` headers), as WeChat Pay does.
- `faults` makes the next answers misbehave: a timeout, a broken connection, a 500, a tampered body, a key
  ParkHub does not know, a stale timestamp.
- `notification(...)` writes callbacks in the real format: JSON with id, create_time, event_type,
  resource_type, summary and an AEAD_AES_256_GCM-encrypted resource, signed like an answer.

TEST KEYS ONLY: every key here is generated when the tests run and never leaves the process.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.payments import wechatpay_crypto as crypto
from connectors.payments.wechatpay import WeChatPayConfig
from connectors.payments.wechatpay_formats import BEIJING

BASE_URL = "https://api.mch.weixin.qq.com"
MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PLATFORM_SERIAL = "PUB_KEY_ID_0119000001092026112100000000000001"
APIV3_KEY = b"TEST-ONLY-apiv3-key-0123456789ab"  # 32 bytes, test only
NOTIFY_URL = "https://parkhub.example/callbacks/wechatpay"
_AUTHORIZATION = re.compile(r'WECHATPAY2-SHA256-RSA2048 ((?:[a-z_]+="[^"]*",?)+)')
_PLATE_COLORS = {"BLUE", "GREEN", "YELLOW", "BLACK", "WHITE", "LIMEGREEN"}


@dataclass(frozen=True)
class KeySet:
    merchant: rsa.RSAPrivateKey
    platform: rsa.RSAPrivateKey
    stranger: rsa.RSAPrivateKey  # a key nobody trusts


@cache
def generated_keys() -> KeySet:
    def generate() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    return KeySet(merchant=generate(), platform=generate(), stranger=generate())


def config(*, merchant_key: rsa.RSAPrivateKey | None = None, apiv3_key: bytes = APIV3_KEY) -> WeChatPayConfig:
    keys = generated_keys()
    return WeChatPayConfig(
        mchid=MCHID,
        appid=APPID,
        merchant_serial_no=MERCHANT_SERIAL,
        merchant_private_key=merchant_key or keys.merchant,
        apiv3_key=apiv3_key,
        platform_keys={PLATFORM_SERIAL: keys.platform.public_key()},
        base_url=BASE_URL,
    )


def beijing(moment: datetime) -> str:
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def signed_headers(
    body: bytes,
    *,
    key: rsa.RSAPrivateKey | None = None,
    serial: str = PLATFORM_SERIAL,
    at: datetime | None = None,
) -> dict[str, str]:
    timestamp = str(int((at or datetime.now(UTC)).timestamp()))
    nonce = crypto.new_nonce()
    signature = crypto.rsa_sign(key or generated_keys().platform, crypto.response_message(timestamp, nonce, body))
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def notification(
    event_type: str,
    resource: dict[str, Any],
    *,
    notification_id: str | None = None,
    apiv3_key: bytes = APIV3_KEY,
    key: rsa.RSAPrivateKey | None = None,
    serial: str = PLATFORM_SERIAL,
    at: datetime | None = None,
    summary: str = "支付成功",
) -> tuple[dict[str, str], bytes]:
    """Headers and body of one callback as WeChat Pay sends it."""
    moment = at or datetime.now(UTC)
    associated = "transaction" if event_type.startswith("TRANSACTION") else event_type.split(".")[0].lower()
    envelope = {
        "id": notification_id or f"EV-{secrets.token_hex(10)}",
        "create_time": beijing(moment),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            **crypto.encrypt_resource(
                apiv3_key, orjson.dumps(resource), nonce=secrets.token_hex(6), associated_data=associated
            ),
            "original_type": associated,
        },
    }
    body = orjson.dumps(envelope)
    return signed_headers(body, key=key, serial=serial, at=moment), body


@dataclass
class FakeWeChatPay:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    parkings: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)  # plate -> NORMAL | PAUSE | OUT_SERVICE
    faults: list[str | int] = field(default_factory=list)
    seen: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)  # method, target, body

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport)

    def settle(self, out_trade_no: str, state: str = "SUCCESS", description: str | None = None) -> dict[str, Any]:
        """WeChat finished collecting: the order's state changes (as a later query and callback tell)."""
        order = self.orders[out_trade_no]
        order["trade_state"] = state
        if state == "SUCCESS":
            order["success_time"] = beijing(datetime.now(UTC))
            order["user_repaid"] = "N"
        if description:
            order["trade_state_description"] = description
        return order

    def handle(self, request: httpx.Request) -> httpx.Response:
        fault = self.faults.pop(0) if self.faults else None
        if fault == "timeout":
            raise httpx.ReadTimeout("the fake timed out", request=request)
        if fault == "disconnect":
            raise httpx.RemoteProtocolError("the fake hung up", request=request)
        raw_body = request.read()
        target = request.url.raw_path.decode("ascii")
        body = orjson.loads(raw_body) if raw_body else None
        self.seen.append((request.method, target, body))

        problem = self._authenticate(request, target, raw_body)
        if problem:  # WeChat does not sign the answer to a request it could not authenticate
            return httpx.Response(401, json={"code": "SIGN_ERROR", "message": problem})
        if fault == 429:  # refused before anything was done
            status, answer = 429, {"code": "FREQUENCY_LIMITED", "message": "频率超限"}
        else:
            status, answer = self._route(request, body)
        if isinstance(fault, int) and fault >= 500:  # done, but the answer is lost in an error
            status, answer = fault, {"code": "SYSTEM_ERROR", "message": "系统错误"}
        content = orjson.dumps(answer)
        if fault == "unknown_serial":
            headers = signed_headers(content, key=generated_keys().stranger, serial="PUB_KEY_ID_SOMEONE_ELSE")
        elif fault == "stale":
            headers = signed_headers(content, at=datetime.now(UTC) - timedelta(minutes=10))
        else:
            headers = signed_headers(content)
        if fault == "tamper":
            content = content.replace(b"ACCEPTED", b"SUCCESS").replace(b'"total":', b'"total":1')
        headers |= {"Content-Type": "application/json", "Request-ID": secrets.token_hex(12)}
        return httpx.Response(status, content=content, headers=headers)

    # -- the checks WeChat Pay makes of every request ------------------------------------------------------------

    def _authenticate(self, request: httpx.Request, target: str, body: bytes) -> str | None:
        match = _AUTHORIZATION.fullmatch(request.headers.get("authorization", ""))
        if match is None:
            return "Authorization is not WECHATPAY2-SHA256-RSA2048 with quoted parameters"
        params = dict(re.findall(r'([a-z_]+)="([^"]*)"', match.group(1)))
        if set(params) != {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}:
            return f"Authorization parameters are {sorted(params)}"
        if params["mchid"] != MCHID or params["serial_no"] != MERCHANT_SERIAL:
            return "unknown merchant or certificate serial"
        if abs(int(params["timestamp"]) - datetime.now(UTC).timestamp()) > 300:
            return "timestamp outside the 5-minute window"
        message = crypto.request_message(request.method, target, int(params["timestamp"]), params["nonce_str"], body)
        if not crypto.rsa_verify(generated_keys().merchant.public_key(), message, params["signature"]):
            return "signature does not verify with the merchant certificate"
        if request.headers.get("accept") != "application/json":
            return "Accept must be application/json"
        return None

    # -- the API -------------------------------------------------------------------------------------------------

    def _route(self, request: httpx.Request, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        path, query = request.url.path, dict(request.url.params)
        if request.method == "GET" and path == "/v3/vehicle/parking/services/find":
            return self._find_service(query)
        if request.method == "POST" and path == "/v3/vehicle/parking/parkings":
            return self._create_parking(body or {})
        if request.method == "POST" and path == "/v3/vehicle/transactions/parking":
            return self._deduct(body or {})
        if request.method == "POST" and path in ("/v3/pay/transactions/jsapi", "/v3/pay/transactions/native"):
            return self._prepay(path.rsplit("/", 1)[1], body or {})
        if request.method == "GET" and path.startswith("/v3/vehicle/transactions/out-trade-no/"):
            return self._query(path.rsplit("/", 1)[1], vehicle=True)
        if request.method == "GET" and path.startswith("/v3/pay/transactions/out-trade-no/"):
            if query.get("mchid") != MCHID:
                return _error(400, "PARAM_ERROR", "mchid is required")
            return self._query(path.rsplit("/", 1)[1], vehicle=False)
        if request.method == "POST" and path == "/v3/refund/domestic/refunds":
            return self._refund(body or {})
        if request.method == "GET" and path.startswith("/v3/refund/domestic/refunds/"):
            refund = self.refunds.get(path.rsplit("/", 1)[1])
            return (200, refund) if refund else _error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return _error(404, "NOT_FOUND", f"no such API: {request.method} {path}")

    def _find_service(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if query.get("appid") != APPID or not query.get("openid") or query.get("plate_color") not in _PLATE_COLORS:
            return _error(400, "PARAM_ERROR", "appid, openid, plate_number and plate_color are required")
        plate = query["plate_number"]
        state = self.services.get(plate, "NORMAL")
        answer = {"plate_number": plate, "plate_color": query["plate_color"], "openid": query["openid"]}
        answer |= {"service_state": state}
        if state != "OUT_SERVICE":
            answer["service_open_time"] = "2026-01-15T10:43:39+08:00"
        return 200, answer

    def _create_parking(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        required = ("out_parking_no", "plate_number", "plate_color", "notify_url", "start_time", "parking_name")
        if any(not body.get(name) for name in required) or not isinstance(body.get("free_duration"), int):
            return _error(400, "PARAM_ERROR", "a required field is missing")
        if not body["notify_url"].startswith("https://"):
            return _error(400, "PARAM_ERROR", "notify_url must be HTTPS")
        blocked = self.services.get(body["plate_number"], "NORMAL") != "NORMAL"
        entry = {"id": f"5K8264ILTK{secrets.token_hex(5).upper()}", **{name: body[name] for name in required[:3]}}
        entry |= {"start_time": body["start_time"], "parking_name": body["parking_name"]}
        entry |= {"free_duration": body["free_duration"], "state": "BLOCKED" if blocked else "NORMAL"}
        if blocked:
            entry["block_reason"] = "PAUSE"
        self.parkings[entry["id"]] = entry
        return 200, entry

    def _deduct(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        info, amount = body.get("parking_info") or {}, body.get("amount") or {}
        if body.get("appid") != APPID or body.get("trade_scene") != "PARKING" or type(amount.get("total")) is not int:
            return _error(400, "PARAM_ERROR", "appid, trade_scene PARKING and an integer amount.total are required")
        if info.get("parking_id") not in self.parkings:
            return _error(400, "INVALID_REQUEST", "入场ID不存在")
        if self.parkings[info["parking_id"]]["state"] != "NORMAL":
            return _error(403, "RULE_LIMIT", "车牌状态不可用")
        existing = self.orders.get(body["out_trade_no"])
        if existing:
            return 200, existing
        order = {
            "appid": APPID,
            "sp_mchid": MCHID,
            "description": body["description"],
            "create_time": beijing(datetime.now(UTC)),
            "out_trade_no": body["out_trade_no"],
            "transaction_id": f"42000{secrets.randbelow(10**22):022d}",
            "trade_state": "ACCEPTED",
            "trade_state_description": "已接收,等待扣款",
            "trade_scene": "PARKING",
            "parking_info": info,
            "amount": {"total": amount["total"], "currency": amount.get("currency", "CNY")},
        }
        self.orders[body["out_trade_no"]] = order | {"kind": "vehicle"}
        return 200, order

    def _prepay(self, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("appid") != APPID or body.get("mchid") != MCHID or type(body["amount"].get("total")) is not int:
            return _error(400, "PARAM_ERROR", "appid, mchid and an integer amount.total are required")
        if kind == "jsapi" and not (body.get("payer") or {}).get("openid"):
            return _error(400, "PARAM_ERROR", "payer.openid is required for JSAPI")
        self.orders[body["out_trade_no"]] = {
            "kind": "pay",
            "appid": APPID,
            "mchid": MCHID,
            "out_trade_no": body["out_trade_no"],
            "trade_state": "NOTPAY",
            "trade_state_desc": "订单未支付",
            "amount": {"total": body["amount"]["total"], "currency": "CNY"},
        }
        if kind == "jsapi":
            return 200, {"prepay_id": f"wx{secrets.token_hex(14)}"}
        return 200, {"code_url": f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(6)}"}

    def _query(self, out_trade_no: str, *, vehicle: bool) -> tuple[int, dict[str, Any]]:
        order = self.orders.get(out_trade_no)
        if order is None or (order["kind"] == "vehicle") != vehicle:
            return _error(404, "ORDER_NOT_EXIST", "订单不存在")
        return 200, {name: value for name, value in order.items() if name != "kind"}

    def _refund(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        order = self.orders.get(body.get("out_trade_no", ""))
        amount = body.get("amount") or {}
        if order is None:
            return _error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if order["trade_state"] not in ("SUCCESS", "REFUND"):
            return _error(400, "INVALID_REQUEST", "订单未支付")
        if amount.get("total") != order["amount"]["total"]:
            return _error(400, "PARAM_ERROR", "订单金额与原订单不一致")
        refunded = sum(
            r["amount"]["refund"] for r in self.refunds.values() if r["out_trade_no"] == order["out_trade_no"]
        )
        if refunded + amount["refund"] > order["amount"]["total"]:
            return _error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        refund = {
            "refund_id": f"50300{secrets.randbelow(10**24):024d}",
            "out_refund_no": body["out_refund_no"],
            "transaction_id": order.get("transaction_id"),
            "out_trade_no": order["out_trade_no"],
            "channel": "ORIGINAL",
            "user_received_account": "招商银行信用卡0403",
            "create_time": beijing(datetime.now(UTC)),
            "status": "PROCESSING",
            "funds_account": "AVAILABLE",
            "amount": {
                "total": order["amount"]["total"],
                "refund": amount["refund"],
                "payer_total": order["amount"]["total"],
                "payer_refund": amount["refund"],
                "settlement_refund": amount["refund"],
                "settlement_total": order["amount"]["total"],
                "discount_refund": 0,
                "currency": "CNY",
            },
        }
        self.refunds[body["out_refund_no"]] = refund
        order["trade_state"] = "REFUND"
        return 200, refund


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message}
