"""`parkhub tenant | token | client | keys` as a person types them: JSON out, tokens that verify, one-line
errors with exit status 1."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from typer.testing import CliRunner

from hub.auth import KeyStore, principal_from_claims
from hub.config import get_settings
from hub.db import PLATFORM, Database, Scope, make_engine
from hub.principal import Principal
from tenants import repository, service
from tenants.cli import client_app, keys_app, tenant_app, token_app

T = TypeVar("T")
runner = CliRunner()


def _in_app_db(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` against the app role's database in a loop of its own (these tests are synchronous, like
    the CLI they drive)."""
    settings = get_settings()

    async def main() -> T:
        database = Database(make_engine(settings.app_database_url, settings, pool_size=1))
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(main())


def _verify(token: str) -> Principal:
    async def work(database: Database) -> Principal:
        keystore = KeyStore()
        await keystore.load(database)
        return principal_from_claims(keystore.verify(token))

    return _in_app_db(work)


def _ok(app: object, args: list[str]) -> str:
    result = runner.invoke(app, args)  # type: ignore[arg-type]
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result.stdout


def _error(app: object, args: list[str]) -> str:
    result = runner.invoke(app, args)  # type: ignore[arg-type]
    assert result.exit_code == 1, f"{args}: {result.output}"
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message and "\n" not in message and "Traceback" not in message
    return message


def _new_tenant() -> dict[str, object]:
    return json.loads(_ok(tenant_app, ["create", "--slug", f"cli-{uuid.uuid4().hex[:10]}", "--name", "CLI Lots"]))


def test_tenant_create_prints_the_tenant_as_json() -> None:
    slug = f"cli-{uuid.uuid4().hex[:10]}"
    tenant = json.loads(
        _ok(
            tenant_app,
            [
                *("create", "--slug", slug, "--name", "Nanshan"),
                *("--time-zone", "Asia/Hong_Kong", "--currency", "HKD", "--fee-bps", "90"),
            ],
        )
    )
    assert tenant["slug"] == slug
    assert uuid.UUID(tenant["id"])
    assert (tenant["time_zone"], tenant["currency"], tenant["platform_fee_bps"]) == ("Asia/Hong_Kong", "HKD", 90)
    assert tenant["service_area"]["type"] == "MultiPolygon"
    listed = json.loads(_ok(tenant_app, ["list"]))
    assert slug in [row["slug"] for row in listed]


def test_tenant_create_refusals_are_one_sentence_on_stderr() -> None:
    tenant = _new_tenant()
    assert "taken" in _error(tenant_app, ["create", "--slug", str(tenant["slug"]), "--name", "Again"])
    assert "time_zone" in _error(
        tenant_app, ["create", "--slug", f"cli-{uuid.uuid4().hex[:8]}", "--name", "X", "--time-zone", "Moon/Base"]
    )
    assert "slug" in _error(tenant_app, ["create", "--slug", "Not A Slug", "--name", "X"])


def test_operator_token_is_verifiable_and_creates_the_membership() -> None:
    tenant = _new_tenant()
    email = f"boss.{uuid.uuid4().hex[:8]}@example.com"
    token = _ok(token_app, ["issue", "--tenant", str(tenant["slug"]), "--role", "operator_admin", "--email", email])
    assert token.count(".") == 2 and token.strip() == token.rstrip("\n")
    principal = _verify(token.strip())
    assert principal.kind == "operator"
    assert principal.is_operator_admin
    assert str(principal.tenant_id) == tenant["id"]

    async def membership_role(database: Database) -> str | None:
        async with database.transaction(Scope("operator", tenant_id=principal.tenant_id)) as session:
            assert principal.tenant_id is not None and principal.user_id is not None
            membership = await repository.find_membership(session, principal.tenant_id, principal.user_id)
            return membership.role if membership else None

    assert _in_app_db(membership_role) == "operator_admin"
    # Without --email a made-up staff member of that tenant is used.
    staff = _verify(_ok(token_app, ["issue", "--tenant", str(tenant["slug"]), "--role", "operator_staff"]).strip())
    assert staff.role == "operator_staff" and staff.user_id != principal.user_id


