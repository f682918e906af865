"""payments: drivers' payments (the outbox of provider calls) and refunds; payment-provider connector formats

Row-level security: an operator (and its connectors, under which provider callbacks and payment jobs run) reads and
writes its own tenant's payments and refunds; a driver reads their own payments and refunds across operators (they
are written in the operator's scope); the city reads across tenants; the platform everything. Connectors gain the
formats `sandbox_pay` and `wechatpay_v3` and the auth mode `provider` (the provider's own callback signature).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.config import get_settings
from tenants import rls

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRANTS = {"payments": "SELECT, INSERT, UPDATE", "payment_refunds": "SELECT, INSERT, UPDATE"}
POLICIES = """
CREATE POLICY city_read ON payments FOR SELECT USING ((SELECT app_role()) = 'city');
CREATE POLICY city_read ON payment_refunds FOR SELECT USING ((SELECT app_role()) = 'city');
CREATE POLICY driver_read ON payments FOR SELECT
    USING ((SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id()));
CREATE POLICY driver_read ON payment_refunds FOR SELECT
    USING ((SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id()));
"""
FORMATS_BEFORE = "('native', 'tts_v3', 'chirpstack_v4', 'cds', 'plate_recognizer', 'openalpr')"
FORMATS_AFTER = (
    "('native', 'tts_v3', 'chirpstack_v4', 'cds', 'plate_recognizer', 'openalpr', 'sandbox_pay', 'wechatpay_v3')"
)


def _connector_checks(formats: str, modes: str) -> None:
    op.drop_constraint(op.f("ck_connectors_format_known"), "connectors", type_="check")
    op.drop_constraint(op.f("ck_connectors_auth_mode_known"), "connectors", type_="check")
    op.create_check_constraint(op.f("ck_connectors_format_known"), "connectors", f"format IN {formats}")
    op.create_check_constraint(op.f("ck_connectors_auth_mode_known"), "connectors", f"auth_mode IN {modes}")


def upgrade() -> None:
    _connector_checks(FORMATS_AFTER, "('signature', 'secret', 'provider')")
    op.create_table(
        "payments",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("driver_id", sa.UUID(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.UUID(), nullable=True),
        sa.Column("facility_id", sa.UUID(), nullable=True),
        sa.Column("plate", sa.Text(), nullable=True),
        sa.Column("method", sa.Text(), server_default="charge", nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("currency", sa.Text(), server_default="CNY", nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="created", nullable=False),
        sa.Column("provider_reference", sa.Text(), nullable=True),
        sa.Column("failure_code", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("refunded_fen", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("refunding_fen", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("arrears_fen", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('created', 'requested', 'succeeded', 'failed', 'canceled', 'unknown')",
            name=op.f("ck_payments_state_known"),
        ),
        sa.CheckConstraint(
            "purpose IN ('lot_session', 'street_session', 'arrears', 'pass')", name=op.f("ck_payments_purpose_known")
        ),
        sa.CheckConstraint("method IN ('charge', 'deduct')", name=op.f("ck_payments_method_known")),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_payments_amount_positive")),
        sa.CheckConstraint("refunded_fen >= 0 AND refunding_fen >= 0", name=op.f("ck_payments_refunds_nonnegative")),
        sa.CheckConstraint(
            "refunded_fen + refunding_fen <= amount_fen", name=op.f("ck_payments_refunds_within_amount")
        ),
        sa.CheckConstraint(
            "arrears_fen >= 0 AND arrears_fen <= amount_fen", name=op.f("ck_payments_arrears_within_amount")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_payments_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["users.id"], name=op.f("fk_payments_driver_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_payments")),
    )
    op.create_index("ix_payments_id", "payments", ["id"], unique=True)
    op.create_index("uq_payments_idempotency", "payments", ["tenant_id", "driver_id", "idempotency_key"], unique=True)
    op.create_index("ix_payments_driver", "payments", ["driver_id", "created_at"])
    op.create_index("ix_payments_tenant_created", "payments", ["tenant_id", "created_at"])
    op.create_index(
        "ix_payments_unsettled",
        "payments",
        ["updated_at"],
        postgresql_where=sa.text("state IN ('created', 'requested', 'unknown')"),
    )
    op.create_index("ix_payments_arrears", "payments", ["driver_id"], postgresql_where=sa.text("arrears_fen > 0"))
    op.create_table(
        "payment_refunds",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("payment_id", sa.UUID(), nullable=False),
        sa.Column("driver_id", sa.UUID(), nullable=True),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="created", nullable=False),
        sa.Column("provider_reference", sa.Text(), nullable=True),
        sa.Column("failure_code", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('created', 'requested', 'succeeded', 'failed', 'unknown')",
            name=op.f("ck_payment_refunds_state_known"),
        ),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_payment_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "payment_id"],
            ["payments.tenant_id", "payments.id"],
            name=op.f("fk_payment_refunds_tenant_id_payments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_payment_refunds")),
    )
    op.create_index("ix_payment_refunds_id", "payment_refunds", ["id"], unique=True)
    op.create_index("ix_payment_refunds_payment", "payment_refunds", ["tenant_id", "payment_id"])
    op.create_index(
        "uq_payment_refunds_idempotency", "payment_refunds", ["tenant_id", "payment_id", "idempotency_key"], unique=True
    )
    app_role = get_settings().app_role
    for table, privileges in GRANTS.items():
        rls.run_script(rls.grant_tables(app_role, [table], privileges))
        rls.run_script(rls.tenant_private(table))
    rls.run_script(POLICIES)


def downgrade() -> None:
    op.drop_table("payment_refunds")
    op.drop_table("payments")
    op.execute("DELETE FROM connectors WHERE auth_mode = 'provider'")
    _connector_checks(FORMATS_BEFORE, "('signature', 'secret')")
