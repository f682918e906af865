"""The per-operator auto-pay opening (ACCEPTED or SUCCEEDED: then the exit holds `awaiting_payment` and the
deduction's success opens the lane), and drivers' e-invoice requests (recorded; issuing is a later integration)."""

from __future__ import annotations

from typing import Any

from hub.db import Database
from hub.ledger.rules import account_id
from hub.payments import tasks
from tests.lanes.conftest import Lot, ago, fresh_plate, row_id
from tests.lanes.test_exit import ADD_VEHICLE, SET_AUTO_PAY
from tests.lanes.test_gate_commands import commands
from tests.payments.test_auto_pay import ARREARS, payments_of
from tests.payments.test_lot_payments import PAY, balance, held_exit, settle

SET_OPENING = "mutation($on: AutoPayOpensOn!) { setAutoPayOpening(opensOn: $on) }"
OPENING = "{ autoPayOpening }"
REQUEST_INVOICE = """mutation($p: ID!, $title: String!, $email: String!, $tax: String) {
  requestInvoice(paymentId: $p, title: $title, email: $email, taxId: $tax) {
    id paymentId title taxId email amountFen state } }"""
INVOICES = "{ invoiceRequests(first: 50) { edges { node { id paymentId title state amountFen } } } }"


async def waiting_auto_pay_exit(lot: Lot, callers: Any) -> tuple[Any, str, dict[str, Any]]:
    assert (await lot.admin.data(SET_OPENING, {"on": "SUCCEEDED"}))["setAutoPayOpening"] == "SUCCEEDED"
    assert (await lot.staff.data(OPENING))["autoPayOpening"] == "SUCCEEDED"
    plate = fresh_plate()
    driver = await callers.driver()
    await driver.data(ADD_VEHICLE, {"plate": plate})
    await driver.data(SET_AUTO_PAY, {"plate": plate, "enabled": True})
    await lot.gate.passage(lot.entry_lane, plate, ago(130))
    held = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    assert (held["decision"], held["reason"], held["amount_due_fen"]) == ("hold", "awaiting_payment", 1500)
    again = await lot.gate.passage(lot.exit_lane, plate, ago(0))  # a second read while waiting charges nothing more
    assert again["reason"] == "awaiting_payment"
    return driver, plate, held


async def test_the_opening_is_an_operator_admins_setting(lot: Lot, callers: Any) -> None:
    assert (await lot.staff.data(OPENING))["autoPayOpening"] == "ACCEPTED"
    assert await lot.staff.error_code(SET_OPENING, {"on": "SUCCEEDED"}) == "FORBIDDEN"
    driver = await callers.driver()
    assert await driver.error_code(SET_OPENING, {"on": "SUCCEEDED"}) == "FORBIDDEN"
    assert (await lot.staff.data(OPENING))["autoPayOpening"] == "ACCEPTED"


