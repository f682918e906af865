"""auto-pay opening per operator, curb prepay refunds, e-invoice requests

- tenants.auto_pay_opens_on: whether an auto-pay exit opens the barrier when the deduction is decided (`accepted`,
  today's behaviour and the default) or only once the provider says it succeeded (`succeeded`).
- payment_refunds.source: where a refund's money comes from in the ledger (`payable`: an operator's refund;
  `prepaid`: the unused part of a curb prepay released when its hold was posted for the true price).
- invoice_requests: a driver's request for an e-invoice of a payment (state `requested`; issuing is a later
  integration). Tenant-private (RLS enabled and forced); a driver reads their own across operators, the city all.
- payments: a driver may insert their own curb prepay payment (purpose street_session) in the transaction that
  starts or extends their street session (a driver's transaction has no tenant, as street sessions' own policies
  allow); everything else about payments is still written in the operator's scope.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-22 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.config import get_settings
from tenants import rls

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICIES = """
CREATE POLICY city_read ON invoice_requests FOR SELECT USING ((SELECT app_role()) = 'city');
CREATE POLICY driver_read ON invoice_requests FOR SELECT
    USING ((SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id()));
CREATE POLICY driver_prepay ON payments FOR INSERT
    WITH CHECK ((SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id())
                AND purpose = 'street_session' AND state = 'created');
"""


def upgrade() -> None:
    op.add_column("tenants", sa.Column("auto_pay_opens_on", sa.Text(), server_default="accepted", nullable=False))
    op.create_check_constraint(
        op.f("ck_tenants_auto_pay_opens_on_known"), "tenants", "auto_pay_opens_on IN ('accepted', 'succeeded')"
    )
    op.add_column("payment_refunds", sa.Column("source", sa.Text(), server_default="payable", nullable=False))
    op.create_check_constraint(
        op.f("ck_payment_refunds_source_known"), "payment_refunds", "source IN ('payable', 'prepaid')"
    )
    op.create_table(
        "invoice_requests",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("payment_id", sa.UUID(), nullable=False),
        sa.Column("driver_id", sa.UUID(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("tax_id", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), server_default="requested", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('requested', 'issued', 'rejected')", name=op.f("ck_invoice_requests_state_known")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_invoice_requests_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "payment_id"],
            ["payments.tenant_id", "payments.id"],
            name=op.f("fk_invoice_requests_tenant_id_payments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["driver_id"], ["users.id"], name=op.f("fk_invoice_requests_driver_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoice_requests")),
    )
    op.create_index("ix_invoice_requests_id", "invoice_requests", ["id"], unique=True)
    op.create_index("uq_invoice_requests_payment", "invoice_requests", ["tenant_id", "payment_id"], unique=True)
    op.create_index("ix_invoice_requests_driver", "invoice_requests", ["driver_id", "created_at"])
    rls.run_script(rls.grant_tables(get_settings().app_role, ["invoice_requests"], "SELECT, INSERT, UPDATE"))
    rls.run_script(rls.tenant_private("invoice_requests"))
    rls.run_script(POLICIES)


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS driver_prepay ON payments")
    op.drop_table("invoice_requests")
    op.drop_constraint(op.f("ck_payment_refunds_source_known"), "payment_refunds", type_="check")
    op.drop_column("payment_refunds", "source")
    op.drop_constraint(op.f("ck_tenants_auto_pay_opens_on_known"), "tenants", type_="check")
    op.drop_column("tenants", "auto_pay_opens_on")
