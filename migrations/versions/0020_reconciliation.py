"""reconciliation items: differences between a provider's daily bill and the ledger

One row per (provider, business date, kind, out_trade_no) that differs: missing in the ledger, missing at the
provider, or amounts that differ (hub/settlement/reconciliation.py). Its difference was moved into suspense by an
idempotent ledger transfer named on the row. The tenant is null when the bill names no payment the hub knows: those
items are the platform's, so the key is the row's id and the tenant a column (the ledger's accounts do the same).

Row-level security: the platform admin reads and writes every item (runs and resolutions are platform work); an
operator reads its tenant's items and its admins may resolve them (UPDATE of its own rows only); the city reads none.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-23 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.config import get_settings
from tenants import rls

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "reconciliation_items"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("out_trade_no", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.UUID(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("provider_fen", sa.BigInteger(), nullable=False),
        sa.Column("ledger_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("provider_references", sa.Text(), nullable=True),
        sa.Column("suspense_account", sa.Text(), nullable=False),
        sa.Column("suspense_transfer_id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('payment', 'refund')", name=op.f("ck_reconciliation_items_kind_known")),
        sa.CheckConstraint(
            "problem IN ('missing_in_ledger', 'missing_at_provider', 'amount_differs')",
            name=op.f("ck_reconciliation_items_problem_known"),
        ),
        sa.CheckConstraint("provider_fen <> ledger_fen", name=op.f("ck_reconciliation_items_is_a_difference")),
        sa.CheckConstraint(
            "(resolved_at IS NULL) = (resolution_note IS NULL)",
            name=op.f("ck_reconciliation_items_resolution_has_note"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_reconciliation_items_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_items")),
        sa.UniqueConstraint(
            "provider",
            "business_date",
            "kind",
            "out_trade_no",
            name="uq_reconciliation_items_day_key",
        ),
    )
    op.create_index("ix_reconciliation_items_tenant", TABLE, ["tenant_id", "business_date"], unique=False)
    op.create_index("ix_reconciliation_items_date", TABLE, ["business_date"], unique=False)
    platform = f"{rls.ROLE} = 'platform'"
    rls.run_script(
        rls.grant_tables(get_settings().app_role, [TABLE], "SELECT, INSERT, UPDATE")
        + "\n"
        + f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY;\nALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY;\n"
        f"CREATE POLICY platform_all ON {TABLE} USING ({platform}) WITH CHECK ({platform});\n"
        f"CREATE POLICY tenant_read ON {TABLE} FOR SELECT USING (tenant_id = {rls.TENANT});\n"
        f"CREATE POLICY tenant_resolve ON {TABLE} FOR UPDATE USING (tenant_id = {rls.TENANT}) "
        f"WITH CHECK (tenant_id = {rls.TENANT});\n"
    )


def downgrade() -> None:
    op.drop_index("ix_reconciliation_items_date", table_name=TABLE)
    op.drop_index("ix_reconciliation_items_tenant", table_name=TABLE)
    op.drop_table(TABLE)
