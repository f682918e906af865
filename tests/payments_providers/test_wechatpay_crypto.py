"""WeChat Pay v3 signatures and AEAD_AES_256_GCM, checked independently of the adapter."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.payments import wechatpay_crypto as crypto
from tests.payments_providers.wechat_fake import APIV3_KEY, PLATFORM_SERIAL, generated_keys, signed_headers

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def test_the_authorization_header_has_the_documented_shape_and_signs_the_documented_message() -> None:
    key = generated_keys().merchant
    header = crypto.authorization(
        mchid="1900009191",
        serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
        private_key=key,
        method="get",
        target="/v3/certificates",
        body=b"",
        timestamp=1554208460,
        nonce="593BEC0C930BF1AFEB40B4A08C8FB242",
    )
    match = re.fullmatch(
        r'WECHATPAY2-SHA256-RSA2048 mchid="1900009191",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",'
        r'signature="([A-Za-z0-9+/=]+)",timestamp="1554208460",serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"',
        header,
    )
    assert match is not None
    # The message of WeChat Pay's own example: method, target, timestamp, nonce, empty body, each line-ended.
    key.public_key().verify(
        base64.b64decode(match.group(1)),
        b"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n",
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_signed_answers_verify_and_name_their_key() -> None:
    body = b'{"trade_state":"ACCEPTED"}'
    keys = {PLATFORM_SERIAL: generated_keys().platform.public_key()}
    assert crypto.verify_signed(keys, signed_headers(body, at=NOW), body, NOW) == PLATFORM_SERIAL
    # Header names are case-insensitive.
    lowered = {name.lower(): value for name, value in signed_headers(body, at=NOW).items()}
    assert crypto.verify_signed(keys, lowered, body, NOW) == PLATFORM_SERIAL


@pytest.mark.parametrize(
    ("headers", "body", "now", "code"),
    [
        (lambda b: signed_headers(b, at=NOW), b'{"trade_state":"SUCCESS"}', NOW, "bad_signature"),
        (lambda b: signed_headers(b, at=NOW, serial="PUB_KEY_ID_X"), None, NOW, "unknown_serial"),
        (lambda b: signed_headers(b, at=NOW, key=generated_keys().stranger), None, NOW, "bad_signature"),
        (lambda b: signed_headers(b, at=NOW), None, NOW + timedelta(minutes=5, seconds=1), "stale_timestamp"),
        (lambda b: signed_headers(b, at=NOW), None, NOW - timedelta(minutes=6), "future_timestamp"),
        (lambda b: {}, None, NOW, "missing_signature"),
        (lambda b: signed_headers(b, at=NOW) | {"Wechatpay-Timestamp": "soon"}, None, NOW, "bad_timestamp"),
    ],
    ids=["changed body", "unknown serial", "untrusted key", "stale", "future", "unsigned", "bad timestamp"],
)
def test_unauthentic_answers_are_refused_with_the_reason(headers, body: bytes | None, now: datetime, code: str) -> None:
    original = b'{"trade_state":"ACCEPTED"}'
    keys = {PLATFORM_SERIAL: generated_keys().platform.public_key()}
    with pytest.raises(crypto.WeChatSignatureError) as refused:
        crypto.verify_signed(keys, headers(original), body or original, now)
    assert refused.value.code == code


def test_resources_decrypt_with_the_apiv3_key_only() -> None:
    resource = crypto.encrypt_resource(
        APIV3_KEY, b'{"out_trade_no":"P1"}', nonce="fdasflkja484", associated_data="transaction"
    )
    assert resource["algorithm"] == "AEAD_AES_256_GCM"
    assert crypto.decrypt_resource(APIV3_KEY, resource) == b'{"out_trade_no":"P1"}'
    # What WeChat Pay's documentation describes: AES-256-GCM, nonce and associated data as UTF-8, tag appended.
    sealed = base64.b64decode(resource["ciphertext"])
    assert AESGCM(APIV3_KEY).decrypt(b"fdasflkja484", sealed, b"transaction") == b'{"out_trade_no":"P1"}'

    with pytest.raises(crypto.WeChatDecryptionError, match="wrong APIv3 key"):
        crypto.decrypt_resource(b"x" * 32, resource)
    with pytest.raises(crypto.WeChatDecryptionError, match="wrong APIv3 key"):
        crypto.decrypt_resource(APIV3_KEY, resource | {"associated_data": "refund"})
    with pytest.raises(crypto.WeChatDecryptionError, match="not AEAD_AES_256_GCM"):
        crypto.decrypt_resource(APIV3_KEY, resource | {"algorithm": "AES_256_CBC"})
    with pytest.raises(crypto.WeChatDecryptionError, match="not base64"):
        crypto.decrypt_resource(APIV3_KEY, resource | {"ciphertext": "%%%"})


def test_keys_load_from_pem_and_the_apiv3_key_must_be_32_bytes() -> None:
    private = generated_keys().merchant
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert crypto.load_private_key(pem).public_key().public_numbers() == private.public_key().public_numbers()
    assert crypto.load_public_key(public_pem.decode()).public_numbers() == private.public_key().public_numbers()
    assert crypto.check_apiv3_key("0123456789abcdef0123456789abcdef") == b"0123456789abcdef0123456789abcdef"
    with pytest.raises(ValueError, match="32 bytes"):
        crypto.check_apiv3_key("too short")


def test_the_jsapi_pay_sign_covers_the_four_parameters() -> None:
    key = generated_keys().merchant
    signature = crypto.jsapi_pay_sign(
        key,
        appid="wx8888888888888888",
        timestamp=1414561699,
        nonce="5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
        package="prepay_id=wx201410272009395522657a690389285100",
    )
    message = (
        b"wx8888888888888888\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\n"
        b"prepay_id=wx201410272009395522657a690389285100\n"
    )
    assert crypto.rsa_verify(key.public_key(), message, signature)
