"""Use cases of tenancy: tenants, users, memberships, OAuth clients and connectors.

Each takes the caller's session and never commits. Row-level security decides what the session may do:
creating tenants, users and clients needs the `platform` scope; the token endpoint authenticates clients
and the webhook endpoint looks connectors up under the `auth` scope; an operator may update its own tenant
and manage its own connectors.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import Database, Scope
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.principal import Principal
from tenants import repository, rules
from tenants.models import (
    AUTO_PAY_OPENS_ON,
    PAYMENT_CONNECTOR_FORMATS,
    Connector,
    Membership,
    OAuthClient,
    Tenant,
    User,
)

MAX_PAGE = 500


async def create_tenant(
    session: AsyncSession,
    *,
    slug: str,
    name: str,
    time_zone: str = "Asia/Shanghai",
    currency: str = "CNY",
    platform_fee_bps: int = 60,
    service_area: BaseGeometry | None = None,
) -> Tenant:
    """A new operator. Raises InvalidInput naming the field, or Conflict SLUG_TAKEN."""
    values: dict[str, Any] = {
        "slug": rules.check_slug(slug),
        "name": rules.check_name(name),
        "time_zone": rules.check_time_zone(time_zone),
        "currency": rules.check_currency(currency),
        "platform_fee_bps": rules.check_fee_bps(platform_fee_bps),
        "service_area": rules.check_service_area(
            service_area if service_area is not None else rules.DEFAULT_SERVICE_AREA
        ),
    }
    tenant = await repository.insert_tenant(session, **values)
    if tenant is None:
        raise Conflict(f"the slug {slug!r} is taken by another tenant", code="SLUG_TAKEN", field="slug")
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await repository.find_tenant(session, tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant with id {tenant_id}", code="TENANT_NOT_FOUND")
    return tenant


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant:
    tenant = await repository.find_tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound(f"no tenant with slug {slug!r}", code="TENANT_NOT_FOUND")
    return tenant


async def list_tenants(session: AsyncSession, *, first: int = 100, after_slug: str | None = None) -> list[Tenant]:
    """Tenants in slug order; `first` is capped at 500."""
    if isinstance(first, bool) or not isinstance(first, int) or first < 1:
        raise InvalidInput("first must be a positive whole number", field="first")
    return await repository.list_tenants(session, first=min(first, MAX_PAGE), after_slug=after_slug)


async def update_tenant(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    name: str | None = None,
    time_zone: str | None = None,
    currency: str | None = None,
    platform_fee_bps: int | None = None,
    service_area: BaseGeometry | None = None,
) -> Tenant:
    """Change the given fields (None leaves a field as it is). The slug never changes: URLs and tokens of
    people's tools name it."""
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = rules.check_name(name)
    if time_zone is not None:
        values["time_zone"] = rules.check_time_zone(time_zone)
    if currency is not None:
        values["currency"] = rules.check_currency(currency)
    if platform_fee_bps is not None:
        values["platform_fee_bps"] = rules.check_fee_bps(platform_fee_bps)
    if service_area is not None:
        values["service_area"] = rules.check_service_area(service_area)
    if not values:
        return await get_tenant(session, tenant_id)
    tenant = await repository.update_tenant(session, tenant_id, values)
    if tenant is None:
        raise NotFound(f"no tenant with id {tenant_id}", code="TENANT_NOT_FOUND")
    return tenant


async def ensure_user(session: AsyncSession, email: str, display_name: str | None = None) -> User:
    """The user with this e-mail address (compared case-insensitively), created when there is none."""
    address = rules.normalize_email(email)
    shown_name = rules.check_name(display_name, "display_name") if display_name is not None else None
    user = await repository.find_user_by_email(session, address)
    if user is not None:
        return user
    user = await repository.insert_user_if_absent(session, email=address, display_name=shown_name)
    if user is None:
        # Someone created the same address between our look-up and insert.
        user = await repository.find_user_by_email(session, address)
    if user is None:
        raise NotFound(f"the user {address!r} exists but is not visible in this scope", code="USER_NOT_VISIBLE")
    return user


async def add_membership(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, role: str) -> Membership:
    """Give a person a role in a tenant (replacing the role they had there)."""
    checked_role = rules.check_membership_role(role)
    await get_tenant(session, tenant_id)
    if await repository.find_user(session, user_id) is None:
        raise NotFound(f"no user with id {user_id}", code="USER_NOT_FOUND")
    return await repository.upsert_membership(session, tenant_id=tenant_id, user_id=user_id, role=checked_role)


async def create_client(
    session: AsyncSession,
    *,
    kind: str,
    name: str,
    tenant_id: uuid.UUID | None = None,
    role: str | None = None,
) -> tuple[OAuthClient, str]:
    """A new OAuth client and its secret in plain text: the only time the secret is ever shown."""
    shape = rules.check_client_shape(kind, has_tenant=tenant_id is not None, role=role)
    checked_name = rules.check_name(name)
    if tenant_id is not None:
        await get_tenant(session, tenant_id)
    secret = rules.generate_secret()
    secret_hash = await asyncio.to_thread(rules.hash_secret, secret)
    client = await repository.insert_client(
        session,
        client_id=rules.generate_client_id(shape.kind),
        secret_hash=secret_hash,
        name=checked_name,
        kind=shape.kind,
        tenant_id=tenant_id,
        role=shape.role,
    )
    return client, secret


