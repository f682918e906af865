"""The ledger's two tables: accounts (with the four sums the engine maintains) and immutable transfers.

The ledger is the one place money of every party meets: a driver's payment debits a provider's clearing account and
credits an operator's payable in one row. So its keys are not led by a tenant: accounts are keyed by their
deterministic id (`rules.account_id`) and transfers by their client-chosen id (the idempotency key). Each row still
carries the `tenant_id` (and `driver_id`) it concerns, which is what row-level security and statements filter on;
a distributed deployment would keep the ledger as one table set of its own, like TigerBeetle beside the database.

Nothing in the application writes these tables: the app role may only read them (under row-level security) and call
the engine, `ledger_apply` and `ledger_ensure_accounts`, SECURITY DEFINER functions of migration 0014. Transfers are
never updated or deleted (a trigger refuses it for every role, the owner included); corrections are new transfers.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now
from hub.ledger.rules import ACCOUNT_KINDS, RESOLVING_KINDS, TRANSFER_KINDS


def _sql_list(values: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


ACCOUNT_KINDS_SQL = _sql_list(list(ACCOUNT_KINDS))
TRANSFER_KINDS_SQL = _sql_list(TRANSFER_KINDS)
RESOLVING_KINDS_SQL = _sql_list(RESOLVING_KINDS)
# The bounds as the table itself enforces them too (the engine checks them first and reports which one).
BOUNDS_HOLD_SQL = (
    "(NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted) AND "
    "(NOT credits_must_not_exceed_debits OR credits_pending + credits_posted <= debits_posted)"
)


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("kind", "owner", "currency"),
        CheckConstraint(f"kind IN {ACCOUNT_KINDS_SQL}", name="kind_known"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        CheckConstraint(
            "NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)", name="one_bound_at_most"
        ),
        CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
            name="sums_nonnegative",
        ),
        CheckConstraint(BOUNDS_HOLD_SQL, name="bounds_hold"),
        Index("ix_ledger_accounts_tenant", "tenant_id", postgresql_where=text("tenant_id IS NOT NULL")),
        Index("ix_ledger_accounts_driver", "driver_id", postgresql_where=text("driver_id IS NOT NULL")),
        {"postgresql_with": {"fillfactor": "80"}},
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    currency: Mapped[str] = mapped_column(Text, nullable=False, server_default="CNY")
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    # The tenant id, driver id, merchant id or provider name the account belongs to; '' for platform accounts.
    owner: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("tenants.id"))
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id"))
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    debits_pending: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    debits_posted: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    credits_pending: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    credits_posted: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    created_at: Mapped[datetime] = timestamp_now()


class LedgerTransfer(Base):
    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint(f"kind IN {TRANSFER_KINDS_SQL}", name="kind_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="accounts_differ"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        CheckConstraint("code <> ''", name="code_given"),
        CheckConstraint(f"(pending_id IS NOT NULL) = (kind IN {RESOLVING_KINDS_SQL})", name="pending_id_iff_resolving"),
        CheckConstraint("expires_at IS NULL OR kind = 'pending'", name="only_pending_expires"),
        # Daily settlement reads one tenant's transfers of one day; statements read an account's in order.
        Index("ix_ledger_transfers_tenant_created", "tenant_id", "created_at"),
        Index("ix_ledger_transfers_debit_seq", "debit_account_id", "seq"),
        Index("ix_ledger_transfers_credit_seq", "credit_account_id", "seq"),
        Index("ix_ledger_transfers_driver", "driver_id", "created_at", postgresql_where=text("driver_id IS NOT NULL")),
        # A pending is posted or voided at most once, also under concurrency.
        Index(
            "uq_ledger_transfers_pending", "pending_id", unique=True, postgresql_where=text("pending_id IS NOT NULL")
        ),
        # The sweep that voids expired reservations.
        Index(
            "ix_ledger_transfers_expiring",
            "expires_at",
            postgresql_where=text("kind = 'pending' AND expires_at IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # The global order of application; per account it is also the order of commit (the engine locks accounts).
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False)
    debit_account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("ledger_accounts.id"), nullable=False
    )
    credit_account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("ledger_accounts.id"), nullable=False
    )
    # Fen moved: for a post what was posted, for a void what was released (the pending's amount).
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    pending_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("ledger_transfers.id"))
    code: Mapped[str] = mapped_column(Text, nullable=False)
    # Tags for row-level security and statements, deliberately without foreign keys: each key check would take a
    # share lock on the tenant's row, and thousands of transfers a second would queue on a handful of tenants.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reference: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    batch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    created_at: Mapped[datetime] = timestamp_now()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
