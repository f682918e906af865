"""Access tokens: what verifies, what is refused and why, and key rotation across processes."""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from starlette.requests import Request

from hub import auth
from hub.auth import AuthError, KeyStore, authenticate, principal_from_claims, rotate_signing_key, token_claims
from hub.config import Settings
from hub.db import PLATFORM, Database
from hub.principal import ANONYMOUS_PRINCIPAL
from tenants import repository
from tenants.models import SigningKey

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _header(token: str) -> dict[str, object]:
    return json.loads(_unb64(token.split(".")[0]))


def _operator_claims(tenant_id: uuid.UUID | None = None) -> dict[str, object]:
    return token_claims(
        kind="operator",
        subject="user:1",
        tenant_id=tenant_id or uuid.uuid4(),
        user_id=uuid.uuid4(),
        role="operator_admin",
    )


def _refusal(keystore: KeyStore, token: str) -> str:
    with pytest.raises(AuthError) as caught:
        keystore.verify(token)
    return caught.value.reason


def _request(authorization: str | None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization is not None else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


async def test_token_round_trips_into_a_principal(keystore: KeyStore, settings: Settings) -> None:
    tenant_id, user_id = uuid.uuid4(), uuid.uuid4()
    token = keystore.sign(
        token_claims(
            kind="operator", subject=f"user:{user_id}", tenant_id=tenant_id, user_id=user_id, role="operator_staff"
        )
    )
    header = _header(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == keystore.signing_kid
    claims = keystore.verify(token)
    assert claims["iss"] == settings.token_issuer and claims["aud"] == settings.token_audience
    assert claims["exp"] - claims["iat"] == settings.token_ttl_seconds
    assert claims["jti"]
    principal = principal_from_claims(claims)
    assert (principal.kind, principal.tenant_id, principal.user_id, principal.role) == (
        "operator",
        tenant_id,
        user_id,
        "operator_staff",
    )
    assert principal.scopes == frozenset({"operator"})
    assert principal.db_scope().tenant_id == tenant_id


async def test_each_token_has_its_own_id(keystore: KeyStore) -> None:
    claims = _operator_claims()
    assert keystore.verify(keystore.sign(claims))["jti"] != keystore.verify(keystore.sign(claims))["jti"]


async def test_expired_token_is_refused(keystore: KeyStore) -> None:
    token = keystore.sign(_operator_claims() | {"exp": int(time.time()) - 3600})
    assert _refusal(keystore, token) == auth.TOKEN_EXPIRED


async def test_expiry_allows_a_little_clock_skew(keystore: KeyStore) -> None:
    just_expired = keystore.sign(_operator_claims() | {"exp": int(time.time()) - 1})
    assert keystore.verify(just_expired)["kind"] == "operator"


async def test_token_from_the_future_is_refused(keystore: KeyStore) -> None:
    token = keystore.sign(_operator_claims() | {"nbf": int(time.time()) + 3600})
    assert _refusal(keystore, token) == auth.TOKEN_NOT_YET_VALID


async def test_tampered_claims_are_refused(keystore: KeyStore) -> None:
    header, payload, signature = keystore.sign(_operator_claims()).split(".")
    claims = json.loads(_unb64(payload)) | {"kind": "platform"}
    forged = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    assert _refusal(keystore, forged) == auth.BAD_SIGNATURE


async def test_tampered_signature_is_refused(keystore: KeyStore) -> None:
    header, payload, signature = keystore.sign(_operator_claims()).split(".")
    raw = bytearray(_unb64(signature))
    raw[10] ^= 0xFF
    assert _refusal(keystore, ".".join([header, payload, _b64(bytes(raw))])) == auth.BAD_SIGNATURE


async def test_wrong_audience_and_wrong_issuer_are_refused(keystore: KeyStore) -> None:
    assert _refusal(keystore, keystore.sign(_operator_claims() | {"aud": "another-api"})) == auth.WRONG_AUDIENCE
    assert _refusal(keystore, keystore.sign(_operator_claims() | {"iss": "someone-else"})) == auth.WRONG_ISSUER
    both = keystore.sign(_operator_claims() | {"aud": ["another-api", keystore.settings.token_audience]})
    assert keystore.verify(both)["kind"] == "operator"


async def test_token_signed_by_a_key_we_never_published_is_refused(keystore: KeyStore, settings: Settings) -> None:
    stranger = JsonWebKey.generate_key("EC", "P-256", is_private=True)
    payload = {"iss": settings.token_issuer, "aud": settings.token_audience, "exp": int(time.time()) + 60}
    payload |= _operator_claims()
    for kid in ("not-ours", keystore.signing_kid):
        token = JsonWebToken(["ES256"]).encode({"alg": "ES256", "kid": kid}, payload, stranger).decode()
        with pytest.raises(AuthError) as caught:
            await keystore.verify_async(token)
        # Our kid with a stranger's signature is a forged signature, not an unknown key.
        assert caught.value.reason == (auth.UNKNOWN_KEY if kid == "not-ours" else auth.BAD_SIGNATURE)


async def test_other_algorithms_are_refused(keystore: KeyStore, settings: Settings) -> None:
    payload = _operator_claims() | {"iss": settings.token_issuer, "aud": settings.token_audience}
    body = _b64(json.dumps(payload).encode())
    unsigned = f"{_b64(json.dumps({'alg': 'none', 'kid': keystore.signing_kid}).encode())}.{body}."
    assert _refusal(keystore, unsigned) == auth.UNSUPPORTED_ALGORITHM
    # HS256 keyed with our public key: the classic algorithm-confusion forgery.
    public = json.dumps(keystore.jwks()["keys"][0]).encode()
    hs = JsonWebToken(["HS256"]).encode({"alg": "HS256", "kid": keystore.signing_kid}, payload, public).decode()
    assert _refusal(keystore, hs) == auth.UNSUPPORTED_ALGORITHM


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "....", "x" * 10_000])
async def test_garbage_is_malformed(keystore: KeyStore, garbage: str) -> None:
    assert _refusal(keystore, garbage) == auth.MALFORMED


