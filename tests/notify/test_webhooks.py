"""Outbound webhooks end to end: notify() in a lane decision's transaction, the real worker, a receiver on
127.0.0.1 that checks Standard Webhooks signatures, and what the operator's admin reads in GraphQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from hub.db import Database, Scope
from hub.notify import notify
from hub.notify import rules as notify_rules
from tests.api.conftest import Callers
from tests.notify.conftest import (
    DISABLE,
    ENABLE,
    REDELIVER,
    ROTATE,
    UPDATE,
    FakeReceiver,
    Notify,
    a_notification,
    create_endpoint,
    deliveries,
    endpoint_state,
)

Work = Callable[[], Awaitable[int]]
MakeDue = Callable[[list[str]], Awaitable[None]]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_a_notification_reaches_a_subscribed_endpoint_signed_and_is_listed_delivered(
    callers: Callers, receiver: FakeReceiver, send_notification: Notify, run_worker: Work
) -> None:
    admin = await callers.operator()
    assert admin.tenant_id is not None
    endpoint = await create_endpoint(admin, receiver, ["session.*"])
    assert endpoint.secret.startswith("whsec_")
    notification = a_notification(admin.tenant_id, "session.amount_due", payload={"amount_due": 1500})

    result = await send_notification(notification)
    await run_worker()

    [request] = receiver.received
    assert request.verified and request.status == 200
    assert orjson.loads(request.body) == {
        "type": "session.amount_due",
        "timestamp": notification.occurred_at.isoformat(),
        "data": {
            "notification_id": str(result.notification_id),
            "operator_id": str(admin.tenant_id),
            "session_id": str(notification.subject_ids["session_id"]),
            "lane_id": str(notification.subject_ids["lane_id"]),
            "amount_due": 1500,
        },
    }
    [delivery] = await deliveries(admin, endpoint)
    assert request.headers["webhook-id"] == delivery["webhookId"] == str(result.delivery_ids[0])
    assert request.headers["content-type"] == "application/json"
    assert delivery["state"] == "DELIVERED" and delivery["attempts"] == 1 and delivery["lastStatusCode"] == 200
    assert delivery["nextAttemptAt"] is None and delivery["lastError"] is None and delivery["deliveredAt"]
    assert delivery["eventType"] == "session.amount_due"
    assert delivery["idempotencyKey"] == notification.idempotency_key
    assert delivery["data"] == orjson.loads(request.body)["data"]
    assert delivery["endpoint"]["id"] == endpoint.id


async def test_only_enabled_endpoints_subscribed_to_the_type_get_a_delivery(
    callers: Callers, send_notification: Notify, run_worker: Work
) -> None:
    admin = await callers.operator()
    assert admin.tenant_id is not None
    receivers = {name: FakeReceiver() for name in ("exits", "everything", "exceptions", "disabled")}
    servers = [await asyncio.start_server(fake.handle, "127.0.0.1", 0) for fake in receivers.values()]
    try:
        for fake, server in zip(receivers.values(), servers, strict=True):
            fake.port = server.sockets[0].getsockname()[1]
        await create_endpoint(admin, receivers["exits"], ["session.exited"])
        await create_endpoint(admin, receivers["everything"], ["*"])
        await create_endpoint(admin, receivers["exceptions"], ["exception.raised"])
        disabled = await create_endpoint(admin, receivers["disabled"], ["*"])
        await admin.data(DISABLE, {"id": disabled.id})

        result = await send_notification(a_notification(admin.tenant_id, "session.exited"))
        await run_worker()
    finally:
        for server in servers:
            server.close()

    assert len(result.delivery_ids) == 2
    assert {name: len(fake.received) for name, fake in receivers.items()} == {
        "exits": 1,
        "everything": 1,
        "exceptions": 0,
        "disabled": 0,
    }


async def test_a_failing_endpoint_is_retried_with_backoff_under_the_same_webhook_id_until_it_answers(
    callers: Callers,
    receiver: FakeReceiver,
    send_notification: Notify,
    run_worker: Work,
    sweep_and_work: Work,
    make_due: MakeDue,
) -> None:
    admin = await callers.operator()
    assert admin.tenant_id is not None
    endpoint = await create_endpoint(admin, receiver, ["*"])
    receiver.fail_next = 2

    await send_notification(a_notification(admin.tenant_id))
    await run_worker()
    [first] = await deliveries(admin, endpoint)
    assert first["state"] == "PENDING" and first["attempts"] == 1
    assert first["lastStatusCode"] == 503 and "HTTP 503" in first["lastError"] and "try later" in first["lastError"]
    wait = parse_time(first["nextAttemptAt"]) - parse_time(first["lastAttemptAt"])
    assert notify_rules.RETRY_DELAYS[0] * 0.8 <= wait <= notify_rules.RETRY_DELAYS[0] * 1.2

    # Not due yet: the sweep leaves it alone.
    await sweep_and_work()
    assert len(receiver.received) == 1

    await make_due([first["webhookId"]])
    await sweep_and_work()
    [second] = await deliveries(admin, endpoint)
    assert second["state"] == "PENDING" and second["attempts"] == 2
    wait = parse_time(second["nextAttemptAt"]) - parse_time(second["lastAttemptAt"])
    assert notify_rules.RETRY_DELAYS[1] * 0.8 <= wait <= notify_rules.RETRY_DELAYS[1] * 1.2

    await make_due([first["webhookId"]])
    await sweep_and_work()
    [third] = await deliveries(admin, endpoint)
    assert third["state"] == "DELIVERED" and third["attempts"] == 3 and third["lastStatusCode"] == 200
    assert [request.status for request in receiver.received] == [503, 503, 200]
    assert all(request.verified for request in receiver.received)
    assert receiver.webhook_ids == [first["webhookId"]] * 3
    # The endpoint's run of failures ended with the success.
    state = await endpoint_state(admin, endpoint)
    assert state["consecutiveFailures"] == 0 and state["failingSince"] is None and state["enabled"]


async def test_a_delivery_that_never_succeeds_fails_after_eight_attempts_and_is_left_alone(
    callers: Callers,
    receiver: FakeReceiver,
    send_notification: Notify,
    run_worker: Work,
    sweep_and_work: Work,
    make_due: MakeDue,
) -> None:
    admin = await callers.operator()
    assert admin.tenant_id is not None
    endpoint = await create_endpoint(admin, receiver, ["*"])
    receiver.fail_next = 1_000
    receiver.fail_status = 500

    await send_notification(a_notification(admin.tenant_id))
    await run_worker()
    [delivery] = await deliveries(admin, endpoint)
    for _ in range(notify_rules.MAX_ATTEMPTS - 1):
        await make_due([delivery["webhookId"]])
        await sweep_and_work()

    [delivery] = await deliveries(admin, endpoint)
    assert delivery["state"] == "FAILED" and delivery["attempts"] == 8 and delivery["nextAttemptAt"] is None
    assert delivery["lastStatusCode"] == 500
    assert len(receiver.received) == 8
    await make_due([delivery["webhookId"]])
    await sweep_and_work()
    assert len(receiver.received) == 8
    # Eight failures within minutes do not disable an endpoint: it has not been failing for a day.
    state = await endpoint_state(admin, endpoint)
    assert state["enabled"] and state["consecutiveFailures"] == 8
    assert [edge["webhookId"] for edge in await deliveries(admin, endpoint, state="FAILED")] == [delivery["webhookId"]]
    assert await deliveries(admin, endpoint, state="PENDING") == []


async def test_an_endpoint_failing_for_a_day_is_disabled_with_the_reason_and_its_pending_deliveries_fail(
    callers: Callers,
    receiver: FakeReceiver,
    send_notification: Notify,
    run_worker: Work,
    owner_db: Database,
) -> None:
    admin = await callers.operator()
    assert admin.tenant_id is not None
    endpoint = await create_endpoint(admin, receiver, ["*"])
    receiver.fail_next = 1_000

    waiting = await send_notification(a_notification(admin.tenant_id, idempotency_key="waiting"))
    await run_worker()  # its first attempt fails; its retry is 30 s away
    # Seven failures so far, the first 25 hours ago (as if the endpoint had been down since).
    async with owner_db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE webhook_endpoints SET consecutive_failures = 7, failing_since = now() - interval '25 hours' "
                "WHERE tenant_id = :tenant"
            ),
            {"tenant": admin.tenant_id},
        )

    last = await send_notification(a_notification(admin.tenant_id, idempotency_key="last straw"))
    await run_worker()

    state = await endpoint_state(admin, endpoint)
    assert state["enabled"] is False
    assert "disabled automatically" in state["disabledReason"] and "8 attempts" in state["disabledReason"]
    assert "HTTP 503" in state["disabledReason"]
    by_id = {delivery["webhookId"]: delivery for delivery in await deliveries(admin, endpoint)}
    assert by_id[str(last.delivery_ids[0])]["state"] == "FAILED"
    assert by_id[str(last.delivery_ids[0])]["lastStatusCode"] == 503
    assert by_id[str(waiting.delivery_ids[0])]["state"] == "FAILED"
    assert "endpoint was disabled" in by_id[str(waiting.delivery_ids[0])]["lastError"]

    # A disabled endpoint gets no new deliveries, and refuses redelivery until enabled.
    later = await send_notification(a_notification(admin.tenant_id))
    assert later.delivery_ids == ()
    assert await admin.error_code(REDELIVER, {"id": by_id[str(waiting.delivery_ids[0])]["id"]}) == "ENDPOINT_DISABLED"

    enabled = (await admin.data(ENABLE, {"id": endpoint.id}))["enableWebhookEndpoint"]
    assert enabled == {"id": endpoint.id, "enabled": True, "disabledReason": None, "consecutiveFailures": 0}
    receiver.fail_next = 0
    await admin.data(REDELIVER, {"id": by_id[str(waiting.delivery_ids[0])]["id"]})
    await run_worker()
    assert receiver.received[-1].status == 200
    assert receiver.received[-1].headers["webhook-id"] == str(waiting.delivery_ids[0])


async def test_redelivery_sends_a_delivered_webhook_again_under_the_same_webhook_id(
    callers: Callers, receiver: FakeReceiver, send_notification: Notify, run_worker: Work
) -> None:
    admin = await callers.operator()
    assert admin.tenant_id is not None
    endpoint = await create_endpoint(admin, receiver, ["*"])
    await send_notification(a_notification(admin.tenant_id))
    await run_worker()
    [delivery] = await deliveries(admin, endpoint)

    restarted = (await admin.data(REDELIVER, {"id": delivery["id"]}))["redeliverWebhook"]
    assert restarted["state"] == "PENDING" and restarted["attempts"] == 0
    await run_worker()

    [again] = await deliveries(admin, endpoint)
    assert again["state"] == "DELIVERED" and again["attempts"] == 1
    assert receiver.webhook_ids == [delivery["webhookId"], delivery["webhookId"]]
    assert receiver.received[0].body == receiver.received[1].body


async def test_notify_is_idempotent_per_endpoint_and_key(
    callers: Callers, send_notification: Notify, run_worker: Work, receiver: FakeReceiver
) -> None:
    admin = await callers.operator()
    driver = await callers.driver()
    assert admin.tenant_id is not None
    first_endpoint = await create_endpoint(admin, receiver, ["*"])
    notification = a_notification(admin.tenant_id, idempotency_key="entry:session-42", driver_id=driver.user_id)

    first = await send_notification(notification)
    again = await send_notification(notification)
    # An endpoint added between two calls with the same key gets it once; the first endpoint not again.
    second_endpoint = await create_endpoint(admin, receiver, ["session.entered"])
    third = await send_notification(notification)
    await run_worker()

    assert first.created and not again.created and not third.created
    assert first.notification_id == again.notification_id == third.notification_id
    assert len(first.delivery_ids) == 1 and again.delivery_ids == () and len(third.delivery_ids) == 1
    assert len(await deliveries(admin, first_endpoint)) == 1
    assert len(await deliveries(admin, second_endpoint)) == 1
    assert sorted(receiver.webhook_ids) == sorted(str(i) for i in first.delivery_ids + third.delivery_ids)
    inbox = (await driver.data("query { myNotifications { edges { node { id } } } }"))["myNotifications"]
    assert len(inbox["edges"]) == 1


async def test_a_rolled_back_transaction_notifies_nobody(
    callers: Callers, db: Database, receiver: FakeReceiver, run_worker: Work, app: Any
) -> None:
    admin = await callers.operator()
    driver = await callers.driver()
    assert admin.tenant_id is not None
    endpoint = await create_endpoint(admin, receiver, ["*"])

    class LaneDecisionFailed(Exception):
        pass

    with pytest.raises(LaneDecisionFailed):
        async with db.transaction(Scope("connector", tenant_id=admin.tenant_id)) as session:
            await notify(session, a_notification(admin.tenant_id, driver_id=driver.user_id))
            raise LaneDecisionFailed
    await run_worker()

    assert receiver.received == []
    assert await deliveries(admin, endpoint) == []
    inbox = (await driver.data("query { myNotifications { edges { node { id } } } }"))["myNotifications"]
    assert inbox["edges"] == []


async def test_during_a_rotation_webhooks_are_signed_with_both_secrets_and_after_it_with_the_new_one(
    callers: Callers, receiver: FakeReceiver, send_notification: Notify, run_worker: Work
) -> None:
    admin = await callers.operator()
    assert admin.tenant_id is not None
    endpoint = await create_endpoint(admin, receiver, ["*"])
    old_secret = endpoint.secret

    rotated = (await admin.data(ROTATE, {"id": endpoint.id, "overlapHours": 24}))["rotateWebhookEndpointSecret"]
    new_secret = rotated["secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret

    # A receiver that still knows only the old secret, and one that already switched, both accept it.
    for known in ([old_secret], [new_secret]):
        receiver.secrets = known
        await send_notification(a_notification(admin.tenant_id))
        await run_worker()
        assert receiver.received[-1].verified and receiver.received[-1].status == 200
        assert len(receiver.received[-1].headers["webhook-signature"].split()) == 2

    # Rotating with no overlap retires every earlier secret at once.
    final = (await admin.data(ROTATE, {"id": endpoint.id, "overlapHours": 0}))["rotateWebhookEndpointSecret"]
    receiver.secrets = [new_secret]
    result = await send_notification(a_notification(admin.tenant_id))
    await run_worker()
    request = receiver.received[-1]
    assert len(request.headers["webhook-signature"].split()) == 1
    assert not request.verified and request.status == 401
    [delivery] = [d for d in await deliveries(admin, endpoint) if d["webhookId"] == str(result.delivery_ids[0])]
    assert delivery["state"] == "PENDING" and delivery["lastStatusCode"] == 401
    receiver.secrets = [final["secret"]]
    await admin.data(REDELIVER, {"id": delivery["id"]})
    await run_worker()
    assert receiver.received[-1].verified and receiver.received[-1].status == 200


async def test_an_admin_changes_an_endpoint_and_bad_input_is_refused_by_field(
    callers: Callers, receiver: FakeReceiver
) -> None:
    admin = await callers.operator()
    endpoint = await create_endpoint(admin, receiver, ["session.entered"])
    create = """mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }"""

    for bad_input, field in (
        ({"url": "http://hooks.example.com/parkhub", "eventTypes": ["*"]}, "url"),
        ({"url": "https://user:secret@hooks.example.com/", "eventTypes": ["*"]}, "url"),
        ({"url": "https://hooks.example.com/", "eventTypes": ["session.parked"]}, "eventTypes"),
        ({"url": "https://hooks.example.com/", "eventTypes": []}, "eventTypes"),
    ):
        body = await admin.post(create, {"input": bad_input})
        [error] = body["errors"]
        assert error["extensions"]["code"] == "INVALID_INPUT" and error["extensions"]["field"] == field

    changed = (
        await admin.data(
            UPDATE,
            {
                "id": endpoint.id,
                "input": {"url": "https://hooks.example.com/v2", "eventTypes": ["session.*", "exception.raised"]},
            },
        )
    )["updateWebhookEndpoint"]
    assert changed["url"] == "https://hooks.example.com/v2"
    assert changed["eventTypes"] == ["exception.raised", "session.*"]
    described = await admin.data(UPDATE, {"id": endpoint.id, "input": {"description": "Back office"}})
    assert described["updateWebhookEndpoint"]["description"] == "Back office"
    assert described["updateWebhookEndpoint"]["url"] == "https://hooks.example.com/v2"
    cleared = await admin.data(UPDATE, {"id": endpoint.id, "input": {"description": None}})
    assert cleared["updateWebhookEndpoint"]["description"] is None

    types = (await admin.data("query { webhookEventTypes }"))["webhookEventTypes"]
    assert set(types) == set(notify_rules.EVENT_TYPES)


async def test_deliveries_page_newest_first(
    callers: Callers, receiver: FakeReceiver, send_notification: Notify, run_worker: Work
) -> None:
    admin = await callers.operator()
    assert admin.tenant_id is not None
    endpoint = await create_endpoint(admin, receiver, ["*"])
    sent = []
    for number in range(5):
        result = await send_notification(
            a_notification(admin.tenant_id, occurred_at=datetime.now(UTC) + timedelta(seconds=number))
        )
        sent.append(str(result.delivery_ids[0]))
    await run_worker()

    seen: list[str] = []
    after = None
    while True:
        page = (await admin.data(
            "query($e: ID!, $after: String) { webhookDeliveries(endpointId: $e, first: 2, after: $after) { "
            "edges { node { webhookId } } pageInfo { hasNextPage endCursor } } }",
            {"e": endpoint.id, "after": after},
        ))["webhookDeliveries"]  # fmt: skip
        seen += [edge["node"]["webhookId"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(sent))
