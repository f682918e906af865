"""`POST /connectors/{connector_id}`: authenticate the sender, parse its format, hand the events to the inbox.

The answer is 202 only after the events are committed to the inbox; everything else is a 4xx with a JSON
body that names the problem, and then nothing of the request is stored."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors import signatures
from connectors.events import PayloadError
from connectors.formats import ConnectorFormat, InboundRequest, parse
from connectors.payments import CallbackRejected
from hub.db import Database
from hub.ingest import service as ingest
from tenants import service as tenants

# Connector credentials are cached this long per process, so a busy sender costs no lookup per request. The
# cache is only a hint for the inbox: the statement that writes the events checks that the connector is enabled and
# that the secret the request proved is still live, so a disable or a rotation takes effect at once there. A request
# whose authentication fails looks the connector up again (at most once per RELOAD_AFTER_FAILURE_SECONDS), so a
# secret rotated in is accepted at once too.
CREDENTIALS_TTL_SECONDS = 5.0
RELOAD_AFTER_FAILURE_SECONDS = 1.0
# Unknown ids are cached too (a sender misconfigured with a wrong id costs one lookup per TTL); past this many
# entries the cache starts afresh rather than grow with ids a scanner makes up.
MAX_CACHED_CONNECTORS = 10_000


def problem(status: int, error: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


@dataclass
class _Cached:
    connector: tenants.WebhookConnector | None
    loaded: float
    expires: float


class CredentialCache:
    def __init__(self, ttl: float = CREDENTIALS_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[uuid.UUID, _Cached] = {}
        # One lookup at a time per connector: when an entry expires, a busy sender's concurrent requests wait for
        # the same lookup instead of each starting one.
        self._loading: dict[uuid.UUID, asyncio.Task[tenants.WebhookConnector | None]] = {}

    async def get(self, db: Database, connector_id: uuid.UUID) -> tenants.WebhookConnector | None:
        entry = self._entries.get(connector_id)
        if entry is None or entry.expires <= time.monotonic():
            return await self._load(db, connector_id)
        return entry.connector

    async def reload_after_failure(
        self, db: Database, connector_id: uuid.UUID
    ) -> tuple[bool, tenants.WebhookConnector | None]:
        """(True, the connector as stored now) when the cached one is old enough to look up again after a failed
        authentication, else (False, None): at most one lookup per connector and interval, whatever a sender of
        bad signatures does."""
        entry = self._entries.get(connector_id)
        if entry is not None and time.monotonic() - entry.loaded < RELOAD_AFTER_FAILURE_SECONDS:
            return False, None
        return True, await self._load(db, connector_id)

    def forget(self, connector_id: uuid.UUID) -> None:
        """Drop what this process knows of the connector (a lookup under way too: the next request starts anew)."""
        self._entries.pop(connector_id, None)
        self._loading.pop(connector_id, None)

    def clear(self) -> None:
        self._entries.clear()
        self._loading.clear()

    async def _load(self, db: Database, connector_id: uuid.UUID) -> tenants.WebhookConnector | None:
        loop = asyncio.get_running_loop()
        loading = self._loading.get(connector_id)
        if loading is None or loading.get_loop() is not loop:  # tests run several loops in one process
            loading = self._loading[connector_id] = loop.create_task(self._lookup(db, connector_id))
        # Shielded: a request that goes away does not cancel the lookup the others wait for.
        return await asyncio.shield(loading)

    async def _lookup(self, db: Database, connector_id: uuid.UUID) -> tenants.WebhookConnector | None:
        try:
            connector = await tenants.webhook_connector(db, connector_id)
        finally:
            if self._loading.get(connector_id) is asyncio.current_task():
                del self._loading[connector_id]
        if len(self._entries) > MAX_CACHED_CONNECTORS:
            self._entries.clear()
        now = time.monotonic()
        self._entries[connector_id] = _Cached(connector, now, now + self.ttl)
        return connector


credentials = CredentialCache()


@dataclass(frozen=True, slots=True)
class _Authenticated:
    webhook_id: str | None  # Standard Webhooks `webhook-id` (the dedupe key of some formats)
    secret: str  # the connector's secret the request proved; the inbox checks it is still live


def _authenticate(connector: tenants.WebhookConnector, headers: Mapping[str, str], body: bytes) -> _Authenticated | str:
    """Who the sender proved to be, or why it proved nothing. `headers`: Starlette's, read case-insensitively."""
    if connector.auth_mode == "signature":
        now = datetime.now(UTC)
        # Newest secret first: during a rotation a sender signs with the new one or the old one; checking them one
        # by one tells which one it was (the inbox checks that one is still live).
        for secret in connector.secrets:
            try:
                return _Authenticated(signatures.verify((secret,), headers, body, now), secret)
            except signatures.SignatureError:
                continue
        try:  # none matched: the reason, as the check over all secrets gives it (missing header, stale, ...)
            signatures.verify(connector.secrets, headers, body, now)
        except signatures.SignatureError as error:
            return str(error)
        return "no signature matches: wrong secret, or the body was changed on the way"
    presented = signatures.presented_secret(headers)
    if presented is not None and signatures.check_shared_secret(connector.secrets, presented):
        return _Authenticated(headers.get("webhook-id"), presented)
    return "missing or wrong connector secret (send it as 'Authorization: Bearer <secret>')"


