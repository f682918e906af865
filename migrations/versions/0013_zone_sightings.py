"""zone sightings: decided sightings of curb cameras that watch a whole zone

A curb camera bound to a curb zone (not to one bay) reads the plates of every bay of the zone. Its sightings are
now attributed to a bay, or recorded with why not. The decided sightings carry their zone (`facility_id`,
backfilled from the bay of those already decided) and their bay only when they have one (`space_id` is null for a
zone camera's plate without auto-pay, or one that no bay or several bays could hold), with three more outcomes:
`plate_has_session`, `no_bay`, `ambiguous_bay`. The bay's foreign key gets its index.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BAY_OUTCOMES = "('started', 'no_authorization', 'space_has_session', 'bay_vacant', 'no_tariff')"
OUTCOMES = (
    "('started', 'no_authorization', 'space_has_session', 'bay_vacant', 'no_tariff', "
    "'plate_has_session', 'no_bay', 'ambiguous_bay')"
)
WITHOUT_BAY = "('no_authorization', 'no_bay', 'ambiguous_bay')"


def upgrade() -> None:
    op.add_column("street_sightings", sa.Column("facility_id", sa.UUID(), nullable=True))
    op.execute("""
        UPDATE street_sightings d SET facility_id = s.facility_id
        FROM spaces s WHERE s.tenant_id = d.tenant_id AND s.id = d.space_id
    """)
    op.alter_column("street_sightings", "facility_id", nullable=False)
    op.alter_column("street_sightings", "space_id", nullable=True)
    op.create_foreign_key(
        op.f("fk_street_sightings_tenant_id_facilities"),
        "street_sightings",
        "facilities",
        ["tenant_id", "facility_id"],
        ["tenant_id", "id"],
        ondelete="CASCADE",
    )
    op.drop_constraint(op.f("ck_street_sightings_outcome_known"), "street_sightings", type_="check")
    op.create_check_constraint(op.f("ck_street_sightings_outcome_known"), "street_sightings", f"outcome IN {OUTCOMES}")
    op.create_check_constraint(
        op.f("ck_street_sightings_names_bay"), "street_sightings", f"space_id IS NOT NULL OR outcome IN {WITHOUT_BAY}"
    )
    op.create_index(
        "ix_street_sightings_facility", "street_sightings", ["tenant_id", "facility_id", "seen_at"], unique=False
    )
    op.create_index("ix_street_sightings_space", "street_sightings", ["tenant_id", "space_id"], unique=False)


def downgrade() -> None:
    # Zone sightings that named no bay cannot be kept in the older table: they are dropped (decided again, as far
    # as the older code decides them: not at all).
    op.drop_index("ix_street_sightings_space", table_name="street_sightings")
    op.drop_index("ix_street_sightings_facility", table_name="street_sightings")
    op.drop_constraint(op.f("ck_street_sightings_names_bay"), "street_sightings", type_="check")
    op.execute(f"DELETE FROM street_sightings WHERE outcome NOT IN {BAY_OUTCOMES} OR space_id IS NULL")
    op.drop_constraint(op.f("ck_street_sightings_outcome_known"), "street_sightings", type_="check")
    op.create_check_constraint(
        op.f("ck_street_sightings_outcome_known"), "street_sightings", f"outcome IN {BAY_OUTCOMES}"
    )
    op.drop_constraint(op.f("fk_street_sightings_tenant_id_facilities"), "street_sightings", type_="foreignkey")
    op.alter_column("street_sightings", "space_id", nullable=False)
    op.drop_column("street_sightings", "facility_id")
