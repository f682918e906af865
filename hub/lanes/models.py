"""Lot sessions, lane decisions, exceptions and their audit trail, lane codes' keys, auto-pay authorizations,
pending charges and the commands sent to gates.

A lot session is one stay of a vehicle (by plate, or by a driver's account when it has none) in an off-street lot,
from the entry lane's decision to the exit lane's. Each passage at a lane (the reads of one vehicle at the barrier)
is one `lane_decisions` row, written in the same transaction as what it changed. The lanes' own read-confidence
threshold is a column of `lanes` (`read_confidence_threshold`, migration 0006)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer, LargeBinary, Text
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now, uuid_column
from hub.supply.models import tenant_fk

SESSION_STATES = ("open", "closed")
STANDINGS = ("blacklisted", "restricted", "whitelisted", "pass_holder", "visitor")
DECISIONS = ("open", "hold")
# Where a passage came from: a lane's cameras, a driver's app scanning the lane's code, or an agent re-deciding.
DECISION_SOURCES = ("camera", "entry_code", "exit_code", "agent")
EXCEPTION_KINDS = (
    "plate_disagreement",
    "low_confidence",
    "exit_without_entry",
    "duplicate_entry",
    "gate_fault",
    "barrier_held",
    "restricted_plate",
)
EXCEPTION_STATES = ("open", "claimed", "resolved")
CHARGE_STATES = ("pending", "captured", "failed", "cancelled")


def _lane_fk(column: str, table: str) -> ForeignKeyConstraint:
    # Named after the column: a table with two lanes would otherwise get two constraints of one name.
    return ForeignKeyConstraint(
        ["tenant_id", column],
        ["lanes.tenant_id", "lanes.id"],
        name=f"fk_{table}_{column}_lanes",
        ondelete="CASCADE",
    )


def _facility_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "facility_id"], ["facilities.tenant_id", "facilities.id"], ondelete="CASCADE"
    )


def _json(default: str) -> Mapped[Any]:
    return mapped_column(JSONB, nullable=False, server_default=sql(f"'{default}'::jsonb"))


class LotSession(Base):
    """One stay in a lot. At most one open session per plate (or, without a plate, per driver) and facility: the
    partial unique indexes make a second entry of a vehicle inside impossible, also under concurrent reads."""

    __tablename__ = "lot_sessions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        _facility_fk(),
        _lane_fk("entry_lane_id", "lot_sessions"),
        _lane_fk("exit_lane_id", "lot_sessions"),
        ForeignKeyConstraint(["tenant_id", "tariff_version_id"], ["tariffs.tenant_id", "tariffs.id"]),
        CheckConstraint(f"state IN {SESSION_STATES}", name="state_known"),
        CheckConstraint(f"standing IN {STANDINGS}", name="standing_known"),
        CheckConstraint("plate IS NOT NULL OR driver_id IS NOT NULL", name="plate_or_driver"),
        CheckConstraint("(state = 'closed') = (exited_at IS NOT NULL)", name="closed_has_exit"),
        CheckConstraint("exited_at IS NULL OR exited_at >= entered_at", name="exit_after_entry"),
        CheckConstraint("price_fen IS NULL OR price_fen >= 0", name="price_nonnegative"),
        CheckConstraint("paid_fen >= 0", name="paid_nonnegative"),
        Index("ix_lot_sessions_id", "id"),
        Index(
            "uq_lot_sessions_open_plate",
            "tenant_id",
            "facility_id",
            "plate",
            unique=True,
            postgresql_where=sql("state = 'open' AND plate IS NOT NULL"),
        ),
        Index(
            "uq_lot_sessions_open_driver",
            "tenant_id",
            "facility_id",
            "driver_id",
            unique=True,
            postgresql_where=sql("state = 'open' AND plate IS NULL"),
        ),
        # How full the lot is: the open sessions of a facility.
        Index("ix_lot_sessions_open", "tenant_id", "facility_id", postgresql_where=sql("state = 'open'")),
        # Re-entry: the plate's latest closed session at the facility.
        Index(
            "ix_lot_sessions_closed_plate",
            "tenant_id",
            "facility_id",
            "plate",
            "exited_at",
            postgresql_where=sql("state = 'closed'"),
        ),
        Index("ix_lot_sessions_facility_entered", "tenant_id", "facility_id", "entered_at"),
        Index("ix_lot_sessions_driver", "driver_id", postgresql_where=sql("driver_id IS NOT NULL")),
        # Back the foreign keys to lanes, so retiring or deleting a lane does not scan every session.
        Index("ix_lot_sessions_entry_lane", "tenant_id", "entry_lane_id"),
        Index("ix_lot_sessions_exit_lane", "tenant_id", "exit_lane_id"),
        Index(
            "ix_lot_sessions_provider_parking",
            "tenant_id",
            "provider_parking_id",
            postgresql_where=sql("provider_parking_id IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # Normalized as cameras' reads are (connectors.plates); null for a vehicle that entered by the lane's code.
    plate: Mapped[str | None] = mapped_column(Text)
    # The driver's account: who scanned the entry code, or whose auto-pay authorization paid the exit.
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="open")
    standing: Mapped[str] = mapped_column(Text, nullable=False)  # the plate's standing at entry
    standing_entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    vehicle_class: Mapped[str] = mapped_column(Text, nullable=False, server_default="standard")
    entry_lane_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # Sealed at entry: the version in effect then prices the whole stay. Null: the lot had no tariff (free).
    tariff_version_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # A re-entry within the tariff's interval continues this earlier session (priced together, credited).
    continues_session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    paid_fen: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql("0"))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    exit_lane_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    exited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    price_fen: Mapped[int | None] = mapped_column(Integer)
    # The priced stay: total, vehicle class, segments and adjustments as the tariff engine itemized them.
    quote: Mapped[dict | None] = mapped_column(JSONB)
    # Why the exit opened: whitelisted, pass, no_fee, no_tariff, paid, auto_pay (or an agent's resolution).
    close_reason: Mapped[str | None] = mapped_column(Text)
    # An auto-pay plate's stay as the payment provider knows it ("leave first, pay later" with WeChat Pay Score):
    # the parking entry opened when the car came in (its id goes into the exit's deduction) and whether the provider
    # can charge it (connectors.payments.ServiceState: normal, paused, not_enabled, blocked). Null: not opened yet.
    provider_parking_id: Mapped[str | None] = mapped_column(Text)
    provider_parking_state: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


class LaneDecision(Base):
    """One passage at a lane: its reads (plates as read, confidences, image references) and the decision
    answered to the gate. Never changed; a repeated passage id returns this row's decision."""

    __tablename__ = "lane_decisions"
    __table_args__ = (
        _lane_fk("lane_id", "lane_decisions"),
        _facility_fk(),
        ForeignKeyConstraint(["tenant_id", "session_id"], ["lot_sessions.tenant_id", "lot_sessions.id"]),
        ForeignKeyConstraint(["tenant_id", "exception_id"], ["exceptions.tenant_id", "exceptions.id"]),
        CheckConstraint(f"decision IN {DECISIONS}", name="decision_known"),
        CheckConstraint(f"source IN {DECISION_SOURCES}", name="source_known"),
        CheckConstraint("amount_due_fen IS NULL OR amount_due_fen >= 0", name="amount_nonnegative"),
        Index("ix_lane_decisions_id", "id"),
        Index("uq_lane_decisions_passage", "tenant_id", "lane_id", "passage_id", unique=True),
        Index("ix_lane_decisions_lane_time", "tenant_id", "lane_id", "decided_at"),
        Index("ix_lane_decisions_facility_time", "tenant_id", "facility_id", "decided_at"),
        # Backs the foreign key to lot_sessions: without it, deleting sessions scans every decision per session.
        Index("ix_lane_decisions_session", "tenant_id", "session_id"),
        Index("ix_lane_decisions_exception", "tenant_id", "exception_id"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    lane_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    direction: Mapped[str] = mapped_column(Text, nullable=False)
    # The gate's own id of the passage (or a generated one for code scans): the idempotency key.
    passage_id: Mapped[str] = mapped_column(Text, nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False, server_default="camera")
    connector_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    plate: Mapped[str | None] = mapped_column(Text)  # the plate decided on (the reads' agreed plate)
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reads: Mapped[list] = _json("[]")
    decision: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    amount_due_fen: Mapped[int | None] = mapped_column(Integer)
    exception_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    passed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)  # the gate's instant
    decided_at: Mapped[datetime] = timestamp_now()


class LaneException(Base):
    """Something at a lane the machines could not decide, waiting for a remote agent (waiting time is now minus
    `created_at`). Claimed by one agent at a time; every change is an `exception_actions` row."""

    __tablename__ = "exceptions"
    __table_args__ = (
        _facility_fk(),
        _lane_fk("lane_id", "exceptions"),
        ForeignKeyConstraint(["tenant_id", "session_id"], ["lot_sessions.tenant_id", "lot_sessions.id"]),
        CheckConstraint(f"kind IN {EXCEPTION_KINDS}", name="kind_known"),
        CheckConstraint(f"state IN {EXCEPTION_STATES}", name="state_known"),
        CheckConstraint("(claimed_by IS NULL) = (claimed_at IS NULL)", name="claim_complete"),
        CheckConstraint("(state = 'resolved') = (resolved_at IS NOT NULL)", name="resolved_has_time"),
        Index("ix_exceptions_id", "id"),
        # The queue: unresolved exceptions of a facility, longest waiting first.
        Index(
            "ix_exceptions_queue", "tenant_id", "facility_id", "created_at", postgresql_where=sql("state <> 'resolved'")
        ),
        Index("ix_exceptions_created", "tenant_id", "created_at"),
        Index("ix_exceptions_session", "tenant_id", "session_id"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    lane_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # The passage that raised it (no foreign key: the decision row is written after the exception it names).
    decision_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    plate: Mapped[str | None] = mapped_column(Text)
    reads: Mapped[list] = _json("[]")  # every read of the passage with its image reference
    detail: Mapped[dict] = _json("{}")  # e.g. the restriction's reason, the gate's fault
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="open")
    claimed_by: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = timestamp_now()


class ExceptionAction(Base):
    """The audit trail of exceptions: who did what, when and why. Rows are only ever added."""

    __tablename__ = "exception_actions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "exception_id"], ["exceptions.tenant_id", "exceptions.id"], ondelete="CASCADE"
        ),
        Index("ix_exception_actions_exception", "tenant_id", "exception_id", "at"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    exception_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    actor: Mapped[str] = mapped_column(Text, nullable=False)  # a token subject, or "system"
    action: Mapped[str] = mapped_column(Text, nullable=False)  # raised, claimed, released, resolved, ...
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = _json("{}")
    at: Mapped[datetime] = timestamp_now()


class LaneCodeKey(Base):
    """The key an operator's lane codes (the QR codes at lanes) and payment links are signed with."""

    __tablename__ = "lane_code_keys"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = timestamp_now()


class AutoPayAuthorization(Base):
    """A driver's consent that exits of one of their plates are charged to their account ("leave first, pay
    later"). Driver-owned, city-wide; lanes read it by plate."""

    __tablename__ = "auto_pay_authorizations"
    __table_args__ = (
        Index(
            "uq_auto_pay_authorizations_active",
            "driver_id",
            "plate",
            unique=True,
            postgresql_where=sql("revoked_at IS NULL"),
        ),
        Index("ix_auto_pay_authorizations_plate", "plate", postgresql_where=sql("revoked_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = uuid_column()
    driver_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    plate: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = timestamp_now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PendingCharge(Base):
    """What an auto-pay exit owes, to be charged by the payments issue: one per session."""

    __tablename__ = "pending_charges"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "session_id"], ["lot_sessions.tenant_id", "lot_sessions.id"]),
        CheckConstraint(f"state IN {CHARGE_STATES}", name="state_known"),
        CheckConstraint("amount_fen >= 0", name="amount_nonnegative"),
        Index("ix_pending_charges_id", "id"),
        Index("uq_pending_charges_session", "tenant_id", "session_id", unique=True),
        Index("ix_pending_charges_pending", "tenant_id", "created_at", postgresql_where=sql("state = 'pending'")),
        Index("ix_pending_charges_authorization", "authorization_id"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    authorization_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("auto_pay_authorizations.id", ondelete="SET NULL")
    )
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"))
    plate: Mapped[str | None] = mapped_column(Text)
    amount_fen: Mapped[int] = mapped_column(Integer, nullable=False)
    # What the session had paid when its exit made this charge (its amount is the price less that): payments of
    # the stay that succeed later are not deducted again.
    paid_fen: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql("0"))
    currency: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="pending")
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


GATE_COMMANDS = ("open",)
GATE_OUTCOMES = ("opened", "failed")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    # Spelled out: a one-element tuple would format as "('open',)", which is not SQL.
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class GateCommand(Base):
    """A command to a lane's gate controller: today only `open`, an agent's remote open of the barrier. The gate
    fetches its lane's pending commands (`GET /lanes/{id}/commands`, which marks them delivered) and acknowledges
    each with what the barrier did (`.../ack`). A command expires `expires_at` (a minute after the request by
    default): a barrier must not open minutes later for whoever is standing there then.

    The status (pending, delivered, acknowledged, failed, expired) is not stored: it follows from the facts kept
    here (delivered_at, acknowledged_at, outcome) and the clock (hub.lanes.gate_rules.status_of). A stored status
    would read `pending` past its expiry until some sweep flipped it; derived, the gate's fetch (which skips expired
    commands) and the agent's view always agree, and no periodic job is needed."""

    __tablename__ = "gate_commands"
    __table_args__ = (
        _lane_fk("lane_id", "gate_commands"),
        ForeignKeyConstraint(
            ["tenant_id", "exception_id"],
            ["exceptions.tenant_id", "exceptions.id"],
            name="fk_gate_commands_exception_id_exceptions",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "fault_exception_id"],
            ["exceptions.tenant_id", "exceptions.id"],
            name="fk_gate_commands_fault_exception_id_exceptions",
        ),
        CheckConstraint(_one_of("command", GATE_COMMANDS), name="command_known"),
        CheckConstraint(f"outcome IS NULL OR {_one_of('outcome', GATE_OUTCOMES)}", name="outcome_known"),
        CheckConstraint("(acknowledged_at IS NULL) = (outcome IS NULL)", name="ack_has_outcome"),
        CheckConstraint("expires_at > requested_at", name="expires_after_request"),
        CheckConstraint("deliveries >= 0", name="deliveries_nonnegative"),
        CheckConstraint("fault_exception_id IS NULL OR outcome = 'failed'", name="fault_only_when_failed"),
        # The gate's fetch (a lane's recent commands: a command lives at most gate_rules.MAX_TTL, so the fetch reads
        # only that range) and the foreign key to lanes.
        Index("ix_gate_commands_lane_time", "tenant_id", "lane_id", "requested_at"),
        # One command per exception: an exception is resolved once, and only its resolution opens the gate. Also
        # the queue's lookup of an item's command and the foreign key's index.
        Index(
            "uq_gate_commands_exception",
            "tenant_id",
            "exception_id",
            unique=True,
            postgresql_where=sql("exception_id IS NOT NULL"),
        ),
        Index(
            "ix_gate_commands_fault_exception",
            "tenant_id",
            "fault_exception_id",
            postgresql_where=sql("fault_exception_id IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    lane_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    command: Mapped[str] = mapped_column(Text, nullable=False, server_default="open")
    reason: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(Text, nullable=False)  # the agent's token subject
    # The exception whose resolution asked for it (null for a command not raised from the queue).
    exception_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    requested_at: Mapped[datetime] = timestamp_now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # The first delivery, and how many fetches returned it (a gate that lost an answer fetches it again).
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deliveries: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql("0"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # the gate's connector
    outcome: Mapped[str | None] = mapped_column(Text)  # what the barrier did: opened or failed
    outcome_detail: Mapped[Any | None] = mapped_column(JSONB)  # the gate's own words
    # The gate_fault exception a failed open raised.
    fault_exception_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
