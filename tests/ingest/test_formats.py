"""Every inbound format through the real `POST /connectors/{id}`, applied by the real worker, and checked the way
users see the result: the space's status and the device's health through GraphQL, and (no GraphQL yet) the
plate sightings table. The shared samples are posted as their senders published them, then in variants."""

from __future__ import annotations

import base64
import copy
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from hub.db import Database
from hub.ingest.images import image_path
from tests.ingest.conftest import Site
from tests.ingest.support import (
    assert_accepted,
    device,
    epoch_ms,
    inbox,
    iso_utc,
    next_second,
    parse_time,
    post_signed,
    post_with_secret,
    sample,
    sightings,
    space,
    status,
)

# ---- The Things Stack v3 ---------------------------------------------------------------------------------

TTS_SAMPLE_DEV_EUI = "0004A30B001C0530"  # the shared sample's device


def tts_uplink(
    dev_eui: str,
    at: datetime,
    *,
    f_port: int | None = 1,
    frm_payload: bytes | None = None,
    decoded: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An uplink as The Things Stack posts it; like TTS, fields that are absent here are omitted, not null."""
    uplink: dict[str, Any] = {
        "f_cnt": 42,
        "rx_metadata": [{"gateway_ids": {"gateway_id": "gtw-futian-1"}, "rssi": -97, "snr": 6.5}],
        "received_at": iso_utc(at),
    }
    if f_port is not None:
        uplink["f_port"] = f_port
    if frm_payload is not None:
        uplink["frm_payload"] = base64.b64encode(frm_payload).decode()
    if decoded is not None:
        uplink["decoded_payload"] = decoded
    return {
        "end_device_ids": {
            "device_id": "bay-sensor",
            "application_ids": {"application_id": "parkhub"},
            "dev_eui": dev_eui,
        },
        "correlation_ids": [f"as:up:{uuid.uuid4().hex.upper()}", f"rpc:/ttn.lorawan.v3.AppAs/{uuid.uuid4()}"],
        "received_at": iso_utc(at),
        "uplink_message": uplink,
    }


async def test_tts_shared_sample_is_accepted_and_recorded_but_too_old_to_change_the_space(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "tts_v3", auth_mode="secret")
    await register_device(site, TTS_SAMPLE_DEV_EUI, space_index=0)

    uplink = sample("tts_v3_uplink.json")
    assert_accepted(await post_with_secret(client, connector, uplink), accepted=1)
    # TTS retries a webhook it thinks failed: the correlation id makes the retry a duplicate.
    assert_accepted(await post_with_secret(client, connector, uplink), accepted=0, duplicates=1)
    await run_worker()

    # The sample's uplink is from 2020, older than the space's hand-set status: recorded, not applied.
    [row] = await inbox(owner_db, site.tenant_id)
    assert (row["state"], row["outcome"]) == ("applied", "stale")
    assert row["source_event_id"] == "as:up:01E0WZGT6Y7657CPFPE5WEYDSQ"
    assert (await space(site))["reportedStatus"] == "VACANT"
    # The sensor still spoke: its last message is the uplink's time, as the network server received it.
    health = await device(site, TTS_SAMPLE_DEV_EUI)
    assert parse_time(health["lastMessageAt"]) == datetime(2020, 2, 12, 15, 15, 45, 789585, tzinfo=UTC)


async def test_tts_decoded_payload_is_used_before_the_raw_bytes(
    client, site: Site, add_connector, register_device, run_worker
) -> None:
    connector = await add_connector(site, "tts_v3", auth_mode="secret")
    await register_device(site, TTS_SAMPLE_DEV_EUI, space_index=0)
    now = datetime.now(UTC)
    # The shared sample with today's times, and raw bytes that say "free" while the formatter says occupied.
    uplink = sample("tts_v3_uplink.json")
    uplink["correlation_ids"] = [f"as:up:{uuid.uuid4().hex}"]
    uplink["received_at"] = uplink["uplink_message"]["received_at"] = iso_utc(now)
    uplink["uplink_message"]["frm_payload"] = "AA=="
    assert_accepted(await post_with_secret(client, connector, uplink), accepted=1)
    await run_worker()
    assert await status(site) == "OCCUPIED"


async def test_tts_uplink_without_f_port(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "tts_v3", auth_mode="secret")
    await register_device(site, "70B3D57ED0001234", space_index=1)
    now = datetime.now(UTC)

    # TTS leaves out f_port when it is 0: a MAC-only uplink, nothing from the sensor.
    mac_only = tts_uplink("70B3D57ED0001234", now, f_port=None)
    assert_accepted(await post_with_secret(client, connector, mac_only), accepted=0, ignored=1)
    # Without a port the raw bytes cannot be decoded: refused, naming why, and nothing stored.
    undecodable = await post_with_secret(
        client, connector, tts_uplink("70B3D57ED0001234", now, f_port=None, frm_payload=b"\x01")
    )
    assert undecodable.status_code == 400
    assert undecodable.json()["error"] == "malformed_payload" and "fPort" in undecodable.json()["message"]
    assert await inbox(owner_db, site.tenant_id) == []
    # A payload formatter's output does not need the port.
    decoded = tts_uplink("70B3D57ED0001234", now, f_port=None, decoded={"occupied": True})
    assert_accepted(await post_with_secret(client, connector, decoded), accepted=1)
    await run_worker()
    assert await status(site, 1) == "OCCUPIED"
    assert await status(site, 0) == "VACANT"


async def test_tts_bosch_status_bytes_on_f_port_1_occupy_and_free_the_space(
    client, site: Site, add_connector, register_device, run_worker
) -> None:
    connector = await add_connector(site, "tts_v3", auth_mode="secret")
    await register_device(site, "70B3D57ED0000A01", space_index=2)
    arrived = next_second()

    occupied = tts_uplink("70b3d57ed0000a01", arrived, frm_payload=base64.b64decode("AQ=="))
    assert_accepted(await post_with_secret(client, connector, occupied), accepted=1)
    await run_worker()
    assert await status(site, 2) == "OCCUPIED"

    left = tts_uplink("70b3d57ed0000a01", arrived + timedelta(seconds=20), frm_payload=base64.b64decode("AA=="))
    assert_accepted(await post_with_secret(client, connector, left), accepted=1)
    await run_worker()
    after = await space(site, 2)
    assert after["status"] == "VACANT"
    assert parse_time(after["statusConfirmedAt"]) == arrived + timedelta(seconds=20)


async def test_tts_bosch_heartbeat_reports_occupancy_and_temperature(
    client, site: Site, add_connector, register_device, run_worker
) -> None:
    connector = await add_connector(site, "tts_v3", auth_mode="secret")
    await register_device(site, "70B3D57ED0000A02", space_index=0)
    beat_at = next_second()

    heartbeat = tts_uplink("70B3D57ED0000A02", beat_at, f_port=2, frm_payload=base64.b64decode("Af8="))
    assert_accepted(await post_with_secret(client, connector, heartbeat), accepted=1)
    await run_worker()

    assert await status(site) == "OCCUPIED"
    health = await device(site, "70B3D57ED0000A02")
    assert health["temperatureC"] == -1
    assert health["online"] is True
    assert parse_time(health["lastHeartbeatAt"]) == beat_at
    assert parse_time(health["lastMessageAt"]) == beat_at


async def test_tts_bosch_start_up_reports_firmware_and_occupancy(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "tts_v3", auth_mode="secret")
    await register_device(site, "70B3D57ED0000A03", space_index=1)
    debug_codes = bytes(range(12))
    firmware, power_on, occupied = bytes([1, 4, 2]), bytes([2]), bytes([1])
    start_up = tts_uplink(
        "70B3D57ED0000A03", datetime.now(UTC), f_port=3, frm_payload=debug_codes + firmware + power_on + occupied
    )

    assert_accepted(await post_with_secret(client, connector, start_up), accepted=1)
    await run_worker()

    assert await status(site, 1) == "OCCUPIED"
    health = await device(site, "70B3D57ED0000A03")
    assert health["firmware"] == "1.4.2"
    assert health["lastHeartbeatAt"] is None  # a start-up is not a heartbeat
    [row] = await inbox(owner_db, site.tenant_id)
    assert row["kind"] == "startup" and row["body"]["details"]["reset_cause"] == "power_on"


# ---- ChirpStack v4 ---------------------------------------------------------------------------------------

CHIRPSTACK_SAMPLE_DEV_EUI = "0101010101010101"


def chirpstack_uplink(dev_eui: str, at: datetime, data: bytes, obj: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shared sample, made a new uplink of `dev_eui` at `at` carrying `data` (and a codec's `object`)."""
    uplink = sample("chirpstack_v4_up.json")
    uplink["deduplicationId"] = str(uuid.uuid4())
    uplink["time"] = at.isoformat()
    uplink["deviceInfo"]["devEui"] = dev_eui.lower()  # ChirpStack writes DevEUIs in lower case
    uplink["data"] = base64.b64encode(data).decode()
    if obj is not None:
        uplink["object"] = obj
    return uplink


async def test_chirpstack_shared_sample_is_accepted_once_and_recorded(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "chirpstack_v4", auth_mode="secret")
    await register_device(site, CHIRPSTACK_SAMPLE_DEV_EUI, space_index=0)
    uplink = sample("chirpstack_v4_up.json")

    assert_accepted(await post_with_secret(client, connector, uplink, query="?event=up"), accepted=1)
    assert_accepted(await post_with_secret(client, connector, uplink, query="?event=up"), accepted=0, duplicates=1)
    await run_worker()

    [row] = await inbox(owner_db, site.tenant_id)
    assert row["source_event_id"] == uplink["deduplicationId"]
    assert (row["state"], row["outcome"]) == ("applied", "stale")  # a 2022 uplink: recorded, not applied
    health = await device(site, CHIRPSTACK_SAMPLE_DEV_EUI)
    assert parse_time(health["lastMessageAt"]) == datetime(2022, 7, 18, 9, 34, 15, 775023, tzinfo=UTC)


async def test_chirpstack_uplinks_with_and_without_a_codec_object(
    client, site: Site, add_connector, register_device, run_worker
) -> None:
    connector = await add_connector(site, "chirpstack_v4", auth_mode="secret")
    await register_device(site, CHIRPSTACK_SAMPLE_DEV_EUI, space_index=0)
    start = next_second()

    raw_only = chirpstack_uplink(CHIRPSTACK_SAMPLE_DEV_EUI, start, b"\x01")
    assert_accepted(await post_with_secret(client, connector, raw_only, query="?event=up"), accepted=1)
    await run_worker()
    assert await status(site) == "OCCUPIED"

    # The codec's object speaks for the uplink, even where its bytes say otherwise.
    with_object = chirpstack_uplink(
        CHIRPSTACK_SAMPLE_DEV_EUI, start + timedelta(seconds=10), b"\x01", {"status": "free", "battery": 87}
    )
    assert_accepted(await post_with_secret(client, connector, with_object, query="?event=up"), accepted=1)
    await run_worker()
    assert await status(site) == "VACANT"
    assert (await device(site, CHIRPSTACK_SAMPLE_DEV_EUI))["batteryPercent"] == 87

    # Without ?event= an uplink is still recognized by its shape.
    no_event_name = chirpstack_uplink(CHIRPSTACK_SAMPLE_DEV_EUI, start + timedelta(seconds=20), b"\x01")
    assert_accepted(await post_with_secret(client, connector, no_event_name), accepted=1)
    await run_worker()
    assert await status(site) == "OCCUPIED"


async def test_chirpstack_uplink_without_f_port(client, site: Site, add_connector, owner_db: Database) -> None:
    connector = await add_connector(site, "chirpstack_v4", auth_mode="secret")
    # Like TTS, ChirpStack's JSON leaves out a zero fPort and empty data: a MAC-only uplink, acknowledged.
    mac_only = chirpstack_uplink(CHIRPSTACK_SAMPLE_DEV_EUI, datetime.now(UTC), b"")
    del mac_only["fPort"], mac_only["data"]
    assert_accepted(await post_with_secret(client, connector, mac_only, query="?event=up"), accepted=0, ignored=1)
    # Bytes without a port cannot be decoded: refused, naming why, and nothing stored.
    undecodable = chirpstack_uplink(CHIRPSTACK_SAMPLE_DEV_EUI, datetime.now(UTC), b"\x01")
    del undecodable["fPort"]
    response = await post_with_secret(client, connector, undecodable, query="?event=up")
    assert response.status_code == 400 and "fPort" in response.json()["message"]
    assert await inbox(owner_db, site.tenant_id) == []


@pytest.mark.parametrize("event", ["status", "join", "ack", "txack", "log", "location", "integration"])
async def test_chirpstack_events_other_than_up_are_acknowledged_and_ignored(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database, event: str
) -> None:
    connector = await add_connector(site, "chirpstack_v4", auth_mode="secret")
    await register_device(site, CHIRPSTACK_SAMPLE_DEV_EUI, space_index=0)
    body = {
        "deduplicationId": str(uuid.uuid4()),
        "time": datetime.now(UTC).isoformat(),
        "deviceInfo": sample("chirpstack_v4_up.json")["deviceInfo"],
        "margin": 7,
        "batteryLevel": 55.5,
        "level": "INFO",
    }
    assert_accepted(await post_with_secret(client, connector, body, query=f"?event={event}"), accepted=0, ignored=1)
    await run_worker()
    assert await inbox(owner_db, site.tenant_id) == []
    health = await device(site, CHIRPSTACK_SAMPLE_DEV_EUI)
    assert (health["lastMessageAt"], health["batteryPercent"]) == (None, None)


# ---- CDS 1.1 Events --------------------------------------------------------------------------------------

CDS_SAMPLE_DEVICE = "0fcb51b0-4529-4d28-a339-81e9a9bbcdb3"


def cds_event(event_type: str, device_id: str, at: datetime, *, as_text: bool = False) -> dict[str, Any]:
    """A CDS event in the shape of the shared sample; `as_text` sends the time as the samples do, a string."""
    event = copy.deepcopy(sample("cds_events.json")["data"]["events"][0])
    event.update(
        event_id=str(uuid.uuid4()),
        event_type=event_type,
        data_source_device_id=device_id,
        event_time=str(epoch_ms(at)) if as_text else epoch_ms(at),
        event_publication_time=epoch_ms(at),
    )
    return event


def cds_batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"version": "1.1", "time_zone": "Asia/Shanghai", "data": {"events": list(events)}}


