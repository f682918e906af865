"""Lane decisions tell the driver and the operator: entry, exit and amount due, once per passage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from sqlalchemy import text

from hub.db import Database
from hub.notify.broker import driver_channel
from tests.api.conftest import Caller, Callers
from tests.lanes.conftest import Lot, ago, fresh_plate
from tests.notify.conftest import (  # noqa: F401  (pytest finds fixtures by name)
    FakeReceiver,
    _jobs_sent_from_this_loop,
    create_endpoint,
    deliveries,
    receiver,
    run_worker,
)

ADD_VEHICLE = "mutation($plate: String!) { addVehicle(plate: $plate) { id } }"
SET_AUTO_PAY = "mutation($plate: String!) { setAutoPay(plate: $plate, enabled: true) { enabled } }"
MY_NOTIFICATIONS = "{ myNotifications(first: 10) { edges { node { type subjectIds payload } } } }"


async def inbox_of(driver: Caller) -> list[dict[str, Any]]:
    return [edge["node"] for edge in (await driver.data(MY_NOTIFICATIONS))["myNotifications"]["edges"]]


async def operator_notifications(owner_db: Database, lot: Lot) -> list[tuple[str, dict[str, Any]]]:
    async with owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT type, payload FROM notifications WHERE tenant_id = :t ORDER BY occurred_at"),
            {"t": lot.tenant_id},
        )
        return [(row[0], row[1]) for row in rows]


async def test_an_auto_pay_driver_hears_of_the_entry_and_the_exit(lot: Lot, callers: Callers) -> None:
    plate = fresh_plate()
    driver = await callers.driver()
    await driver.data(ADD_VEHICLE, {"plate": plate})
    await driver.data(SET_AUTO_PAY, {"plate": plate})
    entered = await lot.gate.passage(lot.entry_lane, plate, ago(130))
    await lot.gate.passage(lot.exit_lane, plate, ago(1))

    newest_first = await inbox_of(driver)
    assert [n["type"] for n in newest_first] == ["session.exited", "session.entered"]
    exited, entry = newest_first
    assert entry["subjectIds"]["session_id"] == entered["session_id"]
    assert exited["payload"]["reason"] == "auto_pay" and exited["payload"]["plate"] == plate
    # Nobody else hears of it.
    assert await inbox_of(await callers.driver()) == []


async def test_the_operator_hears_of_an_amount_due_once_however_often_the_gate_asks(
    lot: Lot, owner_db: Database
) -> None:
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(125))
    held = await lot.gate.passage(lot.exit_lane, plate, ago(1), passage_id="exit-once")
    again = await lot.gate.passage(lot.exit_lane, plate, ago(1), passage_id="exit-once")
    assert again["replayed"] is True and held["amount_due_fen"] == 1500

    told = await operator_notifications(owner_db, lot)
    assert [kind for kind, _ in told] == ["session.entered", "session.amount_due"]
    amount_due = told[1][1]
    assert (amount_due["amount_due_fen"], amount_due["currency"]) == (1500, "CNY")
    assert amount_due["payment_link"] == held["payment_link"]


async def test_a_gates_exit_reaches_the_operators_webhook_and_the_drivers_live_channel(
    lot: Lot,
    callers: Callers,
    receiver: FakeReceiver,  # noqa: F811
    run_worker: Callable[[], Awaitable[int]],  # noqa: F811
    redis: aioredis.Redis,
) -> None:
    """The gate's decision is committed without an ORM Session (hub.lanes.service.decide_at_lane): the webhook
    delivery's job and the driver's live notice are handed over after that commit all the same."""
    endpoint = await create_endpoint(lot.admin, receiver, ["session.*"])
    plate = fresh_plate()
    driver = await callers.driver()
    assert driver.user_id is not None
    await driver.data(ADD_VEHICLE, {"plate": plate})
    await driver.data(SET_AUTO_PAY, {"plate": plate})
    await lot.gate.passage(lot.entry_lane, plate, ago(130))
    async with redis.pubsub() as live:
        await live.subscribe(driver_channel(driver.user_id))
        exit = await lot.gate.passage(lot.exit_lane, plate, ago(1))
        notices: list[dict[str, Any]] = []
        async with asyncio.timeout(5):  # (the entry's notice may still be on its way too)
            while not any(notice["type"] == "session.exited" for notice in notices):
                message = await live.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    notices.append(orjson.loads(message["data"]))
    assert (exit["decision"], exit["reason"]) == ("open", "auto_pay")
    [exited] = [notice for notice in notices if notice["type"] == "session.exited"]
    assert exited["subject_ids"]["decision_id"] == exit["decision_id"]

    await run_worker()
    assert sorted(orjson.loads(request.body)["type"] for request in receiver.received) == [
        "session.entered",
        "session.exited",
    ]
    assert all(request.verified and request.status == 200 for request in receiver.received)
    assert {delivery["state"] for delivery in await deliveries(lot.admin, endpoint)} == {"DELIVERED"}