def test_driver_token_names_one_account_whatever_the_letter_case() -> None:
    local = f"driver.{uuid.uuid4().hex[:8]}"
    first = _verify(_ok(token_app, ["issue", "--driver", f"{local}@example.com"]).strip())
    again = _verify(_ok(token_app, ["issue", "--driver", f"{local.upper()}@Example.COM"]).strip())
    assert first.kind == "driver"
    assert first.user_id == again.user_id
    assert first.db_scope() == Scope("driver", user_id=first.user_id)


def test_city_and_platform_tokens() -> None:
    assert _verify(_ok(token_app, ["issue", "--city"]).strip()).kind == "city"
    assert _verify(_ok(token_app, ["issue", "--platform"]).strip()).kind == "platform"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["issue"], "exactly one"),
        (["issue", "--city", "--platform"], "exactly one"),
        (["issue", "--tenant", "somewhere"], "--role"),
        (["issue", "--city", "--role", "operator_admin"], "--tenant"),
        (["issue", "--tenant", "no-such-tenant-here", "--role", "operator_admin"], "no tenant"),
        (["issue", "--driver", "not-an-email"], "e-mail"),
        (["issue", "--platform", "--ttl", "0"], "--ttl"),
    ],
)
def test_token_issue_refusals(args: list[str], expected: str) -> None:
    assert expected in _error(token_app, args)


def test_client_create_prints_a_secret_that_authenticates() -> None:
    tenant = _new_tenant()
    created = json.loads(
        _ok(
            client_app,
            [
                *("create", "--kind", "operator", "--tenant", str(tenant["slug"])),
                *("--role", "operator_admin", "--name", "Back office"),
            ],
        )
    )
    assert (created["kind"], created["role"], created["tenant_id"]) == ("operator", "operator_admin", tenant["id"])

    async def authenticate(database: Database) -> bool:
        async with database.transaction(Scope("auth")) as session:
            found = await service.authenticate_client(session, created["client_id"], created["client_secret"])
            return found is not None

    assert _in_app_db(authenticate)
    disabled = json.loads(_ok(client_app, ["disable", created["client_id"]]))
    assert disabled["disabled_at"] is not None and "client_secret" not in disabled
    assert not _in_app_db(authenticate)


def test_client_create_refusals() -> None:
    tenant = _new_tenant()
    assert "tenant" in _error(client_app, ["create", "--kind", "city", "--tenant", str(tenant["slug"]), "--name", "x"])
    assert "tenant" in _error(client_app, ["create", "--kind", "connector", "--name", "x"])
    assert "kind" in _error(client_app, ["create", "--kind", "robot", "--name", "x"])
    assert "no OAuth client" in _error(client_app, ["disable", "ph_city_nobody"])


def test_keys_rotate_and_list() -> None:
    kid = _ok(keys_app, ["rotate"]).strip()
    keys = json.loads(_ok(keys_app, ["list"]))
    assert keys[0]["kid"] == kid and keys[0]["signing"] is True
    assert all(key["signing"] is False for key in keys[1:])
    assert all("private_jwk" not in key and "d" not in key for key in keys)
    # Tokens issued now are signed by the new key.
    token = _ok(token_app, ["issue", "--platform"]).strip()
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["kid"] == kid
    assert "negative" in _error(keys_app, ["rotate", "--overlap-seconds", "-1"])


def test_platform_scope_is_what_the_cli_writes_with() -> None:
    # The CLI writes as the owner under the platform scope; the rows it makes are ordinary rows the app sees.
    tenant = _new_tenant()

    async def visible(database: Database) -> bool:
        async with database.transaction(PLATFORM) as session:
            return (await service.get_tenant_by_slug(session, str(tenant["slug"]))).name == "CLI Lots"

    assert _in_app_db(visible)


@pytest.fixture
def unreachable_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", "postgresql://parkhub:parkhub@127.0.0.1:1/parkhub_test")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.usefixtures("unreachable_database")
def test_an_unreachable_database_is_one_sentence_not_a_traceback() -> None:
    assert "Cannot reach the database at 127.0.0.1:1" in _error(tenant_app, ["list"])
