"""Pure rules of drivers' payments: the states a payment and a refund go through, how a provider's word moves
them (exactly once, whatever the order callbacks, replies and queries arrive in), and the ledger transfers each
step makes. No I/O.

Money flows ("A -> B n": debit A, credit B, n fen; every id is `transfer_id(step, business id)`, so replaying a
step changes nothing):

- capture of charge P (driver D, tenant T, provider X): provider_clearing[X] -> driver_prepaid[D] A (money in),
  then driver_prepaid[D] -> tenant_payable[T] A (applied); ids ("payment_in", P), ("payment_applied", P).
- pass sale P (a month of an operator's pass offer) captured: provider_clearing[X] -> driver_prepaid[D] A, then
  driver_prepaid[D] -> tenant_payable[T] A; ids ("payment_in", P), ("pass_sale", P) (settlement's gross counts
  `pass_sale`). A refund of it is an ordinary refund (source `payable`); refunded in full, the pass is revoked.
- auto-pay deduction P accepted: PENDING provider_clearing[X] -> tenant_payable[T] A; id ("deduction", P).
- deduction P succeeded: the pending (if not yet there), then POST it; ids ("deduction", P), ("deduction_post", P).
- deduction P failed while the car still waits at the barrier (operator opens on success): VOID it only (the driver
  pays at the exit like anyone else); ids ("deduction", P), ("deduction_void", P).
- deduction P failed after the car left: the pending (if not yet there), VOID it, and open arrears: PENDING
  driver_receivable[D] -> tenant_payable[T] A (owed, not collected, so settlement does not pay it);
  ids ("deduction_void", P), ("arrears", P).
- arrears payment Q of failed P succeeded: POST the arrears pending, and provider_clearing[X] ->
  driver_receivable[D] A; ids ("arrears_post", P), ("arrears_in", Q).
- curb prepay P (start or extension of a street session S) succeeded: provider_clearing[X] -> driver_prepaid[D] A,
  then the hold: PENDING driver_prepaid[D] -> tenant_payable[T] A; ids ("payment_in", P), ("street_hold", P).
- street session S ended (early, by its sensor, or ran out) at true price p: S's holds, oldest first, are POSTED for
  as much of p as is left (less releases the rest back to driver_prepaid), a hold with nothing left is VOIDED; what
  each payment keeps back is refunded through the provider (a refund of source `prepaid`); ids ("street_post", P),
  ("street_void", P).
- refund R of P succeeded: tenant_payable[T] -> provider_clearing[X] r (an operator's refund, source `payable`), or
  driver_prepaid[D] -> provider_clearing[X] r (unused prepaid time released by a hold, source `prepaid`);
  id ("refund", R).
- refund R failed: nothing moves (the reservation on the payment row is released).

States of a payment: created -> requested (the provider took it) -> succeeded | failed; `unknown` when the provider
call's outcome is unknown (timeout): the sweep asks the provider. `canceled` when the provider never took it and it
will not be retried. succeeded and failed are final: a late failure after a success (a superseded attempt) changes
nothing, and a late acceptance changes nothing either.

Refunds: created -> requested -> succeeded | failed (`unknown` as for payments). A refund is reserved on its payment
row (`refunding_fen`) when asked, under the payment row's lock and a CHECK that refunded + refunding never exceeds
the amount, so concurrent requests can never refund more than was paid.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from hub.ledger.rules import PENDING, POST_PENDING, VOID_PENDING, TransferSpec, account_id, transfer_id

CREATED, REQUESTED, SUCCEEDED, FAILED, CANCELED, UNKNOWN = (
    "created",
    "requested",
    "succeeded",
    "failed",
    "canceled",
    "unknown",
)
PAYMENT_STATES = (CREATED, REQUESTED, SUCCEEDED, FAILED, CANCELED, UNKNOWN)
REFUND_STATES = (CREATED, REQUESTED, SUCCEEDED, FAILED, UNKNOWN)
FINAL_STATES = (SUCCEEDED, FAILED, CANCELED)
OPEN_STATES = (CREATED, REQUESTED, UNKNOWN)

LOT_SESSION, STREET_SESSION, ARREARS, PASS = "lot_session", "street_session", "arrears", "pass"
PURPOSES = (LOT_SESSION, STREET_SESSION, ARREARS, PASS)
CHARGE, DEDUCT = "charge", "deduct"
METHODS = (CHARGE, DEDUCT)

# What a provider can tell us about an order, in our words.
ACCEPTED = "accepted"
PROVIDER_WORDS = (ACCEPTED, SUCCEEDED, FAILED, "not_found", "unavailable")

# Where a refund's money comes from: the operator's payable (an operator's refund of captured money), or the
# driver's prepaid wallet (the unused part of a curb prepay, released when its hold was posted for less).
FROM_PAYABLE, FROM_PREPAID = "payable", "prepaid"
REFUND_SOURCES = (FROM_PAYABLE, FROM_PREPAID)
STREET_REFUND_KEY = "street_end"

# E-invoice requests: recorded now; issuing them (`issued`, `rejected`) is a later integration.
INVOICE_STATES = ("requested", "issued", "rejected")

IDEMPOTENCY_KEY_MAX = 100
REFUND_REASON_MAX = 80


def next_state(current: str, word: str) -> str | None:
    """The state a payment (or refund) moves to when the provider says `word` (accepted, succeeded, failed,
    not_found: never taken, unavailable: outcome unknown); None when nothing changes. Final states never change."""
    if current in FINAL_STATES:
        return None
    if word == SUCCEEDED:
        return SUCCEEDED
    if word == FAILED:
        return FAILED
    if word == ACCEPTED:
        return REQUESTED if current in (CREATED, UNKNOWN) else None
    if word == "unavailable":
        return UNKNOWN if current == CREATED else None
    if word == "not_found":
        # Asked after a call whose outcome was unknown: the provider never took it; nothing moved.
        return CANCELED if current in (UNKNOWN, CREATED) else None
    raise ValueError(f"unknown provider word {word!r}")


def refundable_fen(amount_fen: int, refunded_fen: int, refunding_fen: int) -> int:
    return max(0, amount_fen - refunded_fen - refunding_fen)


def out_trade_no(payment_id: uuid.UUID) -> str:
    """The provider's merchant order number of a payment: its id's 32 hex digits (WeChat allows 6 to 32)."""
    return payment_id.hex


def payment_id_of(number: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(hex=number)
    except (ValueError, TypeError):
        return None


# --------------------------------------------------------------------------------------------- the ledger


@dataclass(frozen=True)
class Money:
    """Who and what one payment's transfers are about."""

    payment_id: uuid.UUID
    tenant_id: uuid.UUID
    driver_id: uuid.UUID | None
    provider: str
    amount_fen: int
    currency: str = "CNY"

    @property
    def clearing(self) -> uuid.UUID:
        return account_id("provider_clearing", self.provider, self.currency)

    @property
    def payable(self) -> uuid.UUID:
        return account_id("tenant_payable", self.tenant_id, self.currency)

    @property
    def prepaid(self) -> uuid.UUID:
        assert self.driver_id is not None
        return account_id("driver_prepaid", self.driver_id, self.currency)

    @property
    def receivable(self) -> uuid.UUID:
        assert self.driver_id is not None
        return account_id("driver_receivable", self.driver_id, self.currency)

    def _t(
        self, step: str, debit: uuid.UUID | None, credit: uuid.UUID | None, amount: int, **extra: object
    ) -> TransferSpec:
        return TransferSpec(
            id=transfer_id(step, extra.pop("subject", self.payment_id)),
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            code=step,
            currency=self.currency,
            tenant_id=self.tenant_id,
            driver_id=self.driver_id,
            reference={"payment_id": str(self.payment_id)},
            **extra,  # type: ignore[arg-type]
        )


