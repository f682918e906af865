"""Row-level security holds at the database itself, whatever the application code does."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from hub.db import PLATFORM, Database, Scope


async def _make_tenant(db: Database, slug: str) -> uuid.UUID:
    async with db.transaction(PLATFORM) as session:
        return (
            await session.execute(
                text(
                    "INSERT INTO tenants (slug, name, service_area) VALUES (:slug, :name, "
                    "ST_Multi(ST_MakeEnvelope(113.7, 22.4, 114.7, 22.9, 4326))) RETURNING id"
                ),
                {"slug": slug, "name": slug},
            )
        ).scalar_one()


async def test_app_role_cannot_bypass_rls(db: Database) -> None:
    async with db.transaction(Scope("anonymous")) as session:
        row = (
            await session.execute(text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"))
        ).one()
        owner = (
            await session.execute(text("SELECT tableowner = current_user FROM pg_tables WHERE tablename = 'spaces'"))
        ).scalar_one()
    assert tuple(row) == (False, False)
    assert owner is False


async def test_transaction_without_scope_sees_no_rows(db: Database) -> None:
    await _make_tenant(db, f"t-{uuid.uuid4().hex[:8]}")
    async with db.sessionmaker() as session, session.begin():
        assert (await session.execute(text("SELECT count(*) FROM tenants"))).scalar_one() == 0


async def test_operator_cannot_write_another_tenants_rows(db: Database) -> None:
    mine = await _make_tenant(db, f"a-{uuid.uuid4().hex[:8]}")
    theirs = await _make_tenant(db, f"b-{uuid.uuid4().hex[:8]}")
    insert = text(
        "INSERT INTO facilities (tenant_id, kind, name, geom, time_zone) "
        "VALUES (:tenant, 'lot', 'x', ST_GeomFromText('POINT(114 22.5)', 4326), 'Asia/Shanghai')"
    )
    async with db.transaction(Scope("operator", tenant_id=mine)) as session:
        await session.execute(insert, {"tenant": mine})
    try:
        async with db.transaction(Scope("operator", tenant_id=mine)) as session:
            await session.execute(insert, {"tenant": theirs})
    except Exception as exc:  # the policy's WITH CHECK refuses the row
        assert "row-level security" in str(exc)
    else:
        raise AssertionError("an operator wrote a row of another tenant")
    async with db.transaction(Scope("operator", tenant_id=theirs)) as session:
        assert (await session.execute(text("SELECT count(*) FROM facilities"))).scalar_one() == 0


# Tables every caller may read whole by design: none of them holds a tenant's data.
SHARED_TABLES = {"signing_keys"}


async def test_every_table_has_row_level_security_enabled_and_forced(owner_db: Database) -> None:
    """A new table without policies would be readable by every tenant through the app role; this catches it
    whoever adds the table (the list comes from the models, not from a hand-kept list)."""
    from hub.models import Base

    async with owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                "(SELECT count(*) FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
        )
        security = {name: (enabled, forced, policies) for name, enabled, forced, policies in rows}
    unprotected = {
        table: security.get(table)
        for table in Base.metadata.tables
        if table not in SHARED_TABLES and (security.get(table) is None or not all(security[table]))
    }
    assert unprotected == {}