def _unknown_connector() -> JSONResponse:
    return problem(404, "unknown_connector", "no connector has this id")


def _connector_disabled() -> JSONResponse:
    return problem(403, "connector_disabled", "this connector is disabled; its operator can enable it again")


_REFUSAL_STATUS = {"unknown_connector": 404, "connector_disabled": 403, "secret_expired": 401}


async def receive(request: Request) -> JSONResponse:
    try:
        connector_id = uuid.UUID(request.path_params["connector_id"])
    except ValueError:
        return _unknown_connector()
    db: Database = request.app.state.db
    connector = await credentials.get(db, connector_id)
    if connector is None:
        return _unknown_connector()
    if connector.disabled:
        return _connector_disabled()
    body = await request.body()
    if connector.auth_mode == "provider":
        return await _receive_provider_callback(db, connector, request, body)
    proof = _authenticate(connector, request.headers, body)
    if isinstance(proof, str):
        reloaded, fresh = await credentials.reload_after_failure(db, connector_id)
        if reloaded:  # perhaps a secret rotated in after this process cached the connector
            if fresh is None:
                return _unknown_connector()
            if fresh.disabled:
                return _connector_disabled()
            connector, proof = fresh, _authenticate(fresh, request.headers, body)
        if isinstance(proof, str):
            return problem(401, "unauthenticated", proof)
    inbound = InboundRequest(
        body=body,
        content_type=request.headers.get("content-type", ""),
        query=request.query_params,
        webhook_id=proof.webhook_id,
        received_at=datetime.now(UTC),
        default_tz=ZoneInfo(connector.time_zone),
    )
    try:
        parsed = parse(ConnectorFormat(connector.format), inbound)
    except PayloadError as error:
        return JSONResponse(error.as_json(), status_code=400)
    media_dir = request.app.state.settings.media_dir
    try:
        result = await ingest.accept_webhook_events(
            db, connector.tenant_id, connector.id, parsed.events, media_dir, secret=proof.secret
        )
    except ingest.AcceptRefused as refused:
        credentials.forget(connector.id)  # the cached view was out of date
        return problem(_REFUSAL_STATUS.get(refused.reason, 403), refused.reason, refused.message)
    return JSONResponse(
        {"accepted": len(result.accepted), "duplicates": result.duplicates, "ignored": parsed.ignored},
        status_code=202,
    )


async def _receive_provider_callback(
    db: Database, connector: tenants.WebhookConnector, request: Request, body: bytes
) -> JSONResponse:
    """A payment provider's callback: the provider's adapter verifies it (its own signature scheme) and normalizes
    it; the events go to the inbox, deduplicated by the provider's event id, and apply once (hub.payments)."""
    from hub.payments import providers
    from hub.payments.service import provider_event_body

    try:
        provider = providers.for_format(connector.format)
    except (KeyError, LookupError):
        return problem(503, "provider_not_configured", "this payment provider is not configured here")
    headers = {key.lower(): value for key, value in request.headers.items()}
    try:
        events = provider.parse_callback(headers, body, datetime.now(UTC))
    except CallbackRejected as rejected:
        return JSONResponse(rejected.as_json(), status_code=rejected.status)
    rows = [(event.event_id, event.occurred_at, provider_event_body(provider.name, event)) for event in events]
    try:
        result = await ingest.accept_payment_events(db, connector.tenant_id, connector.id, rows)
    except ingest.AcceptRefused as refused:
        credentials.forget(connector.id)  # the cached view was out of date
        return problem(_REFUSAL_STATUS.get(refused.reason, 403), refused.reason, refused.message)
    return JSONResponse({"accepted": len(result.accepted), "duplicates": result.duplicates}, status_code=202)


routes = [Route("/connectors/{connector_id}", receive, methods=["POST"])]
