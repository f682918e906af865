"""Curb Data Specification 1.1 Events."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.events import EventKind, PayloadError
from connectors.formats import ConnectorFormat
from tests.connectors.support import parse_as, sample

CDS = ConnectorFormat.CDS


def cds_event(event_id: str, event_type: str, event_time: Any = 1552678578632, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "event_type": event_type, "event_time": event_time, **extra}


def test_sample_park_start_is_occupied() -> None:
    parsed = parse_as(CDS, sample("cds_events.json"))
    [event] = parsed.events
    assert event.source_event_id == "7d8a5885-e949-4ac9-afb7-fa4d43b68530"
    assert (event.kind, event.occupied) == (EventKind.OCCUPANCY, True)
    assert event.occurred_at == datetime(2019, 3, 15, 19, 36, 18, 632000, tzinfo=UTC)  # from the string "1552678578632"
    assert event.device_external_id == "0fcb51b0-4529-4d28-a339-81e9a9bbcdb3"
    assert event.location_ref == "02885f6f-ef93-441b-9e74-487279380656"
    assert event.details["coordinates"] == [-85.7629808, 38.257341]
    assert event.details["time_zone"] == "US/Eastern"


def test_integer_and_string_times_are_the_same_instant() -> None:
    body = sample("cds_events.json")
    as_string = parse_as(CDS, body).events[0].occurred_at
    body["data"]["events"][0]["event_time"] = 1552678578632
    assert parse_as(CDS, body).events[0].occurred_at == as_string


def test_the_time_zone_does_not_shift_epoch_times() -> None:
    body = sample("cds_events.json")
    body["time_zone"] = "Asia/Tokyo"
    assert parse_as(CDS, body).events[0].occurred_at == datetime(2019, 3, 15, 19, 36, 18, 632000, tzinfo=UTC)


def test_every_type_maps_or_is_ignored() -> None:
    types = [
        "park_start",
        "park_end",
        "comms_lost",
        "comms_restored",
        "decommissioned",
        "scheduled_report",
        "vehicle_detected",
        "enter_area",
        "exit_area",
        "vehicle_violation_start",
        "vehicle_violation_end",
        "citation_issued",
    ]
    events = [cds_event(f"e{index}", event_type, data_source_device_id="D1") for index, event_type in enumerate(types)]
    parsed = parse_as(CDS, {"data": {"events": events}})
    assert [(event.kind, event.occupied) for event in parsed.events] == [
        (EventKind.OCCUPANCY, True),
        (EventKind.OCCUPANCY, False),
        (EventKind.COMMS_LOST, None),
        (EventKind.COMMS_RESTORED, None),
        (EventKind.DECOMMISSIONED, None),
        (EventKind.HEARTBEAT, None),
    ]
    assert parsed.ignored == 6


@pytest.mark.parametrize(
    "body",
    [
        [cds_event("a", "park_end")],
        {"events": [cds_event("a", "park_end")]},
        {"data": {"events": [cds_event("a", "park_end")]}},
    ],
)
def test_envelopes_accepted(body: Any) -> None:
    [event] = parse_as(CDS, body).events
    assert (event.source_event_id, event.occupied) == ("a", False)


def test_an_empty_batch_is_accepted_as_nothing() -> None:
    parsed = parse_as(CDS, {"data": {"events": []}})
    assert (parsed.events, parsed.ignored) == ([], 0)


def test_more_than_1000_events_are_rejected() -> None:
    events = [cds_event(f"e{index}", "park_start") for index in range(1001)]
    with pytest.raises(PayloadError, match="at most 1000"):
        parse_as(CDS, {"data": {"events": events}})


@pytest.mark.parametrize(
    ("event", "says"),
    [
        (cds_event("b", "double_park"), r"events\[1\]\.event_type 'double_park' is not a CDS event type"),
        (cds_event("b", "park_start", "15:00"), r"events\[1\]\.event_time must be epoch milliseconds"),
        (cds_event("b", "park_start", "2019-03-15T19:36:18Z"), r"events\[1\]\.event_time must be epoch milliseconds"),
        (cds_event("b", "park_start", None), r"events\[1\]\.event_time is required"),
        ({"event_type": "park_start", "event_time": 1552678578632}, r"events\[1\]\.event_id is required"),
        (cds_event("b", "park_start", curb_zone_id=7), r"events\[1\]\.curb_zone_id must be a string"),
    ],
)
def test_wrong_events_are_named_by_index(event: dict[str, Any], says: str) -> None:
    with pytest.raises(PayloadError, match=says) as caught:
        parse_as(CDS, [cds_event("a", "park_start"), event])
    assert caught.value.index == 1


def test_ignored_events_are_counted_even_when_incomplete() -> None:
    body = copy.deepcopy(sample("cds_events.json"))
    body["data"]["events"].append({"event_type": "enter_area"})
    parsed = parse_as(CDS, body)
    assert (len(parsed.events), parsed.ignored) == (1, 1)


def test_other_shapes_are_rejected() -> None:
    with pytest.raises(PayloadError, match="expected CDS events"):
        parse_as(CDS, {"data": [cds_event("a", "park_start")]})


def test_a_huge_wrong_value_is_quoted_briefly() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_as(CDS, [cds_event("a", "x" * 100_000)])
    assert "'xxxx" in caught.value.message
    assert len(caught.value.message) < 200