async def test_refusal_response_is_rfc6750(keystore: KeyStore) -> None:
    error = AuthError(auth.TOKEN_EXPIRED)
    response = error.response()
    assert response.status_code == 401
    assert json.loads(response.body) == {"error": "invalid_token", "error_description": "token expired"}
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token", error_description="token expired"'


async def test_authenticate_reads_the_bearer_header(keystore: KeyStore) -> None:
    assert await authenticate(_request(None), keystore) is ANONYMOUS_PRINCIPAL
    user_id = uuid.uuid4()
    token = keystore.sign(token_claims(kind="driver", subject=f"user:{user_id}", user_id=user_id))
    principal = await authenticate(_request(f"Bearer {token}"), keystore)
    assert (principal.kind, principal.user_id) == ("driver", user_id)
    assert (await authenticate(_request(f"bearer  {token} "), keystore)).user_id == user_id
    for bad in ("", "Bearer", "Bearer ", f"Basic {token}", token, "Bearer not.a.token"):
        with pytest.raises(AuthError) as caught:
            await authenticate(_request(bad), keystore)
        assert caught.value.reason == auth.MALFORMED


@pytest.mark.parametrize(
    "claims",
    [
        {"kind": "robot", "sub": "x"},
        {"kind": "operator", "sub": "x", "role": "operator_admin"},
        {"kind": "operator", "sub": "x", "tenant_id": str(uuid.uuid4()), "role": "janitor"},
        {"kind": "connector", "sub": "x", "tenant_id": "not-a-uuid"},
        {"kind": "driver", "sub": "x"},
    ],
)
def test_claims_that_do_not_fit_their_kind_are_refused(claims: dict[str, object]) -> None:
    with pytest.raises(AuthError):
        principal_from_claims(claims)


def test_city_and_platform_principals() -> None:
    city = principal_from_claims(token_claims(kind="city", subject="client:c"))
    assert (city.kind, city.tenant_id, city.scopes) == ("city", None, frozenset({"city:read"}))
    assert city.db_scope().role == "city"
    platform = principal_from_claims(token_claims(kind="platform", subject="cli:platform"))
    assert platform.db_scope().role == "platform"


