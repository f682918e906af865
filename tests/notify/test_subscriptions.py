"""notificationReceived over a real WebSocket against a running server, fed by notify() through Redis pub/sub."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from hub.notify.broker import DriverNotice, NotificationBroker, driver_channel, publish_driver_notices
from tests.api.conftest import Callers
from tests.live.conftest import PROBE_EVERY_SECONDS, WAIT_SECONDS, GraphQLSocket, LiveServer, graphql_socket
from tests.notify.conftest import MY_NOTIFICATIONS, Notify, a_notification

SUBSCRIPTION = "subscription { notificationReceived { id type operatorId occurredAt subjectIds payload } }"
PROBE_TYPE = "probe"


def probe(driver_id: uuid.UUID) -> DriverNotice:
    now = datetime.now(UTC)
    return DriverNotice(uuid.uuid4(), uuid.uuid4(), driver_id, PROBE_TYPE, {}, {}, now, now)


def _data(message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "next", message
    assert not message["payload"].get("errors"), message
    return message["payload"]["data"]["notificationReceived"]


async def wait_until_live(
    socket: GraphQLSocket, operation_id: str, redis: aioredis.Redis, driver_id: uuid.UUID
) -> None:
    """Publish probes on the driver's channel until one arrives: the server has attached the subscriber (the
    protocol does not acknowledge a subscribe)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            await publish_driver_notices(redis, [probe(driver_id)])
            try:
                async with asyncio.timeout(PROBE_EVERY_SECONDS):
                    message = json.loads(await socket.connection.recv())
            except TimeoutError:
                continue
            if message["type"] == "ping":
                await socket.send({"type": "pong"})
                continue
            assert message["id"] == operation_id and _data(message)["type"] == PROBE_TYPE, message
            return


async def next_notification(socket: GraphQLSocket, operation_id: str) -> dict[str, Any]:
    """The next notification that is not a probe still in flight."""
    while True:
        message = await socket.receive()
        assert message.get("id") == operation_id, message
        data = _data(message)
        if data["type"] != PROBE_TYPE:
            return data


async def test_a_driver_receives_their_notification_live_as_their_inbox_shows_it(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis, send_notification: Notify
) -> None:
    driver = await live_callers.driver()
    operator = await live_callers.operator()
    assert driver.user_id is not None and operator.tenant_id is not None
    async with graphql_socket(live_server, token=driver.token) as socket:
        operation = await socket.subscribe({}, query=SUBSCRIPTION)
        await wait_until_live(socket, operation, redis, driver.user_id)

        await send_notification(
            a_notification(operator.tenant_id, "session.amount_due", driver_id=driver.user_id, payload={"due": 800})
        )
        received = await next_notification(socket, operation)

    [stored] = [edge["node"] for edge in (await driver.data(MY_NOTIFICATIONS))["myNotifications"]["edges"]]
    assert received == stored
    assert received["type"] == "session.amount_due" and received["payload"] == {"due": 800}


async def test_a_driver_does_not_receive_another_drivers_notifications(
    live_server: LiveServer, live_callers: Callers, redis: aioredis.Redis, send_notification: Notify
) -> None:
    alice, bob = await live_callers.driver(), await live_callers.driver()
    operator = await live_callers.operator()
    assert alice.user_id and bob.user_id and operator.tenant_id
    async with (
        graphql_socket(live_server, token=alice.token) as alice_socket,
        graphql_socket(live_server, token=bob.token) as bob_socket,
    ):
        alice_operation = await alice_socket.subscribe({}, query=SUBSCRIPTION)
        bob_operation = await bob_socket.subscribe({}, query=SUBSCRIPTION)
        await wait_until_live(alice_socket, alice_operation, redis, alice.user_id)
        await wait_until_live(bob_socket, bob_operation, redis, bob.user_id)

        # Alice's first: had it reached Bob, it would be the first thing Bob receives.
        for_alice = await send_notification(a_notification(operator.tenant_id, driver_id=alice.user_id))
        for_bob = await send_notification(a_notification(operator.tenant_id, driver_id=bob.user_id))
        bob_received = await next_notification(bob_socket, bob_operation)
        alice_received = await next_notification(alice_socket, alice_operation)

    assert _row_id(bob_received["id"]) == for_bob.notification_id
    assert _row_id(alice_received["id"]) == for_alice.notification_id


async def test_only_a_driver_may_subscribe(live_server: LiveServer, live_callers: Callers) -> None:
    operator = await live_callers.operator()
    for token in (operator.token, live_callers.city().token, None):
        async with graphql_socket(live_server, token=token) as socket:
            operation = await socket.subscribe({}, query=SUBSCRIPTION)
            message = await socket.receive()
            assert message["type"] == "error" and message["id"] == operation, message
            assert message["payload"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_publishing_while_redis_is_down_does_not_raise() -> None:
    unreachable = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        await publish_driver_notices(unreachable, [probe(uuid.uuid4())])
    finally:
        await unreachable.aclose()


async def test_the_broker_drops_a_notice_published_on_another_drivers_channel(redis: aioredis.Redis) -> None:
    alice, mallory = uuid.uuid4(), uuid.uuid4()
    broker = NotificationBroker(redis)
    await broker.start()
    try:
        async with broker.notices_of(alice) as stream:
            async with asyncio.timeout(WAIT_SECONDS):
                await broker.wait_subscribed()
            misrouted = probe(mallory)
            await redis.publish(driver_channel(alice), misrouted.to_json())
            genuine = probe(alice)
            await publish_driver_notices(redis, [genuine])
            async with asyncio.timeout(WAIT_SECONDS):
                first = await anext(stream)
    finally:
        await broker.stop()
    assert first == genuine


def _row_id(global_id: str) -> uuid.UUID:
    type_name, _, row_id = base64.b64decode(global_id).decode().partition(":")
    assert type_name == "Notification"
    return uuid.UUID(row_id)
