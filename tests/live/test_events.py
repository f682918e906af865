"""Occupancy changes on the wire and what a watch matches: pure, no I/O."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from geo.bounds import Bbox
from hub.live import OCCUPANCY_PATTERN, OccupancyChange, OccupancyWatch, occupancy_channel
from tests.live.conftest import occupancy_change


def test_a_change_survives_the_wire() -> None:
    change = occupancy_change(uuid.uuid4(), code="P1-001", lon=114.0579, lat=22.5431, previous=None)
    assert OccupancyChange.from_json(change.to_json()) == change
    local = dataclasses.replace(change, changed_at=datetime(2025, 3, 9, 8, 30, tzinfo=timezone(timedelta(hours=8))))
    assert OccupancyChange.from_json(local.to_json()).changed_at == datetime(2025, 3, 9, 0, 30, tzinfo=UTC)


def test_channels_are_named_per_tenant_and_the_pattern_hears_them_all() -> None:
    tenant = uuid.UUID("6f1c2d7e-0000-4000-8000-000000000001")
    assert occupancy_channel(tenant) == f"tenant:{tenant}:occupancy"
    assert OCCUPANCY_PATTERN == "tenant:*:occupancy"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b"{}",
        b'{"tenant_id": "x"}',
        occupancy_change(uuid.uuid4()).to_json().replace(b'"occupied"', b'"parked"'),
        occupancy_change(uuid.uuid4()).to_json().replace(b'"A-001"', b"7"),
        occupancy_change(uuid.uuid4()).to_json().replace(b"114.05", b'"east"'),
        occupancy_change(uuid.uuid4()).to_json().replace(b"+00:00", b""),
    ],
)
def test_anything_but_a_change_is_refused_with_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        OccupancyChange.from_json(data)


def test_a_change_checks_itself_where_it_is_made() -> None:
    change = occupancy_change(uuid.uuid4())
    with pytest.raises(ValueError, match="status"):
        dataclasses.replace(change, status="parked")
    with pytest.raises(ValueError, match="timezone"):
        dataclasses.replace(change, changed_at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="lat"):
        dataclasses.replace(change, lat=114.05)
    with pytest.raises(ValueError, match="lon"):
        dataclasses.replace(change, lon=float("nan"))


def test_a_watch_matches_its_tenant_facility_and_box() -> None:
    tenant, lot = uuid.uuid4(), uuid.uuid4()
    inside = occupancy_change(tenant, lot, lon=114.05, lat=22.54)
    box = Bbox(114.0, 22.5, 114.05, 22.54)  # the change sits on the north-east corner: edges are inside

    assert OccupancyWatch(tenant_id=None).matches(inside)
    assert OccupancyWatch(tenant_id=tenant).matches(inside)
    assert not OccupancyWatch(tenant_id=uuid.uuid4()).matches(inside)
    assert OccupancyWatch(tenant_id=tenant, facility_id=lot).matches(inside)
    assert not OccupancyWatch(tenant_id=tenant, facility_id=uuid.uuid4()).matches(inside)
    assert OccupancyWatch(tenant_id=None, bbox=box).matches(inside)
    assert not OccupancyWatch(tenant_id=uuid.uuid4(), bbox=box).matches(inside)
    assert not OccupancyWatch(tenant_id=None, bbox=box).matches(dataclasses.replace(inside, lon=114.0500001))
    assert not OccupancyWatch(tenant_id=None, bbox=box).matches(dataclasses.replace(inside, lat=22.4999999))
