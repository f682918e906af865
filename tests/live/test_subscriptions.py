"""occupancyChanged over a real WebSocket against a running server, fed through the real Redis pub/sub."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from hub.auth import token_claims
from hub.live import publish_occupancy_changes
from tests.api.conftest import Caller, Callers
from tests.api.supply_ops import UPDATE_SPACE, build_site
from tests.live.conftest import (
    PROBE_CODE,
    WAIT_SECONDS,
    LiveServer,
    global_id,
    graphql_socket,
    occupancy_change,
)


def row_id(gid: str) -> uuid.UUID:
    type_name, _, node_id = base64.b64decode(gid).decode().partition(":")
    assert type_name in ("Facility", "Space", "Operator")
    return uuid.UUID(node_id)


async def operator_with_lot(callers: Callers, lon: float, lat: float) -> tuple[Caller, uuid.UUID]:
    """An operator admin and one of its lots (a real facility, so visibility checks have a row to find)."""
    admin = await callers.operator()
    site = await build_site(admin, lon, lat, prefix=f"L{uuid.uuid4().hex[:6]}", spaces=1)
    return admin, row_id(site["lot"]["id"])


async def test_a_facility_subscriber_receives_the_change_with_every_field(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    admin, lot = await operator_with_lot(live_callers, 114.0500, 22.5400)
    assert admin.tenant_id is not None
    async with graphql_socket(live_server, token=admin.token) as socket:
        operation = await socket.subscribe({"facilityId": global_id("Facility", lot)})
        await socket.wait_until_live(operation, redis, occupancy_change(admin.tenant_id, lot, code=PROBE_CODE))

        change = occupancy_change(admin.tenant_id, lot, code="P1-007", lon=114.0503, lat=22.5404)
        await publish_occupancy_changes(redis, [change])
        event = await socket.event(operation)

    assert event == {
        "spaceId": global_id("Space", change.space_id),
        "spaceCode": "P1-007",
        "facilityId": global_id("Facility", lot),
        "operatorId": global_id("Operator", admin.tenant_id),
        "status": "OCCUPIED",
        "previousStatus": "VACANT",
        "changedAt": change.changed_at.isoformat(),
        "location": {"type": "Point", "coordinates": [114.0503, 22.5404]},
    }


async def test_a_facility_subscriber_does_not_get_another_facilitys_changes(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    admin, lot = await operator_with_lot(live_callers, 114.0520, 22.5400)
    assert admin.tenant_id is not None
    other_lot = uuid.uuid4()
    async with graphql_socket(live_server, token=admin.token) as socket:
        operation = await socket.subscribe({"facilityId": global_id("Facility", lot)})
        await socket.wait_until_live(operation, redis, occupancy_change(admin.tenant_id, lot, code=PROBE_CODE))

        # Published in this order on one connection, so delivered in this order: had the first one passed the
        # filter, it would be the first event received.
        await publish_occupancy_changes(
            redis,
            [
                occupancy_change(admin.tenant_id, other_lot, code="OTHER-1"),
                occupancy_change(admin.tenant_id, lot, code="MINE-1", status="vacant", previous=None),
            ],
        )
        event = await socket.event(operation)
    assert event["spaceCode"] == "MINE-1"
    assert event["status"] == "VACANT" and event["previousStatus"] is None


async def test_a_bbox_subscriber_gets_only_changes_inside_the_box(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    # Public supply: an anonymous caller may watch an area, across operators.
    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
    box = {"west": 114.10, "south": 22.50, "east": 114.11, "north": 22.51}
    async with graphql_socket(live_server) as socket:
        operation = await socket.subscribe({"bbox": box})
        await socket.wait_until_live(
            operation, redis, occupancy_change(tenant_a, code=PROBE_CODE, lon=114.105, lat=22.505)
        )
        await publish_occupancy_changes(
            redis,
            [
                occupancy_change(tenant_a, code="OUTSIDE-EAST", lon=114.1101, lat=22.505),
                occupancy_change(tenant_a, code="OUTSIDE-NORTH", lon=114.105, lat=22.5101),
                occupancy_change(tenant_b, code="INSIDE", lon=114.1001, lat=22.5001),
            ],
        )
        event = await socket.event(operation)
    assert event["spaceCode"] == "INSIDE"
    assert event["operatorId"] == global_id("Operator", tenant_b)


async def test_an_operators_bbox_shows_only_its_own_spaces(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    admin = await live_callers.operator(role="operator_staff")
    assert admin.tenant_id is not None
    box = {"west": 114.0, "south": 22.4, "east": 114.2, "north": 22.6}
    async with graphql_socket(live_server, token=admin.token) as socket:
        operation = await socket.subscribe({"bbox": box})
        await socket.wait_until_live(operation, redis, occupancy_change(admin.tenant_id, code=PROBE_CODE))
        await publish_occupancy_changes(
            redis,
            [occupancy_change(uuid.uuid4(), code="SOMEONE-ELSES"), occupancy_change(admin.tenant_id, code="OWN")],
        )
        assert (await socket.event(operation))["spaceCode"] == "OWN"


async def test_an_operator_watches_its_own_operator_and_the_city_any(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    admin = await live_callers.operator()
    assert admin.tenant_id is not None
    whole_operator = {"operatorId": global_id("Operator", admin.tenant_id)}
    async with (
        graphql_socket(live_server, token=admin.token) as operator_socket,
        graphql_socket(live_server, token=live_callers.city().token) as city_socket,
    ):
        for socket in (operator_socket, city_socket):
            operation = await socket.subscribe(whole_operator)
            await socket.wait_until_live(operation, redis, occupancy_change(admin.tenant_id, code=PROBE_CODE))
        await publish_occupancy_changes(
            redis, [occupancy_change(uuid.uuid4(), code="OTHER-OPERATOR"), occupancy_change(admin.tenant_id, code="X")]
        )
        assert (await operator_socket.event("1"))["spaceCode"] == "X"
        assert (await city_socket.event("1"))["spaceCode"] == "X"


async def test_two_subscribers_both_get_the_change(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    admin, lot = await operator_with_lot(live_callers, 114.0540, 22.5400)
    assert admin.tenant_id is not None
    driver = await live_callers.driver()
    watch = {"facilityId": global_id("Facility", lot)}
    async with (
        graphql_socket(live_server, token=driver.token) as first,
        graphql_socket(live_server) as second,
    ):
        for socket in (first, second):
            operation = await socket.subscribe(watch)
            await socket.wait_until_live(operation, redis, occupancy_change(admin.tenant_id, lot, code=PROBE_CODE))
        await publish_occupancy_changes(redis, [occupancy_change(admin.tenant_id, lot, code="BOTH")])
        assert (await first.event("1"))["spaceCode"] == "BOTH"
        assert (await second.event("1"))["spaceCode"] == "BOTH"


async def test_subscriptions_started_together_on_one_socket_each_get_their_facility(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    # Their visibility checks run concurrently; each operation has a context (and transaction) of its own.
    admin, lot = await operator_with_lot(live_callers, 114.0620, 22.5400)
    assert admin.tenant_id is not None
    async with graphql_socket(live_server, token=admin.token) as socket:
        operations = [await socket.subscribe({"facilityId": global_id("Facility", lot)}) for _ in range(8)]
        await socket.wait_until_live(operations, redis, occupancy_change(admin.tenant_id, lot, code=PROBE_CODE))
        await publish_occupancy_changes(redis, [occupancy_change(admin.tenant_id, lot, code="ALL")])
        received: dict[str, str] = {}
        for _ in operations:
            message = await socket.receive()
            assert message["type"] == "next", message
            received[message["id"]] = message["payload"]["data"]["occupancyChanged"]["spaceCode"]
        assert received == dict.fromkeys(operations, "ALL")


async def test_one_socket_carries_several_subscriptions(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    tenant = uuid.uuid4()
    async with graphql_socket(live_server, token=live_callers.city().token) as socket:
        west = await socket.subscribe({"bbox": {"west": 114.20, "south": 22.60, "east": 114.21, "north": 22.61}})
        await socket.wait_until_live(west, redis, occupancy_change(tenant, code=PROBE_CODE, lon=114.205, lat=22.605))
        east = await socket.subscribe({"bbox": {"west": 114.30, "south": 22.60, "east": 114.31, "north": 22.61}})
        await socket.wait_until_live(east, redis, occupancy_change(tenant, code=PROBE_CODE, lon=114.305, lat=22.605))
        await publish_occupancy_changes(redis, [occupancy_change(tenant, code="EAST", lon=114.305, lat=22.605)])
        assert (await socket.event(east))["spaceCode"] == "EAST"
        await publish_occupancy_changes(redis, [occupancy_change(tenant, code="WEST", lon=114.205, lat=22.605)])
        assert (await socket.event(west))["spaceCode"] == "WEST"


# Authorization ------------------------------------------------------------------------------------------------


async def test_an_operator_cannot_watch_another_operator_or_its_facilities(
    live_server: LiveServer, live_callers: Callers
) -> None:
    other_admin, other_lot = await operator_with_lot(live_callers, 114.0560, 22.5400)
    assert other_admin.tenant_id is not None
    admin = await live_callers.operator()
    async with graphql_socket(live_server, token=admin.token) as socket:
        assert await socket.error_code({"operatorId": global_id("Operator", other_admin.tenant_id)}) == "FORBIDDEN"
        assert await socket.error_code({"facilityId": global_id("Facility", other_lot)}) == "NOT_FOUND"


async def test_drivers_and_anonymous_callers_cannot_watch_a_whole_operator(
    live_server: LiveServer, live_callers: Callers
) -> None:
    admin = await live_callers.operator()
    assert admin.tenant_id is not None
    driver = await live_callers.driver()
    for token in (driver.token, None):
        async with graphql_socket(live_server, token=token) as socket:
            assert await socket.error_code({"operatorId": global_id("Operator", admin.tenant_id)}) == "FORBIDDEN"


async def test_an_unknown_facility_or_operator_is_not_found(live_server: LiveServer, live_callers: Callers) -> None:
    async with graphql_socket(live_server, token=live_callers.city().token) as socket:
        assert await socket.error_code({"facilityId": global_id("Facility", uuid.uuid4())}) == "NOT_FOUND"
        assert await socket.error_code({"operatorId": global_id("Operator", uuid.uuid4())}) == "NOT_FOUND"


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({}, "INVALID_INPUT"),
        (
            {
                "facilityId": global_id("Facility", uuid.uuid4()),
                "bbox": {"west": 114.0, "south": 22.0, "east": 114.1, "north": 22.1},
            },
            "INVALID_INPUT",
        ),
        ({"bbox": {"west": 22.5, "south": 114.0, "east": 22.6, "north": 114.1}}, "INVALID_BBOX"),
        ({"facilityId": global_id("Space", uuid.uuid4())}, "INVALID_ID"),
        # Not a global id at all: refused while coercing variables, as over HTTP.
        ({"operatorId": "not an id"}, "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_bad_filters_get_typed_errors(
    live_server: LiveServer, live_callers: Callers, variables: dict[str, Any], code: str
) -> None:
    async with graphql_socket(live_server, token=live_callers.city().token) as socket:
        assert await socket.error_code(variables) == code


# Authentication -----------------------------------------------------------------------------------------------


async def test_a_token_in_connection_init_identifies_the_caller(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    # Without a token the same subscription is refused (above); with the operator's token it streams.
    admin = await live_callers.operator()
    assert admin.tenant_id is not None
    async with graphql_socket(live_server, init=False) as socket:
        ack = await socket.init({"Authorization": f"Bearer {admin.token}"})
        assert ack["type"] == "connection_ack"
        operation = await socket.subscribe({"operatorId": global_id("Operator", admin.tenant_id)})
        await socket.wait_until_live(operation, redis, occupancy_change(admin.tenant_id, code=PROBE_CODE))


async def test_a_token_in_the_handshake_header_identifies_the_caller(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    admin = await live_callers.operator()
    assert admin.tenant_id is not None
    async with graphql_socket(live_server, header_token=admin.token) as socket:
        operation = await socket.subscribe({"operatorId": global_id("Operator", admin.tenant_id)})
        await socket.wait_until_live(operation, redis, occupancy_change(admin.tenant_id, code=PROBE_CODE))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"authorization": "Bearer not-a-jwt"}, "invalid_token: malformed"),
        ({"authorization": "Token abc"}, "invalid_token: malformed"),
        ({"authorization": 42}, "invalid_token: malformed"),
    ],
)
async def test_a_bad_token_in_connection_init_closes_the_socket_with_a_reason(
    live_server: LiveServer, payload: dict[str, Any], reason: str
) -> None:
    async with graphql_socket(live_server, init=False) as socket:
        await socket.send({"type": "connection_init", "payload": payload})
        with pytest.raises(ConnectionClosed):
            await socket.receive()
        assert socket.connection.close_code == 4403
        assert (socket.connection.close_reason or "").startswith(reason)


async def test_an_expired_token_in_connection_init_is_refused(live_server: LiveServer, live_callers: Callers) -> None:
    keystore = live_server.app.state.keystore
    expired = keystore.sign({**token_claims(kind="city", subject="city"), "exp": 1_000_000_000})
    async with graphql_socket(live_server, init=False) as socket:
        await socket.send({"type": "connection_init", "payload": {"authorization": f"Bearer {expired}"}})
        with pytest.raises(ConnectionClosed):
            await socket.receive()
        assert socket.connection.close_code == 4403
        assert socket.connection.close_reason == "invalid_token: token expired"


async def test_a_bad_token_in_the_handshake_header_refuses_the_socket(live_server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            live_server.ws_url,
            subprotocols=[Subprotocol("graphql-transport-ws")],
            additional_headers={"Authorization": "Bearer not-a-jwt"},
            proxy=None,
            open_timeout=WAIT_SECONDS,
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_subscribing_before_connection_init_is_refused(live_server: LiveServer) -> None:
    async with graphql_socket(live_server, init=False) as socket:
        await socket.subscribe({"bbox": {"west": 114.0, "south": 22.0, "east": 114.1, "north": 22.1}})
        with pytest.raises(ConnectionClosed):
            await socket.receive()
        assert socket.connection.close_code == 4401


async def test_queries_over_the_socket_run_as_the_connection_init_caller(
    live_server: LiveServer, live_callers: Callers
) -> None:
    admin, lot = await operator_with_lot(live_callers, 114.0600, 22.5400)
    query = "query($id: ID!) { node(id: $id) { id ... on Facility { name } } }"
    variables = {"id": global_id("Facility", lot)}
    async with graphql_socket(live_server, token=admin.token) as socket:
        operation = await socket.subscribe(variables, query=query)
        answer = await socket.receive()
        assert answer["type"] == "next" and answer["id"] == operation, answer
        assert answer["payload"]["data"]["node"]["id"] == variables["id"]
        assert (await socket.receive()) == {"id": operation, "type": "complete"}
    # Another operator's staff get null for the same id: the socket's caller decides, row-level security agrees.
    stranger = await live_callers.operator()
    async with graphql_socket(live_server, token=stranger.token) as socket:
        operation = await socket.subscribe(variables, query=query)
        answer = await socket.receive()
        assert answer["payload"] == {"data": {"node": None}}, answer


async def test_each_operation_on_a_socket_reads_afresh(live_server: LiveServer, live_callers: Callers) -> None:
    # One socket lives for hours: nothing read by one operation (DataLoader caches, the clock) may leak into the next.
    admin = await live_callers.operator()
    site = await build_site(admin, 114.0640, 22.5400, prefix=f"F{uuid.uuid4().hex[:6]}", spaces=1)
    space_id = site["spaces"][0]["id"]
    query = "query($id: ID!) { node(id: $id) { ... on Space { status } } }"
    async with graphql_socket(live_server, token=admin.token) as socket:

        async def status() -> str:
            operation = await socket.subscribe({"id": space_id}, query=query)
            answer = await socket.receive()
            assert answer["type"] == "next" and answer["id"] == operation, answer
            assert (await socket.receive())["type"] == "complete"
            return answer["payload"]["data"]["node"]["status"]

        assert await status() == "VACANT"
        await admin.data(UPDATE_SPACE, {"id": space_id, "input": {"status": "OCCUPIED"}})
        assert await status() == "OCCUPIED"


# Resources ----------------------------------------------------------------------------------------------------


async def test_a_live_subscription_holds_no_database_connection_and_detaches_when_done(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    admin, lot = await operator_with_lot(live_callers, 114.0580, 22.5400)
    assert admin.tenant_id is not None
    broker = live_server.app.state.live
    pool = live_server.app.state.db.engine.pool
    async with graphql_socket(live_server, token=admin.token) as socket:
        operation = await socket.subscribe({"facilityId": global_id("Facility", lot)})
        await socket.wait_until_live(operation, redis, occupancy_change(admin.tenant_id, lot, code=PROBE_CODE))
        await _until(lambda: broker.subscriber_count == 1)
        assert pool.checkedout() == 0
        await socket.complete(operation)
        await _until(lambda: broker.subscriber_count == 0)
        # The socket stays usable after its subscription completed.
        operation = await socket.subscribe({"facilityId": global_id("Facility", lot)})
        await socket.wait_until_live(operation, redis, occupancy_change(admin.tenant_id, lot, code=PROBE_CODE))
    await _until(lambda: broker.subscriber_count == 0)


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (generously bounded) for something the server does on its own thread."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_a_status_set_by_hand_reaches_the_facilitys_subscribers(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis
) -> None:
    admin = await live_callers.operator()
    site = await build_site(admin, 114.0720, 22.5420, prefix=f"H{uuid.uuid4().hex[:6]}", spaces=1)
    lot, [space] = row_id(site["lot"]["id"]), site["spaces"]
    assert admin.tenant_id is not None
    async with graphql_socket(live_server, token=admin.token) as socket:
        operation = await socket.subscribe({"facilityId": global_id("Facility", lot)})
        await socket.wait_until_live(operation, redis, occupancy_change(admin.tenant_id, lot, code=PROBE_CODE))
        await admin.data(UPDATE_SPACE, {"id": space["id"], "input": {"status": "OUT_OF_SERVICE"}})
        event = await socket.event(operation)
    assert (event["spaceId"], event["status"], event["previousStatus"]) == (space["id"], "OUT_OF_SERVICE", "VACANT")
