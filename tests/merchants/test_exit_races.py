"""A coupon or a payment that lands while an exit is being decided: the exit priced the stay as it read it, so it
must not close the session (or charge it) on that stale view. It decides again, and the coupon is counted once:
the driver is charged what the coupon leaves and the merchant's fund pays the rest (before, the auto-pay charge
took the full price and the coupon stayed reserved on a closed session)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from hub.db import Database
from hub.lanes import repository as lane_repository
from tests.lanes.conftest import Lot, ago, fresh_plate, global_id
from tests.lanes.test_exit import ADD_VEHICLE, SET_AUTO_PAY
from tests.merchants.conftest import Shop


async def test_a_coupon_given_while_the_exit_decides_is_counted_once(
    lot: Lot, shop: Shop, callers: Any, owner_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = await shop.book("MINUTES", count=10, unit_price_fen=600, minutes=120)
    plate = fresh_plate()
    driver = await callers.driver()
    await driver.data(ADD_VEHICLE, {"plate": plate})
    await driver.data(SET_AUTO_PAY, {"plate": plate, "enabled": True})
    entry = await lot.gate.passage(lot.entry_lane, plate, ago(130))  # 1500 fen at the lot's 500 an hour

    read_context = lane_repository.decision_context
    given: list[dict[str, Any]] = []

    async def coupon_lands_after_the_read(*args: Any) -> Any:
        rows = await read_context(*args)
        if not given:  # the shop's coupon commits between the exit's read and its write
            given.append(await shop.give(book["id"], plate))
        return rows

    monkeypatch.setattr(lane_repository, "decision_context", coupon_lands_after_the_read)
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    monkeypatch.undo()

    assert (exit["decision"], exit["reason"]) == ("open", "auto_pay")
    assert given and given[0]["reservedFen"] == 1000
    async with owner_db.engine.connect() as conn:
        charged = (
            await conn.execute(
                text("SELECT amount_fen FROM pending_charges WHERE session_id = :s"), {"s": entry["session_id"]}
            )
        ).scalar_one()
    assert charged == 1500 - 1000  # the coupon's two hours are not charged to the driver
    [redemption] = await shop.redemptions(session_id=global_id("LotSession", entry["session_id"]))
    assert (redemption["state"], redemption["valueFen"]) == ("APPLIED", 1000)
    assert await shop.fund() == {"balanceFen": 5000, "reservedFen": 0, "availableFen": 5000}
