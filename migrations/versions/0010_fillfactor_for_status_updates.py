"""fillfactor for status updates: leave room on spaces' and devices' pages for in-place (HOT) updates

Every sensor event rewrites its space's status and its device's health. With full pages PostgreSQL must put the
new row version on another page and update every index of the table (spaces has five, one of them GiST); with room
left on the page the update is HOT and touches no index. The setting applies to pages written from now on (a new
city, or after VACUUM FULL / pg_repack of an existing one).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21 22:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("spaces", "devices")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = 85)")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
