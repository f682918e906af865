"""The live broker and publishing against the real Redis: fan-out, slow subscribers, tenancy of channels,
reconnecting, and a Redis that is down."""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from hub.config import Settings
from hub.live import LiveBroker, OccupancyChange, OccupancyWatch, occupancy_channel, publish_occupancy_changes
from hub.live.broker import Subscriber
from tests.live.conftest import PROBE_CODE, WAIT_SECONDS, free_port, occupancy_change


@pytest.fixture
async def broker_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """A Redis client of the broker's own, named so a test can find and kill its connection."""
    client = aioredis.from_url(settings.redis_url, client_name=f"live-test-{uuid.uuid4().hex[:12]}")
    yield client
    await client.aclose()


@pytest.fixture
async def broker(broker_redis: aioredis.Redis) -> AsyncIterator[LiveBroker]:
    live = LiveBroker(broker_redis, first_retry_seconds=0.05, max_retry_seconds=0.5)
    await live.start()
    async with asyncio.timeout(WAIT_SECONDS):
        await live.wait_subscribed()
    yield live
    await live.stop()


async def next_change(subscriber: Subscriber) -> OccupancyChange:
    async with asyncio.timeout(WAIT_SECONDS):
        return await anext(subscriber)


async def test_every_subscriber_whose_filter_accepts_gets_the_change(broker: LiveBroker, redis: aioredis.Redis) -> None:
    tenant, lot = uuid.uuid4(), uuid.uuid4()
    watch_lot = OccupancyWatch(tenant_id=tenant, facility_id=lot)
    watch_everything = OccupancyWatch(tenant_id=None)
    async with (
        broker.subscribe(watch_lot.matches, owner=tenant) as of_lot,
        broker.subscribe(watch_everything.matches) as of_city,
    ):
        elsewhere = occupancy_change(tenant, code="ELSEWHERE")
        mine = occupancy_change(tenant, lot, code="MINE")
        await publish_occupancy_changes(redis, [elsewhere, mine])
        assert await next_change(of_city) == elsewhere
        assert await next_change(of_city) == mine
        assert await next_change(of_lot) == mine


async def test_a_slow_subscriber_loses_its_oldest_changes_and_holds_no_one_up(
    broker: LiveBroker, redis: aioredis.Redis
) -> None:
    tenant = uuid.uuid4()
    changes = [occupancy_change(tenant, code=f"S-{index}") for index in range(5)]
    async with (
        broker.subscribe(lambda change: change.tenant_id == tenant, owner=tenant, max_queued=2) as slow,
        broker.subscribe(lambda change: change.tenant_id == tenant, owner=tenant) as fast,
    ):
        await publish_occupancy_changes(redis, changes)
        # Once the fast subscriber has the last change, the broker has offered all five to the slow one.
        for change in changes:
            assert await next_change(fast) == change
        assert slow.dropped == 3
        assert await next_change(slow) == changes[3]
        assert await next_change(slow) == changes[4]


async def test_a_change_on_another_tenants_channel_is_not_delivered(broker: LiveBroker, redis: aioredis.Redis) -> None:
    victim, intruder = uuid.uuid4(), uuid.uuid4()
    async with broker.subscribe(lambda change: True, owner=victim) as subscriber:
        # A publisher's bug: tenant intruder's change on tenant victim's channel, and a message that is no change.
        await redis.publish(occupancy_channel(victim), occupancy_change(intruder, code="WRONG").to_json())
        await redis.publish(occupancy_channel(victim), b"{not json")
        right = occupancy_change(victim, code="RIGHT")
        await publish_occupancy_changes(redis, [right])
        assert await next_change(subscriber) == right


async def test_stopping_the_broker_ends_its_subscribers(broker_redis: aioredis.Redis) -> None:
    live = LiveBroker(broker_redis)
    await live.start()
    async with live.subscribe(lambda change: True) as subscriber:
        await live.stop()
        async with asyncio.timeout(WAIT_SECONDS):
            assert [change async for change in subscriber] == []
    async with live.subscribe(lambda change: True) as late:
        async with asyncio.timeout(WAIT_SECONDS):
            assert [change async for change in late] == []


async def test_the_broker_reconnects_when_redis_drops_it(
    broker: LiveBroker, broker_redis: aioredis.Redis, redis: aioredis.Redis
) -> None:
    tenant = uuid.uuid4()
    async with broker.subscribe(lambda change: change.tenant_id == tenant, owner=tenant) as subscriber:
        name = await broker_redis.client_getname()
        clients = [client for client in await redis.client_list() if client.get("name") == name]
        assert clients, "the broker's pub/sub connection is not in CLIENT LIST"
        for client in clients:
            await redis.client_kill_filter(_id=client["id"])

        # Publish until the broker is back; changes published while it was away are lost, by design.
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                await publish_occupancy_changes(redis, [occupancy_change(tenant, code=PROBE_CODE)])
                try:
                    async with asyncio.timeout(0.2):
                        received = await anext(subscriber)
                except TimeoutError:
                    continue
                assert received.space_code == PROBE_CODE
                break
        assert broker.subscribed


async def test_publishing_to_a_redis_that_is_down_logs_and_returns(caplog: pytest.LogCaptureFixture) -> None:
    nowhere = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with caplog.at_level(logging.WARNING, logger="parkhub.live"):
            await publish_occupancy_changes(nowhere, [occupancy_change(uuid.uuid4())])
    finally:
        await nowhere.aclose()
    assert "1 occupancy change(s) not published" in caplog.text


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server program")
async def test_a_broker_started_while_redis_is_down_delivers_once_it_is_up_and_after_a_restart(
    tmp_path: Path,
) -> None:
    port = free_port()
    client = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
    live = LiveBroker(client, first_retry_seconds=0.01, max_retry_seconds=0.2)
    tenant = uuid.uuid4()
    try:
        await live.start()  # returns at once although nothing listens on the port yet
        async with live.subscribe(lambda change: True, owner=tenant) as subscriber:
            for _ in range(2):  # first start, then a restart of the same server
                async with private_redis_server(port, tmp_path):
                    async with asyncio.timeout(WAIT_SECONDS):
                        await live.wait_subscribed()
                    change = occupancy_change(tenant)
                    await publish_occupancy_changes(client, [change])
                    assert await next_change(subscriber) == change
    finally:
        await live.stop()
        await client.aclose()


@asynccontextmanager
async def private_redis_server(port: int, directory: Path) -> AsyncIterator[None]:
    """A throwaway redis-server on `port`, stopped (and so dropping its clients) when the block exits."""
    process = await asyncio.create_subprocess_exec(
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        await process.wait()
