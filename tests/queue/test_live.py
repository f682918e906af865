"""exceptionQueueChanged over a real WebSocket (graphql-transport-ws) against a running server, fed through Redis
pub/sub by lanes raising exceptions and agents acting on them."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from hub.queue.broker import QueueBroker, publish_queue_events
from hub.queue.events import QueueEvent, QueueItem, queue_channel
from tests.api.conftest import Callers
from tests.lanes.conftest import MakeLot, ago, global_id, plate_of
from tests.live.conftest import PROBE_EVERY_SECONDS, WAIT_SECONDS, GraphQLSocket, LiveServer, graphql_socket
from tests.queue.conftest import CLAIM, CORRECT, ITEM_FIELDS, Desk, agent, queue_of, raise_disagreement, subject

SUBSCRIPTION = f"""
subscription($facilityIds: [ID!]) {{
  exceptionQueueChanged(facilityIds: $facilityIds) {{ action actor at exception {{ {ITEM_FIELDS} }} }}
}}
"""


def probe(tenant_id: uuid.UUID, facility_id: uuid.UUID) -> QueueEvent:
    """A change no lane made, to learn when a subscription is live (the protocol does not acknowledge one)."""
    now = datetime.now(UTC)
    item = QueueItem(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        kind="gate_fault",
        state="open",
        facility_id=facility_id,
        facility_name="probe",
        lane_id=None,
        lane_name=None,
        lane_direction=None,
        decision_id=None,
        decision_reason=None,
        passed_at=None,
        plate=None,
        reads=[],
        detail={"probe": True},
        session=None,
        claimed_by=None,
        claimed_at=None,
        resolved_by=None,
        resolved_at=None,
        resolution=None,
        created_at=now,
    )
    return QueueEvent("raised", "probe", now, item)


def _change(message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "next", message
    assert not message["payload"].get("errors"), message
    return message["payload"]["data"]["exceptionQueueChanged"]


def _is_probe(change: dict[str, Any]) -> bool:
    return change["exception"]["detail"].get("probe") is True


async def wait_until_live(socket: GraphQLSocket, operation_id: str, redis: aioredis.Redis, event: QueueEvent) -> None:
    """Publish the probe until it arrives: the server has attached the subscriber."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            await publish_queue_events(redis, [event])
            try:
                async with asyncio.timeout(PROBE_EVERY_SECONDS):
                    message = json.loads(await socket.connection.recv())
            except TimeoutError:
                continue
            if message["type"] == "ping":
                await socket.send({"type": "pong"})
                continue
            assert message["id"] == operation_id and _is_probe(_change(message)), message
            return


async def next_change(socket: GraphQLSocket, operation_id: str) -> dict[str, Any]:
    """The next change that is not a probe still in flight."""
    while True:
        message = await socket.receive()
        assert message.get("id") == operation_id, message
        change = _change(message)
        if not _is_probe(change):
            return change


def screen(item: dict[str, Any]) -> dict[str, Any]:
    """What the queue shows of an exception, but the waiting time (it grows while one looks)."""
    return {key: value for key, value in item.items() if key != "waitingSeconds"}


