"""Curb cameras that watch a whole curb zone (bound to the zone, not to a bay): a sighting of a plate with auto-pay
starts its session in the bay whose sensor saw the car arrive, and only when exactly one bay can hold it. Events go
through the real `/connectors` endpoint and the real worker, as in test_auto_sessions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import text

from hub import jobs
from hub.db import Database
from hub.street.tasks import sweep_street_sessions
from tests.api.conftest import Callers
from tests.ingest.support import assert_accepted, dead_events, post_with_secret
from tests.street.conftest import CurbZone, build_zone, fresh_plate, metered_fen, row_id
from tests.street.test_auto_sessions import (
    apply_but_lose_the_street_job,
    driver_with_auto_pay,
    flags_of,
    iso,
    parse,
    sessions_of,
)


class ZoneDevices:
    """A sensor in each bay of the zone, one camera bound to the whole zone, and the operator's native connector."""

    def __init__(self, zone: CurbZone, connector: Any, sensors: list[str], camera: str) -> None:
        self.zone, self.connector, self.sensors, self.camera = zone, connector, sensors, camera

    def occupancy(self, index: int, at: datetime, occupied: bool) -> dict[str, Any]:
        return {"id": f"o-{uuid.uuid4().hex}", "device_id": self.sensors[index], "time": iso(at), "occupied": occupied}

    def sighting(self, at: datetime, plate: str, camera: str | None = None) -> dict[str, Any]:
        return {
            "id": f"p-{uuid.uuid4().hex}",
            "type": "plate_read",
            "device_id": camera or self.camera,
            "time": iso(at),
            "plate": plate,
            "confidence": 0.96,
        }


async def equip_zone(zone: CurbZone, add_connector: Any, register_device: Any) -> ZoneDevices:
    connector = await add_connector(zone.site, "native", auth_mode="secret")
    sensors = []
    for index in range(len(zone.spaces)):
        # A DevEUI of its own (8 random bytes): the operator's sensors of every test share one namespace.
        sensor = ":".join(uuid.uuid4().hex[i : i + 2] for i in range(0, 16, 2))
        await register_device(zone.site, sensor.replace(":", "").upper(), "GEOMAGNETIC_SENSOR", space_index=index)
        sensors.append(sensor)
    camera = f"zone-cam-{uuid.uuid4().hex[:8]}"
    await register_device(zone.site, camera, "CURB_CAMERA", curb_zone=True)
    return ZoneDevices(zone, connector, sensors, camera)


def deliverer(client: Any, run_worker: Any) -> Any:
    async def deliver(devices: ZoneDevices, *events: dict[str, Any], duplicates: int = 0) -> None:
        """Post the events as the zone's devices do; the worker applies them, then runs the street job."""
        response = await post_with_secret(client, devices.connector, {"events": list(events)})
        assert_accepted(response, accepted=len(events) - duplicates, duplicates=duplicates)
        await run_worker()

    return deliver


async def decided(owner_db: Database, zone: CurbZone) -> list[tuple[str, str | None]]:
    """The zone's decided sightings as (outcome, code of the bay they name), oldest first. Not in GraphQL: kept
    for operators and the payments issue in street_sightings."""
    async with owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT d.outcome, s.code FROM street_sightings d "
                "LEFT JOIN spaces s ON s.tenant_id = d.tenant_id AND s.id = d.space_id "
                "WHERE d.tenant_id = :t AND d.facility_id = :zone ORDER BY d.seen_at, d.decided_at"
            ),
            {"t": zone.tenant_id, "zone": row_id(zone.zone_id)},
        )
        return [(row[0], row[1]) for row in rows]


def minutes_ago(count: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=count)


async def test_a_zone_camera_starts_the_session_in_the_bay_that_turned_occupied_and_clears_its_flag(
    client, callers: Callers, zone: CurbZone, add_connector, register_device, run_worker, owner_db
) -> None:
    deliver = deliverer(client, run_worker)
    devices = await equip_zone(zone, add_connector, register_device)
    plate = fresh_plate()
    await driver_with_auto_pay(callers, plate)
    arrived = minutes_ago(12)
    # Every bay was empty; then the car pulls into the second bay. Unpaid past the grace, it is flagged.
    await deliver(devices, *(devices.occupancy(index, arrived - timedelta(minutes=30), False) for index in range(3)))
    await deliver(devices, devices.occupancy(1, arrived, True))
    [flag] = await flags_of(zone)
    assert flag["spaceCode"] == zone.code(1)

    # The zone's camera reads the plate as the driver walks away.
    await deliver(devices, devices.sighting(arrived + timedelta(seconds=40), plate))
    [running] = await sessions_of(zone)
    assert (running["plate"], running["spaceCode"], running["paymentMode"], running["origin"]) == (
        plate,
        zone.code(1),
        "POSTPAID",
        "CAMERA",
    )
    assert (running["state"], parse(running["startedAt"])) == ("ACTIVE", arrived)
    assert await flags_of(zone) == []
    [resolved] = await flags_of(zone, open_only=False)
    assert (resolved["id"], resolved["resolution"], resolved["session"]) == (
        flag["id"],
        "SESSION_STARTED",
        {"id": running["id"]},
    )
    assert await decided(owner_db, zone) == [("started", zone.code(1))]

    # The bay's sensor ends it, as for a bay camera's session.
    left = arrived + timedelta(minutes=10)
    await deliver(devices, devices.occupancy(1, left, False))
    [ended] = await sessions_of(zone)
    assert (ended["state"], parse(ended["endedAt"]), ended["chargeFen"]) == ("ENDED_BY_SENSOR", left, metered_fen(10))


