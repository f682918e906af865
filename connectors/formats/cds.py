"""Curb Data Specification (CDS) 1.1 Events, pushed to ParkHub (`POST /events/event` in CDS terms).

The body is `{"data": {"events": [...]}}` as CDS publishes it; a bare `{"events": [...]}` or a bare array is
accepted too (up to 1000 events). Each event: `event_id` (the dedupe id), `event_type`, `event_time` (epoch
milliseconds, as an integer or as a numeric string: published samples use strings),
`data_source_device_id` (the device), `curb_zone_id` (kept as the location reference). The top-level
`time_zone` is informational only: CDS times are epoch, so they need no zone.

| event_type                                   | becomes                              |
|----------------------------------------------|--------------------------------------|
| park_start / park_end                        | occupancy, occupied true / false     |
| comms_lost, comms_restored, decommissioned   | the event of the same name           |
| scheduled_report                             | heartbeat                            |
| vehicle_detected, enter_area, exit_area, vehicle_violation_*, citation_issued | acknowledged, ignored |
"""

from __future__ import annotations

from typing import Any

from connectors.events import EventKind, NormalizedEvent, PayloadError
from connectors.formats import Fields, FormatResult, InboundRequest, brief, check_batch_size, json_type, load_json

# event_type -> (kind, occupied)
_EVENT_TYPES: dict[str, tuple[EventKind, bool | None]] = {
    "park_start": (EventKind.OCCUPANCY, True),
    "park_end": (EventKind.OCCUPANCY, False),
    "comms_lost": (EventKind.COMMS_LOST, None),
    "comms_restored": (EventKind.COMMS_RESTORED, None),
    "decommissioned": (EventKind.DECOMMISSIONED, None),
    "scheduled_report": (EventKind.HEARTBEAT, None),
}
_IGNORED_TYPES = frozenset({"vehicle_detected", "enter_area", "exit_area", "citation_issued"})
_IGNORED_PREFIX = "vehicle_violation_"
_DETAIL_FIELDS = ("data_source_type", "curb_space_id", "curb_area_ids", "vehicle_type", "event_publication_time")


def parse(request: InboundRequest) -> FormatResult:
    body = load_json(request.body)
    items = _event_list(body)
    check_batch_size(items, "events", allow_empty=True)
    time_zone = body.get("time_zone") if isinstance(body, dict) else None
    events: list[tuple[int, NormalizedEvent]] = []
    ignored = 0
    for index, item in enumerate(items):
        fields = Fields(item, f"events[{index}]", index)
        event_type = fields.required_text("event_type")
        if event_type in _IGNORED_TYPES or event_type.startswith(_IGNORED_PREFIX):
            ignored += 1
            continue
        if event_type not in _EVENT_TYPES:
            raise fields.error(f"{fields.path_of('event_type')} {brief(event_type)} is not a CDS event type")
        events.append((index, _event(fields, event_type, time_zone)))
    return FormatResult(events=events, ignored=ignored)


def _event_list(body: Any) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        data = body.get("data", body)
        if isinstance(data, dict) and "events" in data:
            events = data["events"]
            if isinstance(events, list):
                return events
            raise PayloadError(f"events must be an array, got {json_type(events)}")
    raise PayloadError('expected CDS events: {"data": {"events": [...]}}, {"events": [...]} or an array')


def _event(fields: Fields, event_type: str, time_zone: Any) -> NormalizedEvent:
    kind, occupied = _EVENT_TYPES[event_type]
    details: dict[str, Any] = {"event_type": event_type}
    details.update({name: fields.raw(name) for name in _DETAIL_FIELDS if fields.raw(name) is not None})
    coordinates = _point(fields.raw("event_location"))
    if coordinates is not None:
        details["coordinates"] = coordinates
    if isinstance(time_zone, str):
        details["time_zone"] = time_zone
    return NormalizedEvent(
        source_event_id=fields.required_text("event_id"),
        kind=kind,
        occurred_at=fields.required_time("event_time", iso=False),
        device_external_id=fields.text("data_source_device_id") or None,
        occupied=occupied,
        location_ref=fields.text("curb_zone_id") or None,
        details=details,
    )


def _point(location: Any) -> list[float] | None:
    """The [lon, lat] of a GeoJSON Point feature, when the event carries one (kept for people, not used)."""
    if not isinstance(location, dict):
        return None
    geometry = location.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        return None
    coordinates = geometry.get("coordinates")
    if isinstance(coordinates, list) and len(coordinates) >= 2:
        return coordinates[:2]
    return None
