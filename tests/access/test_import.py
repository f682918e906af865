"""Importing vehicle lists from CSV through GraphQL and the command line: all rows or none, and a report that
names every problem by row and column."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from hub.cli import app as parkhub
from tests.access import ops
from tests.api.conftest import Caller, Callers

PASS_FILE = """plate,valid_from,valid_until,facilities,weekdays,window_start,window_end,vehicle_class,holder_name
粤B·10001,2026-11-01,2026-11-30,{lot},1-5,08:00,18:00,small,Wang
粤B10002,2026-11-01,2026-11-30,,,,,,
粤B10003,2026-11-01,2026-11-30,{lot},sat-sun,,,large,
"""


async def import_list(caller: Caller, kind: str, csv: str, dry_run: bool = False) -> dict[str, Any]:
    return (await caller.data(ops.IMPORT, {"kind": kind, "csv": csv, "dryRun": dry_run}))["importVehicleList"]


def problems(report: dict[str, Any]) -> list[tuple[int, str | None, str]]:
    return [(error["row"], error["field"], error["code"]) for error in report["errors"]]


async def test_a_good_pass_file_is_imported_whole(operator: dict[str, Any]) -> None:
    admin, lot = operator["admin"], operator["shanghai"]
    report = await import_list(admin, "PASS", PASS_FILE.format(lot=lot["code"]))
    assert report == {
        "kind": "PASS",
        "dryRun": False,
        "rowsRead": 3,
        "validRows": 3,
        "imported": 3,
        "errorCount": 0,
        "errorsTruncated": False,
        "errors": [],
    }
    passes = {
        edge["node"]["plate"]: edge["node"] for edge in (await admin.data(ops.PASSES, {}))["vehiclePasses"]["edges"]
    }
    assert set(passes) == {"粤B10001", "粤B10002", "粤B10003"}
    assert passes["粤B10001"]["facilities"] == [{"id": lot["id"]}]
    assert (passes["粤B10001"]["windowStart"], passes["粤B10001"]["vehicleClass"]) == ("08:00", "SMALL")
    assert passes["粤B10001"]["holderName"] == "Wang"
    assert passes["粤B10002"]["facilities"] is None and passes["粤B10002"]["weekdays"] == [1, 2, 3, 4, 5, 6, 7]
    assert passes["粤B10003"]["weekdays"] == [6, 7]


async def test_a_file_with_bad_rows_writes_nothing_and_reports_every_problem(operator: dict[str, Any]) -> None:
    admin, other_tenant_lot = operator["admin"], "NOPE-1"
    csv = (
        "plate,valid_from,valid_until,facilities,weekdays,window_start,window_end\n"
        "粤B20001,2026-11-01,2026-11-30,,,,\n"
        "粤B20002,2026-11-31,2026-11-30,,,,\n"
        f"粤B20003,2026-11-01,2026-11-30,{other_tenant_lot},,,\n"
        "粤B·20001,2026-11-15,2026-12-15,,,,\n"
        "XX#,2026-11-01,2026-10-01,,8,7:00,\n"
    )
    report = await import_list(admin, "PASS", csv)
    assert (report["rowsRead"], report["validRows"], report["imported"]) == (5, 1, 0)
    assert problems(report) == [
        (3, "valid_from", "INVALID_DATE"),
        (4, "facilities", "UNKNOWN_FACILITY"),
        (5, "plate", "DUPLICATE_ROW"),
        (6, "plate", "INVALID_PLATE"),
        (6, "valid_until", "DATES_OUT_OF_ORDER"),
        (6, "weekdays", "INVALID_WEEKDAY"),
        (6, "window_end", "INCOMPLETE_WINDOW"),
    ]
    assert report["errorCount"] == 7
    assert all(error["message"] for error in report["errors"])
    assert await ops.count_passes(admin) == 0


async def test_a_dry_run_checks_everything_and_writes_nothing(operator: dict[str, Any]) -> None:
    admin = operator["admin"]
    csv = "plate,category,facilities,valid_until,reason\n京A00001,official,,2027-12-31,mayor\n京A00002,team,,,\n"
    report = await import_list(admin, "WHITELIST", csv, dry_run=True)
    assert (report["dryRun"], report["rowsRead"], report["validRows"], report["imported"]) == (True, 2, 2, 0)
    assert (await admin.data(ops.WHITELIST, {}))["whitelistEntries"]["edges"] == []
    assert (await import_list(admin, "WHITELIST", csv))["imported"] == 2
    assert len((await admin.data(ops.WHITELIST, {}))["whitelistEntries"]["edges"]) == 2


async def test_rows_overlapping_live_entries_are_duplicates(operator: dict[str, Any]) -> None:
    admin = operator["admin"]
    csv = "plate,kind,reason,valid_from\n粤B30001,blacklist,unpaid fees,\n粤B30002,restricted,court order,2026-01-01\n"
    assert (await import_list(admin, "BLOCKLIST", csv))["imported"] == 2
    again = await import_list(admin, "BLOCKLIST", csv.replace("粤B30002", "粤B·30002"))
    assert again["imported"] == 0 and again["validRows"] == 0
    assert problems(again) == [(2, "plate", "DUPLICATE_ENTRY"), (3, "plate", "DUPLICATE_ENTRY")]
    # Once the entries are revoked, the same file goes in again.
    for edge in (await admin.data(ops.BLOCKLIST, {}))["blocklistEntries"]["edges"]:
        await admin.data(ops.REVOKE_BLOCKLIST, {"id": edge["node"]["id"]})
    assert (await import_list(admin, "BLOCKLIST", csv))["imported"] == 2


async def test_a_file_for_another_list_is_told_what_columns_it_lacks(operator: dict[str, Any]) -> None:
    report = await import_list(operator["admin"], "BLOCKLIST", PASS_FILE.format(lot=""))
    assert report["imported"] == 0
    codes = {(error["field"], error["code"]) for error in report["errors"]}
    assert ("kind", "MISSING_COLUMN") in codes and ("valid_from", "UNKNOWN_COLUMN") not in codes
    assert ("weekdays", "UNKNOWN_COLUMN") in codes
    assert all(error["row"] == 1 for error in report["errors"])


async def test_the_report_lists_the_first_thousand_problems_and_counts_them_all(operator: dict[str, Any]) -> None:
    csv = "plate,kind,reason\n" + "".join(f"粤B4{index:04d},banned,\n" for index in range(600))
    report = await import_list(operator["admin"], "BLOCKLIST", csv)
    assert report["errorCount"] == 1200  # a bad kind and a missing reason on each row
    assert len(report["errors"]) == 1000 and report["errorsTruncated"] is True
    assert report["errors"][0]["row"] == 2 and report["errors"][-1]["row"] == 501


async def test_fifty_thousand_rows_go_in_and_one_more_is_refused(operator: dict[str, Any], callers: Callers) -> None:
    admin = operator["admin"]
    rows = [f"粤A{index // 10_000}{index % 10_000:04d},blacklist,fraud ring\n" for index in range(50_000)]
    report = await import_list(admin, "BLOCKLIST", "plate,kind,reason\n" + "".join(rows))
    assert (report["rowsRead"], report["imported"], report["errorCount"]) == (50_000, 50_000, 0)
    page = await admin.data('{ blocklistEntries(first: 1, plate: "粤A49999") { edges { node { reason } } } }')
    assert page["blocklistEntries"]["edges"] == [{"node": {"reason": "fraud ring"}}]
    other = await callers.operator()
    too_many = "plate,kind,reason\n" + "".join(rows) + "粤A99999,blacklist,x\n"
    body = await other.post(ops.IMPORT, {"kind": "BLOCKLIST", "csv": too_many})
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_ROWS"
    assert (await other.data(ops.BLOCKLIST, {}))["blocklistEntries"]["edges"] == []


# ----------------------------------------------------------------------------------------------------- CLI

runner = CliRunner()


async def run_cli(*args: str) -> Result:
    """The command in a thread of its own: it runs its own event loop, as from a shell."""
    return await asyncio.to_thread(runner.invoke, parkhub, ["vehicles", "import", *args])


async def test_the_command_line_imports_a_file_and_prints_the_report(operator: dict[str, Any], tmp_path: Path) -> None:
    admin = operator["admin"]
    slug = (await admin.data("{ me { operator { slug } } }"))["me"]["operator"]["slug"]
    good = tmp_path / "passes.csv"
    good.write_text(PASS_FILE.format(lot=operator["shanghai"]["code"]), encoding="utf-8-sig")
    dry = await run_cli("--tenant", slug, "--kind", "pass", str(good), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["valid_rows"] == 3 and await ops.count_passes(admin) == 0
    result = await run_cli("--tenant", slug, "--kind", "PASS", str(good))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["tenant"], summary["kind"], summary["imported"], summary["errors"]) == (slug, "pass", 3, [])
    assert "read 3 rows" in result.stderr
    assert await ops.count_passes(admin) == 3
    # The same file again: every row a duplicate, status 1, the report still printed.
    again = await run_cli("--tenant", slug, "--kind", "pass", str(good))
    assert again.exit_code == 1
    assert json.loads(again.stdout)["error_count"] == 3
    assert again.stderr.strip().splitlines()[-1] == f"parkhub: 3 problems in {good}; nothing was written"


async def test_the_command_line_refuses_plainly(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("plate,kind,reason\nÄB123,blacklist,x\n".encode("latin-1"))
    good = tmp_path / "good.csv"
    good.write_text("plate,kind,reason\n粤B12345,blacklist,x\n", encoding="utf-8")
    cases = [
        (["--tenant", "x", "--kind", "greylist", str(latin1)], "kind must be pass, whitelist or blocklist"),
        (["--tenant", "x", "--kind", "pass", str(tmp_path / "missing.csv")], "cannot read"),
        (["--tenant", "x", "--kind", "blocklist", str(latin1)], "is not UTF-8"),
        (["--tenant", "x", "--kind", "pass", str(tmp_path)], "cannot read"),
        (["--tenant", f"no-{uuid.uuid4().hex[:8]}", "--kind", "blocklist", str(good)], "no tenant with slug"),
    ]
    for args, words in cases:
        result = await run_cli(*args)
        assert result.exit_code == 1, result.output
        assert words in result.stderr and "Traceback" not in result.output
