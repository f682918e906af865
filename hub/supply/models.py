"""Supply: facilities (off-street lots and on-street curb zones), their lanes, and spaces."""

from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geography, Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now, uuid_column

FACILITY_KINDS = ("lot", "curb_zone")
CURB_SIDES = ("left", "right", "both")
PARKING_ANGLES = ("parallel", "perpendicular", "angled")
LANE_DIRECTIONS = ("entry", "exit")
SIZE_CLASSES = ("motorcycle", "compact", "standard", "large")
SPACE_STATUSES = ("vacant", "occupied", "reserved", "out_of_service")


def tenant_fk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True)


class Facility(Base):
    __tablename__ = "facilities"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        CheckConstraint(f"kind IN {FACILITY_KINDS}", name="kind_known"),
        CheckConstraint(f"side IS NULL OR side IN {CURB_SIDES}", name="side_known"),
        CheckConstraint(f"parking_angle IS NULL OR parking_angle IN {PARKING_ANGLES}", name="angle_known"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_nonnegative"),
        CheckConstraint("levels IS NULL OR levels >= 1", name="levels_positive"),
        CheckConstraint("max_vehicle_height_cm IS NULL OR max_vehicle_height_cm > 0", name="height_positive"),
        Index("ix_facilities_geom", "geom", postgresql_using="gist"),
        Index("ix_facilities_id", "id"),
        Index(
            "uq_facilities_tenant_code_live",
            "tenant_id",
            "code",
            unique=True,
            postgresql_where=text("retired_at IS NULL AND code IS NOT NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    # The zone code printed on street signs (curb zones) or the lot's short code.
    code: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False)
    time_zone: Mapped[str] = mapped_column(Text, nullable=False)
    address: Mapped[str | None] = mapped_column(Text)
    # Off-street lots.
    capacity: Mapped[int | None] = mapped_column(Integer)
    levels: Mapped[int | None] = mapped_column(SmallInteger)
    opening_hours: Mapped[list | None] = mapped_column(JSONB)
    max_vehicle_height_cm: Mapped[int | None] = mapped_column(Integer)
    entrances = mapped_column(Geometry("MULTIPOINT", srid=4326, spatial_index=False))
    # On-street curb zones.
    street_name: Mapped[str | None] = mapped_column(Text)
    side: Mapped[str | None] = mapped_column(Text)
    parking_angle: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Lane(Base):
    """A lane of an off-street lot, where an entry or exit camera and barrier stand."""

    __tablename__ = "lanes"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "facility_id"], ["facilities.tenant_id", "facilities.id"], ondelete="CASCADE"
        ),
        CheckConstraint(f"direction IN {LANE_DIRECTIONS}", name="direction_known"),
        Index("ix_lanes_id", "id"),
        Index("ix_lanes_tenant_id_facility_id", "tenant_id", "facility_id"),
        Index(
            "uq_lanes_facility_name_live",
            "tenant_id",
            "facility_id",
            "name",
            unique=True,
            postgresql_where=text("retired_at IS NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    direction: Mapped[str] = mapped_column(Text, nullable=False)
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Space(Base):
    """One parking space. `geom` is its drawn shape (point or polygon); `location` is a representative
    point as geography, which find-a-space searches in metres with a KNN index."""

    __tablename__ = "spaces"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "facility_id"], ["facilities.tenant_id", "facilities.id"], ondelete="CASCADE"
        ),
        CheckConstraint(f"status IN {SPACE_STATUSES}", name="status_known"),
        CheckConstraint(f"size_class IN {SIZE_CLASSES}", name="size_known"),
        CheckConstraint(f"facility_kind IN {FACILITY_KINDS}", name="facility_kind_known"),
        Index("ix_spaces_id", "id"),
        Index("ix_spaces_tenant_id_facility_id", "tenant_id", "facility_id"),
        Index(
            "ix_spaces_location_live",
            "location",
            postgresql_using="gist",
            postgresql_where=text("retired_at IS NULL"),
        ),
        Index(
            "uq_spaces_tenant_code_live",
            "tenant_id",
            "code",
            unique=True,
            postgresql_where=text("retired_at IS NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # Copied from the facility (a facility never changes kind) so the search filters without a join.
    facility_kind: Mapped[str] = mapped_column(Text, nullable=False)
    code: Mapped[str] = mapped_column(Text, nullable=False)
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False)
    location = mapped_column(Geography("POINT", srid=4326, spatial_index=False), nullable=False)
    level: Mapped[int | None] = mapped_column(SmallInteger)
    ev_charger: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    accessible: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    size_class: Mapped[str] = mapped_column(Text, nullable=False, server_default="standard")
    covered: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    shared: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="vacant")
    status_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
