"""Leave first, pay later as WeChat Pay Score runs it, against the sandbox: an auto-pay plate's entry opens a parking
entry with the provider, kept on the lot session; the exit's deduction names it (opening it then if the entry's job
was lost); the provider's service-state callbacks keep its state, and a stay the provider will not charge (the payer
paused the service) is held at the exit for payment like any other."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import text

from connectors.payments import ServiceState
from hub import jobs
from hub.db import Database
from hub.payments import tasks
from tests.lanes.conftest import Lot, ago, fresh_plate
from tests.lanes.test_exit import ADD_VEHICLE, SET_AUTO_PAY
from tests.payments.test_auto_pay import payments_of
from tests.payments.test_lot_payments import settle


async def auto_pay_plate(callers: Any) -> tuple[Any, str]:
    plate = fresh_plate()
    driver = await callers.driver()
    await driver.data(ADD_VEHICLE, {"plate": plate})
    await driver.data(SET_AUTO_PAY, {"plate": plate, "enabled": True})
    return driver, plate


async def provider_parking(owner_db: Database, session_id: str) -> tuple[str | None, str | None]:
    async with owner_db.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT provider_parking_id, provider_parking_state FROM lot_sessions WHERE id = :s"),
                {"s": session_id},
            )
        ).one()
    return row[0], row[1]


async def test_the_entry_opens_the_providers_parking_and_the_deduction_names_it(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    driver, plate = await auto_pay_plate(callers)
    entry = await lot.gate.passage(lot.entry_lane, plate, ago(130))
    await settle(run_worker, sandbox, db)
    parking_id, state = await provider_parking(owner_db, entry["session_id"])
    assert parking_id is not None and parking_id.startswith("sbx_park_") and state == "normal"

    exit = await lot.gate.passage(lot.exit_lane, plate, ago(1))
    assert (exit["decision"], exit["reason"]) == ("open", "auto_pay")
    # The payer pauses the service after leaving: the provider says so, and refuses the deduction of that entry
    # (which it can only do if the deduction named it).
    sandbox.set_parking_state(parking_id, ServiceState.BLOCKED, "payer paused the service")
    await settle(run_worker, sandbox, db)
    assert await provider_parking(owner_db, entry["session_id"]) == (parking_id, "blocked")
    await tasks.charge_pending_now(db)
    await settle(run_worker, sandbox, db)
    [deduction] = await payments_of(driver)
    assert (deduction["method"], deduction["state"], deduction["arrearsFen"]) == ("deduct", "FAILED", 1500)


async def test_a_stay_the_provider_will_not_charge_is_held_at_the_exit(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    _, plate = await auto_pay_plate(callers)
    entry = await lot.gate.passage(lot.entry_lane, plate, ago(130))
    await settle(run_worker, sandbox, db)
    parking_id, _ = await provider_parking(owner_db, entry["session_id"])
    assert parking_id is not None
    sandbox.set_parking_state(parking_id, ServiceState.PAUSED)
    await settle(run_worker, sandbox, db)
    exit = await lot.gate.passage(lot.exit_lane, plate, ago(1))
    assert (exit["decision"], exit["reason"], exit["amount_due_fen"]) == ("hold", "payment_due", 1500)


async def test_the_deduction_opens_the_parking_when_the_entrys_job_was_lost(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database, settings: Any
) -> None:
    driver, plate = await auto_pay_plate(callers)
    entry = await lot.gate.passage(lot.entry_lane, plate, ago(130))
    await jobs.drain_dispatches()
    queue = aioredis.from_url(settings.redis_url)
    await queue.flushdb()  # Redis lost the entry's job
    await queue.aclose()
    assert await provider_parking(owner_db, entry["session_id"]) == (None, None)

    assert (await lot.gate.passage(lot.exit_lane, plate, ago(1)))["reason"] == "auto_pay"
    await tasks.charge_pending_now(db)
    await settle(run_worker, sandbox, db)
    parking_id, state = await provider_parking(owner_db, entry["session_id"])
    assert parking_id is not None and state == "normal"
    [deduction] = await payments_of(driver)
    assert (deduction["method"], deduction["state"]) == ("deduct", "SUCCEEDED")
