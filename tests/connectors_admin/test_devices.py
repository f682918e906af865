"""Devices through the API: registration by space code, space, curb zone or lane; the binding rules and
duplicates as typed errors with nothing written; re-binding, retiring, listing, health; isolation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from hub.db import PLATFORM, Database
from tests.api import supply_ops as ops
from tests.api.conftest import Caller, Callers

DEVICE_FIELDS = (
    "id kind externalId offlineAfterSeconds online offlineSince lastMessageAt lastHeartbeatAt batteryPercent "
    "temperatureC firmware retiredAt space { id code } facility { id kind } lane { id name }"
)
REGISTER = "mutation($input: RegisterDeviceInput!) { registerDevice(input: $input) { " + DEVICE_FIELDS + " } }"
UPDATE = (
    "mutation($id: ID!, $input: UpdateDeviceInput!) { updateDevice(id: $id, input: $input) { " + DEVICE_FIELDS + " } }"
)
RETIRE = "mutation($id: ID!) { retireDevice(id: $id) { id retiredAt } }"
NODE = "query($id: ID!) { node(id: $id) { id ... on Device { " + DEVICE_FIELDS + " } } }"
LIST = """query($first: Int, $after: String, $facilityId: ID, $kind: DeviceKind) {
    devices(first: $first, after: $after, facilityId: $facilityId, kind: $kind) {
        edges { node { id externalId kind } } pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture
async def site(callers: Callers) -> dict[str, Any]:
    """An operator admin and a site of theirs: a lot with an entry lane and three spaces, and a curb zone."""
    admin = await callers.operator()
    prefix = f"D{uuid.uuid4().hex[:5]}"
    return {"admin": admin, "prefix": prefix, **await ops.build_site(admin, 113.95, 22.55, prefix)}


async def register(caller: Caller, **fields: Any) -> dict[str, Any]:
    return (await caller.data(REGISTER, {"input": fields}))["registerDevice"]


async def device_rows(owner_db: Database, tenant_id: uuid.UUID | None) -> list[tuple]:
    sql = (
        "SELECT id, external_id, space_id, lane_id, offline_after_s, retired_at, updated_at FROM devices "
        "WHERE tenant_id = :t ORDER BY id"
    )
    async with owner_db.transaction(PLATFORM) as session:
        return [tuple(row) for row in (await session.execute(text(sql), {"t": tenant_id})).all()]


async def test_a_sensor_registered_by_space_code_gets_its_facility_and_a_normalized_deveui(
    site: dict[str, Any],
) -> None:
    space = site["spaces"][0]
    device = await register(
        site["admin"], kind="GEOMAGNETIC_SENSOR", externalId=" 70b3d57ed005a1b2 ", spaceCode=space["code"]
    )
    assert device["externalId"] == "70B3D57ED005A1B2"
    assert device["space"] == space
    assert device["facility"] == {"id": site["lot"]["id"], "kind": "LOT"}
    assert device["lane"] is None
    assert (device["offlineAfterSeconds"], device["online"], device["retiredAt"]) == (1800, True, None)
    assert (await site["admin"].data(NODE, {"id": device["id"]}))["node"] == device


async def test_a_lane_camera_by_lane_and_a_curb_camera_by_curb_zone_or_space(site: dict[str, Any]) -> None:
    admin, lane, curb = site["admin"], site["lane"], site["curb"]
    camera = await register(
        admin, kind="LANE_CAMERA", externalId="lpr-in-1", laneId=lane["id"], offlineAfterSeconds=300
    )
    assert camera["lane"] == {"id": lane["id"], "name": lane["name"]}
    assert camera["facility"]["id"] == site["lot"]["id"]
    assert (camera["space"], camera["offlineAfterSeconds"]) == (None, 300)
    gate = await register(admin, kind="GATE_CONTROLLER", externalId="gate-in-1", laneId=lane["id"])
    assert gate["lane"]["id"] == lane["id"]
    roadside = await register(admin, kind="CURB_CAMERA", externalId="curb-cam-1", facilityId=curb["id"])
    assert roadside["facility"] == {"id": curb["id"], "kind": "CURB_ZONE"}
    assert (roadside["space"], roadside["lane"]) == (None, None)
    watching = await register(admin, kind="CURB_CAMERA", externalId="curb-cam-2", spaceId=site["spaces"][1]["id"])
    assert watching["space"]["id"] == site["spaces"][1]["id"]


def _refusals(site: dict[str, Any]) -> list[tuple[dict[str, Any], str, str]]:
    lot, lane, space = site["lot"]["id"], site["lane"]["id"], site["spaces"][0]
    sensor = {"kind": "GEOMAGNETIC_SENSOR", "externalId": f"s-{uuid.uuid4().hex[:6]}"}
    return [
        ({**sensor, "laneId": lane}, "BINDING_NOT_ALLOWED", "input.laneId"),
        ({**sensor, "kind": "LANE_CAMERA", "spaceCode": space["code"]}, "BINDING_NOT_ALLOWED", "input.spaceCode"),
        ({**sensor, "kind": "GATE_CONTROLLER", "facilityId": lot}, "BINDING_NOT_ALLOWED", "input.facilityId"),
        ({**sensor, "kind": "CURB_CAMERA", "facilityId": lot}, "BINDING_NOT_ALLOWED", "input.facilityId"),
        ({**sensor, "spaceCode": space["code"], "spaceId": space["id"]}, "INVALID_INPUT", "input"),
        (sensor, "INVALID_INPUT", "input"),
        ({**sensor, "spaceCode": "NO-SUCH-SPACE"}, "NOT_FOUND", "input.spaceCode"),
        ({**sensor, "spaceId": lane}, "INVALID_ID", "input.spaceId"),
        (
            {**sensor, "spaceCode": space["code"], "offlineAfterSeconds": 59},
            "INVALID_INPUT",
            "input.offlineAfterSeconds",
        ),
        ({**sensor, "externalId": "   ", "spaceCode": space["code"]}, "INVALID_INPUT", "input.externalId"),
    ]


async def test_rule_violations_are_typed_errors_and_write_nothing(site: dict[str, Any], owner_db: Database) -> None:
    admin: Caller = site["admin"]
    before = await device_rows(owner_db, admin.tenant_id)
    for fields, code, field in _refusals(site):
        body = await admin.post(REGISTER, {"input": fields})
        assert body.get("errors"), fields
        extensions = body["errors"][0]["extensions"]
        assert (extensions["code"], extensions.get("field")) == (code, field), (fields, body["errors"])
    assert await device_rows(owner_db, admin.tenant_id) == before


async def test_duplicate_external_ids_are_refused_naming_the_id_until_the_device_is_retired(
    site: dict[str, Any], owner_db: Database
) -> None:
    admin: Caller = site["admin"]
    first = await register(
        admin, kind="GEOMAGNETIC_SENSOR", externalId="70B3D57ED0000001", spaceCode=site["prefix"] + "-0"
    )
    before = await device_rows(owner_db, admin.tenant_id)
    for spelling in ("70b3d57ed0000001", " 70-B3-D5-7E-D0-00-00-01"):
        body = await admin.post(
            REGISTER,
            {"input": {"kind": "CURB_CAMERA", "externalId": spelling, "spaceCode": site["prefix"] + "-1"}},
        )
        assert body["errors"][0]["extensions"] == {
            "code": "DUPLICATE_DEVICE",
            "field": "input.externalId",
            "external_id": "70B3D57ED0000001",
        }
        assert "70B3D57ED0000001" in body["errors"][0]["message"]
    assert await device_rows(owner_db, admin.tenant_id) == before

    retired = (await admin.data(RETIRE, {"id": first["id"]}))["retireDevice"]
    assert retired["retiredAt"] is not None
    replacement = await register(
        admin, kind="GEOMAGNETIC_SENSOR", externalId="70B3D57ED0000001", spaceCode=site["prefix"] + "-0"
    )
    assert replacement["id"] != first["id"]
    assert await admin.error_code(RETIRE, {"id": first["id"]}) == "NOT_FOUND"  # already retired


async def test_update_rebinds_and_changes_the_interval_under_the_same_rules(
    site: dict[str, Any], owner_db: Database
) -> None:
    admin: Caller = site["admin"]
    device = await register(admin, kind="GEOMAGNETIC_SENSOR", externalId="move-me", spaceCode=site["prefix"] + "-0")
    moved = (await admin.data(UPDATE, {"id": device["id"], "input": {"spaceId": site["spaces"][2]["id"]}}))[
        "updateDevice"
    ]
    assert moved["space"]["id"] == site["spaces"][2]["id"]
    slower = (await admin.data(UPDATE, {"id": device["id"], "input": {"offlineAfterSeconds": 7200}}))["updateDevice"]
    assert (slower["offlineAfterSeconds"], slower["space"]["id"]) == (7200, site["spaces"][2]["id"])

    before = await device_rows(owner_db, admin.tenant_id)
    for changes, code in (
        ({"laneId": site["lane"]["id"]}, "BINDING_NOT_ALLOWED"),
        ({"spaceCode": "A", "laneId": site["lane"]["id"]}, "INVALID_INPUT"),
        ({"offlineAfterSeconds": 10**7}, "INVALID_INPUT"),
    ):
        assert await admin.error_code(UPDATE, {"id": device["id"], "input": changes}) == code
    assert await device_rows(owner_db, admin.tenant_id) == before


async def test_devices_list_by_facility_and_kind_in_pages(site: dict[str, Any]) -> None:
    admin: Caller = site["admin"]
    sensors = [
        await register(admin, kind="GEOMAGNETIC_SENSOR", externalId=f"sensor-{index}", spaceCode=space["code"])
        for index, space in enumerate(site["spaces"])
    ]
    await register(admin, kind="LANE_CAMERA", externalId="lane-cam", laneId=site["lane"]["id"])
    await register(admin, kind="CURB_CAMERA", externalId="curb-cam", facilityId=site["curb"]["id"])

    everything = (await admin.data(LIST, {"first": 100}))["devices"]
    assert [edge["node"]["externalId"] for edge in everything["edges"]] == [
        "curb-cam",
        "lane-cam",
        "sensor-0",
        "sensor-1",
        "sensor-2",
    ]
    of_lot = (await admin.data(LIST, {"facilityId": site["lot"]["id"], "kind": "GEOMAGNETIC_SENSOR"}))["devices"]
    assert [edge["node"]["id"] for edge in of_lot["edges"]] == [sensor["id"] for sensor in sensors]

    first_page = (await admin.data(LIST, {"first": 1, "kind": "GEOMAGNETIC_SENSOR"}))["devices"]
    assert [edge["node"]["externalId"] for edge in first_page["edges"]] == ["sensor-0"]
    assert first_page["pageInfo"]["hasNextPage"] is True
    after = first_page["pageInfo"]["endCursor"]
    rest = (await admin.data(LIST, {"first": 2, "after": after, "kind": "GEOMAGNETIC_SENSOR"}))["devices"]
    assert [edge["node"]["externalId"] for edge in rest["edges"]] == ["sensor-1", "sensor-2"]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_health_is_read_only_and_online_follows_offline_since(site: dict[str, Any], owner_db: Database) -> None:
    admin: Caller = site["admin"]
    device = await register(admin, kind="GEOMAGNETIC_SENSOR", externalId="health-1", spaceCode=site["prefix"] + "-0")
    # The event pipeline writes these; here the owner stands in for it.
    async with owner_db.transaction(PLATFORM) as session:
        await session.execute(
            text(
                "UPDATE devices SET battery_percent = 87.5, temperature_c = -3.25, firmware = '2.1.0', "
                "last_message_at = now(), last_heartbeat_at = now(), offline_since = now() "
                "WHERE external_id = 'health-1' AND tenant_id = :t"
            ),
            {"t": admin.tenant_id},
        )
    node = (await admin.data(NODE, {"id": device["id"]}))["node"]
    assert (node["batteryPercent"], node["temperatureC"], node["firmware"]) == (87.5, -3.25, "2.1.0")
    assert node["online"] is False and node["offlineSince"] is not None
    assert node["lastMessageAt"] is not None and node["lastHeartbeatAt"] is not None


async def test_another_operator_cannot_see_change_or_borrow_devices(
    site: dict[str, Any], callers: Callers, owner_db: Database
) -> None:
    alpha: Caller = site["admin"]
    beta = await callers.operator()
    device = await register(alpha, kind="LANE_CAMERA", externalId="shared-name", laneId=site["lane"]["id"])
    before = await device_rows(owner_db, alpha.tenant_id)

    assert (await beta.data(NODE, {"id": device["id"]}))["node"] is None
    assert (await beta.data(LIST, {"first": 100}))["devices"]["edges"] == []
    assert await beta.error_code(UPDATE, {"id": device["id"], "input": {"offlineAfterSeconds": 600}}) == "NOT_FOUND"
    assert await beta.error_code(RETIRE, {"id": device["id"]}) == "NOT_FOUND"
    for binding in (
        {"laneId": site["lane"]["id"]},
        {"kind": "CURB_CAMERA", "facilityId": site["curb"]["id"]},
        {"kind": "GEOMAGNETIC_SENSOR", "spaceId": site["spaces"][0]["id"]},
        {"kind": "GEOMAGNETIC_SENSOR", "spaceCode": site["spaces"][0]["code"]},
    ):
        fields = {"kind": "LANE_CAMERA", "externalId": "sneaky", **binding}
        assert await beta.error_code(REGISTER, {"input": fields}) == "NOT_FOUND", binding
    assert await device_rows(owner_db, alpha.tenant_id) == before
    assert await device_rows(owner_db, beta.tenant_id) == []

    # External ids are unique per operator only: beta may name its own camera the same.
    beta_site = await ops.build_site(beta, 113.96, 22.56, f"E{uuid.uuid4().hex[:5]}")
    own = await register(beta, kind="LANE_CAMERA", externalId="shared-name", laneId=beta_site["lane"]["id"])
    assert own["id"] != device["id"]


async def test_staff_read_devices_the_city_reads_them_and_others_do_not(site: dict[str, Any], callers: Callers) -> None:
    alpha: Caller = site["admin"]
    device = await register(alpha, kind="GEOMAGNETIC_SENSOR", externalId="read-me", spaceCode=site["prefix"] + "-0")
    staff = await callers.operator(role="operator_staff", tenant_id=alpha.tenant_id)
    assert (await staff.data(NODE, {"id": device["id"]}))["node"]["externalId"] == "read-me"
    assert [e["node"]["id"] for e in (await staff.data(LIST))["devices"]["edges"]] == [device["id"]]
    fields = {"kind": "GEOMAGNETIC_SENSOR", "externalId": "staff-made", "spaceCode": site["prefix"] + "-1"}
    assert await staff.error_code(REGISTER, {"input": fields}) == "FORBIDDEN"
    assert await staff.error_code(RETIRE, {"id": device["id"]}) == "FORBIDDEN"

    city = callers.city()
    city_view = (await city.data(NODE, {"id": device["id"]}))["node"]
    assert city_view["space"]["id"] == site["spaces"][0]["id"]
    listed = await city.data(LIST, {"first": 100, "facilityId": site["lot"]["id"]})
    assert [e["node"]["id"] for e in listed["devices"]["edges"]] == [device["id"]]
    assert await city.error_code(RETIRE, {"id": device["id"]}) == "FORBIDDEN"

    for caller in (await callers.driver(), callers.anonymous()):
        assert (await caller.data(NODE, {"id": device["id"]}))["node"] is None
        assert await caller.error_code(LIST) == "FORBIDDEN"


async def test_the_keyset_paging_devices_share_with_spaces_and_facilities_follows_cursors(
    site: dict[str, Any],
) -> None:
    admin: Caller = site["admin"]
    for field in ("spaces", "facilities"):
        query = "query($after: String) { " + field + "(first: 1, after: $after) { edges { node { id } } "
        query += "pageInfo { hasNextPage endCursor } } }"
        seen: list[str] = []
        after = None
        while True:
            page = (await admin.data(query, {"after": after}))[field]
            seen += [edge["node"]["id"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        expected = [s["id"] for s in site["spaces"]] if field == "spaces" else [site["lot"]["id"], site["curb"]["id"]]
        assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))


async def test_retiring_a_space_lane_or_facility_retires_its_devices_and_frees_their_ids(
    site: dict[str, Any], owner_db: Database
) -> None:
    admin = site["admin"]
    sensor = await register(
        admin, kind="GEOMAGNETIC_SENSOR", externalId="70B3D57ED005C001", spaceCode=site["spaces"][0]["code"]
    )
    camera = await register(admin, kind="LANE_CAMERA", externalId="cam-retire-1", laneId=site["lane"]["id"])
    curb_camera = await register(admin, kind="CURB_CAMERA", externalId="cam-retire-2", facilityId=site["curb"]["id"])
    await admin.data(ops.RETIRE_SPACES, {"ids": [site["spaces"][0]["id"]]})
    await admin.data(ops.RETIRE_LANE, {"id": site["lane"]["id"]})
    await admin.data(ops.RETIRE_FACILITY, {"id": site["curb"]["id"]})
    for device in (sensor, camera, curb_camera):
        assert (await admin.data(NODE, {"id": device["id"]}))["node"]["retiredAt"] is not None
    # The sensor moves to the replacement space under the same DevEUI.
    moved = await register(
        admin, kind="GEOMAGNETIC_SENSOR", externalId="70B3D57ED005C001", spaceCode=site["spaces"][1]["code"]
    )
    assert moved["space"] == site["spaces"][1]
    assert [row[1] for row in await device_rows(owner_db, admin.tenant_id) if row[5] is None] == ["70B3D57ED005C001"]
