"""Vehicle lists of an operator: monthly passes, the whitelist, and the blocklist (blacklisted and restricted
plates). Plates are stored normalized (upper case, no separators), so a camera read matches by equality.

Nothing here is ever deleted: an entry is revoked (`revoked_at`) and kept for the record."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now, uuid_column
from hub.pricing.tariff import VEHICLE_CLASSES

# The vehicle classes tariffs price (hub/pricing/tariff.py has the same list).
WHITELIST_CATEGORIES = ("official", "vip", "reserved", "team")
# blacklist: never enters; restricted: entry needs an agent's decision.
BLOCKLIST_KINDS = ("blacklist", "restricted")
MINUTES_PER_DAY = 24 * 60


def _tenant_key() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True)


def _facility_ids() -> Mapped[list[uuid.UUID] | None]:
    # Null covers every facility of the tenant, including facilities created later.
    return mapped_column(ARRAY(UUID(as_uuid=True)))


class VehiclePass(Base):
    """A monthly (or any-term) pass: the plate may park at its facilities on the dates from `valid_from` to
    `valid_until` (inclusive), on its weekdays, and within its daily window if it has one. Dates, weekdays and
    the window are read in the zone of the facility where the vehicle is."""

    __tablename__ = "vehicle_passes"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        CheckConstraint("valid_until >= valid_from", name="dates_ordered"),
        CheckConstraint(
            "cardinality(weekdays) BETWEEN 1 AND 7 AND weekdays <@ ARRAY[1, 2, 3, 4, 5, 6, 7]::smallint[]",
            name="weekdays_known",
        ),
        CheckConstraint("(window_start IS NULL) = (window_end IS NULL)", name="window_complete"),
        CheckConstraint(
            f"window_start IS NULL OR (window_start BETWEEN 0 AND {MINUTES_PER_DAY - 1} "
            f"AND window_end BETWEEN 1 AND {MINUTES_PER_DAY} AND window_start <> window_end)",
            name="window_valid",
        ),
        CheckConstraint(f"vehicle_class IN {VEHICLE_CLASSES}", name="vehicle_class_known"),
        CheckConstraint("facility_ids IS NULL OR cardinality(facility_ids) >= 1", name="facilities_not_empty"),
        Index("ix_vehicle_passes_id", "id"),
        Index("ix_vehicle_passes_tenant_plate", "tenant_id", "plate", "id"),
        # A sold pass is created by its payment's success, exactly once.
        Index("uq_vehicle_passes_payment", "tenant_id", "payment_id", unique=True),
    )

    tenant_id: Mapped[uuid.UUID] = _tenant_key()
    id: Mapped[uuid.UUID] = uuid_column()
    plate: Mapped[str] = mapped_column(Text, nullable=False)
    holder_name: Mapped[str | None] = mapped_column(Text)
    holder_phone: Mapped[str | None] = mapped_column(Text)
    facility_ids: Mapped[list[uuid.UUID] | None] = _facility_ids()
    valid_from: Mapped[date] = mapped_column(Date, nullable=False)
    valid_until: Mapped[date] = mapped_column(Date, nullable=False)
    # ISO weekdays, 1 = Monday ... 7 = Sunday, sorted.
    weekdays: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger), nullable=False)
    # The daily window in minutes after local midnight; an end before the start runs past midnight (the part
    # after midnight belongs to the day the window started). Both null: all day.
    window_start: Mapped[int | None] = mapped_column(SmallInteger)
    window_end: Mapped[int | None] = mapped_column(SmallInteger)
    vehicle_class: Mapped[str] = mapped_column(Text, nullable=False, server_default="standard")
    note: Mapped[str | None] = mapped_column(Text)
    # A pass sold through a pass offer: the offer and the payment that bought it (null: granted by the operator).
    offer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    payment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PassOffer(Base):
    """A monthly pass an operator sells to drivers: its facilities, its price per calendar month, and the weekdays
    and daily window the passes it sells cover (the same shape as a vehicle pass). Never deleted: an offer is taken
    off sale, and the passes it sold stand."""

    __tablename__ = "pass_offers"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        CheckConstraint("price_fen > 0", name="price_positive"),
        CheckConstraint("cardinality(facility_ids) >= 1", name="facilities_not_empty"),
        CheckConstraint(
            "cardinality(weekdays) BETWEEN 1 AND 7 AND weekdays <@ ARRAY[1, 2, 3, 4, 5, 6, 7]::smallint[]",
            name="weekdays_known",
        ),
        CheckConstraint("(window_start IS NULL) = (window_end IS NULL)", name="window_complete"),
        CheckConstraint(
            f"window_start IS NULL OR (window_start BETWEEN 0 AND {MINUTES_PER_DAY - 1} "
            f"AND window_end BETWEEN 1 AND {MINUTES_PER_DAY} AND window_start <> window_end)",
            name="window_valid",
        ),
        Index("ix_pass_offers_id", "id"),
        Index("ix_pass_offers_facilities", "facility_ids", postgresql_using="gin"),
    )

    tenant_id: Mapped[uuid.UUID] = _tenant_key()
    id: Mapped[uuid.UUID] = uuid_column()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    # Sold offers name their facilities: a pass's dates are read in its facility's zone.
    facility_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), nullable=False)
    price_fen: Mapped[int] = mapped_column(Integer, nullable=False)
    currency: Mapped[str] = mapped_column(Text, nullable=False, server_default="CNY")
    weekdays: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger), nullable=False)
    window_start: Mapped[int | None] = mapped_column(SmallInteger)
    window_end: Mapped[int | None] = mapped_column(SmallInteger)
    on_sale: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


class WhitelistEntry(Base):
    """A plate let in and out free: official, VIP, reserved or team vehicles, at some or all facilities,
    optionally only between two dates (inclusive, in the facility's zone)."""

    __tablename__ = "vehicle_whitelist"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        CheckConstraint(f"category IN {WHITELIST_CATEGORIES}", name="category_known"),
        CheckConstraint("valid_from IS NULL OR valid_until IS NULL OR valid_until >= valid_from", name="dates_ordered"),
        CheckConstraint("facility_ids IS NULL OR cardinality(facility_ids) >= 1", name="facilities_not_empty"),
        Index("ix_vehicle_whitelist_id", "id"),
        Index("ix_vehicle_whitelist_tenant_plate", "tenant_id", "plate", "id"),
    )

    tenant_id: Mapped[uuid.UUID] = _tenant_key()
    id: Mapped[uuid.UUID] = uuid_column()
    plate: Mapped[str] = mapped_column(Text, nullable=False)
    category: Mapped[str] = mapped_column(Text, nullable=False)
    facility_ids: Mapped[list[uuid.UUID] | None] = _facility_ids()
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BlocklistEntry(Base):
    """A plate refused at every facility of the tenant (blacklist) or held for an agent (restricted), with
    the reason, optionally only between two dates (inclusive, in the facility's zone)."""

    __tablename__ = "vehicle_blocklist"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        CheckConstraint(f"kind IN {BLOCKLIST_KINDS}", name="kind_known"),
        CheckConstraint("valid_from IS NULL OR valid_until IS NULL OR valid_until >= valid_from", name="dates_ordered"),
        Index("ix_vehicle_blocklist_id", "id"),
        Index("ix_vehicle_blocklist_tenant_plate", "tenant_id", "plate", "id"),
    )

    tenant_id: Mapped[uuid.UUID] = _tenant_key()
    id: Mapped[uuid.UUID] = uuid_column()
    plate: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
