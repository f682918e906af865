"""All SQL of the ledger. Writes go through the engine's functions only (`ledger_apply`, `ledger_ensure_accounts`):
the application role has no INSERT or UPDATE on the tables. Reads are plain SELECTs under row-level security.

Every statement runs on the asyncpg connection (the one under an AsyncSession, or the one a hot path holds), so the
service accepts either without SQLAlchemy's result layer in the way. JSON crosses as text (`::text` both ways):
SQLAlchemy installs its own jsonb codec on the connections it opens, and a raw connection has asyncpg's.

The invariant queries are set-based: each reads the transfers once (hash joins and aggregates, no per-row loops),
so the check stays a matter of seconds on millions of transfers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import driver_of

Row = Mapping[str, Any]
Executor = AsyncSession | asyncpg.Connection
# How many rows of one kind of violation a check reports (a broken ledger should not flood the report).
VIOLATION_LIMIT = 100

TRANSFER_COLUMNS = (
    "id, seq, debit_account_id, credit_account_id, amount, currency, kind, pending_id, code, tenant_id, driver_id, "
    "reference::text AS reference, batch_id, created_at, expires_at"
)
ACCOUNT_COLUMNS = (
    "id, currency, kind, owner, tenant_id, driver_id, debits_must_not_exceed_credits, credits_must_not_exceed_debits, "
    "debits_pending, debits_posted, credits_pending, credits_posted, created_at"
)


async def connection_of(executor: Executor) -> asyncpg.Connection:
    if isinstance(executor, asyncpg.Connection):
        return executor
    return await driver_of(executor)


def _json_default(value: object) -> str:
    # asyncpg's own UUID type (ids read back from the database) is a uuid.UUID that orjson does not know by type.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json(value: object) -> str:
    return orjson.dumps(value, default=_json_default).decode()


def _record(record: asyncpg.Record) -> dict[str, Any]:
    row = dict(record)
    if isinstance(row.get("reference"), str):
        row["reference"] = orjson.loads(row["reference"])
    return row


# ------------------------------------------------------------------------------------------------ writes


async def apply(conn: asyncpg.Connection, batch: Sequence[Mapping[str, Any]], *, linked: bool) -> list[dict[str, Any]]:
    raw = await conn.fetchval("SELECT ledger_apply($1::text::jsonb, $2)::text", _json(list(batch)), linked)
    return orjson.loads(raw)


async def ensure_accounts(conn: asyncpg.Connection, accounts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    raw = await conn.fetchval("SELECT ledger_ensure_accounts($1::text::jsonb)::text", _json(list(accounts)))
    return orjson.loads(raw)


# ------------------------------------------------------------------------------------------------- reads


async def accounts(conn: asyncpg.Connection, account_ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = ANY($1::uuid[]) ORDER BY id", list(account_ids)
    )
    return [dict(row) for row in rows]


async def account_transfers(
    conn: asyncpg.Connection, account_id: uuid.UUID, after_seq: int, limit: int
) -> list[dict[str, Any]]:
    """An account's transfers in `seq` order after `after_seq`, each with the side the account is on. Two index
    range scans (debit side, credit side) merged, each stopping at `limit`."""
    rows = await conn.fetch(
        f"""
        SELECT * FROM (
            (SELECT {TRANSFER_COLUMNS}, 'debit' AS side FROM ledger_transfers
             WHERE debit_account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3)
            UNION ALL
            (SELECT {TRANSFER_COLUMNS}, 'credit' AS side FROM ledger_transfers
             WHERE credit_account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3)
        ) moves
        ORDER BY seq
        LIMIT $3
        """,
        account_id,
        after_seq,
        limit,
    )
    return [_record(row) for row in rows]


async def transfers(conn: asyncpg.Connection, transfer_ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id = ANY($1::uuid[]) ORDER BY seq", list(transfer_ids)
    )
    return [_record(row) for row in rows]


async def expired_pendings(conn: asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    """Pending transfers past their expiry that were neither posted nor voided, oldest expiry first."""
    rows = await conn.fetch(
        f"""
        SELECT {TRANSFER_COLUMNS} FROM ledger_transfers p
        WHERE p.kind = 'pending' AND p.expires_at IS NOT NULL AND p.expires_at <= now()
          AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id)
        ORDER BY p.expires_at
        LIMIT $1
        """,
        limit,
    )
    return [_record(row) for row in rows]


async def counts(conn: asyncpg.Connection) -> tuple[int, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM ledger_transfers) AS transfers, "
        "(SELECT count(*) FROM ledger_accounts) AS accounts"
    )
    assert row is not None
    return int(row["transfers"]), int(row["accounts"])


# -------------------------------------------------------------------------------------------- invariants

# Each query returns (subject, detail) rows, at most VIOLATION_LIMIT of them.
INVARIANTS: dict[str, str] = {
    # Every transfer's two sides are different, existing accounts of the transfer's currency.
    "transfer_sides": """
        SELECT t.id::text AS subject,
               CASE WHEN t.debit_account_id = t.credit_account_id THEN 'debits and credits the same account'
                    WHEN d.id IS NULL OR c.id IS NULL THEN 'names an account that does not exist'
                    WHEN t.amount <= 0 THEN 'amount is not positive'
                    ELSE 'currency ' || t.currency || ' but accounts in ' || d.currency || ' and ' || c.currency
               END AS detail
        FROM ledger_transfers t
        LEFT JOIN ledger_accounts d ON d.id = t.debit_account_id
        LEFT JOIN ledger_accounts c ON c.id = t.credit_account_id
        WHERE t.debit_account_id = t.credit_account_id OR d.id IS NULL OR c.id IS NULL OR t.amount <= 0
           OR d.currency <> t.currency OR c.currency <> t.currency
        LIMIT $1
    """,
    # Every post or void resolves an existing pending of the same accounts and currency, at most once, for no more
    # than it reserved (a void for exactly what it reserved).
    "pending_resolutions": """
        SELECT r.id::text AS subject,
               CASE WHEN p.id IS NULL OR p.kind <> 'pending' THEN 'resolves ' || r.pending_id || ', not a pending'
                    WHEN p.debit_account_id <> r.debit_account_id OR p.credit_account_id <> r.credit_account_id
                        THEN 'moves between other accounts than its pending'
                    WHEN p.currency <> r.currency THEN 'has another currency than its pending'
                    WHEN r.kind = 'post_pending' THEN 'posts ' || r.amount || ' of a pending of ' || p.amount
                    ELSE 'voids ' || r.amount || ' of a pending of ' || p.amount
               END AS detail
        FROM ledger_transfers r
        LEFT JOIN ledger_transfers p ON p.id = r.pending_id
        WHERE r.kind IN ('post_pending', 'void_pending')
          AND (p.id IS NULL OR p.kind <> 'pending'
               OR p.debit_account_id <> r.debit_account_id OR p.credit_account_id <> r.credit_account_id
               OR p.currency <> r.currency
               OR (r.kind = 'post_pending' AND r.amount > p.amount)
               OR (r.kind = 'void_pending' AND r.amount <> p.amount))
        UNION ALL
        SELECT pending_id::text, 'resolved ' || count(*) || ' times'
        FROM ledger_transfers WHERE pending_id IS NOT NULL GROUP BY pending_id HAVING count(*) > 1
        LIMIT $1
    """,
    # Each account's four sums equal what its transfers add up to: a pending reserves its amount until its post or
    # void releases it; a single or a post adds to posted.
    "account_sums": """
        WITH moves AS (
            SELECT t.debit_account_id, t.credit_account_id,
                   CASE t.kind WHEN 'pending' THEN t.amount WHEN 'single' THEN 0 ELSE -p.amount END AS pending,
                   CASE WHEN t.kind IN ('single', 'post_pending') THEN t.amount ELSE 0 END AS posted
            FROM ledger_transfers t
            LEFT JOIN ledger_transfers p ON p.id = t.pending_id AND t.kind IN ('post_pending', 'void_pending')
        ), sums AS (
            SELECT side.account_id,
                   sum(side.debits_pending) AS debits_pending, sum(side.debits_posted) AS debits_posted,
                   sum(side.credits_pending) AS credits_pending, sum(side.credits_posted) AS credits_posted
            FROM moves
            CROSS JOIN LATERAL (VALUES
                (moves.debit_account_id, moves.pending, moves.posted, 0::bigint, 0::bigint),
                (moves.credit_account_id, 0::bigint, 0::bigint, moves.pending, moves.posted)
            ) AS side(account_id, debits_pending, debits_posted, credits_pending, credits_posted)
            GROUP BY side.account_id
        )
        SELECT a.id::text AS subject,
               format('%s %s/%s: stored (%s, %s, %s, %s), transfers add up to (%s, %s, %s, %s) '
                      '(debits pending, debits posted, credits pending, credits posted)',
                      a.kind, a.owner, a.currency,
                      a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted,
                      coalesce(s.debits_pending, 0), coalesce(s.debits_posted, 0),
                      coalesce(s.credits_pending, 0), coalesce(s.credits_posted, 0)) AS detail
        FROM ledger_accounts a
        LEFT JOIN sums s ON s.account_id = a.id
        WHERE (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
              IS DISTINCT FROM (coalesce(s.debits_pending, 0), coalesce(s.debits_posted, 0),
                                coalesce(s.credits_pending, 0), coalesce(s.credits_posted, 0))
        LIMIT $1
    """,
    # The tenant rule (migration 0019): a transfer on a tenant's account carries that tenant, and no transfer moves
    # between two tenants' accounts (transfers stored before the rule may break it: they are reported here).
    "tenant_rule": """
        SELECT t.id::text AS subject,
               CASE WHEN d.tenant_id <> c.tenant_id THEN 'moves between accounts of two tenants'
                    ELSE format('tenant_id %s but its account belongs to %s',
                                coalesce(t.tenant_id::text, 'null'), coalesce(d.tenant_id, c.tenant_id))
               END AS detail
        FROM ledger_transfers t
        JOIN ledger_accounts d ON d.id = t.debit_account_id
        JOIN ledger_accounts c ON c.id = t.credit_account_id
        WHERE d.tenant_id <> c.tenant_id
           OR t.tenant_id IS DISTINCT FROM coalesce(d.tenant_id, c.tenant_id) AND coalesce(d.tenant_id, c.tenant_id)
              IS NOT NULL
        LIMIT $1
    """,
    # Bounded accounts never went below zero on their normal side.
    "bounds": """
        SELECT id::text AS subject,
               format('%s %s/%s breaks %s: debits pending %s, posted %s; credits pending %s, posted %s',
                      kind, owner, currency,
                      CASE WHEN debits_must_not_exceed_credits THEN 'debits_must_not_exceed_credits'
                           ELSE 'credits_must_not_exceed_debits' END,
                      debits_pending, debits_posted, credits_pending, credits_posted) AS detail
        FROM ledger_accounts
        WHERE (debits_must_not_exceed_credits AND debits_pending + debits_posted > credits_posted)
           OR (credits_must_not_exceed_debits AND credits_pending + credits_posted > debits_posted)
        LIMIT $1
    """,
    # Across all accounts of a currency, debits equal credits (posted and pending alike).
    "totals": """
        SELECT currency AS subject,
               format('debits posted %s, credits posted %s; debits pending %s, credits pending %s',
                      sum(debits_posted), sum(credits_posted), sum(debits_pending), sum(credits_pending)) AS detail
        FROM ledger_accounts
        GROUP BY currency
        HAVING sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)
        LIMIT $1
    """,
}


async def invariant_violations(conn: asyncpg.Connection, check: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(INVARIANTS[check], VIOLATION_LIMIT)
    return [(row["subject"], row["detail"]) for row in rows]
