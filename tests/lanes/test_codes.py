"""Vehicles without a plate: the lane's code, scanned by the driver's app, opens and closes a session bound to the
driver's account."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Caller, Callers
from tests.lanes.conftest import Lot

LANE_CODE = "query($laneId: ID!) { laneEntryCode(laneId: $laneId) { code link direction lane { id } } }"
SCAN_FIELDS = "decision reason amountDueFen paymentLink exceptionRaised session { id plate state enteredAt priceFen }"
SCAN_ENTRY = f"mutation($code: String!) {{ scanEntryCode(code: $code) {{ {SCAN_FIELDS} }} }}"
SCAN_EXIT = f"mutation($code: String!) {{ scanExitCode(code: $code) {{ {SCAN_FIELDS} }} }}"


async def code_of(lot: Lot, lane_id: str) -> dict[str, Any]:
    return (await lot.staff.data(LANE_CODE, {"laneId": lane_id}))["laneEntryCode"]


async def scan(driver: Caller, document: str, code: str) -> dict[str, Any]:
    data = await driver.data(document, {"code": code})
    return data["scanEntryCode" if "scanEntryCode" in data else "scanExitCode"]


async def test_a_lanes_code_is_stable(lot: Lot) -> None:
    first, again = await code_of(lot, lot.entry_lane), await code_of(lot, lot.entry_lane)
    assert first == again
    assert (first["direction"], first["lane"]["id"]) == ("entry", lot.entry_lane)
    assert first["link"].startswith("https://") and first["link"].endswith(first["code"])
    assert (await code_of(lot, lot.exit_lane))["code"] != first["code"]


async def test_a_driver_enters_and_leaves_by_the_lanes_codes(lot: Lot, callers: Callers) -> None:
    driver = await callers.driver()
    entry_code, exit_code = (await code_of(lot, lot.entry_lane))["code"], (await code_of(lot, lot.exit_lane))["code"]
    entered = await scan(driver, SCAN_ENTRY, entry_code)
    assert (entered["decision"], entered["reason"], entered["exceptionRaised"]) == ("OPEN", "entered", False)
    assert (entered["session"]["plate"], entered["session"]["state"]) == (None, "OPEN")
    # Scanning again at once (the app retried) is the same entry, not a second one.
    again = await scan(driver, SCAN_ENTRY, entry_code)
    assert (again["decision"], again["session"]["id"]) == ("OPEN", entered["session"]["id"])
    [session] = await lot.sessions()
    assert session["id"] == entered["session"]["id"]

    left = await scan(driver, SCAN_EXIT, exit_code)
    # Minutes after entering: within the free minutes.
    assert (left["decision"], left["reason"], left["amountDueFen"]) == ("OPEN", "no_fee", 0)
    assert (left["session"]["id"], left["session"]["state"], left["session"]["priceFen"]) == (
        entered["session"]["id"],
        "CLOSED",
        0,
    )
    sources = sorted(decision["source"] for decision in await lot.decisions())
    assert sources == ["ENTRY_CODE", "EXIT_CODE"]


async def test_a_driver_with_no_session_scanning_the_exit_code_is_held_for_an_agent(lot: Lot, callers: Callers) -> None:
    driver = await callers.driver()
    held = await scan(driver, SCAN_EXIT, (await code_of(lot, lot.exit_lane))["code"])
    assert (held["decision"], held["reason"], held["exceptionRaised"], held["session"]) == (
        "HOLD",
        "exit_without_entry",
        True,
        None,
    )


async def test_a_full_lot_holds_a_driver_scanning_the_entry_code(make_lot: Any, callers: Callers) -> None:
    lot = await make_lot(capacity=0)
    driver = await callers.driver()
    held = await scan(driver, SCAN_ENTRY, (await code_of(lot, lot.entry_lane))["code"])
    assert (held["decision"], held["reason"], held["session"]) == ("HOLD", "lot_full", None)


async def test_codes_scanned_in_the_wrong_place_or_forged_are_refused(lot: Lot, callers: Callers) -> None:
    driver = await callers.driver()
    entry_code = (await code_of(lot, lot.entry_lane))["code"]
    body = await driver.post(SCAN_EXIT, {"code": entry_code})
    assert body["errors"][0]["extensions"]["code"] == "WRONG_LANE"
    forged = entry_code[:-4] + ("AAAA" if not entry_code.endswith("AAAA") else "BBBB")
    body = await driver.post(SCAN_ENTRY, {"code": forged})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CODE"
    body = await driver.post(SCAN_ENTRY, {"code": "not a code"})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CODE"
    assert await lot.sessions() == []


async def test_only_drivers_scan_and_only_the_operators_staff_get_codes(lot: Lot, callers: Callers) -> None:
    entry_code = (await code_of(lot, lot.entry_lane))["code"]
    body = await lot.staff.post(SCAN_ENTRY, {"code": entry_code})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await (await callers.driver()).post(LANE_CODE, {"laneId": lot.entry_lane})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other = await callers.operator()
    body = await other.post(LANE_CODE, {"laneId": lot.entry_lane})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
