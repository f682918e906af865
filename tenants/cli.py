"""`parkhub tenant | token | client | keys | connector | device`: platform administration from a shell.

Commands run as the database owner (DATABASE_URL) under the platform scope. They print JSON (or just the
token or kid, so `TOKEN=$(parkhub token issue ...)` works); a failure prints one plain sentence to stderr
and exits with status 1.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

import typer
from geoalchemy2.shape import to_shape
from shapely.geometry import mapping
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from hub.auth import KeyStore, NoSigningKey, ensure_signing_key, rotate_signing_key, token_claims
from hub.config import Settings, get_settings
from hub.db import PLATFORM, Database, make_engine
from hub.errors import DomainError
from hub.principal import Principal
from hub.supply import devices as supply_devices
from tenants import repository, rules, service
from tenants.models import Connector, OAuthClient, SigningKey, Tenant

T = TypeVar("T")

tenant_app = typer.Typer(help="Operators (tenants) of the hub.", no_args_is_help=True)
token_app = typer.Typer(help="Access tokens for development and scripts.", no_args_is_help=True)
client_app = typer.Typer(help="OAuth clients of the token endpoint.", no_args_is_help=True)
keys_app = typer.Typer(help="The keys that sign access tokens.", no_args_is_help=True)
connector_app = typer.Typer(help="Connectors: the webhooks devices and partners post to.", no_args_is_help=True)
device_app = typer.Typer(help="Devices: sensors, cameras and gate controllers.", no_args_is_help=True)


@token_app.callback()
def _token_group() -> None:
    """Access tokens for development and scripts."""
    # A callback keeps `issue` a subcommand (typer would otherwise make a lone command the group itself).


@device_app.callback()
def _device_group() -> None:
    """Devices: sensors, cameras and gate controllers."""


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def _run(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """Run `work` against the owner's database, turning every expected failure into one sentence."""
    settings = get_settings()

    async def main() -> T:
        owner = Database(make_engine(settings.database_url, settings, pool_size=2))
        try:
            return await work(owner, settings)
        finally:
            await owner.dispose()

    try:
        return asyncio.run(main())
    except DomainError as error:
        _fail(error.message)
    except NoSigningKey as error:
        _fail(str(error))
    except (OperationalError, InterfaceError, OSError) as error:
        where = settings.database_url.rsplit("@", 1)[-1]
        _fail(f"Cannot reach the database at {where}: {error.__class__.__name__}. Is PostgreSQL running?")
    except DBAPIError as error:
        _fail(f"The database refused the request: {str(error.orig).strip()}")


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": str(tenant.id),
        "slug": tenant.slug,
        "name": tenant.name,
        "time_zone": tenant.time_zone,
        "currency": tenant.currency,
        "platform_fee_bps": tenant.platform_fee_bps,
        "service_area": mapping(to_shape(tenant.service_area)),
        "created_at": tenant.created_at.isoformat(),
    }


def client_json(client: OAuthClient, secret: str | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "client_id": client.client_id,
        "name": client.name,
        "kind": client.kind,
        "tenant_id": str(client.tenant_id) if client.tenant_id else None,
        "role": client.role,
        "created_at": client.created_at.isoformat(),
        "disabled_at": client.disabled_at.isoformat() if client.disabled_at else None,
    }
    if secret is not None:
        shown["client_secret"] = secret
    return shown


def key_json(key: SigningKey, signing_kid: str | None) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "algorithm": key.algorithm,
        "signing": key.kid == signing_kid,
        "created_at": key.created_at.isoformat(),
        "retired_at": key.retired_at.isoformat() if key.retired_at else None,
        "not_after": key.not_after.isoformat() if key.not_after else None,
    }


def connector_json(connector: Connector, secret: str | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": str(connector.id),
        "tenant_id": str(connector.tenant_id),
        "name": connector.name,
        "format": connector.format,
        "auth_mode": connector.auth_mode,
        "time_zone": connector.time_zone,
        "enabled": connector.disabled_at is None,
        "webhook_url": f"/connectors/{connector.id}",
        "created_at": connector.created_at.isoformat(),
        "disabled_at": connector.disabled_at.isoformat() if connector.disabled_at else None,
    }
    if secret is not None:
        shown["secret"] = secret
    return shown


