"""The token endpoint (RFC 6749 client_credentials) and the JWKS, over HTTP against the real database."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote_plus

import httpx
import pytest
from starlette.applications import Starlette

from hub import oauth
from hub.auth import KeyStore, principal_from_claims
from hub.config import Settings
from hub.db import PLATFORM, Database
from tenants import service


@pytest.fixture
async def client(db: Database, keystore: KeyStore, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=oauth.routes)
    app.state.db = db
    app.state.keystore = keystore
    app.state.settings = settings
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub.test") as http:
        yield http


async def _new_client(db: Database, kind: str, role: str | None = None) -> tuple[str, str, uuid.UUID | None]:
    async with db.transaction(PLATFORM) as session:
        tenant_id = None
        if kind in ("operator", "connector"):
            tenant_id = (await service.create_tenant(session, slug=f"oa-{uuid.uuid4().hex[:10]}", name="Lots")).id
        created, secret = await service.create_client(
            session, kind=kind, name=f"{kind} client", tenant_id=tenant_id, role=role
        )
    return created.client_id, secret, tenant_id


def _basic(client_id: str, secret: str) -> dict[str, str]:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


GRANT = {"grant_type": "client_credentials"}


@pytest.mark.parametrize(
    ("kind", "role", "scope"),
    [
        ("operator", "operator_admin", "operator"),
        ("operator", None, "operator"),
        ("city", None, "city:read"),
        ("connector", None, "connector:ingest"),
        ("platform", None, "platform"),
    ],
)
async def test_each_kind_of_client_gets_a_token_of_its_kind(
    client: httpx.AsyncClient,
    db: Database,
    keystore: KeyStore,
    settings: Settings,
    kind: str,
    role: str | None,
    scope: str,
) -> None:
    client_id, secret, tenant_id = await _new_client(db, kind, role)
    response = await client.post("/oauth/token", data=GRANT, headers=_basic(client_id, secret))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.token_ttl_seconds
    assert body["scope"] == scope
    principal = principal_from_claims(keystore.verify(body["access_token"]))
    assert principal.kind == kind
    assert principal.tenant_id == tenant_id
    assert principal.role == (role or "operator_staff" if kind == "operator" else None)
    assert principal.subject == f"client:{client_id}"
    assert principal.scopes == frozenset({scope})


async def test_credentials_in_the_form_work_too(client: httpx.AsyncClient, db: Database, keystore: KeyStore) -> None:
    client_id, secret, _ = await _new_client(db, "city")
    response = await client.post("/oauth/token", data=GRANT | {"client_id": client_id, "client_secret": secret})
    assert response.status_code == 200
    assert keystore.verify(response.json()["access_token"])["kind"] == "city"


async def test_a_narrower_scope_may_be_asked_for_but_not_a_wider_one(client: httpx.AsyncClient, db: Database) -> None:
    client_id, secret, _ = await _new_client(db, "city")
    narrow = await client.post("/oauth/token", data=GRANT | {"scope": "city:read"}, headers=_basic(client_id, secret))
    assert narrow.json()["scope"] == "city:read"
    wide = await client.post("/oauth/token", data=GRANT | {"scope": "platform"}, headers=_basic(client_id, secret))
    assert wide.status_code == 400
    assert wide.json()["error"] == "invalid_scope"


async def _assert_invalid_client(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.headers["cache-control"] == "no-store"


async def test_wrong_secret_unknown_client_and_disabled_client_are_invalid_client(
    client: httpx.AsyncClient, db: Database
) -> None:
    client_id, secret, _ = await _new_client(db, "connector")
    await _assert_invalid_client(await client.post("/oauth/token", data=GRANT, headers=_basic(client_id, secret + "x")))
    await _assert_invalid_client(
        await client.post("/oauth/token", data=GRANT, headers=_basic("ph_city_nobody", secret))
    )
    async with db.transaction(PLATFORM) as session:
        await service.disable_client(session, client_id)
    await _assert_invalid_client(await client.post("/oauth/token", data=GRANT, headers=_basic(client_id, secret)))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Bearer something"},
    ],
)
async def test_missing_or_unreadable_client_authentication_is_invalid_client(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    await _assert_invalid_client(await client.post("/oauth/token", data=GRANT, headers=headers))


async def test_form_client_id_without_secret_is_invalid_client(client: httpx.AsyncClient, db: Database) -> None:
    client_id, _, _ = await _new_client(db, "city")
    await _assert_invalid_client(await client.post("/oauth/token", data=GRANT | {"client_id": client_id}))


async def test_wrong_grant_type_is_unsupported(client: httpx.AsyncClient, db: Database) -> None:
    client_id, secret, _ = await _new_client(db, "city")
    for grant in ("password", "authorization_code"):
        response = await client.post("/oauth/token", data={"grant_type": grant}, headers=_basic(client_id, secret))
        assert response.status_code == 400
        assert response.json()["error"] == "unsupported_grant_type"
        assert grant in response.json()["error_description"]


async def test_missing_grant_type_and_wrong_encoding_are_invalid_request(
    client: httpx.AsyncClient, db: Database
) -> None:
    client_id, secret, _ = await _new_client(db, "city")
    missing = await client.post("/oauth/token", data={"scope": "city:read"}, headers=_basic(client_id, secret))
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    assert "grant_type" in missing.json()["error_description"]
    as_json = await client.post("/oauth/token", json=GRANT, headers=_basic(client_id, secret))
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    both = await client.post(
        "/oauth/token",
        data=GRANT | {"client_id": client_id, "client_secret": secret},
        headers=_basic(client_id, secret),
    )
    assert (both.status_code, both.json()["error"]) == (400, "invalid_request")


async def test_only_post_is_allowed(client: httpx.AsyncClient) -> None:
    assert (await client.get("/oauth/token")).status_code == 405


async def test_jwks_publishes_the_signing_key_without_private_parts(
    client: httpx.AsyncClient, keystore: KeyStore
) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys[0]["kid"] == keystore.signing_kid
    for key in keys:
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
        assert "d" not in key


async def test_a_hub_without_signing_keys_says_so_instead_of_crashing(
    db: Database, settings: Settings, keystore: KeyStore
) -> None:
    empty = KeyStore(settings)  # never loaded: what a process sees when set-up created no key
    app = Starlette(routes=oauth.routes)
    app.state.db, app.state.keystore, app.state.settings = db, empty, settings
    client_id, secret, _ = await _new_client(db, "city")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub.test") as http:
        response = await http.post("/oauth/token", data=GRANT, headers=_basic(client_id, secret))
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert "keys rotate" in response.json()["error_description"]
