"""Plate-reading cameras: Plate Recognizer (Stream and Snapshot webhooks) and OpenALPR / Rekor agents.

Plate Recognizer sends `{"hook": {...}, "data": {"camera_id", "timestamp", "results": [...]}}` as JSON, or as
`multipart/form-data` with that JSON in a `json` field and the picture in an `upload` file (kept on every
event of the request). One event per result; the device is `data.camera_id`, else `hook.id`. Snapshot
timestamps carry no zone (read in the connector's zone); `score` is 0..1. Results have no id of their own,
so the dedupe id is `<webhook-id>:<result index>` when the request is signed, else a stable sha256 of
(camera, timestamp, plate, index), which a re-sent webhook reproduces.

OpenALPR agents send one JSON message per request, told apart by `data_type`: `alpr_group` (one vehicle:
a plate read, confidence 0..100), `heartbeat` (one heartbeat per camera in `video_streams`, or one for the
agent when it lists none), `alpr_results` (single frames, superseded by groups: acknowledged and ignored).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from connectors.events import EventKind, NormalizedEvent, PayloadError
from connectors.formats import Fields, FormatResult, InboundRequest, brief, compact, load_json

_OPENALPR_IGNORED_TYPES = frozenset({"alpr_results"})
_CANDIDATES_KEPT = 5
_IMAGE_SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


# ---- Plate Recognizer -----------------------------------------------------------------------------------


def parse_plate_recognizer(request: InboundRequest) -> FormatResult:
    image: bytes | None = None
    image_content_type: str | None = None
    if _media_type(request.content_type) == "multipart/form-data":
        parts = _multipart_parts(request.body, request.content_type)
        if "json" not in parts:
            raise PayloadError("the multipart body has no `json` field with the recognition")
        document = load_json(bytes(parts["json"].data))
        upload = parts.get("upload")
        if upload is not None and upload.data:
            image = bytes(upload.data)
            image_content_type = upload.content_type or _sniff_image_type(image)
    else:
        document = load_json(request.body)

    message = Fields(document, "", None)
    data = message.required_child("data")
    hook = message.child("hook")
    camera_id = data.identifier("camera_id") or (hook.identifier("id") if hook is not None else None)
    if not camera_id:
        raise PayloadError("neither data.camera_id nor hook.id names the camera")
    timestamp_field = "timestamp" if data.raw("timestamp") is not None else "timestamp_local"
    occurred_at = data.required_time(timestamp_field, epoch_ms=False)
    raw_timestamp = str(data.raw(timestamp_field))
    results = data.array("results") or []
    if not results:
        return FormatResult(events=[], ignored=1)  # nothing read in this frame

    shared_details = {
        "hook_event": hook.extra("event") if hook is not None else None,
        "filename": data.extra("filename"),
    }
    events: list[tuple[int, NormalizedEvent]] = []
    for index, item in enumerate(results):
        result = Fields(item, f"data.results[{index}]", index)
        plate = result.required_text("plate")
        if request.webhook_id:
            source_event_id = f"{request.webhook_id}:{index}"
        else:
            fingerprint = orjson.dumps([camera_id, raw_timestamp, plate, index])
            source_event_id = "pr:" + hashlib.sha256(fingerprint).hexdigest()
        details = {**shared_details, **_plate_recognizer_details(result)}
        event = NormalizedEvent(
            source_event_id=source_event_id,
            kind=EventKind.PLATE_READ,
            occurred_at=occurred_at,
            device_external_id=camera_id,
            plate_raw=plate,
            confidence=result.number("score"),
            image=image,
            image_content_type=image_content_type if image is not None else None,
            details=compact(details),
        )
        events.append((index, event))
    return FormatResult(events=events)


def _plate_recognizer_details(result: Fields) -> dict[str, Any]:
    details: dict[str, Any] = {"dscore": result.extra("dscore"), "direction": result.extra("direction")}
    region = result.raw("region")
    if isinstance(region, dict):
        details["region"] = region.get("code")
    vehicle = result.raw("vehicle")
    if isinstance(vehicle, dict):
        details["vehicle_type"] = vehicle.get("type")
    candidates = result.raw("candidates")
    if isinstance(candidates, list):
        details["candidates"] = [
            candidate.get("plate") for candidate in candidates[:_CANDIDATES_KEPT] if isinstance(candidate, dict)
        ]
    return details


@dataclass
class _Part:
    name: str | None = None
    content_type: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _PartCollector:
    """Callbacks for python-multipart's streaming parser, gathering each part's headers and bytes."""

    def __init__(self) -> None:
        self.parts: list[_Part] = []
        self.headers: dict[str, str] = {}
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.complete = False

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": lambda data, start, end: self.header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self.header_value.extend(data[start:end]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": lambda data, start, end: self.parts[-1].data.extend(data[start:end]),
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.parts.append(_Part())
        self.headers = {}

    def on_header_end(self) -> None:
        name = self.header_name.decode("latin-1").strip().lower()
        self.headers[name] = self.header_value.decode("latin-1").strip()
        self.header_name.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get("content-disposition", ""))
        part = self.parts[-1]
        part.name = options[b"name"].decode("latin-1") if b"name" in options else None
        part.content_type = _media_type(self.headers.get("content-type", "")) or None

    def on_end(self) -> None:
        self.complete = True


def _multipart_parts(body: bytes, content_type: str) -> dict[str, _Part]:
    """The named parts of a multipart/form-data body (the first part of each name wins)."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise PayloadError("multipart/form-data without a boundary parameter")
    collector = _PartCollector()
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except FormParserError as error:
        raise PayloadError(f"the multipart body is malformed: {error}") from None
    if not collector.complete:
        raise PayloadError("the multipart body is truncated: its closing boundary is missing")
    parts: dict[str, _Part] = {}
    for part in collector.parts:
        if part.name is not None:
            parts.setdefault(part.name, part)
    return parts


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _sniff_image_type(image: bytes) -> str:
    for signature, media_type in _IMAGE_SIGNATURES:
        if image.startswith(signature):
            return media_type
    return "application/octet-stream"


