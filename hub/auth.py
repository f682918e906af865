"""Access tokens: ES256 JWTs signed by the hub, verified on every request, published as a JWKS.

Keys live in `signing_keys` (written by the owner: set-up, `parkhub keys rotate`; read by the app role).
Each process holds a `KeyStore`: the parsed keys in memory, so verifying a token costs one signature check
and no database round trip. The newest active key signs. A rotation by another process is picked up when
this one meets a token with a kid it does not know (at most once per `unknown_kid_reload_seconds`) and on
a periodic refresh, so the new key is used for signing soon after it is created.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# authlib announces its jose module's move to joserfc on import; the API we use is kept until 2.0. Its
# warning module installs an "always" filter when first imported, so import it before silencing.
from authlib.deprecate import AuthlibDeprecationWarning
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from hub.config import Settings, get_settings
from hub.db import PLATFORM, Database, Scope
from hub.principal import ANONYMOUS_PRINCIPAL, OPERATOR_ROLES, Principal
from tenants import repository
from tenants.models import SigningKey
from tenants.rules import SCOPES_BY_KIND

with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import ECKey, JsonWebKey, JsonWebToken
    from authlib.jose.errors import BadSignatureError, DecodeError, JoseError, UnsupportedAlgorithmError

ALGORITHM = "ES256"
CURVE = "P-256"
TOKEN_KINDS = ("driver", "operator", "city", "connector", "platform")
LEEWAY_SECONDS = 30
KEY_REFRESH_SECONDS = 60.0
UNKNOWN_KID_RELOAD_SECONDS = 5.0
# Longer than any token we issue; guards the parser against absurd input.
MAX_TOKEN_LENGTH = 8192
# Clients reuse one token for its whole life: remembering recently verified tokens spares the signature
# check (most of the cost) on all but the first request. Bounded so made-up tokens cannot grow it.
VERIFIED_CACHE_SIZE = 4096

# Reasons a token is refused; they reach the client as `error_description`.
TOKEN_EXPIRED = "token expired"
TOKEN_NOT_YET_VALID = "token not yet valid"
BAD_SIGNATURE = "signature does not match"
WRONG_AUDIENCE = "wrong audience"
WRONG_ISSUER = "wrong issuer"
UNKNOWN_KEY = "unknown key"
UNSUPPORTED_ALGORITHM = "unsupported algorithm"
MALFORMED = "malformed"

_jwt = JsonWebToken([ALGORITHM])


class AuthError(Exception):
    """A credential that cannot be accepted. `reason` is one of the module's reason constants."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(self.description)

    @property
    def description(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason

    def response(self) -> JSONResponse:
        """RFC 6750: 401 with the reason in the body and in `WWW-Authenticate`."""
        # A quoted-string cannot hold a double quote; our descriptions never need one.
        quoted = self.description.replace("\\", "/").replace('"', "'")
        return JSONResponse(
            {"error": "invalid_token", "error_description": self.description},
            status_code=401,
            headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{quoted}"'},
        )


class NoSigningKey(RuntimeError):
    """No key may sign: the database has none that is active (run `parkhub keys rotate`)."""


@dataclass(frozen=True)
class _Key:
    kid: str
    verifier: ECKey
    signer: ECKey
    public_jwk: dict[str, Any]
    can_sign: bool
    not_after: float | None  # epoch seconds; None = published until retired

    def published(self, now: float) -> bool:
        return self.not_after is None or now < self.not_after


class _ParsedPublicKey(ECKey):
    """A public EC key parsed once. authlib's ECKey asks a public-only key for its private half on every
    verification and, finding none, re-parses the public key from its JWK each time."""

    def get_private_key(self) -> None:
        return None


def generate_signing_key() -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A fresh P-256 key: (kid, private JWK, public JWK). The kid is the RFC 7638 thumbprint."""
    key = JsonWebKey.generate_key("EC", CURVE, is_private=True)
    kid = key.thumbprint()
    common = {"kid": kid, "alg": ALGORITHM, "use": "sig"}
    return kid, {**key.as_dict(is_private=True), **common}, {**key.as_dict(is_private=False), **common}


def _import_key(key: SigningKey) -> _Key:
    signer = ECKey.import_key(dict(key.private_jwk))
    verifier = _ParsedPublicKey.import_key(dict(key.public_jwk))
    # Parse the raw key material now, once, rather than on every request.
    signer.get_private_key()
    verifier.load_raw_key()
    public_jwk = {k: v for k, v in key.public_jwk.items() if k in ("kty", "crv", "x", "y", "kid", "alg", "use")}
    return _Key(
        kid=key.kid,
        verifier=verifier,
        signer=signer,
        public_jwk=public_jwk,
        can_sign=key.retired_at is None,
        not_after=key.not_after.timestamp() if key.not_after else None,
    )


class KeyStore:
    """The signing and verification keys of this process."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        leeway_seconds: int = LEEWAY_SECONDS,
        refresh_after_seconds: float = KEY_REFRESH_SECONDS,
        unknown_kid_reload_seconds: float = UNKNOWN_KID_RELOAD_SECONDS,
    ) -> None:
        self.settings = settings or get_settings()
        self.leeway_seconds = leeway_seconds
        self.refresh_after_seconds = refresh_after_seconds
        self.unknown_kid_reload_seconds = unknown_kid_reload_seconds
        self._db: Database | None = None
        self._keys: dict[str, _Key] = {}
        self._signing: _Key | None = None
        self._loaded_at = float("-inf")
        self._unknown_kid_reloaded_at = float("-inf")
        self._lock = asyncio.Lock()
        # token -> (claims, kid) of tokens whose signature checked out against a key still in `_keys`.
        self._verified: dict[str, tuple[dict[str, Any], str]] = {}

    # Loading ------------------------------------------------------------------------------------------------

    async def load(self, db: Database) -> None:
        """Read every published key. Later reloads use the same database."""
        self._db = db
        async with db.transaction(Scope("auth")) as session:
            rows = await repository.list_published_signing_keys(session)
            imported = [_import_key(row) for row in rows]
        self._keys = {key.kid: key for key in imported}
        self._verified = {}
        # Rows come newest first: the first that may sign does.
        self._signing = next((key for key in imported if key.can_sign), None)
        self._loaded_at = time.monotonic()

    async def reload(self) -> None:
        if self._db is None:
            raise RuntimeError("KeyStore.load(db) must be called before it can reload")
        await self.load(self._db)

    async def refresh_if_stale(self) -> None:
        """Reload when the keys in memory are older than `refresh_after_seconds` (a cheap check otherwise)."""
        if self._db is None or time.monotonic() - self._loaded_at < self.refresh_after_seconds:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at >= self.refresh_after_seconds:
                await self.reload()

    @property
    def signing_kid(self) -> str | None:
        return self._signing.kid if self._signing else None

    # Signing ------------------------------------------------------------------------------------------------

    def sign(self, claims: Mapping[str, Any], *, ttl_seconds: int | None = None) -> str:
        """A signed token. `iss`, `aud`, `iat`, `exp` and `jti` are filled in unless `claims` gives them."""
        if self._signing is None:
            raise NoSigningKey("no active signing key: run `parkhub keys rotate` (or `parkhub db prepare`)")
        now = int(time.time())
        ttl = self.settings.token_ttl_seconds if ttl_seconds is None else ttl_seconds
        payload = {
            "iss": self.settings.token_issuer,
            "aud": self.settings.token_audience,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        header = {"alg": ALGORITHM, "kid": self._signing.kid, "typ": "JWT"}
        # check=False: authlib's scan for secrets in claims costs time and our claims never hold any.
        return _jwt.encode(header, payload, self._signing.signer, check=False).decode("ascii")

    # Verifying ----------------------------------------------------------------------------------------------

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token, checked against the keys in memory; AuthError otherwise."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise AuthError(MALFORMED)
        now = time.time()
        remembered = self._verified.get(token)
        if remembered is not None:
            claims, kid = remembered
            key = self._keys.get(kid)
            if key is not None and key.published(now):
                # The signature was checked; expiry and the rest depend on the time, so check them again.
                self._check_claims(claims, now)
                return dict(claims)

        used_kids: list[str] = []

        def key_for(header: Mapping[str, Any], _payload: Any) -> ECKey:
            kid = header.get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None or not key.published(now):
                raise AuthError(UNKNOWN_KEY)
            used_kids.append(key.kid)
            return key.verifier

        try:
            claims = dict(_jwt.decode(token, key_for))
        except AuthError:
            raise
        except BadSignatureError as exc:
            raise AuthError(BAD_SIGNATURE) from exc
        except UnsupportedAlgorithmError as exc:
            raise AuthError(UNSUPPORTED_ALGORITHM, f"only {ALGORITHM} is accepted") from exc
        except (DecodeError, JoseError, ValueError, TypeError) as exc:
            raise AuthError(MALFORMED) from exc
        self._check_claims(claims, now)
        self._remember(token, claims, used_kids[0])
        return claims

    def _remember(self, token: str, claims: dict[str, Any], kid: str) -> None:
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            # Forget the oldest entry (dicts keep insertion order).
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (dict(claims), kid)

    async def verify_async(self, token: str) -> dict[str, Any]:
        """`verify`, but a token signed by a key this process has not seen yet triggers one reload of the
        keys (rate-limited), so a rotation done elsewhere is honoured."""
        try:
            return self.verify(token)
        except AuthError as error:
            if error.reason != UNKNOWN_KEY or self._db is None:
                raise
            if not await self._reload_for_unknown_kid():
                raise
        return self.verify(token)

    async def _reload_for_unknown_kid(self) -> bool:
        """Whether keys were reloaded (by this call or a concurrent one) since the caller last looked."""
        seen = self._loaded_at
        async with self._lock:
            if self._loaded_at != seen:
                return True  # another request reloaded while we waited
            if time.monotonic() - self._unknown_kid_reloaded_at < self.unknown_kid_reload_seconds:
                return False  # a flood of made-up kids must not become a flood of queries
            self._unknown_kid_reloaded_at = time.monotonic()
            await self.reload()
            return True

    def _check_claims(self, claims: dict[str, Any], now: float) -> None:
        if claims.get("iss") != self.settings.token_issuer:
            raise AuthError(WRONG_ISSUER)
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.settings.token_audience not in audiences:
            raise AuthError(WRONG_AUDIENCE)
        exp = claims.get("exp")
        if not _is_number(exp):
            raise AuthError(MALFORMED, "exp is missing")
        if exp < now - self.leeway_seconds:
            raise AuthError(TOKEN_EXPIRED)
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_number(nbf) or nbf > now + self.leeway_seconds):
            raise AuthError(TOKEN_NOT_YET_VALID)
        for name in ("sub", "kind"):
            if not isinstance(claims.get(name), str) or not claims[name]:
                raise AuthError(MALFORMED, f"{name} is missing")

    # Publishing ---------------------------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """The public keys of every key not past `not_after`, signing key first."""
        now = time.time()
        keys = sorted(self._keys.values(), key=lambda key: key is not self._signing)
        return {"keys": [dict(key.public_jwk) for key in keys if key.published(now)]}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Claims and principals ----------------------------------------------------------------------------------------


