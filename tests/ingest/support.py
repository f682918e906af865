"""Helpers the format, device-health and fault tests share: posting as each kind of sender, and reading the
outcome the way users see it (GraphQL) or, where GraphQL has nothing yet, from the tables as the owner."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from connectors import signatures
from hub.db import Database
from tests.ingest.conftest import Site, WebhookConnector

SAMPLES = Path(__file__).parent.parent / "connectors" / "samples"

SPACE = "query($id: ID!) { node(id: $id) { ... on Space { status reportedStatus statusConfirmedAt } } }"
DEVICES = """query { devices(first: 100) { edges { node {
    externalId online offlineSince lastMessageAt lastHeartbeatAt batteryPercent temperatureC firmware } } } }"""
DEAD_EVENTS = """query { deadEvents(first: 50) { edges { node {
    sourceEventId kind deviceExternalId reason attempts event } } } }"""


def sample(name: str) -> dict[str, Any]:
    """One of the shared example payloads, as its sender published it."""
    return orjson.loads((SAMPLES / name).read_bytes())


def next_second() -> datetime:
    """The next whole second: a moment after everything the fixtures set up (the site's spaces are confirmed
    vacant by hand when created, and an earlier sensor reading would be stale), exact in epoch milliseconds,
    and well inside the 5 minutes a sender's clock may run ahead."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)


def iso_utc(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def post_with_secret(
    client: httpx.AsyncClient,
    connector: WebhookConnector,
    payload: Any,
    *,
    query: str = "",
    content: bytes | None = None,
    content_type: str = "application/json",
) -> httpx.Response:
    """As a sender that cannot sign (LoRaWAN network servers, cameras): the secret as a bearer token."""
    return await client.post(
        f"/connectors/{connector.id}{query}",
        content=orjson.dumps(payload) if content is None else content,
        headers={"content-type": content_type, "authorization": f"Bearer {connector.secret}"},
    )


async def post_signed(
    client: httpx.AsyncClient, connector: WebhookConnector, payload: Any, *, webhook_id: str | None = None
) -> httpx.Response:
    """As a sender that signs with Standard Webhooks."""
    body = orjson.dumps(payload)
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures.sign(connector.secret, webhook_id, timestamp, body),
    }
    return await client.post(f"/connectors/{connector.id}", content=body, headers=headers)


def assert_accepted(response: httpx.Response, accepted: int, duplicates: int = 0, ignored: int = 0) -> None:
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": accepted, "duplicates": duplicates, "ignored": ignored}


async def space(site: Site, index: int = 0) -> dict[str, Any]:
    """The space as GraphQL shows it: `status` (what a driver may rely on), `reportedStatus`, `statusConfirmedAt`."""
    return (await site.admin.data(SPACE, {"id": site.spaces[index]["id"]}))["node"]


async def status(site: Site, index: int = 0) -> str:
    return (await space(site, index))["status"]


async def device(site: Site, external_id: str) -> dict[str, Any]:
    """A device's health as the operator's `devices` query shows it."""
    edges = (await site.admin.data(DEVICES))["devices"]["edges"]
    [found] = [edge["node"] for edge in edges if edge["node"]["externalId"] == external_id]
    return found


async def dead_events(site: Site) -> list[dict[str, Any]]:
    return [edge["node"] for edge in (await site.admin.data(DEAD_EVENTS))["deadEvents"]["edges"]]


async def inbox(owner_db: Database, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The tenant's inbox rows in the order they happened (no GraphQL lists applied events)."""
    async with owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT source_event_id, kind, device_external_id, occurred_at, state, outcome, attempts, applied_at, "
                "image_ref, body FROM inbox_events WHERE tenant_id = :t ORDER BY occurred_at, received_at, id"
            ),
            {"t": tenant_id},
        )
        return [dict(row._mapping) for row in rows]


async def sightings(owner_db: Database, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Plate sightings (not in GraphQL yet: they are kept for the sessions issue), oldest first."""
    async with owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT s.plate, s.plate_valid, s.confidence, s.seen_at, s.image_ref, s.facility_id, s.space_id, "
                "s.lane_id, d.external_id AS device FROM plate_sightings s "
                "JOIN devices d ON d.tenant_id = s.tenant_id AND d.id = s.device_id "
                "WHERE s.tenant_id = :t ORDER BY s.seen_at, s.plate"
            ),
            {"t": tenant_id},
        )
        return [dict(row._mapping) for row in rows]
