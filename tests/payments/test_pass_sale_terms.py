"""What a bought month is: the offer's terms as they were when the driver paid (an offer edited before the payment
succeeds does not change the pass), and never a second pass for days the plate already has one for, bought, being
paid for, or granted by the operator (PASS_OVERLAPS)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.access.offer_rules import month_end
from hub.db import Database
from tests.access.ops import CREATE_PASS, PASS_FIELDS
from tests.lanes.conftest import Lot, fresh_plate
from tests.payments.test_lot_payments import settle
from tests.payments.test_pass_sales import BUY, UPDATE_OFFER, offer_of, today

TERMS = f"query($plate: String) {{ vehiclePasses(plate: $plate) {{ edges {{ node {{ {PASS_FIELDS} }} }} }} }}"


async def terms_of_passes(lot: Lot, plate: str) -> list[dict[str, Any]]:
    edges = (await lot.staff.data(TERMS, {"plate": plate}))["vehiclePasses"]["edges"]
    return [edge["node"] for edge in edges]


async def test_the_pass_has_the_terms_the_driver_paid_for(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database
) -> None:
    offer = await offer_of(lot, weekdays=[1, 2, 3, 4, 5], windowStart="07:00", windowEnd="19:00")
    plate = fresh_plate()
    driver = await callers.driver()
    await driver.data(BUY, {"offer": offer["id"], "plate": plate, "startsOn": str(today()), "key": "k"})
    # The operator narrows the offer while the payment is on its way.
    await lot.admin.data(UPDATE_OFFER, {"id": offer["id"], "input": {"weekdays": [6, 7], "windowStart": "10:00"}})
    await settle(run_worker, sandbox, db)
    [sold] = await terms_of_passes(lot, plate)
    assert (sold["weekdays"], sold["windowStart"], sold["windowEnd"]) == ([1, 2, 3, 4, 5], "07:00", "19:00")
    assert sold["note"] == "bought: Monthly, all day"


async def test_a_month_the_plate_already_has_is_refused(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database
) -> None:
    offer = await offer_of(lot)
    plate = fresh_plate()
    driver = await callers.driver()
    start = today()
    await driver.data(BUY, {"offer": offer["id"], "plate": plate, "startsOn": str(start), "key": "first"})
    # Still being paid for: a second purchase of days it covers is refused, the same key still answers.
    overlapping = {"offer": offer["id"], "plate": plate, "startsOn": str(start + timedelta(days=3)), "key": "second"}
    assert await driver.error_code(BUY, overlapping) == "PASS_OVERLAPS"
    same_key = {"offer": offer["id"], "plate": plate, "startsOn": str(start), "key": "first"}
    assert (await driver.data(BUY, same_key))["buyPass"]["state"] == "CREATED"
    await settle(run_worker, sandbox, db)
    # Bought: the same days again are refused, also by another driver; the month after is fine.
    assert await driver.error_code(BUY, overlapping) == "PASS_OVERLAPS"
    assert await (await callers.driver()).error_code(BUY, {**overlapping, "key": "other"}) == "PASS_OVERLAPS"
    following = {**overlapping, "startsOn": str(month_end(start) + timedelta(days=1)), "key": "next"}
    assert (await driver.data(BUY, following))["buyPass"]["state"] == "CREATED"
    assert len(await terms_of_passes(lot, plate)) == 1


async def test_a_pass_the_operator_granted_is_not_bought_again(lot: Lot, callers: Any) -> None:
    plate = fresh_plate()
    start = today()
    granted = {"plate": plate, "validFrom": str(start), "validUntil": str(start + timedelta(days=10))}
    await lot.admin.data(CREATE_PASS, {"input": {**granted, "facilityIds": [lot.lot_id]}})
    offer = await offer_of(lot)
    driver = await callers.driver()
    buy = {"offer": offer["id"], "plate": plate, "startsOn": str(start + timedelta(days=5)), "key": "k"}
    assert await driver.error_code(BUY, buy) == "PASS_OVERLAPS"
    # A night-only offer does not meet a daytime pass on the same days.
    daytime = fresh_plate()
    await lot.admin.data(
        CREATE_PASS,
        {
            "input": {
                **granted,
                "plate": daytime,
                "facilityIds": [lot.lot_id],
                "windowStart": "08:00",
                "windowEnd": "18:00",
            }
        },
    )
    nights = await offer_of(lot, windowStart="20:00", windowEnd="06:00")
    night_buy = {"offer": nights["id"], "plate": daytime, "startsOn": str(start), "key": "n"}
    assert (await driver.data(BUY, night_buy))["buyPass"]["state"] == "CREATED"
