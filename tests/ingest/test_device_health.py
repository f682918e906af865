"""Device health through the real endpoint and the real jobs: a sensor that goes silent longer than its interval
is offline after the sweep and its space reads unknown; the sender's own comms_lost / comms_restored do the same;
a new message brings the device back. Checked through GraphQL (`devices`, `node` of the space)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from hub.db import Database
from hub.ingest import tasks
from tests.ingest.conftest import Site
from tests.ingest.support import (
    assert_accepted,
    device,
    epoch_ms,
    iso_utc,
    next_second,
    parse_time,
    post_signed,
    post_with_secret,
    space,
    status,
)

SILENT = "70B3D57ED0000B01"
CHATTY = "70B3D57ED0000B02"


def bosch_status_uplink(dev_eui: str, at: datetime, occupied: bool) -> dict[str, Any]:
    """A The Things Stack uplink of a Bosch sensor's parking status (fPort 1)."""
    return {
        "end_device_ids": {"device_id": dev_eui.lower(), "dev_eui": dev_eui},
        "correlation_ids": [f"as:up:{uuid.uuid4().hex}"],
        "received_at": iso_utc(at),
        "uplink_message": {
            "f_port": 1,
            "frm_payload": base64.b64encode(b"\x01" if occupied else b"\x00").decode(),
            "received_at": iso_utc(at),
        },
    }


async def set_up_an_hour_ago(owner_db: Database, site: Site) -> None:
    """As if the operator had set the site's spaces vacant by hand an hour ago (their confirmation and the open
    interval of their history), so readings from the last half hour are newer than that, not stale."""
    async with owner_db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE spaces SET status_confirmed_at = status_confirmed_at - interval '1 hour' WHERE tenant_id = :t"
            ),
            {"t": site.tenant_id},
        )
        await conn.execute(
            text("UPDATE space_status_intervals SET started_at = started_at - interval '1 hour' WHERE tenant_id = :t"),
            {"t": site.tenant_id},
        )


async def test_a_sensor_silent_longer_than_its_interval_goes_offline_and_a_new_message_brings_it_back(
    client, site: Site, add_connector, register_device, run_worker, run_sweep, owner_db: Database
) -> None:
    connector = await add_connector(site, "tts_v3", auth_mode="secret")
    await register_device(site, SILENT, space_index=0, offline_after_seconds=300)
    await register_device(site, CHATTY, space_index=1, offline_after_seconds=300)
    await set_up_an_hour_ago(owner_db, site)
    now = datetime.now(UTC)
    last_heard = now - timedelta(minutes=10)  # recent enough to rely on, longer ago than the sensor's 5 minutes

    assert_accepted(await post_with_secret(client, connector, bosch_status_uplink(SILENT, last_heard, True)), 1)
    assert_accepted(await post_with_secret(client, connector, bosch_status_uplink(CHATTY, now, True)), 1)
    await run_worker()
    assert [await status(site, 0), await status(site, 1)] == ["OCCUPIED", "OCCUPIED"]
    assert (await device(site, SILENT))["online"] is True  # nobody has looked yet

    await run_sweep(tasks.sweep_silent_devices)

    silent = await device(site, SILENT)
    assert silent["online"] is False
    assert parse_time(silent["offlineSince"]) == last_heard + timedelta(seconds=300)
    assert await space(site, 0) == {
        "status": "UNKNOWN",  # nobody vouches for it any more: never read as vacant or occupied
        "reportedStatus": "OCCUPIED",
        "statusConfirmedAt": None,
    }
    # The sensor that kept talking is untouched.
    assert (await device(site, CHATTY))["online"] is True
    assert await status(site, 1) == "OCCUPIED"

    back = next_second()
    assert_accepted(await post_with_secret(client, connector, bosch_status_uplink(SILENT, back, False)), 1)
    await run_worker()
    silent = await device(site, SILENT)
    assert (silent["online"], silent["offlineSince"]) == (True, None)
    assert parse_time(silent["lastMessageAt"]) == back
    assert await status(site, 0) == "VACANT"

    # A sweep right after finds nothing silent.
    await run_sweep(tasks.sweep_silent_devices)
    assert (await device(site, SILENT))["online"] is True
    assert await status(site, 0) == "VACANT"


