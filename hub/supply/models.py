"""Supply: facilities (off-street lots and on-street curb zones), their lanes, and spaces."""

from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geography, Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
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
        CheckConstraint("read_confidence_threshold BETWEEN 0 AND 1", name="read_confidence_threshold_range"),
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
    # Plate reads below this confidence (or disagreeing reads) go to an agent instead of deciding the gate.
    read_confidence_threshold: Mapped[float] = mapped_column(Float, nullable=False, server_default=text("0.8"))
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


DEVICE_KINDS = ("geomagnetic_sensor", "curb_camera", "lane_camera", "gate_controller")
# What a space's history records: the reported statuses, and `unknown` while its sensor is offline.
INTERVAL_STATUSES = (*SPACE_STATUSES, "unknown")


class Device(Base):
    """A sensor, camera or gate controller, known by the id its sender uses (DevEUI, camera id) and bound to
    exactly one space, curb zone (facility) or lane. Health fields are kept current by the events it sends."""

    __tablename__ = "devices"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "space_id"], ["spaces.tenant_id", "spaces.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "facility_id"], ["facilities.tenant_id", "facilities.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["tenant_id", "lane_id"], ["lanes.tenant_id", "lanes.id"], ondelete="CASCADE"),
        CheckConstraint(f"kind IN {DEVICE_KINDS}", name="kind_known"),
        CheckConstraint("num_nonnulls(space_id, lane_id) <= 1", name="one_binding"),
        CheckConstraint("offline_after_s > 0", name="offline_after_positive"),
        Index("ix_devices_id", "id"),
        Index(
            "uq_devices_tenant_external_id_live",
            "tenant_id",
            "external_id",
            unique=True,
            postgresql_where=text("retired_at IS NULL"),
        ),
        Index("ix_devices_space", "tenant_id", "space_id"),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    external_id: Mapped[str] = mapped_column(Text, nullable=False)
    # The facility is always set (a space's or lane's facility is copied here), so per-facility health
    # needs no join; a device bound to a curb zone as a whole has only the facility.
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    space_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    lane_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # Silent for longer than this means offline.
    offline_after_s: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1800"))
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    battery_percent: Mapped[float | None] = mapped_column(Float)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    firmware: Mapped[str | None] = mapped_column(Text)
    offline_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SpaceStatusInterval(Base):
    """A space's history: one row per status it held, open (`ended_at` null) while it holds it.
    Occupied intervals are the occupancy sessions behind turnover and dwell."""

    __tablename__ = "space_status_intervals"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "space_id"], ["spaces.tenant_id", "spaces.id"], ondelete="CASCADE"),
        CheckConstraint(f"status IN {INTERVAL_STATUSES}", name="status_known"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
        Index("ix_space_status_intervals_facility_time", "tenant_id", "facility_id", "started_at"),
        Index("ix_space_status_intervals_space_time", "tenant_id", "space_id", "started_at"),
        Index("ix_space_status_intervals_facility_end", "tenant_id", "facility_id", "ended_at"),
        Index(
            "uq_space_status_intervals_open",
            "tenant_id",
            "space_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    id: Mapped[uuid.UUID] = uuid_column()
    space_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    facility_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