def capture_transfers(m: Money) -> list[TransferSpec]:
    """A charge captured: the money comes in to the driver's wallet and is applied to the operator."""
    return [
        m._t("payment_in", m.clearing, m.prepaid, m.amount_fen),
        m._t("payment_applied", m.prepaid, m.payable, m.amount_fen),
    ]


def pass_sale_transfers(m: Money) -> list[TransferSpec]:
    """A pass sale captured: the money comes in to the driver's wallet and is applied to the operator as a sale."""
    return [
        m._t("payment_in", m.clearing, m.prepaid, m.amount_fen),
        m._t("pass_sale", m.prepaid, m.payable, m.amount_fen),
    ]


def deduction_pending(m: Money) -> TransferSpec:
    return m._t("deduction", m.clearing, m.payable, m.amount_fen, kind=PENDING)


def deduction_succeeded(m: Money) -> list[TransferSpec]:
    pending = deduction_pending(m)
    post = m._t("deduction_post", None, None, m.amount_fen, kind=POST_PENDING, pending_id=pending.id)
    return [pending, post]


def deduction_voided(m: Money) -> list[TransferSpec]:
    """The held deduction voided, nothing owed: the car is still at the barrier and pays there instead."""
    pending = deduction_pending(m)
    return [pending, m._t("deduction_void", None, None, 0, kind=VOID_PENDING, pending_id=pending.id)]


