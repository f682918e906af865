"""Tenant, user, membership and client use cases, run as the app role under row-level security."""

from __future__ import annotations

import uuid

import pytest
from geoalchemy2.shape import to_shape
from shapely.geometry import Polygon

from hub.db import PLATFORM, Database, Scope
from hub.errors import Conflict, InvalidInput, NotFound
from tenants import repository, rules, service

AUTH = Scope("auth")


def _slug(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def _tenant_exists(db: Database, slug: str) -> bool:
    async with db.transaction(PLATFORM) as session:
        return await repository.find_tenant_by_slug(session, slug) is not None


async def test_create_tenant_with_defaults(db: Database) -> None:
    slug = _slug()
    async with db.transaction(PLATFORM) as session:
        tenant = await service.create_tenant(session, slug=slug, name="  Futian Parking  ")
    assert tenant.slug == slug
    assert tenant.name == "Futian Parking"
    assert (tenant.time_zone, tenant.currency, tenant.platform_fee_bps) == ("Asia/Shanghai", "CNY", 60)
    async with db.transaction(PLATFORM) as session:
        stored = await service.get_tenant_by_slug(session, slug)
    assert stored.id == tenant.id
    assert to_shape(stored.service_area).equals(rules.DEFAULT_SERVICE_AREA)


async def test_create_tenant_with_everything_given(db: Database) -> None:
    area = Polygon([(114.0, 22.5), (114.1, 22.5), (114.1, 22.6), (114.0, 22.6)])
    async with db.transaction(PLATFORM) as session:
        tenant = await service.create_tenant(
            session,
            slug=_slug(),
            name="Kowloon Lots",
            time_zone="Asia/Hong_Kong",
            currency="HKD",
            platform_fee_bps=125,
            service_area=area,
        )
        stored = await service.get_tenant(session, tenant.id)
    assert (stored.time_zone, stored.currency, stored.platform_fee_bps) == ("Asia/Hong_Kong", "HKD", 125)
    assert to_shape(stored.service_area).equals(area)


@pytest.mark.parametrize(
    ("field", "override"),
    [
        ("slug", {"slug": "Bad Slug"}),
        ("name", {"name": "   "}),
        ("time_zone", {"time_zone": "Asia/Atlantis"}),
        ("currency", {"currency": "RMB"}),
        ("platform_fee_bps", {"platform_fee_bps": 10_001}),
        ("service_area", {"service_area": Polygon([(114, 22.5), (114.1, 22.6), (114.1, 22.5), (114, 22.6)])}),
    ],
)
async def test_invalid_tenant_is_refused_naming_the_field_and_nothing_is_written(
    db: Database, field: str, override: dict[str, object]
) -> None:
    arguments: dict[str, object] = {"slug": _slug(), "name": "Valid Name"} | override
    with pytest.raises(InvalidInput) as caught:
        async with db.transaction(PLATFORM) as session:
            await service.create_tenant(session, **arguments)  # type: ignore[arg-type]
    assert caught.value.code == "INVALID_INPUT"
    assert caught.value.details["field"] == field
    if isinstance(arguments["slug"], str) and rules.SLUG_PATTERN.fullmatch(arguments["slug"]):
        assert not await _tenant_exists(db, arguments["slug"])


async def test_duplicate_slug_is_slug_taken_and_the_transaction_stays_usable(db: Database) -> None:
    slug = _slug()
    async with db.transaction(PLATFORM) as session:
        first = await service.create_tenant(session, slug=slug, name="First")
    async with db.transaction(PLATFORM) as session:
        with pytest.raises(Conflict) as caught:
            await service.create_tenant(session, slug=slug, name="Second")
        assert caught.value.code == "SLUG_TAKEN"
        assert caught.value.details["field"] == "slug"
        # The refusal did not abort the transaction: the caller may carry on.
        assert (await service.get_tenant_by_slug(session, slug)).id == first.id


async def test_only_the_platform_creates_tenants(db: Database) -> None:
    tenant_id = await _make_tenant(db)
    with pytest.raises(Exception, match="row-level security"):
        async with db.transaction(Scope("operator", tenant_id=tenant_id)) as session:
            await service.create_tenant(session, slug=_slug(), name="Sneaky")


async def _make_tenant(db: Database, slug: str | None = None) -> uuid.UUID:
    async with db.transaction(PLATFORM) as session:
        return (await service.create_tenant(session, slug=slug or _slug(), name="Operator")).id


async def test_unknown_tenant_is_not_found(db: Database) -> None:
    async with db.transaction(PLATFORM) as session:
        with pytest.raises(NotFound) as caught:
            await service.get_tenant(session, uuid.uuid4())
        assert caught.value.code == "TENANT_NOT_FOUND"
        with pytest.raises(NotFound):
            await service.get_tenant_by_slug(session, "no-such-tenant")


async def test_list_tenants_pages_in_slug_order(db: Database) -> None:
    prefix = f"list-{uuid.uuid4().hex[:6]}"
    for suffix in ("c", "a", "b"):
        await _make_tenant(db, f"{prefix}-{suffix}")
    async with db.transaction(PLATFORM) as session:
        first_page = await service.list_tenants(session, first=2, after_slug=f"{prefix}-")
        second_page = await service.list_tenants(session, first=2, after_slug=first_page[-1].slug)
        with pytest.raises(InvalidInput):
            await service.list_tenants(session, first=0)
    assert [t.slug for t in first_page] == [f"{prefix}-a", f"{prefix}-b"]
    assert second_page[0].slug == f"{prefix}-c"


async def test_update_tenant_changes_given_fields_and_validates(db: Database) -> None:
    tenant_id = await _make_tenant(db)
    async with db.transaction(PLATFORM) as session:
        updated = await service.update_tenant(session, tenant_id, name="Renamed", platform_fee_bps=80)
    assert (updated.name, updated.platform_fee_bps, updated.currency) == ("Renamed", 80, "CNY")
    with pytest.raises(InvalidInput) as caught:
        async with db.transaction(PLATFORM) as session:
            await service.update_tenant(session, tenant_id, time_zone="Nowhere/Land")
    assert caught.value.details["field"] == "time_zone"
    async with db.transaction(PLATFORM) as session:
        assert (await service.get_tenant(session, tenant_id)).time_zone == "Asia/Shanghai"


async def test_operator_updates_its_own_tenant_but_not_another(db: Database) -> None:
    mine, theirs = await _make_tenant(db), await _make_tenant(db)
    async with db.transaction(Scope("operator", tenant_id=mine)) as session:
        assert (await service.update_tenant(session, mine, name="Mine")).name == "Mine"
        with pytest.raises(NotFound):
            await service.update_tenant(session, theirs, name="Hijacked")
    async with db.transaction(PLATFORM) as session:
        assert (await service.get_tenant(session, theirs)).name == "Operator"


async def test_ensure_user_treats_emails_case_insensitively(db: Database) -> None:
    local = f"ann.{uuid.uuid4().hex[:8]}"
    async with db.transaction(PLATFORM) as session:
        created = await service.ensure_user(session, f"{local}@Example.com", "Ann")
        again = await service.ensure_user(session, f"  {local.upper()}@EXAMPLE.COM ")
    assert again.id == created.id
    assert created.email == f"{local}@Example.com"
    with pytest.raises(InvalidInput) as caught:
        async with db.transaction(PLATFORM) as session:
            await service.ensure_user(session, "not-an-email")
    assert caught.value.details["field"] == "email"


async def test_memberships_give_and_change_roles(db: Database) -> None:
    tenant_id = await _make_tenant(db)
    async with db.transaction(PLATFORM) as session:
        user = await service.ensure_user(session, f"staff.{uuid.uuid4().hex[:8]}@example.com")
        membership = await service.add_membership(session, tenant_id, user.id, "operator_staff")
        assert membership.role == "operator_staff"
        promoted = await service.add_membership(session, tenant_id, user.id, "operator_admin")
        assert promoted.role == "operator_admin"
        with pytest.raises(InvalidInput):
            await service.add_membership(session, tenant_id, user.id, "owner")
        with pytest.raises(NotFound):
            await service.add_membership(session, tenant_id, uuid.uuid4(), "operator_staff")
        with pytest.raises(NotFound):
            await service.add_membership(session, uuid.uuid4(), user.id, "operator_staff")
    async with db.transaction(Scope("operator", tenant_id=tenant_id)) as session:
        stored = await repository.find_membership(session, tenant_id, user.id)
    assert stored is not None and stored.role == "operator_admin"


async def test_create_client_returns_the_secret_once_and_stores_only_its_hash(db: Database) -> None:
    tenant_id = await _make_tenant(db)
    async with db.transaction(PLATFORM) as session:
        client, secret = await service.create_client(
            session, kind="operator", name="Back office", tenant_id=tenant_id, role="operator_admin"
        )
    assert (client.kind, client.tenant_id, client.role) == ("operator", tenant_id, "operator_admin")
    assert secret not in client.secret_hash
    async with db.transaction(AUTH) as session:
        assert (await service.authenticate_client(session, client.client_id, secret)) is not None
        assert await service.authenticate_client(session, client.client_id, secret[:-1]) is None
        assert await service.authenticate_client(session, "ph_operator_unknown", secret) is None
        assert await service.authenticate_client(session, "", secret) is None


@pytest.mark.parametrize(
    ("kind", "with_tenant", "role", "field"),
    [
        ("robot", False, None, "kind"),
        ("operator", False, None, "tenant"),
        ("city", True, None, "tenant"),
        ("connector", True, "operator_admin", "role"),
    ],
)
async def test_create_client_refuses_shapes_that_do_not_fit_the_kind(
    db: Database, kind: str, with_tenant: bool, role: str | None, field: str
) -> None:
    tenant_id = await _make_tenant(db) if with_tenant else None
    with pytest.raises(InvalidInput) as caught:
        async with db.transaction(PLATFORM) as session:
            await service.create_client(session, kind=kind, name="x", tenant_id=tenant_id, role=role)
    assert caught.value.details["field"] == field


async def test_client_for_an_unknown_tenant_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        async with db.transaction(PLATFORM) as session:
            await service.create_client(session, kind="connector", name="x", tenant_id=uuid.uuid4())


async def test_disabled_clients_are_refused(db: Database) -> None:
    async with db.transaction(PLATFORM) as session:
        client, secret = await service.create_client(session, kind="city", name="Dashboard")
    async with db.transaction(PLATFORM) as session:
        disabled = await service.disable_client(session, client.client_id)
        assert disabled.disabled_at is not None
        with pytest.raises(NotFound):
            await service.disable_client(session, "ph_city_missing")
    async with db.transaction(AUTH) as session:
        assert await service.authenticate_client(session, client.client_id, secret) is None


async def test_clients_are_invisible_outside_the_auth_and_their_tenants_scopes(db: Database) -> None:
    tenant_id, other = await _make_tenant(db), await _make_tenant(db)
    async with db.transaction(PLATFORM) as session:
        client, secret = await service.create_client(session, kind="connector", name="Sensors", tenant_id=tenant_id)
    for scope in (Scope("anonymous"), Scope("operator", tenant_id=other), Scope("city")):
        async with db.transaction(scope) as session:
            assert await service.authenticate_client(session, client.client_id, secret) is None
    async with db.transaction(Scope("operator", tenant_id=tenant_id)) as session:
        assert await repository.find_client(session, client.client_id) is not None


async def test_tenants_by_ids_returns_the_known_ones_in_one_batch(db: Database) -> None:
    first, second = await _make_tenant(db), await _make_tenant(db)
    async with db.transaction(Scope("anonymous")) as session:
        found = await service.tenants_by_ids(session, [first, uuid.uuid4(), second, first])
        assert await service.tenants_by_ids(session, []) == []
    assert sorted(t.id for t in found) == sorted([first, second])
    async with db.sessionmaker() as session, session.begin():
        # No scope set: row-level security hides every tenant.
        assert await service.tenants_by_ids(session, [first]) == []
