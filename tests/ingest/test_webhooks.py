"""Inbound events through the real HTTP endpoint, applied by the real worker, checked through GraphQL."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from connectors import signatures
from hub.db import Database
from tests.ingest.conftest import Site, WebhookConnector

SPACE_STATUS = "query($id: ID!) { node(id: $id) { ... on Space { status } } }"


def native_event(device: str, occupied: bool, at: datetime, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or uuid.uuid4().hex,
        "type": "occupancy",
        "device_id": device,
        "time": at.isoformat(),
        "occupied": occupied,
    }


async def post_signed(
    client: httpx.AsyncClient,
    connector: WebhookConnector,
    payload: Any,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
    secret: str | None = None,
) -> httpx.Response:
    body = orjson.dumps(payload)
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = signatures.sign(secret or connector.secret, webhook_id, timestamp, body)
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
    return await client.post(f"/connectors/{connector.id}", content=body, headers=headers)


async def post_with_secret(
    client: httpx.AsyncClient, connector: WebhookConnector, payload: Any, query: str = ""
) -> httpx.Response:
    return await client.post(
        f"/connectors/{connector.id}{query}",
        content=orjson.dumps(payload),
        headers={"content-type": "application/json", "authorization": f"Bearer {connector.secret}"},
    )


async def status_of(site: Site, index: int = 0) -> str:
    return (await site.admin.data(SPACE_STATUS, {"id": site.spaces[index]["id"]}))["node"]["status"]


async def inbox_states(owner_db: Database, tenant_id: uuid.UUID) -> list[tuple[str, str | None]]:
    async with owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT state, outcome FROM inbox_events WHERE tenant_id = :t ORDER BY occurred_at, received_at"),
            {"t": tenant_id},
        )
        return [(row[0], row[1]) for row in rows]


async def test_signed_native_event_occupies_the_space(client, site, add_connector, add_sensor, run_worker) -> None:
    connector = await add_connector(site, "native")
    await add_sensor(site, "MAG-1")
    response = await post_signed(client, connector, native_event("MAG-1", True, datetime.now(UTC)))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0, "ignored": 0}
    assert await run_worker() >= 1
    assert await status_of(site) == "OCCUPIED"


async def test_same_webhook_again_is_accepted_but_applied_once(
    client, site, add_connector, add_sensor, run_worker, owner_db
) -> None:
    connector = await add_connector(site, "native")
    await add_sensor(site, "MAG-2")
    payload = native_event("MAG-2", True, datetime.now(UTC), event_id="evt-1")
    first = await post_signed(client, connector, payload, webhook_id="msg_same")
    again = await post_signed(client, connector, payload, webhook_id="msg_same")
    assert first.json()["accepted"] == 1
    assert again.status_code == 202 and again.json() == {"accepted": 0, "duplicates": 1, "ignored": 0}
    await run_worker()
    assert await inbox_states(owner_db, site.tenant_id) == [("applied", "changed")]


async def test_a_batch_applies_in_time_order_and_an_older_event_changes_nothing(
    client, site, add_connector, add_sensor, run_worker, owner_db
) -> None:
    connector = await add_connector(site, "native")
    await add_sensor(site, "MAG-3")
    now = datetime.now(UTC)
    batch = {"events": [native_event("MAG-3", False, now - timedelta(seconds=5)), native_event("MAG-3", True, now)]}
    assert (await post_signed(client, connector, batch)).json()["accepted"] == 2
    await run_worker()
    assert await status_of(site) == "OCCUPIED"
    # Arrives late, happened earlier than the state it would change: recorded, not applied.
    late = native_event("MAG-3", False, now - timedelta(seconds=60))
    assert (await post_signed(client, connector, late)).status_code == 202
    await run_worker()
    assert await status_of(site) == "OCCUPIED"
    assert ("applied", "stale") in await inbox_states(owner_db, site.tenant_id)


async def test_unknown_device_is_dead_lettered_with_its_reason(
    client, site, add_connector, run_worker, owner_db
) -> None:
    connector = await add_connector(site, "native")
    assert (await post_signed(client, connector, native_event("NOBODY", True, datetime.now(UTC)))).status_code == 202
    await run_worker()
    [(state, reason)] = await inbox_states(owner_db, site.tenant_id)
    assert state == "dead" and reason is not None and "NOBODY" in reason
    assert await status_of(site) == "VACANT"


async def test_the_things_stack_uplink_with_a_shared_secret(
    client, site, add_connector, add_sensor, run_worker
) -> None:
    connector = await add_connector(site, "tts_v3", auth_mode="secret")
    await add_sensor(site, "0004A30B001C0530")
    uplink = {
        "end_device_ids": {"device_id": "dev1", "dev_eui": "0004a30b001c0530"},
        "correlation_ids": [f"as:up:{uuid.uuid4().hex}"],
        "received_at": datetime.now(UTC).isoformat(),
        "uplink_message": {"f_port": 1, "frm_payload": base64.b64encode(b"\x01").decode()},
    }
    response = await post_with_secret(client, connector, uplink)
    assert response.status_code == 202, response.text
    await run_worker()
    assert await status_of(site) == "OCCUPIED"


async def test_chirpstack_join_is_acknowledged_and_ignored(client, site, add_connector) -> None:
    connector = await add_connector(site, "chirpstack_v4", auth_mode="secret")
    response = await post_with_secret(client, connector, {"deviceInfo": {"devEui": "0101010101010101"}}, "?event=join")
    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "duplicates": 0, "ignored": 1}


async def test_refusals_name_the_problem_and_store_nothing(client, site, add_connector, owner_db) -> None:
    connector = await add_connector(site, "native")
    event = native_event("MAG-9", True, datetime.now(UTC))
    other = signatures.generate_secret()

    bad_signature = await post_signed(client, connector, event, secret=other)
    assert bad_signature.status_code == 401 and bad_signature.json()["error"] == "unauthenticated"
    stale = await post_signed(client, connector, event, timestamp=int(time.time()) - 600)
    assert stale.status_code == 401
    unknown = await client.post(f"/connectors/{uuid.uuid4()}", content=b"{}")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_connector"
    malformed = await post_signed(client, connector, {"events": "nope"})
    assert malformed.status_code == 400 and malformed.json()["message"]
    future = await post_signed(client, connector, native_event("MAG-9", True, datetime.now(UTC) + timedelta(hours=1)))
    assert future.status_code == 400
    no_secret = await client.post(f"/connectors/{connector.id}", content=orjson.dumps(event))
    assert no_secret.status_code == 401

    async with owner_db.engine.begin() as conn:
        await conn.execute(text("UPDATE connectors SET disabled_at = now() WHERE id = :id"), {"id": connector.id})
    from connectors.http import credentials

    credentials.clear()
    disabled = await post_signed(client, connector, event)
    assert disabled.status_code == 403 and disabled.json()["error"] == "connector_disabled"
    assert await inbox_states(owner_db, site.tenant_id) == []


DEAD_EVENTS = "{ deadEvents(first: 10) { edges { node { id deviceExternalId reason kind } } } }"
REPLAY = "mutation($ids: [ID!]!) { replayDeadEvents(ids: $ids) }"


async def test_dead_events_are_listed_and_replayed_once_the_device_exists(
    client, site, add_connector, add_sensor, run_worker, callers
) -> None:
    connector = await add_connector(site, "native")
    await post_signed(client, connector, native_event("LATE-REG", True, datetime.now(UTC)))
    await run_worker()
    [edge] = (await site.admin.data(DEAD_EVENTS))["deadEvents"]["edges"]
    assert edge["node"]["deviceExternalId"] == "LATE-REG" and "LATE-REG" in edge["node"]["reason"]
    other_operator = await callers.operator()
    assert (await other_operator.data(DEAD_EVENTS))["deadEvents"]["edges"] == []
    assert await other_operator.data(REPLAY, {"ids": [edge["node"]["id"]]}) == {"replayDeadEvents": 0}

    await add_sensor(site, "LATE-REG")
    assert await site.admin.data(REPLAY, {"ids": [edge["node"]["id"]]}) == {"replayDeadEvents": 1}
    await run_worker()
    assert await status_of(site) == "OCCUPIED"
    assert (await site.admin.data(DEAD_EVENTS))["deadEvents"]["edges"] == []


async def test_events_accepted_while_redis_is_down_are_applied_by_the_sweep(
    client, site, add_connector, add_sensor, run_worker, owner_db, settings
) -> None:
    from arq.connections import ArqRedis

    from hub import jobs
    from hub.ingest import tasks

    connector = await add_connector(site, "native")
    await add_sensor(site, "MAG-DOWN")
    working_pool = jobs.get_job_pool()
    dead_redis = ArqRedis(host="127.0.0.1", port=1)  # nothing listens there
    jobs.set_job_pool(dead_redis)
    try:
        response = await post_signed(client, connector, native_event("MAG-DOWN", True, datetime.now(UTC)))
        await jobs.drain_dispatches()  # the job's send fails; the event is already committed
    finally:
        jobs.set_job_pool(working_pool)
        await dead_redis.aclose()
    assert response.status_code == 202 and response.json()["accepted"] == 1
    await run_worker()
    assert await inbox_states(owner_db, site.tenant_id) == [("pending", None)]

    async with owner_db.engine.begin() as conn:  # as if a minute had passed
        await conn.execute(
            text("UPDATE inbox_events SET received_at = received_at - interval '2 minutes' WHERE tenant_id = :t"),
            {"t": site.tenant_id},
        )
    from hub.db import Database

    database = Database.from_settings(settings)
    try:
        assert await tasks.sweep_inbox({"db": database}) >= 1
    finally:
        await database.dispose()
    await run_worker()
    assert await status_of(site) == "OCCUPIED"
    assert await inbox_states(owner_db, site.tenant_id) == [("applied", "changed")]