async def test_cds_shared_sample_is_accepted_and_recorded(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "cds")
    await register_device(site, CDS_SAMPLE_DEVICE, space_index=0)
    assert_accepted(await post_signed(client, connector, sample("cds_events.json")), accepted=1)
    await run_worker()
    [row] = await inbox(owner_db, site.tenant_id)
    assert row["source_event_id"] == "7d8a5885-e949-4ac9-afb7-fa4d43b68530" and row["kind"] == "occupancy"
    assert (row["state"], row["outcome"]) == ("applied", "stale")  # from 2019
    assert row["occurred_at"] == datetime(2019, 3, 15, 19, 36, 18, 632000, tzinfo=UTC)  # the string epoch ms
    assert parse_time((await device(site, CDS_SAMPLE_DEVICE))["lastMessageAt"]) == row["occurred_at"]


async def test_cds_park_start_and_park_end_with_integer_and_string_times(
    client, site: Site, add_connector, register_device, run_worker
) -> None:
    connector = await add_connector(site, "cds")
    await register_device(site, "curb-sensor-1", space_index=0)
    await register_device(site, "curb-sensor-2", space_index=1)
    arrived = next_second()

    batch = cds_batch(
        cds_event("park_start", "curb-sensor-1", arrived),
        cds_event("park_start", "curb-sensor-2", arrived, as_text=True),
        cds_event("enter_area", "curb-sensor-2", arrived),
    )
    assert_accepted(await post_signed(client, connector, batch), accepted=2, ignored=1)
    await run_worker()
    assert [await status(site, 0), await status(site, 1)] == ["OCCUPIED", "OCCUPIED"]
    assert parse_time((await space(site, 1))["statusConfirmedAt"]) == arrived

    left = cds_batch(cds_event("park_end", "curb-sensor-1", arrived + timedelta(seconds=3), as_text=True))
    assert_accepted(await post_signed(client, connector, left), accepted=1)
    await run_worker()
    assert [await status(site, 0), await status(site, 1)] == ["VACANT", "OCCUPIED"]


