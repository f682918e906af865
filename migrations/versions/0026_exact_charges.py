"""exact charges: an auto-pay charge remembers what the stay had paid, and ledger accounts are created race-free

- `pending_charges.paid_fen`: what the lot session had paid when its exit made the charge (backfilled from the
  session). Turning the charge into a deduction subtracts only what the stay's payments brought after that, counted
  exactly instead of by comparing two clocks.
- `ledger_ensure_accounts` inserts with `ON CONFLICT DO NOTHING` on every unique key: with `ON CONFLICT (id)` two
  transactions creating one new account at the same moment collided on its (kind, owner, currency) key and the
  later one failed (found by the money-path simulation). Account ids are derived from that key, so the two keys
  always agree. The function is otherwise unchanged: its stored source is rewritten in place.

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-22 02:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenants import rls

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TARGETED = "ON CONFLICT (id) DO NOTHING"
ANY_KEY = "ON CONFLICT DO NOTHING"


def _rewrite_ensure_accounts(old: str, new: str) -> None:
    source = (
        op.get_bind()
        .execute(sa.text("SELECT pg_get_functiondef('ledger_ensure_accounts(jsonb)'::regprocedure)"))
        .scalar_one()
    )
    if source.count(old) != 1:
        raise RuntimeError(f"ledger_ensure_accounts does not read as expected: no single {old!r}")
    rls.run_script(source.replace(old, new) + ";")  # CREATE OR REPLACE keeps its owner and grants


def upgrade() -> None:
    op.add_column("pending_charges", sa.Column("paid_fen", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.execute("""
        UPDATE pending_charges c SET paid_fen = s.paid_fen
        FROM lot_sessions s WHERE s.tenant_id = c.tenant_id AND s.id = c.session_id
    """)
    _rewrite_ensure_accounts(TARGETED, ANY_KEY)


def downgrade() -> None:
    _rewrite_ensure_accounts(ANY_KEY, TARGETED)
    op.drop_column("pending_charges", "paid_fen")
