"""Drivers' street sessions through GraphQL: start by space code, extend, end early with the refund the tariff
gives, their typed errors, retries with an idempotency key, and other drivers kept out. The street service's
clock is set by the test (`clock`), so prices are exact."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import text

from hub.db import Database
from tests.api.conftest import Caller, Callers
from tests.api.supply_ops import RETIRE_SPACES
from tests.street.conftest import (
    DAY_CAP_FEN,
    FIRST_HALF_HOUR_FEN,
    QUARTER_HOUR_FEN,
    Clock,
    CurbZone,
    build_zone,
    fresh_plate,
    metered_fen,
    row_id,
)

SESSION_FIELDS = """id plate spaceCode vehicleClass paymentMode origin state active startedAt paidUntil endedAt
    prepaidMinutes paidFen priceFen refundFen chargeFen currency quote space { id code } facility { id }
    tariffVersion { id } actions { kind minutes chargeFen refundFen paidUntil }"""
RESULT = f"session {{ {SESSION_FIELDS} }} action {{ kind minutes chargeFen refundFen }} replayed"
START = f"mutation($input: StartStreetSessionInput!) {{ startStreetSession(input: $input) {{ {RESULT} }} }}"
EXTEND = (
    "mutation($id: ID!, $minutes: Int!, $key: String) { extendStreetSession(id: $id, minutes: $minutes, "
    f"idempotencyKey: $key) {{ {RESULT} }} }}"
)
END = f"mutation($id: ID!, $key: String) {{ endStreetSession(id: $id, idempotencyKey: $key) {{ {RESULT} }} }}"
MINE = (
    "query($active: Boolean) { myStreetSessions(active: $active, first: 50) "
    f"{{ edges {{ node {{ {SESSION_FIELDS} }} }} }} }}"
)
NODE = "query($id: ID!) { node(id: $id) { ... on StreetSession { id plate } } }"


def start_input(zone: CurbZone, index: int = 0, minutes: int = 60, **more: Any) -> dict[str, Any]:
    return {
        "input": {
            "operator": zone.slug,
            "spaceCode": zone.code(index),
            "plate": more.pop("plate", fresh_plate()),
            "durationMinutes": minutes,
            **more,
        }
    }


async def start(driver: Caller, zone: CurbZone, index: int = 0, minutes: int = 60, **more: Any) -> dict[str, Any]:
    return (await driver.data(START, start_input(zone, index, minutes, **more)))["startStreetSession"]


# ---- the flow -------------------------------------------------------------------------------------------


async def test_start_extend_and_end_early_refund_what_was_paid_minus_the_true_price(
    callers: Callers, zone: CurbZone, clock: Clock
) -> None:
    driver = await callers.driver()
    started = await start(driver, zone, minutes=90, plate="粤b·12345")
    session = started["session"]
    assert started["action"] == {"kind": "START", "minutes": 90, "chargeFen": metered_fen(90), "refundFen": 0}
    assert metered_fen(90) == FIRST_HALF_HOUR_FEN + 4 * QUARTER_HOUR_FEN
    assert (session["plate"], session["spaceCode"], session["space"]["code"]) == (
        "粤B12345",
        zone.code(0),
        zone.code(0),
    )
    assert (session["paymentMode"], session["origin"], session["state"], session["active"]) == (
        "PREPAID",
        "DRIVER",
        "ACTIVE",
        True,
    )
    assert (session["paidFen"], session["prepaidMinutes"], session["currency"]) == (metered_fen(90), 90, "CNY")
    assert session["facility"]["id"] == zone.zone_id and session["tariffVersion"] is not None

    clock.advance(20)
    extended = (await driver.data(EXTEND, {"id": session["id"], "minutes": 30}))["extendStreetSession"]
    # The whole two hours are priced as one stay: the extension costs the two quarter hours it adds.
    assert extended["action"]["chargeFen"] == metered_fen(120) - metered_fen(90) == 2 * QUARTER_HOUR_FEN
    assert (extended["session"]["state"], extended["session"]["paidFen"]) == ("EXTENDED", metered_fen(120))
    assert extended["session"]["prepaidMinutes"] == 120

    clock.advance(20)  # 40 minutes parked
    ended = (await driver.data(END, {"id": session["id"]}))["endStreetSession"]
    true_price = FIRST_HALF_HOUR_FEN + QUARTER_HOUR_FEN  # the first half hour and one started quarter
    assert ended["action"] == {
        "kind": "END",
        "minutes": None,
        "chargeFen": 0,
        "refundFen": metered_fen(120) - true_price,
    }
    final = ended["session"]
    assert (final["state"], final["active"], final["priceFen"], final["refundFen"], final["chargeFen"]) == (
        "ENDED_EARLY",
        False,
        true_price,
        metered_fen(120) - true_price,
        None,
    )
    # Not a share of the time: 40 of 120 minutes would keep a third of what was paid.
    assert final["refundFen"] != metered_fen(120) * 80 // 120
    assert final["quote"]["total_fen"] == true_price
    assert [action["kind"] for action in final["actions"]] == ["START", "EXTEND", "END"]

    # The bay is free again at once.
    other = await callers.driver()
    assert (await start(other, zone))["session"]["state"] == "ACTIVE"


async def test_ending_early_under_the_day_cap_refunds_only_below_the_cap(
    callers: Callers, zone: CurbZone, clock: Clock
) -> None:
    driver = await callers.driver()
    long_stay = (await start(driver, zone, 0, minutes=600))["session"]
    assert long_stay["paidFen"] == DAY_CAP_FEN
    clock.advance(240)  # the cap is reached within these four hours: nothing to give back
    assert (await driver.data(END, {"id": long_stay["id"]}))["endStreetSession"]["action"]["refundFen"] == 0

    shorter = (await start(driver, zone, 1, minutes=600))["session"]
    clock.advance(180)
    refund = (await driver.data(END, {"id": shorter["id"]}))["endStreetSession"]["action"]["refundFen"]
    assert refund == DAY_CAP_FEN - metered_fen(180)


async def test_a_space_can_be_named_by_its_global_id_and_a_vehicle_class_changes_the_price(
    callers: Callers, clock: Clock
) -> None:
    admin = await callers.operator()
    zone = await build_zone(
        admin,
        tariff={"default_rate": {"unit_minutes": 60, "unit_price_fen": 400}, "vehicle_class_percent": {"large": 150}},
    )
    driver = await callers.driver()
    plate = fresh_plate()
    started = (
        await driver.data(
            START,
            {
                "input": {
                    "spaceId": zone.spaces[1]["id"],
                    "plate": plate,
                    "durationMinutes": 120,
                    "vehicleClass": "LARGE",
                }
            },
        )
    )["startStreetSession"]
    assert started["session"]["spaceCode"] == zone.code(1)
    assert started["session"]["vehicleClass"] == "LARGE"
    assert started["action"]["chargeFen"] == 2 * 400 * 150 // 100


async def test_running_out_of_time_reads_expired_with_nothing_refunded(
    callers: Callers, zone: CurbZone, clock: Clock
) -> None:
    driver = await callers.driver()
    session = (await start(driver, zone, minutes=30))["session"]
    assert [
        edge["node"]["id"] for edge in (await driver.data(MINE, {"active": True}))["myStreetSessions"]["edges"]
    ] == [session["id"]]
    clock.advance(31)
    [expired] = [edge["node"] for edge in (await driver.data(MINE, {"active": False}))["myStreetSessions"]["edges"]]
    assert (expired["id"], expired["state"], expired["active"]) == (session["id"], "EXPIRED", False)
    assert (expired["endedAt"], expired["priceFen"], expired["refundFen"]) == (
        session["paidUntil"],
        FIRST_HALF_HOUR_FEN,
        0,
    )
    assert (await driver.data(MINE, {"active": True}))["myStreetSessions"]["edges"] == []
    assert await driver.error_code(EXTEND, {"id": session["id"], "minutes": 15}) == "SESSION_ENDED"
    assert await driver.error_code(END, {"id": session["id"]}) == "SESSION_ENDED"


# ---- errors -----------------------------------------------------------------------------------------------


async def test_a_bay_that_cannot_be_found_or_is_not_on_the_street_is_refused(
    callers: Callers, zone: CurbZone, clock: Clock
) -> None:
    driver = await callers.driver()
    unknown = start_input(zone)
    unknown["input"]["spaceCode"] = "NO-SUCH-BAY"
    assert await driver.error_code(START, unknown) == "SPACE_NOT_FOUND"
    other_operator = start_input(zone)
    other_operator["input"]["operator"] = f"op-{uuid.uuid4().hex[:10]}"
    assert await driver.error_code(START, other_operator) == "SPACE_NOT_FOUND"

    await zone.admin.data(RETIRE_SPACES, {"ids": [zone.spaces[2]["id"]]})
    assert await driver.error_code(START, start_input(zone, 2)) == "SPACE_NOT_FOUND"

    in_lot = {"input": {"spaceId": zone.lot_space["id"], "plate": fresh_plate(), "durationMinutes": 60}}
    assert await driver.error_code(START, in_lot) == "NOT_ON_STREET"

    both = start_input(zone)
    both["input"]["spaceId"] = zone.spaces[0]["id"]
    assert await driver.error_code(START, both) == "INVALID_SPACE_REFERENCE"
    assert await driver.error_code(START, {"input": {"plate": fresh_plate(), "durationMinutes": 60}}) == (
        "INVALID_SPACE_REFERENCE"
    )


async def test_a_bay_holds_one_session_at_a_time(callers: Callers, zone: CurbZone, clock: Clock) -> None:
    first, second = await callers.driver(), await callers.driver()
    await start(first, zone, 0)
    body = await second.post(START, start_input(zone, 0))
    assert body["errors"][0]["extensions"]["code"] == "SPACE_IN_SESSION"
    assert (await second.data(MINE))["myStreetSessions"]["edges"] == []


async def test_durations_outside_the_tariffs_steps_or_a_day_are_refused(
    callers: Callers, zone: CurbZone, clock: Clock
) -> None:
    driver = await callers.driver()
    for minutes in (10, 20, 0, 24 * 60 + 15):
        body = await driver.post(START, start_input(zone, minutes=minutes))
        error = body["errors"][0]["extensions"]
        assert (error["code"], error["increment_minutes"]) == ("INVALID_DURATION", 15)
    session = (await start(driver, zone, minutes=24 * 60 - 30))["session"]
    assert await driver.error_code(EXTEND, {"id": session["id"], "minutes": 45}) == "INVALID_DURATION"
    assert await driver.error_code(EXTEND, {"id": session["id"], "minutes": 20}) == "INVALID_DURATION"
    assert (await driver.data(EXTEND, {"id": session["id"], "minutes": 30}))["extendStreetSession"]["session"][
        "prepaidMinutes"
    ] == 24 * 60


async def test_a_zone_without_a_tariff_cannot_be_paid_for(callers: Callers, clock: Clock) -> None:
    zone = await build_zone(await callers.operator(), tariff=None)
    driver = await callers.driver()
    assert await driver.error_code(START, start_input(zone)) == "NO_TARIFF"


async def test_bad_plates_and_callers_that_are_not_drivers_are_refused(
    callers: Callers, zone: CurbZone, clock: Clock
) -> None:
    driver = await callers.driver()
    assert await driver.error_code(START, start_input(zone, plate="#")) == "INVALID_PLATE"
    assert await zone.admin.error_code(START, start_input(zone)) == "FORBIDDEN"
    assert await callers.anonymous().error_code(START, start_input(zone)) == "FORBIDDEN"


async def test_another_driver_can_neither_see_nor_touch_a_session(
    callers: Callers, zone: CurbZone, clock: Clock, owner_db: Database
) -> None:
    owner, stranger = await callers.driver(), await callers.driver()
    session = (await start(owner, zone, minutes=60))["session"]
    assert await stranger.error_code(EXTEND, {"id": session["id"], "minutes": 15}) == "NOT_YOUR_SESSION"
    assert await stranger.error_code(END, {"id": session["id"]}) == "NOT_YOUR_SESSION"
    assert (await stranger.data(NODE, {"id": session["id"]}))["node"] is None
    assert (await stranger.data(MINE))["myStreetSessions"]["edges"] == []
    # Nothing of the stranger's attempts reached the session.
    assert (await owner.data(NODE, {"id": session["id"]}))["node"]["plate"] == session["plate"]
    async with owner_db.engine.connect() as conn:
        kinds = await conn.execute(
            text("SELECT kind FROM street_session_actions WHERE session_id = :id"),
            {"id": row_id(session["id"])},
        )
        assert [row[0] for row in kinds] == ["start"]


# ---- idempotent retries ----------------------------------------------------------------------------------


async def test_a_retried_start_extend_or_end_charges_once(callers: Callers, zone: CurbZone, clock: Clock) -> None:
    driver = await callers.driver()
    request = start_input(zone, minutes=60, idempotencyKey="start-7f3a")
    first = (await driver.data(START, request))["startStreetSession"]
    retried = (await driver.data(START, request))["startStreetSession"]
    assert (first["replayed"], retried["replayed"]) == (False, True)
    assert retried["session"]["id"] == first["session"]["id"]
    assert retried["action"] == first["action"]
    assert len((await driver.data(MINE))["myStreetSessions"]["edges"]) == 1

    session_id = first["session"]["id"]
    clock.advance(10)
    extension = {"id": session_id, "minutes": 30, "key": "extend-1"}
    once = (await driver.data(EXTEND, extension))["extendStreetSession"]
    twice = (await driver.data(EXTEND, extension))["extendStreetSession"]
    assert twice["replayed"] and twice["action"] == once["action"]
    assert twice["session"]["paidFen"] == once["session"]["paidFen"] == metered_fen(90)
    assert twice["session"]["prepaidMinutes"] == 90

    clock.advance(5)
    ending = {"id": session_id, "key": "end-1"}
    ended = (await driver.data(END, ending))["endStreetSession"]
    again = (await driver.data(END, ending))["endStreetSession"]
    assert again["replayed"] and again["action"]["refundFen"] == ended["action"]["refundFen"]
    assert ended["action"]["refundFen"] == metered_fen(90) - FIRST_HALF_HOUR_FEN
    assert [action["kind"] for action in again["session"]["actions"]] == ["START", "EXTEND", "END"]


async def test_a_key_used_for_another_request_is_refused(callers: Callers, zone: CurbZone, clock: Clock) -> None:
    driver = await callers.driver()
    await start(driver, zone, 0, minutes=60, idempotencyKey="mine-1")
    # The same key on another bay, or for another duration, is not a retry.
    assert await driver.error_code(START, start_input(zone, 1, idempotencyKey="mine-1")) == "IDEMPOTENCY_KEY_REUSED"
    assert await driver.error_code(START, start_input(zone, 0, 90, idempotencyKey="mine-1")) == "IDEMPOTENCY_KEY_REUSED"
    # Another driver's keys are their own.
    other = await callers.driver()
    assert (await start(other, zone, 1, idempotencyKey="mine-1"))["replayed"] is False
    assert await driver.error_code(START, start_input(zone, 2, idempotencyKey="")) == "INVALID_IDEMPOTENCY_KEY"


async def test_concurrent_starts_give_the_bay_to_one_driver_and_a_duplicate_to_the_first_answer(
    callers: Callers, zone: CurbZone, clock: Clock
) -> None:
    first, second = await callers.driver(), await callers.driver()
    bodies = await asyncio.gather(first.post(START, start_input(zone, 0)), second.post(START, start_input(zone, 0)))
    codes = sorted(body["errors"][0]["extensions"]["code"] if body.get("errors") else "STARTED" for body in bodies)
    assert codes == ["SPACE_IN_SESSION", "STARTED"]

    request = start_input(zone, 1, idempotencyKey="double-tap")
    answers = await asyncio.gather(first.data(START, request), first.data(START, request))
    results = [answer["startStreetSession"] for answer in answers]
    assert results[0]["session"]["id"] == results[1]["session"]["id"]
    assert sorted(result["replayed"] for result in results) == [False, True]
