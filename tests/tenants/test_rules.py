"""Pure tenancy rules: what is accepted, what is refused and with which field named."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon

from hub.errors import InvalidInput
from tenants import models, rules

# The database's own CHECK on tenants.slug: whatever the rule accepts, the table must accept too.
DB_SLUG_CHECK = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def _field_of(call: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        call()  # type: ignore[operator]
    return caught.value.details["field"]


@pytest.mark.parametrize("slug", ["ab", "city-parking", "a1", "x" * 63, "99-lots"])
def test_good_slugs_pass(slug: str) -> None:
    assert rules.check_slug(slug) == slug


@pytest.mark.parametrize("slug", ["a", "", "-ab", "ab-", "Ab", "a_b", "a b", "x" * 64, "lot.one", None, 12])
def test_bad_slugs_are_refused_naming_the_field(slug: object) -> None:
    assert _field_of(lambda: rules.check_slug(slug)) == "slug"


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_A", max_size=70))
def test_every_accepted_slug_satisfies_the_database_check(slug: str) -> None:
    try:
        rules.check_slug(slug)
    except InvalidInput:
        return
    assert DB_SLUG_CHECK.fullmatch(slug)


def test_time_zones_must_be_iana_names() -> None:
    assert rules.check_time_zone("Asia/Shanghai") == "Asia/Shanghai"
    assert rules.check_time_zone("Europe/Berlin") == "Europe/Berlin"
    for bad in ("Mars/Olympus_Mons", "", "../etc/passwd", "/usr/share/zoneinfo/UTC", "Asia", None):
        assert _field_of(lambda bad=bad: rules.check_time_zone(bad)) == "time_zone"


def test_currencies_must_be_iso_4217() -> None:
    assert rules.check_currency("CNY") == "CNY"
    assert rules.check_currency("HKD") == "HKD"
    for bad in ("cny", "XYZ", "RMB", "CN", "XAU", "", None):
        assert _field_of(lambda bad=bad: rules.check_currency(bad)) == "currency"


def test_fee_must_be_whole_basis_points_from_0_to_10000() -> None:
    assert rules.check_fee_bps(0) == 0
    assert rules.check_fee_bps(10_000) == 10_000
    for bad in (-1, 10_001, 0.6, True, "60", None):
        assert _field_of(lambda bad=bad: rules.check_fee_bps(bad)) == "platform_fee_bps"


def test_service_area_must_be_a_valid_polygon_in_degrees() -> None:
    square = Polygon([(114.0, 22.5), (114.1, 22.5), (114.1, 22.6), (114.0, 22.6)])
    assert isinstance(rules.check_service_area(square), MultiPolygon)
    bowtie = Polygon([(114.0, 22.5), (114.1, 22.6), (114.1, 22.5), (114.0, 22.6)])
    out_of_range = Polygon([(200.0, 22.5), (201.0, 22.5), (201.0, 23.0)])
    for bad in (bowtie, out_of_range, Polygon(), "POLYGON((0 0, 1 0, 1 1, 0 0))"):
        assert _field_of(lambda bad=bad: rules.check_service_area(bad)) == "service_area"


def test_default_service_area_is_shenzhen() -> None:
    assert rules.DEFAULT_SERVICE_AREA.is_valid
    assert rules.DEFAULT_SERVICE_AREA.bounds == (113.75, 22.40, 114.65, 22.87)


def test_membership_roles_match_the_database() -> None:
    assert rules.MEMBERSHIP_ROLES == models.MEMBERSHIP_ROLES
    assert rules.CLIENT_KINDS == models.CLIENT_KINDS


def test_emails_are_trimmed_and_checked() -> None:
    assert rules.normalize_email("  Ann@Example.com ") == "Ann@Example.com"
    for bad in ("ann", "ann@", "@example.com", "ann@example", "a b@example.com", "x" * 250 + "@example.com", None):
        assert _field_of(lambda bad=bad: rules.normalize_email(bad)) == "email"


def test_client_shape_ties_tenants_and_roles_to_kinds() -> None:
    assert rules.check_client_shape("operator", has_tenant=True, role=None).role == "operator_staff"
    assert rules.check_client_shape("operator", has_tenant=True, role="operator_admin").role == "operator_admin"
    assert rules.check_client_shape("connector", has_tenant=True, role=None).role is None
    assert rules.check_client_shape("city", has_tenant=False, role=None).needs_tenant is False
    assert _field_of(lambda: rules.check_client_shape("robot", has_tenant=False, role=None)) == "kind"
    assert _field_of(lambda: rules.check_client_shape("operator", has_tenant=False, role=None)) == "tenant"
    assert _field_of(lambda: rules.check_client_shape("connector", has_tenant=False, role=None)) == "tenant"
    assert _field_of(lambda: rules.check_client_shape("city", has_tenant=True, role=None)) == "tenant"
    assert _field_of(lambda: rules.check_client_shape("platform", has_tenant=False, role="operator_admin")) == "role"
    assert _field_of(lambda: rules.check_client_shape("operator", has_tenant=True, role="owner")) == "role"


def test_granted_scopes_are_a_subset_of_the_kinds_scopes() -> None:
    assert rules.granted_scopes("city", None) == ("city:read",)
    assert rules.granted_scopes("city", "  ") == ("city:read",)
    assert rules.granted_scopes("city", "city:read") == ("city:read",)
    assert rules.granted_scopes("city", "city:read platform") is None
    assert rules.granted_scopes("connector", "operator") is None


def test_secret_hash_verifies_only_the_same_secret() -> None:
    secret = rules.generate_secret()
    stored = rules.hash_secret(secret)
    assert secret not in stored
    assert stored.startswith("scrypt$")
    assert rules.verify_secret(secret, stored)
    assert not rules.verify_secret(secret + "x", stored)
    assert not rules.verify_secret("", stored)
    # Two hashes of one secret differ (salted), and each verifies.
    again = rules.hash_secret(secret)
    assert again != stored and rules.verify_secret(secret, again)


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$1$2$3", "bcrypt$x$y$z$a$b", "scrypt$x$8$1$AAAA$AAAA"])
def test_unreadable_hashes_never_verify(stored: str) -> None:
    assert not rules.verify_secret("anything", stored)


def test_generated_secrets_and_ids_are_distinct() -> None:
    assert len({rules.generate_secret() for _ in range(100)}) == 100
    client_id = rules.generate_client_id("city")
    assert client_id.startswith("ph_city_")
