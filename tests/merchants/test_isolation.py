"""Another operator's merchant cannot issue coupons here: through the API its key only reaches its own operator's
books and sessions, and as the application role row-level security hides and refuses the other tenant's rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hub.db import Database, Scope
from tests.lanes.conftest import Lot, MakeLot, ago, fresh_plate, row_id
from tests.merchants.conftest import GIVE, Shop, make_shop

TABLES = ("merchants", "merchant_keys", "coupon_books", "merchant_codes", "coupon_redemptions")


async def test_a_merchant_of_another_operator_cannot_issue_here(
    lot: Lot, shop: Shop, make_lot: MakeLot, client: httpx.AsyncClient, db: Database
) -> None:
    here = await shop.book("AMOUNT", count=2, unit_price_fen=100, amountFen=100)
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(60))
    given = await shop.give(here["id"], plate)

    elsewhere = await make_lot()
    stranger = await make_shop(elsewhere, client, name="Stranger")
    theirs = await stranger.book("AMOUNT", count=2, unit_price_fen=100, amountFen=100)
    assert await stranger.error_code(GIVE, {"book": here["id"], "plate": plate}) == "BOOK_NOT_FOUND"
    assert await stranger.error_code(GIVE, {"book": theirs["id"], "plate": plate}) == "NO_OPEN_SESSION"
    # Naming this operator's merchant with the stranger's key is refused too.
    assert await stranger.error_code(GIVE, {"book": here["id"], "plate": plate, "m": shop.merchant_id}) == "FORBIDDEN"

    # As the application role, under the other operator's scope: nothing of this operator is visible or writable.
    async with db.transaction(Scope("operator", tenant_id=elsewhere.tenant_id)) as session:
        for table in TABLES:
            count = await session.scalar(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": lot.tenant_id}
            )
            assert count == 0, table
    moment = datetime.now(UTC)
    with pytest.raises(DBAPIError, match="row-level security"):
        async with db.transaction(Scope("operator", tenant_id=elsewhere.tenant_id)) as session:
            await session.execute(
                text(
                    "INSERT INTO merchant_codes (tenant_id, merchant_id, book_id, kind, plate, use_limit, valid_from, "
                    "expires_at, created_by) VALUES (:t, :m, :b, 'merchant', 'X', 1, :start, :end, 'intruder')"
                ),
                {
                    "t": lot.tenant_id,
                    "m": row_id(shop.merchant_id),
                    "b": row_id(here["id"]),
                    "start": moment,
                    "end": moment + timedelta(days=1),
                },
            )
    # A driver sees no merchant rows at all, and the redemption made here is still this operator's own.
    async with db.transaction(Scope("driver", user_id=lot.tenant_id)) as session:
        for table in TABLES:
            assert await session.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table
    async with db.transaction(Scope("operator", tenant_id=lot.tenant_id)) as session:
        count = await session.scalar(
            text("SELECT count(*) FROM coupon_redemptions WHERE tenant_id = :t AND id = :id"),
            {"t": lot.tenant_id, "id": row_id(given["id"])},
        )
    assert count == 1
