"""The rules `connectors.formats.parse` applies to every format's events: time, future, confidence, ranges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from connectors.events import PayloadError
from connectors.formats import ConnectorFormat, InboundRequest, parse_time
from tests.connectors.support import RECEIVED_AT, SHANGHAI, parse_as, sample_bytes

NATIVE = ConnectorFormat.NATIVE


def occupancy(event_id: str = "e1", **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "device_id": "S1", "occupied": True, **fields}


def test_the_format_names_are_the_stored_values() -> None:
    assert [fmt.value for fmt in ConnectorFormat] == [
        "native",
        "tts_v3",
        "chirpstack_v4",
        "cds",
        "plate_recognizer",
        "openalpr",
    ]
    assert ConnectorFormat("tts_v3") is ConnectorFormat.TTS_V3


def test_received_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        InboundRequest(b"{}", "application/json", {}, None, datetime(2025, 3, 1), SHANGHAI)


@pytest.mark.parametrize("fmt", list(ConnectorFormat))
def test_malformed_json_is_a_payload_error_in_every_format(fmt: ConnectorFormat) -> None:
    with pytest.raises(PayloadError, match="not valid JSON"):
        parse_as(fmt, b'{"events": [', query={"event": "up"})


@pytest.mark.parametrize("fmt", [ConnectorFormat.NATIVE, ConnectorFormat.CDS, ConnectorFormat.TTS_V3])
def test_an_empty_body_says_so(fmt: ConnectorFormat) -> None:
    with pytest.raises(PayloadError, match="the body is empty"):
        parse_as(fmt, b"  ")


def test_naive_times_are_read_in_the_default_zone_and_stored_in_utc() -> None:
    parsed = parse_as(NATIVE, occupancy(time="2025-03-01 15:30:00"))
    assert parsed.events[0].occurred_at == datetime(2025, 3, 1, 7, 30, tzinfo=UTC)
    assert parsed.events[0].occurred_at.tzinfo is UTC
    elsewhere = parse_as(NATIVE, occupancy(time="2025-03-01 02:30:00"), default_tz=ZoneInfo("America/New_York"))
    assert elsewhere.events[0].occurred_at == datetime(2025, 3, 1, 7, 30, tzinfo=UTC)


def test_zoned_times_are_converted_to_utc() -> None:
    parsed = parse_as(NATIVE, occupancy(time="2025-03-01T15:30:00+08:00"))
    assert parsed.events[0].occurred_at == datetime(2025, 3, 1, 7, 30, tzinfo=UTC)


def test_an_event_from_the_future_rejects_the_request_naming_event_and_index() -> None:
    too_late = (RECEIVED_AT + timedelta(minutes=5, seconds=1)).isoformat()
    body = {"events": [occupancy("ok"), occupancy("late", time=too_late)]}
    with pytest.raises(PayloadError, match=r"'late' \(index 1\) is 5 min 1 s in the future") as caught:
        parse_as(NATIVE, body)
    assert caught.value.index == 1
    assert caught.value.as_json()["index"] == 1


def test_clock_skew_within_five_minutes_is_accepted() -> None:
    almost = RECEIVED_AT + timedelta(minutes=5)
    parsed = parse_as(NATIVE, occupancy(time=almost.isoformat()))
    assert parsed.events[0].occurred_at == almost


def test_a_naive_time_is_judged_future_after_reading_it_in_the_default_zone() -> None:
    # 16:02 in Shanghai is 08:02 UTC: two minutes after receipt, fine; 16:10 is not.
    assert parse_as(NATIVE, occupancy(time="2025-03-01T16:02:00")).events
    with pytest.raises(PayloadError, match="in the future"):
        parse_as(NATIVE, occupancy(time="2025-03-01T16:10:00"))


@pytest.mark.parametrize(("sent", "stored"), [(0.9, 0.9), (1.0, 1.0), (0.0, 0.0), (1.004, 1.0), (-0.005, 0.0)])
def test_confidence_is_kept_in_zero_to_one_with_tiny_overshoots_clamped(sent: float, stored: float) -> None:
    body = occupancy(type="plate_read", plate="粤B12345", confidence=sent)
    assert parse_as(NATIVE, body).events[0].confidence == stored


@pytest.mark.parametrize("sent", [90, 1.5, -0.2])
def test_confidence_out_of_range_is_rejected(sent: float) -> None:
    body = occupancy(type="plate_read", plate="粤B12345", confidence=sent)
    with pytest.raises(PayloadError, match=r"confidence .* is outside 0\.\.1"):
        parse_as(NATIVE, body)


@pytest.mark.parametrize(
    ("field", "value"), [("battery_percent", 101), ("battery_percent", -1), ("temperature_c", 500)]
)
def test_battery_and_temperature_are_range_checked(field: str, value: float) -> None:
    with pytest.raises(PayloadError, match=field):
        parse_as(NATIVE, occupancy(**{field: value}))


def test_overlong_ids_are_refused() -> None:
    with pytest.raises(PayloadError, match="longer than 255"):
        parse_as(NATIVE, occupancy("x" * 256))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1552678578632, datetime(2019, 3, 15, 19, 36, 18, 632000, tzinfo=UTC)),
        ("1552678578632", datetime(2019, 3, 15, 19, 36, 18, 632000, tzinfo=UTC)),
        ("1552678578632.5", datetime(2019, 3, 15, 19, 36, 18, 632500, tzinfo=UTC)),
        ("2020-02-12T15:15:46.014773143Z", datetime(2020, 2, 12, 15, 15, 46, 14773, tzinfo=UTC)),
        ("2022-07-18T09:34:15.775023242+00:00", datetime(2022, 7, 18, 9, 34, 15, 775023, tzinfo=UTC)),
        ("2021-09-29 05:56:13.606935", datetime(2021, 9, 29, 5, 56, 13, 606935)),
    ],
)
def test_parse_time_accepts_epoch_ms_and_iso_with_nanoseconds(value: Any, expected: datetime) -> None:
    assert parse_time(value, "time", None) == expected


@pytest.mark.parametrize(
    ("value", "options", "says"),
    [
        (1552678578, {}, "seconds by mistake"),
        ("2021-09-29", {}, "epoch milliseconds or an ISO 8601 time"),
        ("yesterday", {}, "epoch milliseconds or an ISO 8601 time"),
        ("2021-13-45T10:00:00Z", {}, "not a valid ISO 8601 time"),
        (True, {}, "must be a time, got a boolean"),
        (None, {}, "must be a time, got null"),
        (10**20, {}, "too far in the future"),
        ("1552678578632", {"epoch_ms": False}, "must be an ISO 8601 time"),
        (1552678578632, {"epoch_ms": False}, "must be an ISO 8601 time, got a number"),
        ("2021-09-29T05:56:13Z", {"iso": False}, "must be epoch milliseconds"),
    ],
)
def test_parse_time_rejects_what_is_not_a_time(value: Any, options: dict[str, bool], says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        parse_time(value, "time", 3, **options)


@pytest.mark.parametrize(
    ("fmt", "name", "query"),
    [
        (ConnectorFormat.TTS_V3, "tts_v3_uplink.json", {}),
        (ConnectorFormat.CHIRPSTACK_V4, "chirpstack_v4_up.json", {"event": "up"}),
        (ConnectorFormat.CDS, "cds_events.json", {}),
        (ConnectorFormat.PLATE_RECOGNIZER, "platerecognizer_stream.json", {}),
        (ConnectorFormat.OPENALPR, "openalpr_group.json", {}),
    ],
)
def test_every_sample_yields_one_event_in_aware_utc(fmt: ConnectorFormat, name: str, query: dict[str, str]) -> None:
    parsed = parse_as(fmt, sample_bytes(name), query=query)
    [event] = parsed.events
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event.occurred_at < RECEIVED_AT
    assert event.source_event_id
    assert event.device_external_id
    orjson.dumps(event.details)  # details go to a JSONB column as they are
