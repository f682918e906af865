"""Property tests of the pure supply and driver rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.drivers.rules import normalize_plate
from hub.errors import InvalidInput
from hub.supply import rules

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)
ages = st.one_of(st.none(), st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)))


@given(status=st.sampled_from(rules.SPACE_STATUSES), age=ages)
def test_a_stale_or_unconfirmed_sensed_status_is_never_vacant(status: str, age: timedelta | None) -> None:
    confirmed = None if age is None else NOW - age
    effective = rules.effective_status(status, confirmed, NOW, WINDOW)
    fresh = age is not None and age <= WINDOW
    if status in rules.SENSED_STATUSES:
        assert effective == (status if fresh else rules.UNKNOWN)
    else:
        # Reserved and out of service are set on purpose and hold until changed.
        assert effective == status


@given(
    vacant=st.integers(0, 500),
    occupied=st.integers(0, 500),
    reserved=st.integers(0, 50),
    out=st.integers(0, 50),
    unknown=st.integers(0, 500),
)
def test_occupancy_percentages_add_up(vacant: int, occupied: int, reserved: int, out: int, unknown: int) -> None:
    total = vacant + occupied + reserved + out + unknown
    value = rules.Occupancy(total, vacant, occupied, reserved, out, unknown)
    parts = value.vacant_percent + value.occupied_percent + value.unknown_percent
    parts += rules.Occupancy.percent(reserved + out, total)
    assert parts == pytest.approx(100.0 if total else 0.0, abs=0.05)
    assert 0.0 <= value.occupancy_rate_percent <= 100.0


@pytest.mark.parametrize(
    "hours",
    [
        [{"days": "mon-fri", "open": "07:00", "close": "22:00"}],
        [{"days": "sat,sun", "open": "00:00", "close": "24:00"}],
        [{"days": "fri", "open": "22:00", "close": "02:00"}],
    ],
)
def test_valid_opening_hours_pass(hours: list[dict]) -> None:
    rules.check_opening_hours(hours, "openingHours")


@pytest.mark.parametrize(
    "hours",
    [
        [{"days": "mon-fri", "open": "7:00", "close": "22:00"}],
        [{"days": "funday", "open": "07:00", "close": "22:00"}],
        [{"days": "mon", "open": "10:00", "close": "10:00"}],
        [{"days": "mon", "open": "10:00"}],
        "always",
    ],
)
def test_invalid_opening_hours_are_refused(hours: object) -> None:
    with pytest.raises(InvalidInput):
        rules.check_opening_hours(hours, "openingHours")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "plate"),
    [("粤B·12345", "粤B12345"), ("粤b 12345", "粤B12345"), ("粤BD12345", "粤BD12345"), ("ab-123-cd", "AB123CD")],
)
def test_plates_are_normalized(raw: str, plate: str) -> None:
    assert normalize_plate(raw) == plate


@given(st.text(max_size=30))
def test_plate_normalization_accepts_or_refuses_cleanly(raw: str) -> None:
    try:
        plate = normalize_plate(raw)
    except InvalidInput as error:
        assert error.code == "INVALID_PLATE"
    else:
        assert plate == normalize_plate(plate)


@given(st.lists(st.sampled_from(["A", "B", "C", "D"]), max_size=12))
def test_duplicate_codes_are_exactly_the_repeated_ones(codes: list[str]) -> None:
    assert set(rules.duplicate_codes(codes)) == {code for code in codes if codes.count(code) > 1}