# ---- OpenALPR -------------------------------------------------------------------------------------------


def parse_openalpr(request: InboundRequest) -> FormatResult:
    message = Fields(load_json(request.body), "", None)
    data_type = message.required_text("data_type")
    if data_type == "alpr_group":
        return FormatResult(events=[(0, _alpr_group(message))])
    if data_type == "heartbeat":
        return _openalpr_heartbeat(message, request.webhook_id)
    if data_type in _OPENALPR_IGNORED_TYPES:
        return FormatResult(events=[], ignored=1)
    raise PayloadError(f"data_type {brief(data_type)} is not an OpenALPR message (alpr_group, heartbeat, alpr_results)")


def _alpr_group(message: Fields) -> NormalizedEvent:
    candidates = message.array("candidates") or []
    details = {
        "region": message.extra("best_region"),
        "is_parked": message.extra("is_parked"),
        "travel_direction": message.extra("travel_direction"),
        "agent_uid": message.extra("agent_uid"),
        "epoch_end": message.extra("epoch_end"),
        "candidates": [item.get("plate") for item in candidates[:_CANDIDATES_KEPT] if isinstance(item, dict)],
    }
    return NormalizedEvent(
        source_event_id=message.required_text("best_uuid"),
        kind=EventKind.PLATE_READ,
        occurred_at=message.required_time("epoch_start", iso=False),
        device_external_id=message.required_identifier("camera_id"),
        plate_raw=message.required_text("best_plate_number"),
        confidence=message.number("best_confidence"),  # 0..100, scaled by the common rules
        location_ref=message.text("site_id") or None,
        details=compact(details),
    )


def _openalpr_heartbeat(message: Fields, webhook_id: str | None) -> FormatResult:
    time_field = "timestamp" if message.raw("timestamp") is not None else "epoch_time"
    occurred_at = message.required_time(time_field, iso=False)
    sent_at = message.raw(time_field)
    agent = message.text("agent_uid")
    shared = {"agent_uid": agent, "site_id": message.extra("site_id")}
    streams = message.array("video_streams") or []
    if not streams:
        if not agent:
            return FormatResult(events=[], ignored=1)  # an agent heartbeat naming neither agent nor camera
        source_event_id = f"{webhook_id}:0" if webhook_id else f"openalpr:heartbeat:{agent}:{sent_at}"
        event = NormalizedEvent(
            source_event_id=source_event_id,
            kind=EventKind.HEARTBEAT,
            occurred_at=occurred_at,
            device_external_id=agent,
            details=compact(shared),
        )
        return FormatResult(events=[(0, event)])

    events: list[tuple[int, NormalizedEvent]] = []
    for index, item in enumerate(streams):
        stream = Fields(item, f"video_streams[{index}]", index)
        camera_id = stream.required_identifier("camera_id")
        details = {**shared, "is_streaming": stream.extra("is_streaming"), "fps": stream.extra("fps")}
        source_event_id = (
            f"{webhook_id}:{index}" if webhook_id else f"openalpr:heartbeat:{agent or '-'}:{camera_id}:{sent_at}"
        )
        event = NormalizedEvent(
            source_event_id=source_event_id,
            kind=EventKind.HEARTBEAT,
            occurred_at=occurred_at,
            device_external_id=camera_id,
            details=compact(details),
        )
        events.append((index, event))
    return FormatResult(events=events)
