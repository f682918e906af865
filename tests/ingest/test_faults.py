"""Abuse and faults through the real endpoint: oversized bodies, events for devices nobody registered, and a
worker that is not running while senders keep posting (every accepted event is applied once it runs, once)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text

from hub import jobs
from hub.config import Settings
from hub.db import Database
from hub.ingest import service, tasks
from tests.ingest.conftest import Site
from tests.ingest.support import (
    assert_accepted,
    dead_events,
    device,
    epoch_ms,
    inbox,
    iso_utc,
    next_second,
    post_signed,
    post_with_secret,
    sample,
    sightings,
    status,
)

REPLAY = "mutation($ids: [ID!]!) { replayDeadEvents(ids: $ids) }"
DEAD_IDS = "{ deadEvents(first: 10) { edges { node { id } } } }"


# ---- oversized bodies ------------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_refused_with_413_and_nothing_is_written(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database, settings: Settings
) -> None:
    connector = await add_connector(site, "native", auth_mode="secret")
    await register_device(site, "MAG-BIG", space_index=0)
    # A valid batch padded past the limit: the size alone must refuse it.
    event = {"id": "big-1", "device_id": "MAG-BIG", "occupied": True, "details": {"padding": ""}}
    event["details"]["padding"] = "x" * settings.max_request_bytes
    body = orjson.dumps({"events": [event]})
    headers = {"content-type": "application/json", "authorization": f"Bearer {connector.secret}"}

    declared = await client.post(f"/connectors/{connector.id}", content=body, headers=headers)
    assert declared.status_code == 413
    assert declared.json()["error"] == "request_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: the limit applies to what arrives
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    streamed = await client.post(f"/connectors/{connector.id}", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "request_too_large"

    await run_worker()
    assert await inbox(owner_db, site.tenant_id) == []
    assert await status(site) == "VACANT"


# ---- unknown devices -------------------------------------------------------------------------------------


async def test_a_plate_read_from_an_unregistered_lane_camera_is_dead_lettered_and_replayable(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "openalpr", auth_mode="secret")
    await register_device(site, "gate-in-1", "LANE_CAMERA", lane=True)
    group = sample("openalpr_group.json")  # camera 2090267338, which this operator has not registered

    assert_accepted(await post_with_secret(client, connector, group), accepted=1)
    await run_worker()

    [dead] = await dead_events(site)
    assert (dead["kind"], dead["deviceExternalId"], dead["sourceEventId"]) == (
        "plate_read",
        "2090267338",
        group["best_uuid"],
    )
    assert "2090267338" in dead["reason"] and dead["attempts"] == 1
    assert dead["event"]["plate"] == "6PK132"  # kept as accepted, for the operator to judge
    assert await sightings(owner_db, site.tenant_id) == []

    # Once the camera is registered at the lane, replaying records the sighting.
    await register_device(site, "2090267338", "LANE_CAMERA", lane=True)
    ids = [edge["node"]["id"] for edge in (await site.admin.data(DEAD_IDS))["deadEvents"]["edges"]]
    assert await site.admin.data(REPLAY, {"ids": ids}) == {"replayDeadEvents": 1}
    await run_worker()
    assert [sighting["plate"] for sighting in await sightings(owner_db, site.tenant_id)] == ["6PK132"]
    assert await dead_events(site) == []


# ---- the worker is stopped -------------------------------------------------------------------------------


def tts_status(dev_eui: str, at: datetime, occupied: bool) -> dict[str, Any]:
    return {
        "end_device_ids": {"device_id": "bay", "dev_eui": dev_eui},
        "correlation_ids": [f"as:up:{uuid.uuid4().hex}"],
        "uplink_message": {
            "f_port": 1,
            "frm_payload": base64.b64encode(b"\x01" if occupied else b"\x00").decode(),
            "received_at": iso_utc(at),
        },
    }


async def history_rows(owner_db: Database, tenant_id: uuid.UUID) -> list[tuple[Any, ...]]:
    async with owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT space_id, status, started_at, ended_at FROM space_status_intervals WHERE tenant_id = :t "
                "ORDER BY space_id, started_at, ended_at NULLS LAST"
            ),
            {"t": tenant_id},
        )
        return [tuple(row) for row in rows]


async def inbox_ids(owner_db: Database, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    async with owner_db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT id FROM inbox_events WHERE tenant_id = :t"), {"t": tenant_id})
        return [row[0] for row in rows]


async def test_events_accepted_while_no_worker_runs_are_applied_once_when_it_runs(
    client, site: Site, add_connector, register_device, run_worker, run_sweep, owner_db: Database
) -> None:
    lorawan = await add_connector(site, "tts_v3", auth_mode="secret")
    curb = await add_connector(site, "cds")
    cameras = await add_connector(site, "openalpr", auth_mode="secret")
    await register_device(site, "70B3D57ED0000C01", space_index=0)
    await register_device(site, "cds-sensor-1", space_index=1)
    await register_device(site, "2090267338", "LANE_CAMERA", lane=True)
    start = next_second()

    # No worker runs while the senders post. The later reading arrives first.
    assert_accepted(
        await post_with_secret(client, lorawan, tts_status("70B3D57ED0000C01", start + timedelta(seconds=2), True)), 1
    )
    assert_accepted(await post_with_secret(client, lorawan, tts_status("70B3D57ED0000C01", start, False)), 1)
    park = {
        "data": {
            "events": [
                {
                    "event_id": "cds-1",
                    "event_type": "park_start",
                    "event_time": epoch_ms(start),
                    "data_source_device_id": "cds-sensor-1",
                }
            ]
        }
    }
    assert_accepted(await post_signed(client, curb, park), 1)
    assert_accepted(await post_signed(client, curb, park), 0, duplicates=1)  # the sender retries
    assert_accepted(await post_with_secret(client, cameras, sample("openalpr_group.json")), 1)

    pending = await inbox(owner_db, site.tenant_id)
    assert [row["state"] for row in pending] == ["pending"] * 4
    assert [await status(site, 0), await status(site, 1)] == ["VACANT", "VACANT"]
    assert (await device(site, "cds-sensor-1"))["lastMessageAt"] is None
    assert await sightings(owner_db, site.tenant_id) == []

    await run_worker()

    applied = await inbox(owner_db, site.tenant_id)
    assert [(row["state"], row["attempts"]) for row in applied] == [("applied", 1)] * 4
    assert [await status(site, 0), await status(site, 1)] == ["OCCUPIED", "OCCUPIED"]
    assert len(await sightings(owner_db, site.tenant_id)) == 1
    history = await history_rows(owner_db, site.tenant_id)
    devices_before = [await device(site, name) for name in ("70B3D57ED0000C01", "cds-sensor-1", "2090267338")]

    # The same jobs delivered again, and the inbox sweep looking for leftovers a minute later, change nothing.
    event_ids = [str(row_id) for row_id in await inbox_ids(owner_db, site.tenant_id)]
    await jobs.get_job_pool().enqueue_job(service.APPLY_JOB, str(site.tenant_id), event_ids)
    async with owner_db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE inbox_events SET received_at = received_at - interval '5 minutes' WHERE tenant_id = :t"),
            {"t": site.tenant_id},
        )
    await run_sweep(tasks.sweep_inbox)
    assert await run_worker() >= 1

    again = await inbox(owner_db, site.tenant_id)
    assert [(row["state"], row["attempts"], row["applied_at"]) for row in again] == [
        (row["state"], row["attempts"], row["applied_at"]) for row in applied
    ]
    assert [await status(site, 0), await status(site, 1)] == ["OCCUPIED", "OCCUPIED"]
    assert len(await sightings(owner_db, site.tenant_id)) == 1
    assert await history_rows(owner_db, site.tenant_id) == history
    assert [await device(site, name) for name in ("70B3D57ED0000C01", "cds-sensor-1", "2090267338")] == devices_before
