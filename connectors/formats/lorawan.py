"""LoRaWAN network servers: The Things Stack v3 webhooks and the ChirpStack v4 HTTP integration.

Both deliver one uplink per request. The device is named by its DevEUI (upper-case hex). When the network
server ran a payload formatter/codec (`decoded_payload` / `object`) and it produced something ParkHub
understands (occupied / occupancy / status "occupied"|"free", temperature, battery), that is used;
otherwise the raw base64 bytes are decoded as a Bosch parking sensor message (`connectors.formats.bosch`).

The Things Stack omits fields that are empty, zero or false: `f_port`, `f_cnt`, `frm_payload`,
`decoded_payload` may all be absent. An uplink with no port and no payload is MAC-only (fPort 0) and is
acknowledged and ignored. Other TTS messages (join accepts, downlink events, ...) are acknowledged and
ignored too.

ChirpStack names its event in the query string (`?event=up`); only `up` yields events, the other known
events are acknowledged and ignored, and so are MAC-only uplinks (no `fPort`, `data` or `object`). Without
a known event name the body is accepted only if it looks like an uplink. JSON only: the Protobuf marshaler
is refused with a message saying so.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.events import EventKind, NormalizedEvent, PayloadError
from connectors.formats import Fields, FormatResult, InboundRequest, bosch, brief, compact, load_json

_TTS_NON_UPLINK_MESSAGES = (
    "join_accept",
    "downlink_ack",
    "downlink_nack",
    "downlink_sent",
    "downlink_failed",
    "downlink_queued",
    "downlink_queue_invalidated",
    "location_solved",
    "service_data",
)
_CHIRPSTACK_IGNORED_EVENTS = frozenset({"join", "status", "ack", "txack", "log", "location", "integration"})
_CHIRPSTACK_UPLINK_MARKERS = ("data", "fPort", "fCnt", "rxInfo", "dr")
_PROTOBUF_TYPES = frozenset({"application/octet-stream", "application/protobuf", "application/x-protobuf"})
_DEV_EUI = re.compile(r"[0-9A-F]{16}")
_OCCUPIED_WORDS = frozenset({"occupied", "busy", "taken", "true", "1"})
_FREE_WORDS = frozenset({"free", "vacant", "empty", "available", "false", "0"})


def parse_tts_v3(request: InboundRequest) -> FormatResult:
    message = Fields(load_json(request.body), "", None)
    if any(key in message.data for key in _TTS_NON_UPLINK_MESSAGES):
        return FormatResult(events=[], ignored=1)
    uplink = message.child("uplink_message")
    if uplink is None:
        raise PayloadError("not a The Things Stack uplink: there is no uplink_message")
    device = message.required_child("end_device_ids")
    port = uplink.integer("f_port")
    raw_payload = uplink.text("frm_payload")
    decoded = uplink.child("decoded_payload")
    if port is None and not raw_payload and decoded is None:
        return FormatResult(events=[], ignored=1)  # MAC-only uplink (fPort 0): nothing from the sensor
    occurred_at = uplink.time("received_at", epoch_ms=False) or message.time("received_at", epoch_ms=False)
    if occurred_at is None:
        raise PayloadError("the uplink has neither uplink_message.received_at nor received_at")

    details: dict[str, Any] = {"f_port": port, "f_cnt": uplink.extra("f_cnt") or 0}
    details["device_name"] = device.extra("device_id")
    application = device.raw("application_ids")
    if isinstance(application, dict):
        details["application_id"] = application.get("application_id")
    details.update(_radio_summary(uplink.raw("rx_metadata")))
    if message.raw("simulated") is True:
        details["simulated"] = True

    event = _uplink_event(
        source_event_id=_tts_source_event_id(message, request.webhook_id),
        dev_eui=_dev_eui(device, "dev_eui"),
        occurred_at=occurred_at,
        port=port,
        raw_payload=raw_payload,
        raw_path=uplink.path_of("frm_payload"),
        decoded=decoded,
        details=details,
    )
    return FormatResult(events=[(0, event)])


def parse_chirpstack_v4(request: InboundRequest) -> FormatResult:
    event_name = request.query.get("event")
    if event_name in _CHIRPSTACK_IGNORED_EVENTS:
        return FormatResult(events=[], ignored=1)
    if request.content_type.split(";")[0].strip().lower() in _PROTOBUF_TYPES:
        raise PayloadError("ChirpStack sent Protobuf; set the HTTP integration's payload encoding to JSON")
    body = load_json(request.body)
    if event_name != "up" and not _looks_like_chirpstack_uplink(body):
        said = "no ?event= parameter" if event_name is None else f"unknown ?event={brief(event_name)}"
        raise PayloadError(f"{said}, and the body is not a ChirpStack uplink")
    message = Fields(body, "", None)
    device = message.required_child("deviceInfo")
    port = message.integer("fPort")
    decoded = message.child("object")
    if port is None and not message.text("data") and decoded is None:
        # ChirpStack's JSON, like TTS's, omits zero and empty fields: a MAC-only uplink (fPort 0) has neither
        # port nor data. It carries nothing from the sensor and is not the sender's mistake: acknowledged.
        return FormatResult(events=[], ignored=1)
    details: dict[str, Any] = {"f_port": port, "f_cnt": message.extra("fCnt") or 0}
    details["device_name"] = device.extra("deviceName")
    details["application_id"] = device.extra("applicationId")
    details["dev_addr"] = message.extra("devAddr")
    details.update(_radio_summary(message.raw("rxInfo")))

    event = _uplink_event(
        source_event_id=message.required_text("deduplicationId"),
        dev_eui=_dev_eui(device, "devEui"),
        occurred_at=message.required_time("time", epoch_ms=False),
        port=port,
        raw_payload=message.text("data"),
        raw_path="data",
        decoded=decoded,
        details=details,
    )
    return FormatResult(events=[(0, event)])


def _looks_like_chirpstack_uplink(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and "deduplicationId" in body
        and "deviceInfo" in body
        and any(key in body for key in _CHIRPSTACK_UPLINK_MARKERS)
    )


def _tts_source_event_id(message: Fields, webhook_id: str | None) -> str:
    """The application server's uplink correlation id (`as:up:<ULID>`), unique per uplink."""
    correlation_ids = [value for value in message.array("correlation_ids") or [] if isinstance(value, str)]
    for correlation_id in correlation_ids:
        if correlation_id.startswith("as:up:"):
            return correlation_id
    if correlation_ids:
        return correlation_ids[0]
    if webhook_id:
        return webhook_id
    raise PayloadError("the uplink has no correlation_ids and the request no webhook-id: nothing identifies it")


