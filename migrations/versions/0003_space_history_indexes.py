"""space history indexes: one space's intervals by time, and a facility's by end (windows of recent history)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 09:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_space_status_intervals_space_time",
        "space_status_intervals",
        ["tenant_id", "space_id", "started_at"],
        unique=False,
    )
    # A window's intervals are those ending after its start: without this, a day's metrics read all history.
    op.create_index(
        "ix_space_status_intervals_facility_end",
        "space_status_intervals",
        ["tenant_id", "facility_id", "ended_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_space_status_intervals_facility_end", table_name="space_status_intervals")
    op.drop_index("ix_space_status_intervals_space_time", table_name="space_status_intervals")
