"""notifications: drivers' notifications, operators' outbound webhook endpoints, their secrets and deliveries

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.config import get_settings
from tenants import rls

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ["webhook_endpoints", "webhook_endpoint_secrets", "notifications", "webhook_deliveries"]

# A driver reads the notifications sent to them, from every operator; only the tenant (or the platform) writes.
DRIVER_READ = """
CREATE POLICY driver_read ON notifications FOR SELECT
    USING ((SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id()));
"""


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("subject_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("driver_id", sa.UUID(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_notifications_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["users.id"], name=op.f("fk_notifications_driver_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_id", "notifications", ["id"], unique=False)
    op.create_index(
        "uq_notifications_idempotency_key", "notifications", ["tenant_id", "idempotency_key"], unique=True
    )
    op.create_index(
        "ix_notifications_driver_created",
        "notifications",
        ["driver_id", sa.text("created_at DESC"), sa.text("id DESC")],
        unique=False,
        postgresql_where=sa.text("driver_id IS NOT NULL"),
    )

    op.create_table(
        "webhook_endpoints",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("event_types", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("cardinality(event_types) >= 1", name=op.f("ck_webhook_endpoints_event_types_not_empty")),
        sa.CheckConstraint("consecutive_failures >= 0", name=op.f("ck_webhook_endpoints_failures_nonnegative")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_webhook_endpoints_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index("ix_webhook_endpoints_id", "webhook_endpoints", ["id"], unique=True)

    op.create_table(
        "webhook_endpoint_secrets",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("endpoint_id", sa.UUID(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            name=op.f("fk_webhook_endpoint_secrets_tenant_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_webhook_endpoint_secrets")),
    )
    op.create_index(
        "ix_webhook_endpoint_secrets_endpoint", "webhook_endpoint_secrets", ["tenant_id", "endpoint_id"], unique=False
    )

    op.create_table(
        "webhook_deliveries",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("endpoint_id", sa.UUID(), nullable=False),
        sa.Column("notification_id", sa.UUID(), nullable=False),
        sa.Column("state", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')", name=op.f("ck_webhook_deliveries_state_known")
        ),
        sa.CheckConstraint(
            "(state = 'pending') = (next_attempt_at IS NOT NULL)", name=op.f("ck_webhook_deliveries_pending_iff_due")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_webhook_deliveries_attempts_nonnegative")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_tenant_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "notification_id"],
            ["notifications.tenant_id", "notifications.id"],
            name=op.f("fk_webhook_deliveries_tenant_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index("ix_webhook_deliveries_id", "webhook_deliveries", ["id"], unique=False)
    op.create_index(
        "uq_webhook_deliveries_endpoint_notification",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "notification_id"],
        unique=True,
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_created",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
    )

    app_role = get_settings().app_role
    rls.run_script(rls.grant_tables(app_role, ["webhook_endpoints", "webhook_endpoint_secrets", "webhook_deliveries"]))
    # A notification is written once and never changed (deliveries carry the state).
    rls.run_script(rls.grant_tables(app_role, ["notifications"], "SELECT, INSERT"))
    for table in TENANT_TABLES:
        rls.run_script(rls.tenant_private(table))
    rls.run_script(DRIVER_READ)


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoint_secrets")
    op.drop_table("webhook_endpoints")
    op.drop_table("notifications")
