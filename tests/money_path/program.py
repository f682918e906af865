"""The program of one money-path simulation: a pure function of its seed (no I/O, no clock, no ids).

`make_program(seed)` draws the operators (tariff, platform fee, when auto-pay exits open, curb or not), the drivers
(auto-pay or not) and a list of steps: cars entering and leaving, paying in the lot, at the exit or by plate, auto-pay
deductions, coupons given and redeemed (also raced on one limited code), refunds (also raced on one payment, asking
together for more than it was), arrears paid, curb prepay (start, extend, end early), the worker, the provider's
deliveries, the sweeps and one settlement midway, in the order the seed says. The provider's behaviour for each order
is `provider_words(seed, label)`: also a pure function, of the seed and a label the runner derives from the step
that created the order (never from a random id), so a failing seed replays the same program with the same provider.

A step names its targets by index (visit 3, street session 1); the runner skips a step whose target is not there at
run time (a car that has already left, a payment that did not succeed) and records that it did.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

OPERATORS = 3
DRIVERS = 6
STEPS = 120
# Valid letters after the province on a plate; the province 浙 is used by no other test, so the plates of a
# simulation never meet another test's (auto-pay authorizations are looked up by plate across operators).
PLATE_LETTERS = "ABCDEFGH"


@dataclass(frozen=True)
class OperatorPlan:
    unit_price_fen: int  # an hour of the lot's tariff
    fee_bps: int
    opens_on: str  # ACCEPTED or SUCCEEDED: when the barrier opens for auto-pay exits
    curb: bool  # has a metered curb zone (prepay)
    meeting_limit: int  # scans the merchant's meeting code allows


@dataclass(frozen=True)
class Visit:
    op: int
    driver: int
    minutes: int  # how long before the simulation's entry step the car entered
    auto_pay: bool
    plate: str


@dataclass(frozen=True)
class Step:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        args = ", ".join(f"{name}={value}" for name, value in self.params.items())
        return f"{self.kind}({args})"


@dataclass(frozen=True)
class Program:
    seed: int
    operators: list[OperatorPlan]
    auto_pay_drivers: list[bool]
    visits: list[Visit]
    steps: list[Step]

    def describe(self, upto: int | None = None) -> str:
        shown = self.steps if upto is None else self.steps[: upto + 1]
        return "\n".join(f"  {index:3d} {step}" for index, step in enumerate(shown))


def plate(seed: int, series: str, number: int) -> str:
    """A plate of this seed: 浙 + a letter + 5 digits (series 'lot' or 'curb' keep apart)."""
    letter = PLATE_LETTERS[(seed // 500) % len(PLATE_LETTERS)]
    base = (seed % 500) * 200 + (100 if series == "curb" else 0)
    return f"浙{letter}{base + number:05d}"


# How often each kind of step is drawn when it applies. `visit` advances one car's own script (a new car, or the
# next step of one inside: coupons, paying, the exit); the others are about the whole city.
WEIGHTS = {
    "visit": 30,
    "overlap": 6,
    "new_visit": 10,
    "redeem_race": 1,
    "pay_race": 1,
    "stray_exit": 1,
    "charge_pending": 3,
    "worker": 10,
    "drain": 4,
    "inbox_sweep": 1,
    "payment_sweep": 2,
    "complete_pending": 2,
    "refund": 4,
    "refund_race": 3,
    "pay_arrears": 2,
    "street_start": 3,
    "street_extend": 1,
    "street_end": 2,
}


OVERLAPPABLE = ("exit", "give_coupon", "redeem")


def _visit_script(rng: random.Random, index: int, visit: Visit, operator: OperatorPlan) -> list[Step]:
    """One car's steps, in order: enter; maybe a shop's coupon or a scanned code; then leave first and pay later
    (auto-pay), or pay in the lot and leave, or be held at the exit and pay there (maybe someone else, by plate);
    and a few more exit reads, for a car still waiting when its payment lands late."""
    script = [Step("enter", {"visit": index})]
    if rng.random() < 0.25:
        script.append(Step("give_coupon", {"visit": index}))
    if rng.random() < 0.2:
        script.append(Step("redeem", {"visit": index}))
    if visit.auto_pay:
        script.append(Step("exit", {"visit": index}))
    elif rng.random() < 0.4:
        script.append(Step("pay_in_lot", {"visit": index}))
        script.append(Step("exit", {"visit": index}))
    else:
        script.append(Step("exit", {"visit": index}))
        payer = visit.driver if rng.random() < 0.8 else rng.randrange(DRIVERS)
        script.append(Step("pay_at_exit", {"visit": index, "payer": payer, "by_plate": rng.random() < 0.2}))
    script += [Step("exit", {"visit": index}) for _ in range(rng.randint(1, 2))]
    return script


def make_program(seed: int, steps: int = STEPS) -> Program:
    rng = random.Random(seed)
    operators = [
        OperatorPlan(
            unit_price_fen=rng.choice([300, 500, 800]),
            fee_bps=rng.choice([0, 35, 60, 250]),
            opens_on=rng.choice(["ACCEPTED", "SUCCEEDED"]),
            curb=index == 0 or rng.random() < 0.4,
            meeting_limit=rng.randint(2, 4),
        )
        for index in range(OPERATORS)
    ]
    auto_pay_drivers = [rng.random() < 0.5 for _ in range(DRIVERS)]
    auto_pay_drivers[0] = True  # at least one driver leaves first and pays later
    visits: list[Visit] = []
    scripts: list[list[Step]] = []  # the rest of each car's script
    streets = 0
    settle_at = rng.randint(steps // 2, steps * 4 // 5)  # one operator's day settled while money is in flight
    program: list[Step] = []
    while len(program) < steps:
        if len(program) == settle_at:
            payout = rng.choice(["confirm", "fail", "leave"])
            program.append(Step("settle_midway", {"op": rng.randrange(OPERATORS), "payout": payout}))
            continue
        live = [script for script in scripts if script]
        applicable = [kind for kind in WEIGHTS if _applies(kind, visits, live, streets, operators)]
        kind = rng.choices(applicable, [WEIGHTS[kind] for kind in applicable])[0]
        params: dict[str, Any] = {}
        if kind == "new_visit":
            driver = rng.randrange(DRIVERS)
            visit = Visit(
                op=rng.randrange(OPERATORS),
                driver=driver,
                minutes=rng.randint(20, 360),
                auto_pay=auto_pay_drivers[driver] and rng.random() < 0.5,
                plate=plate(seed, "lot", len(visits)),
            )
            visits.append(visit)
            scripts.append(_visit_script(rng, len(visits) - 1, visit, operators[visit.op]))
            program.append(scripts[-1].pop(0))
            continue
        if kind == "visit":
            program.append(rng.choice(live).pop(0))
            continue
        if kind == "overlap":
            # A car's next step while a worker burst runs at the same moment (an exit while its payment lands, a
            # coupon while the exit closes the stay). Only steps that ask the provider for nothing: the provider's
            # behaviour for an order is scripted once the order exists, before any worker may ask for it.
            ready = [script for script in live if script[0].kind in OVERLAPPABLE]
            program.append(Step("overlap", {"inner": rng.choice(ready).pop(0)}))
            continue
        if kind in ("pay_race", "stray_exit"):
            params = {"visit": rng.randrange(len(visits))}
        elif kind == "redeem_race":
            op = rng.randrange(OPERATORS)
            theirs = [index for index, visit in enumerate(visits) if visit.op == op] or list(range(len(visits)))
            params = {"op": op, "visits": sorted(rng.sample(theirs, min(len(theirs), rng.randint(2, 5))))}
        elif kind == "refund":
            params = {
                **_refund_target(rng, visits, streets),
                "pick": rng.random(),
                "share": rng.choice([0.25, 0.5, 1.0, 1.5]),  # of what is still refundable; above 1 is refused
            }
        elif kind == "refund_race":
            count = rng.randint(2, 5)
            params = {
                **_refund_target(rng, visits, streets),
                "pick": rng.random(),
                "shares": [rng.choice([0.3, 0.4, 0.5, 0.6]) for _ in range(count)],
            }
        elif kind == "pay_arrears":
            # Twice at once, with two keys (two taps on two phones): each arrears is paid once at most.
            params = {
                "driver": rng.choice([d for d, auto in enumerate(auto_pay_drivers) if auto]),
                "twice": rng.random() < 0.3,
            }
        elif kind == "complete_pending":
            params = {"pick": rng.random()}
        elif kind == "street_start":
            curbs = [index for index, plan in enumerate(operators) if plan.curb]
            params = {
                "street": streets,
                "op": rng.choice(curbs),
                "driver": rng.randrange(DRIVERS),
                "minutes": rng.choice([30, 60, 90, 120, 180]),
                "plate": plate(seed, "curb", streets),
            }
            streets += 1
        elif kind == "street_extend":
            params = {"street": rng.randrange(streets), "minutes": rng.choice([15, 30, 60])}
        elif kind == "street_end":
            params = {"street": rng.randrange(streets)}
        program.append(Step("exit" if kind == "stray_exit" else kind, params))
    return Program(seed, operators, auto_pay_drivers, visits, program)


def _refund_target(rng: random.Random, visits: list[Visit], streets: int) -> dict[str, int]:
    """A lot visit's payments, or (sometimes) a curb session's prepays: refunded by the operator."""
    if streets and rng.random() < 0.3:
        return {"street": rng.randrange(streets)}
    return {"visit": rng.randrange(len(visits))}


def _applies(
    kind: str,
    visits: list[Visit],
    live: list[list[Step]],
    streets: int,
    operators: list[OperatorPlan],
) -> bool:
    if kind == "visit":
        return bool(live)
    if kind == "overlap":
        return any(script[0].kind in OVERLAPPABLE for script in live)
    if kind in ("pay_race", "stray_exit", "refund", "refund_race"):
        return bool(visits)
    if kind == "redeem_race":
        return len(visits) >= 2
    if kind in ("street_extend", "street_end"):
        return streets > 0
    if kind == "street_start":
        return any(plan.curb for plan in operators)
    return True


# ------------------------------------------------------------------------------------------ the provider


def provider_words(seed: int, label: str, *, refund: bool = False) -> tuple[str, ...]:
    """The sandbox words for the order (or refund) the runner labels `label`: outcome, call and delivery."""
    rng = random.Random(f"{seed}/{label}")
    words: list[str] = []
    outcome = rng.random()
    if outcome < 0.15:
        words.append("fail")
    elif outcome < 0.27:
        words.append("pending")
    call = rng.random()
    if call < 0.1:
        words.append("timeout")  # the provider took the order, then we crashed before writing its answer
    elif call < 0.2:
        words.append("unavailable")
    deliveries = ["duplicate", "renotify", "lost", "slow"] + ([] if refund else ["reorder"])
    if rng.random() < 0.6:
        words.append(rng.choice(deliveries))
    return tuple(words)


def completes_with_success(seed: int, label: str) -> bool:
    """Whether a `pending` order the provider finishes later succeeds."""
    return random.Random(f"{seed}/{label}/complete").random() < 0.8
