"""vehicle lists: monthly passes, whitelist, blocklist (blacklisted and restricted plates)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.config import get_settings
from tenants import rls

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ["vehicle_passes", "vehicle_whitelist", "vehicle_blocklist"]


def _common_head() -> list[sa.Column]:
    return [
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("plate", sa.Text(), nullable=False),
    ]


def _common_tail() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    ]


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "vehicle_passes",
        *_common_head(),
        sa.Column("holder_name", sa.Text(), nullable=True),
        sa.Column("holder_phone", sa.Text(), nullable=True),
        sa.Column("facility_ids", postgresql.ARRAY(sa.UUID()), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("weekdays", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("window_start", sa.SmallInteger(), nullable=True),
        sa.Column("window_end", sa.SmallInteger(), nullable=True),
        sa.Column("vehicle_class", sa.Text(), server_default="standard", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        *_common_tail(),
        sa.CheckConstraint("valid_until >= valid_from", name=op.f("ck_vehicle_passes_dates_ordered")),
        sa.CheckConstraint(
            "cardinality(weekdays) BETWEEN 1 AND 7 AND weekdays <@ ARRAY[1, 2, 3, 4, 5, 6, 7]::smallint[]",
            name=op.f("ck_vehicle_passes_weekdays_known"),
        ),
        sa.CheckConstraint(
            "(window_start IS NULL) = (window_end IS NULL)", name=op.f("ck_vehicle_passes_window_complete")
        ),
        sa.CheckConstraint(
            "window_start IS NULL OR (window_start BETWEEN 0 AND 1439 "
            "AND window_end BETWEEN 1 AND 1440 AND window_start <> window_end)",
            name=op.f("ck_vehicle_passes_window_valid"),
        ),
        sa.CheckConstraint(
            "vehicle_class IN ('small', 'standard', 'large', 'new_energy')",
            name=op.f("ck_vehicle_passes_vehicle_class_known"),
        ),
        sa.CheckConstraint(
            "facility_ids IS NULL OR cardinality(facility_ids) >= 1",
            name=op.f("ck_vehicle_passes_facilities_not_empty"),
        ),
        _tenant_fk("vehicle_passes"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_vehicle_passes")),
    )
    op.create_index("ix_vehicle_passes_id", "vehicle_passes", ["id"], unique=False)
    op.create_index("ix_vehicle_passes_tenant_plate", "vehicle_passes", ["tenant_id", "plate", "id"], unique=False)

    op.create_table(
        "vehicle_whitelist",
        *_common_head(),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("facility_ids", postgresql.ARRAY(sa.UUID()), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        *_common_tail(),
        sa.CheckConstraint(
            "category IN ('official', 'vip', 'reserved', 'team')", name=op.f("ck_vehicle_whitelist_category_known")
        ),
        sa.CheckConstraint(
            "valid_from IS NULL OR valid_until IS NULL OR valid_until >= valid_from",
            name=op.f("ck_vehicle_whitelist_dates_ordered"),
        ),
        sa.CheckConstraint(
            "facility_ids IS NULL OR cardinality(facility_ids) >= 1",
            name=op.f("ck_vehicle_whitelist_facilities_not_empty"),
        ),
        _tenant_fk("vehicle_whitelist"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_vehicle_whitelist")),
    )
    op.create_index("ix_vehicle_whitelist_id", "vehicle_whitelist", ["id"], unique=False)
    op.create_index(
        "ix_vehicle_whitelist_tenant_plate", "vehicle_whitelist", ["tenant_id", "plate", "id"], unique=False
    )

    op.create_table(
        "vehicle_blocklist",
        *_common_head(),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        *_common_tail(),
        sa.CheckConstraint("kind IN ('blacklist', 'restricted')", name=op.f("ck_vehicle_blocklist_kind_known")),
        sa.CheckConstraint(
            "valid_from IS NULL OR valid_until IS NULL OR valid_until >= valid_from",
            name=op.f("ck_vehicle_blocklist_dates_ordered"),
        ),
        _tenant_fk("vehicle_blocklist"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_vehicle_blocklist")),
    )
    op.create_index("ix_vehicle_blocklist_id", "vehicle_blocklist", ["id"], unique=False)
    op.create_index(
        "ix_vehicle_blocklist_tenant_plate", "vehicle_blocklist", ["tenant_id", "plate", "id"], unique=False
    )

    # Private to their tenant (operators and the tenant's connectors, whose lane reads look plates up).
    rls.run_script(rls.grant_tables(get_settings().app_role, TABLES))
    for table in TABLES:
        rls.run_script(rls.tenant_private(table))


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