async def test_cds_event_sent_again_in_another_batch_is_a_duplicate_applied_once(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "cds")
    await register_device(site, "curb-sensor-1", space_index=0)
    arrived = next_second()
    park_start = cds_event("park_start", "curb-sensor-1", arrived)
    park_end = cds_event("park_end", "curb-sensor-1", arrived + timedelta(seconds=1))

    assert_accepted(await post_signed(client, connector, cds_batch(park_start)), accepted=1)
    await run_worker()
    # The sender re-sends what it is unsure of along with the new event.
    assert_accepted(await post_signed(client, connector, cds_batch(park_start, park_end)), accepted=1, duplicates=1)
    await run_worker()

    rows = await inbox(owner_db, site.tenant_id)
    assert [(row["source_event_id"], row["state"], row["outcome"]) for row in rows] == [
        (park_start["event_id"], "applied", "changed"),
        (park_end["event_id"], "applied", "changed"),
    ]
    assert await status(site) == "VACANT"


# ---- Plate Recognizer ------------------------------------------------------------------------------------

CAMERA = "camera-1"  # the shared sample's camera
# A real (tiny) PNG: what a camera uploads with its recognition.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def recognition(camera: str, timestamp: str, *plates: str) -> dict[str, Any]:
    """A Plate Recognizer webhook body in the shape of the shared sample, with one result per plate."""
    body = sample("platerecognizer_stream.json")
    body["hook"]["id"] = body["data"]["camera_id"] = camera
    body["data"]["timestamp"] = timestamp
    template = body["data"]["results"][0]
    body["data"]["results"] = [{**template, "plate": plate, "candidates": []} for plate in plates]
    return body


