"""All SQL of settlement. It runs on the asyncpg connection under the caller's session (inside its transaction and
row-level security scope): a run writes thousands of statement rows in one INSERT ... SELECT and reads the ledger
with plain SELECTs, and SQLAlchemy's result layer would only be in the way.

The ledger's tables are read, never written (the ledger's engine is the only writer; hub.ledger.service calls it)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import asyncpg

from hub.settlement import rules

Row = Mapping[str, Any]

STATEMENT_COLUMNS = (
    "tenant_id, id, business_date, time_zone, period_start, period_end, mode, currency, previous_statement_id, "
    "carried_in, gross, refunds, coupons, other, returned, fee_bps, fee, payout, carried_out, transfer_count, "
    "fee_transfer_id, payout_transfer_id, payout_account, payout_status, payout_reference, payout_resolved_at, "
    "created_at"
)


async def lock_tenant(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> None:
    """Serialize settlement runs of one tenant until the end of the transaction (two runs of the same day: the
    second waits, then finds the first's statement)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('settlement:' || $1::uuid::text, 0))", tenant_id)


async def tenant_terms(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> Row | None:
    return await conn.fetchrow(
        "SELECT id, slug, time_zone, currency, platform_fee_bps FROM tenants WHERE id = $1", tenant_id
    )


async def tenants(conn: asyncpg.Connection, slug: str | None = None) -> list[Row]:
    if slug is not None:
        return list(await conn.fetch("SELECT id, slug, time_zone FROM tenants WHERE slug = $1 ORDER BY slug", slug))
    return list(await conn.fetch("SELECT id, slug, time_zone FROM tenants ORDER BY slug"))


async def statement_for_date(conn: asyncpg.Connection, tenant_id: uuid.UUID, day: date) -> Row | None:
    return await conn.fetchrow(
        f"SELECT {STATEMENT_COLUMNS} FROM settlement_statements WHERE tenant_id = $1 AND business_date = $2",
        tenant_id,
        day,
    )


async def statement(conn: asyncpg.Connection, tenant_id: uuid.UUID | None, statement_id: uuid.UUID) -> Row | None:
    if tenant_id is None:
        return await conn.fetchrow(f"SELECT {STATEMENT_COLUMNS} FROM settlement_statements WHERE id = $1", statement_id)
    return await conn.fetchrow(
        f"SELECT {STATEMENT_COLUMNS} FROM settlement_statements WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        statement_id,
    )


async def latest_statement(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> Row | None:
    return await conn.fetchrow(
        f"SELECT {STATEMENT_COLUMNS} FROM settlement_statements WHERE tenant_id = $1 "
        "ORDER BY business_date DESC LIMIT 1",
        tenant_id,
    )


async def statements(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    since: date | None,
    until: date | None,
    after: date | None,
    limit: int,
) -> list[Row]:
    """A tenant's statements, newest first, dates in [since, until), before the cursor `after` (a date)."""
    return list(
        await conn.fetch(
            f"""
            SELECT {STATEMENT_COLUMNS} FROM settlement_statements
            WHERE tenant_id = $1
              AND ($2::date IS NULL OR business_date >= $2) AND ($3::date IS NULL OR business_date < $3)
              AND ($4::date IS NULL OR business_date < $4)
            ORDER BY business_date DESC
            LIMIT $5
            """,
            tenant_id,
            since,
            until,
            after,
            limit,
        )
    )


async def insert_statement(conn: asyncpg.Connection, values: Mapping[str, Any]) -> None:
    columns = ", ".join(values)
    placeholders = ", ".join(f"${index}" for index in range(1, len(values) + 1))
    await conn.execute(f"INSERT INTO settlement_statements ({columns}) VALUES ({placeholders})", *values.values())


async def update_statement(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, statement_id: uuid.UUID, values: Mapping[str, Any]
) -> Row:
    assignments = ", ".join(f"{column} = ${index}" for index, column in enumerate(values, start=3))
    row = await conn.fetchrow(
        f"UPDATE settlement_statements SET {assignments} WHERE tenant_id = $1 AND id = $2 "
        f"RETURNING {STATEMENT_COLUMNS}",
        tenant_id,
        statement_id,
        *values.values(),
    )
    assert row is not None
    return row


# The transfers a statement collects: posted movements of the tenant's payable created before the day's cut (and
# after the lookback), in no statement yet, except settlement's own (a payout's void comes back as `returned`).
# A post of a two-phase capture is classified by its own code or, failing that, its pending's.
# "In no statement yet" is the primary key itself (ON CONFLICT DO NOTHING: RETURNING yields only the rows this
# statement took), not an anti-join: an anti-join's plan depends on the table's statistics, and with stale ones
# (a table just emptied or quickly growing) PostgreSQL chose a nested loop of sequential scans, quadratic in rows.
COLLECT_SQL = """
WITH moved AS (
    INSERT INTO settlement_statement_transfers
        (tenant_id, transfer_id, statement_id, seq, line, code, amount, created_at)
    SELECT $1, t.id, $2, t.seq, c.line,
           t.code,
           CASE WHEN c.line = 'other' AND t.debit_account_id = $3 THEN -t.amount ELSE t.amount END,
           t.created_at
    FROM ledger_transfers t
    LEFT JOIN ledger_transfers p ON t.kind = 'post_pending' AND p.id = t.pending_id
    CROSS JOIN LATERAL (SELECT CASE
        WHEN t.kind = 'void_pending' THEN 'returned'
        WHEN t.credit_account_id = $3 AND (t.code = ANY($6::text[]) OR p.code = ANY($6::text[])) THEN 'gross'
        WHEN t.debit_account_id = $3 AND (t.code = ANY($7::text[]) OR p.code = ANY($7::text[])) THEN 'refunds'
        WHEN t.credit_account_id = $3 AND (t.code = ANY($8::text[]) OR p.code = ANY($8::text[])) THEN 'coupons'
        ELSE 'other' END AS line) c
    WHERE t.tenant_id = $1 AND t.created_at >= $4 AND t.created_at < $5
      AND (t.debit_account_id = $3 OR t.credit_account_id = $3)
      AND ((t.kind IN ('single', 'post_pending') AND t.code <> ALL($9::text[]))
           OR (t.kind = 'void_pending' AND t.code = $10))
    ON CONFLICT (tenant_id, transfer_id) DO NOTHING
    RETURNING line, amount
)
SELECT line, sum(amount)::bigint AS amount, count(*)::int AS transfers FROM moved GROUP BY line
"""


async def collect(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    statement_id: uuid.UUID,
    payable_id: uuid.UUID,
    since: datetime,
    before: datetime,
) -> dict[str, tuple[int, int]]:
    """Attach the day's transfers to the statement; returns {line: (amount, transfers)}. Planned for the values at
    hand (the app's connections default to generic plans, which cannot see that one tenant-day is ~10,000 rows)."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    rows = await conn.fetch(
        COLLECT_SQL,
        tenant_id,
        statement_id,
        payable_id,
        since,
        before,
        list(rules.GROSS_CODES),
        list(rules.REFUND_CODES),
        list(rules.COUPON_CODES),
        list(rules.OWN_CODES),
        rules.PAYOUT_FAILED_CODE,
    )
    return {row["line"]: (int(row["amount"]), int(row["transfers"])) for row in rows}


async def statement_lines(conn: asyncpg.Connection, tenant_id: uuid.UUID, statement_id: uuid.UUID) -> list[Row]:
    """What the listed transfers add up to per line (to check against the statement's figures)."""
    return list(
        await conn.fetch(
            """
            SELECT line, sum(amount)::bigint AS amount, count(*)::int AS transfers
            FROM settlement_statement_transfers WHERE tenant_id = $1 AND statement_id = $2 GROUP BY line
            """,
            tenant_id,
            statement_id,
        )
    )


async def statement_transfers(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, statement_id: uuid.UUID, after_seq: int, limit: int
) -> list[Row]:
    return list(
        await conn.fetch(
            """
            SELECT s.transfer_id, s.seq, s.line, s.code, s.amount, s.created_at, t.kind, t.reference::text AS reference
            FROM settlement_statement_transfers s
            JOIN ledger_transfers t ON t.id = s.transfer_id
            WHERE s.tenant_id = $1 AND s.statement_id = $2 AND s.seq > $3
            ORDER BY s.seq
            LIMIT $4
            """,
            tenant_id,
            statement_id,
            after_seq,
            limit,
        )
    )


async def unsettled_total(conn: asyncpg.Connection, tenant_id: uuid.UUID, payable_id: uuid.UUID) -> tuple[int, int]:
    """What the payable's collectable transfers in no statement yet add up to (signed), and how many there are."""
    row = await conn.fetchrow(
        """
        SELECT coalesce(sum(CASE WHEN t.kind = 'void_pending' OR t.credit_account_id = $2 THEN t.amount
                                 ELSE -t.amount END), 0)::bigint AS amount, count(*)::int AS transfers
        FROM ledger_transfers t
        WHERE t.tenant_id = $1 AND (t.debit_account_id = $2 OR t.credit_account_id = $2)
          AND ((t.kind IN ('single', 'post_pending') AND t.code <> ALL($3::text[]))
               OR (t.kind = 'void_pending' AND t.code = $4))
          AND NOT EXISTS (
              SELECT 1 FROM settlement_statement_transfers s WHERE s.tenant_id = $1 AND s.transfer_id = t.id)
        """,
        tenant_id,
        payable_id,
        list(rules.OWN_CODES),
        rules.PAYOUT_FAILED_CODE,
    )
    assert row is not None
    return int(row["amount"]), int(row["transfers"])


async def due_tenants(conn: asyncpg.Connection) -> list[Row]:
    """Every tenant with its time zone and its latest statement's date (None: never settled)."""
    return list(
        await conn.fetch(
            """
            SELECT t.id, t.slug, t.time_zone, (SELECT max(s.business_date) FROM settlement_statements s
                                               WHERE s.tenant_id = t.id) AS last_date
            FROM tenants t ORDER BY t.slug
            """
        )
    )


async def first_transfer_time(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> datetime | None:
    return await conn.fetchval("SELECT min(created_at) FROM ledger_transfers WHERE tenant_id = $1", tenant_id)


async def statement_transfer_pages(
    conn: asyncpg.Connection, tenant_id: uuid.UUID | None, pages: list[tuple[uuid.UUID, int, int]]
) -> list[Row]:
    """Pages of several statements' transfers in one query: (statement id, after seq, limit) each; each row carries
    `page`, the 1-based position of its page in `pages` (a page: the statement's transfers after seq, by seq)."""
    return list(
        await conn.fetch(
            """
            SELECT page.n AS page, x.*
            FROM unnest($2::uuid[], $3::bigint[], $4::int[]) WITH ORDINALITY AS page(statement_id, after_seq, size, n)
            CROSS JOIN LATERAL (
                SELECT s.transfer_id, s.seq, s.line, s.code, s.amount, s.created_at, t.kind,
                       t.reference::text AS reference
                FROM settlement_statement_transfers s
                JOIN settlement_statements st ON st.tenant_id = s.tenant_id AND st.id = s.statement_id
                JOIN ledger_transfers t ON t.id = s.transfer_id
                WHERE s.statement_id = page.statement_id AND s.seq > page.after_seq
                  AND ($1::uuid IS NULL OR st.tenant_id = $1)
                ORDER BY s.seq
                LIMIT page.size
            ) AS x
            ORDER BY page.n, x.seq
            """,
            tenant_id,
            [statement for statement, _, _ in pages],
            [after for _, after, _ in pages],
            [size for _, _, size in pages],
        )
    )


# ------------------------------------------------------------------------------------------------ revenue

# The payable's posted movements of a period, classified as a statement would (gross, refunds, coupons; anything
# else is not revenue), with what they are about: the payment named by the reference (the transfer's or, for a post,
# its pending's) and for coupons the lot session. Facility and channel come from the payments row (read-only join):
# the payments domain's transfers carry only {"payment_id"} in their reference.
REVENUE_SQL = """
WITH moved AS (
    SELECT t.amount,
           CASE WHEN t.credit_account_id = $2 AND (t.code = ANY($5::text[]) OR p.code = ANY($5::text[])) THEN 'gross'
                WHEN t.debit_account_id = $2 AND (t.code = ANY($6::text[]) OR p.code = ANY($6::text[])) THEN 'refunds'
                WHEN t.credit_account_id = $2 AND (t.code = ANY($7::text[]) OR p.code = ANY($7::text[])) THEN 'coupons'
           END AS line,
           coalesce(t.reference ->> 'payment_id', p.reference ->> 'payment_id') AS payment_ref,
           coalesce(t.reference ->> 'session', p.reference ->> 'session') AS session_ref
    FROM ledger_transfers t
    LEFT JOIN ledger_transfers p ON t.kind = 'post_pending' AND p.id = t.pending_id
    WHERE t.tenant_id = $1 AND t.created_at >= $3 AND t.created_at < $4
      AND (t.debit_account_id = $2 OR t.credit_account_id = $2) AND t.kind IN ('single', 'post_pending')
), described AS (
    SELECT m.line, m.amount, m.payment_ref,
           coalesce(pay.facility_id, ls.facility_id) AS facility_id,
           CASE WHEN pay.id IS NOT NULL THEN pay.provider || '/' || pay.method || '/' || pay.purpose
                WHEN m.line = 'coupons' THEN 'merchant_coupon'
                ELSE 'unattributed' END AS channel
    FROM moved m
    LEFT JOIN payments pay ON pay.tenant_id = $1
         AND pay.id = CASE WHEN m.payment_ref ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                           THEN m.payment_ref::uuid END
    LEFT JOIN lot_sessions ls ON ls.tenant_id = $1
         AND ls.id = CASE WHEN m.session_ref ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                          THEN m.session_ref::uuid END
    WHERE m.line IS NOT NULL
)
SELECT {key} AS key,
       coalesce(sum(amount) FILTER (WHERE line = 'gross'), 0)::bigint AS gross,
       coalesce(sum(amount) FILTER (WHERE line = 'refunds'), 0)::bigint AS refunds,
       coalesce(sum(amount) FILTER (WHERE line = 'coupons'), 0)::bigint AS coupons,
       count(DISTINCT payment_ref)::int AS payments
FROM described
GROUP BY 1
ORDER BY 1 NULLS LAST
"""
REVENUE_KEYS = {"facility": "facility_id::text", "channel": "channel"}


async def revenue(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    payable_id: uuid.UUID,
    since: datetime,
    until: datetime,
    group_by: str,
) -> list[Row]:
    return list(
        await conn.fetch(
            REVENUE_SQL.replace("{key}", REVENUE_KEYS[group_by]),
            tenant_id,
            payable_id,
            since,
            until,
            list(rules.GROSS_CODES),
            list(rules.REFUND_CODES),
            list(rules.COUPON_CODES),
        )
    )


async def city_revenue(conn: asyncpg.Connection, since: datetime, until: datetime) -> list[Row]:
    """Per tenant: gross, refunds and coupons on its payable in [since, until), and its open arrears (pending
    driver_receivable -> tenant_payable transfers created in the period, neither posted nor voided yet)."""
    return list(
        await conn.fetch(
            """
            WITH moved AS (
                SELECT t.tenant_id,
                       coalesce(sum(t.amount) FILTER (WHERE ca.kind = 'tenant_payable'
                           AND (t.code = ANY($3::text[]) OR p.code = ANY($3::text[]))), 0)::bigint AS gross,
                       coalesce(sum(t.amount) FILTER (WHERE da.kind = 'tenant_payable'
                           AND (t.code = ANY($4::text[]) OR p.code = ANY($4::text[]))), 0)::bigint AS refunds,
                       coalesce(sum(t.amount) FILTER (WHERE ca.kind = 'tenant_payable'
                           AND (t.code = ANY($5::text[]) OR p.code = ANY($5::text[]))), 0)::bigint AS coupons
                FROM ledger_transfers t
                JOIN ledger_accounts da ON da.id = t.debit_account_id
                JOIN ledger_accounts ca ON ca.id = t.credit_account_id
                LEFT JOIN ledger_transfers p ON t.kind = 'post_pending' AND p.id = t.pending_id
                WHERE t.created_at >= $1 AND t.created_at < $2 AND t.tenant_id IS NOT NULL
                  AND t.kind IN ('single', 'post_pending')
                  AND (da.kind = 'tenant_payable' OR ca.kind = 'tenant_payable')
                GROUP BY t.tenant_id
            ), arrears AS (
                SELECT a.tenant_id, sum(a.amount)::bigint AS open_arrears, count(*)::int AS open_count
                FROM ledger_transfers a
                JOIN ledger_accounts da ON da.id = a.debit_account_id AND da.kind = 'driver_receivable'
                JOIN ledger_accounts ca ON ca.id = a.credit_account_id AND ca.kind = 'tenant_payable'
                WHERE a.kind = 'pending' AND a.created_at >= $1 AND a.created_at < $2
                  AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = a.id)
                GROUP BY a.tenant_id
            )
            SELECT coalesce(m.tenant_id, a.tenant_id) AS tenant_id,
                   coalesce(m.gross, 0) AS gross, coalesce(m.refunds, 0) AS refunds,
                   coalesce(m.coupons, 0) AS coupons,
                   coalesce(a.open_arrears, 0) AS open_arrears, coalesce(a.open_count, 0) AS open_count
            FROM moved m FULL JOIN arrears a ON a.tenant_id = m.tenant_id
            ORDER BY 1
            """,
            since,
            until,
            list(rules.GROSS_CODES),
            list(rules.REFUND_CODES),
            list(rules.COUPON_CODES),
        )
    )


# ----------------------------------------------------------------------------------------- reconciliation

ITEM_COLUMNS = (
    "id, tenant_id, provider, business_date, kind, out_trade_no, payment_id, problem, provider_fen, ledger_fen, "
    "currency, provider_references, suspense_account, suspense_transfer_id, created_at, resolved_at, resolved_by, "
    "resolution_note"
)


async def lock_reconciliation(conn: asyncpg.Connection, provider: str, day: date) -> None:
    """Serialize reconciliations of one provider-day until the end of the transaction."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('reconciliation:' || $1 || ':' || $2, 0))",
        provider,
        day.isoformat(),
    )


async def clearing_movements(
    conn: asyncpg.Connection, clearing_id: uuid.UUID, since: datetime, before: datetime
) -> list[Row]:
    """The provider's clearing account's posted movements in [since, before), per (kind, payment named): payments
    (the clearing debited: the provider took money for the hub) and refunds (credited by a refund). Reconciliation's
    own corrections are left out."""
    return list(
        await conn.fetch(
            """
            SELECT CASE WHEN t.debit_account_id = $1 THEN 'payment' ELSE 'refund' END AS kind,
                   coalesce(t.reference ->> 'payment_id', p.reference ->> 'payment_id', t.id::text) AS payment_ref,
                   sum(t.amount)::bigint AS amount
            FROM ledger_transfers t
            LEFT JOIN ledger_transfers p ON t.kind = 'post_pending' AND p.id = t.pending_id
            WHERE (t.debit_account_id = $1
                   OR (t.credit_account_id = $1 AND (t.code = ANY($4::text[]) OR p.code = ANY($4::text[]))))
              AND t.kind IN ('single', 'post_pending') AND t.created_at >= $2 AND t.created_at < $3
              AND t.code <> $5
            GROUP BY 1, 2
            """,
            clearing_id,
            since,
            before,
            list(rules.REFUND_CODES),
            rules.RECONCILIATION_CODE,
        )
    )


async def payment_tenants(conn: asyncpg.Connection, payment_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The tenant of each known payment (read-only: payments belong to hub/payments)."""
    rows = await conn.fetch("SELECT id, tenant_id FROM payments WHERE id = ANY($1::uuid[])", payment_ids)
    return {row["id"]: row["tenant_id"] for row in rows}


async def recorded_items(conn: asyncpg.Connection, provider: str, day: date) -> set[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT kind, out_trade_no FROM reconciliation_items WHERE provider = $1 AND business_date = $2",
        provider,
        day,
    )
    return {(row["kind"], row["out_trade_no"]) for row in rows}


async def insert_items(conn: asyncpg.Connection, items: list[dict[str, Any]]) -> list[Row]:
    if not items:
        return []
    columns = list(items[0])
    rows = await conn.fetch(
        f"""
        INSERT INTO reconciliation_items ({", ".join(columns)})
        SELECT * FROM unnest({", ".join(f"${n}::{ITEM_TYPES[c]}[]" for n, c in enumerate(columns, start=1))})
        ON CONFLICT (provider, business_date, kind, out_trade_no) DO NOTHING
        RETURNING {ITEM_COLUMNS}
        """,
        *[[item[column] for item in items] for column in columns],
    )
    return list(rows)


ITEM_TYPES = {
    "tenant_id": "uuid",
    "provider": "text",
    "business_date": "date",
    "kind": "text",
    "out_trade_no": "text",
    "payment_id": "uuid",
    "problem": "text",
    "provider_fen": "bigint",
    "ledger_fen": "bigint",
    "currency": "text",
    "provider_references": "text",
    "suspense_account": "text",
    "suspense_transfer_id": "uuid",
}


async def items(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID | None,
    provider: str | None,
    since: date | None,
    until: date | None,
    unresolved_only: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row]:
    """Reconciliation items, newest first: of `tenant_id` (None: every item the scope sees), business dates in
    [since, until), keyset-paged by (created_at, id)."""
    return list(
        await conn.fetch(
            f"""
            SELECT {ITEM_COLUMNS} FROM reconciliation_items
            WHERE ($1::uuid IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR provider = $2)
              AND ($3::date IS NULL OR business_date >= $3) AND ($4::date IS NULL OR business_date < $4)
              AND (NOT $5 OR resolved_at IS NULL)
              AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT $8
            """,
            tenant_id,
            provider,
            since,
            until,
            unresolved_only,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
    )


async def item(conn: asyncpg.Connection, tenant_id: uuid.UUID | None, item_id: uuid.UUID) -> Row | None:
    return await conn.fetchrow(
        f"SELECT {ITEM_COLUMNS} FROM reconciliation_items WHERE id = $2 AND ($1::uuid IS NULL OR tenant_id = $1)",
        tenant_id,
        item_id,
    )


async def resolve_item(
    conn: asyncpg.Connection, tenant_id: uuid.UUID | None, item_id: uuid.UUID, note: str, by: str, at: datetime
) -> Row | None:
    """Mark an unresolved item resolved; None when it is not there (or not the tenant's) or already resolved."""
    return await conn.fetchrow(
        f"""
        UPDATE reconciliation_items SET resolved_at = $5, resolved_by = $4, resolution_note = $3
        WHERE id = $2 AND ($1::uuid IS NULL OR tenant_id = $1) AND resolved_at IS NULL
        RETURNING {ITEM_COLUMNS}
        """,
        tenant_id,
        item_id,
        note,
        by,
        at,
    )
