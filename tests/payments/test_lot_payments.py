"""Paying a lot session at the exit code, or for any plate, through GraphQL; the sandbox's callback reaches the
connector endpoint and the inbox, applies once, captures in the ledger and lets the car out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from hub.db import PLATFORM, Database
from hub.ingest import service as ingest
from hub.ledger.rules import account_id
from hub.payments import tasks
from tests.lanes.conftest import Lot, ago, fresh_plate, row_id
from tests.lanes.test_gate_commands import commands

PAY = """mutation($token: String, $plate: String, $facilityId: ID, $key: String!) {
  payLotSession(token: $token, plate: $plate, facilityId: $facilityId, idempotencyKey: $key) {
    id state amountFen purpose plate } }"""
MY_PAYMENTS = "{ myPayments(first: 50) { edges { node { id state amountFen refundedFen purpose plate } } } }"
OPERATOR_PAYMENTS = "{ payments(first: 50) { edges { node { id state amountFen } } } }"


async def held_exit(lot: Lot, plate: str) -> dict[str, Any]:
    await lot.gate.passage(lot.entry_lane, plate, ago(90))
    answer = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    assert (answer["decision"], answer["reason"]) == ("hold", "payment_due")
    return answer


async def settle(run_worker: Any, sandbox: Any, db: Database) -> None:
    """The provider call, its callback through the endpoint into the inbox, and the inbox applied. A callback that
    lands while the burst worker is stopping may lose its job (as in production): the inbox sweep, run here at once,
    picks its event up."""
    for _ in range(3):
        await run_worker()
        await sandbox.drain()
        async with db.transaction(PLATFORM) as session:
            await ingest.requeue_overdue_events(session, datetime.now(UTC) + timedelta(hours=1), timedelta(0), 10_000)
    await run_worker()


async def balance(owner_db: Database, account: uuid.UUID) -> tuple[int, int, int, int]:
    async with owner_db.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT debits_pending, debits_posted, credits_pending, credits_posted FROM ledger_accounts "
                    "WHERE id = :id"
                ),
                {"id": account},
            )
        ).one_or_none()
    return tuple(row) if row is not None else (0, 0, 0, 0)  # type: ignore[return-value]


async def test_pay_at_the_exit_code_then_the_car_leaves(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    plate = fresh_plate()
    held = await held_exit(lot, plate)
    token = held["payment_link"].rsplit("/pay/", 1)[1]
    driver = await callers.driver()
    paid = (await driver.data(PAY, {"token": token, "key": "k1"}))["payLotSession"]
    assert (paid["state"], paid["amountFen"], paid["purpose"]) == ("CREATED", held["amount_due_fen"], "lot_session")
    again = (await driver.data(PAY, {"token": token, "key": "k1"}))["payLotSession"]
    assert again["id"] == paid["id"]

    await settle(run_worker, sandbox, db)
    mine = [edge["node"] for edge in (await driver.data(MY_PAYMENTS))["myPayments"]["edges"]]
    assert [(p["id"], p["state"]) for p in mine] == [(paid["id"], "SUCCEEDED")]
    # The lane that held gets an open command: the car waiting there leaves without a new read.
    opened = await commands(lot.gate, lot.exit_lane)
    assert [command["command"] for command in opened] == ["open"]
    # An exit read within the grace opens too.
    answer = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    assert (answer["decision"], answer["reason"]) == ("open", "paid")
    # The ledger: the money came in through the driver's wallet and was applied to the operator.
    payable = await balance(owner_db, account_id("tenant_payable", lot.tenant_id))
    assert payable[3] == held["amount_due_fen"]
    prepaid = await balance(owner_db, account_id("driver_prepaid", driver.user_id))
    assert prepaid[3] - prepaid[1] == 0
    # The operator sees it; another driver does not.
    listed = (await lot.staff.data(OPERATOR_PAYMENTS))["payments"]["edges"]
    assert [edge["node"]["id"] for edge in listed] == [paid["id"]]
    stranger = await callers.driver()
    assert (await stranger.data(MY_PAYMENTS))["myPayments"]["edges"] == []


async def test_pay_for_someone_elses_plate(lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database) -> None:
    plate = fresh_plate()
    held = await held_exit(lot, plate)
    friend = await callers.driver()
    paid = (await friend.data(PAY, {"plate": plate, "facilityId": lot.lot_id, "key": "for-a-friend"}))["payLotSession"]
    assert paid["amountFen"] == held["amount_due_fen"]
    await settle(run_worker, sandbox, db)
    mine = [edge["node"] for edge in (await friend.data(MY_PAYMENTS))["myPayments"]["edges"]]
    assert [p["state"] for p in mine] == ["SUCCEEDED"]
    answer = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    assert answer["decision"] == "open"
    # The car has left: there is nothing to pay for any more.
    code = await friend.error_code(PAY, {"plate": plate, "facilityId": lot.lot_id, "key": "again"})
    assert code == "NO_OPEN_SESSION"


@pytest.mark.parametrize("words", [("duplicate",), ("renotify",), ("reorder",)])
async def test_duplicate_and_reordered_callbacks_apply_once(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database, words: tuple[str, ...]
) -> None:
    plate = fresh_plate()
    held = await held_exit(lot, plate)
    driver = await callers.driver()
    paid = (await driver.data(PAY, {"plate": plate, "facilityId": lot.lot_id, "key": "k"}))["payLotSession"]
    sandbox.set_outcome(row_id(paid["id"]).hex, *words)
    await settle(run_worker, sandbox, db)
    mine = [edge["node"] for edge in (await driver.data(MY_PAYMENTS))["myPayments"]["edges"]]
    assert [p["state"] for p in mine] == ["SUCCEEDED"]
    payable = await balance(owner_db, account_id("tenant_payable", lot.tenant_id))
    assert payable[3] == held["amount_due_fen"]


async def test_a_lost_callback_is_found_by_the_sweep(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    plate = fresh_plate()
    held = await held_exit(lot, plate)
    driver = await callers.driver()
    paid = (await driver.data(PAY, {"plate": plate, "facilityId": lot.lot_id, "key": "k"}))["payLotSession"]
    sandbox.set_outcome(row_id(paid["id"]).hex, "lost")
    await settle(run_worker, sandbox, db)
    mine = [edge["node"] for edge in (await driver.data(MY_PAYMENTS))["myPayments"]["edges"]]
    assert [p["state"] for p in mine] == ["REQUESTED"]
    later = datetime.now(UTC) + timedelta(hours=1)
    await tasks.sweep_payments_now(db, later)
    await tasks.sweep_payments_now(db, later)  # twice: applied once
    mine = [edge["node"] for edge in (await driver.data(MY_PAYMENTS))["myPayments"]["edges"]]
    assert [p["state"] for p in mine] == ["SUCCEEDED"]
    payable = await balance(owner_db, account_id("tenant_payable", lot.tenant_id))
    assert payable[3] == held["amount_due_fen"]


async def test_a_timeout_between_the_call_and_the_write(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    plate = fresh_plate()
    held = await held_exit(lot, plate)
    driver = await callers.driver()
    paid = (await driver.data(PAY, {"plate": plate, "facilityId": lot.lot_id, "key": "k"}))["payLotSession"]
    sandbox.set_outcome(row_id(paid["id"]).hex, "timeout", "lost")
    await settle(run_worker, sandbox, db)
    mine = [edge["node"] for edge in (await driver.data(MY_PAYMENTS))["myPayments"]["edges"]]
    assert [p["state"] for p in mine] == ["UNKNOWN"]
    await tasks.sweep_payments_now(db, datetime.now(UTC) + timedelta(hours=1))
    mine = [edge["node"] for edge in (await driver.data(MY_PAYMENTS))["myPayments"]["edges"]]
    assert [p["state"] for p in mine] == ["SUCCEEDED"]
    payable = await balance(owner_db, account_id("tenant_payable", lot.tenant_id))
    assert payable[3] == held["amount_due_fen"]
