"""Runs a money-path program (program.py) against the real app: lanes through the gate endpoint, drivers, operators
and merchants through GraphQL, the provider (the sandbox) calling back through the connector endpoint into the inbox,
the real arq worker in bursts, the sweeps and settlement as the cron jobs would call them.

The runner only acts and records what it did; the checks are in checks.py. A step whose target is not there at run
time (a car that left, a payment that never succeeded) is skipped; an answer that is a refusal the step may meet
(`EXPECTED` codes) is recorded; any other error fails the run with the seed and the step."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text

from connectors.payments import OrderStatus
from connectors.payments.sandbox import SandboxProvider
from hub.db import PLATFORM, Database
from hub.ingest import service as ingest
from hub.payments import service as payments
from hub.payments import tasks
from hub.settlement import rules as settlement_rules
from hub.settlement import service as settlement
from hub.street import reconcile
from tests.api.conftest import Caller, Callers
from tests.lanes.conftest import HOURLY, Lot, MakeLot, ago, row_id
from tests.lanes.test_exit import ADD_VEHICLE, SET_AUTO_PAY
from tests.merchants.conftest import GIVE, REDEEM, Shop, make_shop
from tests.money_path.program import Program, Step, completes_with_success, provider_words
from tests.payments.test_auto_pay import PAY_ARREARS
from tests.payments.test_lot_payments import PAY
from tests.payments.test_opening_and_invoices import SET_OPENING
from tests.payments.test_refunds import REFUND
from tests.street.conftest import CurbZone, build_zone
from tests.street.test_driver_api import END, EXTEND, START

# Refusals a step may meet, by step kind: anything else is a failure.
EXPECTED = {
    "pay": {"NO_OPEN_SESSION", "SESSION_NOT_OPEN", "PAYMENT_IN_PROGRESS", "NOTHING_DUE", "CONCURRENT_CHANGE"},
    "give_coupon": {"NO_OPEN_SESSION", "FUND_EXHAUSTED", "BOOK_EXHAUSTED", "CONCURRENT_CHANGE", "SESSION_PAID"},
    "redeem": {"NO_OPEN_SESSION", "FUND_EXHAUSTED", "CODE_EXHAUSTED", "CONCURRENT_CHANGE", "SESSION_PAID"},
    "refund": {"REFUND_EXCEEDS_PAYMENT", "PAYMENT_NOT_SUCCEEDED", "PREPAY_NOT_SETTLED"},
    "pay_arrears": {"NO_ARREARS", "PAYMENT_IN_PROGRESS"},
    "street": {"SPACE_IN_SESSION", "SESSION_ENDED"},
}
AGES = timedelta(hours=1)  # how far ahead the sweeps look: everything open counts as stuck
SETTLE_AHEAD = timedelta(days=30)  # settlement's `now`: every day settled is long due


class StepFailed(AssertionError):
    pass


@dataclass
class OperatorWorld:
    lot: Lot
    shop: Shop
    amount_book: str  # global ids
    minutes_book: str
    meeting_code: str
    zone: CurbZone | None
    fee_bps: int

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.lot.tenant_id


@dataclass
class VisitState:
    entered: bool = False
    left: bool = False
    session_id: str | None = None
    token: str | None = None  # the payment token of the latest hold at the exit


@dataclass
class StreetState:
    session_id: str
    driver: Caller
    op: int
    ended: bool = False


@dataclass
class Sim:
    program: Program
    db: Database
    owner_db: Database
    callers: Callers
    client: Any
    make_lot: MakeLot
    run_worker: Any
    sandbox: SandboxProvider
    operators: list[OperatorWorld] = field(default_factory=list)
    drivers: list[Caller] = field(default_factory=list)
    visits: dict[int, VisitState] = field(default_factory=dict)
    streets: dict[int, StreetState] = field(default_factory=dict)
    scripted: dict[str, str] = field(default_factory=dict)  # order number (hex) -> label
    pending: dict[str, str] = field(default_factory=dict)  # order numbers scripted `pending`, not yet completed
    refund_numbers: set[str] = field(default_factory=set)
    time_zones: dict[uuid.UUID, str] = field(default_factory=dict)
    tally: Counter[str] = field(default_factory=Counter)  # what happened, for the report
    midway: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (operator, statement) settled midway
    failed_payouts: Counter[int] = field(default_factory=Counter)  # fen of payouts that bounced, by operator
    step_index: int = -1
    worker_seconds: float = 0.0

    @property
    def seed(self) -> int:
        return self.program.seed

    def where(self) -> str:
        step = self.program.steps[self.step_index] if 0 <= self.step_index < len(self.program.steps) else "(drain)"
        return f"[money seed {self.seed}, step {self.step_index}: {step}]"

    # ------------------------------------------------------------------------------------------- set-up

    async def set_up(self) -> None:
        expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        for plan in self.program.operators:
            tariff = {**HOURLY, "default_rate": {"unit_minutes": 60, "unit_price_fen": plan.unit_price_fen}}
            lot = await self.make_lot(tariff=tariff)
            async with self.owner_db.engine.begin() as conn:
                await conn.execute(
                    text("UPDATE tenants SET platform_fee_bps = :fee WHERE id = :t"),
                    {"fee": plan.fee_bps, "t": lot.tenant_id},
                )
            if plan.opens_on == "SUCCEEDED":
                await lot.admin.data(SET_OPENING, {"on": "SUCCEEDED"})
            shop = await make_shop(lot, self.client)
            amount_book = await shop.book("AMOUNT", count=40, unit_price_fen=200, amountFen=200)
            minutes_book = await shop.book("MINUTES", count=12, unit_price_fen=300, minutes=60)
            meeting = await shop.code("MEETING", amount_book["id"], limit=plan.meeting_limit, expiresAt=expires)
            zone = await build_zone(lot.admin, bays=6) if plan.curb else None
            self.operators.append(
                OperatorWorld(lot, shop, amount_book["id"], minutes_book["id"], meeting, zone, plan.fee_bps)
            )
        self.drivers = [await self.callers.driver() for _ in self.program.auto_pay_drivers]
        async with self.owner_db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT id, time_zone FROM tenants WHERE id = ANY(:ts)"), {"ts": self.tenants()}
            )
            self.time_zones = {tenant_id: time_zone for tenant_id, time_zone in rows}

    async def tear_down(self) -> None:
        """Revoke the auto-pay authorizations of the run's plates (they are looked up by plate, across runs)."""
        for index, visit in enumerate(self.program.visits):
            if visit.auto_pay and self.visits.get(index, VisitState()).entered:
                await self.drivers[visit.driver].post(SET_AUTO_PAY, {"plate": visit.plate, "enabled": False})

    # ------------------------------------------------------------------------------------------- helpers

    async def call(self, caller: Any, document: str, variables: dict[str, Any], expected: str) -> dict[str, Any]:
        """The data of a GraphQL call, or {"error": code} for a refusal the step may meet."""
        body = await caller.post(document, variables)
        if body.get("errors"):
            code = body["errors"][0].get("extensions", {}).get("code")
            if code not in EXPECTED[expected]:
                raise StepFailed(f"{self.where()} unexpected error {code}: {body['errors']}")
            self.tally[f"refused {code}"] += 1
            return {"error": code}
        return body["data"]

    async def script(self, number: str, label: str, *, refund: bool = False) -> None:
        """Tell the sandbox how to treat the order (or refund) `number`, as the program's provider says."""
        words = provider_words(self.seed, label, refund=refund)
        self.sandbox.set_outcome(number, *words)
        self.scripted[number] = label
        if refund:
            self.refund_numbers.add(number)
        if "pending" in words:
            self.pending[number] = label
        for word in words:
            self.tally[f"{'refund' if refund else 'order'} {word}"] += 1

    async def script_payments(self, ids: list[uuid.UUID], label: str) -> None:
        """Script new payments in a deterministic order (by plate, then amount): never by their random ids."""
        async with self.owner_db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT id, coalesce(plate, ''), amount_fen FROM payments WHERE id = ANY(:ids)"),
                    {"ids": ids},
                )
            ).all()
        for ordinal, (payment_id, _, _) in enumerate(sorted(rows, key=lambda row: (row[1], row[2], row[0]))):
            if payment_id.hex not in self.scripted:
                await self.script(payment_id.hex, f"{label}.{ordinal}")

    def tenants(self) -> list[uuid.UUID]:
        return [op.tenant_id for op in self.operators]

    # -------------------------------------------------------------------------------------------- steps

    async def run(self) -> None:
        for index, step in enumerate(self.program.steps):
            self.step_index = index
            try:
                await getattr(self, f"step_{step.kind}")(step)
            except StepFailed:
                raise
            except Exception as problem:
                raise StepFailed(f"{self.where()} raised {problem!r}") from problem
        self.step_index = len(self.program.steps)

    def visit(self, step: Step) -> tuple[int, Any, VisitState]:
        index = step.params["visit"]
        return index, self.program.visits[index], self.visits.setdefault(index, VisitState())

    async def step_enter(self, step: Step) -> None:
        _, plan, state = self.visit(step)
        op = self.operators[plan.op]
        if plan.auto_pay:
            driver = self.drivers[plan.driver]
            await driver.data(ADD_VEHICLE, {"plate": plan.plate})
            await driver.data(SET_AUTO_PAY, {"plate": plan.plate, "enabled": True})
        answer = await op.lot.gate.passage(op.lot.entry_lane, plan.plate, ago(plan.minutes))
        if answer["decision"] != "open":
            raise StepFailed(f"{self.where()} the entry did not open: {answer}")
        state.entered, state.session_id = True, answer["session_id"]
        self.tally["entered"] += 1

    def inside(self, state: VisitState) -> bool:
        return state.entered and not state.left

    async def step_exit(self, step: Step) -> None:
        _, plan, state = self.visit(step)
        if not self.inside(state):
            self.tally["skipped exit"] += 1
            return
        op = self.operators[plan.op]
        answer = await op.lot.gate.passage(op.lot.exit_lane, plan.plate, ago(0))
        self.tally[f"exit {answer['decision']} {answer['reason']}"] += 1
        if answer["decision"] == "open":
            state.left = True
        elif answer["reason"] == "payment_due":
            state.token = answer["payment_link"].rsplit("/pay/", 1)[1]

    async def step_pay_in_lot(self, step: Step) -> None:
        _, plan, state = self.visit(step)
        if not self.inside(state):
            self.tally["skipped pay_in_lot"] += 1
            return
        op = self.operators[plan.op]
        variables = {"plate": plan.plate, "facilityId": op.lot.lot_id, "key": f"lot-{self.step_index}"}
        await self.pay(self.drivers[plan.driver], variables)

    async def pay(self, payer: Caller, variables: dict[str, Any]) -> None:
        data = await self.call(payer, PAY, variables, "pay")
        if "error" not in data:
            payment_id = row_id(data["payLotSession"]["id"])
            self.tally["payments asked"] += 1
            await self.script(payment_id.hex, f"pay{self.step_index}")

    async def step_pay_race(self, step: Step) -> None:
        """The same payment asked twice at once with one key (a double tap): one payment at most."""
        _, plan, state = self.visit(step)
        if not self.inside(state):
            self.tally["skipped pay_race"] += 1
            return
        op = self.operators[plan.op]
        variables = {"plate": plan.plate, "facilityId": op.lot.lot_id, "key": f"race-{self.step_index}"}
        driver = self.drivers[plan.driver]
        bodies = await asyncio.gather(*(driver.post(PAY, variables) for _ in range(3)))
        made = {row_id(body["data"]["payLotSession"]["id"]) for body in bodies if not body.get("errors")}
        codes = {body["errors"][0]["extensions"]["code"] for body in bodies if body.get("errors")}
        if len(made) > 1 or not codes <= EXPECTED["pay"]:
            raise StepFailed(f"{self.where()} one key made {len(made)} payments, refusals {codes}")
        for payment_id in made:
            await self.script(payment_id.hex, f"race{self.step_index}")

    async def step_pay_at_exit(self, step: Step) -> None:
        _, plan, state = self.visit(step)
        if not self.inside(state):
            self.tally["skipped pay_at_exit"] += 1
            return
        payer = self.drivers[step.params["payer"]]
        if state.token is not None and not step.params["by_plate"]:
            await self.pay(payer, {"token": state.token, "key": f"exit-{self.step_index}"})
        else:
            op = self.operators[plan.op]
            await self.pay(
                payer, {"plate": plan.plate, "facilityId": op.lot.lot_id, "key": f"friend-{self.step_index}"}
            )

    async def step_give_coupon(self, step: Step) -> None:
        _, plan, state = self.visit(step)
        if not self.inside(state):
            self.tally["skipped give_coupon"] += 1
            return
        op = self.operators[plan.op]
        data = await self.call(op.shop, GIVE, {"book": op.minutes_book, "plate": plan.plate}, "give_coupon")
        self.tally["coupon given" if "error" not in data else "coupon not given"] += 1

    async def step_redeem(self, step: Step) -> None:
        _, plan, state = self.visit(step)
        if not self.inside(state):
            self.tally["skipped redeem"] += 1
            return
        op = self.operators[plan.op]
        variables = {"code": op.meeting_code, "plate": plan.plate}
        data = await self.call(self.drivers[plan.driver], REDEEM, variables, "redeem")
        self.tally["code redeemed" if "error" not in data else "code not redeemed"] += 1

    async def step_redeem_race(self, step: Step) -> None:
        """Several cars scan the operator's limited meeting code at the same moment."""
        op = self.operators[step.params["op"]]
        racing = [
            index
            for index in step.params["visits"]
            if self.inside(self.visits.get(index, VisitState())) and self.program.visits[index].op == step.params["op"]
        ]
        if len(racing) < 2:
            self.tally["skipped redeem_race"] += 1
            return
        plans = [self.program.visits[index] for index in racing]
        results = await asyncio.gather(
            *(
                self.call(self.drivers[plan.driver], REDEEM, {"code": op.meeting_code, "plate": plan.plate}, "redeem")
                for plan in plans
            )
        )
        self.tally["raced redemptions"] += len(results)

    async def succeeded_payment(self, step: Step) -> dict[str, Any] | None:
        """The succeeded payment the step picks: of a lot visit's plate (a charge, a deduction, arrears), or a
        curb session's prepays."""
        if "street" in step.params:
            street = self.streets.get(step.params["street"])
            if street is None:
                return None
            op = self.operators[street.op]
            where, values = "subject_id = :s", {"s": row_id(street.session_id)}
        else:
            _, plan, state = self.visit(step)
            if not state.entered:
                return None
            op = self.operators[plan.op]
            where, values = "plate = :p", {"p": plan.plate}
        async with self.owner_db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT id, amount_fen, refunded_fen, refunding_fen FROM payments WHERE tenant_id = :t "
                        f"AND {where} AND state = 'succeeded' ORDER BY created_at, id"
                    ),
                    {"t": op.tenant_id, **values},
                )
            ).all()
        if not rows:
            return None
        payment_id, amount, refunded, refunding = rows[int(step.params["pick"] * len(rows))]
        return {"id": payment_id, "amount": amount, "left": amount - refunded - refunding, "op": op}

    async def refund(self, op: OperatorWorld, payment_id: uuid.UUID, amount: int, key: str) -> dict[str, Any]:
        variables = {
            "id": str(_global("Payment", payment_id)),
            "amount": amount,
            "reason": "simulated refund",
            "key": key,
        }
        return await op.lot.admin.post(REFUND, variables)

    async def step_refund(self, step: Step) -> None:
        target = await self.succeeded_payment(step)
        if target is None:
            self.tally["skipped refund"] += 1
            return
        share = step.params["share"]
        amount = max(1, int(target["left"] * share)) if share <= 1 else target["amount"] + 1
        body = await self.refund(target["op"], target["id"], amount, f"refund-{self.step_index}")
        await self.refund_answered(body, f"refund{self.step_index}")

    async def refund_answered(self, body: dict[str, Any], label: str) -> None:
        if body.get("errors"):
            code = body["errors"][0]["extensions"]["code"]
            if code not in EXPECTED["refund"]:
                raise StepFailed(f"{self.where()} unexpected refund error: {body['errors']}")
            self.tally[f"refund refused {code}"] += 1
            return
        refund_id = row_id(body["data"]["refundPayment"]["id"])
        self.tally["refunds asked"] += 1
        await self.script(refund_id.hex, label, refund=True)

    async def step_refund_race(self, step: Step) -> None:
        """Several refunds of one payment at once that together ask for more than it was."""
        target = await self.succeeded_payment(step)
        if target is None:
            self.tally["skipped refund_race"] += 1
            return
        amounts = [max(1, int(target["amount"] * share)) for share in step.params["shares"]]
        bodies = await asyncio.gather(
            *(
                self.refund(target["op"], target["id"], amount, f"race-{self.step_index}-{n}")
                for n, amount in enumerate(amounts)
            )
        )
        # Scripted in the order asked (the program's), whichever got in first.
        for n, body in enumerate(bodies):
            await self.refund_answered(body, f"refundrace{self.step_index}.{n}")

    async def charge_pending(self, label: str) -> None:
        async with self.db.transaction(PLATFORM) as session:
            created = await payments.charge_pending_charges(session)
        mine = [payment_id for tenant_id, payment_id in created if tenant_id in self.tenants()]
        self.tally["deductions"] += len(mine)
        await self.script_payments(mine, label)

    async def step_charge_pending(self, step: Step) -> None:
        await self.charge_pending(f"charge{self.step_index}")

    async def step_pay_arrears(self, step: Step) -> None:
        driver = self.drivers[step.params["driver"]]
        keys = [f"arrears-{self.step_index}"] + ([f"arrears-{self.step_index}-again"] if step.params["twice"] else [])
        answers = await asyncio.gather(*(self.call(driver, PAY_ARREARS, {"key": key}, "pay_arrears") for key in keys))
        for n, data in enumerate(answers):
            if "error" not in data:
                ids = [row_id(payment["id"]) for payment in data["payArrears"]]
                self.tally["arrears payments"] += len(ids)
                await self.script_payments(ids, f"arrears{self.step_index}.{n}")

    async def step_overlap(self, step: Step) -> None:
        """A car's step and a worker burst at the same moment."""
        inner: Step = step.params["inner"]
        await asyncio.gather(self.work(), getattr(self, f"step_{inner.kind}")(inner))
        self.tally["overlapped"] += 1

    async def step_worker(self, step: Step) -> None:
        await self.work()

    async def work(self) -> None:
        """A burst of the real worker (timed: most of a run's wall time is here)."""
        started = time.monotonic()
        await self.run_worker()
        self.worker_seconds += time.monotonic() - started

    async def step_drain(self, step: Step) -> None:
        await self.sandbox.drain()

    async def step_inbox_sweep(self, step: Step) -> None:
        await self.requeue_inbox()

    async def requeue_inbox(self) -> None:
        async with self.db.transaction(PLATFORM) as session:
            await ingest.requeue_overdue_events(session, datetime.now(UTC) + AGES, timedelta(0), 10_000)

    async def step_payment_sweep(self, step: Step) -> None:
        await tasks.sweep_payments_now(self.db, datetime.now(UTC) + AGES)

    async def step_complete_pending(self, step: Step) -> None:
        """The provider finishes one of the orders it kept pending."""
        ready = await self.completable()
        if not ready:
            self.tally["skipped complete_pending"] += 1
            return
        number = ready[int(step.params["pick"] * len(ready))]
        self.complete(number)

    async def completable(self) -> list[str]:
        """Pending orders the sandbox holds as accepted (an `unavailable` one may not have been taken yet), in the
        program's order (by label)."""
        ready = []
        for number, _ in sorted(self.pending.items(), key=lambda item: item[1]):
            order = (
                await self.sandbox.query_refund(number)
                if number in self.refund_numbers
                else await self.sandbox.query_payment(number)
            )
            if order.status is OrderStatus.ACCEPTED:
                ready.append(number)
        return ready

    def complete(self, number: str) -> None:
        label = self.pending.pop(number)
        succeed = completes_with_success(self.seed, label)
        self.sandbox.complete(number, succeed=succeed)
        self.tally[f"completed {'ok' if succeed else 'failed'}"] += 1

    async def step_street_start(self, step: Step) -> None:
        params = step.params
        op = self.operators[params["op"]]
        assert op.zone is not None
        driver = self.drivers[params["driver"]]
        variables = {
            "input": {
                "operator": op.zone.slug,
                "spaceCode": op.zone.code(params["street"] % len(op.zone.spaces)),
                "plate": params["plate"],
                "durationMinutes": params["minutes"],
            }
        }
        data = await self.call(driver, START, variables, "street")
        if "error" in data:
            return
        session_id = data["startStreetSession"]["session"]["id"]
        self.streets[params["street"]] = StreetState(session_id, driver, params["op"])
        await self.script_street(op, session_id, f"street{self.step_index}")
        self.tally["street started"] += 1

    async def script_street(self, op: OperatorWorld, session_id: str, label: str) -> None:
        async with self.owner_db.engine.connect() as conn:
            ids = (
                await conn.execute(
                    text("SELECT id FROM payments WHERE tenant_id = :t AND subject_id = :s AND state = 'created'"),
                    {"t": op.tenant_id, "s": row_id(session_id)},
                )
            ).scalars()
            await self.script_payments(list(ids), label)

    async def step_street_extend(self, step: Step) -> None:
        street = self.streets.get(step.params["street"])
        if street is None or street.ended:
            self.tally["skipped street_extend"] += 1
            return
        variables = {"id": street.session_id, "minutes": step.params["minutes"], "key": f"ext-{self.step_index}"}
        data = await self.call(street.driver, EXTEND, variables, "street")
        if "error" not in data:
            await self.script_street(self.operators[street.op], street.session_id, f"extend{self.step_index}")
            self.tally["street extended"] += 1

    async def step_street_end(self, step: Step) -> None:
        street = self.streets.get(step.params["street"])
        if street is None or street.ended:
            self.tally["skipped street_end"] += 1
            return
        await self.end_street(street, f"end-{self.step_index}")

    async def end_street(self, street: StreetState, key: str) -> None:
        data = await self.call(street.driver, END, {"id": street.session_id, "key": key}, "street")
        street.ended = True
        self.tally["street ended" if "error" not in data else "street end refused"] += 1

    async def step_settle_midway(self, step: Step) -> None:
        """One operator's day settled while money is still in flight; its payout confirmed, failed or left."""
        op_index = step.params["op"]
        statement = await self.settle(self.operators[op_index], self.today(op_index))
        self.midway.append((op_index, dict(statement)))
        if statement["payout"] > 0 and step.params["payout"] != "leave":
            async with self.db.transaction(PLATFORM) as session:
                if step.params["payout"] == "confirm":
                    await settlement.confirm_payout(session, statement["id"])
                else:
                    await settlement.fail_payout(session, statement["id"], reason="simulated bounce")
                    self.failed_payouts[op_index] += int(statement["payout"])
        self.tally[f"settled midway, payout {step.params['payout']}"] += 1

    def today(self, op_index: int) -> date:
        zone = settlement_rules.zone(self.time_zones[self.operators[op_index].tenant_id])
        return datetime.now(UTC).astimezone(zone).date()

    async def settle(self, op: OperatorWorld, day: date) -> Any:
        async with self.db.transaction(PLATFORM) as session:
            result = await settlement.settle(session, op.tenant_id, day, now=datetime.now(UTC) + SETTLE_AHEAD)
        return result.statement

    # ------------------------------------------------------------------------------------------- the end

    async def finish(self) -> None:
        """Every curb session ended (half by the driver, half run out), then everything drained until quiet: the
        provider finishes what it kept pending and delivers what it held back, the worker applies, the inbox and
        payment sweeps recover what was lost or crashed, pending auto-pay charges become deductions, every car
        still inside reads at the exit and pays there until it leaves, and every driver pays their arrears."""
        self.step_index = len(self.program.steps)
        for index, street in sorted(self.streets.items()):
            if not street.ended and index % 2 == 0:
                await self.end_street(street, f"end-final-{index}")
        async with self.db.transaction(PLATFORM) as session:
            await reconcile.sweep(session, datetime.now(UTC) + timedelta(days=1), timedelta(minutes=30))
        for street in self.streets.values():
            street.ended = True
        for round_ in range(20):
            for number in await self.completable():
                self.complete(number)
            await self.sandbox.drain()
            await self.work()
            await self.requeue_inbox()
            await self.work()
            await tasks.sweep_payments_now(self.db, datetime.now(UTC) + AGES)
            await self.charge_pending(f"final{round_}")
            await self.work()
            await self.leave_or_pay(round_)
            await self.pay_all_arrears(round_)
            if await self.quiet():
                self.tally["drain rounds"] = round_ + 1
                return
        raise StepFailed(f"[money seed {self.seed}] the money path did not come to rest: {await self.unrest()}")

    async def leave_or_pay(self, round_: int) -> None:
        """Each car still inside reads at the exit; held for payment, its driver pays by the exit's code."""
        for index, plan in enumerate(self.program.visits):
            state = self.visits.get(index, VisitState())
            if not self.inside(state):
                continue
            op = self.operators[plan.op]
            answer = await op.lot.gate.passage(op.lot.exit_lane, plan.plate, ago(0))
            self.tally[f"final exit {answer['decision']} {answer['reason']}"] += 1
            if answer["decision"] == "open":
                state.left = True
            elif answer["reason"] == "payment_due":
                token = answer["payment_link"].rsplit("/pay/", 1)[1]
                data = await self.call(
                    self.drivers[plan.driver], PAY, {"token": token, "key": f"final-{round_}-{index}"}, "pay"
                )
                if "error" not in data:
                    await self.script(row_id(data["payLotSession"]["id"]).hex, f"final{round_}.pay{index}")

    async def pay_all_arrears(self, round_: int) -> None:
        for index, auto_pay in enumerate(self.program.auto_pay_drivers):
            if not auto_pay:
                continue
            key = f"final-arrears-{round_}-{index}"
            data = await self.call(self.drivers[index], PAY_ARREARS, {"key": key}, "pay_arrears")
            if "error" not in data:
                ids = [row_id(payment["id"]) for payment in data["payArrears"]]
                await self.script_payments(ids, f"final{round_}.arrears{index}")

    async def unrest(self) -> dict[str, int]:
        """What is still moving in the run's operators: open payments and refunds, inbox events not applied,
        pending charges without a deduction, the sandbox's deliveries and pending orders."""
        async with self.owner_db.engine.connect() as conn:
            found = (
                await conn.execute(
                    text(
                        """SELECT
                        (SELECT count(*) FROM payments WHERE tenant_id = ANY(:ts)
                           AND state IN ('created', 'requested', 'unknown')),
                        (SELECT count(*) FROM payment_refunds WHERE tenant_id = ANY(:ts)
                           AND state IN ('created', 'requested', 'unknown')),
                        (SELECT count(*) FROM inbox_events WHERE tenant_id = ANY(:ts) AND state = 'pending'),
                        (SELECT count(*) FROM pending_charges WHERE tenant_id = ANY(:ts) AND state = 'pending'),
                        (SELECT count(*) FROM payments WHERE tenant_id = ANY(:ts) AND arrears_fen > 0)"""
                    ),
                    {"ts": self.tenants()},
                )
            ).one()
        return {
            "open payments": found[0],
            "open refunds": found[1],
            "inbox pending": found[2],
            "charges pending": found[3],
            "arrears owed": found[4],
            "cars inside": sum(1 for state in self.visits.values() if self.inside(state)),
            "deliveries": self.sandbox.pending_deliveries,
            "provider pending": len(self.pending),
        }

    async def quiet(self) -> bool:
        return not any((await self.unrest()).values())

    async def settle_all(self) -> list[tuple[int, list[dict[str, Any]]]]:
        """Every operator's business day settled, and the next one (what committed after the day's cut, and the
        day's carry); returns each operator's statements, oldest first."""
        settled = []
        for index, op in enumerate(self.operators):
            today = self.today(index)
            first = await self.settle(op, today)
            second = await self.settle(op, today + timedelta(days=1))
            settled.append((index, [dict(first), dict(second)]))
        return settled


def _global(type_name: str, value: uuid.UUID) -> str:
    from tests.lanes.conftest import global_id

    return global_id(type_name, value)
