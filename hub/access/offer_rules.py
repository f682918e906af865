"""Pure rules of pass offers (monthly passes operators sell to drivers): what a valid offer is, and the period one
sold month covers. No I/O. The weekday and window shapes are those of vehicle passes (hub/access/rules.py)."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.access.rules import ALL_WEEKDAYS, Collector, check_weekdays, format_time_of_day, optional_text, window_of
from hub.errors import InvalidInput

MAX_OFFER_NAME = 100
# The most a month of parking may be sold for (1,000,000 yuan): a typo guard, not a business rule.
MAX_PRICE_FEN = 100_000_000
# How far ahead a driver may buy a month.
MAX_DAYS_AHEAD = 90


def offer_values(fields: Mapping[str, Any], problems: Collector) -> dict[str, Any]:
    """name, facility_ids (at least one, resolved by the service), price_fen, weekdays (default all), window_start
    and window_end ("HH:MM", both or neither), on_sale (default true)."""
    name = problems.run("name", optional_text, fields.get("name"), MAX_OFFER_NAME)
    if name is None and not any(problem.field.endswith("name") for problem in problems.problems):
        problems.add("name", "MISSING_VALUE", "an offer needs a name")
    facility_ids = fields.get("facility_ids")
    if not facility_ids:
        problems.add("facility_ids", "EMPTY_FACILITIES", "an offer names at least one facility")
        facility_ids = None
    price = fields.get("price_fen")
    if type(price) is not int or not 0 < price <= MAX_PRICE_FEN:
        problems.add("price_fen", "INVALID_AMOUNT", f"the price is a whole number of fen from 1 to {MAX_PRICE_FEN}")
    weekdays = fields.get("weekdays")
    window = window_of(fields.get("window_start"), fields.get("window_end"), problems)
    return {
        "name": name,
        "facility_ids": None if facility_ids is None else sorted(set(facility_ids)),
        "price_fen": price,
        "weekdays": list(ALL_WEEKDAYS) if weekdays is None else problems.run("weekdays", check_weekdays, weekdays),
        "window_start": window[0],
        "window_end": window[1],
        "on_sale": fields.get("on_sale") is not False,
    }


def editable_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """An offer as its fields, the window back as "HH:MM", so an update can be validated as a whole."""
    start, end = row["window_start"], row["window_end"]
    return {
        "name": row["name"],
        "facility_ids": list(row["facility_ids"]),
        "price_fen": row["price_fen"],
        "weekdays": list(row["weekdays"]),
        "window_start": None if start is None else format_time_of_day(start),
        "window_end": None if end is None else format_time_of_day(end),
        "on_sale": row["on_sale"],
    }


def month_end(starts_on: date) -> date:
    """The last day of one calendar month from `starts_on`: the day before the same day of the next month, or, when
    the next month has no such day (a start on the 31st), the last day of the next month."""
    year, month = (starts_on.year + 1, 1) if starts_on.month == 12 else (starts_on.year, starts_on.month + 1)
    last_day = calendar.monthrange(year, month)[1]
    if starts_on.day > last_day:
        return date(year, month, last_day)
    return date(year, month, starts_on.day) - timedelta(days=1)


def period_of(starts_on: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The month bought, as instants: local midnight of `starts_on` to local midnight after its last day."""
    end = month_end(starts_on) + timedelta(days=1)
    return datetime.combine(starts_on, time(), zone), datetime.combine(end, time(), zone)


def days_of(period_start: datetime, period_end: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """A bought period back as a pass's first and last valid day in the facility's zone."""
    return period_start.astimezone(zone).date(), period_end.astimezone(zone).date() - timedelta(days=1)


def check_start(starts_on: date, today: date) -> None:
    """A month starts today or later, at most MAX_DAYS_AHEAD days ahead (in the facility's zone)."""
    if starts_on < today:
        raise InvalidInput("a pass cannot start in the past", code="START_IN_PAST", field="startsOn")
    if starts_on > today + timedelta(days=MAX_DAYS_AHEAD):
        raise InvalidInput(
            f"a pass can be bought at most {MAX_DAYS_AHEAD} days ahead", code="START_TOO_FAR", field="startsOn"
        )


def pass_terms(offer: Mapping[str, Any]) -> dict[str, Any]:
    """What a month of `offer` buys, as JSON, kept on the payment when it is bought: the pass made when the payment
    succeeds has these terms even if the operator changes the offer in between."""
    return {
        "offer_id": str(offer["id"]),
        "name": offer["name"],
        "facility_ids": [str(facility_id) for facility_id in offer["facility_ids"]],
        "weekdays": list(offer["weekdays"]),
        "window_start": offer["window_start"],
        "window_end": offer["window_end"],
    }


def sold_pass_values(
    tenant_id: uuid.UUID,
    terms: Mapping[str, Any],
    plate: str,
    payment_id: uuid.UUID,
    valid_from: date,
    valid_until: date,
) -> dict[str, Any]:
    """The vehicle pass a paid month makes: the terms bought (`pass_terms`), for the plate and month bought."""
    return {
        "tenant_id": tenant_id,
        "plate": plate,
        "facility_ids": [uuid.UUID(facility_id) for facility_id in terms["facility_ids"]],
        "valid_from": valid_from,
        "valid_until": valid_until,
        "weekdays": list(terms["weekdays"]),
        "window_start": terms["window_start"],
        "window_end": terms["window_end"],
        "note": f"bought: {terms['name']}",
        "offer_id": uuid.UUID(terms["offer_id"]),
        "payment_id": payment_id,
    }
