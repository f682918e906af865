"""Operators' webhook endpoints and deliveries (tenant admin), and drivers' notifications."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import relay

from hub.notify import rules
from hub.notify import service as notify_service
from schema.context import Info
from schema.notify.types import (
    Notification,
    WebhookDelivery,
    WebhookDeliveryState,
    WebhookEndpoint,
    WebhookEndpointSecretIssued,
)
from schema.relay import check_first, connection, decode_time_cursor, uuid_of

UNSET = strawberry.UNSET


@strawberry.input
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="https://... (plain http to 127.0.0.1 or localhost outside production)")
    event_types: list[str] = strawberry.field(
        description="Event types (see webhookEventTypes), a category such as 'session.*', or '*' for all"
    )
    description: str | None = None


@strawberry.input(description="The fields to change; those left out stay as they are (a null description clears it)")
class UpdateWebhookEndpointInput:
    url: str | None = UNSET
    event_types: list[str] | None = UNSET
    description: str | None = UNSET


def _time_key(row: Any) -> tuple[str, Any]:
    return row["created_at"].isoformat(), row["id"]


def _allow_local(info: Info) -> bool:
    return not info.context.settings.production


@strawberry.type
class NotifyQuery:
    @strawberry.field(description="Your operator's webhook endpoints, oldest first (operator staff)")
    async def webhook_endpoints(self, info: Info) -> list[WebhookEndpoint]:
        async with info.context.read() as session:
            rows = await notify_service.list_endpoints(session, info.context.principal)
        return [WebhookEndpoint.from_row(row) for row in rows]

    @strawberry.field(description="The event types an endpoint may subscribe to")
    def webhook_event_types(self) -> list[str]:
        return list(rules.EVENT_TYPES)

    @strawberry.field(description="An endpoint's deliveries, newest first, optionally in one state (operator staff)")
    async def webhook_deliveries(
        self,
        info: Info,
        endpoint_id: relay.GlobalID,
        first: int | None = 20,
        after: str | None = None,
        state: WebhookDeliveryState | None = None,
    ) -> relay.Connection[WebhookDelivery]:
        page_size = check_first(first)
        endpoint = uuid_of(endpoint_id, "WebhookEndpoint", "endpointId")
        async with info.context.read() as session:
            rows = await notify_service.deliveries_page(
                session,
                info.context.principal,
                endpoint,
                state=state.value if state is not None else None,
                first=page_size,
                after=decode_time_cursor(after),
            )
        return connection(rows, page_size, after is not None, WebhookDelivery.from_row, _time_key)

    @strawberry.field(description="The driver's notifications from every operator, newest first (drivers only)")
    async def my_notifications(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> relay.Connection[Notification]:
        page_size = check_first(first)
        async with info.context.read() as session:
            rows = await notify_service.my_notifications(
                session, info.context.principal, first=page_size, after=decode_time_cursor(after)
            )
        return connection(rows, page_size, after is not None, Notification.from_row, _time_key)


@strawberry.type
class NotifyMutation:
    @strawberry.mutation(description="Add a webhook endpoint (operator admin); the answer holds its secret, shown once")
    async def create_webhook_endpoint(
        self, info: Info, input: CreateWebhookEndpointInput
    ) -> WebhookEndpointSecretIssued:
        async with info.context.write() as session:
            row, secret = await notify_service.create_endpoint(
                session,
                info.context.principal,
                url=input.url,
                event_types=input.event_types,
                description=input.description,
                allow_local=_allow_local(info),
            )
        return WebhookEndpointSecretIssued(endpoint=WebhookEndpoint.from_row(row), secret=secret)

    @strawberry.mutation(description="Change an endpoint's URL, event types or description (operator admin)")
    async def update_webhook_endpoint(
        self, info: Info, id: relay.GlobalID, input: UpdateWebhookEndpointInput
    ) -> WebhookEndpoint:
        endpoint_id = uuid_of(id, "WebhookEndpoint")
        changes = {
            name: value
            for name, value in (
                ("url", input.url),
                ("event_types", input.event_types),
                ("description", input.description),
            )
            if value is not UNSET
        }
        async with info.context.write() as session:
            row = await notify_service.update_endpoint(
                session, info.context.principal, endpoint_id, changes, allow_local=_allow_local(info)
            )
        return WebhookEndpoint.from_row(row)

    @strawberry.mutation(
        description="Issue a new signing secret, shown this once; until overlapHours (0-168) pass, webhooks carry "
        "a signature by the old secret too"
    )
    async def rotate_webhook_endpoint_secret(
        self, info: Info, id: relay.GlobalID, overlap_hours: int = notify_service.DEFAULT_OVERLAP_HOURS
    ) -> WebhookEndpointSecretIssued:
        endpoint_id = uuid_of(id, "WebhookEndpoint")
        async with info.context.write() as session:
            row, secret = await notify_service.rotate_endpoint_secret(
                session, info.context.principal, endpoint_id, overlap_hours=overlap_hours
            )
        return WebhookEndpointSecretIssued(endpoint=WebhookEndpoint.from_row(row), secret=secret)

    @strawberry.mutation(description="Stop sending to an endpoint; its pending deliveries fail (operator admin)")
    async def disable_webhook_endpoint(self, info: Info, id: relay.GlobalID) -> WebhookEndpoint:
        endpoint_id = uuid_of(id, "WebhookEndpoint")
        async with info.context.write() as session:
            row = await notify_service.set_endpoint_enabled(session, info.context.principal, endpoint_id, enabled=False)
        return WebhookEndpoint.from_row(row)

    @strawberry.mutation(description="Send to an endpoint again, with its failure record cleared (operator admin)")
    async def enable_webhook_endpoint(self, info: Info, id: relay.GlobalID) -> WebhookEndpoint:
        endpoint_id = uuid_of(id, "WebhookEndpoint")
        async with info.context.write() as session:
            row = await notify_service.set_endpoint_enabled(session, info.context.principal, endpoint_id, enabled=True)
        return WebhookEndpoint.from_row(row)

    @strawberry.mutation(
        description="Send a delivery again now, with a fresh round of attempts and the same webhook-id (operator admin)"
    )
    async def redeliver_webhook(self, info: Info, delivery_id: relay.GlobalID) -> WebhookDelivery:
        delivery = uuid_of(delivery_id, "WebhookDelivery", "deliveryId")
        async with info.context.write() as session:
            row = await notify_service.redeliver(session, info.context.principal, delivery)
        return WebhookDelivery.from_row(row)
