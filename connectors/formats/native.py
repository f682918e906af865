"""ParkHub's own JSON format (`native`), for devices and gateways that can be programmed to send it.

A body is one event object, or a batch `{"events": [event, ...]}` of 1 to 1000 events. A batch is
accepted or rejected as a whole: the error names the offending event's index and field.

Event fields:

- `id`: string (or integer), required. The sender's unique id of the event; resending it is a no-op.
- `type`: `occupancy` (the default), `heartbeat`, `startup`, `plate_read`, `comms_lost`, `comms_restored`
  or `decommissioned`.
- `device_id`: string (or integer), required. The device as the operator registered it.
- `time`: ISO 8601 text, or epoch milliseconds as an integer or a numeric string. Without a zone it is
  read in the connector's zone; when absent, the time the request was received.
- `occupied`: boolean, required for `occupancy`.
- `battery_percent`: number 0..100. `temperature_c`: number.
- `plate`: string, required for `plate_read`; normalized, and flagged when not a recognizable plate.
- `confidence`: number 0..1, of the plate read.
- `location_ref`: string, where the sender says it happened. `details`: object, kept as sent.

Other fields are ignored, so a sender may add fields before ParkHub reads them. Example:

    {"events": [{"id": "S17-000123", "type": "occupancy", "device_id": "S17",
                 "time": "2025-03-01T08:00:00+08:00", "occupied": true, "battery_percent": 87}]}
"""

from __future__ import annotations

from connectors.events import EventKind, NormalizedEvent, PayloadError
from connectors.formats import Fields, FormatResult, InboundRequest, brief, check_batch_size, json_type, load_json

_KINDS = ", ".join(kind.value for kind in EventKind)


def parse(request: InboundRequest) -> FormatResult:
    body = load_json(request.body)
    if isinstance(body, dict) and "events" in body:
        items = body["events"]
        if not isinstance(items, list):
            raise PayloadError(f"events must be an array, got {json_type(items)}")
        check_batch_size(items, "events", allow_empty=False)
        return FormatResult(
            events=[
                (index, _event(Fields(item, f"events[{index}]", index), request)) for index, item in enumerate(items)
            ]
        )
    if isinstance(body, dict):
        return FormatResult(events=[(0, _event(Fields(body, "", 0), request))])
    raise PayloadError(f'expected one event object or {{"events": [...]}}, got {json_type(body)}')


def _event(fields: Fields, request: InboundRequest) -> NormalizedEvent:
    kind_name = fields.text("type") or EventKind.OCCUPANCY.value
    try:
        kind = EventKind(kind_name)
    except ValueError:
        raise fields.error(f"{fields.path_of('type')} {brief(kind_name)} is not one of {_KINDS}") from None

    occupied = fields.flag("occupied")
    if kind is EventKind.OCCUPANCY and occupied is None:
        raise fields.error(f"{fields.path_of('occupied')} is required for an occupancy event")
    plate = fields.text("plate")
    if kind is EventKind.PLATE_READ and not plate:
        raise fields.error(f"{fields.path_of('plate')} is required for a plate_read event")
    details = fields.child("details")

    return NormalizedEvent(
        source_event_id=fields.required_identifier("id"),
        kind=kind,
        occurred_at=fields.time("time") or request.received_at,
        device_external_id=fields.required_identifier("device_id"),
        occupied=occupied,
        battery_percent=fields.number("battery_percent"),
        temperature_c=fields.number("temperature_c"),
        plate_raw=plate,
        confidence=fields.number("confidence"),
        location_ref=fields.text("location_ref"),
        details=dict(details.data) if details is not None else {},
    )
