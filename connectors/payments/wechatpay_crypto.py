"""WeChat Pay API v3 cryptography: request signatures, response and callback verification, resource decryption.

- Requests: the merchant signs `METHOD\\nPATH_WITH_QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n` with its API private key
  (RSA 2048, SHA-256, PKCS#1 v1.5) and sends `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="...",
  nonce_str="...",signature="...",timestamp="...",serial_no="..."` (serial_no: the merchant certificate's serial).
  PATH_WITH_QUERY is the request target exactly as sent, percent-encoding included; BODY is empty for a GET.
- Responses and callbacks: WeChat Pay signs `TIMESTAMP\\nNONCE\\nBODY\\n` with its platform key and sends
  `Wechatpay-Timestamp`, `Wechatpay-Nonce`, `Wechatpay-Signature` (base64) and `Wechatpay-Serial`, which names
  the key: a platform certificate's serial, or a WeChat Pay public key id (`PUB_KEY_ID_...`). ParkHub holds the
  platform keys it trusts by that name, refuses unknown names, bad signatures, and timestamps more than 5 minutes
  away from its clock (a replayed or badly delayed message).
- Callback resources are encrypted with AEAD_AES_256_GCM under the merchant's 32-byte APIv3 key: the 12-byte
  `nonce` and the `associated_data` are sent as text, `ciphertext` is base64 of ciphertext + 16-byte tag.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME = "WECHATPAY2-SHA256-RSA2048"
AEAD_ALGORITHM = "AEAD_AES_256_GCM"
TOLERANCE_SECONDS = 5 * 60
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class WeChatSignatureError(Exception):
    """A response or callback is not authentic; `reason` says why, `code` is a stable word for it."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WeChatDecryptionError(Exception):
    """A resource could not be decrypted: wrong APIv3 key, or nonce/associated data/ciphertext changed."""


def load_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """The merchant's API private key (apiclient_key.pem, PKCS#8 or PKCS#1 PEM)."""
    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant private key must be an RSA key")
    return key


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """A platform key: a WeChat Pay public key PEM (`-----BEGIN PUBLIC KEY-----`), or a platform certificate."""
    data = pem.encode() if isinstance(pem, str) else pem
    if b"BEGIN CERTIFICATE" in data:
        key = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("a WeChat Pay platform key must be an RSA public key")
    return key


def new_nonce() -> str:
    """32 random characters of [0-9A-Z], the shape WeChat Pay's own SDKs use."""
    return secrets.token_hex(16).upper()


def request_message(method: str, target: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    return f"{method.upper()}\n{target}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def rsa_sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64 of the RSA SHA-256 PKCS#1 v1.5 signature of `message`."""
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def rsa_verify(public_key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def authorization(
    *,
    mchid: str,
    serial_no: str,
    private_key: rsa.RSAPrivateKey,
    method: str,
    target: str,
    body: bytes,
    timestamp: int,
    nonce: str,
) -> str:
    """The `Authorization` header value for one request (`target`: path and query exactly as sent)."""
    signature = rsa_sign(private_key, request_message(method, target, timestamp, nonce, body))
    return (
        f'{SCHEME} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


def verify_signed(
    platform_keys: Mapping[str, rsa.RSAPublicKey], headers: Mapping[str, str], body: bytes, now: datetime
) -> str:
    """Check a response's or callback's `Wechatpay-*` headers over `body`; returns the serial of the key that
    signed it. `headers` may use any case. Raises WeChatSignatureError naming what is wrong."""
    lowered = {name.lower(): value for name, value in headers.items()}
    names = ("wechatpay-timestamp", "wechatpay-nonce", "wechatpay-signature", "wechatpay-serial")
    missing = [name for name in names if not lowered.get(name)]
    if missing:
        raise WeChatSignatureError(
            "missing_signature", f"missing header{'s' if len(missing) > 1 else ''}: " + ", ".join(missing)
        )
    timestamp = lowered["wechatpay-timestamp"].strip()
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WeChatSignatureError("bad_timestamp", "Wechatpay-Timestamp is not a number of seconds since the epoch")
    current = int((now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp())
    if int(timestamp) < current - TOLERANCE_SECONDS:
        raise WeChatSignatureError(
            "stale_timestamp", "Wechatpay-Timestamp is more than 5 minutes old: stale or replayed"
        )
    if int(timestamp) > current + TOLERANCE_SECONDS:
        raise WeChatSignatureError("future_timestamp", "Wechatpay-Timestamp is more than 5 minutes in the future")
    serial = lowered["wechatpay-serial"].strip()
    key = platform_keys.get(serial)
    if key is None:
        raise WeChatSignatureError(
            "unknown_serial", f"Wechatpay-Serial {serial[:64]!r} names no platform key ParkHub trusts"
        )
    message = response_message(timestamp, lowered["wechatpay-nonce"], body)
    if not rsa_verify(key, message, lowered["wechatpay-signature"].strip()):
        raise WeChatSignatureError(
            "bad_signature", "Wechatpay-Signature does not match: the body or headers were changed"
        )
    return serial


def check_apiv3_key(key: str | bytes) -> bytes:
    raw = key.encode("utf-8") if isinstance(key, str) else key
    if len(raw) != 32:
        raise ValueError("the APIv3 key must be exactly 32 bytes")
    return raw


def decrypt_resource(apiv3_key: bytes, resource: Mapping[str, object]) -> bytes:
    """The plaintext of a callback's `resource` (AEAD_AES_256_GCM). Raises WeChatDecryptionError."""
    algorithm = resource.get("algorithm")
    if algorithm != AEAD_ALGORITHM:
        raise WeChatDecryptionError(f"resource.algorithm {algorithm!r} is not {AEAD_ALGORITHM}")
    nonce, associated, ciphertext = (resource.get(name) for name in ("nonce", "associated_data", "ciphertext"))
    if not isinstance(nonce, str) or not isinstance(ciphertext, str):
        raise WeChatDecryptionError("resource.nonce and resource.ciphertext must be text")
    if associated is not None and not isinstance(associated, str):
        raise WeChatDecryptionError("resource.associated_data must be text")
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise WeChatDecryptionError("resource.ciphertext is not base64") from None
    try:
        return AESGCM(apiv3_key).decrypt(nonce.encode("utf-8"), sealed, (associated or "").encode("utf-8"))
    except (InvalidTag, ValueError):
        raise WeChatDecryptionError(
            "resource could not be decrypted: wrong APIv3 key, or the resource was changed"
        ) from None


def encrypt_resource(apiv3_key: bytes, plaintext: bytes, *, nonce: str, associated_data: str) -> dict[str, str]:
    """The `resource` object WeChat Pay would send for `plaintext` (used by the offline fake server in tests
    and by anyone building fixtures): the inverse of `decrypt_resource`."""
    sealed = AESGCM(apiv3_key).encrypt(nonce.encode("utf-8"), plaintext, associated_data.encode("utf-8"))
    return {
        "algorithm": AEAD_ALGORITHM,
        "ciphertext": base64.b64encode(sealed).decode("ascii"),
        "nonce": nonce,
        "associated_data": associated_data,
    }


def jsapi_pay_sign(private_key: rsa.RSAPrivateKey, *, appid: str, timestamp: int, nonce: str, package: str) -> str:
    """`paySign` for the payer's app (wx.requestPayment, WeixinJSBridge), over
    `appId\\ntimeStamp\\nnonceStr\\npackage\\n`."""
    return rsa_sign(private_key, f"{appid}\n{timestamp}\n{nonce}\n{package}\n".encode())
