"""One operator's webhooks and deliveries are invisible to every other caller, through the API and at the database
itself (row-level security, as the application role)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from hub.db import Database, Scope
from tests.api.conftest import Callers
from tests.notify.conftest import (
    DELIVERIES,
    DISABLE,
    ENDPOINTS,
    REDELIVER,
    ROTATE,
    UPDATE,
    FakeReceiver,
    Notify,
    a_notification,
    create_endpoint,
    deliveries,
)

NODE = "query($id: ID!) { node(id: $id) { id } }"
CREATE = "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }"
WEBHOOK_TABLES = ["webhook_endpoints", "webhook_endpoint_secrets", "webhook_deliveries", "notifications"]


async def test_another_operator_can_neither_see_nor_touch_an_operators_webhooks(
    callers: Callers,
    receiver: FakeReceiver,
    send_notification: Notify,
    run_worker: Callable[[], Awaitable[int]],
) -> None:
    owner, other = await callers.operator(), await callers.operator()
    assert owner.tenant_id is not None
    endpoint = await create_endpoint(owner, receiver, ["*"])
    await send_notification(a_notification(owner.tenant_id))
    await run_worker()
    [delivery] = await deliveries(owner, endpoint)

    assert (await other.data(ENDPOINTS))["webhookEndpoints"] == []
    assert (await other.data(NODE, {"id": endpoint.id}))["node"] is None
    assert (await other.data(NODE, {"id": delivery["id"]}))["node"] is None
    assert await other.error_code(DELIVERIES, {"endpointId": endpoint.id}) == "ENDPOINT_NOT_FOUND"
    assert await other.error_code(REDELIVER, {"id": delivery["id"]}) == "DELIVERY_NOT_FOUND"
    assert await other.error_code(ROTATE, {"id": endpoint.id, "overlapHours": 0}) == "ENDPOINT_NOT_FOUND"
    assert await other.error_code(DISABLE, {"id": endpoint.id}) == "ENDPOINT_NOT_FOUND"
    assert (
        await other.error_code(UPDATE, {"id": endpoint.id, "input": {"url": "https://evil.example.com/"}})
        == "ENDPOINT_NOT_FOUND"
    )
    # Nothing the other operator tried changed the endpoint or sent anything more.
    [still] = (await owner.data(ENDPOINTS))["webhookEndpoints"]
    assert still["url"] == receiver.url and still["enabled"]
    assert len(receiver.received) == 1
    assert (await owner.data(NODE, {"id": delivery["id"]}))["node"] == {"id": delivery["id"]}


async def test_staff_read_webhooks_and_only_admins_change_them(
    callers: Callers, receiver: FakeReceiver, send_notification: Notify, run_worker: Callable[[], Awaitable[int]]
) -> None:
    admin = await callers.operator()
    assert admin.tenant_id is not None
    staff = await callers.operator("operator_staff", tenant_id=admin.tenant_id)
    endpoint = await create_endpoint(admin, receiver, ["*"])
    await send_notification(a_notification(admin.tenant_id))
    await run_worker()

    assert [item["id"] for item in (await staff.data(ENDPOINTS))["webhookEndpoints"]] == [endpoint.id]
    [delivery] = await deliveries(staff, endpoint)
    assert await staff.error_code(REDELIVER, {"id": delivery["id"]}) == "FORBIDDEN"
    assert await staff.error_code(DISABLE, {"id": endpoint.id}) == "FORBIDDEN"
    assert await staff.error_code(CREATE, {"input": {"url": receiver.url, "eventTypes": ["*"]}}) == "FORBIDDEN"
    driver = await callers.driver()
    for outsider in (driver, callers.anonymous(), callers.city()):
        assert await outsider.error_code(ENDPOINTS) == "FORBIDDEN"
        assert await outsider.error_code(DELIVERIES, {"endpointId": endpoint.id}) == "FORBIDDEN"


async def test_row_level_security_keeps_webhook_rows_to_their_tenant(
    callers: Callers, receiver: FakeReceiver, send_notification: Notify, db: Database
) -> None:
    owner, other = await callers.operator(), await callers.operator()
    driver = await callers.driver()
    assert owner.tenant_id is not None and other.tenant_id is not None
    await create_endpoint(owner, receiver, ["*"])
    await send_notification(a_notification(owner.tenant_id, driver_id=driver.user_id))

    async def visible(scope: Scope, table: str) -> int:
        async with db.transaction(scope) as session:
            return (
                await session.execute(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :tenant"), {"tenant": owner.tenant_id}
                )
            ).scalar_one()

    for table in WEBHOOK_TABLES:
        assert await visible(Scope("operator", tenant_id=owner.tenant_id), table) == 1, table
        assert await visible(Scope("operator", tenant_id=other.tenant_id), table) == 0, table
        assert await visible(Scope("connector", tenant_id=other.tenant_id), table) == 0, table
        assert await visible(Scope("city"), table) == 0, table
        assert await visible(Scope("anonymous"), table) == 0, table
    # A driver sees the notification sent to them, and nothing of the operator's webhooks.
    assert await visible(Scope("driver", user_id=driver.user_id), "notifications") == 1
    assert await visible(Scope("driver", user_id=uuid.uuid4()), "notifications") == 0
    for table in ["webhook_endpoints", "webhook_endpoint_secrets", "webhook_deliveries"]:
        assert await visible(Scope("driver", user_id=driver.user_id), table) == 0, table

    with pytest.raises(Exception, match="row-level security"):
        async with db.transaction(Scope("operator", tenant_id=other.tenant_id)) as session:
            await session.execute(
                text(
                    "INSERT INTO webhook_endpoints (tenant_id, url, event_types) "
                    "VALUES (:tenant, 'https://evil.example.com/', ARRAY['*'])"
                ),
                {"tenant": owner.tenant_id},
            )
    with pytest.raises(Exception, match="row-level security"):
        async with db.transaction(Scope("driver", user_id=driver.user_id)) as session:
            await session.execute(
                text(
                    "INSERT INTO notifications (tenant_id, type, idempotency_key, subject_ids, payload, driver_id, "
                    "occurred_at) VALUES (:tenant, 'session.entered', 'forged', '{}', '{}', :driver, now())"
                ),
                {"tenant": owner.tenant_id, "driver": driver.user_id},
            )
