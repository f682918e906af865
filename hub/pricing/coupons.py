"""Coupons in the tariff engine: what each coupon bound to a stay takes off its price. Pure; no I/O.

hub/pricing/rules.py prices a stay without coupons, then hands this module the total and a way to reprice the stay
with the first N minutes of charging covered; this module decides, coupon by coupon, how much each one is worth.
See the order of operations in rules.py (steps 4b, 8, 9 and 10): minute coupons cover the first minutes of
charging like a pass window (whole units inside are not charged, then caps, the session maximum and the minimum
apply as usual); amount coupons subtract from the total after the session maximum and the minimum charge, never
below zero; a waiver takes what is left. Each coupon is worth at most its `limit_fen` (what its merchant's fund
reserved for it; None: no limit), so a coupon never takes off more than the fund pays.

A coupon's value is what the total drops by when it is applied, in this order: minute coupons (in the order
given, their minutes adding up from the start of charging), then amount coupons, then waivers. The values add up
to the price without coupons minus the price with them, and the price with them is never negative and never
above the price without them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hub.errors import InvalidInput

MINUTES = "minutes"
AMOUNT = "amount"
WAIVER = "waiver"
COUPON_KINDS = (MINUTES, AMOUNT, WAIVER)
# The label of the time minute coupons cover, as a zero-amount line when a stay is repriced with them.
COUPON_SEGMENT = "coupon"
# At most this many minutes in one coupon (a year): keeps the covered window inside any stay's arithmetic.
MAX_COUPON_MINUTES = 366 * 24 * 60


@dataclass(frozen=True)
class Coupon:
    """One coupon bound to a stay. `ref` is the caller's name for it (a redemption id), echoed on its line;
    `minutes` is set for minute coupons, `amount_fen` for amount coupons; `limit_fen` caps its value."""

    ref: str
    kind: str
    minutes: int = 0
    amount_fen: int = 0
    limit_fen: int | None = None


def check_coupon(coupon: Coupon) -> Coupon:
    """The coupon if it is well formed; InvalidInput INVALID_COUPON naming what is wrong otherwise."""
    problem = None
    if coupon.kind not in COUPON_KINDS:
        problem = f"kind must be one of {', '.join(COUPON_KINDS)}, got {coupon.kind!r}"
    elif coupon.kind == MINUTES and not 0 < coupon.minutes <= MAX_COUPON_MINUTES:
        problem = f"a minute coupon covers 1 to {MAX_COUPON_MINUTES} minutes, got {coupon.minutes}"
    elif coupon.kind == AMOUNT and coupon.amount_fen <= 0:
        problem = f"an amount coupon takes off more than 0 fen, got {coupon.amount_fen}"
    elif coupon.limit_fen is not None and coupon.limit_fen < 0:
        problem = f"a coupon's limit must be 0 or more, got {coupon.limit_fen}"
    if problem is not None:
        raise InvalidInput(f"coupon {coupon.ref}: {problem}", code="INVALID_COUPON", field="coupons")
    return coupon


def in_order(coupons: Sequence[Coupon]) -> list[Coupon]:
    """Minute coupons, then amount coupons, then waivers; each group in the order given."""
    return sorted(coupons, key=lambda coupon: COUPON_KINDS.index(coupon.kind))


def coupon_values(
    total_fen: int, coupons: Sequence[Coupon], total_with_minutes: Callable[[int], int]
) -> list[tuple[Coupon, int]]:
    """Each coupon (in the order of application) with the fen it takes off `total_fen`, the price without
    coupons. `total_with_minutes(n)` is the stay's price with the first `n` minutes of charging covered."""
    running = total_fen
    covered_minutes = 0
    total_so_covered = total_fen  # the price with `covered_minutes` covered
    values: list[tuple[Coupon, int]] = []
    for coupon in in_order([check_coupon(coupon) for coupon in coupons]):
        if coupon.kind == MINUTES:
            covered_minutes += coupon.minutes
            repriced = total_with_minutes(covered_minutes)
            worth = max(0, total_so_covered - repriced)
            total_so_covered = repriced
        elif coupon.kind == AMOUNT:
            worth = coupon.amount_fen
        else:
            worth = running
        value = min(worth, running)
        if coupon.limit_fen is not None:
            value = min(value, coupon.limit_fen)
        running -= value
        values.append((coupon, value))
    return values
