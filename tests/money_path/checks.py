"""What must hold after a money-path simulation, whatever the interleaving: each check returns the problems it
found (empty: it holds), so the test can report all of them at once, with the seed.

- the ledger is sound (every transfer balances, sums equal entries, bounds hold: hub.ledger's invariant check);
- every payment moved the ledger exactly as its final state says, once (the transfers naming it, by code and amount:
  a callback, reply or query applied twice, or a state without its money, shows here), and its refunds' transfers
  add up to what it says was refunded, never more than it was;
- every payment and refund agrees with the provider's books (the sandbox is the provider's truth);
- every provider callback that reached the inbox was applied (none left pending or dead);
- no merchant code was used beyond its limit, and every use is one redemption;
- every statement reconciles to its listed transfers and the ledger's fee and payout (settlement.verify_statement);
- per operator, to the fen, from the business tables (payments, refunds, coupon redemptions and books), not from the
  ledger: captured - refunded + coupons - coupon funding = payouts - returned payouts + fees + the last carry, each
  line equal to the statements' own, nothing left unsettled, and the payable's available balance is the carry."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import text

from connectors.payments import OrderStatus
from hub.db import PLATFORM
from hub.ledger import service as ledger
from hub.ledger.rules import account_id
from hub.settlement import service as settlement
from tests.money_path.runner import Sim

OPEN = ("created", "requested", "unknown")


async def ledger_invariants(sim: Sim) -> list[str]:
    async with sim.owner_db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        return [str(violation) for violation in await ledger.check_invariants(raw.driver_connection)]


async def _payments(sim: Sim) -> list[dict[str, Any]]:
    async with sim.owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                """SELECT tenant_id, id, purpose, method, subject_id, amount_fen, state, failure_code, refunded_fen,
                          refunding_fen, arrears_fen, plate FROM payments WHERE tenant_id = ANY(:ts)"""
            ),
            {"ts": sim.tenants()},
        )
        return [dict(row) for row in rows.mappings()]


async def _refunds(sim: Sim) -> list[dict[str, Any]]:
    async with sim.owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                """SELECT tenant_id, id, payment_id, amount_fen, state, source, failure_code
                   FROM payment_refunds WHERE tenant_id = ANY(:ts)"""
            ),
            {"ts": sim.tenants()},
        )
        return [dict(row) for row in rows.mappings()]


async def _payment_transfers(sim: Sim) -> dict[str, list[dict[str, Any]]]:
    """The ledger's transfers naming each payment (reference payment_id), by payment id text."""
    async with sim.owner_db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                """SELECT id, code, kind, amount, reference->>'payment_id' AS payment_id FROM ledger_transfers
                   WHERE tenant_id = ANY(:ts) AND reference ? 'payment_id'"""
            ),
            {"ts": sim.tenants()},
        )
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows.mappings():
            found[row["payment_id"]].append(dict(row))
        return found


