"""The OAuth 2.0 token endpoint (RFC 6749 client_credentials) and the JWKS.

`POST /oauth/token` authenticates a machine client (HTTP Basic, or client_id/client_secret in the form,
never both) and issues an access token for the client's kind: an operator's back office, the city's
dashboard, a connector, or platform administration. Errors follow RFC 6749 section 5.2.

The endpoints read `request.app.state.db` (the app role's Database), `request.app.state.keystore` and
`request.app.state.settings`, which the application factory sets.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.auth import KeyStore, NoSigningKey, token_claims
from hub.db import Database, Scope
from tenants import rules, service
from tenants.models import OAuthClient

AUTH_SCOPE = Scope("auth")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Token responses carry credentials: never cached (RFC 6749 section 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
JWKS_CACHE = {"Cache-Control": "public, max-age=300"}


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status_code: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code

    def response(self) -> JSONResponse:
        headers = dict(NO_STORE)
        if self.error == "invalid_client":
            # RFC 6749 5.2: a 401 for a failed client authentication names the scheme the client may use.
            headers["WWW-Authenticate"] = 'Basic realm="parkhub"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status_code,
            headers=headers,
        )


def _invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, 401)


def _basic_credentials(header: str) -> tuple[str, str]:
    """client_id and secret of an HTTP Basic header; both are form-urlencoded inside (RFC 6749 2.3.1)."""
    try:
        decoded = base64.b64decode(header, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid_client("the Basic credentials are not valid base64 of client_id:client_secret") from exc
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise _invalid_client("the Basic credentials must be client_id:client_secret")
    return unquote_plus(client_id), unquote_plus(secret)


def _client_credentials(request: Request, form: FormData) -> tuple[str, str]:
    authorization = request.headers.get("authorization")
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            raise _invalid_client("client authentication must use HTTP Basic or the form's client_secret")
        if form_secret is not None:
            raise OAuthError("invalid_request", "use one client authentication method: Basic or the form, not both")
        client_id, secret = _basic_credentials(credentials.strip())
        if form_id is not None and form_id != client_id:
            raise OAuthError("invalid_request", "client_id in the form differs from the Basic credentials")
        return client_id, secret
    if not form_id or not isinstance(form_id, str):
        raise _invalid_client("no client authentication: send HTTP Basic or client_id and client_secret")
    if not form_secret or not isinstance(form_secret, str):
        raise _invalid_client("client_secret is missing")
    return form_id, form_secret


def _claims_for(client: OAuthClient, scopes: tuple[str, ...]) -> dict[str, Any]:
    return token_claims(
        kind=client.kind,
        subject=f"client:{client.client_id}",
        tenant_id=client.tenant_id,
        role=client.role,
        scopes=scopes,
    ) | {"client_id": client.client_id}


async def _issue(request: Request) -> JSONResponse:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        raise OAuthError("invalid_request", f"the request body must be {FORM_CONTENT_TYPE}")
    form = await request.form()
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is missing")
    if grant_type != "client_credentials":
        raise OAuthError(
            "unsupported_grant_type", f"grant_type {grant_type!r} is not supported; use client_credentials"
        )
    client_id, secret = _client_credentials(request, form)

    db: Database = request.app.state.db
    async with db.transaction(AUTH_SCOPE) as session:
        client = await service.authenticate_client(session, client_id, secret)
    if client is None:
        raise _invalid_client("unknown client, wrong secret, or a disabled client")

    requested_scope = form.get("scope")
    scopes = rules.granted_scopes(client.kind, requested_scope if isinstance(requested_scope, str) else None)
    if scopes is None:
        raise OAuthError(
            "invalid_scope", f"a {client.kind} client may ask only for: {' '.join(rules.SCOPES_BY_KIND[client.kind])}"
        )

    keystore: KeyStore = request.app.state.keystore
    await keystore.refresh_if_stale()
    ttl = request.app.state.settings.token_ttl_seconds
    token = keystore.sign(_claims_for(client, scopes), ttl_seconds=ttl)
    return JSONResponse(
        {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": " ".join(scopes)},
        headers=NO_STORE,
    )


async def token_endpoint(request: Request) -> JSONResponse:
    try:
        return await _issue(request)
    except OAuthError as error:
        return error.response()
    except NoSigningKey as error:
        # Set-up was skipped (no key was ever created): a fault of this server, not of the client.
        return OAuthError("temporarily_unavailable", str(error), 503).response()


async def jwks_endpoint(request: Request) -> JSONResponse:
    keystore: KeyStore = request.app.state.keystore
    await keystore.refresh_if_stale()
    return JSONResponse(keystore.jwks(), headers=JWKS_CACHE)


routes: list[Route] = [
    Route("/oauth/token", token_endpoint, methods=["POST"]),
    Route("/.well-known/jwks.json", jwks_endpoint, methods=["GET"]),
]
