"""Quotes for drivers before they park: itemized like the engine prices the same stay, in the facility's time
zone, for anonymous callers and drivers; typed errors for a facility without tariff and for bad windows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from strawberry import relay

from hub.pricing.rules import Quote, price
from hub.pricing.tariff import Tariff
from tests.api import supply_ops
from tests.api.conftest import Caller, Callers
from tests.pricing_api import ops

NEW_YORK = ZoneInfo("America/New_York")
SINCE_2026 = datetime(2026, 1, 1, tzinfo=UTC)


def as_graphql(quote: Quote) -> dict[str, Any]:
    """The engine's quote as the API should render it."""
    return {
        "totalFen": quote.total_fen,
        "segments": [
            {
                "start": segment.start.isoformat(),
                "end": segment.end.isoformat(),
                "rule": segment.rule,
                "units": segment.units,
                "unitPriceFen": segment.unit_price_fen,
                "amountFen": segment.amount_fen,
            }
            for segment in quote.segments
        ],
        "adjustments": [
            {
                "kind": adjustment.kind,
                "start": adjustment.start.isoformat(),
                "end": adjustment.end.isoformat(),
                "amountFen": adjustment.amount_fen,
                "reason": adjustment.reason,
            }
            for adjustment in quote.adjustments
        ],
    }


@pytest.fixture
async def priced_lot(operator: dict[str, Any]) -> dict[str, Any]:
    """A lot in New York's zone (so the zone matters: DST ends there on 2026-11-01) with the day/night tariff."""
    admin = operator["admin"]
    lot = await ops.create_lot(admin, 114.32, 22.62, time_zone="America/New_York")
    version = await ops.set_tariff(admin, lot["id"], tariff_json=ops.DAY_NIGHT_JSON, valid_from=SINCE_2026)
    return {**operator, "lot": lot, "version": version}


STAYS = [
    # Friday evening across the DST change to Monday morning, local time.
    (datetime(2026, 10, 30, 18, 40, tzinfo=NEW_YORK), datetime(2026, 11, 2, 9, 5, tzinfo=NEW_YORK), "LARGE"),
    # A weekday afternoon into the tier.
    (datetime(2026, 11, 4, 13, 0, tzinfo=NEW_YORK), datetime(2026, 11, 4, 18, 20, tzinfo=NEW_YORK), "STANDARD"),
    # Under the free minutes.
    (datetime(2026, 11, 4, 13, 0, tzinfo=NEW_YORK), datetime(2026, 11, 4, 13, 10, tzinfo=NEW_YORK), "NEW_ENERGY"),
]


@pytest.mark.parametrize(("start", "end", "vehicle_class"), STAYS, ids=["dst-weekend", "tier", "free"])
async def test_the_quote_is_the_engines_price(
    priced_lot: dict[str, Any], callers: Callers, start: datetime, end: datetime, vehicle_class: str
) -> None:
    expected = price(Tariff.from_dict(ops.DAY_NIGHT_JSON), NEW_YORK, vehicle_class.lower(), start, end)
    variables = {"facilityId": priced_lot["lot"]["id"], "from": ops.iso(start), "to": ops.iso(end)}
    for caller in (callers.anonymous(), await callers.driver()):
        quote = (await caller.data(ops.QUOTE, {**variables, "vehicleClass": vehicle_class}))["quote"]
        assert {key: quote[key] for key in ("totalFen", "segments", "adjustments")} == as_graphql(expected)
        assert quote["tariff"] == {"id": priced_lot["version"]["id"], "version": 1}
        assert quote["facility"]["id"] == priced_lot["lot"]["id"]
        assert (quote["vehicleClass"], quote["currency"]) == (vehicle_class, "CNY")
        assert (datetime.fromisoformat(quote["from"]), datetime.fromisoformat(quote["to"])) == (start, end)


