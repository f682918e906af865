"""ParkHub's own JSON format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.events import EventKind, PayloadError
from connectors.formats import ConnectorFormat
from tests.connectors.support import RECEIVED_AT, parse_as


def native(body: Any, **options: Any):  # type: ignore[no-untyped-def]
    return parse_as(ConnectorFormat.NATIVE, body, **options)


def test_a_single_event_object() -> None:
    parsed = native(
        {
            "id": "S17-000123",
            "type": "occupancy",
            "device_id": "S17",
            "time": "2025-03-01T08:00:00+08:00",
            "occupied": True,
            "battery_percent": 87,
            "temperature_c": 21.5,
            "location_ref": "bay-4",
            "details": {"rssi": -90},
        }
    )
    [event] = parsed.events
    assert event.source_event_id == "S17-000123"
    assert event.kind is EventKind.OCCUPANCY
    assert event.device_external_id == "S17"
    assert event.occurred_at == datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
    assert (event.occupied, event.battery_percent, event.temperature_c) == (True, 87.0, 21.5)
    assert event.location_ref == "bay-4"
    assert event.details == {"rssi": -90}
    assert parsed.ignored == 0


def test_a_batch_keeps_order_and_accepts_every_kind() -> None:
    kinds = ["heartbeat", "startup", "comms_lost", "comms_restored", "decommissioned"]
    batch = {"events": [{"id": f"e{i}", "type": kind, "device_id": "S1"} for i, kind in enumerate(kinds)]}
    parsed = native(batch)
    assert [event.kind.value for event in parsed.events] == kinds
    assert [event.source_event_id for event in parsed.events] == ["e0", "e1", "e2", "e3", "e4"]


def test_type_defaults_to_occupancy_and_time_to_receipt() -> None:
    [event] = native({"id": 7, "device_id": "S1", "occupied": False}).events
    assert event.kind is EventKind.OCCUPANCY
    assert event.occurred_at == RECEIVED_AT
    assert event.source_event_id == "7"


@pytest.mark.parametrize("time", [1740816000000, "1740816000000"])
def test_time_as_epoch_milliseconds_integer_or_string(time: Any) -> None:
    [event] = native({"id": "e", "device_id": "S1", "occupied": True, "time": time}).events
    assert event.occurred_at == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_plate_reads_are_normalized_and_flagged() -> None:
    batch = {
        "events": [
            {"id": "p1", "type": "plate_read", "device_id": "C1", "plate": "粤b·d12345", "confidence": 0.97},
            {"id": "p2", "type": "plate_read", "device_id": "C1", "plate": "粤B12"},
        ]
    }
    good, bad = native(batch).events
    assert (good.plate, good.plate_raw, good.plate_valid, good.confidence) == ("粤BD12345", "粤b·d12345", True, 0.97)
    assert (bad.plate, bad.plate_valid) == ("粤B12", False)


def test_a_batch_of_1000_is_accepted_and_1001_rejected() -> None:
    def batch(size: int) -> dict[str, Any]:
        return {"events": [{"id": f"e{i}", "device_id": "S1", "occupied": True} for i in range(size)]}

    assert len(native(batch(1000)).events) == 1000
    with pytest.raises(PayloadError, match="1001 events; at most 1000"):
        native(batch(1001))


def test_an_empty_batch_is_rejected() -> None:
    with pytest.raises(PayloadError, match="events is empty"):
        native({"events": []})


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ({"device_id": "S1", "occupied": True}, r"events\[1\]\.id is required"),
        ({"id": "e", "occupied": True}, r"events\[1\]\.device_id is required"),
        ({"id": "", "device_id": "S1", "occupied": True}, r"events\[1\]\.id must not be empty"),
        ({"id": "e", "device_id": "S1"}, r"events\[1\]\.occupied is required for an occupancy event"),
        ({"id": "e", "device_id": "S1", "occupied": "yes"}, r"events\[1\]\.occupied must be true or false"),
        ({"id": "e", "device_id": "S1", "occupied": 1}, r"occupied must be true or false, got a number"),
        ({"id": "e", "device_id": ["S1"], "occupied": True}, r"device_id must be a string, got an array"),
        ({"id": "e", "device_id": "S1", "type": "parked", "occupied": True}, r"'parked' is not one of occupancy"),
        ({"id": "e", "device_id": "S1", "type": "plate_read"}, r"plate is required for a plate_read"),
        (
            {"id": "e", "device_id": "S1", "occupied": True, "battery_percent": "87%"},
            r"battery_percent must be a number",
        ),
        ({"id": "e", "device_id": "S1", "occupied": True, "time": "noon"}, r"events\[1\]\.time must be"),
        ({"id": "e", "device_id": "S1", "occupied": True, "details": "x"}, r"details must be a JSON object"),
        ("e", r"events\[1\] must be a JSON object, got a string"),
    ],
)
def test_wrong_fields_name_the_index_and_field(event: Any, says: str) -> None:
    ok = {"id": "first", "device_id": "S1", "occupied": True}
    with pytest.raises(PayloadError, match=says) as caught:
        native({"events": [ok, event]})
    assert caught.value.index == 1


def test_a_single_event_error_names_the_field_without_a_batch_path() -> None:
    with pytest.raises(PayloadError, match=r"^device_id is required$") as caught:
        native({"id": "e", "occupied": True})
    assert caught.value.index == 0


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([{"id": "e", "device_id": "S1", "occupied": True}], "got an array"),
        ({"events": {"id": "e"}}, "events must be an array, got an object"),
        ("occupied", "got a string"),
    ],
)
def test_other_shapes_are_rejected(body: Any, says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        native(body)
