"""The accept path's guarantees with the one-statement accept (`inbox_accept`, migration 0022): a disable or a
rotation takes effect at once whatever the API cached, duplicates are counted, nothing partial is written, and the
statement runs under row-level security as the app role, leaving a caller's own scope as it was."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from connectors import http as connectors_http
from connectors import signatures
from hub.db import Database
from hub.ingest import group_commit, repository
from tests.ingest.conftest import Site, WebhookConnector
from tests.ingest.test_webhooks import inbox_states, native_event, post_signed, post_with_secret


async def _inbox_count(owner_db: Database, tenant_id: uuid.UUID) -> int:
    async with owner_db.engine.connect() as conn:
        return (
            await conn.execute(text("SELECT count(*) FROM inbox_events WHERE tenant_id = :t"), {"t": tenant_id})
        ).scalar_one()


def _columns(source_event_ids: list[str], occurred_at: datetime | None = None) -> dict[str, list[Any]]:
    at = occurred_at or datetime.now(UTC)
    count = len(source_event_ids)
    return {
        "ids": [uuid.uuid4() for _ in range(count)],
        "source_event_ids": source_event_ids,
        "kinds": ["occupancy"] * count,
        "device_external_ids": ["MAG-1"] * count,
        "occurred_ats": [at] * count,
        "bodies": ['{"occupied": true}'] * count,
        "image_refs": [None] * count,
    }


async def test_the_202_comes_after_the_commit_and_a_duplicate_is_counted(
    client, site: Site, add_connector, owner_db: Database
) -> None:
    connector = await add_connector(site, "native")
    event = native_event("MAG-1", True, datetime.now(UTC))
    first = await post_signed(client, connector, event, webhook_id="msg_once")
    assert first.status_code == 202 and first.json() == {"accepted": 1, "duplicates": 0, "ignored": 0}
    # Another connection sees the row as soon as the sender has its answer: it was committed before.
    assert await _inbox_count(owner_db, site.tenant_id) == 1
    again = await post_signed(client, connector, event, webhook_id="msg_once")
    assert again.status_code == 202 and again.json() == {"accepted": 0, "duplicates": 1, "ignored": 0}
    assert await _inbox_count(owner_db, site.tenant_id) == 1


async def test_a_disabled_connector_is_refused_at_once_although_the_api_cached_it_enabled(
    client, site: Site, add_connector, owner_db: Database
) -> None:
    connector = await add_connector(site, "native")
    assert (await post_signed(client, connector, native_event("MAG-1", True, datetime.now(UTC)))).status_code == 202
    async with owner_db.engine.begin() as conn:  # the operator disables it; this process still caches it enabled
        await conn.execute(text("UPDATE connectors SET disabled_at = now() WHERE id = :id"), {"id": connector.id})

    refused = await post_signed(client, connector, native_event("MAG-1", False, datetime.now(UTC)))
    assert refused.status_code == 403 and refused.json()["error"] == "connector_disabled"
    assert await _inbox_count(owner_db, site.tenant_id) == 1
    # The stale view was dropped: the next request is refused before any work.
    assert (await post_signed(client, connector, native_event("MAG-1", False, datetime.now(UTC)))).status_code == 403


async def _rotate_without_overlap(owner_db: Database, site: Site, connector: WebhookConnector, secret: str) -> None:
    async with owner_db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE connector_secrets SET expires_at = now() WHERE tenant_id = :t AND connector_id = :c"),
            {"t": site.tenant_id, "c": connector.id},
        )
        await conn.execute(
            text("INSERT INTO connector_secrets (tenant_id, connector_id, secret) VALUES (:t, :c, :s)"),
            {"t": site.tenant_id, "c": connector.id, "s": secret},
        )


async def test_a_signing_secret_rotated_out_is_refused_at_once_and_the_new_one_accepted(
    client, site: Site, add_connector, owner_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connectors_http, "RELOAD_AFTER_FAILURE_SECONDS", 0.0)
    connector = await add_connector(site, "native")
    assert (await post_signed(client, connector, native_event("MAG-1", True, datetime.now(UTC)))).status_code == 202
    new_secret = signatures.generate_secret()
    await _rotate_without_overlap(owner_db, site, connector, new_secret)

    # This process still caches the old secret: the signature checks out here, the inbox refuses it.
    old = await post_signed(client, connector, native_event("MAG-1", False, datetime.now(UTC)))
    assert old.status_code == 401 and old.json()["error"] == "secret_expired"
    assert await _inbox_count(owner_db, site.tenant_id) == 1
    new = await post_signed(client, connector, native_event("MAG-1", False, datetime.now(UTC)), secret=new_secret)
    assert new.status_code == 202 and new.json()["accepted"] == 1


async def test_a_secret_rotated_in_is_accepted_before_the_cached_view_expires(
    client, site: Site, add_connector, owner_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connectors_http, "RELOAD_AFTER_FAILURE_SECONDS", 0.0)
    connector = await add_connector(site, "native", auth_mode="secret")
    first = await post_with_secret(client, connector, native_event("MAG-1", True, datetime.now(UTC)))
    assert first.status_code == 202
    new_secret = f"token-{uuid.uuid4().hex}"
    await _rotate_without_overlap(owner_db, site, connector, new_secret)

    rotated = WebhookConnector(connector.id, new_secret)
    with_new = await post_with_secret(client, rotated, native_event("MAG-1", False, datetime.now(UTC)))
    assert with_new.status_code == 202 and with_new.json()["accepted"] == 1
    with_old = await post_with_secret(client, connector, native_event("MAG-1", True, datetime.now(UTC)))
    assert with_old.status_code == 401
    assert await _inbox_count(owner_db, site.tenant_id) == 2


@asynccontextmanager
async def _app_connection(db: Database) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the app role outside any transaction, as the webhook's accept uses one."""
    async with db.engine.connect() as connection:
        yield (await connection.get_raw_connection()).driver_connection