def _dev_eui(device: Fields, name: str) -> str:
    text = device.required_text(name)
    dev_eui = re.sub(r"[\s:-]", "", text).upper()
    if not _DEV_EUI.fullmatch(dev_eui):
        raise PayloadError(f"{device.path_of(name)} {brief(text)} is not a DevEUI (16 hex digits)")
    return dev_eui


def _uplink_event(
    *,
    source_event_id: str,
    dev_eui: str,
    occurred_at: datetime,
    port: int | None,
    raw_payload: str | None,
    raw_path: str,
    decoded: Fields | None,
    details: dict[str, Any],
) -> NormalizedEvent:
    reading = _read_decoded(decoded, port) if decoded is not None else None
    if reading is None:
        if not raw_payload:
            raise PayloadError("the uplink has no payload ParkHub can read (no usable decoded payload, no bytes)")
        message = bosch.decode(port, _base64(raw_payload, raw_path))
        details.update(firmware=message.firmware, reset_cause=message.reset_cause, debug_codes=message.debug_codes)
        temperature = None if message.temperature_c is None else float(message.temperature_c)
        reading = _Reading(message.kind, message.occupied, temperature, None)
    return NormalizedEvent(
        source_event_id=source_event_id,
        kind=reading.kind,
        occurred_at=occurred_at,
        device_external_id=dev_eui,
        occupied=reading.occupied,
        temperature_c=reading.temperature_c,
        battery_percent=reading.battery_percent,
        details=compact(details),
    )


@dataclass(frozen=True, slots=True)
class _Reading:
    """What one uplink says about the space, whichever way it was decoded."""

    kind: EventKind
    occupied: bool | None
    temperature_c: float | None
    battery_percent: float | None


def _read_decoded(decoded: Fields, port: int | None) -> _Reading | None:
    """What a network server's payload formatter produced, or None when it holds nothing ParkHub knows
    (then the raw bytes are decoded instead)."""
    occupied = _decoded_occupancy(decoded)
    temperature = _first_number(decoded, ("temperature", "temperature_c", "temperatureC", "temp"))
    battery = _first_number(decoded, ("battery_percent", "batteryPercent", "battery"))
    if occupied is None and temperature is None and battery is None:
        return None
    kind = _decoded_kind(decoded.raw("type"), port)
    if kind is None or (kind is EventKind.OCCUPANCY and occupied is None):
        kind = EventKind.OCCUPANCY if occupied is not None else EventKind.HEARTBEAT
    return _Reading(kind, occupied, temperature, battery)


def _decoded_occupancy(decoded: Fields) -> bool | None:
    for name in ("occupied", "occupancy"):
        value = decoded.raw(name)
        if value is None:
            continue
        occupied = _as_occupancy(value)
        if occupied is None:
            raise decoded.error(f"{decoded.path_of(name)} {brief(value)} is neither occupied nor free")
        return occupied
    status = decoded.raw("status")
    # `status` is only occupancy when it says so; formatters also use it for "ok" and the like.
    return _as_occupancy(status) if isinstance(status, str) else None


def _as_occupancy(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _OCCUPIED_WORDS:
            return True
        if word in _FREE_WORDS:
            return False
    return None


def _decoded_kind(message_type: Any, port: int | None) -> EventKind | None:
    if isinstance(message_type, str):
        word = message_type.lower()
        if "heartbeat" in word:
            return EventKind.HEARTBEAT
        if "start" in word:
            return EventKind.STARTUP
        if "status" in word or "parking" in word or "occupancy" in word:
            return EventKind.OCCUPANCY
    return {
        bosch.STATUS_PORT: EventKind.OCCUPANCY,
        bosch.HEARTBEAT_PORT: EventKind.HEARTBEAT,
        bosch.STARTUP_PORT: EventKind.STARTUP,
    }.get(port or 0)


def _first_number(decoded: Fields, names: tuple[str, ...]) -> float | None:
    for name in names:
        if decoded.raw(name) is not None:
            return decoded.number(name)
    return None


def _base64(text: str, path: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(f"{path} is not valid base64") from None


def _radio_summary(rx_metadata: Any) -> dict[str, Any]:
    """Best RSSI/SNR over the gateways that heard the uplink, and how many did: enough to spot a weak link."""
    entries = rx_metadata if isinstance(rx_metadata, list) else []
    gateways = [entry for entry in entries if isinstance(entry, dict)]
    rssi = [entry["rssi"] for entry in gateways if _is_number(entry.get("rssi"))]
    snr = [entry["snr"] for entry in gateways if _is_number(entry.get("snr"))]
    return {"gateways": len(gateways), "rssi": max(rssi, default=None), "snr": max(snr, default=None)}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