async def test_open_on_succeeded_holds_then_the_success_opens_the_lane(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    driver, plate, _ = await waiting_auto_pay_exit(lot, callers)
    await tasks.charge_pending_now(db)
    [created] = await payments_of(driver)
    assert (created["method"], created["amountFen"]) == ("deduct", 1500)
    sandbox.set_outcome(row_id(created["id"]).hex, "pending")
    await settle(run_worker, sandbox, db)
    assert await commands(lot.gate, lot.exit_lane) == []  # accepted is not enough here
    sandbox.complete(row_id(created["id"]).hex, succeed=True)
    await settle(run_worker, sandbox, db)
    [paid] = await payments_of(driver)
    assert paid["state"] == "SUCCEEDED"
    opened = await commands(lot.gate, lot.exit_lane)
    assert [command["command"] for command in opened] == ["open"]
    # The car's next read (or its leaving) finds the stay paid.
    answer = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    assert (answer["decision"], answer["reason"]) == ("open", "paid")
    assert await balance(owner_db, account_id("tenant_payable", lot.tenant_id)) == (0, 0, 0, 1500)


async def test_open_on_succeeded_a_failed_deduction_leaves_the_driver_to_pay_at_the_exit(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database, owner_db: Database
) -> None:
    driver, plate, _ = await waiting_auto_pay_exit(lot, callers)
    await tasks.charge_pending_now(db)
    [created] = await payments_of(driver)
    sandbox.set_outcome(row_id(created["id"]).hex, "fail")
    await settle(run_worker, sandbox, db)
    [failed] = await payments_of(driver)
    assert (failed["state"], failed["arrearsFen"]) == ("FAILED", 0)  # no arrears: the car has not left
    assert (await driver.data(ARREARS))["myArrears"] == []
    assert await commands(lot.gate, lot.exit_lane) == []
    assert await balance(owner_db, account_id("tenant_payable", lot.tenant_id)) == (0, 0, 0, 0)
    answer = await lot.gate.passage(lot.exit_lane, plate, ago(0))
    assert (answer["decision"], answer["reason"]) == ("hold", "payment_due")
    token = answer["payment_link"].rsplit("/pay/", 1)[1]
    await driver.data(PAY, {"token": token, "key": "at-the-exit"})
    await settle(run_worker, sandbox, db)
    assert [command["command"] for command in await commands(lot.gate, lot.exit_lane)] == ["open"]


async def test_a_driver_requests_an_invoice_that_the_operator_sees(
    lot: Lot, callers: Any, run_worker: Any, sandbox: Any, db: Database
) -> None:
    plate = fresh_plate()
    held = await held_exit(lot, plate)
    driver = await callers.driver()
    paid = (await driver.data(PAY, {"plate": plate, "facilityId": lot.lot_id, "key": "k"}))["payLotSession"]
    invoice_vars = {
        "p": paid["id"],
        "title": "深圳某某科技有限公司",
        "email": "ap@example.com",
        "tax": "91440300MA5XXXXX0Q",
    }
    assert await driver.error_code(REQUEST_INVOICE, invoice_vars) == "PAYMENT_NOT_SUCCEEDED"
    await settle(run_worker, sandbox, db)
    asked = (await driver.data(REQUEST_INVOICE, invoice_vars))["requestInvoice"]
    assert (asked["state"], asked["amountFen"], asked["paymentId"]) == ("REQUESTED", held["amount_due_fen"], paid["id"])
    again = (await driver.data(REQUEST_INVOICE, invoice_vars))["requestInvoice"]
    assert again["id"] == asked["id"]
    mine = [edge["node"] for edge in (await driver.data(INVOICES))["invoiceRequests"]["edges"]]
    assert [(r["id"], r["state"]) for r in mine] == [(asked["id"], "REQUESTED")]
    operators = [edge["node"] for edge in (await lot.staff.data(INVOICES))["invoiceRequests"]["edges"]]
    assert [r["id"] for r in operators] == [asked["id"]]
    # Nobody else sees it or can ask for an invoice of this payment.
    stranger = await callers.driver()
    assert (await stranger.data(INVOICES))["invoiceRequests"]["edges"] == []
    assert await stranger.error_code(REQUEST_INVOICE, invoice_vars) == "NOT_FOUND"
    other_operator = await callers.operator()
    assert (await other_operator.data(INVOICES))["invoiceRequests"]["edges"] == []
    bad = {**invoice_vars, "email": "not-an-address"}
    assert await driver.error_code(REQUEST_INVOICE, bad) == "INVALID_EMAIL"
    bad = {**invoice_vars, "tax": "12"}
    assert await driver.error_code(REQUEST_INVOICE, bad) == "INVALID_TAX_ID"


async def test_operators_cannot_create_payment_provider_connectors(lot: Lot) -> None:
    create = "mutation($input: CreateConnectorInput!) { createConnector(input: $input) { secret } }"
    for fmt in ("SANDBOX_PAY", "WECHATPAY_V3"):
        body = {"input": {"name": "my provider", "format": fmt}}
        assert await lot.admin.error_code(create, body) == "PAYMENT_CONNECTOR_RESERVED"