def deduction_failed(m: Money) -> list[TransferSpec]:
    """Void the held deduction and open arrears: owed by the driver to the operator, pending until collected."""
    pending = deduction_pending(m)
    void = m._t("deduction_void", None, None, 0, kind=VOID_PENDING, pending_id=pending.id)
    arrears = m._t("arrears", m.receivable, m.payable, m.amount_fen, kind=PENDING)
    return [pending, void, arrears]


def arrears_paid(failed: Money, payment: Money) -> list[TransferSpec]:
    """The arrears of `failed` collected by `payment`: the owed amount posted, the money in from the provider."""
    arrears_id = transfer_id("arrears", failed.payment_id)
    post = failed._t("arrears_post", None, None, failed.amount_fen, kind=POST_PENDING, pending_id=arrears_id)
    money_in = payment._t("arrears_in", payment.clearing, payment.receivable, payment.amount_fen)
    return [post, money_in]


def refund_transfer(m: Money, refund_id: uuid.UUID, amount_fen: int, source: str = FROM_PAYABLE) -> TransferSpec:
    origin = m.prepaid if source == FROM_PREPAID else m.payable
    return m._t("refund", origin, m.clearing, amount_fen, subject=refund_id)


def street_hold_captured(m: Money) -> list[TransferSpec]:
    """A curb prepay captured: the money comes in to the driver's wallet and is held for the operator (pending)
    until the session's true price is known."""
    return [
        m._t("payment_in", m.clearing, m.prepaid, m.amount_fen),
        m._t("street_hold", m.prepaid, m.payable, m.amount_fen, kind=PENDING),
    ]


def street_hold_resolved(m: Money, keep_fen: int) -> TransferSpec:
    """The hold of curb prepay `m` posted for `keep_fen` (the rest goes back to the driver's wallet), or voided when
    nothing of it is kept."""
    hold_id = transfer_id("street_hold", m.payment_id)
    if keep_fen <= 0:
        return m._t("street_void", None, None, 0, kind=VOID_PENDING, pending_id=hold_id)
    return m._t("street_post", None, None, keep_fen, kind=POST_PENDING, pending_id=hold_id)


def allocate_price(held_fen: list[int], price_fen: int) -> list[int]:
    """How much of each hold (oldest first) a session's true price keeps: the oldest holds are used up first, and
    no hold keeps more than it holds. What a hold does not keep is refunded."""
    kept, left = [], max(0, price_fen)
    for amount in held_fen:
        take = min(amount, left)
        kept.append(take)
        left -= take
    return kept


def is_recent_hold(decided_at: datetime | None, now: datetime, minutes: int) -> bool:
    """Whether an exit that held for payment at `decided_at` is recent enough that the car is still waiting."""
    return decided_at is not None and 0 <= (now - decided_at).total_seconds() <= minutes * 60
