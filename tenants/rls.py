"""Row-level security as DDL: the scope functions, the app role's grants and each table's policies.

Migrations call these builders so the policies live in one readable place. The scope is read from
transaction-local settings that `hub.db.Database.transaction` sets; unset settings read as empty, which
matches no row: a transaction with no scope sees nothing.

Each call of `current_setting` is wrapped in a scalar sub-select inside the policies so PostgreSQL
evaluates it once per statement (an InitPlan), not once per row.
"""

from __future__ import annotations

SCOPE_FUNCTIONS = """
CREATE OR REPLACE FUNCTION app_role() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('app.role', true), '') $$;

CREATE OR REPLACE FUNCTION app_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE OR REPLACE FUNCTION app_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;
"""

DROP_SCOPE_FUNCTIONS = """
DROP FUNCTION IF EXISTS app_role();
DROP FUNCTION IF EXISTS app_tenant_id();
DROP FUNCTION IF EXISTS app_user_id();
"""

ROLE = "(SELECT app_role())"
TENANT = "(SELECT app_tenant_id())"
USER = "(SELECT app_user_id())"


def create_app_role(role: str) -> str:
    """The login role of the API and workers: not the owner, not a superuser, never bypasses RLS."""
    return f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO "{role}";
GRANT EXECUTE ON FUNCTION app_role(), app_tenant_id(), app_user_id() TO "{role}";
"""


def grant_tables(role: str, tables: list[str], privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> str:
    return "\n".join(f'GRANT {privileges} ON {table} TO "{role}";' for table in tables)


def _enable(table: str) -> str:
    return f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\nALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n"


def _platform(table: str) -> str:
    platform = f"{ROLE} = 'platform'"
    return f"CREATE POLICY platform_all ON {table} USING ({platform}) WITH CHECK ({platform});\n"


def tenant_private(table: str, tenant_column: str = "tenant_id") -> str:
    """Rows only their own tenant (operator or connector scope) and the platform may see or change."""
    return (
        _enable(table) + f"CREATE POLICY tenant_own ON {table} USING ({tenant_column} = {TENANT}) "
        f"WITH CHECK ({tenant_column} = {TENANT});\n" + _platform(table)
    )


def tenant_public_supply(table: str) -> str:
    """Supply rows: changed only by their tenant, read by the city, and read by drivers and anonymous
    callers while they are live (not retired)."""
    return (
        tenant_private(table)
        + f"CREATE POLICY city_read ON {table} FOR SELECT USING ({ROLE} = 'city');\n"
        + f"CREATE POLICY public_read ON {table} FOR SELECT "
        f"USING ({ROLE} IN ('anonymous', 'driver') AND retired_at IS NULL);\n"
    )


def driver_owned(table: str, owner_column: str = "driver_id") -> str:
    """Rows of one driver: visible to and changeable by that driver only (and the platform)."""
    return (
        _enable(table) + f"CREATE POLICY driver_own ON {table} USING ({ROLE} = 'driver' AND {owner_column} = {USER}) "
        f"WITH CHECK ({ROLE} = 'driver' AND {owner_column} = {USER});\n" + _platform(table)
    )


def drop_policies(table: str, names: list[str]) -> str:
    return "".join(f"DROP POLICY IF EXISTS {name} ON {table};\n" for name in names) + (
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;\nALTER TABLE {table} DISABLE ROW LEVEL SECURITY;\n"
    )


def run_script(sql: str) -> None:
    """Run a multi-statement SQL script inside an Alembic migration.

    asyncpg prepares each statement it is given and refuses several commands in one; its plain
    `execute` without arguments runs a script through the simple query protocol instead."""
    from alembic import op
    from sqlalchemy.util import await_only

    await_only(op.get_bind().connection.driver_connection.execute(sql))
