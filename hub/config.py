"""Settings from the environment, with safe local defaults.

`DATABASE_URL` is the owner's connection (migrations, seeding, set-up). The API and the workers connect
with `APP_DATABASE_URL`, a role that neither owns the tables nor bypasses row-level security; when it is
not given it is derived from `DATABASE_URL` with the `parkhub_app` role.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DATABASE_URL = "postgresql://parkhub:parkhub@127.0.0.1:5432/parkhub"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
APP_ROLE = "parkhub_app"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


def with_user(url: str, user: str, password: str) -> str:
    """The same server and database as `url`, reached as another role."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def user_name(url: str) -> str:
    return urlsplit(url).username or "postgres"


def asyncpg_dsn(url: str) -> str:
    """A plain libpq-style DSN (asyncpg and psql both take it)."""
    parts = urlsplit(url)
    scheme = "postgresql"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def sqlalchemy_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, parts.query, parts.fragment))


def use_sibling_database(suffix: str) -> None:
    """Point this process's DATABASE_URL (and APP_DATABASE_URL, when given) at `<name><suffix>` on the same
    server, so tests and benchmarks never touch the development database."""
    base = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    name = database_name(base)
    if not name.endswith(suffix):
        os.environ["DATABASE_URL"] = with_database(base, f"{name}{suffix}")
    app_url = os.environ.get("APP_DATABASE_URL")
    if app_url and not database_name(app_url).endswith(suffix):
        os.environ["APP_DATABASE_URL"] = with_database(app_url, database_name(os.environ["DATABASE_URL"]))
    get_settings.cache_clear()


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = DEFAULT_DATABASE_URL
    app_database_url: str = field(default="")
    redis_url: str = DEFAULT_REDIS_URL
    host: str = "127.0.0.1"
    port: int = 8000
    db_pool_size: int = 20
    db_max_overflow: int = 10
    status_stale_after_seconds: int = 1800
    token_issuer: str = "parkhub"
    token_audience: str = "parkhub-api"
    token_ttl_seconds: int = 3600
    # Requests larger than this are refused before parsing (bulk imports of 10,000 spaces fit easily).
    max_request_bytes: int = 25 * 1024 * 1024
    # Where images that come with events (camera snapshots) are kept; events refer to them by content hash.
    media_dir: str = "var/media"
    # Where drivers' apps and the payment links printed at exit lanes point.
    public_url: str = "https://pay.parkhub.example"
    # The base URL payment providers call back to (`<payment_callback_url>/connectors/<id>`): the API as the provider
    # reaches it. Unset: the app's own address (PARKHUB_HOST, PARKHUB_PORT), so `make run`'s sandbox calls back into
    # the running app out of the box; a deployment sets PAYMENT_CALLBACK_URL to its public API address.
    payment_callback_url: str = "http://127.0.0.1:8000"
    # A barrier still holding this long after its decision becomes an exception for an agent.
    barrier_held_seconds: int = 120
    # The payment provider new payments use (`sandbox` or `wechatpay`), and the sandbox's callback signing secret.
    payment_provider: str = "sandbox"
    payment_sandbox_secret: str = "whsec_cGFya2h1Yi1zYW5kYm94LWRldi1zZWNyZXQtMzJi"
    # A payment or refund still open this long after its last change is asked about (query_payment) by the sweep.
    payment_sweep_after_seconds: int = 120
    # Daily settlement: the hub pays operators out (hub_collects), or the provider settles to them as sub-merchants
    # and the ledger shadows it (provider_direct, into provider_settled[settlement_provider]).
    settlement_mode: str = "hub_collects"
    settlement_provider: str = "sandbox"
    # WeChat Pay v3 (PAYMENT_PROVIDER=wechatpay): the merchant number and app id, the merchant API certificate's
    # serial and private key (a PEM file), the APIv3 key (32 characters) and WeChat Pay's platform public keys
    # (`SERIAL=/path/key.pem`, comma-separated: several during a key rotation). Empty until configured.
    wechatpay_mchid: str = ""
    wechatpay_appid: str = ""
    wechatpay_merchant_serial_no: str = ""
    wechatpay_private_key_file: str = ""
    wechatpay_apiv3_key: str = field(default="", repr=False)
    wechatpay_platform_keys: str = ""
    wechatpay_base_url: str = "https://api.mch.weixin.qq.com"

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def app_role(self) -> str:
        return user_name(self.app_database_url)


@lru_cache
def get_settings() -> Settings:
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    app_database_url = os.environ.get("APP_DATABASE_URL") or with_user(database_url, APP_ROLE, APP_ROLE)
    return Settings(
        env=os.environ.get("PARKHUB_ENV", "development"),
        database_url=database_url,
        app_database_url=app_database_url,
        redis_url=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
        host=os.environ.get("PARKHUB_HOST", "127.0.0.1"),
        port=_env_int("PARKHUB_PORT", 8000),
        db_pool_size=_env_int("PARKHUB_DB_POOL_SIZE", 20),
        db_max_overflow=_env_int("PARKHUB_DB_MAX_OVERFLOW", 10),
        status_stale_after_seconds=_env_int("PARKHUB_STATUS_STALE_AFTER_SECONDS", 1800),
        token_issuer=os.environ.get("PARKHUB_TOKEN_ISSUER", "parkhub"),
        token_audience=os.environ.get("PARKHUB_TOKEN_AUDIENCE", "parkhub-api"),
        token_ttl_seconds=_env_int("PARKHUB_TOKEN_TTL_SECONDS", 3600),
        media_dir=os.environ.get("PARKHUB_MEDIA_DIR", "var/media"),
        barrier_held_seconds=_env_int("PARKHUB_BARRIER_HELD_SECONDS", 120),
        payment_provider=os.environ.get("PAYMENT_PROVIDER") or "sandbox",
        payment_sandbox_secret=os.environ.get("PAYMENT_SANDBOX_SECRET")
        or "whsec_cGFya2h1Yi1zYW5kYm94LWRldi1zZWNyZXQtMzJi",
        payment_sweep_after_seconds=_env_int("PAYMENT_SWEEP_AFTER_SECONDS", 120),
        settlement_mode=os.environ.get("SETTLEMENT_MODE") or "hub_collects",
        settlement_provider=os.environ.get("SETTLEMENT_PROVIDER") or "sandbox",
        wechatpay_mchid=os.environ.get("WECHATPAY_MCHID", ""),
        wechatpay_appid=os.environ.get("WECHATPAY_APPID", ""),
        wechatpay_merchant_serial_no=os.environ.get("WECHATPAY_MERCHANT_SERIAL_NO", ""),
        wechatpay_private_key_file=os.environ.get("WECHATPAY_PRIVATE_KEY_FILE", ""),
        wechatpay_apiv3_key=os.environ.get("WECHATPAY_APIV3_KEY", ""),
        wechatpay_platform_keys=os.environ.get("WECHATPAY_PLATFORM_KEYS", ""),
        wechatpay_base_url=os.environ.get("WECHATPAY_BASE_URL") or "https://api.mch.weixin.qq.com",
        public_url=(os.environ.get("PARKHUB_PUBLIC_URL") or "https://pay.parkhub.example").rstrip("/"),
        payment_callback_url=(os.environ.get("PAYMENT_CALLBACK_URL") or _own_address()).rstrip("/"),
    )


def _own_address() -> str:
    """The address the app serves on (PARKHUB_HOST, PARKHUB_PORT), as a URL: a wildcard interface is reached on
    the loopback."""
    host = os.environ.get("PARKHUB_HOST", "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{_env_int('PARKHUB_PORT', 8000)}"