async def payments_moved_the_ledger_once(sim: Sim) -> list[str]:
    problems: list[str] = []
    payments = await _payments(sim)
    refunds = await _refunds(sim)
    moved = await _payment_transfers(sim)
    arrears_payers = Counter(
        p["subject_id"] for p in payments if p["purpose"] == "arrears" and p["state"] == "succeeded"
    )
    refunds_of: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for refund in refunds:
        refunds_of[refund["payment_id"]].append(refund)
    for p in payments:
        name = f"payment {p['id']} ({p['purpose']}/{p['method']} {p['state']} {p['amount_fen']} fen)"
        transfers = moved.get(str(p["id"]), [])
        codes = Counter(t["code"] for t in transfers if t["code"] != "refund")
        amounts = {t["code"]: t["amount"] for t in transfers if t["code"] != "refund"}
        if any(count > 1 for count in codes.values()):
            problems.append(f"{name}: a step applied twice: {dict(codes)}")
        expected = _expected_codes(p, codes, arrears_payers[p["id"]])
        if set(codes) != expected:
            problems.append(f"{name}: the ledger has {sorted(codes)}, its state says {sorted(expected)}")
        whole = {"payment_in", "payment_applied", "deduction", "deduction_post", "arrears_in", "street_hold"}
        for code in whole & set(amounts):
            if amounts[code] != p["amount_fen"]:
                problems.append(f"{name}: {code} moved {amounts[code]} fen")
        if amounts.get("street_post", 0) > p["amount_fen"]:
            problems.append(f"{name}: its hold was posted for {amounts['street_post']} fen, more than held")
        # Refunds: one transfer per succeeded refund, for its amount; never more than was paid.
        succeeded = sorted(r["amount_fen"] for r in refunds_of[p["id"]] if r["state"] == "succeeded")
        refunded = sorted(t["amount"] for t in transfers if t["code"] == "refund")
        if refunded != succeeded:
            problems.append(f"{name}: refund transfers {refunded} but succeeded refunds {succeeded}")
        if sum(succeeded) != p["refunded_fen"]:
            problems.append(f"{name}: refunded_fen {p['refunded_fen']} but its refunds add up to {sum(succeeded)}")
        if p["refunded_fen"] > p["amount_fen"] or p["refunding_fen"] != 0:
            problems.append(f"{name}: refunded {p['refunded_fen']}, still refunding {p['refunding_fen']}")
        if succeeded and p["state"] != "succeeded":
            problems.append(f"{name}: refunds of a payment that did not succeed")
    return problems


def _expected_codes(p: dict[str, Any], codes: Counter[str], arrears_payments: int) -> set[str]:
    state, purpose = p["state"], p["purpose"]
    if state == "succeeded":
        if p["method"] == "deduct":
            return {"deduction", "deduction_post"}
        if purpose == "arrears":
            return {"arrears_in"}
        if purpose == "street_session":
            resolved = {"street_post"} if "street_post" in codes else {"street_void"}
            return {"payment_in", "street_hold"} | resolved
        return {"payment_in", "payment_applied"}
    if state == "failed" and p["method"] == "deduct":
        if p["arrears_fen"] > 0:  # the car had left: arrears owed, not yet paid
            return {"deduction", "deduction_void", "arrears"} if p["arrears_fen"] == p["amount_fen"] else {"?"}
        if arrears_payments:  # arrears opened, then paid by exactly one payment
            return {"deduction", "deduction_void", "arrears", "arrears_post"} if arrears_payments == 1 else {"?"}
        return {"deduction", "deduction_void"}  # the car was still at the barrier: voided, nothing owed
    return set()  # failed or canceled charges move nothing


async def agrees_with_the_provider(sim: Sim) -> list[str]:
    problems: list[str] = []
    ours = {"succeeded": OrderStatus.SUCCEEDED, "failed": OrderStatus.FAILED}
    for p in await _payments(sim):
        order = await sim.sandbox.query_payment(p["id"].hex)
        name = f"payment {p['id']} ({p['state']}, provider {order.status.value})"
        if p["state"] in OPEN:
            problems.append(f"{name}: still open after the drain")
        elif order.status is OrderStatus.NOT_FOUND:
            # Never taken by the provider: only a request it refused outright (failed with its code) or one given up.
            if not (p["state"] == "failed" and p["failure_code"]) and p["state"] != "canceled":
                problems.append(f"{name}: the provider never took it")
        elif ours.get(p["state"]) is not order.status:
            problems.append(f"{name}: the provider's books say otherwise")
        elif order.status is OrderStatus.SUCCEEDED and order.raw.get("refunded_fen") != p["refunded_fen"]:
            problems.append(f"{name}: refunded {p['refunded_fen']}, the provider paid back {order.raw['refunded_fen']}")
    for r in await _refunds(sim):
        order = await sim.sandbox.query_refund(r["id"].hex)
        name = f"refund {r['id']} ({r['state']} {r['amount_fen']} fen, provider {order.status.value})"
        if r["state"] in OPEN:
            problems.append(f"{name}: still open after the drain")
        elif order.status is OrderStatus.NOT_FOUND:
            if not (r["state"] == "failed" and r["failure_code"]):
                problems.append(f"{name}: the provider never took it")
        elif ours.get(r["state"]) is not order.status:
            problems.append(f"{name}: the provider's books say otherwise")
    return problems


