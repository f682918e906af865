"""`parkhub settle`: progress per tenant on stderr, a plain summary on stdout, exit codes that say what happened."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

from hub.db import Database
from tests.settlement.conftest import Operator, move, payment


async def parkhub(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hub.cli", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_settle_one_tenant_then_again(db: Database, operator: Operator) -> None:
    await move(db, [payment(operator, 1000)])
    yesterday = (operator.today() - timedelta(days=1)).isoformat()
    first = await parkhub("settle", "--date", yesterday, "--tenant", operator.slug)
    assert first.returncode == 0, first.stderr
    assert f"[1/1] {operator.slug} {yesterday}: created, 0 transfers" in first.stderr
    assert "settled 1 of 1 tenant(s)" in first.stdout and "1 new statement(s)" in first.stdout
    again = await parkhub("settle", "--date", yesterday, "--tenant", operator.slug)
    assert again.returncode == 0
    assert "1 already settled" in again.stdout


async def test_settle_refuses_a_day_not_yet_over(operator: Operator) -> None:
    result = await parkhub(
        "settle", "--date", (operator.today() + timedelta(days=1)).isoformat(), "--tenant", operator.slug
    )
    assert result.returncode == 1
    assert "FAILED: NOT_DUE" in result.stderr
    assert f"failed: {operator.slug}" in result.stdout


async def test_settle_names_bad_input() -> None:
    unknown = await parkhub("settle", "--date", "2026-01-01", "--tenant", "no-such-operator")
    assert unknown.returncode == 1 and "no tenant with slug 'no-such-operator'" in unknown.stderr
    malformed = await parkhub("settle", "--date", "21/11/2026")
    assert malformed.returncode == 2 and "is not a date" in malformed.stderr
    assert "Traceback" not in unknown.stderr + malformed.stderr
