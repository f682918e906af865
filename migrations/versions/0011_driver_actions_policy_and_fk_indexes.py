"""driver actions policy and foreign key indexes

A driver could add start/extend/end actions (with their amounts) to another driver's street session in their own
name: the insert policy checked only the action's driver. It now also requires the session to be the driver's.

The remaining foreign keys without an index get one (decisions' exceptions, sessions' lanes, authorizations), so
deleting the rows they point at does not scan the referring table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ("ix_lane_decisions_exception", "lane_decisions", ["tenant_id", "exception_id"]),
    ("ix_lot_sessions_entry_lane", "lot_sessions", ["tenant_id", "entry_lane_id"]),
    ("ix_lot_sessions_exit_lane", "lot_sessions", ["tenant_id", "exit_lane_id"]),
    ("ix_pending_charges_authorization", "pending_charges", ["authorization_id"]),
    ("ix_street_sessions_authorization", "street_sessions", ["authorization_id"]),
]

OWN_SESSION_POLICY = """
CREATE POLICY driver_add ON street_session_actions FOR INSERT
    WITH CHECK (
        (SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id())
        AND EXISTS (
            SELECT 1 FROM street_sessions s
            WHERE s.tenant_id = street_session_actions.tenant_id AND s.id = street_session_actions.session_id
              AND s.driver_id = (SELECT app_user_id())
        )
    )
"""
ANY_SESSION_POLICY = """
CREATE POLICY driver_add ON street_session_actions FOR INSERT
    WITH CHECK ((SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id()))
"""


def upgrade() -> None:
    op.execute("DROP POLICY driver_add ON street_session_actions")
    op.execute(OWN_SESSION_POLICY)
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.execute("DROP POLICY driver_add ON street_session_actions")
    op.execute(ANY_SESSION_POLICY)
