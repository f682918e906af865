"""street prepay failed: a session whose prepayment fails loses the time it bought

A start's or extension's prepayment that fails while the session runs takes that purchase's minutes back (an
action `payment_failed`); when no paid minute remains the session ends in the new final state `payment_failed`.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-22 02:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = "('active', 'extended', 'ended_early', 'expired', 'ended_by_sensor', 'ended_by_driver'{})"
KINDS = "('start', 'extend', 'end', 'expire', 'camera_start', 'sensor_end'{})"


def _replace(table: str, name: str, condition: str) -> None:
    op.drop_constraint(op.f(name), table, type_="check")
    op.create_check_constraint(op.f(name), table, condition)


def upgrade() -> None:
    _replace("street_sessions", "ck_street_sessions_state_known", "state IN " + STATES.format(", 'payment_failed'"))
    _replace(
        "street_session_actions",
        "ck_street_session_actions_kind_known",
        "kind IN " + KINDS.format(", 'payment_failed'"),
    )


def downgrade() -> None:
    # The older states cannot say that a session's payment failed: such sessions read as expired, and their
    # failure actions are dropped (the session rows keep the reduced paid time they ended with).
    op.execute("UPDATE street_sessions SET state = 'expired' WHERE state = 'payment_failed'")
    op.execute("DELETE FROM street_session_actions WHERE kind = 'payment_failed'")
    _replace("street_sessions", "ck_street_sessions_state_known", "state IN " + STATES.format(""))
    _replace("street_session_actions", "ck_street_session_actions_kind_known", "kind IN " + KINDS.format(""))
