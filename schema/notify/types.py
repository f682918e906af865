"""GraphQL types of notifications: operators' webhook endpoints and deliveries, and drivers' notifications."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from hub.notify import rules
from hub.notify import service as notify_service
from hub.notify.broker import DriverNotice
from schema.context import Context, Info
from schema.loaders import by_id
from schema.relay import row_ids

T = TypeVar("T")


def _in_order(node_ids: Iterable[str], rows: Sequence[Mapping[str, Any]], make: Callable[[Any], T]) -> list[T | None]:
    """Nodes in the order asked for, None where a row is not visible."""
    by_id = {str(row["id"]): make(row) for row in rows}
    return [by_id.get(str(row_id)) if row_id is not None else None for row_id in row_ids(node_ids)]


def _visible_ids(node_ids: Iterable[str]) -> list[uuid.UUID]:
    return [row_id for row_id in row_ids(node_ids) if row_id is not None]


def _endpoint_loader(context: Context) -> DataLoader[uuid.UUID | None, WebhookEndpoint | None]:
    """One loader per request, so a page of deliveries reads their endpoints in one query."""
    return context.loaders.of(
        "webhook_endpoint", lambda c: by_id(c, notify_service.endpoints_by_ids, WebhookEndpoint.from_row)
    )


@strawberry.enum(description="Where a webhook delivery stands")
class WebhookDeliveryState(Enum):
    PENDING = strawberry.enum_value("pending", description="An attempt is due at nextAttemptAt")
    DELIVERED = strawberry.enum_value("delivered", description="The endpoint answered 2xx")
    FAILED = strawberry.enum_value(
        "failed", description="Every attempt failed, or the endpoint was disabled first; redeliverWebhook resends it"
    )


@strawberry.type(
    description="An operator's outbound webhook: notifications of the types it subscribes to are POSTed to its URL, "
    "signed per Standard Webhooks with its secret (shown once). Failed attempts are retried about 8 times over a "
    "day; an endpoint failing without a break for 24 hours (and at least 8 attempts) is disabled, with the reason."
)
class WebhookEndpoint(relay.Node):
    id: relay.NodeID[str]
    url: str
    description: str | None
    event_types: list[str] = strawberry.field(description="Event types, a category such as 'session.*', or '*'")
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None = strawberry.field(description="Who disabled it, or why it was disabled automatically")
    consecutive_failures: int = strawberry.field(description="Failed attempts since the last successful delivery")
    failing_since: datetime | None = strawberry.field(description="The first failed attempt since the last success")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> WebhookEndpoint:
        return cls(
            id=str(row["id"]),
            url=row["url"],
            description=row["description"],
            event_types=list(row["event_types"]),
            enabled=row["disabled_at"] is None,
            disabled_at=row["disabled_at"],
            disabled_reason=row["disabled_reason"],
            consecutive_failures=row["consecutive_failures"],
            failing_since=row["failing_since"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[WebhookEndpoint | None]:
        node_ids = list(node_ids)
        async with info.context.read() as session:
            rows = await notify_service.endpoints_by_ids(session, info.context.principal, _visible_ids(node_ids))
        return _in_order(node_ids, rows, cls.from_row)


@strawberry.type
class WebhookEndpointSecretIssued:
    endpoint: WebhookEndpoint
    secret: str = strawberry.field(description="Shown this once: give it to the receiver to verify signatures")


@strawberry.type(description="One notification on its way to one endpoint")
class WebhookDelivery(relay.Node):
    id: relay.NodeID[str]
    webhook_id: str = strawberry.field(description="The webhook-id header: the same on every attempt and redelivery")
    event_type: str
    idempotency_key: str = strawberry.field(description="The key the notification was made under")
    occurred_at: datetime
    state: WebhookDeliveryState
    attempts: int = strawberry.field(description="Attempts made in this round (a redelivery starts a new round)")
    last_attempt_at: datetime | None
    last_status_code: int | None = strawberry.field(description="The HTTP status of the last answer, if one came")
    last_error: str | None = strawberry.field(description="Why the last attempt failed")
    next_attempt_at: datetime | None = strawberry.field(description="When the next attempt is due, while pending")
    delivered_at: datetime | None
    created_at: datetime
    data: JSON = strawberry.field(description="The webhook's `data`, as the endpoint receives it")
    endpoint_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> WebhookDelivery:
        return cls(
            id=str(row["id"]),
            webhook_id=str(row["id"]),
            event_type=row["type"],
            idempotency_key=row["idempotency_key"],
            occurred_at=row["occurred_at"],
            state=WebhookDeliveryState(row["state"]),
            attempts=row["attempts"],
            last_attempt_at=row["last_attempt_at"],
            last_status_code=row["last_status_code"],
            last_error=row["last_error"],
            next_attempt_at=row["next_attempt_at"],
            delivered_at=row["delivered_at"],
            created_at=row["created_at"],
            data=rules.webhook_data(row["notification_id"], row["tenant_id"], row["subject_ids"], row["payload"]),
            endpoint_id=row["endpoint_id"],
        )

    @strawberry.field
    async def endpoint(self, info: Info) -> WebhookEndpoint | None:
        return await _endpoint_loader(info.context).load(self.endpoint_id)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[WebhookDelivery | None]:
        node_ids = list(node_ids)
        async with info.context.read() as session:
            rows = await notify_service.deliveries_by_ids(session, info.context.principal, _visible_ids(node_ids))
        return _in_order(node_ids, rows, cls.from_row)


@strawberry.type(description="Something a driver is told about: their entry, exit or the amount due, at any operator")
class Notification(relay.Node):
    id: relay.NodeID[str]
    type: str = strawberry.field(description="session.entered, session.exited, session.amount_due, ...")
    operator_id: relay.GlobalID = strawberry.field(description="The operator where it happened")
    occurred_at: datetime
    created_at: datetime
    subject_ids: JSON = strawberry.field(description='What it is about, e.g. {"session_id": ..., "facility_id": ...}')
    payload: JSON = strawberry.field(description="The details, e.g. the plate, the amount due in fen, the currency")

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Notification:
        return cls(
            id=str(row["id"]),
            type=row["type"],
            operator_id=relay.GlobalID("Operator", str(row["tenant_id"])),
            occurred_at=row["occurred_at"],
            created_at=row["created_at"],
            subject_ids=dict(row["subject_ids"]),
            payload=dict(row["payload"]),
        )

    @classmethod
    def of_notice(cls, notice: DriverNotice) -> Notification:
        return cls(
            id=str(notice.id),
            type=notice.type,
            operator_id=relay.GlobalID("Operator", str(notice.tenant_id)),
            occurred_at=notice.occurred_at,
            created_at=notice.created_at,
            subject_ids=notice.subject_ids,
            payload=notice.payload,
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Notification | None]:
        node_ids = list(node_ids)
        async with info.context.read() as session:
            rows = await notify_service.notifications_by_ids(session, info.context.principal, _visible_ids(node_ids))
        return _in_order(node_ids, rows, cls.from_row)
