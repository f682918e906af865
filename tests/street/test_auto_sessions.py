"""Bays that run themselves: a curb camera's sighting of a plate with auto-pay starts a postpaid session, the bay's
sensor going vacant ends it with its true price charged, and an occupied bay with no session is flagged for
enforcement until a session starts or the car leaves. Events go through the real `/connectors` endpoint and the
real worker; the street job is enqueued as the inbox will enqueue it once it has applied events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import text

from hub import jobs
from hub.db import Database, Scope
from hub.ingest import service as ingest
from hub.street.tasks import sweep_street_sessions
from tests.api.conftest import Caller, Callers
from tests.ingest.support import assert_accepted, post_with_secret
from tests.street.conftest import ADD_VEHICLE, SET_AUTO_PAY, CurbZone, fresh_plate, metered_fen, row_id

SESSIONS = """query($facilityId: ID, $active: Boolean) { streetSessions(facilityId: $facilityId, active: $active,
    first: 50) { edges { node { id plate spaceCode paymentMode origin state active startedAt endedAt priceFen
    chargeFen refundFen actions { kind chargeFen } } } } }"""
MINE = "query { myStreetSessions(first: 50) { edges { node { id plate state origin paymentMode chargeFen } } } }"
FLAGS = """query($open: Boolean) { enforcementFlags(open: $open, first: 50) { edges { node { id spaceCode
    occupiedSince unpaidSince open resolution session { id } space { id } } } } }"""
EXTEND = "mutation($id: ID!) { extendStreetSession(id: $id, minutes: 15) { session { id } } }"
START = "mutation($input: StartStreetSessionInput!) { startStreetSession(input: $input) { session { id } } }"

SENSOR = "a1:b2:c3:d4:{}"  # as the sender writes the DevEUI; registered upper-case without colons
CAMERA = "curb-cam-{}"


def iso(moment: datetime) -> str:
    return moment.isoformat()


def parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class Bay:
    """One bay of the zone with its sensor and camera registered, and the operator's native connector."""

    def __init__(self, zone: CurbZone, connector: Any, index: int, tag: str) -> None:
        self.zone, self.connector, self.index = zone, connector, index
        self.sensor, self.camera = SENSOR.format(tag), CAMERA.format(uuid.uuid4().hex[:8])

    def occupancy(self, at: datetime, occupied: bool) -> dict[str, Any]:
        return {"id": f"o-{uuid.uuid4().hex}", "device_id": self.sensor, "time": iso(at), "occupied": occupied}

    def sighting(self, at: datetime, plate: str) -> dict[str, Any]:
        return {
            "id": f"p-{uuid.uuid4().hex}",
            "type": "plate_read",
            "device_id": self.camera,
            "time": iso(at),
            "plate": plate,
            "confidence": 0.97,
        }


async def equip(zone: CurbZone, add_connector: Any, register_device: Any, index: int = 0) -> Bay:
    connector = await add_connector(zone.site, "native", auth_mode="secret")
    tag = uuid.uuid4().hex[:8]  # four random bytes: an operator's bays of one test never share a DevEUI
    bay = Bay(zone, connector, index, ":".join(tag[i : i + 2] for i in range(0, 8, 2)))
    await register_device(zone.site, bay.sensor.replace(":", "").upper(), "GEOMAGNETIC_SENSOR", space_index=index)
    await register_device(zone.site, bay.camera, "CURB_CAMERA", space_index=index)
    return bay


async def driver_with_auto_pay(callers: Callers, plate: str) -> Caller:
    driver = await callers.driver()
    await driver.data(ADD_VEHICLE, {"plate": plate})
    assert (await driver.data(SET_AUTO_PAY, {"plate": plate}))["setAutoPay"]["enabled"] is True
    return driver


Deliver = Callable[..., Any]


async def apply_but_lose_the_street_job(db: Database, owner_db: Database, zone: CurbZone) -> None:
    """The inbox applies the pending events, but the street job it would hand them to is lost (Redis down,
    a worker killed): the events are applied here as the inbox job does, without its follow-up."""
    async with owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id FROM inbox_events WHERE tenant_id = :t AND state = 'pending'"), {"t": zone.tenant_id}
        )
        pending = [row[0] for row in rows]
    async with db.transaction(Scope("connector", tenant_id=zone.tenant_id)) as session:
        await ingest.apply_events(session, zone.tenant_id, pending, datetime.now(UTC), timedelta(minutes=30))


