"""street sessions: on-street sessions by space code, their actions, curb sightings decided, enforcement flags

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.config import get_settings
from tenants import rls

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "state IN ('active', 'extended')"
HELD_SPAN = "tstzrange(started_at, COALESCE(ended_at, paid_until, 'infinity'::timestamptz), '[)')"

TENANT_TABLES = ["street_sessions", "street_session_actions", "street_sightings", "street_enforcement_flags"]
# Actions and decided sightings are only ever added.
GRANTS = {
    "street_sessions": "SELECT, INSERT, UPDATE",
    "street_session_actions": "SELECT, INSERT",
    "street_sightings": "SELECT, INSERT",
    "street_enforcement_flags": "SELECT, INSERT, UPDATE",
}
# The city reads sessions and flags across operators. A driver starts, extends and ends their own sessions at any
# operator (a driver's transaction has no tenant), and reads their own sessions and actions.
POLICIES = """
CREATE POLICY city_read ON street_sessions FOR SELECT USING ((SELECT app_role()) = 'city');
CREATE POLICY city_read ON street_session_actions FOR SELECT USING ((SELECT app_role()) = 'city');
CREATE POLICY city_read ON street_enforcement_flags FOR SELECT USING ((SELECT app_role()) = 'city');
CREATE POLICY driver_own ON street_sessions
    USING ((SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id()))
    WITH CHECK ((SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id()));
CREATE POLICY driver_read ON street_session_actions FOR SELECT
    USING ((SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id()));
CREATE POLICY driver_add ON street_session_actions FOR INSERT
    WITH CHECK ((SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id()));
