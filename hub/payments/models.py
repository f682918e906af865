"""Drivers' payments and their refunds. A payment row is also the outbox of its provider call: it is written (state
`created`) in the transaction that decides to charge, and the job that calls the provider starts after that commit;
the row's state then follows what the provider said (rules.py has the state machine)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now, uuid_column
from hub.payments.rules import INVOICE_STATES, METHODS, PAYMENT_STATES, PURPOSES, REFUND_SOURCES, REFUND_STATES
from hub.supply.models import tenant_fk


class Payment(Base):
    """One payment of a driver to an operator (the hub is merchant of record)."""

    __tablename__ = "payments"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        CheckConstraint(f"state IN {PAYMENT_STATES}", name="state_known"),
        CheckConstraint(f"purpose IN {PURPOSES}", name="purpose_known"),
        CheckConstraint(f"method IN {METHODS}", name="method_known"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("refunded_fen >= 0 AND refunding_fen >= 0", name="refunds_nonnegative"),
        # Never more refunded (or being refunded) than was paid, whatever the concurrency.
        CheckConstraint("refunded_fen + refunding_fen <= amount_fen", name="refunds_within_amount"),
        CheckConstraint("arrears_fen >= 0 AND arrears_fen <= amount_fen", name="arrears_within_amount"),
        Index("ix_payments_id", "id", unique=True),
        Index("uq_payments_idempotency", "tenant_id", "driver_id", "idempotency_key", unique=True),
        Index("ix_payments_driver", "driver_id", "created_at"),
        Index("ix_payments_tenant_created", "tenant_id", "created_at"),
        Index(
            "ix_payments_unsettled", "updated_at", postgresql_where=text("state IN ('created', 'requested', 'unknown')")
        ),
        Index("ix_payments_arrears", "driver_id", postgresql_where=text("arrears_fen > 0")),
        Index("ix_payments_pass_plate", "tenant_id", "plate", postgresql_where=text("purpose = 'pass'")),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"))
    purpose: Mapped[str] = mapped_column(Text, nullable=False)
    # What was paid for: a lot session, a street session, the failed payment whose arrears this pays.
    subject_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    facility_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    plate: Mapped[str | None] = mapped_column(Text)
    # charge: the payer completes it in their app; deduct: auto-pay after the car left.
    method: Mapped[str] = mapped_column(Text, nullable=False, server_default="charge")
    amount_fen: Mapped[int] = mapped_column(Integer, nullable=False)
    currency: Mapped[str] = mapped_column(Text, nullable=False, server_default="CNY")
    provider: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="created")
    provider_reference: Mapped[str | None] = mapped_column(Text)
    failure_code: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(Text, nullable=False)
    refunded_fen: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    # Refunds requested and not yet settled: reserved, so that concurrent requests never exceed the payment.
    refunding_fen: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    # A failed auto-pay deduction leaves the driver owing this much (arrears) until paid.
    arrears_fen: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A pass payment: what the month bought, as offered at the purchase (hub/access/offer_rules.pass_terms).
    terms: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = timestamp_now()
    requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = timestamp_now()


class PaymentRefund(Base):
    """Part or all of a succeeded payment given back, asked by an operator admin (reason required)."""

    __tablename__ = "payment_refunds"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "payment_id"], ["payments.tenant_id", "payments.id"], ondelete="CASCADE"),
        CheckConstraint(f"state IN {REFUND_STATES}", name="state_known"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint(f"source IN {REFUND_SOURCES}", name="source_known"),
        Index("ix_payment_refunds_id", "id", unique=True),
        Index("ix_payment_refunds_payment", "tenant_id", "payment_id"),
        Index("uq_payment_refunds_idempotency", "tenant_id", "payment_id", "idempotency_key", unique=True),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    payment_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    amount_fen: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    requested_by: Mapped[str] = mapped_column(Text, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="created")
    # payable: an operator's refund of captured money; prepaid: unused curb prepay released by its hold (rules.py).
    source: Mapped[str] = mapped_column(Text, nullable=False, server_default="payable")
    provider_reference: Mapped[str | None] = mapped_column(Text)
    failure_code: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = timestamp_now()


class InvoiceRequest(Base):
    """A driver's request for an e-invoice (fapiao) of a succeeded payment. Issuing it is a later integration with
    a tax-invoice service: until then a request stays `requested`, listed for the driver and the operator."""

    __tablename__ = "invoice_requests"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "payment_id"], ["payments.tenant_id", "payments.id"], ondelete="CASCADE"),
        CheckConstraint(f"state IN {INVOICE_STATES}", name="state_known"),
        Index("ix_invoice_requests_id", "id", unique=True),
        # One live request per payment: asking again returns it.
        Index("uq_invoice_requests_payment", "tenant_id", "payment_id", unique=True),
        Index("ix_invoice_requests_driver", "driver_id", "created_at"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    payment_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(Text, nullable=False)
    tax_id: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text, nullable=False)
    amount_fen: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default="requested")
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
