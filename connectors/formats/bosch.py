"""Decoder of the Bosch parking lot sensor's LoRaWAN uplinks (geomagnetic, one per space).

| fPort | message        | bytes                                                                        |
|-------|----------------|------------------------------------------------------------------------------|
| 1     | parking status | byte 0 bit 0: 1 occupied, 0 free                                             |
| 2     | heartbeat      | byte 0 bit 0 occupancy; byte 1 (optional) temperature in °C, signed          |
| 3     | start-up       | bytes 0-11 debug codes; 12-14 firmware a.b.c; 15 reset cause; 16 bit 0 occupancy |

Reset causes: 1 watchdog, 2 power on, 3 system request, 4 other. A cause outside 1..4 does not reject the
message (its occupancy is still good): it is reported as `unknown_<n>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.events import EventKind, PayloadError

STATUS_PORT = 1
HEARTBEAT_PORT = 2
STARTUP_PORT = 3
_STARTUP_LENGTH = 17
_RESET_CAUSES = {1: "watchdog", 2: "power_on", 3: "system_request", 4: "other"}


@dataclass(frozen=True, slots=True)
class BoschMessage:
    kind: EventKind  # OCCUPANCY (fPort 1), HEARTBEAT (2) or STARTUP (3)
    occupied: bool
    temperature_c: int | None = None
    firmware: str | None = None  # "a.b.c"
    reset_cause: str | None = None  # watchdog | power_on | system_request | other | unknown_<n>
    debug_codes: str | None = None  # the 12 debug bytes, hex


def decode(port: int | None, payload: bytes) -> BoschMessage:
    """Decode one uplink's application payload sent on `port`; PayloadError when it is not a Bosch message."""
    if port == STATUS_PORT:
        _expect_length(payload, port, "parking status", allowed=(1,))
        return BoschMessage(kind=EventKind.OCCUPANCY, occupied=_occupied(payload[0]))
    if port == HEARTBEAT_PORT:
        _expect_length(payload, port, "heartbeat", allowed=(1, 2))
        temperature = int.from_bytes(payload[1:2], "big", signed=True) if len(payload) == 2 else None
        return BoschMessage(kind=EventKind.HEARTBEAT, occupied=_occupied(payload[0]), temperature_c=temperature)
    if port == STARTUP_PORT:
        _expect_length(payload, port, "start-up", allowed=(_STARTUP_LENGTH,))
        cause = payload[15]
        return BoschMessage(
            kind=EventKind.STARTUP,
            occupied=_occupied(payload[16]),
            firmware=".".join(str(part) for part in payload[12:15]),
            reset_cause=_RESET_CAUSES.get(cause, f"unknown_{cause}"),
            debug_codes=payload[:12].hex(),
        )
    if port is None:
        raise PayloadError("the uplink has no fPort, so its bytes cannot be decoded as a Bosch sensor message")
    raise PayloadError(f"fPort {port} is not a Bosch parking sensor port (1 status, 2 heartbeat, 3 start-up)")


def _expect_length(payload: bytes, port: int, message: str, *, allowed: tuple[int, ...]) -> None:
    if len(payload) not in allowed:
        expected = " or ".join(str(length) for length in allowed)
        raise PayloadError(
            f"a Bosch {message} message (fPort {port}) has {expected} bytes, this one has {len(payload)}"
        )


def _occupied(byte: int) -> bool:
    return bool(byte & 0x01)