def device_json(row: Mapping[str, Any]) -> dict[str, Any]:
    names = ("id", "tenant_id", "kind", "external_id", "facility_id", "space_id", "lane_id", "offline_after_s")
    shown = {name: str(row[name]) if isinstance(row[name], uuid.UUID) else row[name] for name in names}
    shown["created_at"] = row["created_at"].isoformat()
    return shown


# tenant ------------------------------------------------------------------------------------------------------


@tenant_app.command("create")
def create_tenant(
    slug: str = typer.Option(..., "--slug", help="Short name in URLs: lowercase letters, digits, hyphens."),
    name: str = typer.Option(..., "--name", help="The operator's name as people know it."),
    time_zone: str = typer.Option("Asia/Shanghai", "--time-zone", help="IANA time zone."),
    currency: str = typer.Option("CNY", "--currency", help="ISO 4217 currency code."),
    fee_bps: int = typer.Option(60, "--fee-bps", help="Platform fee in basis points (60 = 0.6%)."),
) -> None:
    """Create an operator and print it as JSON."""

    async def work(owner: Database, _settings: Settings) -> dict[str, Any]:
        async with owner.transaction(PLATFORM) as session:
            tenant = await service.create_tenant(
                session, slug=slug, name=name, time_zone=time_zone, currency=currency, platform_fee_bps=fee_bps
            )
            return tenant_json(tenant)

    _print_json(_run(work))


@tenant_app.command("list")
def list_tenants() -> None:
    """Print every operator as a JSON array, in slug order."""

    async def work(owner: Database, _settings: Settings) -> list[dict[str, Any]]:
        shown: list[dict[str, Any]] = []
        after: str | None = None
        async with owner.transaction(PLATFORM) as session:
            while page := await service.list_tenants(session, first=service.MAX_PAGE, after_slug=after):
                shown.extend(tenant_json(tenant) for tenant in page)
                after = page[-1].slug
        return shown

    _print_json(_run(work))


# token -------------------------------------------------------------------------------------------------------


def _default_staff_email(slug: str, role: str) -> str:
    return f"{role.replace('_', '-')}@{slug}.example"


@token_app.command("issue")
def issue_token(
    tenant: str | None = typer.Option(None, "--tenant", metavar="SLUG", help="An operator token for this tenant."),
    role: str | None = typer.Option(None, "--role", help="operator_admin or operator_staff (with --tenant)."),
    email: str | None = typer.Option(None, "--email", help="The staff member (with --tenant); made up if left out."),
    driver: str | None = typer.Option(None, "--driver", metavar="EMAIL", help="A driver token for this person."),
    city: bool = typer.Option(False, "--city", help="A city token (reads across tenants)."),
    platform: bool = typer.Option(False, "--platform", help="A platform administration token."),
    ttl: int | None = typer.Option(None, "--ttl", help="Lifetime in seconds (default PARKHUB_TOKEN_TTL_SECONDS)."),
) -> None:
    """Print a signed access token (and nothing else). Creates the user and membership it needs."""
    chosen = [
        flag
        for flag, given in (("--tenant", tenant), ("--driver", driver), ("--city", city), ("--platform", platform))
        if given
    ]
    if len(chosen) != 1:
        _fail("Give exactly one of --tenant SLUG, --driver EMAIL, --city or --platform.")
    if tenant is not None and role is None:
        _fail("--tenant needs --role operator_admin or --role operator_staff.")
    if tenant is None and (role is not None or email is not None):
        _fail("--role and --email go with --tenant only.")
    if ttl is not None and ttl <= 0:
        _fail("--ttl must be a positive number of seconds.")

    async def work(owner: Database, settings: Settings) -> str:
        async with owner.transaction(PLATFORM) as session:
            if tenant is not None and role is not None:
                operator = await service.get_tenant_by_slug(session, tenant)
                user = await service.ensure_user(session, email or _default_staff_email(operator.slug, role))
                await service.add_membership(session, operator.id, user.id, role)
                claims = token_claims(
                    kind="operator", subject=f"user:{user.id}", tenant_id=operator.id, user_id=user.id, role=role
                )
            elif driver is not None:
                user = await service.ensure_user(session, driver)
                claims = token_claims(kind="driver", subject=f"user:{user.id}", user_id=user.id)
            else:
                kind = "city" if city else "platform"
                claims = token_claims(kind=kind, subject=f"cli:{kind}")
        await ensure_signing_key(owner)
        keystore = KeyStore(settings)
        await keystore.load(owner)
        return keystore.sign(claims, ttl_seconds=ttl)

    typer.echo(_run(work))


