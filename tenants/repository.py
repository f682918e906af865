"""SQL of tenancy and auth: tenants, users, memberships, OAuth clients, signing keys and connectors.

Every function runs in the caller's transaction and under its row-level security scope; nothing here
commits. Inserts that can collide use ON CONFLICT rather than catching errors, so a collision leaves the
caller's transaction usable.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon
from sqlalchemy import Row, Select, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from tenants.models import Connector, ConnectorSecret, Membership, OAuthClient, SigningKey, Tenant, User

SRID = 4326
# Serializes creating and rotating signing keys across processes (an arbitrary constant: "PHKEYS").
SIGNING_KEYS_LOCK = 0x50484B455953


# Tenants ---------------------------------------------------------------------------------------------------


async def insert_tenant(
    session: AsyncSession,
    *,
    slug: str,
    name: str,
    time_zone: str,
    currency: str,
    platform_fee_bps: int,
    service_area: MultiPolygon,
) -> Tenant | None:
    """The new tenant, or None when the slug is taken."""
    statement = (
        insert(Tenant)
        .values(
            slug=slug,
            name=name,
            time_zone=time_zone,
            currency=currency,
            platform_fee_bps=platform_fee_bps,
            service_area=from_shape(service_area, srid=SRID),
        )
        .on_conflict_do_nothing(index_elements=[Tenant.slug])
        .returning(Tenant)
    )
    return (await session.scalars(statement)).one_or_none()


async def find_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    return (await session.scalars(select(Tenant).where(Tenant.id == tenant_id))).one_or_none()


async def find_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return (await session.scalars(select(Tenant).where(Tenant.slug == slug))).one_or_none()


async def list_tenants(session: AsyncSession, *, first: int, after_slug: str | None = None) -> list[Tenant]:
    """Tenants in slug order, `first` of them after `after_slug` (keyset paging)."""
    statement = select(Tenant).order_by(Tenant.slug).limit(first)
    if after_slug is not None:
        statement = statement.where(Tenant.slug > after_slug)
    return list((await session.scalars(statement)).all())


async def update_tenant(session: AsyncSession, tenant_id: uuid.UUID, values: dict[str, Any]) -> Tenant | None:
    """The updated tenant, or None when no visible tenant has that id."""
    if "service_area" in values:
        values = {**values, "service_area": from_shape(values["service_area"], srid=SRID)}
    statement = (
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(**values, updated_at=func.now())
        .returning(Tenant)
        .execution_options(synchronize_session=False)
    )
    tenant = (await session.scalars(statement)).one_or_none()
    if tenant is not None:
        # The identity map may hold the row as it was before; make the caller see what was written.
        await session.refresh(tenant)
    return tenant


# Users and memberships -------------------------------------------------------------------------------------


async def find_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return (await session.scalars(select(User).where(User.id == user_id))).one_or_none()


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.scalars(select(User).where(func.lower(User.email) == email.lower()))).one_or_none()


async def insert_user_if_absent(session: AsyncSession, *, email: str, display_name: str | None) -> User | None:
    """The new user, or None when a user with this address (in any letter case) exists already."""
    statement = (
        insert(User)
        .values(email=email, display_name=display_name)
        .on_conflict_do_nothing(index_elements=[text("lower(email)")])
        .returning(User)
    )
    return (await session.scalars(statement)).one_or_none()


async def upsert_membership(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> Membership:
    """Give the user `role` in the tenant, replacing the role they had there."""
    statement = insert(Membership).values(tenant_id=tenant_id, user_id=user_id, role=role)
    statement = statement.on_conflict_do_update(
        index_elements=[Membership.tenant_id, Membership.user_id], set_={"role": statement.excluded.role}
    ).returning(Membership)
    membership = (await session.scalars(statement, execution_options={"populate_existing": True})).one()
    return membership


async def find_membership(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
    statement = select(Membership).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    return (await session.scalars(statement)).one_or_none()


# OAuth clients ---------------------------------------------------------------------------------------------


async def insert_client(
    session: AsyncSession,
    *,
    client_id: str,
    secret_hash: str,
    name: str,
    kind: str,
    tenant_id: uuid.UUID | None,
    role: str | None,
) -> OAuthClient:
    client = OAuthClient(
        client_id=client_id, secret_hash=secret_hash, name=name, kind=kind, tenant_id=tenant_id, role=role
    )
    session.add(client)
    await session.flush()
    await session.refresh(client)
    return client


async def find_client(session: AsyncSession, client_id: str) -> OAuthClient | None:
    return (await session.scalars(select(OAuthClient).where(OAuthClient.client_id == client_id))).one_or_none()


async def disable_client(session: AsyncSession, client_id: str) -> OAuthClient | None:
    """Mark the client disabled (keeping the first time it was disabled); None when it is not visible."""
    statement = (
        update(OAuthClient)
        .where(OAuthClient.client_id == client_id)
        .values(disabled_at=func.coalesce(OAuthClient.disabled_at, func.now()))
        .returning(OAuthClient)
        .execution_options(synchronize_session=False)
    )
    client = (await session.scalars(statement)).one_or_none()
    if client is not None:
        await session.refresh(client)
    return client


# Signing keys ----------------------------------------------------------------------------------------------


async def lock_signing_keys(session: AsyncSession) -> None:
    """Hold, until the transaction ends, the right to create or rotate signing keys."""
    await session.execute(select(func.pg_advisory_xact_lock(SIGNING_KEYS_LOCK)))


async def list_published_signing_keys(session: AsyncSession) -> list[SigningKey]:
    """Keys not yet past `not_after`, newest first."""
    statement = (
        select(SigningKey)
        .where((SigningKey.not_after.is_(None)) | (SigningKey.not_after > func.now()))
        .order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())
    )
    return list((await session.scalars(statement)).all())


async def count_signing_keys_in_use(session: AsyncSession) -> int:
    """How many keys may sign now: not retired and not past `not_after`."""
    statement = select(func.count()).where(
        SigningKey.retired_at.is_(None), (SigningKey.not_after.is_(None)) | (SigningKey.not_after > func.now())
    )
    return (await session.execute(statement)).scalar_one()


async def insert_signing_key(
    session: AsyncSession, *, kid: str, algorithm: str, private_jwk: dict[str, Any], public_jwk: dict[str, Any]
) -> SigningKey:
    # clock_timestamp, not the transaction's now(): the newest key must sort first even when a rotation and
    # the retirement of its predecessor share one transaction.
    statement = (
        insert(SigningKey)
        .values(
            kid=kid,
            algorithm=algorithm,
            private_jwk=private_jwk,
            public_jwk=public_jwk,
            created_at=func.clock_timestamp(),
        )
        .returning(SigningKey)
    )
    return (await session.scalars(statement)).one()


async def retire_signing_keys(session: AsyncSession, *, keep_kid: str, published_until: datetime) -> list[str]:
    """Stop every other signing key from signing; keep each published until `published_until` at the latest.
    Returns the retired kids."""
    statement = (
        update(SigningKey)
        .where(SigningKey.retired_at.is_(None), SigningKey.kid != keep_kid)
        .values(
            retired_at=func.now(),
            not_after=func.least(func.coalesce(SigningKey.not_after, published_until), published_until),
        )
        .returning(SigningKey.kid)
    )
    return list((await session.scalars(statement)).all())


async def list_all_signing_keys(session: AsyncSession) -> list[SigningKey]:
    statement = select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())
    return list((await session.scalars(statement)).all())


async def find_tenants(session: AsyncSession, tenant_ids: list[uuid.UUID]) -> list[Tenant]:
    return list((await session.scalars(select(Tenant).where(Tenant.id.in_(tenant_ids)))).all())


# Connectors ------------------------------------------------------------------------------------------------


def _connector_filter(tenant_id: uuid.UUID | None) -> ColumnElement[bool]:
    """The explicit tenant filter (row-level security is the second wall); None for platform-wide callers."""
    return Connector.tenant_id == tenant_id if tenant_id is not None else text("true")


async def insert_connector(
    session: AsyncSession, *, tenant_id: uuid.UUID, name: str, format: str, auth_mode: str, time_zone: str
) -> Connector:
    statement = (
        insert(Connector)
        .values(tenant_id=tenant_id, name=name, format=format, auth_mode=auth_mode, time_zone=time_zone)
        .returning(Connector)
    )
    return (await session.scalars(statement)).one()


async def insert_connector_secret(
    session: AsyncSession, *, tenant_id: uuid.UUID, connector_id: uuid.UUID, secret: str
) -> ConnectorSecret:
    # clock_timestamp, not the transaction's now(): the newest secret must sort first even when a rotation
    # happens in the transaction that created the connector.
    statement = (
        insert(ConnectorSecret)
        .values(tenant_id=tenant_id, connector_id=connector_id, secret=secret, created_at=func.clock_timestamp())
        .returning(ConnectorSecret)
    )
    return (await session.scalars(statement)).one()


async def find_connectors(
    session: AsyncSession, connector_ids: list[uuid.UUID], tenant_id: uuid.UUID | None
) -> list[Connector]:
    statement = select(Connector).where(Connector.id.in_(connector_ids), _connector_filter(tenant_id))
    return list((await session.scalars(statement)).all())


async def list_connectors(session: AsyncSession, tenant_id: uuid.UUID) -> list[Connector]:
    statement = select(Connector).where(Connector.tenant_id == tenant_id).order_by(Connector.name, Connector.id)
    return list((await session.scalars(statement)).all())


async def _update_connector(
    session: AsyncSession, connector_id: uuid.UUID, tenant_id: uuid.UUID | None, values: dict[str, Any]
) -> Connector | None:
    statement = (
        update(Connector)
        .where(Connector.id == connector_id, _connector_filter(tenant_id))
        .values(**values, updated_at=func.now())
        .returning(Connector)
        .execution_options(synchronize_session=False)
    )
    connector = (await session.scalars(statement)).one_or_none()
    if connector is not None:
        # The identity map may hold the row as it was before; make the caller see what was written.
        await session.refresh(connector)
    return connector


async def lock_connector(
    session: AsyncSession, connector_id: uuid.UUID, tenant_id: uuid.UUID | None
) -> Connector | None:
    """Mark the connector changed and hold its row lock until the transaction ends, so two rotations of one
    connector run one after the other; None when no visible connector has that id."""
    return await _update_connector(session, connector_id, tenant_id, {})


async def set_connector_disabled(
    session: AsyncSession, connector_id: uuid.UUID, tenant_id: uuid.UUID | None, *, disabled: bool
) -> Connector | None:
    """Disable (keeping the first time it was disabled) or enable the connector; None when it is not visible."""
    disabled_at = func.coalesce(Connector.disabled_at, func.now()) if disabled else None
    return await _update_connector(session, connector_id, tenant_id, {"disabled_at": disabled_at})


async def expire_connector_secrets(
    session: AsyncSession, *, tenant_id: uuid.UUID, connector_id: uuid.UUID, keep_id: uuid.UUID, at: datetime
) -> None:
    """Let every other secret of the connector run out at `at` at the latest (an earlier expiry stands)."""
    statement = (
        update(ConnectorSecret)
        .where(
            ConnectorSecret.tenant_id == tenant_id,
            ConnectorSecret.connector_id == connector_id,
            ConnectorSecret.id != keep_id,
            ConnectorSecret.expires_at.is_(None) | (ConnectorSecret.expires_at > at),
        )
        .values(expires_at=at)
    )
    await session.execute(statement)


async def delete_expired_connector_secrets(
    session: AsyncSession, *, tenant_id: uuid.UUID, connector_id: uuid.UUID, now: datetime
) -> None:
    """Secrets are kept in the clear; one that can no longer authenticate anything is not kept at all."""
    statement = delete(ConnectorSecret).where(
        ConnectorSecret.tenant_id == tenant_id,
        ConnectorSecret.connector_id == connector_id,
        ConnectorSecret.expires_at <= now,
    )
    await session.execute(statement)


async def connector_with_live_secrets(session: AsyncSession, connector_id: uuid.UUID, now: datetime) -> Row | None:
    """The connector's columns and `secrets`, its secrets not expired at `now`, newest first, in one query."""
    return (await session.execute(_with_live_secrets(now).where(Connector.id == connector_id))).one_or_none()


