"""inbox: accept a webhook's events in one statement (`inbox_accept`)

A webhook's accept used to take three round trips to PostgreSQL (BEGIN with the connector's scope, the insert,
COMMIT); at a few thousand single-event requests a second the waiting and the protocol work cost more than the
insert. `inbox_accept` does it in one statement, which the API runs outside an explicit transaction, so PostgreSQL
commits it before it answers (and the API answers 202 after that):

1. sets the connector's scope (`app.role` = 'connector', `app.tenant_id`), transaction-local as everywhere;
2. refuses, writing nothing, when the connector does not exist in that tenant, is disabled, or (for senders that
   authenticate with a secret) the secret the request proved is no longer live: the API caches connectors for a
   few seconds, and this makes a disable or a rotation without overlap take effect at once for the inbox;
3. inserts the events with the ids the caller made (`p_ids`), skipping those already in the inbox (or twice in the
   call, the first one written) by the sender's id;
4. puts back the scope the caller had, so a caller inside a larger transaction keeps its own;
5. returns the refusal (null when accepted) and the ids of the rows written; the rest were duplicates.

The API writes the requests for one connector that arrive while its previous call is in flight together, in one call
(group commit, hub/ingest/group_commit.py); the ids written tell each request which of its own events were new.

SECURITY INVOKER: it runs as the app role, so row-level security applies to every row it reads or writes exactly
as it did to the statements it replaces; it can do nothing the app role could not do with `set_config` itself.
No `SET search_path` clause: it would only matter to a SECURITY DEFINER function, and it costs every call a
configuration change and its undoing (measured at about 5-10% of the statement's CPU in PostgreSQL).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-22 02:00:00
"""

from collections.abc import Sequence

from hub.config import get_settings
from tenants import rls

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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


def upgrade() -> None:
    rls.run_script(ACCEPT)
    app_role = get_settings().app_role
    # Functions are executable by PUBLIC unless revoked: only the app role accepts webhooks.
    rls.run_script(
        f'REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC;\nGRANT EXECUTE ON FUNCTION {SIGNATURE} TO "{app_role}";'
    )


def downgrade() -> None:
    rls.run_script(f"DROP FUNCTION {SIGNATURE};")