async def test_the_weekend_quote_is_itemized(priced_lot: dict[str, Any], callers: Callers) -> None:
    start, end, _ = STAYS[0]
    variables = {"facilityId": priced_lot["lot"]["id"], "from": ops.iso(start), "to": ops.iso(end)}
    quote = (await callers.anonymous().data(ops.QUOTE, {**variables, "vehicleClass": "LARGE"}))["quote"]
    rules = {segment["rule"] for segment in quote["segments"]}
    assert {"band:day/first_unit", "band:night", "default"} <= rules
    # The large-vehicle surcharge doubles every unit price: the night band's 100 fen costs 200.
    assert {segment["unitPriceFen"] for segment in quote["segments"] if segment["rule"] == "band:night"} == {200}
    lines = sum(segment["amountFen"] for segment in quote["segments"])
    assert quote["totalFen"] == lines + sum(adjustment["amountFen"] for adjustment in quote["adjustments"])


async def test_a_facility_without_tariff_has_no_quote(operator: dict[str, Any], callers: Callers) -> None:
    start = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
    variables = {"facilityId": operator["lot"]["id"], "from": ops.iso(start), "to": ops.iso(start + timedelta(hours=2))}
    assert await callers.anonymous().error_code(ops.QUOTE, variables) == "NO_TARIFF"
    # A tariff from later on does not price a stay that starts before it.
    await ops.set_tariff(operator["admin"], operator["lot"]["id"], tariff_json=ops.flat_json(60, 500))
    assert await callers.anonymous().error_code(ops.QUOTE, variables) == "NO_TARIFF"


WINDOWS = [
    ("2026-11-04T10:00:00+08:00", "2026-11-04T10:00:00+08:00", "INVALID_STAY"),
    ("2026-11-04T10:00:00+08:00", "2026-11-04T09:00:00+08:00", "INVALID_STAY"),
    ("2026-11-04T10:00:00+08:00", "2026-12-05T10:01:00+08:00", "STAY_TOO_LONG"),
    ("2026-11-04T10:00:00", "2026-11-04T12:00:00+08:00", "INVALID_TIME"),
]


@pytest.mark.parametrize(("start", "end", "code"), WINDOWS, ids=["empty", "reversed", "too-long", "naive"])
async def test_bad_windows_get_typed_errors(
    priced_lot: dict[str, Any], callers: Callers, start: str, end: str, code: str
) -> None:
    variables = {"facilityId": priced_lot["lot"]["id"], "from": start, "to": end}
    assert await callers.anonymous().error_code(ops.QUOTE, variables) == code


async def test_a_31_day_stay_is_quoted(priced_lot: dict[str, Any], callers: Callers) -> None:
    start = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)
    variables = {
        "facilityId": priced_lot["lot"]["id"],
        "from": ops.iso(start),
        "to": ops.iso(start + timedelta(days=31)),
    }
    quote = (await callers.anonymous().data(ops.QUOTE, variables))["quote"]
    expected = price(Tariff.from_dict(ops.DAY_NIGHT_JSON), NEW_YORK, "standard", start, start + timedelta(days=31))
    assert quote["totalFen"] == expected.total_fen > 0


async def test_unknown_and_retired_facilities_are_not_found(priced_lot: dict[str, Any], callers: Callers) -> None:
    admin: Caller = priced_lot["admin"]
    start = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)
    window = {"from": ops.iso(start), "to": ops.iso(start + timedelta(hours=1))}
    unknown = str(relay.GlobalID("Facility", str(uuid.uuid4())))
    assert await callers.anonymous().error_code(ops.QUOTE, {"facilityId": unknown, **window}) == "NOT_FOUND"
    await admin.data(supply_ops.RETIRE_FACILITY, {"id": priced_lot["lot"]["id"]})
    for caller in (callers.anonymous(), admin):
        assert await caller.error_code(ops.QUOTE, {"facilityId": priced_lot["lot"]["id"], **window}) == "NOT_FOUND"


async def test_a_price_beyond_what_graphql_can_show_is_refused(operator: dict[str, Any], callers: Callers) -> None:
    lot = operator["lot"]
    await ops.set_tariff(
        operator["admin"], lot["id"], tariff_json=ops.flat_json(1, 2_000_000_000), valid_from=SINCE_2026
    )
    start = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)
    variables = {"facilityId": lot["id"], "from": ops.iso(start), "to": ops.iso(start + timedelta(minutes=2))}
    assert await callers.anonymous().error_code(ops.QUOTE, variables) == "QUOTE_TOO_LARGE"
    variables["to"] = ops.iso(start + timedelta(minutes=1))
    assert (await callers.anonymous().data(ops.QUOTE, variables))["quote"]["totalFen"] == 2_000_000_000
