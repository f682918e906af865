"""Plate Recognizer (JSON and multipart) and OpenALPR."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from connectors.events import EventKind, PayloadError
from connectors.formats import ConnectorFormat
from tests.connectors.support import RECEIVED_AT, parse_as, sample, sample_bytes

PLATE_RECOGNIZER = ConnectorFormat.PLATE_RECOGNIZER
OPENALPR = ConnectorFormat.OPENALPR
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) + b"\r\n--not-the-boundary\r\n\xff\xd9"
BOUNDARY = "----parkhub7MA4YWxkTrZu0gW"


def multipart(parts: list[tuple[str, str | None, str | None, bytes]], *, close: bool = True) -> bytes:
    """A multipart/form-data body of (name, filename, content type, bytes) parts."""
    body = b""
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if content_type:
            body += f"Content-Type: {content_type}\r\n".encode()
        body += b"\r\n" + data + b"\r\n"
    return body + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


# ---- Plate Recognizer ----------------------------------------------------------------------------------


def test_plate_recognizer_sample() -> None:
    [event] = parse_as(PLATE_RECOGNIZER, sample("platerecognizer_stream.json")).events
    assert event.kind is EventKind.PLATE_READ
    assert (event.plate, event.plate_raw, event.plate_valid) == ("PL8REC", "pl8rec", True)
    assert event.confidence == 0.902
    assert event.device_external_id == "camera-1"
    assert event.occurred_at == datetime(2021, 9, 29, 5, 56, 13, 606935, tzinfo=UTC)
    assert event.details["region"] == "us-ca"
    assert event.details["vehicle_type"] == "Sedan"
    assert event.details["candidates"] == ["pl8rec", "plbrec"]
    assert event.image is None


def test_plate_recognizer_multipart_carries_the_image() -> None:
    body = multipart(
        [
            ("json", None, None, sample_bytes("platerecognizer_stream.json")),
            ("upload", "image.jpg", "image/jpeg", JPEG),
        ]
    )
    [event] = parse_as(PLATE_RECOGNIZER, body, content_type=MULTIPART).events
    assert event.plate == "PL8REC"
    assert event.image == JPEG
    assert event.image_content_type == "image/jpeg"


def test_plate_recognizer_multipart_image_type_is_sniffed_when_not_given() -> None:
    body = multipart(
        [("upload", "x", None, JPEG), ("json", None, "application/json", sample_bytes("platerecognizer_stream.json"))]
    )
    [event] = parse_as(PLATE_RECOGNIZER, body, content_type=MULTIPART).events
    assert (event.image, event.image_content_type) == (JPEG, "image/jpeg")


def test_plate_recognizer_multipart_without_upload_has_no_image() -> None:
    body = multipart([("json", None, None, sample_bytes("platerecognizer_stream.json"))])
    [event] = parse_as(PLATE_RECOGNIZER, body, content_type=MULTIPART).events
    assert (event.image, event.image_content_type) == (None, None)


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (multipart([("upload", "x.jpg", "image/jpeg", JPEG)]), MULTIPART, "no `json` field"),
        (multipart([("json", None, None, b"{not json")]), MULTIPART, "not valid JSON"),
        (multipart([("json", None, None, b"{}")], close=False), MULTIPART, "truncated"),
        (b"garbage without boundaries", MULTIPART, "truncated|malformed"),
        (b"--x\r\n", "multipart/form-data", "without a boundary"),
    ],
)
def test_plate_recognizer_bad_multipart(body: bytes, content_type: str, says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        parse_as(PLATE_RECOGNIZER, body, content_type=content_type)


def test_plate_recognizer_naive_timestamp_is_read_in_the_default_zone() -> None:
    body = sample("platerecognizer_stream.json")
    body["data"]["timestamp"] = "2025-03-01 15:58:00.250000"  # Snapshot style, Shanghai local time
    [event] = parse_as(PLATE_RECOGNIZER, body).events
    assert event.occurred_at == datetime(2025, 3, 1, 7, 58, 0, 250000, tzinfo=UTC)


def test_plate_recognizer_dedupe_ids() -> None:
    body = sample("platerecognizer_stream.json")
    body["data"]["results"].append({"plate": "粤b12345", "score": 0.8})
    signed = parse_as(PLATE_RECOGNIZER, body, webhook_id="msg_42").events
    assert [event.source_event_id for event in signed] == ["msg_42:0", "msg_42:1"]

    unsigned = parse_as(PLATE_RECOGNIZER, body).events
    again = parse_as(PLATE_RECOGNIZER, body, received_at=RECEIVED_AT + timedelta(hours=1)).events
    assert [event.source_event_id for event in unsigned] == [event.source_event_id for event in again]
    fingerprint = orjson.dumps(["camera-1", "2021-09-29T05:56:13.606935Z", "pl8rec", 0])
    assert unsigned[0].source_event_id == "pr:" + hashlib.sha256(fingerprint).hexdigest()
    assert unsigned[0].source_event_id != unsigned[1].source_event_id
    assert (unsigned[1].plate, unsigned[1].plate_valid) == ("粤B12345", True)


def test_plate_recognizer_camera_falls_back_to_the_hook_id() -> None:
    body = sample("platerecognizer_stream.json")
    body["data"]["camera_id"] = None
    body["hook"]["id"] = "gate-north"
    assert parse_as(PLATE_RECOGNIZER, body).events[0].device_external_id == "gate-north"
    del body["hook"]
    with pytest.raises(PayloadError, match="names the camera"):
        parse_as(PLATE_RECOGNIZER, body)


def test_plate_recognizer_without_results_is_acknowledged_and_ignored() -> None:
    body = sample("platerecognizer_stream.json")
    body["data"]["results"] = []
    parsed = parse_as(PLATE_RECOGNIZER, body)
    assert (parsed.events, parsed.ignored) == ([], 1)


@pytest.mark.parametrize(
    ("result", "says"),
    [
        ({"score": 0.9}, r"data\.results\[0\]\.plate is required"),
        ({"plate": "ABC123", "score": "high"}, r"data\.results\[0\]\.score must be a number"),
        ({"plate": "ABC123", "score": 90.2}, r"confidence 90\.2 is outside 0\.\.1"),
    ],
)
def test_plate_recognizer_wrong_results(result: dict[str, Any], says: str) -> None:
    body = sample("platerecognizer_stream.json")
    body["data"]["results"] = [result]
    with pytest.raises(PayloadError, match=says):
        parse_as(PLATE_RECOGNIZER, body)


def test_plate_recognizer_odd_cosmetic_fields_do_not_cost_the_event() -> None:
    body = sample("platerecognizer_stream.json")
    body["data"]["results"][0] |= {"dscore": {"value": 0.7}, "vehicle": "car", "region": None}
    [event] = parse_as(PLATE_RECOGNIZER, body).events
    assert event.plate == "PL8REC"
    assert "dscore" not in event.details
    assert "vehicle_type" not in event.details


def test_plate_recognizer_future_read_is_rejected() -> None:
    body = sample("platerecognizer_stream.json")
    body["data"]["timestamp"] = (RECEIVED_AT + timedelta(minutes=10)).isoformat()
    with pytest.raises(PayloadError, match=r"index 0\) is 10 min 0 s in the future"):
        parse_as(PLATE_RECOGNIZER, body)


# ---- OpenALPR ------------------------------------------------------------------------------------------


def test_openalpr_group() -> None:
    [event] = parse_as(OPENALPR, sample("openalpr_group.json")).events
    assert event.kind is EventKind.PLATE_READ
    assert event.source_event_id == "YYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYYY-2090267338-1538924513527"
    assert event.device_external_id == "2090267338"
    assert (event.plate, event.plate_valid) == ("6PK132", True)
    assert event.confidence == pytest.approx(0.902536163330078)
    assert event.occurred_at == datetime(2018, 10, 7, 15, 1, 53, 527000, tzinfo=UTC)
    assert event.location_ref == "unspecified"
    assert event.details["region"] == "us-mo"


def test_openalpr_confidence_above_100_is_rejected() -> None:
    body = sample("openalpr_group.json") | {"best_confidence": 250}
    with pytest.raises(PayloadError, match=r"confidence 250\.0 is outside 0\.\.100"):
        parse_as(OPENALPR, body)


def test_openalpr_heartbeat_gives_one_event_per_camera() -> None:
    heartbeat = {
        "version": 2,
        "data_type": "heartbeat",
        "agent_uid": "AGENT1",
        "timestamp": 1740815940000,
        "video_streams": [
            {"camera_id": 1630410444, "fps": 12, "is_streaming": True, "last_update": 1740815939000},
            {"camera_id": 1630410445, "fps": 0, "is_streaming": False, "last_update": 1740815000000},
        ],
    }
    events = parse_as(OPENALPR, heartbeat).events
    assert [event.device_external_id for event in events] == ["1630410444", "1630410445"]
    assert all(event.kind is EventKind.HEARTBEAT for event in events)
    assert {event.occurred_at for event in events} == {datetime(2025, 3, 1, 7, 59, tzinfo=UTC)}
    assert [event.details["is_streaming"] for event in events] == [True, False]
    assert len({event.source_event_id for event in events}) == 2
    signed = parse_as(OPENALPR, heartbeat, webhook_id="msg_7").events
    assert [event.source_event_id for event in signed] == ["msg_7:0", "msg_7:1"]


def test_openalpr_heartbeat_without_cameras_is_the_agents() -> None:
    heartbeat = {"data_type": "heartbeat", "agent_uid": "AGENT1", "epoch_time": 1740815940000}
    [event] = parse_as(OPENALPR, heartbeat).events
    assert (event.kind, event.device_external_id) == (EventKind.HEARTBEAT, "AGENT1")


def test_openalpr_results_are_acknowledged_and_ignored() -> None:
    parsed = parse_as(OPENALPR, {"data_type": "alpr_results", "epoch_time": 1740815940000, "results": []})
    assert (parsed.events, parsed.ignored) == ([], 1)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"data_type": "alpr_video"}, "data_type 'alpr_video' is not an OpenALPR message"),
        ({"epoch_start": "2018-10-07T15:01:53Z"}, "epoch_start must be epoch milliseconds"),
        ({"best_uuid": None}, "best_uuid is required"),
        ({"best_plate_number": 6}, "best_plate_number must be a string"),
        ({"camera_id": None}, "camera_id is required"),
    ],
)
def test_openalpr_wrong_fields(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        parse_as(OPENALPR, sample("openalpr_group.json") | changes)