async def callbacks_applied(sim: Sim) -> list[str]:
    async with sim.owner_db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    """SELECT e.state, e.outcome, count(*) FROM inbox_events e
                       JOIN connectors c ON c.tenant_id = e.tenant_id AND c.id = e.connector_id
                       WHERE e.tenant_id = ANY(:ts) AND c.format = 'sandbox_pay' GROUP BY e.state, e.outcome"""
                ),
                {"ts": sim.tenants()},
            )
        ).all()
    sim.tally.update({f"callbacks {state}/{outcome}": count for state, outcome, count in rows})
    return [f"{count} provider callback(s) {state} ({outcome})" for state, outcome, count in rows if state != "applied"]


async def codes_within_limits(sim: Sim) -> list[str]:
    async with sim.owner_db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    """SELECT c.id, c.kind, c.use_limit, c.used, count(r.id) FROM merchant_codes c
                       LEFT JOIN coupon_redemptions r ON r.tenant_id = c.tenant_id AND r.code_id = c.id
                       WHERE c.tenant_id = ANY(:ts) GROUP BY c.id, c.kind, c.use_limit, c.used"""
                ),
                {"ts": sim.tenants()},
            )
        ).all()
    problems = []
    for code_id, kind, limit, used, redemptions in rows:
        if used > limit or redemptions != used:
            problems.append(f"{kind} code {code_id}: limit {limit}, used {used}, {redemptions} redemption(s)")
        sim.tally[f"{kind} code uses"] += used
    return problems


async def statements_reconcile(sim: Sim, statements: list[dict[str, Any]]) -> list[str]:
    problems = []
    async with sim.db.transaction(PLATFORM) as session:
        for statement in statements:
            for problem in await settlement.verify_statement(session, statement["tenant_id"], statement["id"]):
                problems.append(f"statement {statement['business_date']} of {statement['tenant_id']}: {problem}")
    return problems


async def _expected_lines(sim: Sim, tenant_id: uuid.UUID) -> dict[str, int]:
    """An operator's statement lines as the business tables say they must be (never read from the ledger)."""
    async with sim.owner_db.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    """SELECT
                    (SELECT coalesce(sum(p.amount_fen - coalesce((SELECT sum(r.amount_fen) FROM payment_refunds r
                            WHERE r.tenant_id = p.tenant_id AND r.payment_id = p.id AND r.source = 'prepaid'), 0)), 0)
                       FROM payments p WHERE p.tenant_id = :t AND p.state = 'succeeded'),
                    (SELECT coalesce(sum(amount_fen), 0) FROM payment_refunds
                       WHERE tenant_id = :t AND state = 'succeeded' AND source = 'payable'),
                    (SELECT coalesce(sum(value_fen), 0) FROM coupon_redemptions WHERE tenant_id = :t),
                    (SELECT coalesce(sum(funded_fen), 0) FROM coupon_books WHERE tenant_id = :t)"""
                ),
                {"t": tenant_id},
            )
        ).one()
    captured, refunded, coupons, funding = (int(value) for value in row)
    # A curb prepay is captured for what its session kept (the rest went back from the driver's wallet); the
    # arrears payment of a failed deduction captures what the deduction could not (its amount).
    return {"gross": captured, "refunds": refunded, "coupons": coupons, "other": -funding}


async def money_is_conserved(
    sim: Sim, tenant_id: uuid.UUID, statements: list[dict[str, Any]], failed_payouts: int
) -> list[str]:
    """`statements`: the operator's, oldest first, each once."""
    problems = []
    expected = await _expected_lines(sim, tenant_id)
    for line, amount in expected.items():
        listed = sum(int(s[line]) for s in statements)
        if listed != amount:
            problems.append(
                f"operator {tenant_id}: {line} {amount} fen by the business tables, statements say {listed}"
            )
    payouts = sum(int(s["payout"]) for s in statements)
    fees = sum(int(s["fee"]) for s in statements)
    returned = sum(int(s["returned"]) for s in statements)
    carried = int(statements[-1]["carried_out"])
    collected = expected["gross"] - expected["refunds"] + expected["coupons"] + expected["other"]
    if returned != failed_payouts:
        problems.append(f"operator {tenant_id}: {failed_payouts} fen of payouts failed, {returned} came back")
    if collected != payouts - returned + fees + carried:
        problems.append(
            f"operator {tenant_id}: collected {collected} fen != payouts {payouts} - returned {returned} "
            f"+ fees {fees} + carried {carried}"
        )
    async with sim.db.transaction(PLATFORM) as session:
        unsettled = await settlement.unsettled(session, tenant_id)
        balance = await ledger.balances(session, [account_id("tenant_payable", tenant_id, "CNY")])
    if unsettled != (0, 0):
        problems.append(f"operator {tenant_id}: {unsettled} left in no statement")
    available = next(iter(balance.values())).available if balance else 0
    if available != carried:
        problems.append(f"operator {tenant_id}: the payable's available balance {available} != the carry {carried}")
    return problems