def multipart(recognition_body: dict[str, Any], image: bytes) -> tuple[bytes, str]:
    """`multipart/form-data` as the camera sends it: the recognition in a `json` field, the picture in `upload`."""
    request = httpx.Request(
        "POST",
        "http://camera.invalid/",
        data={"json": orjson.dumps(recognition_body).decode()},
        files={"upload": ("screenshot.png", image, "image/png")},
    )
    return request.read(), request.headers["content-type"]


async def test_plate_recognizer_shared_sample_records_a_sighting_at_the_curb(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "plate_recognizer", auth_mode="secret")
    await register_device(site, CAMERA, "CURB_CAMERA", curb_zone=True)
    body = sample("platerecognizer_stream.json")

    assert_accepted(await post_with_secret(client, connector, body), accepted=1)
    # Results carry no id: the same recognition posted again is known by its content.
    assert_accepted(await post_with_secret(client, connector, body), accepted=0, duplicates=1)
    await run_worker()

    [sighting] = await sightings(owner_db, site.tenant_id)
    assert sighting["device"] == CAMERA
    assert (sighting["plate"], sighting["plate_valid"]) == ("PL8REC", True)  # sent as "pl8rec"
    assert sighting["confidence"] == pytest.approx(0.902)
    assert sighting["seen_at"] == datetime(2021, 9, 29, 5, 56, 13, 606935, tzinfo=UTC)
    assert sighting["facility_id"] is not None and (sighting["space_id"], sighting["lane_id"]) == (None, None)
    assert sighting["image_ref"] is None
    assert (await device(site, CAMERA))["lastMessageAt"] is not None