async def connectors_with_live_secrets(
    session: AsyncSession, tenant_id: uuid.UUID, format: str, now: datetime
) -> list[Row]:
    """The tenant's connectors of `format`, each with its live secrets as above, in one query."""
    statement = _with_live_secrets(now).where(Connector.tenant_id == tenant_id, Connector.format == format)
    return list((await session.execute(statement)).all())


def _with_live_secrets(now: datetime) -> Select:
    secrets = ConnectorSecret.__table__
    live_secrets = func.array_agg(
        aggregate_order_by(secrets.c.secret, secrets.c.created_at.desc(), secrets.c.id.desc())
    ).filter(secrets.c.id.is_not(None))
    return (
        select(*Connector.__table__.columns, live_secrets.label("secrets"))
        .select_from(Connector.__table__)
        .outerjoin(
            secrets,
            (secrets.c.tenant_id == Connector.tenant_id)
            & (secrets.c.connector_id == Connector.id)
            & (secrets.c.expires_at.is_(None) | (secrets.c.expires_at > now)),
        )
        .group_by(Connector.tenant_id, Connector.id)
    )


async def payment_connector(session: AsyncSession, tenant_id: uuid.UUID, format: str) -> uuid.UUID | None:
    """The tenant's payment connector of `format`, after taking the lock that orders its creation (so two first
    payments at once create one)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('payment_connector:' || :t || ':' || :f))"),
        {"t": str(tenant_id), "f": format},
    )
    statement = (
        select(Connector.id)
        .where(Connector.tenant_id == tenant_id, Connector.format == format, Connector.auth_mode == "provider")
        .order_by(Connector.created_at)
        .limit(1)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def insert_payment_connector(
    session: AsyncSession, tenant_id: uuid.UUID, format: str, time_zone: str
) -> uuid.UUID:
    connector = await insert_connector(
        session,
        tenant_id=tenant_id,
        name=f"payments ({format})",
        format=format,
        auth_mode="provider",
        time_zone=time_zone,
    )
    return connector.id


async def auto_pay_opens_on(session: AsyncSession, tenant_id: uuid.UUID) -> str | None:
    statement = select(Tenant.auto_pay_opens_on).where(Tenant.id == tenant_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def set_auto_pay_opens_on(session: AsyncSession, tenant_id: uuid.UUID, value: str) -> str | None:
    statement = (
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(auto_pay_opens_on=value, updated_at=func.now())
        .returning(Tenant.auto_pay_opens_on)
    )
    return (await session.execute(statement)).scalar_one_or_none()
