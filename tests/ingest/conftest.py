"""Fixtures for the inbound pipeline: an operator's site, a connector of each kind, devices, and a worker."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.worker import Worker
from sqlalchemy import text

from connectors import signatures
from connectors.http import credentials
from hub import jobs
from hub.config import Settings
from hub.db import Database
from tests.api.conftest import Caller, Callers, app, callers, client  # noqa: F401 (fixtures shared with the API tests)
from tests.api.supply_ops import build_site


@dataclass
class Site:
    admin: Caller
    tenant_id: uuid.UUID
    spaces: list[dict[str, Any]]  # {"id": global id, "code": ...}
    space_ids: list[uuid.UUID]
    # Global ids of the site's other places devices bind to (a lot's entry lane, a curb zone beside the lot).
    lane_id: str | None = None
    curb_zone_id: str | None = None


@dataclass
class WebhookConnector:
    id: uuid.UUID
    secret: str


async def _add_connector(owner_db: Database, tenant_id: uuid.UUID, fmt: str, auth_mode: str) -> WebhookConnector:
    secret = signatures.generate_secret() if auth_mode == "signature" else f"token-{uuid.uuid4().hex}"
    connector_id = uuid.uuid4()
    async with owner_db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO connectors (tenant_id, id, name, format, auth_mode, time_zone) "
                "VALUES (:t, :id, :name, :fmt, :auth, 'Asia/Shanghai')"
            ),
            {"t": tenant_id, "id": connector_id, "name": f"{fmt} feed", "fmt": fmt, "auth": auth_mode},
        )
        await conn.execute(
            text("INSERT INTO connector_secrets (tenant_id, connector_id, secret) VALUES (:t, :c, :s)"),
            {"t": tenant_id, "c": connector_id, "s": secret},
        )
    return WebhookConnector(connector_id, secret)


@pytest.fixture
async def site(callers: Callers, owner_db: Database) -> Site:  # noqa: F811 (the fixture, imported above)
    admin = await callers.operator()
    built = await build_site(admin, 114.06, 22.55, f"S{uuid.uuid4().hex[:4]}", spaces=3)
    space_ids = []
    async with owner_db.engine.begin() as conn:
        for space in built["spaces"]:
            row = await conn.execute(
                text("SELECT id FROM spaces WHERE tenant_id = :t AND code = :c"),
                {"t": admin.tenant_id, "c": space["code"]},
            )
            space_ids.append(row.scalar_one())
    assert admin.tenant_id is not None
    return Site(
        admin,
        admin.tenant_id,
        built["spaces"],
        space_ids,
        lane_id=built["lane"]["id"],
        curb_zone_id=built["curb"]["id"],
    )


@pytest.fixture
def add_connector(owner_db: Database) -> Callable[..., Any]:
    async def add(site: Site, fmt: str, auth_mode: str = "signature") -> WebhookConnector:
        credentials.clear()
        return await _add_connector(owner_db, site.tenant_id, fmt, auth_mode)

    return add


@pytest.fixture
def add_sensor(owner_db: Database) -> Callable[..., Any]:
    async def add(site: Site, external_id: str, space_index: int = 0, kind: str = "geomagnetic_sensor") -> uuid.UUID:
        space_id = site.space_ids[space_index]
        device_id = uuid.uuid4()
        async with owner_db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO devices (tenant_id, id, kind, external_id, facility_id, space_id) "
                    "SELECT tenant_id, :id, :kind, :ext, facility_id, id FROM spaces WHERE tenant_id = :t AND id = :s"
                ),
                {"t": site.tenant_id, "id": device_id, "kind": kind, "ext": external_id, "s": space_id},
            )
        return device_id

    return add


@pytest.fixture
def run_worker(settings: Settings) -> Callable[..., Any]:
    """Drain the job queue with the hub's real arq worker, in-process, and return the jobs it ran."""

    async def burst() -> int:
        await jobs.drain_dispatches()  # jobs of the requests just answered are on their way to Redis
        worker: Worker = jobs.create_worker(settings, burst=True, handle_signals=False, poll_delay=0.05, cron_jobs=[])
        app_pool = jobs.get_job_pool()  # the worker installs its own pool and unsets it when it stops
        try:
            return await worker.run_check()
        finally:
            await worker.close()
            jobs.set_job_pool(app_pool)

    async def run() -> int:
        # A job's follow-up jobs are sent after its commit, in the background: a burst worker may find the queue
        # empty and stop before they land. Run bursts until one finds nothing more to do.
        ran = total = await burst()
        for _ in range(5):
            if ran == 0:
                break
            ran = await burst()
            total += ran
        return total

    return run


REGISTER_DEVICE = "mutation($input: RegisterDeviceInput!) { registerDevice(input: $input) { id externalId } }"


@pytest.fixture
def register_device() -> Callable[..., Any]:
    """Register a device the way an operator admin does, through GraphQL `registerDevice`. Bind it with exactly
    one of `space_index` (a space of the site), `lane=True` (the lot's entry lane) or `curb_zone=True`."""

    async def register(
        site: Site,
        external_id: str,
        kind: str = "GEOMAGNETIC_SENSOR",
        *,
        space_index: int | None = None,
        lane: bool = False,
        curb_zone: bool = False,
        offline_after_seconds: int | None = None,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"kind": kind, "externalId": external_id}
        if space_index is not None:
            fields["spaceId"] = site.spaces[space_index]["id"]
        if lane:
            fields["laneId"] = site.lane_id
        if curb_zone:
            fields["facilityId"] = site.curb_zone_id
        if offline_after_seconds is not None:
            fields["offlineAfterSeconds"] = offline_after_seconds
        return (await site.admin.data(REGISTER_DEVICE, {"input": fields}))["registerDevice"]

    return register


@pytest.fixture
def media_dir(app: Any, tmp_path: Path) -> Iterator[Path]:  # noqa: F811 (the fixture, imported above)
    """Camera images of this test go to a temporary directory instead of the working tree's var/media."""
    original: Settings = app.state.settings
    app.state.settings = dataclasses.replace(original, media_dir=str(tmp_path / "media"))
    try:
        yield tmp_path / "media"
    finally:
        app.state.settings = original


@pytest.fixture
def run_sweep(db: Database, redis: aioredis.Redis) -> Callable[..., Any]:
    """Run one of the inbox's periodic jobs (hub.ingest.tasks) now, with the context the worker gives it."""

    async def run(sweep: Callable[[dict[str, Any]], Awaitable[int]]) -> int:
        return await sweep({"db": db, "redis": redis})

    return run
