"""Use cases of the ledger, for the payments, merchant-code and settlement domains: create accounts on first use,
apply transfers (single, two-phase, linked), read balances and statements, void expired reservations, and check
the invariants. Functions never commit: the caller's transaction does, so a money movement commits together with
the business rows it belongs to (a payment, a redemption, a settlement line) or not at all.

Each function takes an AsyncSession or a raw asyncpg connection (the lanes' hot path holds the latter); either way
the SQL runs on the asyncpg connection, inside the caller's transaction and row-level security scope. The engine
itself ignores that scope (it is the only writer, and checks what it writes); reads see what the scope allows:
the platform and the city everything, an operator its tenant's rows, a driver their own.

Typical use:

    payable = account_spec("tenant_payable", tenant_id)
    clearing = account_spec("provider_clearing", "wechat")
    await ensure_accounts(session, [payable, clearing])
    await create_transfers(session, [TransferSpec(transfer_id("payment", payment_id), clearing.id, payable.id,
                                                  amount=1200, code="payment", tenant_id=tenant_id)])
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hub.ledger import repository, rules
from hub.ledger.errors import AccountConflict, InvalidTransfer, error_for
from hub.ledger.rules import (
    AccountSpec,
    Balance,
    Outcome,
    TransferSpec,
    account_id,
    account_spec,
    transfer_id,
)

Executor = repository.Executor
Row = repository.Row
Progress = Callable[[str], None]
BIGINT_MAX = 2**63 - 1
EXPIRE_CODE = "expire"

__all__ = [
    "AccountSpec",
    "Balance",
    "Outcome",
    "TransferResult",
    "TransferSpec",
    "Violation",
    "account_id",
    "account_spec",
    "account_transfers",
    "apply_transfers",
    "balances",
    "check_invariants",
    "create_transfers",
    "ensure_accounts",
    "transfer_id",
    "void_expired_pendings",
]


@dataclass(frozen=True)
class TransferResult:
    index: int
    id: uuid.UUID
    result: str  # created | exists


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which check, what it is about (a transfer or account id, a currency), what is wrong."""

    check: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.subject}: {self.detail}"


# ------------------------------------------------------------------------------------------------ accounts


def _account_payload(spec: AccountSpec) -> dict[str, Any]:
    bound = rules.account_kind(spec.kind).bound
    return {
        "id": spec.id,
        "currency": spec.currency,
        "kind": spec.kind,
        "owner": spec.owner,
        "tenant_id": spec.tenant_id,
        "driver_id": spec.driver_id,
        "debits_must_not_exceed_credits": bound == rules.DEBITS_MUST_NOT_EXCEED_CREDITS,
        "credits_must_not_exceed_debits": bound == rules.CREDITS_MUST_NOT_EXCEED_DEBITS,
    }


async def ensure_accounts(session: Executor, specs: Sequence[AccountSpec]) -> None:
    """Create the accounts that do not exist yet (idempotent, safe under concurrency). An id that already names an
    account with other attributes is refused (AccountConflict)."""
    unique = {spec.id: spec for spec in specs}
    if not unique:
        return
    conn = await repository.connection_of(session)
    result = await repository.ensure_accounts(conn, [_account_payload(spec) for spec in unique.values()])
    if result["mismatched"]:
        raise AccountConflict(
            "a ledger account id already names an account with other attributes",
            account_ids=[str(value) for value in result["mismatched"]],
        )


# ----------------------------------------------------------------------------------------------- transfers


def _amount_for_engine(amount: object) -> int:
    """What the engine receives as the amount: a value that is not a whole number in bigint range becomes -1,
    which the engine (and the model) refuse with the same reason as any amount out of range."""
    if isinstance(amount, bool) or not isinstance(amount, int) or not -BIGINT_MAX <= amount <= BIGINT_MAX:
        return -1
    return amount


def _transfer_payload(index: int, transfer: TransferSpec) -> dict[str, Any]:
    expires_at = transfer.expires_at
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidTransfer(
            f"transfer {transfer.id}: expires_at needs a time zone",
            result=rules.INVALID_TRANSFER,
            index=index,
            transfer_id=transfer.id,
            detail="expires_at needs a time zone",
        )
    return {
        "id": transfer.id,
        "debit_account_id": transfer.debit_account_id,
        "credit_account_id": transfer.credit_account_id,
        "amount": _amount_for_engine(transfer.amount),
        "currency": transfer.currency,
        "kind": transfer.kind,
        "pending_id": transfer.pending_id,
        "code": transfer.code,
        "tenant_id": transfer.tenant_id,
        "driver_id": transfer.driver_id,
        "reference": dict(transfer.reference or {}),
        "expires_at": expires_at.isoformat() if expires_at is not None else None,
    }


async def apply_transfers(
    session: Executor, transfers: Sequence[TransferSpec], *, linked: bool = True
) -> list[Outcome]:
    """Apply a batch and return each transfer's outcome without raising: the engine's codes as they are (see
    rules.py). Linked: all or nothing. Unlinked: each transfer on its own (bulk work where one bad row must not
    hold back the rest)."""
    if not transfers:
        return []
    payload = [_transfer_payload(index, transfer) for index, transfer in enumerate(transfers)]
    conn = await repository.connection_of(session)
    raw = await repository.apply(conn, payload, linked=linked)
    return [Outcome(item["result"], item.get("detail")) for item in raw]


