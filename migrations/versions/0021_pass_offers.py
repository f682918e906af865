"""pass offers: monthly passes operators sell to drivers

`pass_offers` holds what an operator sells (facilities, price per calendar month, weekdays and daily window, on sale
or not). A pass bought through an offer is an ordinary vehicle pass that names its offer and the payment that bought
it; `uq_vehicle_passes_payment` makes a payment create at most one pass, however often its success is applied.

Row-level security: private to the tenant (operator and connector scopes) like the vehicle lists, plus a public
read of the offers on sale for drivers and anonymous callers (a driver picks one before paying).

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.config import get_settings
from tenants import rls

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "pass_offers"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("facility_ids", postgresql.ARRAY(sa.UUID()), nullable=False),
        sa.Column("price_fen", sa.Integer(), nullable=False),
        sa.Column("currency", sa.Text(), server_default="CNY", nullable=False),
        sa.Column("weekdays", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("window_start", sa.SmallInteger(), nullable=True),
        sa.Column("window_end", sa.SmallInteger(), nullable=True),
        sa.Column("on_sale", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("price_fen > 0", name=op.f("ck_pass_offers_price_positive")),
        sa.CheckConstraint("cardinality(facility_ids) >= 1", name=op.f("ck_pass_offers_facilities_not_empty")),
        sa.CheckConstraint(
            "cardinality(weekdays) BETWEEN 1 AND 7 AND weekdays <@ ARRAY[1, 2, 3, 4, 5, 6, 7]::smallint[]",
            name=op.f("ck_pass_offers_weekdays_known"),
        ),
        sa.CheckConstraint(
            "(window_start IS NULL) = (window_end IS NULL)", name=op.f("ck_pass_offers_window_complete")
        ),
        sa.CheckConstraint(
            "window_start IS NULL OR (window_start BETWEEN 0 AND 1439 "
            "AND window_end BETWEEN 1 AND 1440 AND window_start <> window_end)",
            name=op.f("ck_pass_offers_window_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_pass_offers_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_pass_offers")),
    )
    op.create_index("ix_pass_offers_id", TABLE, ["id"], unique=False)
    op.create_index("ix_pass_offers_facilities", TABLE, ["facility_ids"], unique=False, postgresql_using="gin")

    op.add_column("vehicle_passes", sa.Column("offer_id", sa.UUID(), nullable=True))
    op.add_column("vehicle_passes", sa.Column("payment_id", sa.UUID(), nullable=True))
    op.create_index("uq_vehicle_passes_payment", "vehicle_passes", ["tenant_id", "payment_id"], unique=True)

    anyone = f"{rls.ROLE} IN ('anonymous', 'driver')"
    rls.run_script(
        rls.grant_tables(get_settings().app_role, [TABLE], "SELECT, INSERT, UPDATE")
        + "\n"
        + rls.tenant_private(TABLE)
        + f"CREATE POLICY public_read ON {TABLE} FOR SELECT USING ({anyone} AND on_sale);\n"
    )


def downgrade() -> None:
    op.drop_index("uq_vehicle_passes_payment", table_name="vehicle_passes")
    op.drop_column("vehicle_passes", "payment_id")
    op.drop_column("vehicle_passes", "offer_id")
    op.drop_index("ix_pass_offers_facilities", table_name=TABLE)
    op.drop_index("ix_pass_offers_id", table_name=TABLE)
    op.drop_table(TABLE)
