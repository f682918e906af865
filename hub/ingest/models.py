"""The inbox (every accepted inbound event, the source of truth) and what applying events records."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Float, ForeignKeyConstraint, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now, uuid_column
from hub.supply.models import tenant_fk

# pending: accepted, not yet applied; applied: done (possibly as a no-op, see `outcome`);
# dead: could not be applied (unknown device, failed validation), kept with its reason for tenant admin.
INBOX_STATES = ("pending", "applied", "dead")


class InboxEvent(Base):
    """One normalized event as accepted from a connector. Written in the request's transaction before the
    sender gets 202; deduplicated by the sender's own id; applied at most once by a job."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "connector_id"], ["connectors.tenant_id", "connectors.id"], ondelete="CASCADE"
        ),
        CheckConstraint(f"state IN {INBOX_STATES}", name="state_known"),
        Index("uq_inbox_events_source", "tenant_id", "connector_id", "source_event_id", unique=True),
        Index("ix_inbox_events_pending", "received_at", postgresql_where=text("state = 'pending'")),
        Index("ix_inbox_events_dead", "tenant_id", "received_at", postgresql_where=text("state = 'dead'")),
        Index("ix_inbox_events_id", "id"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    connector_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    source_event_id: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    device_external_id: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    received_at: Mapped[datetime] = timestamp_now()
    # The normalized event's remaining fields (occupancy, plate, confidence, health, details).
    body: Mapped[dict] = mapped_column(JSONB, nullable=False)
    image_ref: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="pending")
    # What applying it did: "changed", "confirmed", "stale" (older than the state; recorded, not applied),
    # "recorded" (sightings, health only); for dead events, the reason.
    outcome: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PlateSighting(Base):
    """A plate read by a curb or lane camera, kept for the sessions issue (and misread review)."""

    __tablename__ = "plate_sightings"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "device_id"], ["devices.tenant_id", "devices.id"], ondelete="CASCADE"),
        Index("ix_plate_sightings_plate_time", "tenant_id", "plate", "seen_at"),
        Index("ix_plate_sightings_inbox", "tenant_id", "inbox_event_id", unique=True),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    inbox_event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    device_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    space_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    lane_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    plate: Mapped[str] = mapped_column(Text, nullable=False)
    plate_valid: Mapped[bool] = mapped_column(nullable=False)
    confidence: Mapped[float | None] = mapped_column(Float)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    image_ref: Mapped[str | None] = mapped_column(Text)
