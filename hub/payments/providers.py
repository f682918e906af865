"""The payment providers of this process. `PAYMENT_PROVIDER` chooses the one new payments use (`sandbox` by
default); the sandbox keeps its books in memory, so one instance serves the whole process (API and worker in
`make run`, and in tests, which install theirs with an httpx client on the app itself). WeChat Pay is built from
its `WECHATPAY_*` settings on first use; the app and the worker check at start-up that the configured providers
can be built, so a missing key stops the process with a plain message instead of failing the first payment."""

from __future__ import annotations

from pathlib import Path

import httpx

from connectors.payments import PaymentProvider
from connectors.payments.sandbox import SandboxProvider
from connectors.payments.wechatpay import WeChatPayConfig, WeChatPayProvider
from hub.config import Settings, get_settings

# Connector formats of provider callbacks, by provider name (tenants' connectors of these formats authenticate
# with the provider's own signature: the provider's `parse_callback`).
FORMAT_OF_PROVIDER = {"sandbox": "sandbox_pay", "wechatpay": "wechatpay_v3"}
PROVIDER_OF_FORMAT = {fmt: name for name, fmt in FORMAT_OF_PROVIDER.items()}
# Calls to a provider give up after this long; the payment stays in its outbox state and the sweep asks again.
PROVIDER_TIMEOUT_SECONDS = 10

_installed: dict[str, PaymentProvider] = {}


class ProviderNotConfigured(LookupError):
    """A provider this process is asked to use cannot be built from its settings; the message says what to set."""


def install(provider: PaymentProvider) -> None:
    """Use `provider` for its name in this process (tests install a sandbox calling back into the app)."""
    _installed[provider.name] = provider


def uninstall(name: str) -> None:
    _installed.pop(name, None)


def default_name() -> str:
    return get_settings().payment_provider


def get(name: str | None = None) -> PaymentProvider:
    name = name or default_name()
    provider = _installed.get(name)
    if provider is None:
        provider = build(name, get_settings())
        _installed[name] = provider
    return provider


def for_format(fmt: str) -> PaymentProvider:
    return get(PROVIDER_OF_FORMAT[fmt])


def build(name: str, settings: Settings) -> PaymentProvider:
    client = httpx.AsyncClient(timeout=PROVIDER_TIMEOUT_SECONDS)
    if name == "sandbox":
        return SandboxProvider(secret=settings.payment_sandbox_secret, client=client)
    if name == "wechatpay":
        return WeChatPayProvider(wechatpay_config(settings), client)
    known = ", ".join(FORMAT_OF_PROVIDER)
    raise ProviderNotConfigured(f"unknown payment provider {name!r} (known: {known})")


def check_configured(settings: Settings) -> None:
    """Build (and keep) every provider the settings name, so start-up fails plainly on a bad configuration."""
    for name in {settings.payment_provider, settings.settlement_provider}:
        if name not in _installed:
            _installed[name] = build(name, settings)


def wechatpay_config(settings: Settings) -> WeChatPayConfig:
    """WeChat Pay's merchant configuration from the `WECHATPAY_*` settings, every problem named at once."""
    required = {
        "WECHATPAY_MCHID": settings.wechatpay_mchid,
        "WECHATPAY_APPID": settings.wechatpay_appid,
        "WECHATPAY_MERCHANT_SERIAL_NO": settings.wechatpay_merchant_serial_no,
        "WECHATPAY_PRIVATE_KEY_FILE": settings.wechatpay_private_key_file,
        "WECHATPAY_APIV3_KEY": settings.wechatpay_apiv3_key,
        "WECHATPAY_PLATFORM_KEYS": settings.wechatpay_platform_keys,
    }
    problems = [f"{variable} is not set" for variable, value in required.items() if not value.strip()]
    platform_files: dict[str, Path] = {}
    for item in filter(None, (part.strip() for part in settings.wechatpay_platform_keys.split(","))):
        serial, _, path = item.partition("=")
        if not serial.strip() or not path.strip():
            problems.append(f"WECHATPAY_PLATFORM_KEYS item {item!r} is not SERIAL=/path/to/key.pem")
        else:
            platform_files[serial.strip()] = Path(path.strip())
    files = dict(platform_files)
    if settings.wechatpay_private_key_file.strip():
        files["private key"] = Path(settings.wechatpay_private_key_file.strip())
    problems += [f"cannot read the {what} file {path}" for what, path in files.items() if not path.is_file()]
    if problems:
        raise ProviderNotConfigured("WeChat Pay is not configured: " + "; ".join(problems))
    try:
        return WeChatPayConfig.from_pem(
            mchid=settings.wechatpay_mchid.strip(),
            appid=settings.wechatpay_appid.strip(),
            merchant_serial_no=settings.wechatpay_merchant_serial_no.strip(),
            merchant_private_key_pem=files["private key"].read_bytes(),
            apiv3_key=settings.wechatpay_apiv3_key,
            platform_keys_pem={serial: path.read_bytes() for serial, path in platform_files.items()},
            base_url=settings.wechatpay_base_url,
        )
    except (ValueError, TypeError) as error:  # not a key of the right kind, an APIv3 key of the wrong length
        raise ProviderNotConfigured(f"WeChat Pay is not configured: {error}") from error
