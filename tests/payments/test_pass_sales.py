"""Monthly pass sales through GraphQL: an operator admin defines an offer, a driver buys a month of it for a plate,
the sandbox's callback reaches the connector endpoint and the inbox, the worker applies it once: the ledger captures
(`pass_sale`), the pass exists and the lane opens for the plate. A failed payment makes no pass; a full refund
revokes it, a partial one leaves it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from hub.access.offer_rules import month_end
from hub.db import Database
from hub.ledger.rules import account_id
from tests.lanes.conftest import Lot, ago, fresh_plate, row_id
from tests.payments.test_lot_payments import balance, settle
from tests.payments.test_refunds import REFUND, payment_of

CREATE_OFFER = """mutation($input: PassOfferInput!) { createPassOffer(input: $input) {
  id name priceFen onSale weekdays windowStart windowEnd facilities { id } } }"""
UPDATE_OFFER = """mutation($id: ID!, $input: UpdatePassOfferInput!) { updatePassOffer(id: $id, input: $input) {
  id priceFen onSale } }"""
OFFERS_AT = "query($f: ID!) { passOffers(facilityId: $f) { id name priceFen } }"
OPERATOR_OFFERS = "{ operatorPassOffers { id onSale } }"
BUY = """mutation($offer: ID!, $plate: String!, $startsOn: Date!, $key: String!) {
  buyPass(offerId: $offer, plate: $plate, startsOn: $startsOn, idempotencyKey: $key) {
    id state amountFen purpose plate periodStart periodEnd } }"""
PASSES = """query($plate: String) { vehiclePasses(plate: $plate, includeRevoked: true) {
  edges { node { id plate validFrom validUntil revokedAt facilities { id } } } } }"""
MY_PAYMENTS = "{ myPayments(first: 50) { edges { node { id state } } } }"
PRICE = 30_000
ZONE = ZoneInfo("Asia/Shanghai")


def today() -> date:
    return datetime.now(UTC).astimezone(ZONE).date()


async def offer_of(lot: Lot, **fields: Any) -> dict[str, Any]:
    values = {"name": "Monthly, all day", "facilityIds": [lot.lot_id], "priceFen": PRICE, **fields}
    return (await lot.admin.data(CREATE_OFFER, {"input": values}))["createPassOffer"]


async def passes_of(lot: Lot, plate: str) -> list[dict[str, Any]]:
    return [edge["node"] for edge in (await lot.staff.data(PASSES, {"plate": plate}))["vehiclePasses"]["edges"]]


async def bought(lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database) -> tuple[Any, str, str]:
    """A driver's succeeded purchase of a month from today: (driver, payment id, plate)."""
    offer = await offer_of(lot)
    plate = fresh_plate()
    driver = await callers.driver()
    paid = (await driver.data(BUY, {"offer": offer["id"], "plate": plate, "startsOn": str(today()), "key": "m1"}))[
        "buyPass"
    ]
    await settle(run_worker, sandbox, db)
    return driver, paid["id"], plate


async def test_operators_define_offers_and_drivers_list_those_on_sale(lot: Lot, callers: Any) -> None:
    offer = await offer_of(lot, weekdays=[1, 2, 3, 4, 5], windowStart="08:00", windowEnd="19:00")
    assert (offer["priceFen"], offer["onSale"], offer["windowStart"], offer["windowEnd"]) == (
        PRICE,
        True,
        "08:00",
        "19:00",
    )
    assert [facility["id"] for facility in offer["facilities"]] == [lot.lot_id]
    night = await offer_of(lot, name="Nights", priceFen=9_000, windowStart="19:00", windowEnd="08:00")
    anonymous = callers.anonymous()
    listed = (await anonymous.data(OFFERS_AT, {"f": lot.lot_id}))["passOffers"]
    assert [item["id"] for item in listed] == [night["id"], offer["id"]]  # cheapest first
    await lot.admin.data(UPDATE_OFFER, {"id": night["id"], "input": {"onSale": False}})
    listed = (await anonymous.data(OFFERS_AT, {"f": lot.lot_id}))["passOffers"]
    assert [item["id"] for item in listed] == [offer["id"]]
    # The operator's staff see both; staff cannot change them; another operator sees none.
    assert len((await lot.staff.data(OPERATOR_OFFERS))["operatorPassOffers"]) == 2
    code = await lot.staff.error_code(UPDATE_OFFER, {"id": offer["id"], "input": {"priceFen": 1}})
    assert code == "FORBIDDEN"
    other = await callers.operator()
    assert (await other.data(OPERATOR_OFFERS))["operatorPassOffers"] == []
    code = await other.error_code(UPDATE_OFFER, {"id": offer["id"], "input": {"priceFen": 1}})
    assert code == "NOT_FOUND"
    # Bad input is refused with a typed error and nothing written.
    code = await lot.admin.error_code(CREATE_OFFER, {"input": {"name": "x", "facilityIds": [], "priceFen": 1}})
    assert code == "EMPTY_FACILITIES"
    code = await lot.admin.error_code(
        CREATE_OFFER, {"input": {"name": "x", "facilityIds": [lot.lot_id], "priceFen": 0}}
    )
    assert code == "INVALID_AMOUNT"
    assert len((await lot.staff.data(OPERATOR_OFFERS))["operatorPassOffers"]) == 2


