"""Pure rules of connectors and devices: secrets, overlap windows, device ids and what a device may watch."""

from __future__ import annotations

import base64
import math
import re

import pytest

from hub.errors import InvalidInput
from hub.supply import rules as supply_rules
from hub.supply.models import DEVICE_KINDS
from schema.connectors.types import ConnectorAuthMode, ConnectorFormat, DeviceKind
from tenants import rules
from tenants.models import CONNECTOR_AUTH_MODES, CONNECTOR_FORMATS


def test_signature_secrets_are_standard_webhooks_keys_of_32_random_bytes() -> None:
    first, second = (rules.generate_connector_secret("signature") for _ in range(2))
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32


def test_shared_secrets_are_long_url_safe_tokens() -> None:
    secret = rules.generate_connector_secret("secret")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", secret)
    assert secret != rules.generate_connector_secret("secret")


@pytest.mark.parametrize("hours", [0, 1, 24, 0.5, 168])
def test_overlap_from_nothing_to_a_week(hours: float) -> None:
    assert rules.check_overlap_hours(hours).total_seconds() == hours * 3600


@pytest.mark.parametrize("hours", [-1, 168.01, 1000, True, "24", None, math.nan])
def test_overlap_outside_a_week_or_not_a_number_is_refused(hours: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        rules.check_overlap_hours(hours)
    assert caught.value.details["field"] == "overlap_hours"


def test_formats_and_auth_modes_are_the_stored_ones() -> None:
    assert [rules.check_connector_format(f) for f in CONNECTOR_FORMATS] == list(CONNECTOR_FORMATS)
    assert [rules.check_connector_auth_mode(m) for m in CONNECTOR_AUTH_MODES] == list(CONNECTOR_AUTH_MODES)
    with pytest.raises(InvalidInput, match="format"):
        rules.check_connector_format("csv")
    with pytest.raises(InvalidInput, match="auth_mode"):
        rules.check_connector_auth_mode("basic")
    # The GraphQL enums carry exactly the stored values.
    assert tuple(item.value for item in ConnectorFormat) == CONNECTOR_FORMATS
    assert tuple(item.value for item in ConnectorAuthMode) == CONNECTOR_AUTH_MODES
    assert tuple(item.value for item in DeviceKind) == DEVICE_KINDS


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("70b3d57ed005a1b2", "70B3D57ED005A1B2"),
        ("  70B3D57ED005A1B2\n", "70B3D57ED005A1B2"),
        ("70-b3-d5-7e-d0-05-a1-b2", "70B3D57ED005A1B2"),
        ("70:B3:D5:7E:D0:05:A1:B2", "70B3D57ED005A1B2"),
        ("  cam-north-01 ", "cam-north-01"),
        ("CamEast", "CamEast"),
        ("70b3d57ed005a1b2c", "70b3d57ed005a1b2c"),  # 17 hex digits: not a DevEUI, kept as given
        ("12345", "12345"),
    ],
)
def test_external_ids_are_normalized(given: str, stored: str) -> None:
    assert supply_rules.normalize_external_id(given, "input.externalId") == stored


@pytest.mark.parametrize("given", ["", "   ", None, "x" * 256])
def test_blank_or_overlong_external_ids_are_refused(given: str | None) -> None:
    with pytest.raises(InvalidInput) as caught:
        supply_rules.normalize_external_id(given, "input.externalId")
    assert caught.value.details["field"] == "input.externalId"


ALLOWED = {
    ("geomagnetic_sensor", "space"),
    ("curb_camera", "curb_zone"),
    ("curb_camera", "space"),
    ("lane_camera", "lane"),
    ("gate_controller", "lane"),
}


@pytest.mark.parametrize("kind", DEVICE_KINDS)
@pytest.mark.parametrize("target", supply_rules.DEVICE_TARGETS)
def test_each_kind_of_device_binds_only_to_what_it_can_watch(kind: str, target: str) -> None:
    if (kind, target) in ALLOWED:
        supply_rules.check_device_target(kind, target, "input.laneId")
        return
    with pytest.raises(InvalidInput) as caught:
        supply_rules.check_device_target(kind, target, "input.laneId")
    assert caught.value.code == "BINDING_NOT_ALLOWED"
    assert caught.value.details["field"] == "input.laneId"


def test_every_device_kind_has_binding_rules() -> None:
    assert set(supply_rules.TARGETS_BY_DEVICE_KIND) == set(DEVICE_KINDS)


def test_a_device_binds_to_one_place_at_most() -> None:
    assert supply_rules.binding_field({"offline_after_s": 60}, "input") is None
    assert supply_rules.binding_field({"space_code": "A1", "lane_id": None}, "input") == "space_code"
    with pytest.raises(InvalidInput, match="spaceCode, laneId"):
        supply_rules.binding_field({"space_code": "A1", "lane_id": "x"}, "input")


@pytest.mark.parametrize(("seconds", "valid"), [(59, False), (60, True), (604_800, True), (604_801, False)])
def test_offline_after_is_a_minute_to_a_week(seconds: int, valid: bool) -> None:
    if valid:
        supply_rules.check_offline_after(seconds, "input.offlineAfterSeconds")
    else:
        with pytest.raises(InvalidInput):
            supply_rules.check_offline_after(seconds, "input.offlineAfterSeconds")