async def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(
    db: Database, owner_db: Database, keystore: KeyStore, settings: Settings
) -> None:
    old_kid = keystore.signing_kid
    old_token = keystore.sign(_operator_claims())

    new_kid = await rotate_signing_key(owner_db, overlap_seconds=3600)
    assert new_kid != old_kid

    # A process started after the rotation signs with the new key and still accepts the old tokens.
    fresh = KeyStore(settings)
    await fresh.load(db)
    assert fresh.signing_kid == new_kid
    assert fresh.verify(old_token)["kind"] == "operator"
    new_token = fresh.sign(_operator_claims())
    assert _header(new_token)["kid"] == new_kid
    published = [key["kid"] for key in fresh.jwks()["keys"]]
    assert published[0] == new_kid and old_kid in published
    assert all("d" not in key for key in fresh.jwks()["keys"])

    # The process that loaded before the rotation meets the new kid, reloads, and follows the rotation.
    assert (await keystore.verify_async(new_token))["kind"] == "operator"
    assert keystore.signing_kid == new_kid


async def test_unknown_kid_reloads_are_rate_limited(db: Database, owner_db: Database, settings: Settings) -> None:
    patient = KeyStore(settings, unknown_kid_reload_seconds=3600)
    await patient.load(db)
    await rotate_signing_key(owner_db, overlap_seconds=3600)
    signer = KeyStore(settings)
    await signer.load(db)
    assert (await patient.verify_async(signer.sign(_operator_claims())))["kind"] == "operator"

    await rotate_signing_key(owner_db, overlap_seconds=3600)
    await signer.load(db)
    with pytest.raises(AuthError) as caught:
        await patient.verify_async(signer.sign(_operator_claims()))
    assert caught.value.reason == auth.UNKNOWN_KEY


async def test_a_key_past_not_after_is_withdrawn_even_for_tokens_already_verified(
    db: Database, owner_db: Database, keystore: KeyStore, settings: Settings
) -> None:
    # A retired key of our own (it never signs), so no other test's tokens depend on it.
    kid, private_jwk, public_jwk = auth.generate_signing_key()
    retired = datetime.now(UTC) - timedelta(minutes=1)

    async def publish_until(moment: datetime) -> None:
        async with owner_db.transaction(PLATFORM) as session:
            statement = update(SigningKey).where(SigningKey.kid == kid).values(retired_at=retired, not_after=moment)
            await session.execute(statement)

    async with owner_db.transaction(PLATFORM) as session:
        await repository.insert_signing_key(
            session, kid=kid, algorithm="ES256", private_jwk=private_jwk, public_jwk=public_jwk
        )
    await publish_until(datetime.now(UTC) + timedelta(hours=1))
    store = KeyStore(settings)
    await store.load(db)
    assert store.signing_kid != kid
    assert kid in [key["kid"] for key in store.jwks()["keys"]]
    payload = {"iss": settings.token_issuer, "aud": settings.token_audience, "exp": int(time.time()) + 600}
    token = JsonWebToken(["ES256"]).encode({"alg": "ES256", "kid": kid}, payload | _operator_claims(), private_jwk)
    assert store.verify(token.decode()) == store.verify(token.decode())  # the second answer is remembered

    await publish_until(datetime.now(UTC) - timedelta(seconds=1))
    await store.reload()
    assert kid not in [key["kid"] for key in store.jwks()["keys"]]
    with pytest.raises(AuthError) as caught:
        await store.verify_async(token.decode())
    assert caught.value.reason == auth.UNKNOWN_KEY


async def test_a_remembered_token_still_expires(keystore: KeyStore) -> None:
    token = keystore.sign(_operator_claims() | {"exp": int(time.time()) - 600})
    keystore.leeway_seconds = 3600  # generous enough to accept, and so remember, the token
    assert keystore.verify(token)["kind"] == "operator"
    keystore.leeway_seconds = 0
    assert _refusal(keystore, token) == auth.TOKEN_EXPIRED


async def test_ensure_signing_key_creates_only_when_none_can_sign(owner_db: Database) -> None:
    await auth.ensure_signing_key(owner_db)
    assert await auth.ensure_signing_key(owner_db) is None
    async with owner_db.transaction(PLATFORM) as session:
        assert await repository.count_signing_keys_in_use(session) == 1


async def test_app_role_cannot_write_signing_keys(db: Database) -> None:
    kid, private_jwk, public_jwk = auth.generate_signing_key()
    with pytest.raises(Exception, match="permission denied"):
        async with db.transaction(PLATFORM) as session:
            await repository.insert_signing_key(
                session, kid=kid, algorithm="ES256", private_jwk=private_jwk, public_jwk=public_jwk
            )