async def test_two_bays_turning_occupied_at_once_leave_the_sighting_ambiguous_and_the_bays_to_enforcement(
    client, callers: Callers, zone: CurbZone, add_connector, register_device, run_worker, owner_db
) -> None:
    deliver = deliverer(client, run_worker)
    devices = await equip_zone(zone, add_connector, register_device)
    plate = fresh_plate()
    await driver_with_auto_pay(callers, plate)
    arrived = minutes_ago(20)
    await deliver(
        devices,
        devices.occupancy(0, arrived, True),
        devices.occupancy(2, arrived, True),
        devices.sighting(arrived + timedelta(seconds=20), plate),
    )
    # Which of the two cars is the plate's cannot be told: nothing starts, both bays stay flagged.
    assert await sessions_of(zone) == []
    assert await decided(owner_db, zone) == [("ambiguous_bay", None)]
    assert sorted(flag["spaceCode"] for flag in await flags_of(zone)) == [zone.code(0), zone.code(2)]

    # The car in the first bay leaves; the camera reads the plate again. The car in the third bay arrived well
    # before this read, so the read may be a car driving past: it is billed nowhere, and the bay stays flagged.
    await deliver(devices, devices.occupancy(0, arrived + timedelta(minutes=5), False))
    await deliver(devices, devices.sighting(arrived + timedelta(minutes=10), plate))
    assert await sessions_of(zone) == []
    assert await decided(owner_db, zone) == [("ambiguous_bay", None), ("no_bay", None)]
    assert [flag["spaceCode"] for flag in await flags_of(zone)] == [zone.code(2)]


async def test_a_plate_without_auto_pay_read_by_a_zone_camera_starts_nothing(
    client, callers: Callers, zone: CurbZone, add_connector, register_device, run_worker, owner_db
) -> None:
    deliver = deliverer(client, run_worker)
    devices = await equip_zone(zone, add_connector, register_device)
    arrived = minutes_ago(10)
    await deliver(devices, devices.occupancy(0, arrived, True), devices.sighting(arrived, fresh_plate()))
    assert await sessions_of(zone) == []
    assert await decided(owner_db, zone) == [("no_authorization", None)]
    assert [flag["spaceCode"] for flag in await flags_of(zone)] == [zone.code(0)]


async def test_the_same_sighting_twice_starts_one_session(
    client, callers: Callers, zone: CurbZone, add_connector, register_device, run_worker, owner_db
) -> None:
    deliver = deliverer(client, run_worker)
    devices = await equip_zone(zone, add_connector, register_device)
    plate = fresh_plate()
    await driver_with_auto_pay(callers, plate)
    arrived = minutes_ago(15)
    sighting = devices.sighting(arrived + timedelta(seconds=10), plate)
    await deliver(devices, devices.occupancy(1, arrived, True), sighting)
    # The camera sends it again (its retry), and reads the plate once more a little later.
    await deliver(devices, sighting, devices.sighting(arrived + timedelta(seconds=30), plate), duplicates=1)
    # And the street job runs once more (a redelivered job).
    await jobs.get_job_pool().enqueue_job("reconcile_curb_spaces", str(zone.tenant_id), [], [str(row_id(zone.zone_id))])
    await run_worker()
    [running] = await sessions_of(zone)
    assert running["spaceCode"] == zone.code(1)
    assert await decided(owner_db, zone) == [("started", zone.code(1)), ("plate_has_session", zone.code(1))]


async def test_a_zone_camera_of_another_operator_cannot_start_sessions_here(
    client,
    callers: Callers,
    zone: CurbZone,
    add_connector,
    register_device,
    run_worker,
    db: Database,
    redis: aioredis.Redis,
    owner_db: Database,
) -> None:
    deliver = deliverer(client, run_worker)
    ours = await equip_zone(zone, add_connector, register_device)
    other_zone = await build_zone(await callers.operator())
    theirs = await equip_zone(other_zone, add_connector, register_device)
    plate = fresh_plate()
    await driver_with_auto_pay(callers, plate)
    arrived = minutes_ago(10)
    await deliver(ours, ours.occupancy(0, arrived, True))

    # Their camera reads the plate in their zone, where no bay is occupied: nothing starts anywhere.
    await deliver(theirs, theirs.sighting(arrived, plate))
    assert await sessions_of(zone) == [] and await sessions_of(other_zone) == []
    assert await decided(owner_db, other_zone) == [("no_bay", None)]
    # Their connector naming our camera names a device they do not have: the event is dead.
    await deliver(theirs, theirs.sighting(arrived, plate, camera=ours.camera))
    assert [event["deviceExternalId"] for event in await dead_events(other_zone.site)] == [ours.camera]
    assert await decided(owner_db, zone) == []

    # Our camera's read whose street job was lost: a job of theirs naming our zone decides nothing here...
    assert_accepted(await post_with_secret(client, ours.connector, {"events": [ours.sighting(arrived, plate)]}), 1)
    await apply_but_lose_the_street_job(db, owner_db, zone)
    await jobs.get_job_pool().enqueue_job(
        "reconcile_curb_spaces", str(other_zone.tenant_id), [], [str(row_id(zone.zone_id))]
    )
    await run_worker()
    assert await sessions_of(zone) == [] and await decided(owner_db, zone) == []
    # ... and the sweep, the safety net, does.
    await sweep_street_sessions({"db": db, "redis": redis})
    [running] = await sessions_of(zone)
    assert (running["spaceCode"], running["plate"]) == (zone.code(0), plate)
    assert await sessions_of(other_zone) == []