async def test_plate_recognizer_multipart_stores_the_image_once_by_reference(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database, media_dir
) -> None:
    connector = await add_connector(site, "plate_recognizer", auth_mode="secret")
    await register_device(site, CAMERA, "CURB_CAMERA", curb_zone=True)
    # Two cars in one picture: two sightings, one stored image.
    body, content_type = multipart(recognition(CAMERA, iso_utc(datetime.now(UTC)), "粤B12345", "粤BD12345"), PNG)

    response = await post_with_secret(client, connector, None, content=body, content_type=content_type)
    assert_accepted(response, accepted=2)
    await run_worker()

    reads = await sightings(owner_db, site.tenant_id)
    assert sorted(read["plate"] for read in reads) == ["粤B12345", "粤BD12345"]
    reference = f"sha256:{hashlib.sha256(PNG).hexdigest()}"
    assert {read["image_ref"] for read in reads} == {reference}
    assert image_path(media_dir, reference).read_bytes() == PNG
    assert [path for path in media_dir.rglob("*") if path.is_file()] == [image_path(media_dir, reference)]


async def test_plate_recognizer_multipart_without_the_json_field_is_refused(
    client, site: Site, add_connector, owner_db: Database, media_dir
) -> None:
    connector = await add_connector(site, "plate_recognizer", auth_mode="secret")
    request = httpx.Request("POST", "http://camera.invalid/", files={"upload": ("shot.png", PNG, "image/png")})
    response = await post_with_secret(
        client, connector, None, content=request.read(), content_type=request.headers["content-type"]
    )
    assert response.status_code == 400 and "json" in response.json()["message"]
    assert await inbox(owner_db, site.tenant_id) == []
    assert not media_dir.exists()


