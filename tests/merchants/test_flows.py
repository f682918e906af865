"""Merchant codes end to end, through GraphQL and the lane endpoint: a shop gives a coupon to a plate, drivers
redeem meeting, VIP and prepay codes, the exit charges the rest and the merchant's fund pays the operator. The lot's
tariff is 500 fen an hour (tests/lanes/conftest.py HOURLY)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from tests.api.conftest import Callers
from tests.lanes.conftest import Lot, ago, fresh_plate, global_id
from tests.merchants.conftest import REDEEM, Shop


def now() -> datetime:
    return datetime.now(UTC)


async def test_a_shop_gives_a_two_hour_coupon_and_the_exit_charges_the_rest(lot: Lot, shop: Shop) -> None:
    book = await shop.book("MINUTES", count=10, unit_price_fen=600, minutes=120)
    assert book["fundedFen"] == 6000 and book["fund"]["balanceFen"] == 6000
    plate = fresh_plate()
    entry = await lot.gate.passage(lot.entry_lane, plate, ago(210))
    given = await shop.give(book["id"], plate)
    assert given["state"] == "RESERVED" and given["reservedFen"] == 1000  # two hours of this tariff
    assert await shop.fund() == {"balanceFen": 6000, "reservedFen": 1000, "availableFen": 5000}

    exit = await lot.gate.passage(lot.exit_lane, plate, now())
    assert exit["decision"] == "hold" and exit["amount_due_fen"] == 1000  # 4 hours charged, 2 covered
    assert (await lot.session(entry["session_id"]))["state"] == "OPEN"
    [redemption] = await shop.redemptions()
    assert (redemption["state"], redemption["valueFen"]) == ("RESERVED", None)


async def test_a_driver_paying_in_the_lot_pays_only_what_the_coupon_leaves(
    lot: Lot, shop: Shop, callers: Callers
) -> None:
    # Paying before leaving is priced as the exit lane would price it: the merchant's fund pays the covered part,
    # so charging the driver the full stay would pay the operator twice.
    book = await shop.book("MINUTES", count=10, unit_price_fen=600, minutes=120)
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(210))
    await shop.give(book["id"], plate)
    driver = await callers.driver()
    paid = await driver.data(
        """mutation($plate: String, $facilityId: ID, $key: String!) {
             payLotSession(plate: $plate, facilityId: $facilityId, idempotencyKey: $key) { amountFen } }""",
        {"plate": plate, "facilityId": lot.lot_id, "key": "pay-in-lot"},
    )
    assert paid["payLotSession"]["amountFen"] == 1000  # 4 hours charged, 2 covered by the coupon


async def test_a_coupon_that_covers_the_stay_opens_the_exit_and_the_fund_pays_the_operator(
    lot: Lot, shop: Shop
) -> None:
    book = await shop.book("MINUTES", count=2, unit_price_fen=1500, minutes=120)
    plate = fresh_plate()
    entry = await lot.gate.passage(lot.entry_lane, plate, ago(90))
    await shop.give(book["id"], plate)
    exit = await lot.gate.passage(lot.exit_lane, plate, now())
    assert (exit["decision"], exit["reason"], exit["amount_due_fen"]) == ("open", "coupon", 0)
    session = await lot.session(entry["session_id"])
    assert session["state"] == "CLOSED" and session["priceFen"] == 0
    coupon_lines = [line for line in session["quote"]["adjustments"] if line["kind"] == "coupon"]
    assert [line["amount_fen"] for line in coupon_lines] == [-1000]
    [redemption] = await shop.redemptions(session_id=global_id("LotSession", entry["session_id"]))
    assert (redemption["state"], redemption["valueFen"]) == ("APPLIED", 1000)
    assert await shop.fund() == {"balanceFen": 2000, "reservedFen": 0, "availableFen": 2000}


async def test_a_short_fund_covers_only_what_it_has_and_then_refuses(lot: Lot, shop: Shop) -> None:
    book = await shop.book("MINUTES", count=5, unit_price_fen=60, minutes=120)  # a fund of 300 fen
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(210))
    given = await shop.give(book["id"], plate)
    assert given["reservedFen"] == 300
    exit = await lot.gate.passage(lot.exit_lane, plate, now())
    assert exit["amount_due_fen"] == 1700  # 2000 less the 300 the fund had
    other = fresh_plate()
    await lot.gate.passage(lot.entry_lane, other, ago(60))
    from tests.merchants.conftest import GIVE

    assert await shop.error_code(GIVE, {"book": book["id"], "plate": other}) == "FUND_EXHAUSTED"
    assert (await shop.fund())["availableFen"] == 0


async def test_a_meeting_code_is_never_used_beyond_its_limit_under_concurrent_scans(
    lot: Lot, shop: Shop, callers: Callers
) -> None:
    book = await shop.book("AMOUNT", count=50, unit_price_fen=300, amountFen=300)
    code = await shop.code("MEETING", book["id"], limit=5, expiresAt=(now() + timedelta(hours=4)).isoformat())
    plates = [fresh_plate() for _ in range(20)]
    for plate in plates:
        await lot.gate.passage(lot.entry_lane, plate, ago(120))
    drivers = [await callers.driver() for _ in plates]
    bodies = await asyncio.gather(
        *(driver.post(REDEEM, {"code": code, "plate": plate}) for driver, plate in zip(drivers, plates, strict=True))
    )
    ok = [body for body in bodies if not body.get("errors")]
    refused = [body["errors"][0]["extensions"]["code"] for body in bodies if body.get("errors")]
    assert len(ok) == 5
    assert refused == ["CODE_EXHAUSTED"] * 15
    assert (await shop.fund())["reservedFen"] == 5 * 300
    assert len(await shop.redemptions()) == 5


async def test_a_vip_code_is_used_once_and_a_repeat_scan_returns_the_same_coupon(
    lot: Lot, shop: Shop, callers: Callers
) -> None:
    book = await shop.book("WAIVER", count=3, unit_price_fen=2000, waiverLimitFen=2000)
    code = await shop.code("VIP", book["id"], expiresAt=(now() + timedelta(days=1)).isoformat())
    first, second = fresh_plate(), fresh_plate()
    entry = await lot.gate.passage(lot.entry_lane, first, ago(150))
    await lot.gate.passage(lot.entry_lane, second, ago(150))
    driver = await callers.driver()
    redeemed = (await driver.data(REDEEM, {"code": code, "plate": first}))["redeemCode"]
    again = (await driver.data(REDEEM, {"code": code, "plate": first}))["redeemCode"]
    assert again["id"] == redeemed["id"]
    assert await (await callers.driver()).error_code(REDEEM, {"code": code, "plate": second}) == "CODE_EXHAUSTED"
    exit = await lot.gate.passage(lot.exit_lane, first, now())
    assert (exit["decision"], exit["reason"]) == ("open", "coupon")
    [redemption] = await shop.redemptions(session_id=global_id("LotSession", entry["session_id"]))
    assert redemption["valueFen"] == 1500 and redemption["state"] == "APPLIED"
    assert await shop.fund() == {"balanceFen": 6000 - 1500, "reservedFen": 0, "availableFen": 4500}


async def test_a_prepay_code_covers_the_stay_up_to_its_value(lot: Lot, shop: Shop, callers: Callers) -> None:
    book = await shop.book("AMOUNT", count=1, unit_price_fen=800, amountFen=800)
    code = await shop.code("PREPAY", book["id"], expiresAt=(now() + timedelta(days=1)).isoformat())
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(170))
    driver = await callers.driver()
    redeemed = (await driver.data(REDEEM, {"code": code, "plate": plate}))["redeemCode"]
    assert redeemed["reservedFen"] == 800
    exit = await lot.gate.passage(lot.exit_lane, plate, now())
    assert exit["amount_due_fen"] == 1500 - 800


async def test_redeeming_a_wrong_expired_or_unparked_code_says_why(lot: Lot, shop: Shop, callers: Callers) -> None:
    book = await shop.book("AMOUNT", count=10, unit_price_fen=100, amountFen=100)
    driver = await callers.driver()
    plate = fresh_plate()
    assert await driver.error_code(REDEEM, {"code": "C1.nonsense", "plate": plate}) == "CODE_NOT_FOUND"
    expired = await shop.code(
        "MEETING", book["id"], limit=3, validFrom=ago(120).isoformat(), expiresAt=ago(60).isoformat()
    )
    await lot.gate.passage(lot.entry_lane, plate, ago(30))
    assert await driver.error_code(REDEEM, {"code": expired, "plate": plate}) == "CODE_EXPIRED"
    live = await shop.code("MEETING", book["id"], limit=3, expiresAt=(now() + timedelta(hours=1)).isoformat())
    forged = live[:-4] + ("AAAA" if not live.endswith("AAAA") else "BBBB")
    assert await driver.error_code(REDEEM, {"code": forged, "plate": plate}) == "CODE_NOT_FOUND"
    assert await driver.error_code(REDEEM, {"code": live, "plate": fresh_plate()}) == "NO_OPEN_SESSION"
    assert await lot.admin.error_code(REDEEM, {"code": live, "plate": plate}) == "FORBIDDEN"


async def test_a_book_gives_no_more_coupons_than_it_has(lot: Lot, shop: Shop) -> None:
    book = await shop.book("AMOUNT", count=3, unit_price_fen=100, amountFen=100)
    from tests.merchants.conftest import CREATE_CODE

    expires = (now() + timedelta(hours=1)).isoformat()
    variables = {"input": {"kind": "MEETING", "bookId": book["id"], "limit": 4, "expiresAt": expires}}
    assert await shop.error_code(CREATE_CODE, variables) == "BOOK_EXHAUSTED"
    await shop.code("MEETING", book["id"], limit=3, expiresAt=expires)
    assert await shop.error_code(CREATE_CODE, {"input": {**variables["input"], "limit": 1}}) == "BOOK_EXHAUSTED"


async def test_a_whitelisted_exit_releases_the_reservation(lot: Lot, shop: Shop) -> None:
    book = await shop.book("AMOUNT", count=2, unit_price_fen=500, amountFen=500)
    plate = fresh_plate()
    entry = await lot.gate.passage(lot.entry_lane, plate, ago(100))
    await shop.give(book["id"], plate)
    await lot.whitelist(plate)
    exit = await lot.gate.passage(lot.exit_lane, plate, now())
    assert exit["reason"] == "whitelisted"
    [redemption] = await shop.redemptions(session_id=global_id("LotSession", entry["session_id"]))
    assert (redemption["state"], redemption["valueFen"]) == ("RELEASED", 0)
    assert await shop.fund() == {"balanceFen": 1000, "reservedFen": 0, "availableFen": 1000}


async def test_the_operator_admin_may_act_for_a_merchant_but_a_key_only_for_its_own(
    lot: Lot, shop: Shop, client: httpx.AsyncClient
) -> None:
    from tests.merchants.conftest import GIVE, make_shop

    other = await make_shop(lot, client, name="Book Shop")
    book = await shop.book("AMOUNT", count=2, unit_price_fen=100, amountFen=100)
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(60))
    # Another merchant's key can neither name this merchant nor use its book.
    assert await other.error_code(GIVE, {"book": book["id"], "plate": plate, "m": shop.merchant_id}) == "FORBIDDEN"
    assert await other.error_code(GIVE, {"book": book["id"], "plate": plate}) == "BOOK_NOT_FOUND"
    # Operator staff are not admins; the admin may act for the merchant by naming it.
    assert await lot.staff.error_code(GIVE, {"book": book["id"], "plate": plate, "m": shop.merchant_id}) == "FORBIDDEN"
    given = await lot.admin.data(GIVE, {"book": book["id"], "plate": plate, "m": shop.merchant_id})
    assert given["giveCouponToPlate"]["reservedFen"] == 100
    bad_key = Shop(lot, client, shop.merchant_id, shop.key[:-2] + "xx")
    assert await bad_key.error_code(GIVE, {"book": book["id"], "plate": plate}) == "INVALID_MERCHANT_KEY"
