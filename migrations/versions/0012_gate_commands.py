"""gate commands: the channel that delivers agents' remote opens to the lanes' gate controllers

An agent's remote open of a barrier (the exception queue) was recorded only as an intent in the exception's
resolution. It is now a `gate_commands` row, written in the resolution's transaction, that the lane's gate fetches
(`GET /lanes/{id}/commands`) and acknowledges with what the barrier did. A command's status is derived from its
timestamps and the clock (hub.lanes.gate_rules), so nothing sweeps expired commands.

One operator's rows (its agents write them, its lanes' connectors read and acknowledge them): tenant-private like
the other lanes tables; the application may select, insert and update, never delete.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.config import get_settings
from tenants import rls

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "gate_commands"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("lane_id", sa.UUID(), nullable=False),
        sa.Column("command", sa.Text(), server_default="open", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("exception_id", sa.UUID(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deliveries", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.UUID(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("outcome_detail", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("fault_exception_id", sa.UUID(), nullable=True),
        sa.CheckConstraint("command IN ('open')", name=op.f("ck_gate_commands_command_known")),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('opened', 'failed')", name=op.f("ck_gate_commands_outcome_known")
        ),
        sa.CheckConstraint(
            "(acknowledged_at IS NULL) = (outcome IS NULL)", name=op.f("ck_gate_commands_ack_has_outcome")
        ),
        sa.CheckConstraint("expires_at > requested_at", name=op.f("ck_gate_commands_expires_after_request")),
        sa.CheckConstraint("deliveries >= 0", name=op.f("ck_gate_commands_deliveries_nonnegative")),
        sa.CheckConstraint(
            "fault_exception_id IS NULL OR outcome = 'failed'", name=op.f("ck_gate_commands_fault_only_when_failed")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "lane_id"],
            ["lanes.tenant_id", "lanes.id"],
            name="fk_gate_commands_lane_id_lanes",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "exception_id"],
            ["exceptions.tenant_id", "exceptions.id"],
            name="fk_gate_commands_exception_id_exceptions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "fault_exception_id"],
            ["exceptions.tenant_id", "exceptions.id"],
            name="fk_gate_commands_fault_exception_id_exceptions",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_gate_commands")),
    )
    # The gate's fetch (a short range: commands requested within the longest life) and the foreign key to lanes.
    op.create_index("ix_gate_commands_lane_time", TABLE, ["tenant_id", "lane_id", "requested_at"], unique=False)
    # One command per exception; also the queue's lookup and the foreign key's index.
    op.create_index(
        "uq_gate_commands_exception",
        TABLE,
        ["tenant_id", "exception_id"],
        unique=True,
        postgresql_where=sa.text("exception_id IS NOT NULL"),
    )
    op.create_index(
        "ix_gate_commands_fault_exception",
        TABLE,
        ["tenant_id", "fault_exception_id"],
        unique=False,
        postgresql_where=sa.text("fault_exception_id IS NOT NULL"),
    )

    rls.run_script(rls.grant_tables(get_settings().app_role, [TABLE], "SELECT, INSERT, UPDATE"))
    rls.run_script(rls.tenant_private(TABLE))


def downgrade() -> None:
    op.drop_index(
        "ix_gate_commands_fault_exception", table_name=TABLE, postgresql_where=sa.text("fault_exception_id IS NOT NULL")
    )
    op.drop_index("uq_gate_commands_exception", table_name=TABLE, postgresql_where=sa.text("exception_id IS NOT NULL"))
    op.drop_index("ix_gate_commands_lane_time", table_name=TABLE)
    op.drop_table(TABLE)  # its policies go with it