async def test_plate_recognizer_snapshot_time_without_a_zone_is_read_in_the_connectors_zone(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "plate_recognizer", auth_mode="secret")  # Asia/Shanghai
    await register_device(site, CAMERA, "CURB_CAMERA", curb_zone=True)
    body = recognition(CAMERA, "2025-03-01 08:00:00.250000", "粤B12345")

    assert_accepted(await post_with_secret(client, connector, body), accepted=1)
    await run_worker()
    [sighting] = await sightings(owner_db, site.tenant_id)
    assert sighting["seen_at"] == datetime(2025, 3, 1, 0, 0, 0, 250000, tzinfo=UTC)


async def test_plate_recognizer_plates_are_normalized_and_unreadable_ones_kept_flagged(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "plate_recognizer", auth_mode="signature")
    await register_device(site, CAMERA, "CURB_CAMERA", curb_zone=True)
    body = recognition(CAMERA, iso_utc(datetime.now(UTC)), "粤b·d12345", "粤b 1234", "ab-c 123")

    assert_accepted(await post_signed(client, connector, body), accepted=3)
    await run_worker()

    reads = {(read["plate"], read["plate_valid"]) for read in await sightings(owner_db, site.tenant_id)}
    assert reads == {("粤BD12345", True), ("粤B1234", False), ("ABC123", True)}
    assert {row["state"] for row in await inbox(owner_db, site.tenant_id)} == {"applied"}


# ---- OpenALPR --------------------------------------------------------------------------------------------

ALPR_CAMERA = "2090267338"  # the shared sample's camera_id, sent as a number


async def test_openalpr_group_sample_records_a_sighting_at_the_lane(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "openalpr", auth_mode="secret")
    await register_device(site, ALPR_CAMERA, "LANE_CAMERA", lane=True)
    group = sample("openalpr_group.json")

    assert_accepted(await post_with_secret(client, connector, group), accepted=1)
    assert_accepted(await post_with_secret(client, connector, group), accepted=0, duplicates=1)  # same best_uuid
    await run_worker()

    [sighting] = await sightings(owner_db, site.tenant_id)
    assert (sighting["device"], sighting["plate"], sighting["plate_valid"]) == (ALPR_CAMERA, "6PK132", True)
    assert sighting["confidence"] == pytest.approx(group["best_confidence"] / 100)
    assert sighting["seen_at"] == datetime(2018, 10, 7, 15, 1, 53, 527000, tzinfo=UTC)
    assert sighting["lane_id"] is not None and sighting["space_id"] is None


async def test_openalpr_heartbeat_updates_the_cameras_health_and_results_are_ignored(
    client, site: Site, add_connector, register_device, run_worker, owner_db: Database
) -> None:
    connector = await add_connector(site, "openalpr", auth_mode="secret")
    await register_device(site, ALPR_CAMERA, "LANE_CAMERA", lane=True)
    beat_at = next_second()
    heartbeat = {
        "version": 2,
        "data_type": "heartbeat",
        "agent_uid": "YYYYYYYYYYYYYYYYYYYY",
        "agent_version": "2.8.101",
        "timestamp": epoch_ms(beat_at),
        "video_streams": [{"camera_id": int(ALPR_CAMERA), "camera_name": "Gate in", "fps": 12, "is_streaming": True}],
    }
    assert_accepted(await post_with_secret(client, connector, heartbeat), accepted=1)
    results = {"data_type": "alpr_results", "epoch_time": epoch_ms(beat_at), "results": []}
    assert_accepted(await post_with_secret(client, connector, results), accepted=0, ignored=1)
    await run_worker()

    health = await device(site, ALPR_CAMERA)
    assert health["online"] is True
    assert parse_time(health["lastHeartbeatAt"]) == beat_at
    assert parse_time(health["lastMessageAt"]) == beat_at
    assert await sightings(owner_db, site.tenant_id) == []
