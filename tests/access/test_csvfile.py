"""Reading vehicle lists from CSV: columns, typed cells, and every problem of every row with its number."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from hub.access import csvfile
from hub.errors import InvalidInput

LOT_A = uuid.UUID(int=10)
LOT_B = uuid.UUID(int=11)
FACILITIES = {"A1": LOT_A, "B1": LOT_B, str(LOT_A): LOT_A, str(LOT_B): LOT_B}


def problems(parsed: csvfile.ParsedFile) -> list[tuple[int, str | None, str]]:
    return [(error.row, error.field, error.code) for error in parsed.errors]


def test_a_good_pass_file_gives_the_values_to_store() -> None:
    text = (
        "\ufeffPlate,Valid From,valid-until,facilities,weekdays,window_start,window_end,"
        "vehicle_class,holder_name,note\n"
        '粤B·12345,2026-11-01,2026/11/30,A1;B1,1-5,22:00,06:00,new energy,李伟,"night, weekdays"\n'
        "\n"
        f"粤b 99999,2026-11-01,2026-11-30,{LOT_B},,,,,,\n"
    )
    parsed = csvfile.read_list("pass", text, FACILITIES)
    assert parsed.errors == []
    assert parsed.rows_read == 2
    first, second = parsed.rows
    assert first.row == 2 and second.row == 4  # the blank line keeps its number
    assert first.values == {
        "plate": "粤B12345",
        "holder_name": "李伟",
        "holder_phone": None,
        "facility_ids": [LOT_A, LOT_B],
        "valid_from": date(2026, 11, 1),
        "valid_until": date(2026, 11, 30),
        "weekdays": [1, 2, 3, 4, 5],
        "window_start": 22 * 60,
        "window_end": 6 * 60,
        "vehicle_class": "new_energy",
        "note": "night, weekdays",
    }
    assert second.values["plate"] == "粤B99999"
    assert second.values["facility_ids"] == [LOT_B]
    assert second.values["weekdays"] == [1, 2, 3, 4, 5, 6, 7]
    assert second.values["vehicle_class"] == "standard"


def test_every_problem_of_every_row_is_reported_with_its_row_and_column() -> None:
    text = (
        "plate,valid_from,valid_until,facilities,weekdays,window_start,window_end\n"
        "粤B12345,2026-11-01,2026-11-30,,,,\n"
        "??,2026-13-01,2026-11-30,ZZ,9,,\n"
        "粤B22222,2026-12-01,2026-11-30,,,08:00,\n"
        ",,,,,,\n"
        ",2026-11-01,,,,,,extra\n"
    )
    parsed = csvfile.read_list("pass", text, FACILITIES)
    assert problems(parsed) == [
        (3, "plate", "INVALID_PLATE"),
        (3, "valid_from", "INVALID_DATE"),
        (3, "facilities", "UNKNOWN_FACILITY"),
        (3, "weekdays", "INVALID_WEEKDAY"),
        (4, "valid_until", "DATES_OUT_OF_ORDER"),
        (4, "window_end", "INCOMPLETE_WINDOW"),
        (6, None, "EXTRA_VALUES"),
        (6, "plate", "MISSING_VALUE"),
        (6, "valid_until", "MISSING_VALUE"),
    ]
    assert parsed.rows_read == 4  # row 5 is blank
    assert [row.row for row in parsed.rows] == [2]


def test_duplicates_within_the_file_name_the_row_they_repeat() -> None:
    text = (
        "plate,category,facilities\n"
        "粤B12345,vip,A1\n"
        "粤B54321,team,\n"
        "粤B·12345,official,\n"  # every facility includes A1
        "粤B54321,team,B1\n"
    )
    parsed = csvfile.read_list("whitelist", text, FACILITIES)
    assert problems(parsed) == [(4, "plate", "DUPLICATE_ROW"), (5, "plate", "DUPLICATE_ROW")]
    assert "row 2" in parsed.errors[0].message and "row 3" in parsed.errors[1].message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("plate,kind", [(1, "reason", "MISSING_COLUMN")]),
        ("plate,kind,reason,colour", [(1, "colour", "UNKNOWN_COLUMN")]),
        ("plate,kind,reason,Reason", [(1, "reason", "DUPLICATE_COLUMN")]),
    ],
)
def test_a_header_that_does_not_fit_the_list_stops_the_file(header: str, expected: list[tuple]) -> None:
    parsed = csvfile.read_list("blocklist", f"{header}\n粤B12345,blacklist,unpaid\n", FACILITIES)
    assert problems(parsed) == expected
    assert parsed.rows == []


@pytest.mark.parametrize(
    ("text", "code"),
    [("", "MISSING_HEADER"), ("\n\n", "MISSING_HEADER"), ("plate,kind,reason\n", "NO_ROWS")],
)
def test_an_empty_file_is_a_problem(text: str, code: str) -> None:
    assert [error.code for error in csvfile.read_list("blocklist", text, FACILITIES).errors] == [code]


def test_broken_quoting_is_reported_where_it_happens() -> None:
    parsed = csvfile.read_list("blocklist", 'plate,kind,reason\n粤B12345,blacklist,"unpaid\n', FACILITIES)
    assert problems(parsed) == [(2, None, "MALFORMED_CSV")]  # the record that starts on row 2


def test_more_rows_than_the_limit_are_refused_before_reading_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvfile, "MAX_ROWS", 3)
    rows = "".join(f"粤B1234{index},blacklist,unpaid\n" for index in range(4))
    with pytest.raises(InvalidInput) as caught:
        csvfile.read_list("blocklist", "plate,kind,reason\n" + rows, FACILITIES)
    assert caught.value.code == "TOO_MANY_ROWS"
    # Exactly the limit is fine.
    assert csvfile.read_list("blocklist", "plate,kind,reason\n" + rows[: rows.rindex("粤")], FACILITIES).rows_read == 3
