"""On-street sessions: a car's stay in one curb bay, prepaid by a driver or started by a curb camera for a plate
with auto-pay; each session's actions (what each start, extension and ending cost or gave back); the curb
cameras' sightings as this domain decided them; and enforcement flags on occupied bays with no session.

Money is integer fen of the operator's currency. Nothing here moves money: the payments issue turns the actions'
`charge_fen` and `refund_fen` into ledger entries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now, uuid_column
from hub.street.rules import (
    ACTION_KINDS,
    FLAG_RESOLUTIONS,
    OPEN_STATES,
    ORIGINS,
    OUTCOMES_WITHOUT_BAY,
    PAYMENT_MODES,
    PREPAID,
    SIGHTING_OUTCOMES,
    STATES,
)
from hub.supply.models import tenant_fk


# The time a session holds its bay: until it ended, else until its paid end, else (postpaid, open) for good.
# Two sessions of one bay never overlap in time (the exclusion constraint below).
def held_span_sql(alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    end = f"COALESCE({prefix}ended_at, {prefix}paid_until, 'infinity'::timestamptz)"
    return f"tstzrange({prefix}started_at, {end}, '[)')"


HELD_SPAN_SQL = held_span_sql()
OPEN_SQL = f"state IN {OPEN_STATES}"


class StreetSession(Base):
    __tablename__ = "street_sessions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "facility_id"], ["facilities.tenant_id", "facilities.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["tenant_id", "space_id"], ["spaces.tenant_id", "spaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "tariff_version_id"], ["tariffs.tenant_id", "tariffs.id"]),
        CheckConstraint(f"state IN {STATES}", name="state_known"),
        CheckConstraint(f"payment_mode IN {PAYMENT_MODES}", name="payment_mode_known"),
        CheckConstraint(f"origin IN {ORIGINS}", name="origin_known"),
        CheckConstraint(f"({OPEN_SQL}) = (ended_at IS NULL)", name="open_has_no_end"),
        CheckConstraint(f"(payment_mode = '{PREPAID}') = (paid_until IS NOT NULL)", name="prepaid_has_paid_end"),
        CheckConstraint("paid_until IS NULL OR paid_until > started_at", name="paid_end_after_start"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
        CheckConstraint("paid_fen >= 0 AND prepaid_minutes >= 0", name="paid_nonnegative"),
        CheckConstraint("price_fen IS NULL OR price_fen >= 0", name="price_nonnegative"),
        CheckConstraint(
            f"refund_fen IS NULL OR (refund_fen >= 0 AND payment_mode = '{PREPAID}')", name="refund_prepaid_only"
        ),
        CheckConstraint(
            f"charge_fen IS NULL OR (charge_fen >= 0 AND payment_mode <> '{PREPAID}')", name="charge_postpaid_only"
        ),
        ExcludeConstraint(
            ("tenant_id", "="),
            ("space_id", "="),
            (text(HELD_SPAN_SQL), "&&"),
            name="street_sessions_one_per_bay",
            using="gist",
        ),
        Index("ix_street_sessions_id", "id"),
        Index("ix_street_sessions_facility_started", "tenant_id", "facility_id", "started_at"),
        Index("ix_street_sessions_driver", "driver_id", "started_at", postgresql_where=text("driver_id IS NOT NULL")),
        Index("ix_street_sessions_open", "tenant_id", "space_id", postgresql_where=text(OPEN_SQL)),
        Index("ix_street_sessions_authorization", "authorization_id"),
        Index(
            "uq_street_sessions_sighting",
            "tenant_id",
            "sighting_id",
            unique=True,
            postgresql_where=text("sighting_id IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    space_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # The code painted on the bay when the session started (a space's code may be changed later).
    space_code: Mapped[str] = mapped_column(Text, nullable=False)
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"))
    # As cameras read plates (upper case, no separators), so enforcement compares like with like.
    plate: Mapped[str] = mapped_column(Text, nullable=False)
    vehicle_class: Mapped[str] = mapped_column(Text, nullable=False, server_default="standard")
    payment_mode: Mapped[str] = mapped_column(Text, nullable=False)
    origin: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="active")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # Prepaid: the end of the time bought so far. Null for postpaid sessions.
    paid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    prepaid_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    # Prepaid: what the driver paid for the span bought (start and extensions).
    paid_fen: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    # Set when the session ends: the true price of [started_at, ended_at), and the money that follows.
    price_fen: Mapped[int | None] = mapped_column(Integer)
    refund_fen: Mapped[int | None] = mapped_column(Integer)  # prepaid: paid - price, never negative
    charge_fen: Mapped[int | None] = mapped_column(Integer)  # postpaid: the pending charge
    currency: Mapped[str] = mapped_column(Text, nullable=False)
    # The zone's time zone at the start: the session is priced in it to the end, like its sealed tariff version.
    time_zone: Mapped[str] = mapped_column(Text, nullable=False)
    # The latest pricing: of the span bought while open, of the true span once ended.
    quote: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    tariff_version_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    authorization_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("auto_pay_authorizations.id", ondelete="SET NULL")
    )
    # The curb camera sighting (plate_sightings.id) that started a postpaid session.
    sighting_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


class StreetSessionAction(Base):
    """One thing that happened to a session and the money it moves: a start or extension (`charge_fen` the driver
    pays), an early end (`refund_fen`), a sensor's end of a postpaid session (`charge_fen` pending). A driver's
    request carries an idempotency key, unique per driver and operator, so a retried request is answered with the
    action it already made."""

    __tablename__ = "street_session_actions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "session_id"], ["street_sessions.tenant_id", "street_sessions.id"], ondelete="CASCADE"
        ),
        CheckConstraint(f"kind IN {ACTION_KINDS}", name="kind_known"),
        CheckConstraint("charge_fen >= 0 AND refund_fen >= 0", name="amounts_nonnegative"),
        CheckConstraint("minutes IS NULL OR minutes > 0", name="minutes_positive"),
        Index("ix_street_session_actions_session", "tenant_id", "session_id", "at"),
        Index(
            "uq_street_session_actions_key",
            "tenant_id",
            "driver_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    minutes: Mapped[int | None] = mapped_column(Integer)  # bought by a start or extension
    paid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # after this action
    charge_fen: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    refund_fen: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()


class StreetSighting(Base):
    """What a curb camera's sighting (plate_sightings.id) did here, decided once: started a session, or why not.
    A bay camera's sighting is of its bay; a zone camera's names the bay it was attributed to, or none (the plate
    has no auto-pay, or no bay or several bays could hold the car): why a zone's sighting started nothing."""

    __tablename__ = "street_sightings"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "space_id"], ["spaces.tenant_id", "spaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "facility_id"], ["facilities.tenant_id", "facilities.id"], ondelete="CASCADE"
        ),
        CheckConstraint(f"outcome IN {SIGHTING_OUTCOMES}", name="outcome_known"),
        CheckConstraint(f"space_id IS NOT NULL OR outcome IN {OUTCOMES_WITHOUT_BAY}", name="names_bay"),
        Index("ix_street_sightings_facility", "tenant_id", "facility_id", "seen_at"),
        Index("ix_street_sightings_space", "tenant_id", "space_id"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    sighting_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # The camera's curb zone (the bay's, for a bay camera).
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    space_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    plate: Mapped[str] = mapped_column(Text, nullable=False)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    outcome: Mapped[str] = mapped_column(Text, nullable=False)
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    decided_at: Mapped[datetime] = timestamp_now()


class EnforcementFlag(Base):
    """An occupied bay with no session for longer than the grace: raised by the sweep, resolved when a session
    starts or the bay is vacant (or its status otherwise stops being a sensed occupancy)."""

    __tablename__ = "street_enforcement_flags"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "space_id"], ["spaces.tenant_id", "spaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "facility_id"], ["facilities.tenant_id", "facilities.id"], ondelete="CASCADE"
        ),
        CheckConstraint(f"resolution IS NULL OR resolution IN {FLAG_RESOLUTIONS}", name="resolution_known"),
        CheckConstraint("(resolved_at IS NULL) = (resolution IS NULL)", name="resolved_has_reason"),
        Index("ix_street_enforcement_flags_id", "id"),
        Index("ix_street_enforcement_flags_facility", "tenant_id", "facility_id", "raised_at"),
        Index(
            "uq_street_enforcement_flags_open",
            "tenant_id",
            "space_id",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    space_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    space_code: Mapped[str] = mapped_column(Text, nullable=False)
    occupied_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # Since when no session covered the car: its arrival, or the end of the last session after it.
    unpaid_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(Text)
    # The session whose start resolved it.
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
