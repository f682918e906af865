"""A driver's notifications, live."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

import strawberry

from hub.drivers.service import require_driver
from hub.notify.broker import NotificationBroker
from schema.context import Info
from schema.notify.types import Notification


@strawberry.type
class NotifySubscription:
    @strawberry.subscription(
        description="Each notification for the calling driver, from now on (drivers only). Notifications missed "
        "while disconnected are not replayed: read myNotifications after (re)subscribing."
    )
    async def notification_received(self, info: Info) -> AsyncGenerator[Notification, None]:
        # Checked before the stream starts, so a refusal is the operation's error, never a half-started stream.
        context = info.context
        driver_id = require_driver(context.principal)
        # A subscription may last for hours; it must not hold a database connection meanwhile.
        await context.close()
        return _notices(context.request.app.state.notify_broker, driver_id)


async def _notices(broker: NotificationBroker, driver_id: uuid.UUID) -> AsyncGenerator[Notification, None]:
    async with broker.notices_of(driver_id) as notices:
        async for notice in notices:
            yield Notification.of_notice(notice)