async def test_the_accept_statement_runs_as_the_app_role_under_row_level_security(db: Database) -> None:
    async with _app_connection(db) as conn:
        invoker = await conn.fetchrow(
            "SELECT p.prosecdef, r.rolbypassrls, r.rolsuper FROM pg_proc p, pg_roles r "
            "WHERE p.proname = 'inbox_accept' AND r.rolname = current_user"
        )
    assert invoker is not None and not invoker["prosecdef"], "inbox_accept must run as its caller"
    assert not invoker["rolbypassrls"] and not invoker["rolsuper"]


async def test_the_accept_statement_counts_duplicates_and_writes_all_or_nothing(
    db: Database, site: Site, add_connector, callers, owner_db: Database
) -> None:
    connector = await add_connector(site, "native")
    async with _app_connection(db) as conn:
        written = await repository.accept_inbox_events(
            conn, site.tenant_id, connector.id, connector.secret, _columns(["a", "a", "b"])
        )
        assert written.refusal is None and len(written.accepted) == 2  # "a" twice in one request: one duplicate
        again = await repository.accept_inbox_events(
            conn, site.tenant_id, connector.id, connector.secret, _columns(["b", "c"])
        )
        assert again.refusal is None and len(again.accepted) == 1
        assert not conn.is_in_transaction()
        # Its scope ended with its own implicit transaction: this connection sees no tenant's rows now.
        assert await conn.fetchval("SELECT count(*) FROM inbox_events") == 0

        # One bad event (no time) and the whole request is rolled back; the connection stays usable.
        columns = _columns(["d", "e"])
        columns["occurred_ats"] = [datetime.now(UTC), None]
        with pytest.raises(asyncpg.NotNullViolationError):
            await repository.accept_inbox_events(conn, site.tenant_id, connector.id, connector.secret, columns)
        assert not conn.is_in_transaction()

        # Another tenant cannot write through this connector, whatever tenant it names.
        other = await callers.operator()
        wrong = await repository.accept_inbox_events(conn, other.tenant_id, connector.id, None, _columns(["f"]))
        assert wrong.refusal == "unknown_connector" and wrong.accepted == []
    assert [state for state, _ in await inbox_states(owner_db, site.tenant_id)] == ["pending"] * 3


async def test_the_accept_statement_leaves_a_callers_scope_as_it_was(
    db: Database, site: Site, add_connector, callers
) -> None:
    connector = await add_connector(site, "native")
    other = await callers.operator()
    async with _app_connection(db) as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('app.role', 'operator', true), set_config('app.tenant_id', $1, true)",
            str(other.tenant_id),
        )
        written = await repository.accept_inbox_events(conn, site.tenant_id, connector.id, None, _columns(["x"]))
        assert written.refusal is None and len(written.accepted) == 1
        assert await conn.fetchval("SELECT current_setting('app.tenant_id')") == str(other.tenant_id)
        assert await conn.fetchval("SELECT current_setting('app.role')") == "operator"
        # So the caller still sees only its own tenant's inbox (empty), not the row just written.
        assert await conn.fetchval("SELECT count(*) FROM inbox_events") == 0


async def test_concurrent_requests_wait_for_one_connector_lookup(
    db: Database, site: Site, add_connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = await add_connector(site, "native")
    lookups = 0
    real_lookup = connectors_http.tenants.webhook_connector

    async def counted_lookup(database: Database, connector_id: uuid.UUID) -> Any:
        nonlocal lookups
        lookups += 1
        return await real_lookup(database, connector_id)

    monkeypatch.setattr(connectors_http.tenants, "webhook_connector", counted_lookup)
    cache = connectors_http.CredentialCache()
    found = await asyncio.gather(*(cache.get(db, connector.id) for _ in range(20)))
    assert lookups == 1
    assert all(entry is not None and entry.id == connector.id for entry in found)


async def test_concurrent_requests_share_statements_and_each_learns_its_own_duplicates(
    db: Database, site: Site, add_connector, owner_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = await add_connector(site, "native")
    statements: list[int] = []
    write = repository.accept_inbox_events

    async def counted(conn, tenant_id, connector_id, secret, columns):  # type: ignore[no-untyped-def]
        statements.append(len(columns["ids"]))
        return await write(conn, tenant_id, connector_id, secret, columns)

    monkeypatch.setattr(repository, "accept_inbox_events", counted)
    # 30 single-event requests at once; "shared" is sent by two of them (a sender's retry racing the first try).
    sources = [[f"evt-{n}"] for n in range(30)]
    sources[7] = sources[3] = ["shared"]
    results = await asyncio.gather(
        *(group_commit.accept(db, site.tenant_id, connector.id, connector.secret, _columns(s)) for s in sources)
    )
    assert all(result.refusal is None for result in results)
    assert (
        sorted(len(result.accepted) for result in results) == [0] + [1] * 29
    )  # one of the two learns "shared" was a duplicate
    assert len({row_id for result in results for row_id in result.accepted}) == 29
    assert sum(statements) == 30 and len(statements) < 30  # requests waiting together went in one statement
    assert len(await inbox_states(owner_db, site.tenant_id)) == 29

    # A refusal reaches every request of its statement, and nothing of theirs is written.
    refused = await asyncio.gather(
        *(
            group_commit.accept(db, site.tenant_id, connector.id, "not-the-secret", _columns([f"x-{n}"]))
            for n in range(5)
        )
    )
    assert {(result.refusal, tuple(result.accepted)) for result in refused} == {("secret_expired", ())}
    assert len(await inbox_states(owner_db, site.tenant_id)) == 29
