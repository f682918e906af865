"""inbox accept with the rows' ids: several webhooks' events written by one statement (group commit)

`inbox_accept` gains `p_ids`, the ids of the rows to write, made by the API. Requests for one connector that arrive
while its previous accept is in flight are written together by one call; the ids written tell each request which
of its events were new and which were duplicates (also of another request in the same call). Otherwise the function
is unchanged (0022): it sets the connector's scope, refuses a disabled connector or an expired secret writing
nothing, deduplicates by the sender's id, and puts back the caller's scope. SECURITY INVOKER: row-level security
applies as to the app role's own statements.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-22 03:30:00
"""

from collections.abc import Sequence

from hub.config import get_settings
from tenants import rls

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SIGNATURE = "inbox_accept(uuid, uuid, text, text[], text[], text[], timestamptz[], text[], text[])"
SIGNATURE = "inbox_accept(uuid, uuid, text, uuid[], text[], text[], text[], timestamptz[], text[], text[])"

ACCEPT = """
CREATE FUNCTION inbox_accept(
    p_tenant_id uuid,
    p_connector_id uuid,
    p_secret text,                      -- the secret the requests proved; null when the sender has none of ours
    p_ids uuid[],                       -- the rows' ids, made by the caller
    p_source_event_ids text[],
    p_kinds text[],
    p_device_external_ids text[],
    p_occurred_ats timestamptz[],
    p_bodies text[],                    -- JSON text
    p_image_refs text[],
    OUT refusal text,                   -- unknown_connector, connector_disabled, secret_expired; null: accepted
    OUT accepted_ids uuid[]             -- the rows written; the other events were duplicates
) LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    outer_role text := current_setting('app.role', true);
    outer_tenant text := current_setting('app.tenant_id', true);
    outer_user text := current_setting('app.user_id', true);
    is_disabled boolean;
BEGIN
    PERFORM set_config('app.role', 'connector', true),
            set_config('app.tenant_id', p_tenant_id::text, true),
            set_config('app.user_id', '', true);
    accepted_ids := '{}';

    SELECT c.disabled_at IS NOT NULL INTO is_disabled
    FROM connectors c WHERE c.tenant_id = p_tenant_id AND c.id = p_connector_id;
    IF NOT FOUND THEN
        refusal := 'unknown_connector';
    ELSIF is_disabled THEN
        refusal := 'connector_disabled';
    ELSIF p_secret IS NOT NULL AND NOT EXISTS (
        SELECT FROM connector_secrets s
        WHERE s.tenant_id = p_tenant_id AND s.connector_id = p_connector_id AND s.secret = p_secret
          AND (s.expires_at IS NULL OR s.expires_at > now())
    ) THEN
        refusal := 'secret_expired';
    ELSE
        WITH written AS (
            INSERT INTO inbox_events (tenant_id, id, connector_id, source_event_id, kind, device_external_id,
                                      occurred_at, body, image_ref)
            SELECT p_tenant_id, e.id, p_connector_id, e.source_event_id, e.kind, e.device_external_id,
                   e.occurred_at, e.body::jsonb, e.image_ref
            FROM unnest(p_ids, p_source_event_ids, p_kinds, p_device_external_ids, p_occurred_ats, p_bodies,
                        p_image_refs)
                 WITH ORDINALITY AS e(id, source_event_id, kind, device_external_id, occurred_at, body, image_ref, n)
            ORDER BY e.n                    -- the first of two requests sending one event is the one that wrote it
            ON CONFLICT (tenant_id, connector_id, source_event_id) DO NOTHING
            RETURNING id
        )
        SELECT coalesce(array_agg(written.id), '{}') INTO accepted_ids FROM written;
    END IF;

    PERFORM set_config('app.role', coalesce(outer_role, ''), true),
            set_config('app.tenant_id', coalesce(outer_tenant, ''), true),
            set_config('app.user_id', coalesce(outer_user, ''), true);
END
$$;
"""


def _grant(signature: str) -> None:
    app_role = get_settings().app_role
    # Functions are executable by PUBLIC unless revoked: only the app role accepts webhooks.
    rls.run_script(
        f'REVOKE ALL ON FUNCTION {signature} FROM PUBLIC;\nGRANT EXECUTE ON FUNCTION {signature} TO "{app_role}";'
    )


def upgrade() -> None:
    rls.run_script(f"DROP FUNCTION {OLD_SIGNATURE};")
    rls.run_script(ACCEPT)
    _grant(SIGNATURE)


def downgrade() -> None:
    import importlib.util
    from pathlib import Path

    rls.run_script(f"DROP FUNCTION {SIGNATURE};")
    # 0022's function, from its own migration (migrations are files, not a package).
    spec = importlib.util.spec_from_file_location(
        "inbox_accept_0022", Path(__file__).with_name("0022_inbox_accept_function.py")
    )
    assert spec is not None and spec.loader is not None
    older = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(older)
    rls.run_script(older.ACCEPT)
    _grant(OLD_SIGNATURE)
