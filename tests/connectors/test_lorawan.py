"""The Things Stack v3 and ChirpStack v4 uplinks."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.events import EventKind, PayloadError
from connectors.formats import ConnectorFormat
from tests.connectors.support import parse_as, sample

TTS = ConnectorFormat.TTS_V3
CHIRPSTACK = ConnectorFormat.CHIRPSTACK_V4


def tts_uplink(**changes: Any) -> dict[str, Any]:
    """The TTS sample with `uplink_message` fields changed (None removes a field, as TTS omits it)."""
    body = copy.deepcopy(sample("tts_v3_uplink.json"))
    for name, value in changes.items():
        if value is None:
            body["uplink_message"].pop(name, None)
        else:
            body["uplink_message"][name] = value
    return body


def chirpstack_up(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(sample("chirpstack_v4_up.json"))
    for name, value in changes.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


# ---- The Things Stack ----------------------------------------------------------------------------------


def test_tts_sample_uses_the_decoded_payload() -> None:
    parsed = parse_as(TTS, sample("tts_v3_uplink.json"))
    [event] = parsed.events
    assert event.source_event_id == "as:up:01E0WZGT6Y7657CPFPE5WEYDSQ"
    assert event.device_external_id == "0004A30B001C0530"
    assert event.kind is EventKind.OCCUPANCY
    assert event.occupied is True
    # The application server's received_at, nanoseconds truncated to microseconds.
    assert event.occurred_at == datetime(2020, 2, 12, 15, 15, 45, 789585, tzinfo=UTC)
    assert event.details["f_port"] == 1
    assert event.details["rssi"] == -35
    assert event.details["device_name"] == "dev1"


def test_tts_without_decoded_payload_decodes_the_bosch_bytes() -> None:
    [event] = parse_as(TTS, tts_uplink(decoded_payload=None, frm_payload="AA==")).events
    assert (event.kind, event.occupied) == (EventKind.OCCUPANCY, False)


def test_tts_heartbeat_bytes_carry_temperature() -> None:
    [event] = parse_as(TTS, tts_uplink(decoded_payload=None, f_port=2, frm_payload="Af8=")).events
    assert event.kind is EventKind.HEARTBEAT
    assert (event.occupied, event.temperature_c) == (True, -1.0)


def test_tts_startup_bytes_keep_firmware_and_reset_cause() -> None:
    frame = "AAAAAAAAAAAAAAAAAQIDAQE="  # 12 debug bytes, firmware 1.2.3, watchdog reset, occupied
    [event] = parse_as(TTS, tts_uplink(decoded_payload=None, f_port=3, frm_payload=frame)).events
    assert event.kind is EventKind.STARTUP
    assert event.occupied is True
    assert event.details["firmware"] == "1.2.3"
    assert event.details["reset_cause"] == "watchdog"


def test_tts_without_f_port_still_uses_the_decoded_payload() -> None:
    body = tts_uplink(f_port=None, f_cnt=None, decoded_payload={"occupancy": "free", "battery": 93})
    [event] = parse_as(TTS, body).events
    assert (event.kind, event.occupied, event.battery_percent) == (EventKind.OCCUPANCY, False, 93.0)
    assert "f_port" not in event.details
    assert event.details["f_cnt"] == 0


def test_tts_without_f_port_or_decoded_payload_cannot_decode_bytes() -> None:
    with pytest.raises(PayloadError, match="no fPort"):
        parse_as(TTS, tts_uplink(f_port=None, decoded_payload=None))


def test_tts_mac_only_uplink_is_acknowledged_and_ignored() -> None:
    parsed = parse_as(TTS, tts_uplink(f_port=None, frm_payload=None, decoded_payload=None))
    assert (parsed.events, parsed.ignored) == ([], 1)


def test_tts_join_accept_is_acknowledged_and_ignored() -> None:
    body = {"end_device_ids": {"device_id": "dev1"}, "join_accept": {"session_key_id": "AXA50tHUGUucuzS/bCGMNw=="}}
    parsed = parse_as(TTS, body)
    assert (parsed.events, parsed.ignored) == ([], 1)


def test_tts_decoded_heartbeat_with_temperature() -> None:
    decoded = {"type": "heartbeat", "status": "occupied", "temperature": 23.5}
    [event] = parse_as(TTS, tts_uplink(f_port=2, decoded_payload=decoded)).events
    assert (event.kind, event.occupied, event.temperature_c) == (EventKind.HEARTBEAT, True, 23.5)


def test_tts_decoded_payload_without_known_keys_falls_back_to_bytes() -> None:
    [event] = parse_as(TTS, tts_uplink(decoded_payload={"bytes": [1]}, frm_payload="AQ==")).events
    assert event.occupied is True


def test_tts_decoded_occupancy_of_unknown_meaning_is_rejected() -> None:
    with pytest.raises(PayloadError, match=r"uplink_message\.decoded_payload\.occupied 'maybe'"):
        parse_as(TTS, tts_uplink(decoded_payload={"occupied": "maybe"}))


def test_tts_nanosecond_time_falls_back_to_the_message_received_at() -> None:
    [event] = parse_as(TTS, tts_uplink(received_at=None)).events
    assert event.occurred_at == datetime(2020, 2, 12, 15, 15, 46, 14773, tzinfo=UTC)


def test_tts_dedupe_id_prefers_the_uplink_correlation_id() -> None:
    body = sample("tts_v3_uplink.json")
    body["correlation_ids"] = ["gs:conn:01E0", "as:up:01E1XYZ", "rpc:/ttn.lorawan.v3.AppAs/x"]
    assert parse_as(TTS, body).events[0].source_event_id == "as:up:01E1XYZ"
    body["correlation_ids"] = ["gs:uplink:01E2"]
    assert parse_as(TTS, body).events[0].source_event_id == "gs:uplink:01E2"
    del body["correlation_ids"]
    assert parse_as(TTS, body, webhook_id="msg_9").events[0].source_event_id == "msg_9"
    with pytest.raises(PayloadError, match="nothing identifies it"):
        parse_as(TTS, body)


def test_tts_dev_eui_is_upper_cased_and_validated() -> None:
    body = sample("tts_v3_uplink.json")
    body["end_device_ids"]["dev_eui"] = "0004a30b001c0530"
    assert parse_as(TTS, body).events[0].device_external_id == "0004A30B001C0530"
    body["end_device_ids"]["dev_eui"] = "0004a30b"
    with pytest.raises(PayloadError, match="not a DevEUI"):
        parse_as(TTS, body)
    del body["end_device_ids"]["dev_eui"]
    with pytest.raises(PayloadError, match=r"end_device_ids\.dev_eui is required"):
        parse_as(TTS, body)


def test_tts_message_that_is_not_an_uplink_is_rejected() -> None:
    with pytest.raises(PayloadError, match="no uplink_message"):
        parse_as(TTS, {"end_device_ids": {"dev_eui": "0004A30B001C0530"}})


def test_tts_invalid_base64_is_rejected() -> None:
    with pytest.raises(PayloadError, match=r"uplink_message\.frm_payload is not valid base64"):
        parse_as(TTS, tts_uplink(decoded_payload=None, frm_payload="A*=="))


# ---- ChirpStack ----------------------------------------------------------------------------------------


def test_chirpstack_sample_decodes_the_bytes() -> None:
    [event] = parse_as(CHIRPSTACK, sample("chirpstack_v4_up.json"), query={"event": "up"}).events
    assert event.source_event_id == "3ac7e3c4-4401-4b8d-9386-a5c902f9202d"
    assert event.device_external_id == "0101010101010101"
    assert (event.kind, event.occupied) == (EventKind.OCCUPANCY, False)
    assert event.occurred_at == datetime(2022, 7, 18, 9, 34, 15, 775023, tzinfo=UTC)
    assert event.details["rssi"] == -36


def test_chirpstack_uses_the_codec_object_when_present() -> None:
    body = chirpstack_up(object={"status": "occupied", "battery": 55})
    [event] = parse_as(CHIRPSTACK, body, query={"event": "up"}).events
    assert (event.occupied, event.battery_percent) == (True, 55.0)


def test_chirpstack_lowercase_dev_eui_is_upper_cased() -> None:
    body = chirpstack_up()
    body["deviceInfo"]["devEui"] = "a84041000181c6e5"
    assert parse_as(CHIRPSTACK, body, query={"event": "up"}).events[0].device_external_id == "A84041000181C6E5"


@pytest.mark.parametrize("event_name", ["join", "status", "ack", "txack", "log", "location", "integration"])
def test_chirpstack_other_events_are_acknowledged_and_ignored(event_name: str) -> None:
    join = {"deduplicationId": "c9dbe358", "time": "2022-07-18T09:33:28Z", "deviceInfo": {"devEui": "0101010101010101"}}
    parsed = parse_as(CHIRPSTACK, join, query={"event": event_name})
    assert (parsed.events, parsed.ignored) == ([], 1)


def test_chirpstack_without_event_parameter_accepts_an_uplink_body() -> None:
    parsed = parse_as(CHIRPSTACK, sample("chirpstack_v4_up.json"))
    assert parsed.events[0].occupied is False


@pytest.mark.parametrize(
    ("query", "says"), [({}, "no \\?event= parameter"), ({"event": "upp"}, "unknown \\?event='upp'")]
)
def test_chirpstack_without_known_event_rejects_a_body_that_is_not_an_uplink(query: dict[str, str], says: str) -> None:
    join = {"deduplicationId": "c9dbe358", "time": "2022-07-18T09:33:28Z", "deviceInfo": {"devEui": "0101010101010101"}}
    with pytest.raises(PayloadError, match=says):
        parse_as(CHIRPSTACK, join, query=query)


def test_chirpstack_protobuf_is_refused_with_advice() -> None:
    with pytest.raises(PayloadError, match="set the HTTP integration's payload encoding to JSON"):
        parse_as(CHIRPSTACK, b"\x0a\x24\x33", content_type="application/octet-stream", query={"event": "up"})


def test_chirpstack_without_fport_and_codec_cannot_decode() -> None:
    with pytest.raises(PayloadError, match="no fPort"):
        parse_as(CHIRPSTACK, chirpstack_up(fPort=None), query={"event": "up"})


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"deduplicationId": None}, "deduplicationId is required"),
        ({"time": None}, "time is required"),
        ({"time": 1658136855775}, "time must be an ISO 8601 time, got a number"),
        ({"fPort": "1"}, "fPort must be an integer, got a string"),
        ({"data": "not base64!"}, "data is not valid base64"),
        ({"data": "AAE="}, "has 1 bytes, this one has 2"),
    ],
)
def test_chirpstack_wrong_fields(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        parse_as(CHIRPSTACK, chirpstack_up(**changes), query={"event": "up"})
