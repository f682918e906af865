"""Inbound formats: one module per sender's format, each turning a request body into normalized events.

`parse(fmt, request)` is the only entry point. A format module reads its own shape and returns events paired
with their index in the sender's batch; the rules every event obeys are applied here, once, for all formats:

- times become aware UTC (a naive timestamp is read in the connector's `default_tz`);
- an event more than 5 minutes after the request was received is rejected (the whole request: the sender's
  clock is wrong and nothing of it is trustworthy), naming the event and its batch index;
- confidence is scaled to 0..1 (OpenALPR sends 0..100), tiny overshoots are clamped, anything else rejected;
- battery and temperature are range-checked, plates are normalized with `connectors.plates`.

The helpers below (`load_json`, `Fields`, `parse_time`, ...) are shared by the format modules so that every
format reports a wrong field the same way: a `PayloadError` naming the field path and the batch index.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from connectors.events import EventKind, NormalizedEvent, ParsedRequest, PayloadError
from connectors.plates import normalize_camera_plate

MAX_BATCH_EVENTS = 1000
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_ID_LENGTH = 255  # source event ids and device ids: longer is a sender bug, not an id
_CONFIDENCE_OVERSHOOT = 0.01  # float noise such as 1.0000001 is clamped; 1.5 is an error
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EARLIEST_EPOCH_MS = 100_000_000_000  # 1973-03-03: smaller values are almost surely seconds, not ms
_NUMERIC_TEXT = re.compile(r"\d+(\.\d+)?")
_ISO_WITH_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


class ConnectorFormat(enum.StrEnum):
    NATIVE = "native"
    TTS_V3 = "tts_v3"
    CHIRPSTACK_V4 = "chirpstack_v4"
    CDS = "cds"
    PLATE_RECOGNIZER = "plate_recognizer"
    OPENALPR = "openalpr"


# Senders whose confidence is not 0..1: the value is divided by this.
_CONFIDENCE_SCALE: dict[ConnectorFormat, float] = {ConnectorFormat.OPENALPR: 100.0}


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """What the HTTP layer hands a format: the raw body and the little context parsing needs."""

    body: bytes
    content_type: str
    query: Mapping[str, str]
    webhook_id: str | None  # Standard Webhooks `webhook-id`, when the sender signs
    received_at: datetime  # aware UTC
    default_tz: ZoneInfo  # how to read timestamps that carry no zone (the facility's zone)

    def __post_init__(self) -> None:
        if self.received_at.tzinfo is None:
            raise ValueError("InboundRequest.received_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class FormatResult:
    """A format module's answer: each event with its index in the sender's batch (so errors can name it),
    and how many messages were acknowledged but carry nothing ParkHub uses."""

    events: list[tuple[int, NormalizedEvent]]
    ignored: int = 0


Parser = Callable[[InboundRequest], FormatResult]


def parse(fmt: ConnectorFormat, request: InboundRequest) -> ParsedRequest:
    """Parse `request` as `fmt`; raises PayloadError when any part of it cannot be accepted."""
    fmt = ConnectorFormat(fmt)
    result = _parser_for(fmt)(request)
    scale = _CONFIDENCE_SCALE.get(fmt, 1.0)
    events = [_apply_common_rules(event, index, request, scale) for index, event in result.events]
    return ParsedRequest(events=events, ignored=result.ignored)


def _parser_for(fmt: ConnectorFormat) -> Parser:
    # Imported here because the format modules import this package's helpers.
    from connectors.formats import cameras, cds, lorawan, native

    parsers: dict[ConnectorFormat, Parser] = {
        ConnectorFormat.NATIVE: native.parse,
        ConnectorFormat.TTS_V3: lorawan.parse_tts_v3,
        ConnectorFormat.CHIRPSTACK_V4: lorawan.parse_chirpstack_v4,
        ConnectorFormat.CDS: cds.parse,
        ConnectorFormat.PLATE_RECOGNIZER: cameras.parse_plate_recognizer,
        ConnectorFormat.OPENALPR: cameras.parse_openalpr,
    }
    return parsers[fmt]


def _apply_common_rules(
    event: NormalizedEvent, index: int, request: InboundRequest, confidence_scale: float
) -> NormalizedEvent:
    label = f"event {event.source_event_id!r} (index {index})"
    _check_id(event.source_event_id, "source event id", index)
    if event.device_external_id is not None:
        _check_id(event.device_external_id, "device id", index)

    occurred_at = event.occurred_at
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=request.default_tz)
    occurred_at = occurred_at.astimezone(UTC)
    ahead = occurred_at - request.received_at
    if ahead > FUTURE_TOLERANCE:
        raise PayloadError(
            f"{label} is {_describe(ahead)} in the future ({occurred_at.isoformat()}, received at "
            f"{request.received_at.astimezone(UTC).isoformat()}); check the sender's clock",
            index=index,
        )

    confidence = event.confidence
    if confidence is not None:
        confidence = _normalized_confidence(confidence, confidence_scale, label, index)
    if event.battery_percent is not None and not 0 <= event.battery_percent <= 100:
        raise PayloadError(f"{label}: battery_percent {event.battery_percent} is outside 0..100", index=index)
    if event.temperature_c is not None and not -100 <= event.temperature_c <= 200:
        raise PayloadError(f"{label}: temperature_c {event.temperature_c} is not a plausible °C", index=index)

    plate, plate_valid = event.plate, event.plate_valid
    if event.plate_raw:
        plate, plate_valid = normalize_camera_plate(event.plate_raw)
    elif event.kind is EventKind.PLATE_READ:
        raise PayloadError(f"{label}: a plate read without a plate", index=index)
    unchanged = (
        occurred_at is event.occurred_at
        and confidence is event.confidence
        and plate is event.plate
        and plate_valid is event.plate_valid
    )
    if unchanged:  # most events of a native batch: copying a frozen dataclass was a fifth of a batch's API CPU
        return event
    return replace(event, occurred_at=occurred_at, confidence=confidence, plate=plate, plate_valid=plate_valid)


def _check_id(value: str, what: str, index: int) -> None:
    if not value.strip():
        raise PayloadError(f"event at index {index} has an empty {what}", index=index)
    if len(value) > MAX_ID_LENGTH:
        raise PayloadError(f"event at index {index}: {what} is longer than {MAX_ID_LENGTH} characters", index=index)


def _normalized_confidence(raw: float, scale: float, label: str, index: int) -> float:
    value = raw / scale
    if not math.isfinite(value) or not -_CONFIDENCE_OVERSHOOT <= value <= 1 + _CONFIDENCE_OVERSHOOT:
        expected = "0..1" if scale == 1.0 else f"0..{scale:g}"
        raise PayloadError(f"{label}: confidence {raw} is outside {expected}", index=index)
    return min(1.0, max(0.0, value))


def _describe(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds / 3600:.1f} h"


# ---- helpers shared by the format modules -------------------------------------------------------------


def load_json(body: bytes) -> Any:
    """The body as JSON, or a PayloadError saying why it is not."""
    if not body.strip():
        raise PayloadError("the body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise PayloadError(f"the body is not valid JSON: {error}") from None


def brief(value: Any, limit: int = 60) -> str:
    """A sender's value quoted in an error message, cut short: messages are returned and stored."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compact(details: Mapping[str, Any]) -> dict[str, Any]:
    """`details` without the entries the sender did not send (None), so stored details stay small."""
    return {key: value for key, value in details.items() if value is not None}