def deliverer(client: Any, run_worker: Any) -> Deliver:
    async def deliver(bay: Bay, *events: dict[str, Any]) -> None:
        """Post the events as the bay's devices do; the worker applies them, then runs the street job the
        inbox hands them to."""
        assert_accepted(await post_with_secret(client, bay.connector, {"events": list(events)}), accepted=len(events))
        await run_worker()

    return deliver


async def sessions_of(zone: CurbZone) -> list[dict[str, Any]]:
    body = await zone.admin.data(SESSIONS, {"facilityId": zone.zone_id})
    return [edge["node"] for edge in body["streetSessions"]["edges"]]


async def flags_of(zone: CurbZone, open_only: bool | None = True) -> list[dict[str, Any]]:
    return [edge["node"] for edge in (await zone.admin.data(FLAGS, {"open": open_only}))["enforcementFlags"]["edges"]]


async def sighting_outcomes(owner_db: Database, zone: CurbZone) -> list[str]:
    async with owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT outcome FROM street_sightings WHERE tenant_id = :t ORDER BY seen_at"), {"t": zone.tenant_id}
        )
        return [row[0] for row in rows]


# ---- automatic start and stop -------------------------------------------------------------------------------


async def test_a_sighting_with_auto_pay_starts_a_session_and_the_sensor_ends_it_with_its_price_charged(
    client, callers: Callers, zone: CurbZone, add_connector, register_device, run_worker, owner_db
) -> None:
    deliver = deliverer(client, run_worker)
    bay = await equip(zone, add_connector, register_device)
    plate = fresh_plate()
    driver = await driver_with_auto_pay(callers, plate)
    arrived = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=60)

    # The sensor reports the car, the camera reads its plate a minute later.
    await deliver(bay, bay.occupancy(arrived, True), bay.sighting(arrived + timedelta(minutes=1), plate))
    [running] = await sessions_of(zone)
    assert (running["plate"], running["spaceCode"], running["paymentMode"], running["origin"]) == (
        plate,
        zone.code(0),
        "POSTPAID",
        "CAMERA",
    )
    assert (running["state"], running["active"], parse(running["startedAt"])) == ("ACTIVE", True, arrived)
    assert running["chargeFen"] is None and running["refundFen"] is None
    [mine] = [edge["node"] for edge in (await driver.data(MINE))["myStreetSessions"]["edges"]]
    assert mine["id"] == running["id"]
    # Auto-pay sessions are priced when they end; there is no time to buy.
    assert await driver.error_code(EXTEND, {"id": running["id"]}) == "NOT_PREPAID"
    assert await flags_of(zone) == []  # the session covers the car

    # 50 minutes after arriving the sensor sees the bay empty.
    left = arrived + timedelta(minutes=50)
    await deliver(bay, bay.occupancy(left, False))
    [ended] = await sessions_of(zone)
    assert (ended["state"], ended["active"], parse(ended["endedAt"])) == ("ENDED_BY_SENSOR", False, left)
    assert ended["priceFen"] == ended["chargeFen"] == metered_fen(50)
    assert ended["refundFen"] is None
    assert ended["actions"] == [
        {"kind": "CAMERA_START", "chargeFen": 0},
        {"kind": "SENSOR_END", "chargeFen": metered_fen(50)},
    ]

    # Running the job again (a redelivered job, the sweep) changes nothing.
    await jobs.get_job_pool().enqueue_job("reconcile_curb_spaces", str(zone.tenant_id), [str(zone.space_id(0))])
    await run_worker()
    assert await sessions_of(zone) == [ended]
    assert await sighting_outcomes(owner_db, zone) == ["started"]


