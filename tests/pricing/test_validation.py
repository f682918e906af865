"""Validation: every problem code, with the path of the field that has it; reading the JSON form strictly."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from hub.errors import InvalidInput
from hub.pricing.rules import check, validate
from hub.pricing.tariff import WEEKDAYS, Band, Rate, Tariff, Tier

DAY = Band("day", WEEKDAYS, "08:00", "20:00", Rate(30, 300))
NIGHT = Band("night", WEEKDAYS, "20:00", "08:00", Rate(60, 100))
GOOD = Tariff(
    default_rate=Rate(60, 200),
    default_tiers=(Tier(120, Rate(60, 400)),),
    bands=(DAY, NIGHT),
    free_minutes=15,
    day_cap_fen=5000,
    minimum_charge_fen=100,
    vehicle_class_percent=(("large", 200),),
)


def band(name: str, days: tuple[str, ...], start: str, end: str, rate: Rate | None = None) -> Band:
    return Band(name, days, start, end, rate or Rate(30, 300))


def test_a_sound_tariff_has_no_problems() -> None:
    assert validate(GOOD) == []
    assert check(GOOD) is GOOD


@pytest.mark.parametrize(
    ("tariff", "field", "code"),
    [
        (replace(GOOD, free_minutes=-1), "free_minutes", "NEGATIVE_MINUTES"),
        (replace(GOOD, entry_grace_minutes=-5), "entry_grace_minutes", "NEGATIVE_MINUTES"),
        (replace(GOOD, exit_grace_minutes=-5), "exit_grace_minutes", "NEGATIVE_MINUTES"),
        (replace(GOOD, reentry_minutes=-5), "reentry_minutes", "NEGATIVE_MINUTES"),
        (replace(GOOD, free_mode="sometimes"), "free_mode", "UNKNOWN_FREE_MODE"),
        (replace(GOOD, default_rate=Rate(0, 200)), "default_rate.unit_minutes", "NON_POSITIVE_UNIT"),
        (replace(GOOD, default_rate=Rate(-15, 200)), "default_rate.unit_minutes", "NON_POSITIVE_UNIT"),
        (replace(GOOD, default_rate=Rate(60, 200, 0, 500)), "default_rate.first_unit_minutes", "NON_POSITIVE_UNIT"),
        (replace(GOOD, default_rate=Rate(60, -1)), "default_rate.unit_price_fen", "NEGATIVE_PRICE"),
        (replace(GOOD, default_rate=Rate(60, 1, 30, -1)), "default_rate.first_unit_price_fen", "NEGATIVE_PRICE"),
        (replace(GOOD, default_rate=Rate(60, 200, 30)), "default_rate.first_unit_price_fen", "INCOMPLETE_FIRST_UNIT"),
        (
            replace(GOOD, default_rate=Rate(60, 200, None, 500)),
            "default_rate.first_unit_minutes",
            "INCOMPLETE_FIRST_UNIT",
        ),
        (
            replace(GOOD, default_tiers=(Tier(120, Rate(60, 400)), Tier(120, Rate(60, 500)))),
            "default_tiers[1].after_minutes",
            "TIERS_NOT_ASCENDING",
        ),
        (
            replace(GOOD, default_tiers=(Tier(180, Rate(60, 400)), Tier(120, Rate(60, 500)))),
            "default_tiers[1].after_minutes",
            "TIERS_NOT_ASCENDING",
        ),
        (
            replace(GOOD, default_tiers=(Tier(0, Rate(60, 400)),)),
            "default_tiers[0].after_minutes",
            "TIERS_NOT_ASCENDING",
        ),
        (
            replace(GOOD, bands=(replace(DAY, tiers=(Tier(60, Rate(30, 1)), Tier(30, Rate(30, 1)))), NIGHT)),
            "bands[0].tiers[1].after_minutes",
            "TIERS_NOT_ASCENDING",
        ),
        (replace(GOOD, default_tiers=tuple(Tier(n, Rate(60, 1)) for n in range(1, 30))), "default_tiers", "TOO_MANY"),
        (
            replace(GOOD, bands=tuple(band(f"b{n}", (WEEKDAYS[n % 7],), "00:00", "00:01") for n in range(51))),
            "bands",
            "TOO_MANY",
        ),
        (replace(GOOD, bands=(replace(DAY, name=" "), NIGHT)), "bands[0].name", "INVALID_NAME"),
        (replace(GOOD, bands=(DAY, replace(NIGHT, name="day"))), "bands[1].name", "DUPLICATE_NAME"),
        (replace(GOOD, bands=(replace(DAY, days=()), NIGHT)), "bands[0].days", "NO_WEEKDAYS"),
        (replace(GOOD, bands=(replace(DAY, days=("mon", "funday")),)), "bands[0].days[1]", "UNKNOWN_WEEKDAY"),
        (replace(GOOD, bands=(replace(DAY, days=("mon", "mon")),)), "bands[0].days[1]", "DUPLICATE_WEEKDAY"),
        (replace(GOOD, bands=(replace(DAY, start="8:00"), NIGHT)), "bands[0].start", "INVALID_TIME"),
        (replace(GOOD, bands=(replace(DAY, start="24:00"), NIGHT)), "bands[0].start", "INVALID_TIME"),
        (replace(GOOD, bands=(replace(DAY, end="20:60"), NIGHT)), "bands[0].end", "INVALID_TIME"),
        (
            replace(GOOD, bands=(band("short", WEEKDAYS, "12:00", "12:20", Rate(30, 300)),)),
            "bands[0].rate.unit_minutes",
            "UNIT_LONGER_THAN_BAND",
        ),
        (
            replace(GOOD, bands=(band("lunch", WEEKDAYS, "12:00", "13:00", Rate(30, 300, 90, 800)),)),
            "bands[0].rate.first_unit_minutes",
            "FIRST_UNIT_LONGER_THAN_BAND",
        ),
        (
            replace(GOOD, bands=(DAY, band("lunch", ("wed",), "12:00", "14:00"))),
            "bands[1]",
            "OVERLAPPING_BANDS",
        ),
        (
            # Friday's night band runs into Saturday 06:00, where a Saturday morning band starts at 05:00.
            replace(
                GOOD,
                bands=(band("fri_night", ("fri",), "22:00", "06:00"), band("sat_morning", ("sat",), "05:00", "09:00")),
            ),
            "bands[1]",
            "OVERLAPPING_BANDS",
        ),
        (
            # Sunday's night band runs into Monday morning: the week wraps too.
            replace(
                GOOD, bands=(band("sun_night", ("sun",), "23:00", "02:00"), band("early", ("mon",), "01:00", "03:00"))
            ),
            "bands[1]",
            "OVERLAPPING_BANDS",
        ),
        (replace(GOOD, day_cap_fen=-1), "day_cap_fen", "NEGATIVE_PRICE"),
        (replace(GOOD, minimum_charge_fen=-1), "minimum_charge_fen", "NEGATIVE_PRICE"),
        (replace(GOOD, day_cap_fen=350), "day_cap_fen", "CAP_BELOW_UNIT_PRICE"),  # a unit of the tier costs 400
        (replace(GOOD, rolling_24h_cap_fen=100), "rolling_24h_cap_fen", "CAP_BELOW_UNIT_PRICE"),
        (replace(GOOD, session_max_fen=100), "session_max_fen", "CAP_BELOW_UNIT_PRICE"),
        (replace(GOOD, minimum_charge_fen=6000), "minimum_charge_fen", "MINIMUM_ABOVE_CAP"),
        (
            replace(GOOD, vehicle_class_percent=(("truck", 300),)),
            "vehicle_class_percent.truck",
            "UNKNOWN_VEHICLE_CLASS",
        ),
        (
            replace(GOOD, vehicle_class_percent=(("large", 200), ("large", 300))),
            "vehicle_class_percent.large",
            "DUPLICATE_VEHICLE_CLASS",
        ),
        (replace(GOOD, vehicle_class_percent=(("large", -10),)), "vehicle_class_percent.large", "INVALID_PERCENT"),
        (replace(GOOD, vehicle_class_percent=(("large", 5000),)), "vehicle_class_percent.large", "INVALID_PERCENT"),
    ],
)
def test_each_problem_is_named_with_its_field(tariff: Tariff, field: str, code: str) -> None:
    problems = [(problem.field, problem.code) for problem in validate(tariff)]
    assert (field, code) in problems
    with pytest.raises(InvalidInput) as refused:
        check(tariff)
    assert refused.value.code == "INVALID_TARIFF"
    assert {"field": field, "code": code} in [
        {"field": item["field"], "code": item["code"]} for item in refused.value.details["problems"]
    ]


@pytest.mark.parametrize(
    "bands",
    [
        (DAY, NIGHT),  # touching at 08:00 and 20:00
        (band("weekday", WEEKDAYS[:5], "08:00", "20:00"), band("weekend", WEEKDAYS[5:], "08:00", "20:00")),
        (band("fri_night", ("fri",), "22:00", "06:00"), band("sat_morning", ("sat",), "06:00", "09:00")),
        (band("all_day", ("mon",), "00:00", "00:00"), band("tuesday", ("tue",), "00:00", "24:00")),
    ],
)
def test_bands_that_only_touch_do_not_overlap(bands: tuple[Band, ...]) -> None:
    assert validate(replace(GOOD, bands=bands)) == []


def test_the_overlap_message_says_which_band_and_when() -> None:
    problems = validate(replace(GOOD, bands=(DAY, band("lunch", ("wed",), "12:00", "14:00"))))
    assert [problem.message for problem in problems] == ["overlaps band 'day' on wed from 12:00"]


# ---------------------------------------------------------------------------------------------- JSON form


def good_document() -> dict[str, Any]:
    return GOOD.to_dict()


def test_the_json_form_has_every_field_and_reads_back() -> None:
    document = good_document()
    assert document["bands"][1] == {
        "name": "night",
        "days": list(WEEKDAYS),
        "start": "20:00",
        "end": "08:00",
        "rate": {"unit_minutes": 60, "unit_price_fen": 100, "first_unit_minutes": None, "first_unit_price_fen": None},
        "tiers": [],
    }
    assert document["vehicle_class_percent"] == {"large": 200}
    assert Tariff.from_dict(document) == GOOD


def test_optional_fields_may_be_left_out() -> None:
    tariff = Tariff.from_dict({"default_rate": {"unit_minutes": 15, "unit_price_fen": 200}})
    assert tariff == Tariff(default_rate=Rate(15, 200))


def _broken(path: list[str | int], value: Any) -> dict[str, Any]:
    document = good_document()
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


def _without(path: list[str | int]) -> dict[str, Any]:
    document = good_document()
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return document


@pytest.mark.parametrize(
    ("document", "field", "code"),
    [
        (_broken(["bands", 1, "start"], 2000), "bands[1].start", "WRONG_TYPE"),
        (_broken(["default_rate", "unit_price_fen"], 2.5), "default_rate.unit_price_fen", "WRONG_TYPE"),  # never floats
        (_broken(["default_rate", "unit_minutes"], True), "default_rate.unit_minutes", "WRONG_TYPE"),
        (_broken(["default_rate", "unit_minutes"], "15"), "default_rate.unit_minutes", "WRONG_TYPE"),
        (_broken(["day_cap_fen"], "5000"), "day_cap_fen", "WRONG_TYPE"),
        (_broken(["free_minutes"], None), "free_minutes", "WRONG_TYPE"),  # only the options take null
        (_broken(["bands"], {"day": {}}), "bands", "WRONG_TYPE"),
        (_broken(["bands", 0, "days", 2], 3), "bands[0].days[2]", "WRONG_TYPE"),
        (_broken(["bands", 0, "rate"], [60, 300]), "bands[0].rate", "WRONG_TYPE"),
        (
            _broken(["default_tiers", 0, "rate", "unit_minutes"], None),
            "default_tiers[0].rate.unit_minutes",
            "WRONG_TYPE",
        ),
        (_broken(["vehicle_class_percent", "large"], "200%"), "vehicle_class_percent.large", "WRONG_TYPE"),
        (_broken(["bands", 1, "colour"], "blue"), "bands[1].colour", "UNKNOWN_FIELD"),
        (_broken(["caps"], {"day": 5000}), "caps", "UNKNOWN_FIELD"),
        (_without(["bands", 0, "end"]), "bands[0].end", "MISSING_FIELD"),
        (_without(["default_rate"]), "default_rate", "MISSING_FIELD"),
        (_without(["default_tiers", 0, "after_minutes"]), "default_tiers[0].after_minutes", "MISSING_FIELD"),
    ],
)
def test_from_dict_names_each_unknown_mistyped_or_missing_field(
    document: dict[str, Any], field: str, code: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        Tariff.from_dict(document)
    assert refused.value.code == "INVALID_TARIFF"
    assert refused.value.details["problems"] == [
        {"field": field, "code": code, "message": refused.value.details["problems"][0]["message"]}
    ]
    assert field in refused.value.message


def test_from_dict_reports_every_problem_at_once() -> None:
    document = _broken(["bands", 1, "colour"], "blue")
    document["default_rate"]["unit_minutes"] = "sixty"
    with pytest.raises(InvalidInput) as refused:
        Tariff.from_dict(document)
    fields = [problem["field"] for problem in refused.value.details["problems"]]
    assert fields == ["default_rate.unit_minutes", "bands[1].colour"]


def test_from_dict_refuses_something_that_is_not_an_object() -> None:
    with pytest.raises(InvalidInput) as refused:
        Tariff.from_dict([{"default_rate": {}}])
    assert refused.value.code == "INVALID_TARIFF"
