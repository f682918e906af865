"""All SQL of merchants, their keys, books, codes and redemptions. Every statement filters by tenant explicitly, and
everything a merchant does also by the merchant; row-level security is the second wall. Statements run on the
session's asyncpg connection (the exit's query runs inside the lane decision's transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

Row = Mapping[str, Any]
Cursor = tuple[datetime, uuid.UUID] | None

# ------------------------------------------------------------------------------------------------ merchants


async def tenant_currency(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> str | None:
    """The operator's currency (what its merchants' funds and coupons are counted in)."""
    return await conn.fetchval("SELECT currency FROM tenants WHERE id = $1", tenant_id)


async def insert_merchant(conn: asyncpg.Connection, tenant_id: uuid.UUID, name: str, contact: str | None) -> Row | None:
    """None when a live merchant of the tenant already has this name."""
    return await conn.fetchrow(
        """INSERT INTO merchants (tenant_id, name, contact) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id, name) WHERE retired_at IS NULL DO NOTHING RETURNING *""",
        tenant_id,
        name,
        contact,
    )


async def retire_merchant(conn: asyncpg.Connection, tenant_id: uuid.UUID, merchant_id: uuid.UUID) -> Row | None:
    return await conn.fetchrow(
        """UPDATE merchants SET retired_at = now(), updated_at = now()
           WHERE tenant_id = $1 AND id = $2 AND retired_at IS NULL RETURNING *""",
        tenant_id,
        merchant_id,
    )


async def merchant(conn: asyncpg.Connection, tenant_id: uuid.UUID, merchant_id: uuid.UUID) -> Row | None:
    return await conn.fetchrow("SELECT * FROM merchants WHERE tenant_id = $1 AND id = $2", tenant_id, merchant_id)


async def lock_live_merchant(conn: asyncpg.Connection, tenant_id: uuid.UUID, merchant_id: uuid.UUID) -> bool:
    """Lock the merchant's row until the transaction ends: its fund's reservations are made one at a time."""
    found = await conn.fetchval(
        "SELECT id FROM merchants WHERE tenant_id = $1 AND id = $2 AND retired_at IS NULL FOR UPDATE",
        tenant_id,
        merchant_id,
    )
    return found is not None


async def merchants(conn: asyncpg.Connection, tenant_id: uuid.UUID, include_retired: bool) -> list[Row]:
    return await conn.fetch(
        """SELECT * FROM merchants WHERE tenant_id = $1 AND ($2 OR retired_at IS NULL)
           ORDER BY name, id""",
        tenant_id,
        include_retired,
    )


# ----------------------------------------------------------------------------------------------------- keys


async def insert_key(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    key_id: uuid.UUID,
    merchant_id: uuid.UUID,
    secret_hash: bytes,
    label: str | None,
) -> Row:
    return await conn.fetchrow(
        """INSERT INTO merchant_keys (tenant_id, id, merchant_id, secret_hash, label) VALUES ($1, $2, $3, $4, $5)
           RETURNING id, tenant_id, merchant_id, label, created_at, revoked_at""",
        tenant_id,
        key_id,
        merchant_id,
        secret_hash,
        label,
    )


async def live_key(conn: asyncpg.Connection, tenant_id: uuid.UUID, key_id: uuid.UUID) -> Row | None:
    """The key and its merchant, when neither is revoked or retired."""
    return await conn.fetchrow(
        """SELECT k.id, k.merchant_id, k.secret_hash FROM merchant_keys k
           JOIN merchants m ON m.tenant_id = k.tenant_id AND m.id = k.merchant_id
           WHERE k.tenant_id = $1 AND k.id = $2 AND k.revoked_at IS NULL AND m.retired_at IS NULL""",
        tenant_id,
        key_id,
    )


async def revoke_key(conn: asyncpg.Connection, tenant_id: uuid.UUID, key_id: uuid.UUID) -> Row | None:
    return await conn.fetchrow(
        """UPDATE merchant_keys SET revoked_at = coalesce(revoked_at, now()) WHERE tenant_id = $1 AND id = $2
           RETURNING id, tenant_id, merchant_id, label, created_at, revoked_at""",
        tenant_id,
        key_id,
    )


# ---------------------------------------------------------------------------------------------------- books


async def insert_book(conn: asyncpg.Connection, values: Mapping[str, Any]) -> Row:
    columns = list(values)
    placeholders = ", ".join(f"${index + 1}" for index in range(len(columns)))
    return await conn.fetchrow(
        f"INSERT INTO coupon_books ({', '.join(columns)}) VALUES ({placeholders}) RETURNING *",
        *values.values(),
    )


async def book(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, book_id: uuid.UUID, merchant_id: uuid.UUID | None = None
) -> Row | None:
    """A book of the tenant (and of `merchant_id`, when given)."""
    return await conn.fetchrow(
        "SELECT * FROM coupon_books WHERE tenant_id = $1 AND id = $2 AND ($3::uuid IS NULL OR merchant_id = $3)",
        tenant_id,
        book_id,
        merchant_id,
    )


async def allocate(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, merchant_id: uuid.UUID, book_id: uuid.UUID, coupons: int
) -> Row | None:
    """Take `coupons` coupons of the merchant's book for a code; None when the book has fewer left (or is not
    the merchant's)."""
    return await conn.fetchrow(
        """UPDATE coupon_books SET allocated = allocated + $4
           WHERE tenant_id = $1 AND id = $3 AND merchant_id = $2 AND allocated + $4 <= count
           RETURNING *""",
        tenant_id,
        merchant_id,
        book_id,
        coupons,
    )


