"""Pure rules of tenancy: what a valid tenant, user, membership, OAuth client and connector look like, and how
client and connector secrets are made (client secrets also hashed and checked). No I/O here; every failure is
an `InvalidInput` naming its field."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import zoneinfo
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from connectors import signatures
from hub.errors import InvalidInput
from tenants.models import CONNECTOR_AUTH_MODES, CONNECTOR_FORMATS

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])$")
NAME_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 254
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces. Real proof of an
# address is a confirmation mail, not a regular expression.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

MIN_FEE_BPS = 0
MAX_FEE_BPS = 10_000

MEMBERSHIP_ROLES = ("operator_admin", "operator_staff")
CLIENT_KINDS = ("operator", "city", "connector", "platform")
# Kinds whose clients act for exactly one tenant (the others act city- or platform-wide).
TENANT_SCOPED_CLIENT_KINDS = ("operator", "connector")
DEFAULT_OPERATOR_CLIENT_ROLE = "operator_staff"

# What each kind of token may do, as OAuth scope strings. A client may ask for a subset.
SCOPES_BY_KIND: dict[str, tuple[str, ...]] = {
    "operator": ("operator",),
    "city": ("city:read",),
    "connector": ("connector:ingest",),
    "platform": ("platform",),
    "driver": ("driver",),
}

# Shenzhen, lon 113.75..114.65, lat 22.40..22.87: where a tenant may place supply unless told otherwise.
DEFAULT_SERVICE_AREA = MultiPolygon([box(113.75, 22.40, 114.65, 22.87)])

# ISO 4217 currencies in circulation (funds, precious metals and test codes left out: nobody pays for
# parking in them).
_ISO_4217_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
    GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
    NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG
    XOF XPF YER ZAR ZMW ZWG
    """
ISO_4217_CURRENCIES = frozenset(_ISO_4217_CODES.split())


def check_slug(slug: Any) -> str:
    """A tenant slug: 2..63 lowercase letters, digits and hyphens, starting and ending with a letter or digit."""
    if not isinstance(slug, str) or not SLUG_PATTERN.fullmatch(slug):
        raise InvalidInput(
            f"slug {slug!r} is not valid: use 2 to 63 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit",
            field="slug",
        )
    return slug


def check_name(name: Any, field: str = "name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{field} must not be empty", field=field)
    cleaned = name.strip()
    if len(cleaned) > NAME_MAX_LENGTH:
        raise InvalidInput(f"{field} is longer than {NAME_MAX_LENGTH} characters", field=field)
    return cleaned


def check_time_zone(time_zone: Any) -> str:
    """An IANA time zone name that this machine's zone database knows, e.g. Asia/Shanghai."""
    if not isinstance(time_zone, str) or not time_zone:
        raise InvalidInput("time_zone must be an IANA time zone name such as Asia/Shanghai", field="time_zone")
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, IsADirectoryError) as exc:
        raise InvalidInput(
            f"time_zone {time_zone!r} is not an IANA time zone name (e.g. Asia/Shanghai)", field="time_zone"
        ) from exc
    return time_zone


def check_currency(currency: Any) -> str:
    if not isinstance(currency, str) or currency not in ISO_4217_CURRENCIES:
        raise InvalidInput(
            f"currency {currency!r} is not an ISO 4217 currency code (three capital letters, e.g. CNY)",
            field="currency",
        )
    return currency


def check_fee_bps(fee_bps: Any) -> int:
    """The platform fee in basis points (60 = 0.6%), a whole number from 0 to 10000."""
    # bool is an int in Python; True must not silently become a 1 bp fee.
    if isinstance(fee_bps, bool) or not isinstance(fee_bps, int) or not MIN_FEE_BPS <= fee_bps <= MAX_FEE_BPS:
        raise InvalidInput(
            f"platform_fee_bps must be a whole number from {MIN_FEE_BPS} to {MAX_FEE_BPS}, got {fee_bps!r}",
            field="platform_fee_bps",
        )
    return fee_bps


def check_service_area(area: Any) -> MultiPolygon:
    """A valid, non-empty polygon or multipolygon in lon/lat degrees, returned as a MultiPolygon."""
    if not isinstance(area, BaseGeometry) or not isinstance(area, Polygon | MultiPolygon):
        raise InvalidInput("service_area must be a Polygon or MultiPolygon", field="service_area")
    if area.is_empty:
        raise InvalidInput("service_area is empty", field="service_area")
    if not area.is_valid:
        raise InvalidInput("service_area is not a valid polygon (it may intersect itself)", field="service_area")
    min_lon, min_lat, max_lon, max_lat = area.bounds
    if min_lon < -180 or max_lon > 180 or min_lat < -90 or max_lat > 90:
        raise InvalidInput(
            "service_area is outside lon -180..180 / lat -90..90 (coordinates go lon, lat)", field="service_area"
        )
    return area if isinstance(area, MultiPolygon) else MultiPolygon([area])


def normalize_email(email: Any) -> str:
    """The address as given, trimmed; addresses are compared case-insensitively elsewhere."""
    if not isinstance(email, str):
        raise InvalidInput("email must be text", field="email")
    cleaned = email.strip()
    if len(cleaned) > EMAIL_MAX_LENGTH or not EMAIL_PATTERN.fullmatch(cleaned):
        raise InvalidInput(f"email {email!r} is not a valid e-mail address", field="email")
    return cleaned


