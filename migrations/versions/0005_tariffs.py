"""tariffs: sealed tariff versions per facility (lot or curb zone)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.config import get_settings
from tenants import rls

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Drivers and anonymous callers read tariffs to get quotes and prices in find-a-space (which versions they
# are shown is the API's business); the city reads them across operators; only the tenant writes.
PUBLIC_POLICIES = """
CREATE POLICY city_read ON tariffs FOR SELECT USING ((SELECT app_role()) = 'city');
CREATE POLICY public_read ON tariffs FOR SELECT USING ((SELECT app_role()) IN ('anonymous', 'driver'));
"""


def upgrade() -> None:
    op.create_table(
        "tariffs",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("facility_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_tariffs_version_positive")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "facility_id"],
            ["facilities.tenant_id", "facilities.id"],
            name=op.f("fk_tariffs_tenant_id_facilities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tariffs_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_tariffs")),
    )
    op.create_index("ix_tariffs_id", "tariffs", ["id"], unique=False)
    op.create_index("uq_tariffs_facility_version", "tariffs", ["tenant_id", "facility_id", "version"], unique=True)
    op.create_index("ix_tariffs_facility_valid_from", "tariffs", ["tenant_id", "facility_id", "valid_from", "version"])

    # Versions are sealed: the application may add them, never change or delete them.
    rls.run_script(rls.grant_tables(get_settings().app_role, ["tariffs"], "SELECT, INSERT"))
    rls.run_script(rls.tenant_private("tariffs"))
    rls.run_script(PUBLIC_POLICIES)


def downgrade() -> None:
    op.drop_index("ix_tariffs_facility_valid_from", table_name="tariffs")
    op.drop_index("uq_tariffs_facility_version", table_name="tariffs")
    op.drop_index("ix_tariffs_id", table_name="tariffs")
    op.drop_table("tariffs")
