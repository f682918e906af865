"""Connectors through the API and the services: a secret is shown once, rotation overlaps, disable and enable,
and one operator's connectors are invisible to and unchangeable by another."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from strawberry import relay

from hub.db import PLATFORM, Database, Scope
from hub.errors import InvalidInput, NotFound
from tenants import service
from tests.api.conftest import Caller, Callers

AUTH = Scope("auth")
CONNECTOR_FIELDS = "id name format authMode timeZone enabled webhookUrl createdAt disabledAt"
CREATE = (
    "mutation($input: CreateConnectorInput!) { createConnector(input: $input) { secret connector { "
    + CONNECTOR_FIELDS
    + " } } }"
)
ROTATE = (
    "mutation($id: ID!, $hours: Int!) { rotateConnectorSecret(id: $id, overlapHours: $hours) "
    "{ secret connector { id } } }"
)
ROTATE_DEFAULT = "mutation($id: ID!) { rotateConnectorSecret(id: $id) { secret } }"
DISABLE = "mutation($id: ID!) { disableConnector(id: $id) { id enabled disabledAt } }"
ENABLE = "mutation($id: ID!) { enableConnector(id: $id) { id enabled disabledAt } }"
LIST = "{ connectors { " + CONNECTOR_FIELDS + " } }"
NODE = "query($id: ID!) { node(id: $id) { id ... on Connector { " + CONNECTOR_FIELDS + " } } }"


def row_id(global_id: str) -> uuid.UUID:
    return uuid.UUID(relay.GlobalID.from_id(global_id).node_id)


async def create(caller: Caller, **fields: Any) -> dict[str, Any]:
    variables = {"input": {"name": "Sensors", "format": "TTS_V3", **fields}}
    return (await caller.data(CREATE, variables))["createConnector"]


async def webhook_view(db: Database, connector_id: uuid.UUID, at: datetime | None = None) -> service.WebhookConnector:
    async with db.transaction(AUTH) as session:
        found = await service.connector_for_webhook(session, connector_id, at or datetime.now(UTC))
    assert found is not None
    return found


async def stored_secret_count(owner_db: Database, connector_id: uuid.UUID) -> int:
    async with owner_db.transaction(PLATFORM) as session:
        sql = text("SELECT count(*) FROM connector_secrets WHERE connector_id = :id")
        return (await session.execute(sql, {"id": connector_id})).scalar_one()


async def test_create_shows_the_secret_once_and_reads_never_show_it(callers: Callers, db: Database) -> None:
    admin = await callers.operator()
    created = await create(admin)
    connector, secret = created["connector"], created["secret"]
    connector_id = row_id(connector["id"])
    assert secret.startswith("whsec_")
    assert connector["authMode"] == "SIGNATURE"  # the default
    assert (connector["name"], connector["format"], connector["enabled"]) == ("Sensors", "TTS_V3", True)
    assert connector["timeZone"] == "Asia/Shanghai"  # the operator's
    assert connector["webhookUrl"] == f"/connectors/{connector_id}"
    assert connector["disabledAt"] is None

    # Reads show the connector and never its secret.
    listed = await admin.post(LIST)
    assert connector in listed["data"]["connectors"]
    node = await admin.post(NODE, {"id": connector["id"]})
    assert node["data"]["node"] == connector
    assert secret not in str(listed) + str(node)

    # The webhook endpoint's lookup finds it with that secret.
    found = await webhook_view(db, connector_id)
    assert found == service.WebhookConnector(
        tenant_id=admin.tenant_id,
        id=connector_id,
        format="tts_v3",
        auth_mode="signature",
        time_zone="Asia/Shanghai",
        disabled=False,
        secrets=(secret,),
    )


async def test_a_shared_secret_connector_with_its_own_time_zone(callers: Callers, db: Database) -> None:
    admin = await callers.operator()
    created = await create(admin, name="Gate cams", format="OPENALPR", authMode="SECRET", timeZone="Asia/Hong_Kong")
    assert not created["secret"].startswith("whsec_") and len(created["secret"]) >= 43
    assert (created["connector"]["authMode"], created["connector"]["timeZone"]) == ("SECRET", "Asia/Hong_Kong")
    found = await webhook_view(db, row_id(created["connector"]["id"]))
    assert (found.auth_mode, found.format, found.secrets) == ("secret", "openalpr", (created["secret"],))


async def test_rotation_keeps_the_previous_secret_until_the_overlap_ends(
    callers: Callers, db: Database, owner_db: Database
) -> None:
    admin = await callers.operator()
    created = await create(admin)
    connector_id, first = row_id(created["connector"]["id"]), created["secret"]

    rotated = (await admin.data(ROTATE, {"id": created["connector"]["id"], "hours": 2}))["rotateConnectorSecret"]
    second = rotated["secret"]
    assert second.startswith("whsec_") and second != first
    assert rotated["connector"]["id"] == created["connector"]["id"]
    now = datetime.now(UTC)
    assert (await webhook_view(db, connector_id, now)).secrets == (second, first)  # newest first
    assert (await webhook_view(db, connector_id, now + timedelta(hours=1, minutes=50))).secrets == (second, first)
    assert (await webhook_view(db, connector_id, now + timedelta(hours=2, minutes=1))).secrets == (second,)

    # Without overlap the previous secrets stop at once, and expired secrets are not kept at all.
    third = (await admin.data(ROTATE, {"id": created["connector"]["id"], "hours": 0}))["rotateConnectorSecret"]
    assert (await webhook_view(db, connector_id)).secrets == (third["secret"],)
    assert await stored_secret_count(owner_db, connector_id) == 1

    # The default overlap is 24 hours.
    fourth = (await admin.data(ROTATE_DEFAULT, {"id": created["connector"]["id"]}))["rotateConnectorSecret"]
    later = datetime.now(UTC) + timedelta(hours=23)
    assert (await webhook_view(db, connector_id, later)).secrets == (fourth["secret"], third["secret"])
    assert (await webhook_view(db, connector_id, later + timedelta(hours=2))).secrets == (fourth["secret"],)


@pytest.mark.parametrize("hours", [-1, 169])
async def test_an_overlap_outside_a_week_is_refused_and_changes_nothing(
    callers: Callers, db: Database, hours: int
) -> None:
    admin = await callers.operator()
    created = await create(admin)
    body = await admin.post(ROTATE, {"id": created["connector"]["id"], "hours": hours})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "overlap_hours"
    assert (await webhook_view(db, row_id(created["connector"]["id"]))).secrets == (created["secret"],)


async def test_rotating_twice_in_one_transaction_orders_secrets_newest_first(callers: Callers, db: Database) -> None:
    admin = await callers.operator()
    scope = Scope("operator", tenant_id=admin.tenant_id)
    now = datetime.now(UTC)
    async with db.transaction(scope) as session:
        assert admin.tenant_id is not None
        connector, first = await service.create_connector(session, tenant_id=admin.tenant_id, name="x", format="cds")
        _, second = await service.rotate_connector_secret(session, connector.id, tenant_id=admin.tenant_id, now=now)
        _, third = await service.rotate_connector_secret(
            session, connector.id, tenant_id=admin.tenant_id, overlap_hours=1, now=now
        )
    # The second rotation shortened the first secret's overlap to its own: an earlier expiry always wins.
    assert (await webhook_view(db, connector.id, now)).secrets == (third, second, first)
    assert (await webhook_view(db, connector.id, now + timedelta(hours=2))).secrets == (third,)


async def test_disable_and_enable(callers: Callers, db: Database) -> None:
    admin = await callers.operator()
    created = await create(admin)
    connector_id = created["connector"]["id"]
    disabled = (await admin.data(DISABLE, {"id": connector_id}))["disableConnector"]
    assert disabled["enabled"] is False and disabled["disabledAt"] is not None
    assert (await webhook_view(db, row_id(connector_id))).disabled is True
    again = (await admin.data(DISABLE, {"id": connector_id}))["disableConnector"]
    assert again["disabledAt"] == disabled["disabledAt"]  # the first time it was disabled is kept
    enabled = (await admin.data(ENABLE, {"id": connector_id}))["enableConnector"]
    assert enabled == {"id": connector_id, "enabled": True, "disabledAt": None}
    found = await webhook_view(db, row_id(connector_id))
    assert found.disabled is False and found.secrets == (created["secret"],)  # secrets survive


async def _fingerprint(owner_db: Database, tenant_id: uuid.UUID) -> list[tuple]:
    sql = """
        SELECT 'c', id::text, name || coalesce(disabled_at::text, ''), updated_at FROM connectors WHERE tenant_id = :t
        UNION ALL SELECT 's', id::text, secret || coalesce(expires_at::text, ''), created_at
            FROM connector_secrets WHERE tenant_id = :t
        ORDER BY 1, 2"""
    async with owner_db.transaction(PLATFORM) as session:
        return [tuple(row) for row in (await session.execute(text(sql), {"t": tenant_id})).all()]


async def test_another_operator_cannot_see_rotate_or_disable_a_connector(callers: Callers, owner_db: Database) -> None:
    alpha, beta = await callers.operator(), await callers.operator()
    created = await create(alpha)
    await create(beta, name="Beta's own")
    connector_id = created["connector"]["id"]
    assert alpha.tenant_id is not None
    before = await _fingerprint(owner_db, alpha.tenant_id)

    assert (await beta.data(NODE, {"id": connector_id}))["node"] is None
    assert [c["name"] for c in (await beta.data(LIST))["connectors"]] == ["Beta's own"]
    for document, variables in (
        (ROTATE, {"id": connector_id, "hours": 0}),
        (DISABLE, {"id": connector_id}),
        (ENABLE, {"id": connector_id}),
    ):
        assert await beta.error_code(document, variables) == "NOT_FOUND"
    assert await _fingerprint(owner_db, alpha.tenant_id) == before
    # Neither the city nor drivers see connectors.
    for caller in (callers.city(), await callers.driver(), callers.anonymous()):
        assert (await caller.data(NODE, {"id": connector_id}))["node"] is None
        assert await caller.error_code(LIST) == "FORBIDDEN"


async def test_operator_staff_read_connectors_but_cannot_change_them(callers: Callers, owner_db: Database) -> None:
    admin = await callers.operator()
    staff = await callers.operator(role="operator_staff", tenant_id=admin.tenant_id)
    created = await create(admin)
    connector_id = created["connector"]["id"]
    assert [c["id"] for c in (await staff.data(LIST))["connectors"]] == [connector_id]
    assert admin.tenant_id is not None
    before = await _fingerprint(owner_db, admin.tenant_id)
    body = await staff.post(CREATE, {"input": {"name": "Sneaky", "format": "NATIVE"}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["data"] is None
    for document, variables in ((ROTATE, {"id": connector_id, "hours": 1}), (DISABLE, {"id": connector_id})):
        assert await staff.error_code(document, variables) == "FORBIDDEN"
    assert await _fingerprint(owner_db, admin.tenant_id) == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"name": "  "}, "name"), ({"timeZone": "Mars/Olympus"}, "time_zone")],
)
async def test_invalid_connectors_are_refused_and_nothing_is_written(
    callers: Callers, owner_db: Database, fields: dict[str, str], field: str
) -> None:
    admin = await callers.operator()
    body = await admin.post(CREATE, {"input": {"name": "Valid", "format": "CDS", **fields}})
    assert body["errors"][0]["extensions"] == {"code": "INVALID_INPUT", "field": field}
    assert admin.tenant_id is not None
    assert await _fingerprint(owner_db, admin.tenant_id) == []


async def test_a_wrong_kind_of_id_is_a_typed_error(callers: Callers) -> None:
    admin = await callers.operator()
    space_like = relay.GlobalID("Space", str(uuid.uuid4()))
    assert await admin.error_code(DISABLE, {"id": str(space_like)}) == "INVALID_ID"


async def test_webhook_lookup_of_unknown_or_unscoped_connectors_finds_nothing(callers: Callers, db: Database) -> None:
    admin = await callers.operator()
    connector_id = row_id((await create(admin))["connector"]["id"])
    async with db.transaction(AUTH) as session:
        assert await service.connector_for_webhook(session, uuid.uuid4(), datetime.now(UTC)) is None
    for scope in (Scope("anonymous"), Scope("city"), Scope("operator", tenant_id=uuid.uuid4())):
        async with db.transaction(scope) as session:
            assert await service.connector_for_webhook(session, connector_id, datetime.now(UTC)) is None


async def test_service_refusals_name_the_problem(db: Database) -> None:
    async with db.transaction(PLATFORM) as session:
        tenant = await service.create_tenant(session, slug=f"conn-{uuid.uuid4().hex[:8]}", name="Svc")
    async with db.transaction(PLATFORM) as session:
        with pytest.raises(InvalidInput) as caught:
            await service.create_connector(session, tenant_id=tenant.id, name="x", format="csv")
        assert caught.value.details["field"] == "format"
        with pytest.raises(InvalidInput) as caught:
            await service.create_connector(session, tenant_id=tenant.id, name="x", format="cds", auth_mode="basic")
        assert caught.value.details["field"] == "auth_mode"
        with pytest.raises(NotFound) as caught:
            await service.create_connector(session, tenant_id=uuid.uuid4(), name="x", format="cds")
        assert caught.value.code == "TENANT_NOT_FOUND"
        with pytest.raises(NotFound) as caught:
            await service.rotate_connector_secret(session, uuid.uuid4(), tenant_id=None)
        assert caught.value.code == "NOT_FOUND"
