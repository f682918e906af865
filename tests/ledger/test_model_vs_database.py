"""The engine in the database and the reference model in hub/ledger/rules.py agree on every random program: singles,
pendings, posts (also for less), voids, replays identical and different, linked batches with a bad leg, unlinked
batches, bound violations, unknown accounts, currencies that differ, expired pendings. After every batch both give
the same outcome per transfer and the same four sums per account; after each program the invariants hold.

Each program runs in one transaction of the application role that is rolled back at the end, so programs are
independent (ids repeat across programs on purpose) and the model can take the database's `now()` as its clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hub.config import asyncpg_dsn, get_settings
from hub.ledger import service
from hub.ledger.rules import MAX_AMOUNT, AccountSpec, LedgerModel, TransferSpec, account_id, account_spec

NAMESPACE = uuid.UUID("0b5c7f0e-3a51-4d2e-9f8a-6e4d1c2b3a90")
ID_POOL = 10  # transfer ids are drawn from a small pool: replays and resolutions of real pendings are frequent


FLAWS = (
    "empty_code",
    "other_currency",
    "zero_amount",
    "huge_amount",
    "past_expiry",
    "stray_pending",
    "wrong_accounts",
    "expiring_single",
    "missing_account",
    "no_accounts",
    "foreign_tenant",  # names another tenant than its tenant account's (the tenant rule)
    "cross_tenant",  # moves to another tenant's account
)


@dataclass(frozen=True)
class Draft:
    """A transfer before it meets a program's accounts, clock and history: mostly well formed, with at most one
    deliberate flaw; or a replay of an earlier transfer of the program, identical or with another amount."""

    id: int
    kind: str
    debit: int
    credit: int
    amount: int
    pending: int  # which earlier pending of the program a post or void resolves (or an id of the pool)
    tenant: bool
    driver: bool
    reference: int
    expiring: bool
    flaw: str
    replay: int | None
    replay_differs: bool


drafts = st.builds(
    Draft,
    id=st.integers(0, ID_POOL - 1),
    kind=st.sampled_from(["single"] * 3 + ["pending"] * 3 + ["post_pending"] * 2 + ["void_pending"] * 2),
    debit=st.integers(0, 5),
    credit=st.integers(0, 5),
    amount=st.one_of(st.integers(1, 20), st.integers(1, 300), st.integers(200, 1000)),
    pending=st.integers(0, 20),
    tenant=st.booleans(),
    driver=st.booleans(),
    reference=st.sampled_from([0, 0, 1]),
    expiring=st.booleans(),
    flaw=st.sampled_from(["none"] * 20 + list(FLAWS)),
    replay=st.one_of(*[st.none()] * 5, st.integers(0, 20)),
    replay_differs=st.booleans(),
)
programs = st.lists(
    st.tuples(st.lists(drafts, min_size=1, max_size=4), st.booleans()),
    min_size=1,
    max_size=12,
)


@dataclass
class Engine:
    loop: asyncio.AbstractEventLoop
    conn: asyncpg.Connection
    accounts: list[AccountSpec]
    missing: uuid.UUID
    tenant_id: uuid.UUID
    driver_id: uuid.UUID
    other_tenant_id: uuid.UUID


async def _connect_with_people() -> tuple[asyncpg.Connection, uuid.UUID, uuid.UUID, uuid.UUID]:
    conn = await asyncpg.connect(asyncpg_dsn(get_settings().app_database_url))
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.role', 'platform', true)")
        slug = f"model-{uuid.uuid4().hex[:10]}"
        tenants = [
            await conn.fetchval(
                "INSERT INTO tenants (slug, name, service_area) VALUES ($1, $2, "
                "ST_Multi(ST_MakeEnvelope(113.7, 22.4, 114.7, 22.9, 4326))) RETURNING id",
                name,
                name,
            )
            for name in (slug, f"{slug}-other")
        ]
        driver = await conn.fetchval("INSERT INTO users (email) VALUES ($1) RETURNING id", f"{slug}@example.com")
    return conn, tenants[0], driver, tenants[1]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """A connection of the application role in an event loop of its own (hypothesis drives synchronous tests)."""
    loop = asyncio.new_event_loop()
    conn, tenant, driver, other_tenant = loop.run_until_complete(_connect_with_people())
    suffix = uuid.uuid4().hex[:8]
    accounts = [
        account_spec("provider_clearing", f"model-a-{suffix}"),  # unbounded, debit-normal
        account_spec("provider_settled", f"model-b-{suffix}"),  # unbounded, credit-normal
        account_spec("tenant_payable", tenant),  # unbounded, credit-normal
        account_spec("driver_prepaid", driver),  # debits must not exceed credits
        account_spec("driver_receivable", driver),  # credits must not exceed debits
        account_spec("merchant_coupon_fund", f"model-m-{suffix}", tenant_id=tenant),
        account_spec("provider_clearing", f"model-usd-{suffix}", "USD"),
        account_spec("tenant_payable", other_tenant),  # another operator's: no transfer may reach it from ours
    ]
    try:
        yield Engine(loop, conn, accounts, account_id("rounding", "", "XXX"), tenant, driver, other_tenant)
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


def _transfer(
    draft: Draft, engine: Engine, now: datetime, history: list[TransferSpec], pendings: list[TransferSpec]
) -> TransferSpec:
    if draft.replay is not None and history:
        earlier = history[draft.replay % len(history)]
        return replace(earlier, amount=earlier.amount + 1) if draft.replay_differs else earlier
    flaw = draft.flaw
    accounts = [spec.id for spec in engine.accounts]
    debit, credit = accounts[draft.debit], accounts[draft.credit]
    if flaw == "missing_account":
        debit = engine.missing
    if flaw == "other_currency":
        credit = accounts[6]  # the USD account
    if flaw == "cross_tenant":
        credit = accounts[7]  # the other operator's payable
    resolving = draft.kind in ("post_pending", "void_pending")
    pending = pendings[draft.pending % len(pendings)] if resolving and pendings and draft.pending < 18 else None
    if pending is not None:
        pending_id: uuid.UUID | None = pending.id
    elif resolving or flaw == "stray_pending":
        pending_id = uuid.uuid5(NAMESPACE, str(draft.pending % ID_POOL))
    else:
        pending_id = None
    amount = draft.amount
    if pending is not None and draft.amount % 4:  # mostly what fits the pending: a post for all or less, a void of 0
        amount = pending.amount - draft.amount % pending.amount if draft.kind == "post_pending" else 0
    elif draft.kind == "void_pending" and draft.amount % 2:
        amount = 0
    amount = {"zero_amount": 0, "huge_amount": MAX_AMOUNT + 1}.get(flaw, amount)
    expires_at = None
    if (draft.kind == "pending" and draft.expiring) or flaw == "expiring_single":
        expires_at = now + timedelta(hours=1)
    if flaw == "past_expiry":
        expires_at = now - timedelta(hours=1)
    # A post or void mostly leaves accounts, tenant and driver to its pending; with this flaw it names some.
    named = not resolving or flaw == "wrong_accounts"
    return TransferSpec(
        id=uuid.uuid5(NAMESPACE, str(draft.id)),
        debit_account_id=debit if named and flaw != "no_accounts" else None,
        credit_account_id=credit if named else None,
        amount=amount,
        code="" if flaw == "empty_code" else "payment",
        kind=draft.kind,  # type: ignore[arg-type]
        pending_id=pending_id,
        currency="CNY",
        tenant_id=(engine.other_tenant_id if flaw == "foreign_tenant" else engine.tenant_id)
        if (draft.tenant or flaw == "foreign_tenant") and named
        else None,
        driver_id=engine.driver_id if draft.driver and named else None,
        reference={"n": draft.reference} if draft.reference else {},
        expires_at=expires_at,
    )


def _sums(balances: dict[uuid.UUID, Any]) -> dict[uuid.UUID, tuple[int, int, int, int]]:
    return {
        key: (value.debits_pending, value.debits_posted, value.credits_pending, value.credits_posted)
        for key, value in balances.items()
    }


def _funding(engine: Engine) -> list[TransferSpec]:
    """What every program starts with: 500 fen in each bounded account (the receivable: 500 owed), so that debits
    succeed for a while before the bounds bite."""
    clearing, _settled, payable, prepaid, receivable, coupons = (spec.id for spec in engine.accounts[:6])
    return [
        TransferSpec(uuid.uuid5(NAMESPACE, f"fund-{index}"), debit, credit, 500, "funding")
        for index, (debit, credit) in enumerate(
            [(clearing, payable), (clearing, prepaid), (receivable, clearing), (clearing, coupons)]
        )
    ]


async def _run(engine: Engine, program: list[tuple[list[Draft], bool]], *, in_hypothesis: bool) -> list[str]:
    conn = engine.conn
    seen: list[str] = []
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("SELECT set_config('app.role', 'platform', true)")
        now: datetime = await conn.fetchval("SELECT now()")
        await service.ensure_accounts(conn, engine.accounts)
        model = LedgerModel()
        for spec in engine.accounts:
            model.open_account(spec)
        ids = [spec.id for spec in engine.accounts]
        funding = _funding(engine)
        assert await service.apply_transfers(conn, funding) == model.apply(funding, now)
        history: list[TransferSpec] = []  # every transfer asked for (replays pick from them)
        pendings: list[TransferSpec] = []  # the pendings created (posts and voids pick from them, resolved or not)
        for drafted, linked in program:
            batch = [_transfer(draft, engine, now, history, pendings) for draft in drafted]
            history.extend(batch)
            expected = model.apply(batch, now, linked=linked)
            actual = await service.apply_transfers(conn, batch, linked=linked)
            assert actual == expected, f"batch {batch} (linked={linked})"
            pendings.extend(
                t for t, o in zip(batch, actual, strict=True) if t.kind == "pending" and o.result == "created"
            )
            for outcome in actual:
                if in_hypothesis:
                    event(outcome.result)
                seen.append(outcome.result)
            assert _sums(await service.balances(conn, ids)) == {key: model.sums(key) for key in ids}
        assert await service.check_invariants(conn) == []
    finally:
        await transaction.rollback()
    return seen


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs)
def test_the_database_engine_behaves_as_the_reference_model(engine: Engine, program: list[Any]) -> None:
    engine.loop.run_until_complete(_run(engine, program, in_hypothesis=True))


def test_a_program_with_every_kind_of_outcome(engine: Engine) -> None:
    """A fixed program that reaches each result code, so the random ones are known to compare something (run
    pytest with --hypothesis-show-statistics to see how often each code comes up in them)."""

    def draft(id: int, kind: str, debit: int, credit: int, amount: int, **changes: Any) -> Draft:
        plain = Draft(id, kind, debit, credit, amount, 0, True, True, 0, False, "none", None, False)
        return replace(plain, **changes)

    program = [
        ([draft(0, "single", 0, 3, 500)], True),  # created: clearing -> driver wallet
        ([draft(0, "single", 0, 3, 500)], True),  # exists
        ([draft(0, "single", 0, 3, 501)], True),  # transfer_conflict
        ([draft(1, "single", 3, 2, 1001)], True),  # balance_bound_exceeded: the wallet holds 1000
        ([draft(2, "pending", 3, 2, 400)], True),
        ([draft(3, "post_pending", 0, 0, 404)], True),  # post_exceeds_pending
        ([draft(3, "post_pending", 0, 0, 300)], True),  # posted for less
        ([draft(4, "void_pending", 0, 0, 1)], True),  # pending_already_posted
        ([draft(5, "void_pending", 0, 0, 1, pending=19)], True),  # pending_not_found
        ([draft(6, "single", 0, 1, 5, flaw="missing_account")], True),  # account_not_found
        ([draft(6, "single", 0, 1, 5, flaw="other_currency")], True),  # invalid_transfer
        # Recovering more than the driver owes (500) breaks the receivable's bound: the linked batch fails whole.
        ([draft(7, "single", 0, 1, 5), draft(8, "single", 0, 4, 600)], True),
        ([draft(7, "single", 0, 1, 5), draft(8, "single", 0, 4, 600)], False),  # unlinked: the first one is created
        ([draft(10, "pending", 0, 1, 5)], True),
        ([draft(11, "void_pending", 0, 0, 1, pending=1)], True),  # released
        ([draft(12, "void_pending", 0, 0, 1, pending=1)], True),  # pending_already_voided
    ]
    seen = set(engine.loop.run_until_complete(_run(engine, program, in_hypothesis=False)))
    assert seen == {
        "created",
        "exists",
        "transfer_conflict",
        "balance_bound_exceeded",
        "post_exceeds_pending",
        "pending_already_posted",
        "pending_already_voided",
        "pending_not_found",
        "account_not_found",
        "invalid_transfer",
        "linked_event_failed",
    }
