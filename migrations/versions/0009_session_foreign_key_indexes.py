"""session foreign key indexes: lane decisions and exceptions by session

Deleting lot sessions (retention, a tenant leaving) checked each one against every lane decision: a 2,000-session
delete ran for over ten minutes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 22:25:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_lane_decisions_session", "lane_decisions", ["tenant_id", "session_id"], unique=False)
    op.create_index("ix_exceptions_session", "exceptions", ["tenant_id", "session_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_exceptions_session", table_name="exceptions")
    op.drop_index("ix_lane_decisions_session", table_name="lane_decisions")
