"""Merchants of an operator (a mall's shops, a conference venue), their API keys, coupon books, codes and the
coupons redeemed against lot sessions.

Money never lives in these tables: a book's funding and each coupon's reservation and payment are transfers in
the ledger (hub/ledger), through the merchant's `merchant_coupon_fund` account. These rows say what was bought,
issued and redeemed, and carry the ids of those transfers. Every table is tenant-private: tenant_id leads every
key and row-level security limits each row to its operator's scopes (migration 0017)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKeyConstraint, Index, Integer, LargeBinary, Text
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now, uuid_column
from hub.pricing.coupons import COUPON_KINDS
from hub.supply.models import tenant_fk

# What a code does: `merchant` (a shop gave one coupon to a plate, redeemed at once), `meeting` (many drivers scan
# it, up to its limit, within its window), `vip` (one driver, once), `prepay` (scanned in the lot, covers the stay
# up to its book's amount).
CODE_KINDS = ("merchant", "meeting", "vip", "prepay")
# A redemption's coupon: `reserved` (bound to an open session, its value held in the fund), `applied` (the session
# closed: the fund paid what the coupon was worth), `released` (the session closed owing nothing to it).
REDEMPTION_STATES = ("reserved", "applied", "released")


def _merchant_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "merchant_id"],
        ["merchants.tenant_id", "merchants.id"],
        name=f"fk_{table}_merchant_id_merchants",
        ondelete="CASCADE",
    )


class Merchant(Base):
    """A shop or venue that gives coupons to its customers' stays at the operator's lots."""

    __tablename__ = "merchants"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        CheckConstraint("length(btrim(name)) > 0", name="name_present"),
        Index("ix_merchants_id", "id"),
        Index("uq_merchants_name", "tenant_id", "name", unique=True, postgresql_where=sql("retired_at IS NULL")),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    contact: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MerchantKey(Base):
    """A merchant's API key: the merchant's systems (or the shop's till) act as that merchant and no other. The
    key names its tenant and row and carries a 256-bit secret, of which only the SHA-256 is stored."""

    __tablename__ = "merchant_keys"
    __table_args__ = (
        _merchant_fk("merchant_keys"),
        Index("ix_merchant_keys_merchant", "tenant_id", "merchant_id"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    merchant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CouponBook(Base):
    """A book of `count` coupons of one kind, bought by the merchant at `unit_price_fen` each: `funded_fen`
    (count x unit price) moved into the merchant's coupon fund (`funding_transfer_id`). Codes draw coupons from
    it: `allocated` counts the coupons codes may still use or have used (a code takes its whole limit when made),
    never above `count`."""

    __tablename__ = "coupon_books"
    __table_args__ = (
        _merchant_fk("coupon_books"),
        CheckConstraint(f"kind IN {COUPON_KINDS}", name="kind_known"),
        CheckConstraint(
            "(kind = 'minutes') = (minutes IS NOT NULL) AND (minutes IS NULL OR minutes > 0)", name="minutes"
        ),
        CheckConstraint(
            "(kind = 'amount') = (amount_fen IS NOT NULL) AND (amount_fen IS NULL OR amount_fen > 0)", name="amount"
        ),
        CheckConstraint(
            "(kind = 'waiver') = (waiver_limit_fen IS NOT NULL) AND (waiver_limit_fen IS NULL OR waiver_limit_fen > 0)",
            name="waiver_limit",
        ),
        CheckConstraint("count > 0 AND unit_price_fen >= 0 AND funded_fen = count * unit_price_fen", name="funding"),
        CheckConstraint("allocated BETWEEN 0 AND count", name="allocated_within_count"),
        Index("ix_coupon_books_id", "id"),
        Index("ix_coupon_books_merchant", "tenant_id", "merchant_id", "created_at"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    merchant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    minutes: Mapped[int | None] = mapped_column(Integer)
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    # What one waiver may cover at most (and reserves in the fund when redeemed).
    waiver_limit_fen: Mapped[int | None] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    funded_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(Text, nullable=False)
    allocated: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql("0"))
    funding_transfer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = timestamp_now()


class MerchantCode(Base):
    """A code drawing coupons from a book. Secret codes (meeting, vip, prepay) store only the SHA-256 of their
    secret; a merchant code given to a plate has none (it is redeemed when made). `used` never passes
    `use_limit`: a redemption increments it with a conditional UPDATE, which also serializes concurrent scans."""

    __tablename__ = "merchant_codes"
    __table_args__ = (
        _merchant_fk("merchant_codes"),
        ForeignKeyConstraint(
            ["tenant_id", "book_id"],
            ["coupon_books.tenant_id", "coupon_books.id"],
            name="fk_merchant_codes_book_id_coupon_books",
            ondelete="CASCADE",
        ),
        CheckConstraint(f"kind IN {CODE_KINDS}", name="kind_known"),
        CheckConstraint("use_limit > 0 AND used BETWEEN 0 AND use_limit", name="used_within_limit"),
        CheckConstraint("expires_at > valid_from", name="window"),
        CheckConstraint("(kind = 'merchant') = (secret_hash IS NULL)", name="secret_unless_merchant"),
        Index("ix_merchant_codes_id", "id"),
        Index("ix_merchant_codes_merchant", "tenant_id", "merchant_id", "created_at"),
        Index("ix_merchant_codes_book", "tenant_id", "book_id"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    merchant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    book_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    plate: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(Text)
    use_limit: Mapped[int] = mapped_column(Integer, nullable=False)
    used: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql("0"))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = timestamp_now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CouponRedemption(Base):
    """One coupon bound to one lot session (at most once per code and session). `reserved_fen` is held in the
    merchant's fund by a pending transfer (`reserve_transfer_id`) from redemption until the session closes; then
    `value_fen` (what the coupon took off the stay, never above the reservation) is posted to the operator and the
    rest released."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        _merchant_fk("coupon_redemptions"),
        ForeignKeyConstraint(
            ["tenant_id", "code_id"],
            ["merchant_codes.tenant_id", "merchant_codes.id"],
            name="fk_coupon_redemptions_code_id_merchant_codes",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "session_id"],
            ["lot_sessions.tenant_id", "lot_sessions.id"],
            name="fk_coupon_redemptions_session_id_lot_sessions",
            ondelete="CASCADE",
        ),
        CheckConstraint(f"kind IN {COUPON_KINDS}", name="kind_known"),
        CheckConstraint(f"state IN {REDEMPTION_STATES}", name="state_known"),
        CheckConstraint("reserved_fen >= 0", name="reserved_nonnegative"),
        CheckConstraint("(state = 'reserved') = (value_fen IS NULL)", name="value_once_settled"),
        CheckConstraint("value_fen BETWEEN 0 AND reserved_fen", name="value_within_reservation"),
        Index("ix_coupon_redemptions_id", "id"),
        Index("uq_coupon_redemptions_code_session", "tenant_id", "code_id", "session_id", unique=True),
        # The exit's one extra query: the coupons still reserved on the session.
        Index(
            "ix_coupon_redemptions_session_reserved",
            "tenant_id",
            "session_id",
            postgresql_where=sql("state = 'reserved'"),
        ),
        Index("ix_coupon_redemptions_merchant", "tenant_id", "merchant_id", "redeemed_at"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    code_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    merchant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    book_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    plate: Mapped[str | None] = mapped_column(Text)
    driver_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    minutes: Mapped[int | None] = mapped_column(Integer)
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    reserved_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reserve_transfer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    value_fen: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(Text, nullable=False, server_default=sql("'reserved'"))
    redeemed_at: Mapped[datetime] = timestamp_now()
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