async def test_an_agent_sees_raised_claimed_and_resolved_live_with_all_the_screen_needs(
    desk: Desk,
    make_lot: MakeLot,
    live_server: LiveServer,
    live_callers: Callers,
    redis: aioredis.Redis,
) -> None:
    lot = desk.lot
    theirs = await make_lot()
    watcher = agent(live_callers, lot.tenant_id, "dave")
    stranger = agent(live_callers, theirs.tenant_id, "mallory")
    async with (
        graphql_socket(live_server, token=watcher.token) as socket,
        graphql_socket(live_server, token=stranger.token) as other_socket,
    ):
        operation = await socket.subscribe({"facilityIds": [lot.lot_id]}, query=SUBSCRIPTION)
        other_operation = await other_socket.subscribe({}, query=SUBSCRIPTION)
        await wait_until_live(socket, operation, redis, probe(lot.tenant_id, lot.facility_uuid))
        await wait_until_live(other_socket, other_operation, redis, probe(theirs.tenant_id, theirs.facility_uuid))

        answer = await raise_disagreement(lot, lot.entry_lane, ago(1), number=5150)
        exception_id = global_id("LaneException", answer["exception_id"])
        raised = await next_change(socket, operation)
        assert (raised["action"], raised["actor"]) == ("RAISED", "system")
        [listed] = await queue_of(desk.alice)
        assert screen(raised["exception"]) == screen(listed)  # nothing to read back
        assert raised["exception"]["lane"]["name"] == "In" and len(raised["exception"]["reads"]) == 2

        await desk.alice.data(CLAIM, {"id": exception_id})
        claimed = await next_change(socket, operation)
        assert (claimed["action"], claimed["actor"]) == ("CLAIMED", subject("alice", lot))
        assert (claimed["exception"]["id"], claimed["exception"]["claimedBy"]) == (exception_id, subject("alice", lot))

        await desk.alice.data(CORRECT, {"id": exception_id, "plate": plate_of(5150)})
        resolved = await next_change(socket, operation)
        assert (resolved["action"], resolved["exception"]["state"]) == ("RESOLVED", "RESOLVED")
        assert resolved["exception"]["session"]["plate"] == plate_of(5150)

        # The other operator heard none of it: its own exception is the first thing it gets.
        their_answer = await raise_disagreement(theirs, theirs.entry_lane, ago(1))
        theirs_raised = await next_change(other_socket, other_operation)
        assert theirs_raised["exception"]["id"] == global_id("LaneException", their_answer["exception_id"])
        # Nor did a watcher of one facility hear of another's.
        other_lot = await make_lot(admin=lot.admin)
        await raise_disagreement(other_lot, other_lot.entry_lane, ago(1))
        await raise_disagreement(lot, lot.exit_lane, ago(1))
        assert (await next_change(socket, operation))["exception"]["lane"]["name"] == "Out"


async def test_only_the_operators_agents_may_subscribe_to_their_facilities(
    desk: Desk, make_lot: MakeLot, live_server: LiveServer, live_callers: Callers
) -> None:
    theirs = await make_lot()
    driver = await live_callers.driver()
    refusals = [
        (driver.token, {}, "FORBIDDEN"),
        (live_callers.city().token, {}, "FORBIDDEN"),
        (None, {}, "FORBIDDEN"),
        (agent(live_callers, desk.lot.tenant_id, "dave").token, {"facilityIds": [theirs.lot_id]}, "NOT_FOUND"),
    ]
    for token, variables, code in refusals:
        async with graphql_socket(live_server, token=token) as socket:
            operation = await socket.subscribe(variables, query=SUBSCRIPTION)
            message = await socket.receive()
            assert message["type"] == "error" and message["id"] == operation, message
            assert message["payload"][0]["extensions"]["code"] == code


async def test_publishing_while_redis_is_down_does_not_raise() -> None:
    unreachable = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        await publish_queue_events(unreachable, [probe(uuid.uuid4(), uuid.uuid4())])
    finally:
        await unreachable.aclose()


async def test_the_broker_drops_an_event_published_on_another_operators_channel(redis: aioredis.Redis) -> None:
    mine, mallory = uuid.uuid4(), uuid.uuid4()
    broker = QueueBroker(redis)
    await broker.start()
    try:
        async with broker.subscribe(lambda event: True, owner=mine) as events:
            async with asyncio.timeout(WAIT_SECONDS):
                await broker.wait_subscribed()
            misrouted = probe(mallory, uuid.uuid4())
            await redis.publish(queue_channel(mine), misrouted.to_json())
            genuine = probe(mine, uuid.uuid4())
            await publish_queue_events(redis, [genuine])
            async with asyncio.timeout(WAIT_SECONDS):
                first = await anext(events)
    finally:
        await broker.stop()
    assert first == genuine
