"""The Bosch parking sensor decoder, byte by byte."""

from __future__ import annotations

import base64

import pytest

from connectors.events import EventKind, PayloadError
from connectors.formats.bosch import decode


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_status_occupied_and_free() -> None:
    occupied = decode(1, b64("AQ=="))
    free = decode(1, b64("AA=="))
    assert (occupied.kind, occupied.occupied) == (EventKind.OCCUPANCY, True)
    assert (free.kind, free.occupied) == (EventKind.OCCUPANCY, False)


def test_only_bit_zero_is_occupancy() -> None:
    assert decode(1, bytes([0xFE])).occupied is False
    assert decode(1, bytes([0x03])).occupied is True


def test_heartbeat_occupied_at_minus_one_degree() -> None:
    message = decode(2, b64("Af8="))
    assert message.kind is EventKind.HEARTBEAT
    assert message.occupied is True
    assert message.temperature_c == -1


def test_heartbeat_temperature_is_optional_and_signed() -> None:
    assert decode(2, bytes([0x00])).temperature_c is None
    assert decode(2, bytes([0x00, 0x19])).temperature_c == 25
    assert decode(2, bytes([0x00, 0x80])).temperature_c == -128


def test_full_startup_frame() -> None:
    debug = bytes(range(1, 13))
    frame = debug + bytes([1, 4, 7]) + bytes([2]) + bytes([1])
    message = decode(3, frame)
    assert message.kind is EventKind.STARTUP
    assert message.firmware == "1.4.7"
    assert message.reset_cause == "power_on"
    assert message.occupied is True
    assert message.debug_codes == debug.hex()


@pytest.mark.parametrize(("cause", "name"), [(1, "watchdog"), (3, "system_request"), (4, "other"), (9, "unknown_9")])
def test_startup_reset_causes(cause: int, name: str) -> None:
    frame = bytes(12) + bytes([0, 1, 0]) + bytes([cause]) + bytes([0])
    message = decode(3, frame)
    assert message.reset_cause == name
    assert message.occupied is False


@pytest.mark.parametrize(
    ("port", "payload", "says"),
    [
        (1, b"", "has 1 bytes, this one has 0"),
        (1, b"\x01\x00", "this one has 2"),
        (2, b"\x01\x02\x03", "1 or 2 bytes"),
        (3, bytes(16), "17 bytes, this one has 16"),
        (7, b"\x01", "fPort 7 is not a Bosch"),
        (None, b"\x01", "no fPort"),
    ],
)
def test_wrong_lengths_and_ports_are_rejected(port: int | None, payload: bytes, says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        decode(port, payload)