def token_claims(
    *,
    kind: str,
    subject: str,
    tenant_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    role: str | None = None,
    scopes: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The hub's own claims of a token; `KeyStore.sign` adds the registered ones."""
    if kind not in TOKEN_KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    claims: dict[str, Any] = {
        "sub": subject,
        "kind": kind,
        "scope": " ".join(SCOPES_BY_KIND[kind] if scopes is None else scopes),
    }
    if tenant_id is not None:
        claims["tenant_id"] = str(tenant_id)
    if user_id is not None:
        claims["uid"] = str(user_id)
    if role is not None:
        claims["role"] = role
    return claims


def _optional_uuid(claims: Mapping[str, Any], name: str) -> uuid.UUID | None:
    value = claims.get(name)
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise AuthError(MALFORMED, f"{name} is not a UUID") from exc


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """The caller a verified token speaks for. Claims that do not fit their kind are refused."""
    kind = claims.get("kind")
    if kind not in TOKEN_KINDS:
        raise AuthError(MALFORMED, "unknown token kind")
    tenant_id = _optional_uuid(claims, "tenant_id")
    user_id = _optional_uuid(claims, "uid")
    role = claims.get("role")
    if kind in ("operator", "connector") and tenant_id is None:
        raise AuthError(MALFORMED, f"a {kind} token needs tenant_id")
    if kind == "operator" and role not in OPERATOR_ROLES:
        raise AuthError(MALFORMED, "an operator token needs an operator role")
    if kind == "driver" and user_id is None:
        raise AuthError(MALFORMED, "a driver token needs uid")
    scope = claims.get("scope") or ""
    return Principal(
        kind=kind,
        subject=str(claims.get("sub", "")),
        tenant_id=tenant_id,
        user_id=user_id,
        role=role if isinstance(role, str) else None,
        scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
    )


async def authenticate(request: HTTPConnection, keystore: KeyStore) -> Principal:
    """The caller of a request: anonymous without an Authorization header, the token's principal with a
    valid Bearer token, AuthError for anything else."""
    header = request.headers.get("authorization")
    if header is None:
        return ANONYMOUS_PRINCIPAL
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(MALFORMED, "expected Authorization: Bearer <token>")
    await keystore.refresh_if_stale()
    return principal_from_claims(await keystore.verify_async(token))


# Key management (as the owner) --------------------------------------------------------------------------------


def default_overlap_seconds(settings: Settings | None = None) -> int:
    """How long a retired key stays published: a process may sign with it until its next refresh, and a
    token it signed lives for the token TTL, give or take the verification leeway."""
    settings = settings or get_settings()
    return settings.token_ttl_seconds + int(KEY_REFRESH_SECONDS) + LEEWAY_SECONDS


async def rotate_signing_key(owner: Database, *, overlap_seconds: int | None = None) -> str:
    """Create a key that signs from now on; every earlier key stops signing and stays published for
    `overlap_seconds` (default: until every token it signed has expired). Returns the new kid."""
    overlap = default_overlap_seconds() if overlap_seconds is None else overlap_seconds
    if overlap < 0:
        raise ValueError("overlap_seconds must not be negative")
    kid, private_jwk, public_jwk = generate_signing_key()
    async with owner.transaction(PLATFORM) as session:
        await repository.lock_signing_keys(session)
        await repository.insert_signing_key(
            session, kid=kid, algorithm=ALGORITHM, private_jwk=private_jwk, public_jwk=public_jwk
        )
        published_until = datetime.now(UTC) + timedelta(seconds=overlap)
        await repository.retire_signing_keys(session, keep_kid=kid, published_until=published_until)
    return kid


async def ensure_signing_key(owner: Database) -> str | None:
    """Create a signing key when none may sign. Returns the new kid, or None when one existed."""
    async with owner.transaction(PLATFORM) as session:
        await repository.lock_signing_keys(session)
        if await repository.count_signing_keys_in_use(session) > 0:
            return None
        kid, private_jwk, public_jwk = generate_signing_key()
        await repository.insert_signing_key(
            session, kid=kid, algorithm=ALGORITHM, private_jwk=private_jwk, public_jwk=public_jwk
        )
    return kid
