"""Operators' webhooks hear of each raised exception (`exception.raised`) once, through the real worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from hub.db import Database
from tests.lanes.conftest import ago
from tests.queue.conftest import Desk, raise_disagreement


async def exception_notifications(owner_db: Database, desk: Desk) -> list[Any]:
    # Read as the owner: GraphQL shows operators their webhook deliveries, not the notifications behind them.
    async with owner_db.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT idempotency_key, subject_ids, payload, driver_id FROM notifications "
                "WHERE tenant_id = :t AND type = 'exception.raised'"
            ),
            {"t": desk.lot.tenant_id},
        )
        return list(result.mappings().all())


async def test_a_raised_exception_is_notified_once(
    desk: Desk, owner_db: Database, run_worker: Callable[[], Awaitable[int]]
) -> None:
    answer = await raise_disagreement(desk.lot, desk.lot.entry_lane, ago(1), number=3131)
    await run_worker()
    await run_worker()
    [notification] = await exception_notifications(owner_db, desk)
    assert notification["idempotency_key"] == f"exception.raised:{answer['exception_id']}"
    assert notification["subject_ids"]["exception_id"] == answer["exception_id"]
    assert notification["subject_ids"]["facility_id"] == str(desk.lot.facility_uuid)
    payload = notification["payload"]
    assert (payload["kind"], payload["reason"], payload["lane_name"]) == (
        "plate_disagreement",
        "plate_disagreement",
        "In",
    )
    assert [read["image"] for read in payload["reads"]] == ["cam-a/0187.jpg", "cam-b/0187.jpg"]
    assert notification["driver_id"] is None
