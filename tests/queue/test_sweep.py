"""The barrier-held sweep: a lane whose latest passage was held longer than the threshold, with no passage since and
no exception of its own, gets one `barrier_held` exception, however often the sweep runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub.config import get_settings
from hub.db import PLATFORM, Database
from hub.queue import service, tasks
from tests.lanes.conftest import Lot, ago, fresh_plate
from tests.queue.conftest import Desk, queue_of, raise_disagreement

THRESHOLD = timedelta(seconds=120)


async def sweep(db: Database, now: datetime) -> int:
    """As the worker's cron runs it: the application role, the platform scope, its own transaction."""
    async with db.transaction(PLATFORM) as session:
        return await service.sweep_held_barriers(session, now, held_after=THRESHOLD)


async def hold_for_payment(lot: Lot) -> str:
    """A vehicle that owes something at the exit: the barrier holds, with no exception (the driver can pay)."""
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(90))
    held = await lot.gate.passage(lot.exit_lane, plate, ago(0.1))
    assert (held["decision"], held["reason"], held["exception_id"]) == ("hold", "payment_due", None)
    return plate


async def test_a_barrier_held_past_the_threshold_is_raised_once(desk: Desk, db: Database) -> None:
    lot = desk.lot
    plate = await hold_for_payment(lot)
    await raise_disagreement(lot, lot.entry_lane, ago(0.1))  # held too, but with an exception of its own

    await sweep(db, datetime.now(UTC))  # not yet past the threshold
    assert [item["kind"] for item in await queue_of(desk.alice)] == ["PLATE_DISAGREEMENT"]

    later = datetime.now(UTC) + THRESHOLD + timedelta(seconds=30)
    assert await sweep(db, later) >= 1
    held = [item for item in await queue_of(desk.alice) if item["kind"] == "BARRIER_HELD"]
    assert len(held) == 1
    [item] = held
    assert (item["lane"]["id"], item["heldReason"], item["plate"]) == (lot.exit_lane, "payment_due", plate)
    assert (item["session"]["plate"], item["session"]["state"]) == (plate, "OPEN")
    assert item["detail"]["threshold_seconds"] == 120 and item["detail"]["held_seconds"] >= 150

    await sweep(db, later)
    await sweep(db, later + timedelta(minutes=5))
    assert [entry["kind"] for entry in await queue_of(desk.alice)].count("BARRIER_HELD") == 1


async def test_a_lane_that_moved_on_is_not_held(desk: Desk, db: Database) -> None:
    lot = desk.lot
    await hold_for_payment(lot)
    # The next vehicle at the same exit left free (a short stay): the barrier is no longer held.
    plate = fresh_plate()
    await lot.gate.passage(lot.entry_lane, plate, ago(5))
    left = await lot.gate.passage(lot.exit_lane, plate, ago(0.05))
    assert left["decision"] == "open"
    await sweep(db, datetime.now(UTC) + timedelta(minutes=10))
    assert await queue_of(desk.alice) == []


async def test_two_sweeps_at_once_raise_it_once(desk: Desk, db: Database) -> None:
    lot = desk.lot
    await hold_for_payment(lot)
    later = datetime.now(UTC) + timedelta(minutes=3)
    await asyncio.gather(sweep(db, later), sweep(db, later))
    assert [item["kind"] for item in await queue_of(desk.alice)] == ["BARRIER_HELD"]


def test_the_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        monkeypatch.delenv("PARKHUB_BARRIER_HELD_SECONDS", raising=False)
        get_settings.cache_clear()
        assert tasks.barrier_held_after() == timedelta(seconds=120)
        monkeypatch.setenv("PARKHUB_BARRIER_HELD_SECONDS", "45")
        get_settings.cache_clear()
        assert tasks.barrier_held_after() == timedelta(seconds=45)
        monkeypatch.setenv("PARKHUB_BARRIER_HELD_SECONDS", "0")
        get_settings.cache_clear()
        with pytest.raises(ValueError):
            tasks.barrier_held_after()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