async def create_transfers(session: Executor, transfers: Sequence[TransferSpec]) -> list[TransferResult]:
    """Apply `transfers` as one linked batch: all of them or none. Returns `created` or `exists` (an identical
    replay: nothing changed) per transfer; otherwise raises the typed error of the failing transfer (see
    hub.ledger.errors), having written nothing.

    A concurrent transaction that commits a *different* transfer with the same id between this batch's check and
    its insert makes the call fail with a serialization failure (asyncpg.SerializationError); retrying the
    transaction then reports the conflict. Identical concurrent replays never get there: they touch the same
    accounts, whose locks order them, so the later one answers `exists`."""
    outcomes = await apply_transfers(session, transfers, linked=True)
    for index, (transfer, outcome) in enumerate(zip(transfers, outcomes, strict=True)):
        if not outcome.ok and outcome.result != rules.LINKED_EVENT_FAILED:
            raise error_for(outcome, index, transfer.id)
    return [
        TransferResult(index, transfer.id, outcome.result)
        for index, (transfer, outcome) in enumerate(zip(transfers, outcomes, strict=True))
    ]


async def void_expired_pendings(session: Executor, *, limit: int = 1000) -> int:
    """Void up to `limit` pending transfers past their expiry (id `transfer_id("expire", pending_id)`, so two
    sweeps racing void each at most once). Run it with a scope that reads every transfer (platform). Returns how
    many were voided."""
    conn = await repository.connection_of(session)
    expired = await repository.expired_pendings(conn, limit)
    if not expired:
        return 0
    voids = [
        TransferSpec(
            id=transfer_id(EXPIRE_CODE, row["id"]),
            debit_account_id=None,
            credit_account_id=None,
            amount=0,
            code=EXPIRE_CODE,
            kind=rules.VOID_PENDING,
            pending_id=row["id"],
            currency=row["currency"],
        )
        for row in expired
    ]
    outcomes = await apply_transfers(conn, voids, linked=False)
    return sum(1 for outcome in outcomes if outcome.result == rules.CREATED)


# --------------------------------------------------------------------------------------------------- reads


async def balances(session: Executor, account_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Balance]:
    """The balances of the accounts the caller may read; an account that does not exist (or is out of the
    caller's sight) is absent."""
    conn = await repository.connection_of(session)
    return {
        row["id"]: Balance(
            account_id=row["id"],
            kind=row["kind"],
            owner=row["owner"],
            currency=row["currency"],
            debits_pending=row["debits_pending"],
            debits_posted=row["debits_posted"],
            credits_pending=row["credits_pending"],
            credits_posted=row["credits_posted"],
        )
        for row in await repository.accounts(conn, list(account_ids))
    }


async def account_transfers(
    session: Executor, account_id: uuid.UUID, after_seq: int | None = None, limit: int = 100
) -> list[Row]:
    """An account's transfers in order of application (`seq`), after `after_seq` (a cursor: the last `seq` seen),
    each with `side` ('debit' or 'credit'). Per account, `seq` order is also commit order (the engine locks the
    account), so paging by `seq` never skips a transfer committed later."""
    if not 1 <= limit <= 10_000:
        raise ValueError("limit must be between 1 and 10000")
    conn = await repository.connection_of(session)
    return await repository.account_transfers(conn, account_id, after_seq if after_seq is not None else 0, limit)


async def transfers(session: Executor, transfer_ids: Sequence[uuid.UUID]) -> list[Row]:
    conn = await repository.connection_of(session)
    return await repository.transfers(conn, list(transfer_ids))


async def counts(session: Executor) -> tuple[int, int]:
    """How many transfers and accounts the caller can see."""
    return await repository.counts(await repository.connection_of(session))


# ---------------------------------------------------------------------------------------------- invariants

CHECKS = {
    "transfer_sides": "every transfer moves between two existing accounts of its currency",
    "pending_resolutions": "every post or void resolves one pending of the same accounts, at most once",
    "account_sums": "every account's sums equal what its transfers add up to",
    "tenant_rule": "every transfer on a tenant's account carries that tenant, never two tenants'",
    "bounds": "bounded accounts stay within their bounds",
    "totals": "debits equal credits in every currency",
}


async def check_invariants(session: Executor, progress: Progress | None = None) -> list[Violation]:
    """Check the whole ledger (run it as the owner or under the platform scope, which see every row). Returns the
    violations found (at most repository.VIOLATION_LIMIT per check); empty means the ledger is sound. `progress`
    hears a line as each check starts and ends."""
    conn = await repository.connection_of(session)
    found: list[Violation] = []
    for check, description in CHECKS.items():
        if progress is not None:
            progress(f"checking that {description} ...")
        started = time.monotonic()
        rows = await repository.invariant_violations(conn, check)
        found.extend(Violation(check, subject, detail) for subject, detail in rows)
        if progress is not None:
            verdict = f"{len(rows)} violation(s)" if rows else "ok"
            progress(f"  {verdict} ({time.monotonic() - started:.1f} s)")
    return found


def balance_json(balance: Balance) -> dict[str, Any]:
    """A balance as the CLI and other plain-JSON readers show it."""
    return {
        "account_id": str(balance.account_id),
        "kind": balance.kind,
        "owner": balance.owner,
        "currency": balance.currency,
        "normal": balance.normal,
        "posted": balance.posted,
        "pending": balance.pending,
        "available": balance.available,
        "debits_pending": balance.debits_pending,
        "debits_posted": balance.debits_posted,
        "credits_pending": balance.credits_pending,
        "credits_posted": balance.credits_posted,
    }