async def authenticate_client(session: AsyncSession, client_id: str, secret: str) -> OAuthClient | None:
    """The client when the secret is its own and it is not disabled; None otherwise, whatever the reason
    (the token endpoint must not tell an unknown id from a wrong secret)."""
    client = await repository.find_client(session, client_id) if client_id else None
    stored_hash = client.secret_hash if client is not None else rules.dummy_secret_hash()
    # Hashing takes tens of milliseconds of CPU; keep it off the event loop.
    matches = await asyncio.to_thread(rules.verify_secret, secret, stored_hash)
    if client is None or not matches or client.disabled_at is not None:
        return None
    return client


async def disable_client(session: AsyncSession, client_id: str) -> OAuthClient:
    """Refuse the client's credentials from now on (tokens it already holds run out on their own)."""
    client = await repository.disable_client(session, client_id)
    if client is None:
        raise NotFound(f"no OAuth client {client_id!r}", code="CLIENT_NOT_FOUND")
    return client


async def tenants_by_ids(session: AsyncSession, tenant_ids: list[uuid.UUID]) -> list[Tenant]:
    """The tenants among `tenant_ids` this session may see (a batch for GraphQL's DataLoaders)."""
    return await repository.find_tenants(session, tenant_ids)


# Connectors ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookConnector:
    """What the webhook endpoint needs to authenticate and read one sender's requests."""

    tenant_id: uuid.UUID
    id: uuid.UUID
    format: str
    auth_mode: str
    time_zone: str
    disabled: bool
    secrets: tuple[str, ...]  # unexpired, newest first


# The webhook routes look a connector up by id before they know its tenant.
AUTH_SCOPE = Scope("auth")


def connector_admin_tenant(principal: Principal) -> uuid.UUID:
    """The tenant whose connectors the caller may change: an operator admin's own."""
    if principal.is_operator_admin and principal.tenant_id is not None:
        return principal.tenant_id
    raise Forbidden("only an operator admin manages the operator's connectors", required_role="operator_admin")


def connector_reader_tenant(principal: Principal) -> uuid.UUID:
    """The tenant whose connectors the caller may list: any operator staff member's own."""
    if principal.kind == "operator" and principal.tenant_id is not None:
        return principal.tenant_id
    raise Forbidden("an operator's connectors are visible to its staff only", required_role="operator_staff")


def _connector_not_found(connector_id: uuid.UUID) -> NotFound:
    return NotFound(f"no connector with id {connector_id}", field="id")


async def create_connector(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    name: str,
    format: str,
    auth_mode: str = rules.DEFAULT_CONNECTOR_AUTH_MODE,
    time_zone: str | None = None,
) -> tuple[Connector, str]:
    """A new connector of the tenant and its secret in plain text: the only time the API shows the secret.
    Its time zone is the tenant's unless given."""
    checked_name = rules.check_name(name)
    checked_format = rules.check_connector_format(format)
    checked_mode = rules.check_connector_auth_mode(auth_mode)
    if checked_format in PAYMENT_CONNECTOR_FORMATS or checked_mode == "provider":
        # A payment provider's callbacks reach the connector the hub creates for it (hub.payments): never one of ours.
        raise InvalidInput(
            "payment-provider connectors are created by the hub on the first payment, not by operators",
            code="PAYMENT_CONNECTOR_RESERVED",
            field="format" if checked_format in PAYMENT_CONNECTOR_FORMATS else "authMode",
        )
    checked_zone = rules.check_time_zone(time_zone) if time_zone is not None else None
    tenant = await get_tenant(session, tenant_id)
    connector = await repository.insert_connector(
        session,
        tenant_id=tenant.id,
        name=checked_name,
        format=checked_format,
        auth_mode=checked_mode,
        time_zone=checked_zone or tenant.time_zone,
    )
    secret = rules.generate_connector_secret(checked_mode)
    await repository.insert_connector_secret(session, tenant_id=tenant.id, connector_id=connector.id, secret=secret)
    return connector, secret


async def rotate_connector_secret(
    session: AsyncSession,
    connector_id: uuid.UUID,
    *,
    tenant_id: uuid.UUID | None,
    overlap_hours: float = rules.DEFAULT_SECRET_OVERLAP_HOURS,
    now: datetime | None = None,
) -> tuple[Connector, str]:
    """A new secret for the connector, returned this once; the previous ones stay valid for `overlap_hours`
    (0 to 7 days), or less if they were due to expire sooner. `tenant_id` None: any tenant the session sees."""
    overlap = rules.check_overlap_hours(overlap_hours)
    now = now or datetime.now(UTC)
    connector = await repository.lock_connector(session, connector_id, tenant_id)
    if connector is None:
        raise _connector_not_found(connector_id)
    secret = rules.generate_connector_secret(connector.auth_mode)
    stored = await repository.insert_connector_secret(
        session, tenant_id=connector.tenant_id, connector_id=connector.id, secret=secret
    )
    await repository.expire_connector_secrets(
        session, tenant_id=connector.tenant_id, connector_id=connector.id, keep_id=stored.id, at=now + overlap
    )
    await repository.delete_expired_connector_secrets(
        session, tenant_id=connector.tenant_id, connector_id=connector.id, now=now
    )
    return connector, secret


