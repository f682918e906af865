"""Camera plate normalization: cleaned always, flagged when not a recognizable plate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.plates import normalize_camera_plate


@pytest.mark.parametrize(
    ("raw", "plate"),
    [
        ("粤B12345", "粤B12345"),
        ("粤b·12345", "粤B12345"),
        ("京A-F0236", "京AF0236"),
        (" 沪 C 8 8 8 8 8 ", "沪C88888"),
        ("粤B•D12345", "粤BD12345"),  # small new-energy, 8 characters
        ("粤BF1A234", "粤BF1A234"),
        ("粤B12345D", "粤B12345D"),  # large new-energy
        ("京A1234学", "京A1234学"),
        ("京A1234警", "京A1234警"),
        ("粤Z1234港", "粤Z1234港"),
        ("粤Z1234澳", "粤Z1234澳"),
        ("鲁B1234挂", "鲁B1234挂"),
        ("沪A1234领", "沪A1234领"),
        ("京A1234使", "京A1234使"),
        ("使014578", "使014578"),
        ("粤Ｂ１２３４５", "粤B12345"),  # full-width letters and digits from some OCR engines
        ("pl8rec", "PL8REC"),
        ("6PK132", "6PK132"),
        ("ab.12-cd", "AB12CD"),
    ],
)
def test_valid_plates(raw: str, plate: str) -> None:
    assert normalize_camera_plate(raw) == (plate, True)


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("粤B1234", "粤B1234"),  # too short
        ("粤B1234567", "粤B1234567"),  # too long
        ("粤BI2345", "粤BI2345"),  # I is not used in serials
        ("粤B12O45", "粤B12O45"),  # nor O
        ("粤B12345X", "粤B12345X"),  # 8 characters but not new-energy
        ("粤BA12345", "粤BA12345"),  # 8 characters, first serial letter not D or F
        ("台A12345", "台A12345"),  # not a mainland province
        ("粤112345", "粤112345"),  # digit where the authority letter goes
        ("粤B1234军", "粤B1234军"),  # not a known suffix
        ("A", "A"),
        ("ABCDEFGHIJK", "ABCDEFGHIJK"),  # 11 characters
        ("AB#12", "AB#12"),
        ("", ""),
    ],
)
def test_unrecognizable_reads_are_kept_and_flagged(raw: str, cleaned: str) -> None:
    assert normalize_camera_plate(raw) == (cleaned, False)


@given(st.text(max_size=20))
def test_normalizing_is_idempotent(raw: str) -> None:
    plate, valid = normalize_camera_plate(raw)
    assert normalize_camera_plate(plate) == (plate, valid)
