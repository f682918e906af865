"""Settlement statements: one per tenant and business date, with its lines, fee, payout and what it carried over,
and the ledger transfers it includes (each in one statement at most, by a unique key).

The statement row holds the figures; the transfers it lists add up to its lines (checked by tests and by
`service.verify_statement`), and a CHECK makes the lines add up to payout + carried_out in the database itself.
`settlement_statement_transfers` is written by one INSERT ... SELECT per run (about 10,000 rows per tenant-day), so
it carries no foreign keys, neither to the ledger nor to its statement (a key check per row costs a third of the
insert; the rows are written only in the transaction that creates their statement, and the app may not delete
statements), and its primary key
(tenant_id, transfer_id) is what keeps a transfer out of a second statement."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now, uuid_column
from hub.settlement.rules import LINES, MODES, PAYOUT_STATES


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


LINES_SQL = _sql_list(LINES)
MODES_SQL = _sql_list(MODES)
PAYOUT_STATES_SQL = _sql_list(PAYOUT_STATES)
LINES_ADD_UP_SQL = (
    "carried_in + gross - refunds + coupons + other + returned - fee = payout + carried_out "
    "AND payout >= 0 AND carried_out <= 0 AND carried_in <= 0 AND (payout = 0 OR carried_out = 0)"
)


class SettlementStatement(Base):
    __tablename__ = "settlement_statements"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "business_date"),
        # A statement's carry is taken over by one next statement at most.
        UniqueConstraint("tenant_id", "previous_statement_id"),
        CheckConstraint(f"mode IN {MODES_SQL}", name="mode_known"),
        CheckConstraint(f"payout_status IN {PAYOUT_STATES_SQL}", name="payout_status_known"),
        CheckConstraint(LINES_ADD_UP_SQL, name="lines_add_up"),
        CheckConstraint("refunds >= 0 AND gross >= 0 AND coupons >= 0 AND returned >= 0", name="lines_signs"),
        CheckConstraint("fee_bps BETWEEN 0 AND 10000", name="fee_bps_range"),
        CheckConstraint("(payout > 0) = (payout_transfer_id IS NOT NULL)", name="payout_has_transfer"),
        CheckConstraint("(payout > 0) = (payout_status <> 'none')", name="payout_status_matches"),
        Index("ix_settlement_statements_id", "id"),
        Index("ix_settlement_statements_date", "business_date"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = uuid_column()
    business_date: Mapped[date] = mapped_column(Date, nullable=False)
    time_zone: Mapped[str] = mapped_column(Text, nullable=False)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    mode: Mapped[str] = mapped_column(Text, nullable=False)
    currency: Mapped[str] = mapped_column(Text, nullable=False)
    previous_statement_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    carried_in: Mapped[int] = mapped_column(BigInteger, nullable=False)
    gross: Mapped[int] = mapped_column(BigInteger, nullable=False)
    refunds: Mapped[int] = mapped_column(BigInteger, nullable=False)
    coupons: Mapped[int] = mapped_column(BigInteger, nullable=False)
    other: Mapped[int] = mapped_column(BigInteger, nullable=False)
    returned: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fee_bps: Mapped[int] = mapped_column(Integer, nullable=False)
    fee: Mapped[int] = mapped_column(BigInteger, nullable=False)
    payout: Mapped[int] = mapped_column(BigInteger, nullable=False)
    carried_out: Mapped[int] = mapped_column(BigInteger, nullable=False)
    transfer_count: Mapped[int] = mapped_column(Integer, nullable=False)
    fee_transfer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    payout_transfer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    payout_account: Mapped[str | None] = mapped_column(Text)
    payout_status: Mapped[str] = mapped_column(Text, nullable=False)
    payout_reference: Mapped[str | None] = mapped_column(Text)
    payout_resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = timestamp_now()


class SettlementStatementTransfer(Base):
    __tablename__ = "settlement_statement_transfers"
    __table_args__ = (
        CheckConstraint(f"line IN {LINES_SQL}", name="line_known"),
        Index("ix_settlement_statement_transfers_statement", "tenant_id", "statement_id", "seq"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    transfer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    statement_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    line: Mapped[str] = mapped_column(Text, nullable=False)
    code: Mapped[str] = mapped_column(Text, nullable=False)
    # The transfer's effect on the line: its amount (refunds too), signed for `other` (+ credit, - debit).
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ReconciliationItem(Base):
    """One difference between a provider's daily bill and the ledger (kind payment or refund, per out_trade_no):
    missing in the ledger, missing at the provider, or amounts that differ. Its difference was moved to suspense by
    the ledger transfer `suspense_transfer_id`; resolving it records who looked and why (the money stays in suspense
    until a correction transfer moves it). The tenant is null when the bill's line names no payment we know: such
    items are the platform's (like the platform's ledger accounts, this table's key is its id, and the tenant a
    column of its own, since no tenant can lead a key that may have none)."""

    __tablename__ = "reconciliation_items"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        # The default name (its columns) would pass PostgreSQL's 63 characters.
        UniqueConstraint("provider", "business_date", "kind", "out_trade_no", name="uq_reconciliation_items_day_key"),
        CheckConstraint("kind IN ('payment', 'refund')", name="kind_known"),
        CheckConstraint(
            "problem IN ('missing_in_ledger', 'missing_at_provider', 'amount_differs')", name="problem_known"
        ),
        CheckConstraint("provider_fen <> ledger_fen", name="is_a_difference"),
        CheckConstraint("(resolved_at IS NULL) = (resolution_note IS NULL)", name="resolution_has_note"),
        Index("ix_reconciliation_items_tenant", "tenant_id", "business_date"),
        Index("ix_reconciliation_items_date", "business_date"),
    )

    id: Mapped[uuid.UUID] = uuid_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    provider: Mapped[str] = mapped_column(Text, nullable=False)
    business_date: Mapped[date] = mapped_column(Date, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    out_trade_no: Mapped[str] = mapped_column(Text, nullable=False)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    problem: Mapped[str] = mapped_column(Text, nullable=False)
    provider_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ledger_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(Text, nullable=False)
    provider_references: Mapped[str | None] = mapped_column(Text)
    suspense_account: Mapped[str] = mapped_column(Text, nullable=False)
    suspense_transfer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    created_at: Mapped[datetime] = timestamp_now()
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolution_note: Mapped[str | None] = mapped_column(Text)