# client ------------------------------------------------------------------------------------------------------


@client_app.command("create")
def create_client(
    kind: str = typer.Option(..., "--kind", help="operator, city, connector or platform."),
    name: str = typer.Option(..., "--name", help="What the client is, for people reading the list."),
    tenant: str | None = typer.Option(None, "--tenant", metavar="SLUG", help="For operator and connector clients."),
    role: str | None = typer.Option(None, "--role", help="For operator clients: operator_admin or operator_staff."),
) -> None:
    """Create an OAuth client and print it as JSON with its secret, which is shown this once only."""

    async def work(owner: Database, _settings: Settings) -> dict[str, Any]:
        async with owner.transaction(PLATFORM) as session:
            tenant_id = (await service.get_tenant_by_slug(session, tenant)).id if tenant is not None else None
            client, secret = await service.create_client(session, kind=kind, name=name, tenant_id=tenant_id, role=role)
            return client_json(client, secret)

    _print_json(_run(work))


@client_app.command("disable")
def disable_client(client_id: str = typer.Argument(..., help="The client to refuse from now on.")) -> None:
    """Refuse a client's credentials from now on; print it as JSON."""

    async def work(owner: Database, _settings: Settings) -> dict[str, Any]:
        async with owner.transaction(PLATFORM) as session:
            return client_json(await service.disable_client(session, client_id))

    _print_json(_run(work))


# keys --------------------------------------------------------------------------------------------------------


@keys_app.command("rotate")
def rotate_keys(
    overlap_seconds: int | None = typer.Option(
        None, "--overlap-seconds", help="How long the old key stays published (default: until its tokens expire)."
    ),
) -> None:
    """Create a new signing key and print its kid; the old one keeps verifying its tokens until they expire."""
    if overlap_seconds is not None and overlap_seconds < 0:
        _fail("--overlap-seconds must not be negative.")

    async def work(owner: Database, _settings: Settings) -> str:
        return await rotate_signing_key(owner, overlap_seconds=overlap_seconds)

    typer.echo(_run(work))


@keys_app.command("list")
def list_keys() -> None:
    """Print every signing key (public facts only) as a JSON array, newest first."""

    async def work(owner: Database, settings: Settings) -> list[dict[str, Any]]:
        keystore = KeyStore(settings)
        await keystore.load(owner)
        async with owner.transaction(PLATFORM) as session:
            keys = await repository.list_all_signing_keys(session)
            return [key_json(key, keystore.signing_kid) for key in keys]

    _print_json(_run(work))


# connector ---------------------------------------------------------------------------------------------------


@connector_app.command("create")
def create_connector(
    tenant: str = typer.Option(..., "--tenant", metavar="SLUG", help="The operator the connector belongs to."),
    name: str = typer.Option(..., "--name", help="What the sender is, for people reading the list."),
    format: str = typer.Option(..., "--format", help=f"One of {', '.join(rules.CONNECTOR_FORMATS)}."),
    auth: str = typer.Option(
        rules.DEFAULT_CONNECTOR_AUTH_MODE, "--auth", help="signature (Standard Webhooks) or secret (a shared secret)."
    ),
    time_zone: str | None = typer.Option(None, "--time-zone", help="IANA time zone (default: the operator's)."),
) -> None:
    """Create a connector and print it as JSON with its secret, which is shown this once only."""

    async def work(owner: Database, _settings: Settings) -> dict[str, Any]:
        async with owner.transaction(PLATFORM) as session:
            tenant_id = (await service.get_tenant_by_slug(session, tenant)).id
            connector, secret = await service.create_connector(
                session, tenant_id=tenant_id, name=name, format=format, auth_mode=auth, time_zone=time_zone
            )
            return connector_json(connector, secret)

    _print_json(_run(work))


