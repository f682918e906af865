"""Exact conversion of providers' decimal strings to fen, and back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.payments.money import MoneyFormatError, decimal_to_fen, fen_to_decimal


@pytest.mark.parametrize(
    ("text", "fen"),
    [("12.30", 1230), ("12.3", 1230), ("12", 1200), ("0.01", 1), ("0", 0), ("0.00", 0), ("999999.99", 99999999)],
)
def test_decimal_strings_become_exact_fen(text: str, fen: int) -> None:
    assert decimal_to_fen(text) == fen


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("12.301", "more than two decimals"),
        ("0.001", "more than two decimals"),
        ("1e3", "exponent"),
        ("1E3", "exponent"),
        ("", "empty"),
        (" 1", "blanks"),
        ("1 ", "blanks"),
        ("-1.00", "negative"),
        ("-0.00", "negative"),
        ("NaN", "not a finite number"),
        ("inf", "not a finite number"),
        ("-Infinity", "not a finite number"),
        ("+1", "plus sign"),
        ("012", "leading zeros"),
        ("1.", "not a decimal string"),
        (".5", "not a decimal string"),
        ("1,000.00", "not a decimal string"),
        ("\uff11\uff12", "not a decimal string"),  # full-width digits
        ("1234567890123456", "too large"),
        (12.3, "got float"),
        (12, "got int"),
        (True, "got bool"),
        (None, "got NoneType"),
        (Decimal("1.005"), "more than two decimals"),
        (Decimal("NaN"), "not a finite number"),
        (Decimal("-1"), "negative"),
    ],
)
def test_anything_inexact_or_ambiguous_is_refused(value: object, why: str) -> None:
    with pytest.raises(MoneyFormatError, match=why):
        decimal_to_fen(value)  # type: ignore[arg-type]


def test_negatives_only_where_allowed() -> None:
    assert decimal_to_fen("-5.00", allow_negative=True) == -500
    assert decimal_to_fen("-0.5", allow_negative=True) == -50
    assert decimal_to_fen(Decimal("-1.20"), allow_negative=True) == -120


def test_decimals_are_accepted_when_exact() -> None:
    assert decimal_to_fen(Decimal("12.30")) == 1230
    assert decimal_to_fen(Decimal("12.300")) == 1230  # trailing zeros are still exact
    assert decimal_to_fen(Decimal("1E+2")) == 10000


def test_fen_are_written_with_exactly_two_decimals() -> None:
    assert [fen_to_decimal(fen) for fen in (1230, 5, 100, 0, -500, -1)] == [
        "12.30",
        "0.05",
        "1.00",
        "0.00",
        "-5.00",
        "-0.01",
    ]
    for wrong in (12.3, True, "12", Decimal(12)):
        with pytest.raises(MoneyFormatError):
            fen_to_decimal(wrong)  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**17) + 1, max_value=10**17 - 1))
def test_fen_round_trip_through_text(fen: int) -> None:
    assert decimal_to_fen(fen_to_decimal(fen), allow_negative=True) == fen


@given(st.from_regex(r"\A(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?\Z"))
def test_text_round_trip_keeps_the_value(text: str) -> None:
    fen = decimal_to_fen(text)
    assert Decimal(fen_to_decimal(fen)) == Decimal(text)
    assert fen == Decimal(text) * 100


@given(st.from_regex(r"\A[0-9]{1,6}\.[0-9]{3,6}\Z"))
def test_three_or_more_decimals_are_always_refused(text: str) -> None:
    with pytest.raises(MoneyFormatError):
        decimal_to_fen(text)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_are_always_refused(value: float) -> None:
    with pytest.raises(MoneyFormatError, match="got float"):
        decimal_to_fen(value)  # type: ignore[arg-type]