def json_type(value: Any) -> str:
    """How a JSON value's type is named in error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def check_batch_size(items: list[Any], what: str, *, allow_empty: bool) -> None:
    if not items and not allow_empty:
        raise PayloadError(f"{what} is empty: send 1 to {MAX_BATCH_EVENTS} events")
    if len(items) > MAX_BATCH_EVENTS:
        raise PayloadError(f"{what} has {len(items)} events; at most {MAX_BATCH_EVENTS} per request")


def parse_time(value: Any, path: str, index: int | None, *, epoch_ms: bool = True, iso: bool = True) -> datetime:
    """A timestamp from JSON: epoch milliseconds (integer, or a numeric string) and/or ISO 8601 text with a
    time part (any number of fraction digits, beyond microseconds truncated). A zone-less ISO time comes
    back naive; `parse` reads it in the request's default zone."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PayloadError(f"{path} must be a time, got {json_type(value)}", index=index)
    if isinstance(value, str) and epoch_ms and _NUMERIC_TEXT.fullmatch(value.strip()):
        value = float(value) if "." in value else int(value)
    if isinstance(value, int | float):
        if not epoch_ms:
            raise PayloadError(f"{path} must be an ISO 8601 time, got a number", index=index)
        return _from_epoch_ms(value, path, index)
    text = value.strip()
    if not iso or not _ISO_WITH_TIME.match(text):
        accepted = (("epoch milliseconds", epoch_ms), ("an ISO 8601 time", iso))
        expected = " or ".join(name for name, allowed in accepted if allowed)
        raise PayloadError(f"{path} must be {expected}, got {brief(value)}", index=index)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise PayloadError(f"{path} is not a valid ISO 8601 time: {brief(value)}", index=index) from None


