"""What every inbound format becomes: normalized events, the contract between `connectors/` (which parse
foreign formats and never touch the database) and `hub/ingest` (which stores, deduplicates and applies them).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class EventKind(enum.StrEnum):
    OCCUPANCY = "occupancy"  # a sensor (or curb camera) says the space is occupied or free
    HEARTBEAT = "heartbeat"  # the device is alive; may carry occupancy, battery, temperature
    STARTUP = "startup"  # the device (re)started; may carry occupancy, firmware, reset cause
    PLATE_READ = "plate_read"  # a camera read a plate
    COMMS_LOST = "comms_lost"  # the sender says the device stopped talking
    COMMS_RESTORED = "comms_restored"
    DECOMMISSIONED = "decommissioned"


@dataclass(frozen=True, slots=True)
class NormalizedEvent:
    """One event, in ParkHub's terms. Times are timezone-aware UTC; confidence is 0..1."""

    # The sender's own id of this event (TTS correlation id, ChirpStack deduplicationId, camera event uuid,
    # CDS event_id, native `id`, or the request's `webhook-id` for single-event formats without one).
    # Unique per connector; the inbox deduplicates on it.
    source_event_id: str
    kind: EventKind
    occurred_at: datetime
    # How the sender names the device: DevEUI (upper-case hex), camera id, CDS data_source_device_id.
    device_external_id: str | None = None
    occupied: bool | None = None
    battery_percent: float | None = None
    temperature_c: float | None = None
    # Plate reads: the normalized plate (upper case, separators removed); `plate_valid` is False when it is
    # not a recognizable plate (kept, flagged, never dropped), in which case `plate` is the cleaned raw text.
    plate: str | None = None
    plate_raw: str | None = None
    plate_valid: bool | None = None
    confidence: float | None = None
    # Where the sender says it happened, when it says so (CDS curb_zone_id, OpenALPR site): informative.
    location_ref: str | None = None
    # Bytes of an image that came with the event (Plate Recognizer multipart upload); stored by reference.
    image: bytes | None = field(default=None, repr=False)
    image_content_type: str | None = None
    # Everything else worth keeping from the source (rssi, firmware, reset cause, direction, vehicle type...).
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A request's events, plus how many messages it carried that ParkHub acknowledges and ignores
    (ChirpStack `join`/`status` events, OpenALPR messages of other types)."""

    events: list[NormalizedEvent]
    ignored: int = 0


class PayloadError(ValueError):
    """The body cannot be read as this format; the HTTP layer answers 400 with this message (and the
    batch index of the offending event when there is one). Nothing of the request is stored."""

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": "malformed_payload", "message": self.message}
        if self.index is not None:
            body["index"] = self.index
        return body