async def test_buy_a_month_then_the_lane_opens_for_the_plate(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    offer = await offer_of(lot)
    plate = fresh_plate()
    driver = await callers.driver()
    start = today()
    variables = {"offer": offer["id"], "plate": plate, "startsOn": str(start), "key": "month-1"}
    paid = (await driver.data(BUY, variables))["buyPass"]
    assert (paid["state"], paid["amountFen"], paid["purpose"], paid["plate"]) == ("CREATED", PRICE, "pass", plate)
    again = (await driver.data(BUY, variables))["buyPass"]
    assert again["id"] == paid["id"]  # the same key: the same payment
    assert await passes_of(lot, plate) == []  # nothing until the payment succeeds

    await settle(run_worker, sandbox, db)
    await settle(run_worker, sandbox, db)  # applied again: still one pass
    mine = [edge["node"] for edge in (await driver.data(MY_PAYMENTS))["myPayments"]["edges"]]
    assert [(p["id"], p["state"]) for p in mine] == [(paid["id"], "SUCCEEDED")]
    [sold] = await passes_of(lot, plate)
    assert (sold["validFrom"], sold["validUntil"], sold["revokedAt"]) == (str(start), str(month_end(start)), None)
    assert [facility["id"] for facility in sold["facilities"]] == [lot.lot_id]

    # The lane: in and out free within the pass.
    assert (await lot.gate.passage(lot.entry_lane, plate, ago(90)))["decision"] == "open"
    answer = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    assert (answer["decision"], answer["reason"], answer["amount_due_fen"]) == ("open", "pass", 0)

    # The ledger: the money came in through the driver's wallet and was sold to the operator (gross for settlement).
    payable = await balance(owner_db, account_id("tenant_payable", lot.tenant_id))
    assert payable[3] == PRICE
    prepaid = await balance(owner_db, account_id("driver_prepaid", driver.user_id))
    assert prepaid[3] - prepaid[1] == 0
    async with owner_db.engine.connect() as conn:
        codes = (
            await conn.execute(
                text("SELECT code FROM ledger_transfers WHERE reference->>'payment_id' = :p ORDER BY code"),
                {"p": str(row_id(paid["id"]))},
            )
        ).scalars()
        assert list(codes) == ["pass_sale", "payment_in"]


async def test_a_failed_payment_makes_no_pass(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    offer = await offer_of(lot)
    plate = fresh_plate()
    driver = await callers.driver()
    paid = (await driver.data(BUY, {"offer": offer["id"], "plate": plate, "startsOn": str(today()), "key": "k"}))[
        "buyPass"
    ]
    sandbox.set_outcome(row_id(paid["id"]).hex, "fail")
    await settle(run_worker, sandbox, db)
    mine = [edge["node"] for edge in (await driver.data(MY_PAYMENTS))["myPayments"]["edges"]]
    assert [p["state"] for p in mine] == ["FAILED"]
    assert await passes_of(lot, plate) == []
    assert (await balance(owner_db, account_id("tenant_payable", lot.tenant_id)))[3] == 0
    await lot.gate.passage(lot.entry_lane, plate, ago(90))
    answer = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    assert (answer["decision"], answer["reason"]) == ("hold", "payment_due")


async def test_what_cannot_be_bought(lot: Lot, callers: Any) -> None:
    offer = await offer_of(lot)
    driver = await callers.driver()
    plate = fresh_plate()
    base = {"offer": offer["id"], "plate": plate, "key": "k"}
    assert await driver.error_code(BUY, {**base, "startsOn": str(today() - timedelta(days=1))}) == "START_IN_PAST"
    assert await driver.error_code(BUY, {**base, "startsOn": str(today() + timedelta(days=400))}) == "START_TOO_FAR"
    assert await driver.error_code(BUY, {**base, "plate": "?", "startsOn": str(today())}) == "INVALID_PLATE"
    assert await lot.staff.error_code(BUY, {**base, "startsOn": str(today())}) == "FORBIDDEN"
    await lot.admin.data(UPDATE_OFFER, {"id": offer["id"], "input": {"onSale": False}})
    assert await driver.error_code(BUY, {**base, "startsOn": str(today())}) == "OFFER_NOT_ON_SALE"


async def test_a_full_refund_revokes_the_pass_a_partial_one_leaves_it(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database
) -> None:
    _driver, payment_id, plate = await bought(lot, callers, run_worker, sandbox, db)
    await lot.admin.data(REFUND, {"id": payment_id, "amount": 1_000, "reason": "a week away", "key": "r1"})
    await settle(run_worker, sandbox, db)
    assert (await payment_of(lot.staff, payment_id))["refundedFen"] == 1_000
    [sold] = await passes_of(lot, plate)
    assert sold["revokedAt"] is None

    await lot.admin.data(REFUND, {"id": payment_id, "amount": PRICE - 1_000, "reason": "moved away", "key": "r2"})
    await settle(run_worker, sandbox, db)
    assert (await payment_of(lot.staff, payment_id))["refundedFen"] == PRICE
    [sold] = await passes_of(lot, plate)
    assert sold["revokedAt"] is not None
    await lot.gate.passage(lot.entry_lane, plate, ago(90))
    answer = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    assert (answer["decision"], answer["reason"]) == ("hold", "payment_due")