async def stays_paid_their_price(sim: Sim) -> list[str]:
    """Every car that left paid its stay's price (after coupons), no less, by payments that succeeded and arrears
    owed or collected; and no more, unless a payment landed after the car had left (the money stands: the operator
    refunds it)."""
    async with sim.owner_db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    """SELECT s.id, s.plate, s.price_fen, s.close_reason,
                    (SELECT coalesce(sum(p.amount_fen), 0) FROM payments p WHERE p.tenant_id = s.tenant_id
                       AND p.subject_id = s.id AND p.purpose = 'lot_session' AND p.state = 'succeeded') AS paid,
                    (SELECT coalesce(sum(p.amount_fen), 0) FROM payments p WHERE p.tenant_id = s.tenant_id
                       AND p.subject_id = s.id AND p.method = 'deduct' AND p.state = 'failed'
                       AND (p.arrears_fen > 0 OR EXISTS (SELECT 1 FROM payments q WHERE q.tenant_id = p.tenant_id
                            AND q.subject_id = p.id AND q.purpose = 'arrears' AND q.state = 'succeeded'))) AS owed,
                    (SELECT coalesce(bool_or(p.settled_at > s.exited_at), false) FROM payments p
                       WHERE p.tenant_id = s.tenant_id AND p.subject_id = s.id AND p.purpose = 'lot_session'
                       AND p.method = 'charge' AND p.state = 'succeeded') AS late
                    FROM lot_sessions s WHERE s.tenant_id = ANY(:ts) AND s.state = 'closed'"""
                ),
                {"ts": sim.tenants()},
            )
        ).all()
    problems = []
    for session_id, plate, price, reason, paid, owed, late in rows:
        sim.tally["stays closed"] += 1
        if paid + owed < (price or 0):
            problems.append(f"stay {session_id} ({plate}, {reason}): price {price} fen, paid {paid} + owed {owed}")
        elif paid + owed > (price or 0):
            sim.tally["stays overpaid by a late payment"] += 1
            if not late:
                problems.append(f"stay {session_id} ({plate}, {reason}): price {price}, paid {paid} + owed {owed}")
    return problems


async def wallets_are_empty(sim: Sim) -> list[str]:
    """A driver's prepaid wallet only passes money through (in from the provider, on to the operator or a hold, back
    to the provider): once everything settled, nothing is left in it or reserved from it; and a driver owes (their
    receivable) exactly the arrears still open, none once all are paid."""
    problems = []
    async with sim.db.transaction(PLATFORM) as session:
        for index, driver in enumerate(sim.drivers):
            assert driver.user_id is not None
            prepaid = account_id("driver_prepaid", driver.user_id, "CNY")
            receivable = account_id("driver_receivable", driver.user_id, "CNY")
            found = await ledger.balances(session, [prepaid, receivable])
            for kind, account in (("prepaid wallet", prepaid), ("receivable", receivable)):
                balance = found.get(account)
                if balance is None:
                    continue
                sums = (balance.debits_pending, balance.credits_pending, balance.credits_posted - balance.debits_posted)
                if sums != (0, 0, 0):
                    problems.append(
                        f"driver {index} ({driver.user_id}): {kind} not empty: pending debits {sums[0]}, "
                        f"pending credits {sums[1]}, posted {sums[2]}"
                    )
    return problems