@connector_app.command("rotate")
def rotate_connector(
    connector_id: uuid.UUID = typer.Argument(..., metavar="ID", help="The connector (its webhook URL's id)."),
    overlap_hours: float = typer.Option(
        rules.DEFAULT_SECRET_OVERLAP_HOURS, "--overlap-hours", help="Hours the previous secrets keep working (0-168)."
    ),
) -> None:
    """Issue a new secret and print the connector as JSON with it; the previous secrets keep working for a while."""

    async def work(owner: Database, _settings: Settings) -> dict[str, Any]:
        async with owner.transaction(PLATFORM) as session:
            connector, secret = await service.rotate_connector_secret(
                session, connector_id, tenant_id=None, overlap_hours=overlap_hours
            )
            return connector_json(connector, secret)

    _print_json(_run(work))


def _set_connector_enabled(connector_id: uuid.UUID, *, enabled: bool) -> None:
    async def work(owner: Database, _settings: Settings) -> dict[str, Any]:
        async with owner.transaction(PLATFORM) as session:
            connector = await service.set_connector_enabled(session, connector_id, tenant_id=None, enabled=enabled)
            return connector_json(connector)

    _print_json(_run(work))


@connector_app.command("disable")
def disable_connector(connector_id: uuid.UUID = typer.Argument(..., metavar="ID")) -> None:
    """Refuse a connector's requests from now on; print it as JSON."""
    _set_connector_enabled(connector_id, enabled=False)


@connector_app.command("enable")
def enable_connector(connector_id: uuid.UUID = typer.Argument(..., metavar="ID")) -> None:
    """Accept a connector's requests again; print it as JSON."""
    _set_connector_enabled(connector_id, enabled=True)


@connector_app.command("list")
def list_connectors(tenant: str = typer.Option(..., "--tenant", metavar="SLUG")) -> None:
    """Print an operator's connectors as a JSON array, by name (never their secrets)."""

    async def work(owner: Database, _settings: Settings) -> list[dict[str, Any]]:
        async with owner.transaction(PLATFORM) as session:
            tenant_id = (await service.get_tenant_by_slug(session, tenant)).id
            return [connector_json(connector) for connector in await service.list_connectors(session, tenant_id)]

    _print_json(_run(work))


# device ------------------------------------------------------------------------------------------------------


@device_app.command("register")
def register_device(
    tenant: str = typer.Option(..., "--tenant", metavar="SLUG", help="The operator the device belongs to."),
    kind: str = typer.Option(..., "--kind", help="geomagnetic_sensor, curb_camera, lane_camera or gate_controller."),
    external_id: str = typer.Option(..., "--external-id", help="How its sender names it: a DevEUI, a camera id."),
    space_code: str | None = typer.Option(None, "--space-code", help="Bind it to the operator's space with this code."),
    space_id: uuid.UUID | None = typer.Option(None, "--space-id", help="Bind it to this space."),
    facility_id: uuid.UUID | None = typer.Option(None, "--facility-id", help="Bind it to this curb zone."),
    lane_id: uuid.UUID | None = typer.Option(None, "--lane-id", help="Bind it to this lane."),
    offline_after: int | None = typer.Option(None, "--offline-after", help="Seconds of silence until offline."),
) -> None:
    """Register a device bound to one space, curb zone or lane, and print it as JSON."""
    binding = {"space_code": space_code, "space_id": space_id, "facility_id": facility_id, "lane_id": lane_id}
    if sum(value is not None for value in binding.values()) != 1:
        _fail("Give exactly one of --space-code, --space-id, --facility-id or --lane-id.")

    async def work(owner: Database, _settings: Settings) -> dict[str, Any]:
        async with owner.transaction(PLATFORM) as session:
            tenant_id = (await service.get_tenant_by_slug(session, tenant)).id
            # The platform acts as the operator's admin: the service checks and filters by this tenant.
            admin = Principal("operator", subject="cli:device", tenant_id=tenant_id, role="operator_admin")
            fields = {"kind": kind, "external_id": external_id, "offline_after_s": offline_after, **binding}
            return device_json(await supply_devices.register_device(session, admin, fields))

    _print_json(_run(work))