"""


def upgrade() -> None:
    # Two sessions of one bay may not overlap in time: an exclusion constraint on (tenant, space, span), which
    # needs btree_gist for the equality parts (a trusted extension, part of PostgreSQL's contrib).
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "street_sessions",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("facility_id", sa.UUID(), nullable=False),
        sa.Column("space_id", sa.UUID(), nullable=False),
        sa.Column("space_code", sa.Text(), nullable=False),
        sa.Column("driver_id", sa.UUID(), nullable=True),
        sa.Column("plate", sa.Text(), nullable=False),
        sa.Column("vehicle_class", sa.Text(), server_default="standard", nullable=False),
        sa.Column("payment_mode", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="active", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prepaid_minutes", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("paid_fen", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("price_fen", sa.Integer(), nullable=True),
        sa.Column("refund_fen", sa.Integer(), nullable=True),
        sa.Column("charge_fen", sa.Integer(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("time_zone", sa.Text(), nullable=False),
        sa.Column("quote", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("tariff_version_id", sa.UUID(), nullable=False),
        sa.Column("authorization_id", sa.UUID(), nullable=True),
        sa.Column("sighting_id", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('active', 'extended', 'ended_early', 'expired', 'ended_by_sensor', 'ended_by_driver')",
            name=op.f("ck_street_sessions_state_known"),
        ),
        sa.CheckConstraint(
            "payment_mode IN ('prepaid', 'postpaid')", name=op.f("ck_street_sessions_payment_mode_known")
        ),
        sa.CheckConstraint("origin IN ('driver', 'camera')", name=op.f("ck_street_sessions_origin_known")),
        sa.CheckConstraint(f"({OPEN}) = (ended_at IS NULL)", name=op.f("ck_street_sessions_open_has_no_end")),
        sa.CheckConstraint(
            "(payment_mode = 'prepaid') = (paid_until IS NOT NULL)",
            name=op.f("ck_street_sessions_prepaid_has_paid_end"),
        ),
        sa.CheckConstraint(
            "paid_until IS NULL OR paid_until > started_at", name=op.f("ck_street_sessions_paid_end_after_start")
        ),
        sa.CheckConstraint(
            "ended_at IS NULL OR ended_at >= started_at", name=op.f("ck_street_sessions_ends_after_start")
        ),
        sa.CheckConstraint("paid_fen >= 0 AND prepaid_minutes >= 0", name=op.f("ck_street_sessions_paid_nonnegative")),
        sa.CheckConstraint("price_fen IS NULL OR price_fen >= 0", name=op.f("ck_street_sessions_price_nonnegative")),
        sa.CheckConstraint(
            "refund_fen IS NULL OR (refund_fen >= 0 AND payment_mode = 'prepaid')",
            name=op.f("ck_street_sessions_refund_prepaid_only"),
        ),
        sa.CheckConstraint(
            "charge_fen IS NULL OR (charge_fen >= 0 AND payment_mode <> 'prepaid')",
            name=op.f("ck_street_sessions_charge_postpaid_only"),
        ),
        sa.ForeignKeyConstraint(
            ["authorization_id"],
            ["auto_pay_authorizations.id"],
            name=op.f("fk_street_sessions_authorization_id_auto_pay_authorizations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["users.id"], name=op.f("fk_street_sessions_driver_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "facility_id"],
            ["facilities.tenant_id", "facilities.id"],
            name=op.f("fk_street_sessions_tenant_id_facilities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "space_id"],
            ["spaces.tenant_id", "spaces.id"],
            name=op.f("fk_street_sessions_tenant_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "tariff_version_id"],
            ["tariffs.tenant_id", "tariffs.id"],
            name=op.f("fk_street_sessions_tenant_id_tariffs"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_street_sessions_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_street_sessions")),
    )
    op.execute(
        "ALTER TABLE street_sessions ADD CONSTRAINT street_sessions_one_per_bay "
        f"EXCLUDE USING gist (tenant_id WITH =, space_id WITH =, ({HELD_SPAN}) WITH &&)"
    )
    op.create_index("ix_street_sessions_id", "street_sessions", ["id"], unique=False)
    op.create_index(
        "ix_street_sessions_facility_started",
        "street_sessions",
        ["tenant_id", "facility_id", "started_at"],
        unique=False,
    )
    op.create_index(
        "ix_street_sessions_driver",
        "street_sessions",
        ["driver_id", "started_at"],
        unique=False,
        postgresql_where=sa.text("driver_id IS NOT NULL"),
    )
    op.create_index(
        "ix_street_sessions_open",
        "street_sessions",
        ["tenant_id", "space_id"],
        unique=False,
        postgresql_where=sa.text(OPEN),
    )
    op.create_index(
        "uq_street_sessions_sighting",
        "street_sessions",
        ["tenant_id", "sighting_id"],
        unique=True,
        postgresql_where=sa.text("sighting_id IS NOT NULL"),
    )

    op.create_table(
        "street_session_actions",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("driver_id", sa.UUID(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("paid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("charge_fen", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("refund_fen", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "kind IN ('start', 'extend', 'end', 'expire', 'camera_start', 'sensor_end')",
            name=op.f("ck_street_session_actions_kind_known"),
        ),
        sa.CheckConstraint(
            "charge_fen >= 0 AND refund_fen >= 0", name=op.f("ck_street_session_actions_amounts_nonnegative")
        ),
        sa.CheckConstraint("minutes IS NULL OR minutes > 0", name=op.f("ck_street_session_actions_minutes_positive")),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["users.id"], name=op.f("fk_street_session_actions_driver_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "session_id"],
            ["street_sessions.tenant_id", "street_sessions.id"],
            name=op.f("fk_street_session_actions_tenant_id_street_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_street_session_actions")),
    )
    op.create_index(
        "ix_street_session_actions_session", "street_session_actions", ["tenant_id", "session_id", "at"], unique=False
    )
    op.create_index(
        "uq_street_session_actions_key",
        "street_session_actions",
        ["tenant_id", "driver_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )

    op.create_table(
        "street_sightings",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("sighting_id", sa.UUID(), nullable=False),
        sa.Column("space_id", sa.UUID(), nullable=False),
        sa.Column("plate", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("session_id", sa.UUID(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('started', 'no_authorization', 'space_has_session', 'bay_vacant', 'no_tariff')",
            name=op.f("ck_street_sightings_outcome_known"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "space_id"],
            ["spaces.tenant_id", "spaces.id"],
            name=op.f("fk_street_sightings_tenant_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "sighting_id", name=op.f("pk_street_sightings")),
    )

    op.create_table(
        "street_enforcement_flags",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("facility_id", sa.UUID(), nullable=False),
        sa.Column("space_id", sa.UUID(), nullable=False),
        sa.Column("space_code", sa.Text(), nullable=False),
        sa.Column("occupied_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unpaid_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("session_id", sa.UUID(), nullable=True),
        sa.CheckConstraint(
            "resolution IS NULL OR resolution IN ('session_started', 'vacated', 'status_changed')",
            name=op.f("ck_street_enforcement_flags_resolution_known"),
        ),
        sa.CheckConstraint(
            "(resolved_at IS NULL) = (resolution IS NULL)", name=op.f("ck_street_enforcement_flags_resolved_has_reason")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "facility_id"],
            ["facilities.tenant_id", "facilities.id"],
            name=op.f("fk_street_enforcement_flags_tenant_id_facilities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "space_id"],
            ["spaces.tenant_id", "spaces.id"],
            name=op.f("fk_street_enforcement_flags_tenant_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_street_enforcement_flags")),
    )
    op.create_index("ix_street_enforcement_flags_id", "street_enforcement_flags", ["id"], unique=False)
    op.create_index(
        "ix_street_enforcement_flags_facility",
        "street_enforcement_flags",
        ["tenant_id", "facility_id", "raised_at"],
        unique=False,
    )
    op.create_index(
        "uq_street_enforcement_flags_open",
        "street_enforcement_flags",
        ["tenant_id", "space_id"],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )

    app_role = get_settings().app_role
    for table, privileges in GRANTS.items():
        rls.run_script(rls.grant_tables(app_role, [table], privileges))
    for table in TENANT_TABLES:
        rls.run_script(rls.tenant_private(table))
    rls.run_script(POLICIES)


def downgrade() -> None:
    op.drop_index("uq_street_enforcement_flags_open", table_name="street_enforcement_flags")
    op.drop_index("ix_street_enforcement_flags_facility", table_name="street_enforcement_flags")
    op.drop_index("ix_street_enforcement_flags_id", table_name="street_enforcement_flags")
    op.drop_table("street_enforcement_flags")
    op.drop_table("street_sightings")
    op.drop_index("uq_street_session_actions_key", table_name="street_session_actions")
    op.drop_index("ix_street_session_actions_session", table_name="street_session_actions")
    op.drop_table("street_session_actions")
    op.drop_index("uq_street_sessions_sighting", table_name="street_sessions")
    op.drop_index("ix_street_sessions_open", table_name="street_sessions")
    op.drop_index("ix_street_sessions_driver", table_name="street_sessions")
    op.drop_index("ix_street_sessions_facility_started", table_name="street_sessions")
    op.drop_index("ix_street_sessions_id", table_name="street_sessions")
    op.drop_table("street_sessions")
    # btree_gist stays: other objects may have come to use it.
