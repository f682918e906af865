"""Notifications: what happened (the record drivers read as their inbox), operators' outbound webhook endpoints
with their signing secrets, and one delivery per notification and endpoint."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKeyConstraint, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now, uuid_column
from hub.supply.models import tenant_fk

# pending: an attempt is due at next_attempt_at; delivered: a 2xx came back; failed: every attempt failed, or
# the endpoint was disabled first (an operator may redeliver it).
DELIVERY_STATES = ("pending", "delivered", "failed")


class Notification(Base):
    """One notification, written once per operator and idempotency key. Rows with a driver are that driver's
    inbox (row-level security shows each driver their own); every row is what webhooks are made from."""

    __tablename__ = "notifications"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["driver_id"], ["users.id"], ondelete="SET NULL"),
        Index("uq_notifications_idempotency_key", "tenant_id", "idempotency_key", unique=True),
        Index(
            "ix_notifications_driver_created",
            "driver_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("driver_id IS NOT NULL"),
        ),
        Index("ix_notifications_id", "id"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    type: Mapped[str] = mapped_column(Text, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(Text, nullable=False)
    subject_ids: Mapped[dict] = mapped_column(JSONB, nullable=False)
    payload: Mapped[dict] = mapped_column(JSONB, nullable=False)
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = timestamp_now()


class WebhookEndpoint(Base):
    """Where an operator wants its notifications POSTed, and which ones. `consecutive_failures` and
    `failing_since` count failed attempts since the last success, for the disable rule (hub.notify.rules)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        CheckConstraint("cardinality(event_types) >= 1", name="event_types_not_empty"),
        CheckConstraint("consecutive_failures >= 0", name="failures_nonnegative"),
        Index("ix_webhook_endpoints_id", "id", unique=True),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    url: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(Text)


class WebhookEndpointSecret(Base):
    """A signing secret of an endpoint (`whsec_...`), kept in the clear because signing needs the key; shown
    once. After a rotation the previous one still signs, beside the new one, until `expires_at`."""

    __tablename__ = "webhook_endpoint_secrets"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"], ["webhook_endpoints.tenant_id", "webhook_endpoints.id"], ondelete="CASCADE"
        ),
        Index("ix_webhook_endpoint_secrets_endpoint", "tenant_id", "endpoint_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = uuid_column()
    endpoint_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = timestamp_now()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    """One notification on its way to one endpoint. Its id is the `webhook-id` the receiver sees on every
    attempt. `dispatched_at` is when a job was last queued for it, so the sweep does not queue it again while
    that job waits its turn."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"], ["webhook_endpoints.tenant_id", "webhook_endpoints.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "notification_id"], ["notifications.tenant_id", "notifications.id"], ondelete="CASCADE"
        ),
        CheckConstraint(f"state IN {DELIVERY_STATES}", name="state_known"),
        CheckConstraint("(state = 'pending') = (next_attempt_at IS NOT NULL)", name="pending_iff_due"),
        CheckConstraint("attempts >= 0", name="attempts_nonnegative"),
        Index(
            "uq_webhook_deliveries_endpoint_notification", "tenant_id", "endpoint_id", "notification_id", unique=True
        ),
        Index("ix_webhook_deliveries_endpoint_created", "tenant_id", "endpoint_id", "created_at", "id"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
        Index("ix_webhook_deliveries_id", "id"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    endpoint_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    notification_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
