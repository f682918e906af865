"""Fixtures for on-street sessions: an operator's curb zone with a metered tariff and bays, drivers, a clock the
driver flows can set, and (through tests.ingest's fixtures) connectors, devices and the real worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from strawberry import relay

from hub.street import service
from tests.api.conftest import Caller, Callers, app, callers, client  # noqa: F401  (pytest finds fixtures by name)
from tests.api.supply_ops import CREATE_CURB, CREATE_LOT, CREATE_SPACES, point, square
from tests.ingest.conftest import (  # noqa: F401  (fixtures)
    Site,
    add_connector,
    register_device,
    run_worker,
)

SET_TARIFF = (
    "mutation($f: ID!, $t: JSON!, $v: DateTime) { setTariff(facilityId: $f, tariffJson: $t, validFrom: $v) { id } }"
)
OPERATOR_SLUG = "query { me { operator { slug } } }"
ADD_VEHICLE = "mutation($plate: String!) { addVehicle(plate: $plate) { id plate } }"
SET_AUTO_PAY = "mutation($plate: String!) { setAutoPay(plate: $plate, enabled: true) { plate enabled } }"

# A street meter: the first half hour costs 5 yuan, every started quarter hour after it 2 yuan, at most 30 yuan a
# calendar day. A price that is not proportional to time: what ending early refunds is no share of what was paid.
FIRST_HALF_HOUR_FEN = 500
QUARTER_HOUR_FEN = 200
DAY_CAP_FEN = 3000
METER = {
    "default_rate": {
        "unit_minutes": 15,
        "unit_price_fen": QUARTER_HOUR_FEN,
        "first_unit_minutes": 30,
        "first_unit_price_fen": FIRST_HALF_HOUR_FEN,
    },
    "day_cap_fen": DAY_CAP_FEN,
}
TARIFFS_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def metered_fen(minutes: int) -> int:
    """What METER charges for a stay of `minutes` (within one day), as its rules state it."""
    quarters = max(0, -(-(minutes - 30) // 15))
    return min(DAY_CAP_FEN, FIRST_HALF_HOUR_FEN + quarters * QUARTER_HOUR_FEN)


def row_id(global_id: str) -> uuid.UUID:
    return uuid.UUID(relay.GlobalID.from_id(global_id).node_id)


def fresh_plate() -> str:
    return f"粤B{uuid.uuid4().int % 100_000:05d}"


@dataclass
class CurbZone:
    admin: Caller
    tenant_id: uuid.UUID
    slug: str
    zone_id: str  # global id
    spaces: list[dict[str, Any]]  # {"id": global id, "code": ...}
    lot_space: dict[str, Any]  # a bay of an off-street lot of the same operator
    site: Site  # the same bays, as tests.ingest's device fixtures take them

    def code(self, index: int) -> str:
        return self.spaces[index]["code"]

    def space_id(self, index: int) -> uuid.UUID:
        return row_id(self.spaces[index]["id"])


async def build_zone(admin: Caller, *, tariff: dict[str, Any] | None = METER, bays: int = 3) -> CurbZone:
    """A curb zone with `bays` bays whose status no one has reported yet (a sensor's first report counts from
    its own time), its tariff in effect since TARIFFS_FROM, and a lot bay beside it."""
    prefix = f"Z{uuid.uuid4().hex[:5]}"
    lon, lat = 114.05 + (uuid.uuid4().int % 500) / 100_000, 22.54
    zone = (
        await admin.data(
            CREATE_CURB,
            {
                "input": {
                    "name": f"{prefix} Street",
                    "code": prefix,
                    "geometry": {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.002, lat]]},
                    "side": "LEFT",
                    "parkingAngle": "PARALLEL",
                }
            },
        )
    )["createCurbZone"]
    lot = (await admin.data(CREATE_LOT, {"input": {"name": f"{prefix} Lot", "geometry": square(lon, lat + 0.001)}}))[
        "createLot"
    ]
    created = await admin.data(
        CREATE_SPACES,
        {
            "input": [
                *(
                    {
                        "facilityId": zone["id"],
                        "code": f"{prefix}-{index}",
                        "geometry": point(lon + 0.0002 * index, lat),
                    }
                    for index in range(bays)
                ),
                {"facilityId": lot["id"], "code": f"{prefix}-L", "geometry": point(lon + 0.0005, lat + 0.0015)},
            ]
        },
    )
    *curb, lot_space = created["createSpaces"]["spaces"]
    if tariff is not None:
        await admin.data(SET_TARIFF, {"f": zone["id"], "t": tariff, "v": TARIFFS_FROM.isoformat()})
    slug = (await admin.data(OPERATOR_SLUG))["me"]["operator"]["slug"]
    assert admin.tenant_id is not None
    site = Site(admin, admin.tenant_id, curb, [row_id(space["id"]) for space in curb], curb_zone_id=zone["id"])
    return CurbZone(admin, admin.tenant_id, slug, zone["id"], curb, lot_space, site)


@pytest.fixture
async def zone(callers: Callers) -> CurbZone:  # noqa: F811 (the fixture, imported above)
    return await build_zone(await callers.operator())


class Clock:
    """The time the street service reads, set by the test: a Tuesday morning in Shenzhen, inside one local day."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai

    def advance(self, minutes: float) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fixed = Clock()
    monkeypatch.setattr(service, "now_utc", lambda: fixed.now)
    yield fixed