def check_membership_role(role: Any) -> str:
    if role not in MEMBERSHIP_ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(MEMBERSHIP_ROLES)}", field="role")
    return role


@dataclass(frozen=True)
class ClientShape:
    kind: str
    needs_tenant: bool
    role: str | None


def check_client_shape(kind: Any, *, has_tenant: bool, role: Any) -> ClientShape:
    """Operator and connector clients act for one tenant; city and platform clients for none. Only operator
    clients carry a membership role (least privilege, operator_staff, unless told otherwise)."""
    if kind not in CLIENT_KINDS:
        raise InvalidInput(f"kind {kind!r} is not one of {', '.join(CLIENT_KINDS)}", field="kind")
    needs_tenant = kind in TENANT_SCOPED_CLIENT_KINDS
    if needs_tenant and not has_tenant:
        raise InvalidInput(f"a {kind} client needs a tenant", field="tenant")
    if not needs_tenant and has_tenant:
        raise InvalidInput(f"a {kind} client acts for no single tenant; leave the tenant out", field="tenant")
    if kind == "operator":
        return ClientShape(kind, True, check_membership_role(role or DEFAULT_OPERATOR_CLIENT_ROLE))
    if role is not None:
        raise InvalidInput(f"a {kind} client takes no role", field="role")
    return ClientShape(kind, needs_tenant, None)


def granted_scopes(kind: str, requested: str | None) -> tuple[str, ...] | None:
    """The scopes a token of `kind` gets for an OAuth `scope` request: all of the kind's scopes when none
    are asked for, the asked ones when they are a subset, None when anything asked for is not allowed."""
    allowed = SCOPES_BY_KIND.get(kind, ())
    if requested is None or not requested.strip():
        return allowed
    asked = tuple(dict.fromkeys(requested.split()))
    if not set(asked) <= set(allowed):
        return None
    return asked


# Client secrets -------------------------------------------------------------------------------------------

SECRET_BYTES = 32
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
SCRYPT_MAXMEM = 64 * 1024 * 1024
HASH_SCHEME = "scrypt"


def generate_client_id(kind: str) -> str:
    return f"ph_{kind}_{secrets.token_hex(8)}"


def generate_secret() -> str:
    """256 random bits, URL-safe: fits an HTTP Basic header and a form field without escaping."""
    return secrets.token_urlsafe(SECRET_BYTES)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=SCRYPT_MAXMEM)


def hash_secret(secret: str) -> str:
    """`scrypt$n$r$p$salt$hash`: the parameters travel with the hash so they can be raised later."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    return f"{HASH_SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored_hash: str) -> bool:
    """Constant-time check of `secret` against a `hash_secret` result; False for anything unreadable."""
    try:
        scheme, n, r, p, salt, digest = stored_hash.split("$")
        if scheme != HASH_SCHEME:
            return False
        expected = _unb64(digest)
        actual = _scrypt(secret, _unb64(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def dummy_secret_hash() -> str:
    """Verified against when a client id is unknown, so the answer takes as long as for a known one and does
    not reveal which client ids exist. Made on first use: hashing costs tens of milliseconds."""
    return hash_secret(generate_secret())


# Connectors ------------------------------------------------------------------------------------------------

DEFAULT_CONNECTOR_AUTH_MODE = "signature"
CONNECTOR_SECRET_BYTES = 32
# After a rotation the previous secret keeps working this long, so senders can be re-configured without a gap.
DEFAULT_SECRET_OVERLAP_HOURS = 24
MAX_SECRET_OVERLAP_HOURS = 7 * 24


def check_connector_format(format: Any) -> str:
    if format not in CONNECTOR_FORMATS:
        raise InvalidInput(f"format {format!r} is not one of {', '.join(CONNECTOR_FORMATS)}", field="format")
    return format


def check_connector_auth_mode(auth_mode: Any) -> str:
    if auth_mode not in CONNECTOR_AUTH_MODES:
        raise InvalidInput(
            f"auth_mode {auth_mode!r} is not one of {', '.join(CONNECTOR_AUTH_MODES)}", field="auth_mode"
        )
    return auth_mode


def check_overlap_hours(hours: Any) -> timedelta:
    """How long the previous secrets stay valid after a rotation: 0 (at once) to 7 days, in hours."""
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours <= MAX_SECRET_OVERLAP_HOURS:
        raise InvalidInput(
            f"overlap_hours must be a number from 0 to {MAX_SECRET_OVERLAP_HOURS} (7 days), got {hours!r}",
            field="overlap_hours",
        )
    return timedelta(hours=hours)


def generate_connector_secret(auth_mode: str) -> str:
    """A new secret for a connector. Signature mode: a Standard Webhooks key ("whsec_" + base64 of 32 random
    bytes) that senders sign with. Secret mode: 256 random bits as a URL-safe token, which senders that cannot
    sign put in a header or query string as it is."""
    if check_connector_auth_mode(auth_mode) == "signature":
        return signatures.generate_secret()
    return secrets.token_urlsafe(CONNECTOR_SECRET_BYTES)
