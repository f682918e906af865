"""`parkhub connector | device` as a script runs them: JSON out, secrets shown once, one-line refusals."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from typer.testing import CliRunner

from hub.cli import app as parkhub
from hub.config import get_settings
from hub.db import Database, Scope, make_engine
from hub.principal import Principal
from hub.supply import service as supply_service
from tenants import service
from tenants.cli import connector_app, device_app, tenant_app
from tests.api.supply_ops import point, square

T = TypeVar("T")
runner = CliRunner()


def _in_app_db(work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` as the app role in a loop of its own (these tests are synchronous, like the CLI)."""
    settings = get_settings()

    async def main() -> T:
        database = Database(make_engine(settings.app_database_url, settings, pool_size=1))
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(main())


def _ok(app: object, args: list[str]) -> Any:
    result = runner.invoke(app, args)  # type: ignore[arg-type]
    assert result.exit_code == 0, f"{args}: {result.output}"
    return json.loads(result.stdout)


def _error(app: object, args: list[str]) -> str:
    result = runner.invoke(app, args)  # type: ignore[arg-type]
    assert result.exit_code == 1, f"{args}: {result.output}"
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message and "\n" not in message and "Traceback" not in message
    return message


def _new_tenant() -> dict[str, Any]:
    return _ok(tenant_app, ["create", "--slug", f"cli-{uuid.uuid4().hex[:10]}", "--name", "CLI Connectors"])


def _secrets(connector_id: str) -> tuple[str, ...]:
    async def work(database: Database) -> tuple[str, ...]:
        async with database.transaction(Scope("auth")) as session:
            found = await service.connector_for_webhook(session, uuid.UUID(connector_id), datetime.now(UTC))
        assert found is not None
        return found.secrets

    return _in_app_db(work)


def test_connector_create_list_rotate_disable_and_enable_print_json() -> None:
    tenant = _new_tenant()
    args = ["create", "--tenant", tenant["slug"], "--name", "LoRa sensors", "--format", "tts_v3", "--auth", "secret"]
    created = _ok(connector_app, args)
    assert (created["name"], created["format"], created["auth_mode"]) == ("LoRa sensors", "tts_v3", "secret")
    assert (created["tenant_id"], created["time_zone"], created["enabled"]) == (tenant["id"], "Asia/Shanghai", True)
    assert created["webhook_url"] == f"/connectors/{created['id']}"
    assert _secrets(created["id"]) == (created["secret"],)

    result = runner.invoke(connector_app, ["list", "--tenant", tenant["slug"]])
    assert result.exit_code == 0 and created["secret"] not in result.stdout
    assert [row["id"] for row in json.loads(result.stdout)] == [created["id"]]
    assert "secret" not in json.loads(result.stdout)[0]

    rotated = _ok(connector_app, ["rotate", created["id"], "--overlap-hours", "0"])
    assert rotated["id"] == created["id"] and rotated["secret"] != created["secret"]
    assert _secrets(created["id"]) == (rotated["secret"],)
    overlapping = _ok(connector_app, ["rotate", created["id"]])  # 24 hours by default
    assert _secrets(created["id"]) == (overlapping["secret"], rotated["secret"])

    disabled = _ok(connector_app, ["disable", created["id"]])
    assert disabled["enabled"] is False and disabled["disabled_at"] is not None and "secret" not in disabled
    assert _ok(connector_app, ["enable", created["id"]])["enabled"] is True


def test_connector_refusals_are_one_sentence() -> None:
    tenant = _new_tenant()
    assert "format" in _error(connector_app, ["create", "--tenant", tenant["slug"], "--name", "x", "--format", "csv"])
    assert "auth_mode" in _error(
        connector_app, ["create", "--tenant", tenant["slug"], "--name", "x", "--format", "cds", "--auth", "basic"]
    )
    assert "no tenant" in _error(connector_app, ["list", "--tenant", "no-such-tenant-here"])
    assert "no connector" in _error(connector_app, ["rotate", str(uuid.uuid4())])
    created = _ok(connector_app, ["create", "--tenant", tenant["slug"], "--name", "x", "--format", "cds"])
    assert "overlap_hours" in _error(connector_app, ["rotate", created["id"], "--overlap-hours", "200"])


def _site(tenant_id: uuid.UUID, code: str) -> dict[str, str]:
    """A lot with a lane and one space, made by the operator's admin through the supply services."""
    admin = Principal("operator", subject="test", tenant_id=tenant_id, role="operator_admin")

    async def work(database: Database) -> dict[str, str]:
        async with database.transaction(admin.db_scope()) as session:
            lot = (
                await supply_service.create_facilities(
                    session, admin, "lot", [{"name": "CLI Lot", "geometry": square(114.01, 22.53)}]
                )
            )[0]
            lane = (
                await supply_service.create_lanes(
                    session, admin, [{"facility_id": lot["id"], "name": "In", "direction": "entry"}]
                )
            )[0]
            space = (
                await supply_service.create_spaces(
                    session, admin, [{"facility_id": lot["id"], "code": code, "geometry": point(114.0105, 22.5305)}]
                )
            )[0]
        return {"lot": str(lot["id"]), "lane": str(lane["id"]), "space": str(space["id"])}

    return _in_app_db(work)


def test_device_register_by_space_code_and_by_lane_prints_json() -> None:
    tenant = _new_tenant()
    code = f"CLI-{uuid.uuid4().hex[:6]}"
    site = _site(uuid.UUID(tenant["id"]), code)
    base = ["register", "--tenant", tenant["slug"]]
    sensor = _ok(
        device_app,
        [*base, "--kind", "geomagnetic_sensor", "--external-id", "70-b3-d5-7e-d0-05-a1-b2", "--space-code", code],
    )
    assert sensor["external_id"] == "70B3D57ED005A1B2"
    assert (sensor["space_id"], sensor["facility_id"], sensor["lane_id"]) == (site["space"], site["lot"], None)
    assert sensor["offline_after_s"] == 1800
    camera = _ok(
        device_app,
        [*base, "--kind", "lane_camera", "--external-id", "lpr-1", "--lane-id", site["lane"], "--offline-after", "300"],
    )
    assert (camera["lane_id"], camera["facility_id"], camera["offline_after_s"]) == (site["lane"], site["lot"], 300)

    assert "exactly one" in _error(device_app, [*base, "--kind", "lane_camera", "--external-id", "x"])
    both = [*base, "--kind", "lane_camera", "--external-id", "x", "--lane-id", site["lane"], "--space-code", code]
    assert "exactly one" in _error(device_app, both)
    duplicate = [*base, "--kind", "curb_camera", "--external-id", "70B3D57ED005A1B2", "--space-id", site["space"]]
    assert "70B3D57ED005A1B2" in _error(device_app, duplicate)
    assert "binds to a lane" in _error(
        device_app, [*base, "--kind", "gate_controller", "--external-id", "g", "--space-code", code]
    )


def test_the_parkhub_command_mounts_connector_and_device() -> None:
    tenant = _new_tenant()
    assert _ok(parkhub, ["connector", "list", "--tenant", tenant["slug"]]) == []
    result = runner.invoke(parkhub, ["device", "register", "--help"])
    assert result.exit_code == 0 and "--space-code" in result.stdout