def cds_event(event_type: str, device_id: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "event_time": epoch_ms(at),
        "data_source_type": "in_ground",
        "data_source_device_id": device_id,
        "curb_zone_id": "futian-z1",
    }


async def test_cds_comms_lost_makes_the_space_unknown_until_the_sensor_reports_again(
    client, site: Site, add_connector, register_device, run_worker
) -> None:
    connector = await add_connector(site, "cds")
    await register_device(site, "cds-sensor-7", space_index=2)
    start = next_second()

    async def post(event_type: str, at: datetime) -> None:
        batch = {"data": {"events": [cds_event(event_type, "cds-sensor-7", at)]}}
        assert_accepted(await post_signed(client, connector, batch), accepted=1)
        await run_worker()

    await post("park_start", start)
    assert await status(site, 2) == "OCCUPIED"

    await post("comms_lost", start + timedelta(seconds=1))
    health = await device(site, "cds-sensor-7")
    assert health["online"] is False
    assert parse_time(health["offlineSince"]) == start + timedelta(seconds=1)
    assert await status(site, 2) == "UNKNOWN"

    # Back in touch, but it has not said what is on the space since: still unknown.
    await post("comms_restored", start + timedelta(seconds=2))
    health = await device(site, "cds-sensor-7")
    assert (health["online"], health["offlineSince"]) == (True, None)
    assert parse_time(health["lastMessageAt"]) == start + timedelta(seconds=2)
    assert await status(site, 2) == "UNKNOWN"

    await post("park_end", start + timedelta(seconds=3))
    assert await status(site, 2) == "VACANT"


async def test_comms_lost_and_restored_in_one_batch_leave_the_device_online(
    client, site: Site, add_connector, register_device, run_worker
) -> None:
    connector = await add_connector(site, "cds")
    await register_device(site, "cds-sensor-8", space_index=0)
    start = next_second()
    # Sent out of order; applied in the order they happened.
    batch = {
        "data": {
            "events": [
                cds_event("comms_restored", "cds-sensor-8", start + timedelta(seconds=2)),
                cds_event("comms_lost", "cds-sensor-8", start + timedelta(seconds=1)),
                cds_event("park_start", "cds-sensor-8", start),
            ]
        }
    }
    assert_accepted(await post_signed(client, connector, batch), accepted=3)
    await run_worker()
    health = await device(site, "cds-sensor-8")
    assert (health["online"], health["offlineSince"]) == (True, None)
    assert await status(site, 0) == "UNKNOWN"


async def test_a_late_report_of_an_old_outage_does_not_take_a_talking_sensor_offline(
    client, site: Site, add_connector, register_device, run_worker
) -> None:
    connector = await add_connector(site, "cds")
    await register_device(site, "cds-sensor-9", space_index=1)
    start = next_second()
    batch = {"data": {"events": [cds_event("park_start", "cds-sensor-9", start + timedelta(seconds=2))]}}
    assert_accepted(await post_signed(client, connector, batch), accepted=1)
    await run_worker()
    # The outage it reports ended before the sensor's last message.
    late = {"data": {"events": [cds_event("comms_lost", "cds-sensor-9", start + timedelta(seconds=1))]}}
    assert_accepted(await post_signed(client, connector, late), accepted=1)
    await run_worker()
    health = await device(site, "cds-sensor-9")
    assert (health["online"], health["offlineSince"]) == (True, None)
    assert await status(site, 1) == "OCCUPIED"


async def test_a_message_older_than_the_outage_does_not_end_it(
    client, site: Site, add_connector, register_device, run_worker
) -> None:
    connector = await add_connector(site, "cds")
    await register_device(site, "cds-sensor-10", space_index=1)
    start = next_second()
    lost = {"data": {"events": [cds_event("comms_lost", "cds-sensor-10", start + timedelta(seconds=2))]}}
    assert_accepted(await post_signed(client, connector, lost), accepted=1)
    await run_worker()
    # Delayed in the network: sent before the outage began.
    old = {"data": {"events": [cds_event("park_start", "cds-sensor-10", start + timedelta(seconds=1))]}}
    assert_accepted(await post_signed(client, connector, old), accepted=1)
    await run_worker()
    health = await device(site, "cds-sensor-10")
    assert health["online"] is False
    assert parse_time(health["offlineSince"]) == start + timedelta(seconds=2)
    assert await status(site, 1) == "UNKNOWN"
