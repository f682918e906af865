"""Tariffs as stored: one row per sealed version of a facility's (a lot's or a curb zone's) tariff.

A version is never changed or deleted (the application role may only SELECT and INSERT): a price change is a
new version. The current tariff of a facility is its latest version whose `valid_from` has come; a session
keeps the id of the version it started under, so a later change never reprices it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKeyConstraint, Index, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now, uuid_column


class TariffVersion(Base):
    __tablename__ = "tariffs"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "facility_id"], ["facilities.tenant_id", "facilities.id"], ondelete="CASCADE"
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_tariffs_id", "id"),
        Index("uq_tariffs_facility_version", "tenant_id", "facility_id", "version", unique=True),
        # The version in effect at an instant: the latest valid_from at or before it, ties to the later version.
        Index("ix_tariffs_facility_valid_from", "tenant_id", "facility_id", "valid_from", "version"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = uuid_column()
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # 1, 2, 3, ... per facility, in the order the versions were set.
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    # The engine's canonical form (hub.pricing.tariff.Tariff.to_dict), validated before it is written.
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # Who set it: the token subject of the operator admin.
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = timestamp_now()