async def books(conn: asyncpg.Connection, tenant_id: uuid.UUID, merchant_id: uuid.UUID | None) -> list[Row]:
    return await conn.fetch(
        """SELECT * FROM coupon_books WHERE tenant_id = $1 AND ($2::uuid IS NULL OR merchant_id = $2)
           ORDER BY created_at DESC, id DESC LIMIT 500""",
        tenant_id,
        merchant_id,
    )


# ---------------------------------------------------------------------------------------------------- codes

CODE_COLUMNS = """id, tenant_id, merchant_id, book_id, kind, plate, label, use_limit, used, valid_from, expires_at,
                  created_by, created_at, revoked_at"""


async def insert_code(conn: asyncpg.Connection, values: Mapping[str, Any]) -> Row:
    columns = list(values)
    placeholders = ", ".join(f"${index + 1}" for index in range(len(columns)))
    return await conn.fetchrow(
        f"INSERT INTO merchant_codes ({', '.join(columns)}) VALUES ({placeholders}) RETURNING {CODE_COLUMNS}",
        *values.values(),
    )


async def code_with_secret(conn: asyncpg.Connection, tenant_id: uuid.UUID, code_id: uuid.UUID) -> Row | None:
    return await conn.fetchrow(
        f"SELECT {CODE_COLUMNS}, secret_hash FROM merchant_codes WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        code_id,
    )


async def use_code(conn: asyncpg.Connection, tenant_id: uuid.UUID, code_id: uuid.UUID, now: datetime) -> Row | None:
    """Count one use of the code when it is live, valid at `now` and below its limit; None otherwise. The row
    lock this takes makes concurrent uses of one code wait for each other, so `used` never passes the limit."""
    return await conn.fetchrow(
        f"""UPDATE merchant_codes SET used = used + 1
            WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL AND used < use_limit
              AND valid_from <= $3 AND expires_at > $3
            RETURNING {CODE_COLUMNS}""",
        tenant_id,
        code_id,
        now,
    )


async def revoke_code(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, code_id: uuid.UUID, merchant_id: uuid.UUID | None
) -> Row | None:
    return await conn.fetchrow(
        f"""UPDATE merchant_codes SET revoked_at = coalesce(revoked_at, now())
            WHERE tenant_id = $1 AND id = $2 AND ($3::uuid IS NULL OR merchant_id = $3) RETURNING {CODE_COLUMNS}""",
        tenant_id,
        code_id,
        merchant_id,
    )


async def codes(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, merchant_id: uuid.UUID | None, first: int, after: Cursor
) -> list[Row]:
    """Codes newest first, plus one more row when a next page exists."""
    return await conn.fetch(
        f"""SELECT {CODE_COLUMNS} FROM merchant_codes
            WHERE tenant_id = $1 AND ($2::uuid IS NULL OR merchant_id = $2)
              AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
            ORDER BY created_at DESC, id DESC LIMIT $5""",
        tenant_id,
        merchant_id,
        None if after is None else after[0],
        None if after is None else after[1],
        first + 1,
    )


# ------------------------------------------------------------------------------------------------- sessions


