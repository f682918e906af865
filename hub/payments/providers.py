"""The payment providers of this process. `PAYMENT_PROVIDER` chooses the one new payments use (`sandbox` by
default); the sandbox keeps its books in memory, so one instance serves the whole process (API and worker in
`make run`, and in tests, which install theirs with an httpx client on the app itself)."""

from __future__ import annotations

import httpx

from connectors.payments import PaymentProvider
from connectors.payments.sandbox import SandboxProvider
from hub.config import get_settings

# Connector formats of provider callbacks, by provider name (tenants' connectors of these formats authenticate
# with the provider's own signature: the provider's `parse_callback`).
FORMAT_OF_PROVIDER = {"sandbox": "sandbox_pay", "wechatpay": "wechatpay_v3"}
PROVIDER_OF_FORMAT = {fmt: name for name, fmt in FORMAT_OF_PROVIDER.items()}

_installed: dict[str, PaymentProvider] = {}


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
        if name != "sandbox":
            raise LookupError(f"payment provider {name!r} is not configured in this process")
        settings = get_settings()
        provider = SandboxProvider(secret=settings.payment_sandbox_secret, client=httpx.AsyncClient(timeout=10))
        _installed[name] = provider
    return provider


def for_format(fmt: str) -> PaymentProvider:
    return get(PROVIDER_OF_FORMAT[fmt])
