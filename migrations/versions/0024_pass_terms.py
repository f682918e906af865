"""pass terms: a pass payment keeps what it bought, and a plate's pass payments are found quickly

`payments.terms` holds the offer's terms (facilities, weekdays, window, name) as they were when the month was
bought, so the pass made when the payment succeeds does not change with an offer edited in between. A partial index
on (tenant_id, plate) of pass payments serves the purchase's check for a month being bought already.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-22 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payments", sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_index(
        "ix_payments_pass_plate",
        "payments",
        ["tenant_id", "plate"],
        unique=False,
        postgresql_where=sa.text("purpose = 'pass'"),
    )


def downgrade() -> None:
    op.drop_index("ix_payments_pass_plate", table_name="payments", postgresql_where=sa.text("purpose = 'pass'"))
    op.drop_column("payments", "terms")