async def open_session(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    plates: list[str],
    driver_id: uuid.UUID | None,
    facility_id: uuid.UUID | None,
) -> Row | None:
    """The latest open lot session of one of `plates` (or, without a plate, of the driver) in the tenant's
    facilities (or in `facility_id`), with its facility's time zone."""
    return await conn.fetchrow(
        """SELECT s.id, s.facility_id, s.plate, s.driver_id, s.entered_at, s.tariff_version_id, s.vehicle_class,
                  f.time_zone
           FROM lot_sessions s JOIN facilities f ON f.tenant_id = s.tenant_id AND f.id = s.facility_id
           WHERE s.tenant_id = $1 AND s.state = 'open' AND ($4::uuid IS NULL OR s.facility_id = $4)
             AND (s.plate = ANY($2::text[]) OR (s.plate IS NULL AND $3::uuid IS NOT NULL AND s.driver_id = $3))
           ORDER BY s.entered_at DESC, s.id LIMIT 1""",
        tenant_id,
        plates,
        driver_id,
        facility_id,
    )


async def lock_stay_for_coupon(conn: asyncpg.Connection, tenant_id: uuid.UUID, session_id: uuid.UUID) -> Row | None:
    """The open lot session locked (hub/payments locks it too when it prices a payment, so a coupon and a payment
    of one stay are decided one after the other) and touched (its updated_at: an exit deciding on what it read
    before decides again), with what the driver paid towards it (`paid_fen`) and whether money is on its way: a
    payment not settled yet, or an auto-pay charge pending or captured. None when the session is no longer open
    (closed meanwhile by an exit)."""
    return await conn.fetchrow(
        """UPDATE lot_sessions s SET updated_at = clock_timestamp()
           WHERE s.tenant_id = $1 AND s.id = $2 AND s.state = 'open'
           RETURNING s.paid_fen,
                  EXISTS (SELECT 1 FROM payments p WHERE p.tenant_id = s.tenant_id AND p.subject_id = s.id
                          AND p.state IN ('created', 'requested', 'unknown')) AS paying,
                  EXISTS (SELECT 1 FROM pending_charges c WHERE c.tenant_id = s.tenant_id AND c.session_id = s.id
                          AND c.state IN ('pending', 'captured')) AS charged""",
        tenant_id,
        session_id,
    )


# ---------------------------------------------------------------------------------------------- redemptions


async def redemption_of(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, code_id: uuid.UUID, session_id: uuid.UUID
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM coupon_redemptions WHERE tenant_id = $1 AND code_id = $2 AND session_id = $3",
        tenant_id,
        code_id,
        session_id,
    )


async def insert_redemption(conn: asyncpg.Connection, values: Mapping[str, Any]) -> Row | None:
    """None when the code already has a redemption on this session (a concurrent duplicate)."""
    columns = list(values)
    placeholders = ", ".join(f"${index + 1}" for index in range(len(columns)))
    return await conn.fetchrow(
        f"""INSERT INTO coupon_redemptions ({", ".join(columns)}) VALUES ({placeholders})
            ON CONFLICT (tenant_id, code_id, session_id) DO NOTHING RETURNING *""",
        *values.values(),
    )


RESERVED_COUPONS_SQL = """
SELECT id, merchant_id, kind, minutes, amount_fen, reserved_fen, reserve_transfer_id
FROM coupon_redemptions WHERE tenant_id = $1 AND session_id = $2 AND state = 'reserved'
ORDER BY redeemed_at, id
"""


async def reserved_coupons(conn: asyncpg.Connection, tenant_id: uuid.UUID, session_id: uuid.UUID) -> list[Row]:
    """The coupons still reserved on a session (the exit's one extra query; a partial index serves it)."""
    return await conn.fetch(RESERVED_COUPONS_SQL, tenant_id, session_id)


async def settle_redemption(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, redemption_id: uuid.UUID, value_fen: int, at: datetime
) -> bool:
    found = await conn.fetchval(
        """UPDATE coupon_redemptions
           SET value_fen = $3::bigint, settled_at = $4,
               state = CASE WHEN $3::bigint > 0 THEN 'applied' ELSE 'released' END
           WHERE tenant_id = $1 AND id = $2 AND state = 'reserved' RETURNING id""",
        tenant_id,
        redemption_id,
        value_fen,
        at,
    )
    return found is not None


async def redemptions(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    merchant_id: uuid.UUID | None,
    session_id: uuid.UUID | None,
    first: int,
    after: Cursor,
) -> list[Row]:
    """Redemptions newest first, plus one more row when a next page exists."""
    return await conn.fetch(
        """SELECT * FROM coupon_redemptions
           WHERE tenant_id = $1 AND ($2::uuid IS NULL OR merchant_id = $2) AND ($3::uuid IS NULL OR session_id = $3)
             AND ($4::timestamptz IS NULL OR (redeemed_at, id) < ($4, $5))
           ORDER BY redeemed_at DESC, id DESC LIMIT $6""",
        tenant_id,
        merchant_id,
        session_id,
        None if after is None else after[0],
        None if after is None else after[1],
        first + 1,
    )
