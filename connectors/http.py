"""`POST /connectors/{connector_id}`: authenticate the sender, parse its format, hand the events to the inbox.

The answer is 202 only after the events are committed to the inbox; everything else is a 4xx with a JSON
body that names the problem, and then nothing of the request is stored."""

from __future__ import annotations

import time
import uuid
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

# Connector credentials are cached this long per process: a disabled connector or a rotated-out secret stops
# working within this time, and a busy sender costs no lookup per request.
CREDENTIALS_TTL_SECONDS = 5.0


def problem(status: int, error: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


@dataclass
class _Cached:
    connector: tenants.WebhookConnector | None
    expires: float


class CredentialCache:
    def __init__(self, ttl: float = CREDENTIALS_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[uuid.UUID, _Cached] = {}

    async def get(self, db: Database, connector_id: uuid.UUID) -> tenants.WebhookConnector | None:
        now = time.monotonic()
        entry = self._entries.get(connector_id)
        if entry is None or entry.expires <= now:
            connector = await tenants.webhook_connector(db, connector_id)
            if len(self._entries) > 10_000:
                self._entries.clear()
            entry = self._entries[connector_id] = _Cached(connector, now + self.ttl)
        return entry.connector

    def clear(self) -> None:
        self._entries.clear()


credentials = CredentialCache()


def _authenticate(connector: tenants.WebhookConnector, request: Request, body: bytes) -> tuple[str | None, str | None]:
    """(webhook id, None) when the sender proved itself, else (None, reason)."""
    headers = {key.lower(): value for key, value in request.headers.items()}
    if connector.auth_mode == "signature":
        try:
            return signatures.verify(connector.secrets, headers, body, datetime.now(UTC)), None
        except signatures.SignatureError as error:
            return None, str(error)
    if signatures.check_shared_secret(connector.secrets, signatures.presented_secret(headers)):
        return headers.get("webhook-id"), None
    return None, "missing or wrong connector secret (send it as 'Authorization: Bearer <secret>')"


async def receive(request: Request) -> JSONResponse:
    try:
        connector_id = uuid.UUID(request.path_params["connector_id"])
    except ValueError:
        return problem(404, "unknown_connector", "no connector has this id")
    db: Database = request.app.state.db
    connector = await credentials.get(db, connector_id)
    if connector is None:
        return problem(404, "unknown_connector", "no connector has this id")
    if connector.disabled:
        return problem(403, "connector_disabled", "this connector is disabled; its operator can enable it again")
    body = await request.body()
    if connector.auth_mode == "provider":
        return await _receive_provider_callback(db, connector, request, body)
    webhook_id, refusal = _authenticate(connector, request, body)
    if refusal is not None:
        return problem(401, "unauthenticated", refusal)
    inbound = InboundRequest(
        body=body,
        content_type=request.headers.get("content-type", ""),
        query=dict(request.query_params),
        webhook_id=webhook_id,
        received_at=datetime.now(UTC),
        default_tz=ZoneInfo(connector.time_zone),
    )
    try:
        parsed = parse(ConnectorFormat(connector.format), inbound)
    except PayloadError as error:
        return JSONResponse(error.as_json(), status_code=400)
    media_dir = request.app.state.settings.media_dir
    result = await ingest.accept_webhook_events(db, connector.tenant_id, connector.id, parsed.events, media_dir)
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
    result = await ingest.accept_payment_events(db, connector.tenant_id, connector.id, rows)
    return JSONResponse({"accepted": len(result.accepted), "duplicates": result.duplicates}, status_code=202)


routes = [Route("/connectors/{connector_id}", receive, methods=["POST"])]
