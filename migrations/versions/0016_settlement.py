"""settlement: daily statements per tenant and the ledger transfers each includes

One statement per (tenant, business date) with its lines, platform fee, payout and carried balance; a CHECK makes
the lines add up to payout + carried_out. `settlement_statement_transfers` lists the ledger transfers a statement
includes, keyed by (tenant_id, transfer_id) so a transfer is in one statement at most; written by one INSERT ...
SELECT per run (about 10,000 rows a tenant-day), it has no foreign keys (each row's key check would cost a third of
the insert); its rows are written only in the transaction creating their statement.

Row-level security: the platform (the settlement run, the CLI, the platform admin) reads and writes; an operator
reads its own tenant's rows only (statements are written by runs, never by operators); the city reads statements
across tenants. The app role may select, insert and update statements, select and insert their transfers, never
delete either.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-22 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.config import get_settings
from tenants import rls

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATEMENTS = "settlement_statements"
TRANSFERS = "settlement_statement_transfers"

LINES_ADD_UP = (
    "carried_in + gross - refunds + coupons + other + returned - fee = payout + carried_out "
    "AND payout >= 0 AND carried_out <= 0 AND carried_in <= 0 AND (payout = 0 OR carried_out = 0)"
)


def _policies(table: str, *, city: bool) -> str:
    platform = f"{rls.ROLE} = 'platform'"
    script = (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\nALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n"
        f"CREATE POLICY platform_all ON {table} USING ({platform}) WITH CHECK ({platform});\n"
        f"CREATE POLICY tenant_read ON {table} FOR SELECT USING (tenant_id = {rls.TENANT});\n"
    )
    if city:
        script += f"CREATE POLICY city_read ON {table} FOR SELECT USING ({rls.ROLE} = 'city');\n"
    return script


def upgrade() -> None:
    op.create_table(
        STATEMENTS,
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("time_zone", sa.Text(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("previous_statement_id", sa.UUID(), nullable=True),
        sa.Column("carried_in", sa.BigInteger(), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("refunds", sa.BigInteger(), nullable=False),
        sa.Column("coupons", sa.BigInteger(), nullable=False),
        sa.Column("other", sa.BigInteger(), nullable=False),
        sa.Column("returned", sa.BigInteger(), nullable=False),
        sa.Column("fee_bps", sa.Integer(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("payout", sa.BigInteger(), nullable=False),
        sa.Column("carried_out", sa.BigInteger(), nullable=False),
        sa.Column("transfer_count", sa.Integer(), nullable=False),
        sa.Column("fee_transfer_id", sa.UUID(), nullable=True),
        sa.Column("payout_transfer_id", sa.UUID(), nullable=True),
        sa.Column("payout_account", sa.Text(), nullable=True),
        sa.Column("payout_status", sa.Text(), nullable=False),
        sa.Column("payout_reference", sa.Text(), nullable=True),
        sa.Column("payout_resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "mode IN ('hub_collects', 'provider_direct')", name=op.f("ck_settlement_statements_mode_known")
        ),
        sa.CheckConstraint(
            "payout_status IN ('none', 'pending', 'confirmed', 'failed')",
            name=op.f("ck_settlement_statements_payout_status_known"),
        ),
        sa.CheckConstraint(LINES_ADD_UP, name=op.f("ck_settlement_statements_lines_add_up")),
        sa.CheckConstraint(
            "refunds >= 0 AND gross >= 0 AND coupons >= 0 AND returned >= 0",
            name=op.f("ck_settlement_statements_lines_signs"),
        ),
        sa.CheckConstraint("fee_bps BETWEEN 0 AND 10000", name=op.f("ck_settlement_statements_fee_bps_range")),
        sa.CheckConstraint(
            "(payout > 0) = (payout_transfer_id IS NOT NULL)", name=op.f("ck_settlement_statements_payout_has_transfer")
        ),
        sa.CheckConstraint(
            "(payout > 0) = (payout_status <> 'none')", name=op.f("ck_settlement_statements_payout_status_matches")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_settlement_statements_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_settlement_statements")),
        sa.UniqueConstraint(
            "tenant_id", "business_date", name=op.f("uq_settlement_statements_tenant_id_business_date")
        ),
        sa.UniqueConstraint(
            "tenant_id", "previous_statement_id", name=op.f("uq_settlement_statements_tenant_id_previous_statement_id")
        ),
    )
    op.create_index("ix_settlement_statements_id", STATEMENTS, ["id"], unique=False)
    op.create_index("ix_settlement_statements_date", STATEMENTS, ["business_date"], unique=False)

    op.create_table(
        TRANSFERS,
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("transfer_id", sa.UUID(), nullable=False),
        sa.Column("statement_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "line IN ('gross', 'refunds', 'coupons', 'other', 'returned')",
            name=op.f("ck_settlement_statement_transfers_line_known"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "transfer_id", name=op.f("pk_settlement_statement_transfers")),
    )
    op.create_index(
        "ix_settlement_statement_transfers_statement", TRANSFERS, ["tenant_id", "statement_id", "seq"], unique=False
    )

    app_role = get_settings().app_role
    rls.run_script(rls.grant_tables(app_role, [STATEMENTS], "SELECT, INSERT, UPDATE"))
    rls.run_script(rls.grant_tables(app_role, [TRANSFERS], "SELECT, INSERT"))
    rls.run_script(_policies(STATEMENTS, city=True))
    rls.run_script(_policies(TRANSFERS, city=False))


def downgrade() -> None:
    op.drop_index("ix_settlement_statement_transfers_statement", table_name=TRANSFERS)
    op.drop_table(TRANSFERS)
    op.drop_index("ix_settlement_statements_date", table_name=STATEMENTS)
    op.drop_index("ix_settlement_statements_id", table_name=STATEMENTS)
    op.drop_table(STATEMENTS)
