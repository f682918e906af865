"""A seeded simulation of the whole money path (issue 5's "Verified by"), through the real payment paths: several
operators with lots, lanes, tariffs, merchants' coupon books and codes, and curb zones; drivers, some with auto-pay,
entering and leaving through the lane endpoint, paying at the exit code, in the lot, for someone else's plate, or
automatically after leaving (deductions that fail open arrears, later paid); coupons given and redeemed, also raced
on one limited code; refunds, also raced on one payment for more than it was; curb prepay started, extended, ended
early or run out. The provider (the sandbox) answers each order as the seed says: succeeds, fails or stays pending,
its callbacks duplicated, renotified, reordered, lost or slow, its call timing out after taking the order (a crash
between the provider call and the ledger write) or not reaching it. The worker, the provider's deliveries and the
sweeps run between steps in the seed's order; at the end everything drains, every operator's days are settled, and
checks.py's invariants must all hold, whatever the interleaving. A failing seed reproduces:
`MONEY_SEED=<seed> pytest tests/money_path` (or `--money-seed <seed>` when pointing pytest at this directory)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from connectors.payments.sandbox import SandboxProvider
from hub.db import Database
from hub.payments import providers
from tests.api.conftest import Callers
from tests.lanes.conftest import MakeLot
from tests.money_path import checks
from tests.money_path.program import make_program, provider_words
from tests.money_path.runner import Sim


@pytest.fixture
async def sandbox(app: Starlette, settings: Any, money_seed: int) -> AsyncIterator[SandboxProvider]:
    """The provider of the run: calls back into the app through the connector endpoint; its references drawn from
    the seed; `slow` callbacks only a little late (the drain waits for them)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://parkhub.test") as http:
        provider = SandboxProvider(
            secret=settings.payment_sandbox_secret,
            client=http,
            seed=money_seed,
            retry_backoff_seconds=0.01,
            slow_seconds=0.05,
        )
        providers.install(provider)
        yield provider
        await provider.aclose()
        providers.uninstall("sandbox")


async def test_the_money_path_balances_to_the_fen(
    money_seed: int,
    db: Database,
    owner_db: Database,
    callers: Callers,
    client: httpx.AsyncClient,
    make_lot: MakeLot,
    run_worker: Any,
    sandbox: SandboxProvider,
) -> None:
    program = make_program(money_seed)
    sim = Sim(program, db, owner_db, callers, client, make_lot, run_worker, sandbox)
    reproduce = f"[money seed {money_seed}; reproduce: MONEY_SEED={money_seed} pytest tests/money_path]"
    started = time.monotonic()
    await sim.set_up()
    try:
        try:
            await sim.run()
            await sim.finish()
            problems = await verify(sim)
        except Exception as problem:  # anything unexpected, in a step or a check: with the seed and the program
            shown = program.describe(sim.step_index)
            raise AssertionError(f"{reproduce}\n{problem!r}\nprogram (up to the failing step):\n{shown}") from problem
    finally:
        await sim.tear_down()
    summary = ", ".join(f"{what}: {count}" for what, count in sorted(sim.tally.items()))
    print(
        f"\n{reproduce} {len(program.steps)} steps in {time.monotonic() - started:.1f} s "
        f"({sim.worker_seconds:.1f} s in worker bursts); {summary}"
    )
    assert problems == [], f"{reproduce}\n" + "\n".join(problems) + f"\nprogram:\n{program.describe()}\n{summary}"


async def verify(sim: Sim) -> list[str]:
    """Every operator's days settled, then every invariant of checks.py: the problems found."""
    settled = await sim.settle_all()
    problems: list[str] = []
    problems += await checks.ledger_invariants(sim)
    problems += await checks.payments_moved_the_ledger_once(sim)
    problems += await checks.agrees_with_the_provider(sim)
    problems += await checks.callbacks_applied(sim)
    problems += await checks.codes_within_limits(sim)
    problems += await checks.stays_paid_their_price(sim)
    problems += await checks.wallets_are_empty(sim)
    every_statement = {}
    for op_index, statements in settled:
        midway = [statement for index, statement in sim.midway if index == op_index]
        by_id = {statement["id"]: statement for statement in [*midway, *statements]}
        every_statement.update(by_id)
        ordered = sorted(by_id.values(), key=lambda statement: statement["business_date"])
        tenant_id = sim.operators[op_index].tenant_id
        problems += await checks.money_is_conserved(sim, tenant_id, ordered, sim.failed_payouts[op_index])
    problems += await checks.statements_reconcile(sim, list(every_statement.values()))
    return problems


def test_the_program_and_the_provider_are_functions_of_the_seed() -> None:
    """What a seed replays: the same steps, plates and amounts, and the same provider behaviour per order."""
    assert make_program(5) == make_program(5)
    assert make_program(5).steps != make_program(6).steps
    assert provider_words(5, "pay12") == provider_words(5, "pay12")
    words = {provider_words(5, f"pay{n}") for n in range(200)}
    assert {("fail",), ("pending",), ("timeout",), ("unavailable",), ("lost",)} <= words
