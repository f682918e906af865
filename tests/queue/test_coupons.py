"""Merchant coupons on a session an agent closes by hand or waives: the amount the agent sets is not a tariff price
a coupon discounted, so each reservation is released and the merchant's fund is whole again; the ledger stays
sound."""

from __future__ import annotations

import httpx
import pytest

from hub.db import Database
from hub.ledger import service as ledger
from tests.lanes.conftest import ago, fresh_plate, global_id
from tests.merchants.conftest import make_shop
from tests.queue.conftest import CLAIM, CLOSE_AT, WAIVE, Desk


@pytest.mark.parametrize("action", ["waive", "close_at_amount"])
async def test_an_agents_close_releases_the_sessions_coupons(
    desk: Desk, client: httpx.AsyncClient, owner_db: Database, action: str
) -> None:
    lot, alice = desk.lot, desk.alice
    shop = await make_shop(lot, client)
    book = await shop.book("MINUTES", count=4, unit_price_fen=600, minutes=60)
    plate = fresh_plate()
    entered = await lot.gate.passage(lot.entry_lane, plate, ago(150))
    given = await shop.give(book["id"], plate)
    assert given["state"] == "RESERVED" and given["reservedFen"] > 0
    held = await lot.gate.passage(lot.exit_lane, plate, ago(1), confidence=0.4)
    assert (held["decision"], held["reason"]) == ("hold", "low_confidence")
    exception_id = global_id("LaneException", held["exception_id"])
    await alice.data(CLAIM, {"id": exception_id})

    if action == "waive":
        await alice.data(WAIVE, {"id": exception_id, "reason": "barrier fault, let out"})
    else:
        await alice.data(CLOSE_AT, {"id": exception_id, "amountFen": 300, "reason": "paid cash at the booth"})

    [redemption] = await shop.redemptions(session_id=global_id("LotSession", entered["session_id"]))
    assert (redemption["state"], redemption["valueFen"]) == ("RELEASED", 0)
    assert await shop.fund() == {"balanceFen": 2400, "reservedFen": 0, "availableFen": 2400}
    async with owner_db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert await ledger.check_invariants(raw.driver_connection) == []
