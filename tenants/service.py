"""Use cases of tenancy: tenants, users, memberships and OAuth clients.

Each takes the caller's session and never commits. Row-level security decides what the session may do:
creating tenants, users and clients needs the `platform` scope; the token endpoint authenticates clients
under the `auth` scope; an operator may update its own tenant.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy.ext.asyncio import AsyncSession

from hub.errors import Conflict, InvalidInput, NotFound
from tenants import repository, rules
from tenants.models import Membership, OAuthClient, Tenant, User

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