async def set_connector_enabled(
    session: AsyncSession, connector_id: uuid.UUID, *, tenant_id: uuid.UUID | None, enabled: bool
) -> Connector:
    """Enable or disable a connector. A disabled connector keeps its secrets; its requests are refused."""
    connector = await repository.set_connector_disabled(session, connector_id, tenant_id, disabled=not enabled)
    if connector is None:
        raise _connector_not_found(connector_id)
    return connector


async def list_connectors(session: AsyncSession, tenant_id: uuid.UUID) -> list[Connector]:
    """The tenant's connectors by name (a tenant has a handful, so no paging)."""
    return await repository.list_connectors(session, tenant_id)


async def connectors_by_ids(
    session: AsyncSession, connector_ids: list[uuid.UUID], tenant_id: uuid.UUID | None
) -> list[Connector]:
    """The connectors among `connector_ids` this session may see, of `tenant_id` when given (a DataLoader batch)."""
    return await repository.find_connectors(session, connector_ids, tenant_id)


async def connector_for_webhook(
    session: AsyncSession, connector_id: uuid.UUID, now: datetime
) -> WebhookConnector | None:
    """The connector a webhook request names, with its secrets valid at `now`, newest first; None when there
    is no such connector. Runs in the caller's transaction under the `auth` scope, in one query."""
    row = await repository.connector_with_live_secrets(session, connector_id, now)
    return None if row is None else _webhook_connector(row)


async def webhook_connector(db: Database, connector_id: uuid.UUID) -> WebhookConnector | None:
    """`connector_for_webhook` in a transaction of its own under the `auth` scope (the webhook route knows no
    tenant before it has the connector)."""
    async with db.transaction(AUTH_SCOPE) as session:
        return await connector_for_webhook(session, connector_id, datetime.now(UTC))


async def webhook_connectors_of(db: Database, tenant_id: uuid.UUID, format: str) -> tuple[WebhookConnector, ...]:
    """The tenant's connectors of `format` with their live secrets (the lanes' gate API accepts any enabled
    native one), in one query under the `auth` scope."""
    async with db.transaction(AUTH_SCOPE) as session:
        rows = await repository.connectors_with_live_secrets(session, tenant_id, format, datetime.now(UTC))
    return tuple(_webhook_connector(row) for row in rows)


def _webhook_connector(row: Any) -> WebhookConnector:
    return WebhookConnector(
        tenant_id=row.tenant_id,
        id=row.id,
        format=row.format,
        auth_mode=row.auth_mode,
        time_zone=row.time_zone,
        disabled=row.disabled_at is not None,
        secrets=tuple(row.secrets or ()),
    )


async def payment_connector(session: AsyncSession, tenant_id: uuid.UUID, format: str) -> uuid.UUID:
    """The tenant's connector for a payment provider's callbacks (`format` sandbox_pay or wechatpay_v3), created on
    first use; authenticated by the provider's own signature, so it has no secret of ours."""
    if format not in PAYMENT_CONNECTOR_FORMATS:
        raise InvalidInput(f"{format!r} is not a payment connector format", field="format")
    found = await repository.payment_connector(session, tenant_id, format)
    if found is None:
        tenant = await get_tenant(session, tenant_id)
        found = await repository.insert_payment_connector(session, tenant_id, format, tenant.time_zone)
    return found


async def auto_pay_opening(session: AsyncSession, principal: Principal) -> str:
    """When the operator's barriers open for auto-pay exits: `accepted` (at once) or `succeeded` (once the deduction
    succeeded; the exit holds with reason `awaiting_payment` until then). Operator staff read it."""
    if principal.kind != "operator" or principal.tenant_id is None:
        raise Forbidden("the auto-pay opening is the operator's setting", required_role="operator_staff")
    value = await repository.auto_pay_opens_on(session, principal.tenant_id)
    if value is None:
        raise NotFound(f"no tenant with id {principal.tenant_id}", code="TENANT_NOT_FOUND")
    return value


async def set_auto_pay_opening(session: AsyncSession, principal: Principal, value: str) -> str:
    """Change when the operator's barriers open for auto-pay exits (operator admins); applies to the next exit."""
    if not principal.is_operator_admin or principal.tenant_id is None:
        raise Forbidden("only an operator admin may change the auto-pay opening", required_role="operator_admin")
    if value not in AUTO_PAY_OPENS_ON:
        raise InvalidInput(f"opensOn must be one of {', '.join(AUTO_PAY_OPENS_ON)}", field="opensOn")
    changed = await repository.set_auto_pay_opens_on(session, principal.tenant_id, value)
    if changed is None:
        raise NotFound(f"no tenant with id {principal.tenant_id}", code="TENANT_NOT_FOUND")
    return changed
