"""Pure rules of the ledger: account kinds and their bounds, deterministic ids, the shape of a transfer, and a
reference model of the engine. No I/O.

The engine itself runs in PostgreSQL (`ledger_apply`, migration 0014) so that the application role can move money
only through it; this module states the same rules in Python, step for step, so a property test can drive random
batches through both and demand identical outcomes and balances (tests/ledger/test_model_vs_database.py).

The model, in the TigerBeetle style:

- An account keeps four sums: debits and credits, each pending (reserved by a two-phase transfer not yet resolved)
  and posted. Every transfer moves one amount from its debit account to its credit account, so the sum of all
  debits always equals the sum of all credits.
- A bound keeps an account from going negative on its normal side: `debits_must_not_exceed_credits` (credit-normal
  accounts: what is debited, pending or posted, never exceeds what was credited and posted) and
  `credits_must_not_exceed_debits` (the mirror, for debit-normal accounts). Pending debits count against the bound,
  pending credits do not count as available: a reservation is spent at once, an incoming one only once posted.
- Transfer kinds: `single` (posted at once); `pending` (reserves); `post_pending` (posts a pending for its amount or
  less, releasing the rest); `void_pending` (releases a pending whole). A pending is posted or voided at most once.
  A post or void moves between the pending's accounts (callers may omit them) and inherits its tenant and driver.
- The transfer id is chosen by the client and is the idempotency key: the same id again with the same fields is a
  no-op (`exists`), with different fields a conflict naming the first field that differs. A void stores the amount
  it released, and a replay of it may say 0 again.
- A batch is applied in order. Linked (the default): all or nothing; the failing transfer gets its code and every
  other one `linked_event_failed`. Unlinked: each transfer succeeds or fails on its own. An identical replay
  (`exists`) is a success and changes nothing.
- The tenant rule (migration 0019): settlement collects an operator's money by the transfers' `tenant_id`, so a
  transfer on an account a tenant owns (the account's tenant_id: the tenant kinds and merchants' coupon funds)
  carries that tenant: a single or pending naming none takes it (before the replay check), one naming another is
  `invalid_transfer`, and a transfer between two tenants' accounts is `invalid_transfer` (no flow needs it: cross
  operators through a platform account, in two transfers).
- Expiry: a pending may carry `expires_at`; it cannot be posted from then on (`pending_expired`) but can still be
  voided, which is how expired reservations are released (`service.void_expired_pendings`).

Checks, in the order both engines make them (the first failing one decides the code):
invalid id; id replay (exists / transfer_conflict); kind, amount, code, currency; for single and pending: no
pending id, both accounts given and different, amount > 0, expiry only on a future pending, both accounts exist
(account_not_found), currencies equal; for post and void: pending id given, no expiry, the pending exists and is
a pending (pending_not_found), the accounts, tenant, driver and currency given agree with it, not already posted
or voided, for a post: not expired, amount > 0 and not above the pending's (post_exceeds_pending), for a void: amount
0 or the pending's; then the tenant rule (accounts of one tenant at most, tenant_id the owner's); finally the
bounds of both accounts after the transfer (balance_bound_exceeded).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

DEFAULT_CURRENCY = "CNY"
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
# Largest amount of one transfer: 10^15 fen (ten trillion yuan). Far below bigint, so balances cannot overflow.
MAX_AMOUNT = 10**15

SINGLE, PENDING, POST_PENDING, VOID_PENDING = "single", "pending", "post_pending", "void_pending"
TRANSFER_KINDS = (SINGLE, PENDING, POST_PENDING, VOID_PENDING)
RESOLVING_KINDS = (POST_PENDING, VOID_PENDING)
TransferKind = Literal["single", "pending", "post_pending", "void_pending"]

# Result codes, as the database function returns them (the errors' codes are these in upper case).
CREATED, EXISTS = "created", "exists"
LINKED_EVENT_FAILED = "linked_event_failed"
INVALID_TRANSFER = "invalid_transfer"
TRANSFER_CONFLICT = "transfer_conflict"
ACCOUNT_NOT_FOUND = "account_not_found"
PENDING_NOT_FOUND = "pending_not_found"
PENDING_ALREADY_POSTED = "pending_already_posted"
PENDING_ALREADY_VOIDED = "pending_already_voided"
PENDING_EXPIRED = "pending_expired"
POST_EXCEEDS_PENDING = "post_exceeds_pending"
BALANCE_BOUND_EXCEEDED = "balance_bound_exceeded"
SUCCESSES = (CREATED, EXISTS)

# --------------------------------------------------------------------------------------------- account kinds

DEBITS_MUST_NOT_EXCEED_CREDITS = "debits_must_not_exceed_credits"
CREDITS_MUST_NOT_EXCEED_DEBITS = "credits_must_not_exceed_debits"
Bound = Literal["debits_must_not_exceed_credits", "credits_must_not_exceed_debits"]
Side = Literal["debit", "credit"]
OwnerKind = Literal["tenant", "driver", "merchant", "provider", "platform"]


@dataclass(frozen=True)
class AccountKind:
    """What one kind of account holds: whose it is, its normal side (where its balance grows) and its bound."""

    name: str
    owner: OwnerKind
    normal: Side
    bound: Bound | None


ACCOUNT_KINDS: dict[str, AccountKind] = {
    kind.name: kind
    for kind in (
        # What the hub owes an operator for its drivers' payments, net of fees and refunds. Unbounded: a refund of
        # a payment already paid out can take it below zero, which is what the operator then owes the hub (netted
        # by the next settlement), and a refund must never fail for that.
        AccountKind("tenant_payable", "tenant", "credit", None),
        # A payout on its way to the operator's bank: reserved out of the payable, posted when confirmed.
        AccountKind("tenant_payout_in_transit", "tenant", "credit", DEBITS_MUST_NOT_EXCEED_CREDITS),
        # An operator's unexplained differences (reconciliation), until resolved.
        AccountKind("tenant_suspense", "tenant", "credit", None),
        # Money that left the ledger to the operator's bank account.
        AccountKind("operator_bank", "tenant", "credit", None),
        # A driver's prepaid wallet: never negative.
        AccountKind("driver_prepaid", "driver", "credit", DEBITS_MUST_NOT_EXCEED_CREDITS),
        # What a driver owes (arrears of a failed deduction): recovered at most in full.
        AccountKind("driver_receivable", "driver", "debit", CREDITS_MUST_NOT_EXCEED_DEBITS),
        # A merchant's coupon fund: coupons redeem only what the merchant paid in.
        AccountKind("merchant_coupon_fund", "merchant", "credit", DEBITS_MUST_NOT_EXCEED_CREDITS),
        # Money a payment provider holds for the hub (drivers' payments not yet settled to the hub).
        AccountKind("provider_clearing", "provider", "debit", None),
        # Money a provider settled directly to operators as sub-merchants (the hub's ledger shadows it).
        AccountKind("provider_settled", "provider", "credit", None),
        AccountKind("platform_fee_revenue", "platform", "credit", None),
        # Fractions of a fen from fee rounding, under one declared rounding rule.
        AccountKind("rounding", "platform", "credit", None),
        AccountKind("platform_suspense", "platform", "credit", None),
    )
}

# uuid5 namespaces of account and transfer ids (fixed forever: ids derived from them are stored).
ACCOUNT_NAMESPACE = uuid.UUID("5b0a3c52-4f0e-5d8e-9a47-6c1d2b7e4a10")
TRANSFER_NAMESPACE = uuid.UUID("8e2f7d14-91b3-5c6a-b0d5-3f4a9e1c7b22")


def account_kind(kind: str) -> AccountKind:
    try:
        return ACCOUNT_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown ledger account kind {kind!r}; known: {', '.join(ACCOUNT_KINDS)}") from None


def _owner_text(owner: object) -> str:
    return "" if owner is None else str(owner)


def account_id(kind: str, owner: object = "", currency: str = DEFAULT_CURRENCY) -> uuid.UUID:
    """The id of the account of `kind` held by `owner` in `currency`: the same on every machine and every call,
    so callers never look an account up before moving money through it."""
    account_kind(kind)
    return uuid.uuid5(ACCOUNT_NAMESPACE, f"{kind}\x1f{_owner_text(owner)}\x1f{currency}")


def transfer_id(*parts: object) -> uuid.UUID:
    """A deterministic transfer id (the idempotency key) from what identifies the movement, e.g.
    `transfer_id("payment", payment_id)` or `transfer_id("fee", tenant_id, day)`."""
    if not parts:
        raise ValueError("a transfer id needs at least one part")
    return uuid.uuid5(TRANSFER_NAMESPACE, json.dumps([str(part) for part in parts], ensure_ascii=False))


@dataclass(frozen=True)
class AccountSpec:
    """An account to create on first use. Build it with `account_spec`, which fills the tenant and driver the
    kind implies (for row-level security and statements)."""

    kind: str
    owner: str = ""
    currency: str = DEFAULT_CURRENCY
    tenant_id: uuid.UUID | None = None
    driver_id: uuid.UUID | None = None

    @property
    def id(self) -> uuid.UUID:
        return account_id(self.kind, self.owner, self.currency)

    @property
    def bound(self) -> Bound | None:
        return account_kind(self.kind).bound


def account_spec(
    kind: str, owner: object = "", currency: str = DEFAULT_CURRENCY, *, tenant_id: uuid.UUID | None = None
) -> AccountSpec:
    """The account of `kind` for `owner`: a tenant id (tenant kinds), a driver's user id (driver kinds), a merchant
    id (with the merchant's `tenant_id`), a provider's name (provider kinds), or nothing (platform kinds)."""
    spec = account_kind(kind)
    if not CURRENCY_PATTERN.match(currency):
        raise ValueError(f"currency {currency!r} is not an ISO 4217 code")
    text = _owner_text(owner)
    if spec.owner == "platform":
        if text:
            raise ValueError(f"{kind} is platform-wide: it has no owner")
        return AccountSpec(kind, "", currency)
    if not text:
        raise ValueError(f"{kind} needs its owner ({spec.owner})")
    if spec.owner == "tenant":
        tenant = uuid.UUID(text)
        return AccountSpec(kind, str(tenant), currency, tenant_id=tenant)
    if spec.owner == "driver":
        driver = uuid.UUID(text)
        return AccountSpec(kind, str(driver), currency, driver_id=driver)
    if spec.owner == "merchant":
        if tenant_id is None:
            raise ValueError("a merchant's account names the merchant's tenant (tenant_id)")
        return AccountSpec(kind, text, currency, tenant_id=tenant_id)
    return AccountSpec(kind, text, currency)


# ------------------------------------------------------------------------------------------------ transfers


@dataclass(frozen=True)
class TransferSpec:
    """One transfer as a caller asks for it. For a post or void the accounts may be None (the pending's are used)
    and a void's amount may be 0 (the whole pending)."""

    id: uuid.UUID
    debit_account_id: uuid.UUID | None
    credit_account_id: uuid.UUID | None
    amount: int
    code: str
    kind: TransferKind = "single"
    pending_id: uuid.UUID | None = None
    currency: str = DEFAULT_CURRENCY
    tenant_id: uuid.UUID | None = None
    driver_id: uuid.UUID | None = None
    reference: Mapping[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """What the engine made of one transfer of a batch: a result code and, for failures, what was wrong."""

    result: str
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.result in SUCCESSES


@dataclass(frozen=True)
class Balance:
    """An account's four sums, and its balance read on its normal side: `posted` (net posted), `pending` (net
    reserved) and `available` (what a bounded account may still give: posted less outgoing reservations)."""

    account_id: uuid.UUID
    kind: str
    owner: str
    currency: str
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    @property
    def normal(self) -> Side:
        return account_kind(self.kind).normal

    @property
    def posted(self) -> int:
        net = self.credits_posted - self.debits_posted
        return net if self.normal == "credit" else -net

    @property
    def pending(self) -> int:
        net = self.credits_pending - self.debits_pending
        return net if self.normal == "credit" else -net

    @property
    def available(self) -> int:
        if self.normal == "credit":
            return self.credits_posted - self.debits_posted - self.debits_pending
        return self.debits_posted - self.credits_posted - self.credits_pending


# ------------------------------------------------------------------------------------------ reference model


@dataclass
class AccountState:
    currency: str
    bound: Bound | None
    tenant_id: uuid.UUID | None = None  # the tenant owning the account (the tenant rule), None: no tenant's
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    def within_bound(self) -> bool:
        if self.bound == DEBITS_MUST_NOT_EXCEED_CREDITS:
            return self.debits_pending + self.debits_posted <= self.credits_posted
        if self.bound == CREDITS_MUST_NOT_EXCEED_DEBITS:
            return self.credits_pending + self.credits_posted <= self.debits_posted
        return True

    def sums(self) -> tuple[int, int, int, int]:
        return (self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted)


def first_difference(stored: TransferSpec, request: TransferSpec) -> str | None:
    """The first field in which a replayed request differs from the stored transfer of its id, or None when it is
    the same request. Fields a post or void may leave out (accounts, tenant, driver) are compared only when given;
    a void's amount 0 means the whole pending, which is what was stored."""
    resolving = stored.kind in RESOLVING_KINDS
    checks: list[tuple[str, bool]] = [
        ("kind", stored.kind != request.kind),
        (
            "debit_account_id",
            (request.debit_account_id is not None or not resolving)
            and stored.debit_account_id != request.debit_account_id,
        ),
        (
            "credit_account_id",
            (request.credit_account_id is not None or not resolving)
            and stored.credit_account_id != request.credit_account_id,
        ),
        ("amount", not (stored.kind == VOID_PENDING and request.amount == 0) and stored.amount != request.amount),
        ("currency", stored.currency != request.currency),
        ("pending_id", stored.pending_id != request.pending_id),
        ("code", stored.code != request.code),
        ("tenant_id", (request.tenant_id is not None or not resolving) and stored.tenant_id != request.tenant_id),
        ("driver_id", (request.driver_id is not None or not resolving) and stored.driver_id != request.driver_id),
        ("reference", dict(stored.reference) != dict(request.reference)),
        ("expires_at", stored.expires_at != request.expires_at),
    ]
    return next((name for name, differs in checks if differs), None)


class Rejected(Exception):
    """One transfer's check failed (internal to the model)."""

    def __init__(self, result: str, detail: str | None = None) -> None:
        super().__init__(result)
        self.outcome = Outcome(result, detail)


def _invalid(reason: str) -> Rejected:
    return Rejected(INVALID_TRANSFER, reason)


def shape_problem(t: TransferSpec, now: datetime) -> str | None:
    """What is wrong with a transfer on its own, before any account or pending is looked at (None: nothing)."""
    if t.kind not in TRANSFER_KINDS:
        return f"kind must be one of {', '.join(TRANSFER_KINDS)}"
    if isinstance(t.amount, bool) or not isinstance(t.amount, int) or not 0 <= t.amount <= MAX_AMOUNT:
        return f"amount must be a whole number of minor units from 0 to {MAX_AMOUNT}"
    if not t.code:
        return "code (the business reason) is required"
    if not CURRENCY_PATTERN.match(t.currency or ""):
        return "currency must be an ISO 4217 code"
    if t.kind in (SINGLE, PENDING):
        if t.pending_id is not None:
            return "only a post or a void names a pending transfer"
        if t.debit_account_id is None or t.credit_account_id is None:
            return "the debit and credit accounts are required"
        if t.debit_account_id == t.credit_account_id:
            return "the debit and credit accounts must differ"
        if t.amount == 0:
            return "amount must be positive"
        if t.expires_at is not None and t.kind == SINGLE:
            return "only a pending transfer expires"
        if t.expires_at is not None and t.expires_at <= now:
            return "expires_at must be in the future"
        return None
    if t.pending_id is None:
        return "a post or a void names its pending transfer (pending_id)"
    if t.expires_at is not None:
        return "only a pending transfer expires"
    return None


@dataclass
class LedgerModel:
    """The engine in memory: accounts, transfers by id, and which pendings were posted or voided."""

    accounts: dict[uuid.UUID, AccountState] = field(default_factory=dict)
    transfers: dict[uuid.UUID, TransferSpec] = field(default_factory=dict)
    resolutions: dict[uuid.UUID, str] = field(default_factory=dict)

    def open_account(self, spec: AccountSpec) -> None:
        self.accounts.setdefault(spec.id, AccountState(spec.currency, spec.bound, spec.tenant_id))

    def apply(self, batch: Sequence[TransferSpec], now: datetime, *, linked: bool = True) -> list[Outcome]:
        """Apply `batch` as `ledger_apply` does and return each transfer's outcome."""
        scratch = LedgerModel(
            {key: replace(state) for key, state in self.accounts.items()},
            dict(self.transfers),
            dict(self.resolutions),
        )
        outcomes: list[Outcome] = []
        for index, transfer in enumerate(batch):
            try:
                outcomes.append(scratch._apply_one(transfer, now))
            except Rejected as rejected:
                if linked:
                    return [
                        rejected.outcome if position == index else Outcome(LINKED_EVENT_FAILED)
                        for position in range(len(batch))
                    ]
                outcomes.append(rejected.outcome)
        self.accounts, self.transfers, self.resolutions = scratch.accounts, scratch.transfers, scratch.resolutions
        return outcomes

    def _apply_one(self, t: TransferSpec, now: datetime) -> Outcome:
        if t.id is None or t.id.int == 0:
            raise _invalid("id is required and must not be the nil uuid")
        t = self._with_owner_tenant(t)
        stored = self.transfers.get(t.id)
        if stored is not None:
            difference = first_difference(stored, t)
            if difference is None:
                return Outcome(EXISTS)
            raise Rejected(TRANSFER_CONFLICT, difference)
        problem = shape_problem(t, now)
        if problem:
            raise _invalid(problem)
        if t.kind in (SINGLE, PENDING):
            record, pending = t, None
            debit = self._account(t.debit_account_id, "debit account")
            credit = self._account(t.credit_account_id, "credit account")
            if debit.currency != t.currency or credit.currency != t.currency:
                raise _invalid("the accounts' currency differs from the transfer's")
        else:
            pending = self._pending_for(t, now)
            record = replace(
                t,
                debit_account_id=pending.debit_account_id,
                credit_account_id=pending.credit_account_id,
                amount=pending.amount if t.kind == VOID_PENDING else t.amount,
                tenant_id=t.tenant_id if t.tenant_id is not None else pending.tenant_id,
                driver_id=t.driver_id if t.driver_id is not None else pending.driver_id,
            )
        assert record.debit_account_id is not None and record.credit_account_id is not None
        record = self._tenant_rule(record)
        debit = replace(self.accounts[record.debit_account_id])
        credit = replace(self.accounts[record.credit_account_id])
        released = pending.amount if pending is not None else 0
        if record.kind == SINGLE:
            debit.debits_posted += record.amount
            credit.credits_posted += record.amount
        elif record.kind == PENDING:
            debit.debits_pending += record.amount
            credit.credits_pending += record.amount
        else:
            posted = record.amount if record.kind == POST_PENDING else 0
            debit.debits_pending -= released
            debit.debits_posted += posted
            credit.credits_pending -= released
            credit.credits_posted += posted
        if not debit.within_bound():
            raise Rejected(BALANCE_BOUND_EXCEEDED, "debit account")
        if not credit.within_bound():
            raise Rejected(BALANCE_BOUND_EXCEEDED, "credit account")
        self.accounts[record.debit_account_id] = debit
        self.accounts[record.credit_account_id] = credit
        self.transfers[record.id] = record
        if record.pending_id is not None:
            self.resolutions[record.pending_id] = record.kind
        return Outcome(CREATED)

    def _owner_tenant(self, account: uuid.UUID | None) -> uuid.UUID | None:
        state = self.accounts.get(account) if account is not None else None
        return state.tenant_id if state is not None else None

    def _with_owner_tenant(self, t: TransferSpec) -> TransferSpec:
        """A single or pending naming no tenant takes its tenant-owned account's (before the replay check, so an
        identical replay derives the same tenant)."""
        if t.tenant_id is not None or t.kind not in (SINGLE, PENDING):
            return t
        owner = self._owner_tenant(t.debit_account_id) or self._owner_tenant(t.credit_account_id)
        return replace(t, tenant_id=owner) if owner is not None else t

    def _tenant_rule(self, record: TransferSpec) -> TransferSpec:
        """The tenant rule (the module's notes): never between two tenants' accounts; a transfer on a tenant's
        account carries that tenant, taking it when it names none (also a post or void of an older pending)."""
        debit_owner = self._owner_tenant(record.debit_account_id)
        credit_owner = self._owner_tenant(record.credit_account_id)
        if debit_owner is not None and credit_owner is not None and debit_owner != credit_owner:
            raise _invalid("the debit and credit accounts belong to different tenants")
        owner = debit_owner or credit_owner
        if owner is None:
            return record
        if record.tenant_id is None:
            return replace(record, tenant_id=owner)
        if record.tenant_id != owner:
            raise _invalid("tenant_id differs from the tenant owning its account")
        return record

    def _account(self, account: uuid.UUID | None, which: str) -> AccountState:
        state = self.accounts.get(account) if account is not None else None
        if state is None:
            raise Rejected(ACCOUNT_NOT_FOUND, which)
        return state

    def _pending_for(self, t: TransferSpec, now: datetime) -> TransferSpec:
        assert t.pending_id is not None
        pending = self.transfers.get(t.pending_id)
        if pending is None or pending.kind != PENDING:
            raise Rejected(PENDING_NOT_FOUND, "no pending transfer has this id")
        for name in ("debit_account_id", "credit_account_id", "tenant_id", "driver_id"):
            given = getattr(t, name)
            if given is not None and given != getattr(pending, name):
                raise _invalid(f"{name} differs from the pending transfer's")
        if t.currency != pending.currency:
            raise _invalid("currency differs from the pending transfer's")
        resolution = self.resolutions.get(t.pending_id)
        if resolution == POST_PENDING:
            raise Rejected(PENDING_ALREADY_POSTED, "the pending transfer was posted")
        if resolution == VOID_PENDING:
            raise Rejected(PENDING_ALREADY_VOIDED, "the pending transfer was voided")
        if t.kind == POST_PENDING:
            if pending.expires_at is not None and pending.expires_at <= now:
                raise Rejected(PENDING_EXPIRED, "the pending transfer expired")
            if t.amount == 0:
                raise _invalid("a post names the amount it posts (a void releases a pending)")
            if t.amount > pending.amount:
                raise Rejected(POST_EXCEEDS_PENDING, f"the pending transfer reserved {pending.amount}")
        elif t.amount not in (0, pending.amount):
            raise _invalid("a void releases the whole pending amount (give 0 or the pending amount)")
        return pending

    def sums(self, account: uuid.UUID) -> tuple[int, int, int, int]:
        return self.accounts[account].sums()
