"""WeChat Pay chosen by settings: the `WECHATPAY_*` variables build a provider whose requests WeChat Pay accepts and
whose answers it believes, and a missing or broken setting stops start-up with a message naming it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from connectors.payments import ServiceQuery, ServiceState
from connectors.payments.wechatpay import WeChatPayProvider
from hub.config import Settings
from hub.payments import providers
from tests.payments_providers.wechat_fake import (
    APIV3_KEY,
    APPID,
    BASE_URL,
    MCHID,
    MERCHANT_SERIAL,
    PLATFORM_SERIAL,
    FakeWeChatPay,
    generated_keys,
)


def write_keys(folder: Path) -> tuple[Path, Path]:
    keys = generated_keys()
    private = folder / "apiclient_key.pem"
    private.write_bytes(
        keys.merchant.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    platform = folder / "pub_key.pem"
    platform.write_bytes(
        keys.platform.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, platform


@pytest.fixture
def wechat_settings(tmp_path: Path) -> Settings:
    private, platform = write_keys(tmp_path)
    return Settings(
        payment_provider="wechatpay",
        wechatpay_mchid=MCHID,
        wechatpay_appid=APPID,
        wechatpay_merchant_serial_no=MERCHANT_SERIAL,
        wechatpay_private_key_file=str(private),
        wechatpay_apiv3_key=APIV3_KEY.decode(),
        wechatpay_platform_keys=f"{PLATFORM_SERIAL}={platform}",
        wechatpay_base_url=BASE_URL,
    )


async def test_the_configured_keys_sign_requests_and_verify_answers(wechat_settings: Settings) -> None:
    fake = FakeWeChatPay()  # refuses requests not signed by the merchant key, signs answers with the platform key
    async with fake.client() as client:
        wechat = WeChatPayProvider(providers.wechatpay_config(wechat_settings), client)
        status = await wechat.check_service(ServiceQuery(plate="粤B888888", plate_color="blue", payer="oUpF8u"))
    assert status.state == ServiceState.NORMAL
    assert fake.seen, "the request reached WeChat Pay"


def test_start_up_builds_the_configured_provider(wechat_settings: Settings) -> None:
    try:
        providers.check_configured(wechat_settings)
        assert isinstance(providers.get("wechatpay"), WeChatPayProvider)
    finally:
        providers.uninstall("wechatpay")


def test_nothing_configured_names_every_missing_variable() -> None:
    with pytest.raises(providers.ProviderNotConfigured) as refused:
        providers.check_configured(Settings(payment_provider="wechatpay"))
    for variable in (
        "WECHATPAY_MCHID",
        "WECHATPAY_APPID",
        "WECHATPAY_MERCHANT_SERIAL_NO",
        "WECHATPAY_PRIVATE_KEY_FILE",
        "WECHATPAY_APIV3_KEY",
        "WECHATPAY_PLATFORM_KEYS",
    ):
        assert f"{variable} is not set" in str(refused.value)
    assert "wechatpay" not in providers._installed


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"wechatpay_private_key_file": "/nonexistent/apiclient_key.pem"}, "cannot read the private key file"),
        ({"wechatpay_platform_keys": "no-equals-sign"}, "is not SERIAL=/path/to/key.pem"),
        ({"wechatpay_platform_keys": "SERIAL=/nonexistent.pem"}, "cannot read the SERIAL file"),
        ({"wechatpay_apiv3_key": "too-short"}, "exactly 32 bytes"),
    ],
)
def test_a_broken_setting_is_named(wechat_settings: Settings, change: dict[str, str], complaint: str) -> None:
    with pytest.raises(providers.ProviderNotConfigured, match=complaint):
        providers.wechatpay_config(dataclasses.replace(wechat_settings, **change))


def test_a_key_file_that_is_not_a_key_is_refused(wechat_settings: Settings, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(providers.ProviderNotConfigured, match="WeChat Pay is not configured"):
        providers.wechatpay_config(dataclasses.replace(wechat_settings, wechatpay_private_key_file=str(junk)))


def test_an_unknown_provider_is_refused() -> None:
    with pytest.raises(providers.ProviderNotConfigured, match="unknown payment provider 'alipay'"):
        providers.check_configured(Settings(payment_provider="alipay"))
