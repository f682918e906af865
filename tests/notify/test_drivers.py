"""A driver's notifications: their inbox across operators, newest first, and nobody else's."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

from tests.api.conftest import Callers
from tests.notify.conftest import MY_NOTIFICATIONS, Notify, a_notification

NODE = "query($id: ID!) { node(id: $id) { __typename ... on Notification { id type } } }"


def global_id(type_name: str, row_id: uuid.UUID) -> str:
    return base64.b64encode(f"{type_name}:{row_id}".encode()).decode()


async def test_a_driver_reads_their_notifications_from_every_operator_newest_first(
    callers: Callers, send_notification: Notify
) -> None:
    driver = await callers.driver()
    first_operator, second_operator = await callers.operator(), await callers.operator()
    assert first_operator.tenant_id and second_operator.tenant_id
    start = datetime.now(UTC)
    sent = []
    for number, (operator, event_type) in enumerate(
        [(first_operator, "session.entered"), (second_operator, "session.entered"), (first_operator, "session.exited")]
    ):
        assert operator.tenant_id is not None
        notification = a_notification(
            operator.tenant_id,
            event_type,
            occurred_at=start + timedelta(minutes=number),
            driver_id=driver.user_id,
            payload={"plate": "粤B12345", "number": number},
        )
        sent.append((notification, await send_notification(notification)))

    seen = []
    after = None
    while True:
        page = (await driver.data(MY_NOTIFICATIONS, {"first": 2, "after": after}))["myNotifications"]
        seen += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == [
        {
            "id": global_id("Notification", result.notification_id),
            "type": notification.type,
            "operatorId": global_id("Operator", notification.tenant_id),
            "occurredAt": notification.occurred_at.isoformat(),
            "subjectIds": {name: str(value) for name, value in notification.subject_ids.items()},
            "payload": notification.payload,
        }
        for notification, result in reversed(sent)
    ]


async def test_a_driver_never_sees_another_drivers_notifications(callers: Callers, send_notification: Notify) -> None:
    alice, bob = await callers.driver(), await callers.driver()
    operator = await callers.operator()
    assert operator.tenant_id is not None
    result = await send_notification(a_notification(operator.tenant_id, driver_id=alice.user_id))

    assert (await bob.data(MY_NOTIFICATIONS))["myNotifications"]["edges"] == []
    notification_id = global_id("Notification", result.notification_id)
    assert (await bob.data(NODE, {"id": notification_id}))["node"] is None
    assert (await alice.data(NODE, {"id": notification_id}))["node"] == {
        "__typename": "Notification",
        "id": notification_id,
        "type": "session.entered",
    }


async def test_a_notification_without_a_driver_is_in_nobodys_inbox(callers: Callers, send_notification: Notify) -> None:
    driver = await callers.driver()
    operator = await callers.operator()
    assert operator.tenant_id is not None
    await send_notification(a_notification(operator.tenant_id, "exception.raised"))
    assert (await driver.data(MY_NOTIFICATIONS))["myNotifications"]["edges"] == []


async def test_only_drivers_have_notifications(callers: Callers) -> None:
    operator = await callers.operator()
    for caller in (operator, callers.anonymous(), callers.city()):
        assert await caller.error_code(MY_NOTIFICATIONS) == "FORBIDDEN"
