"""provider parkings: an auto-pay car's stay as the payment provider knows it

WeChat Pay Score charges a parking fee after the car left only against a parking entry opened when it came in.
Lot sessions of auto-pay plates keep that entry's id (`provider_parking_id`, what the exit's deduction names) and
whether the provider can still charge it (`provider_parking_state`), updated by the provider's callbacks, which
find the session by the entry's id.

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-22 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("lot_sessions", sa.Column("provider_parking_id", sa.Text(), nullable=True))
    op.add_column("lot_sessions", sa.Column("provider_parking_state", sa.Text(), nullable=True))
    op.create_index(
        "ix_lot_sessions_provider_parking",
        "lot_sessions",
        ["tenant_id", "provider_parking_id"],
        unique=False,
        postgresql_where=sa.text("provider_parking_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_lot_sessions_provider_parking",
        table_name="lot_sessions",
        postgresql_where=sa.text("provider_parking_id IS NOT NULL"),
    )
    op.drop_column("lot_sessions", "provider_parking_state")
    op.drop_column("lot_sessions", "provider_parking_id")
