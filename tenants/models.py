"""Tenants (operators), people, memberships, OAuth clients, connector credentials, token signing keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, timestamp_now, uuid_column

MEMBERSHIP_ROLES = ("operator_admin", "operator_staff")
CLIENT_KINDS = ("operator", "city", "connector", "platform")
# When an auto-pay exit opens the barrier: as soon as the deduction is decided (`accepted`, the default), or only
# once the provider says it succeeded (`succeeded`: the exit holds with reason `awaiting_payment` until then).
AUTO_PAY_OPENS_ON = ("accepted", "succeeded")


class Tenant(Base):
    """An operator: owns facilities and spaces, is settled daily, pays a platform fee."""

    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="slug_format"),
        CheckConstraint("platform_fee_bps BETWEEN 0 AND 10000", name="fee_range"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        CheckConstraint(f"auto_pay_opens_on IN {AUTO_PAY_OPENS_ON}", name="auto_pay_opens_on_known"),
    )

    id: Mapped[uuid.UUID] = uuid_column()
    slug: Mapped[str] = mapped_column(String(63), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    time_zone: Mapped[str] = mapped_column(Text, nullable=False, server_default="Asia/Shanghai")
    currency: Mapped[str] = mapped_column(String(3), nullable=False, server_default="CNY")
    platform_fee_bps: Mapped[int] = mapped_column(Integer, nullable=False, server_default="60")
    auto_pay_opens_on: Mapped[str] = mapped_column(Text, nullable=False, server_default="accepted")
    service_area = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False)
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


class User(Base):
    """A person. Drivers are city-wide accounts; staff are users with memberships in a tenant."""

    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email_lower", func.lower(text("email")), unique=True),)

    id: Mapped[uuid.UUID] = uuid_column()
    email: Mapped[str] = mapped_column(Text, nullable=False)
    display_name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint(f"role IN {MEMBERSHIP_ROLES}", name="role_known"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = timestamp_now()


class OAuthClient(Base):
    """A machine client of the token endpoint (client_credentials): an operator's back office, the
    city's dashboard, a connector, or platform administration."""

    __tablename__ = "oauth_clients"
    __table_args__ = (
        CheckConstraint(f"kind IN {CLIENT_KINDS}", name="kind_known"),
        CheckConstraint("(kind IN ('operator', 'connector')) = (tenant_id IS NOT NULL)", name="tenant_iff_scoped"),
    )

    client_id: Mapped[str] = mapped_column(Text, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SigningKey(Base):
    """An asymmetric key that signs access tokens. The newest active key signs; every key not yet past
    `not_after` is published in the JWKS so tokens signed before a rotation stay verifiable."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(Text, primary_key=True)
    algorithm: Mapped[str] = mapped_column(Text, nullable=False)
    private_jwk: Mapped[dict] = mapped_column(JSONB, nullable=False)
    public_jwk: Mapped[dict] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = timestamp_now()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    not_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


CONNECTOR_FORMATS = (
    "native",
    "tts_v3",
    "chirpstack_v4",
    "cds",
    "plate_recognizer",
    "openalpr",
    "sandbox_pay",
    "wechatpay_v3",
)
# `provider`: a payment provider's callbacks, authenticated by the provider's own signature (its parse_callback).
CONNECTOR_AUTH_MODES = ("signature", "secret", "provider")
PAYMENT_CONNECTOR_FORMATS = ("sandbox_pay", "wechatpay_v3")


class Connector(Base):
    """An inbound webhook of one tenant (`POST /connectors/{id}`): the format its sender speaks and how the
    sender proves who it is (Standard Webhooks signatures, or a shared secret for senders that cannot sign)."""

    __tablename__ = "connectors"
    __table_args__ = (
        CheckConstraint(f"format IN {CONNECTOR_FORMATS}", name="format_known"),
        CheckConstraint(f"auth_mode IN {CONNECTOR_AUTH_MODES}", name="auth_mode_known"),
        Index("ix_connectors_id", "id", unique=True),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = uuid_column()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    format: Mapped[str] = mapped_column(Text, nullable=False)
    auth_mode: Mapped[str] = mapped_column(Text, nullable=False)
    # Time-zone-less timestamps from this sender are read in this zone.
    time_zone: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConnectorSecret(Base):
    """A connector's secret. Kept in the clear because HMAC verification needs the key itself; no API ever
    returns it after creation. After a rotation the previous secret stays valid until `expires_at`."""

    __tablename__ = "connector_secrets"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "connector_id"], ["connectors.tenant_id", "connectors.id"], ondelete="CASCADE"
        ),
        Index("ix_connector_secrets_connector_id", "connector_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = uuid_column()
    connector_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = timestamp_now()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