async def test_a_plate_without_auto_pay_starts_nothing_and_its_bay_is_flagged_until_a_session_starts(
    client, callers: Callers, zone: CurbZone, add_connector, register_device, run_worker, owner_db
) -> None:
    deliver = deliverer(client, run_worker)
    bay = await equip(zone, add_connector, register_device)
    arrived = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=12)
    plate = fresh_plate()

    await deliver(bay, bay.occupancy(arrived, True), bay.sighting(arrived + timedelta(seconds=30), plate))
    assert await sessions_of(zone) == []
    assert await sighting_outcomes(owner_db, zone) == ["no_authorization"]
    [flag] = await flags_of(zone)
    assert (flag["spaceCode"], flag["open"], parse(flag["occupiedSince"]), parse(flag["unpaidSince"])) == (
        zone.code(0),
        True,
        arrived,
        arrived,
    )

    # The driver pays at the bay: the start resolves the flag (its job runs right after the start commits).
    driver = await callers.driver()
    started = await driver.data(
        START, {"input": {"operator": zone.slug, "spaceCode": zone.code(0), "plate": plate, "durationMinutes": 60}}
    )
    await run_worker()
    assert await flags_of(zone) == []
    [resolved] = await flags_of(zone, open_only=False)
    assert (resolved["id"], resolved["resolution"], resolved["session"]) == (
        flag["id"],
        "SESSION_STARTED",
        {"id": started["startStreetSession"]["session"]["id"]},
    )


async def test_the_sweep_flags_a_bay_once_the_grace_has_passed_and_a_vacancy_clears_it(
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
    recent, settled = (
        await equip(zone, add_connector, register_device, 0),
        await equip(zone, add_connector, register_device, 1),
    )
    now = datetime.now(UTC).replace(microsecond=0)
    # One car arrived two minutes ago (within the grace), the other ten minutes ago. The street job of these
    # events is lost: the sweep is the safety net.
    events = [recent.occupancy(now - timedelta(minutes=2), True), settled.occupancy(now - timedelta(minutes=10), True)]
    assert_accepted(await post_with_secret(client, recent.connector, {"events": events}), accepted=2)
    await apply_but_lose_the_street_job(db, owner_db, zone)
    assert await flags_of(zone) == []
    await sweep_street_sessions({"db": db, "redis": redis})
    assert [flag["spaceCode"] for flag in await flags_of(zone)] == [zone.code(1)]

    # The car leaves: the bay's reconciliation after the vacancy clears its flag.
    await deliver(settled, settled.occupancy(now, False))
    assert await flags_of(zone) == []
    [resolved] = await flags_of(zone, open_only=False)
    assert (resolved["spaceCode"], resolved["resolution"]) == (zone.code(1), "VACATED")


async def test_a_car_staying_after_its_prepaid_time_runs_out_is_flagged_from_the_end_of_its_session(
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
    bay = await equip(zone, add_connector, register_device)
    now = datetime.now(UTC).replace(microsecond=0)
    # The car arrived 40 minutes ago; the sensor confirms it is still there now.
    await deliver(bay, bay.occupancy(now - timedelta(minutes=40), True), bay.occupancy(now, True))
    driver = await callers.driver()
    started = await driver.data(
        START,
        {"input": {"operator": zone.slug, "spaceCode": zone.code(0), "plate": fresh_plate(), "durationMinutes": 15}},
    )
    session_id = row_id(started["startStreetSession"]["session"]["id"])
    await run_worker()
    # The session is moved back in time as if bought 30 minutes ago: its 15 minutes ran out 15 minutes ago.
    async with owner_db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE street_sessions SET started_at = started_at - interval '30 minutes', "
                "paid_until = paid_until - interval '30 minutes' WHERE id = :id"
            ),
            {"id": session_id},
        )
        await conn.execute(
            text(
                "UPDATE street_session_actions SET at = at - interval '30 minutes', "
                "paid_until = paid_until - interval '30 minutes' WHERE session_id = :id"
            ),
            {"id": session_id},
        )
    await sweep_street_sessions({"db": db, "redis": redis})
    [session] = await sessions_of(zone)
    assert (session["state"], session["refundFen"]) == ("EXPIRED", 0)
    assert [action["kind"] for action in session["actions"]] == ["START", "EXPIRE"]
    # Flagged when the car arrived unpaid, resolved by the start, flagged again from the end of the paid time.
    [flag] = await flags_of(zone)
    assert parse(flag["unpaidSince"]) == parse(session["endedAt"])
    assert parse(flag["occupiedSince"]) == now - timedelta(minutes=40)
    assert [earlier["resolution"] for earlier in await flags_of(zone, open_only=False)] == ["SESSION_STARTED"]