def _from_epoch_ms(value: float, path: str, index: int | None) -> datetime:
    if not math.isfinite(value) or value < _EARLIEST_EPOCH_MS:
        raise PayloadError(f"{path} {value} is not epoch milliseconds (seconds by mistake?)", index=index)
    try:
        if isinstance(value, int):  # exact: no float rounding of large millisecond counts
            return _EPOCH + timedelta(milliseconds=value)
        return _EPOCH + timedelta(microseconds=round(value * 1000))
    except OverflowError:
        raise PayloadError(f"{path} {value} is too far in the future to be a time", index=index) from None


class Fields:
    """Typed reading of one JSON object's fields. Every failure is a PayloadError naming the field's path
    (such as `events[3].device_id`) and the batch index, so senders can find their mistake."""

    def __init__(self, value: Any, path: str, index: int | None) -> None:
        if not isinstance(value, dict):
            raise PayloadError(f"{path or 'the body'} must be a JSON object, got {json_type(value)}", index=index)
        self.data: dict[str, Any] = value
        self.path = path
        self.index = index

    def path_of(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, message: str) -> PayloadError:
        return PayloadError(message, index=self.index)

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def extra(self, name: str) -> str | int | float | bool | None:
        """A field kept only for people (in `details`): a JSON scalar as sent, anything else dropped, never
        an error, because a cosmetic field must not cost the sender its event."""
        value = self.data.get(name)
        return value if isinstance(value, str | int | float | bool) else None

    def _present(self, name: str, required: bool) -> Any:
        value = self.data.get(name)
        if value is None and required:
            raise self.error(f"{self.path_of(name)} is required")
        return value

    def text(self, name: str) -> str | None:
        return self._text(name, required=False)

    def required_text(self, name: str) -> str:
        """A non-empty string."""
        value = self._text(name, required=True)
        assert value is not None
        return value

    def _text(self, name: str, *, required: bool) -> str | None:
        value = self._present(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(f"{self.path_of(name)} must be a string, got {json_type(value)}")
        if required and not value.strip():
            raise self.error(f"{self.path_of(name)} must not be empty")
        return value

    def identifier(self, name: str) -> str | None:
        """A string, or an integer that senders use as an id (OpenALPR camera ids), returned as text."""
        value = self.data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return self.text(name)

    def required_identifier(self, name: str) -> str:
        value = self.data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return self.required_text(name)

    def integer(self, name: str) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{self.path_of(name)} must be an integer, got {json_type(value)}")
        return value

    def number(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(f"{self.path_of(name)} must be a number, got {json_type(value)}")
        return float(value)

    def flag(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, bool):
            raise self.error(f"{self.path_of(name)} must be true or false, got {json_type(value)}")
        return value

    def child(self, name: str) -> Fields | None:
        value = self.data.get(name)
        return None if value is None else Fields(value, self.path_of(name), self.index)

    def required_child(self, name: str) -> Fields:
        return Fields(self._present(name, True), self.path_of(name), self.index)

    def array(self, name: str) -> list[Any] | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, list):
            raise self.error(f"{self.path_of(name)} must be an array, got {json_type(value)}")
        return value

    def time(self, name: str, *, epoch_ms: bool = True, iso: bool = True) -> datetime | None:
        value = self.data.get(name)
        if value is None:
            return None
        return parse_time(value, self.path_of(name), self.index, epoch_ms=epoch_ms, iso=iso)

    def required_time(self, name: str, *, epoch_ms: bool = True, iso: bool = True) -> datetime:
        value = self._present(name, True)
        return parse_time(value, self.path_of(name), self.index, epoch_ms=epoch_ms, iso=iso)
