"""Pure rules of daily settlement: which ledger codes make which statement line, the platform fee's one rounding
rule, the business day's cut in the tenant's time zone, and how a statement's lines add up to its payout. No I/O.

Settlement reads only the ledger (hub/ledger): every posted transfer that moved money into or out of an operator's
payable (`tenant_payable[T]`) and that no earlier statement included. The other money domains (payments, merchant
codes) write those transfers; the `code` each of them gives its transfers decides the line it lands on here. The
codes read are listed below; a transfer on the payable with any other code is kept on the "other" line with its
sign (credit to the payable +, debit -), so nothing that moved the payable is ever left out of a statement.

Line by line (all amounts in fen, one currency per tenant):

    carried_in   what the previous statement could not pay out (<= 0: a negative net carries over)
  + gross        captures credited to the payable (codes in GROSS_CODES)
  - refunds      refunds debited from the payable (REFUND_CODES), shown as a positive amount
  + coupons      merchants' coupon funds paying the operator (COUPON_CODES)
  + other        anything else that moved the payable, with its sign
  + returned     payouts that failed (voided) since the previous statement: the money is back in the payable
  - fee          platform fee: fee_bps of (gross - refunds), rounded half up to the fen per statement
  = payout + carried_out   payout = the total when > 0, else 0; carried_out = the total when < 0, else 0

The fee rule: `fee = round_half_away_from_zero(fee_bps * (gross - refunds) / 10000)`, once per statement (never
per transfer), so the statement's fee equals the ledger's fee transfer exactly and no fraction of a fen is left to
a rounding account. A day whose refunds exceed its gross has a negative fee: the fee refunded on those refunds,
moved back from platform_fee_revenue to the payable (code `settlement_fee_rebate`).

The day's cut: business date D of a tenant is [local midnight D, local midnight D+1) in the tenant's time zone (DST
days are 23 or 25 hours long). A transfer's `created_at` is its transaction's start, so a transaction that began
before midnight may commit after it; a run therefore (1) waits SAFETY_LAG after the cut before D is due, and (2)
selects every transfer created before the cut that is in no statement yet (not only those of D's window), looking
back LOOKBACK: a late commit of day D-1 lands in D's statement instead of being lost. A transfer is in one
statement at most (a unique key), also under concurrent runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.errors import InvalidInput

# ------------------------------------------------------------------------------------------------ ledger codes

# Codes of transfers crediting the payable with a driver's payment (a capture, a posted auto-pay deduction, a pass).
# hub/payments writes: payment_applied (a charge applied from the driver's wallet), deduction / deduction_post
# (auto-pay, two-phase), arrears / arrears_post (arrears collected), street_hold / street_post (a curb prepay kept
# for the true price), pass_sale (a month of a pass offer sold, hub/payments/passes.py). A post is classified by
# its own code or its pending's.
GROSS_CODES = (
    "payment",
    "capture",
    "auto_pay",
    "pass_sale",
    "prepay",
    "payment_applied",
    "deduction",
    "deduction_post",
    "arrears",
    "arrears_post",
    "street_hold",
    "street_post",
)
# Codes of transfers debiting the payable to give money back to a driver.
REFUND_CODES = ("refund",)
# Codes of transfers crediting the payable from a merchant's coupon fund.
COUPON_CODES = ("coupon", "coupon_redemption")

# Settlement's own transfers (ids from (tenant, date, leg)); never collected as lines of a later statement, except a
# payout's void, which returns the payout's money to the payable (the `returned` line).
FEE_CODE = "settlement_fee"
FEE_REBATE_CODE = "settlement_fee_rebate"
PAYOUT_CODE = "settlement_payout"
PAYOUT_CONFIRMED_CODE = "settlement_payout_confirmed"
PAYOUT_FAILED_CODE = "settlement_payout_failed"
OWN_CODES = (FEE_CODE, FEE_REBATE_CODE, PAYOUT_CODE, PAYOUT_CONFIRMED_CODE)

# Statement lines of the transfers a statement lists.
GROSS, REFUNDS, COUPONS, OTHER, RETURNED = "gross", "refunds", "coupons", "other", "returned"
LINES = (GROSS, REFUNDS, COUPONS, OTHER, RETURNED)

# Settlement modes (SETTLEMENT_MODE): the hub pays operators out, or the provider settles to them directly as
# sub-merchants while the ledger shadows it (the payout reserves into provider_settled[provider] instead of
# tenant_payout_in_transit[T]); statements, fee and reconciliation are the same.
HUB_COLLECTS, PROVIDER_DIRECT = "hub_collects", "provider_direct"
MODES = (HUB_COLLECTS, PROVIDER_DIRECT)

# Payout states of a statement.
PAYOUT_NONE, PAYOUT_PENDING, PAYOUT_CONFIRMED, PAYOUT_FAILED = "none", "pending", "confirmed", "failed"
PAYOUT_STATES = (PAYOUT_NONE, PAYOUT_PENDING, PAYOUT_CONFIRMED, PAYOUT_FAILED)

SAFETY_LAG = timedelta(minutes=5)
# Every candidate in the lookback costs a key probe, settled or not: one day beyond the day settled (about 20,000
# candidates per tenant-day at bench scale). A transaction open longer than that would be missed.
LOOKBACK = timedelta(days=1)
BPS_DENOMINATOR = 10_000


def mode_known(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"SETTLEMENT_MODE must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


# -------------------------------------------------------------------------------------------------------- fee


def platform_fee(basis: int, fee_bps: int) -> int:
    """fee_bps of `basis` fen, rounded half away from zero to the fen (half up for a positive basis)."""
    if not 0 <= fee_bps <= BPS_DENOMINATOR:
        raise ValueError("fee_bps must be between 0 and 10000")
    magnitude = (abs(basis) * fee_bps * 2 + BPS_DENOMINATOR) // (2 * BPS_DENOMINATOR)
    return magnitude if basis >= 0 else -magnitude


# ------------------------------------------------------------------------------------------------------- time


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}", code="INVALID_TIME_ZONE", field="timeZone") from None


@dataclass(frozen=True)
class BusinessDay:
    """Business date D of a tenant: [start, end) in UTC, from local midnights in its time zone."""

    date: date
    start: datetime
    end: datetime

    def due(self, now: datetime) -> bool:
        return now >= self.end + SAFETY_LAG

    @property
    def lookback_start(self) -> datetime:
        return self.start - LOOKBACK


def business_day(day: date, time_zone: str) -> BusinessDay:
    tz = zone(time_zone)
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return BusinessDay(day, start, end)


def last_due_date(now: datetime, time_zone: str) -> date:
    """The latest business date due at `now` in `time_zone`: yesterday once today's midnight + SAFETY_LAG passed,
    else the day before yesterday."""
    local = (now - SAFETY_LAG).astimezone(zone(time_zone))
    return local.date() - timedelta(days=1)


# -------------------------------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Lines:
    """The collected lines of one statement (refunds positive, other signed)."""

    gross: int = 0
    refunds: int = 0
    coupons: int = 0
    other: int = 0
    returned: int = 0


@dataclass(frozen=True)
class Totals:
    carried_in: int
    lines: Lines
    fee_bps: int
    fee: int
    payout: int
    carried_out: int

    @property
    def total(self) -> int:
        return self.payout + self.carried_out


def statement_totals(lines: Lines, carried_in: int, fee_bps: int) -> Totals:
    """Fee, payout and carry of a statement: its lines sum exactly to payout + carried_out."""
    if carried_in > 0:
        raise ValueError("only a negative balance carries over")
    fee = platform_fee(lines.gross - lines.refunds, fee_bps)
    total = carried_in + lines.gross - lines.refunds + lines.coupons + lines.other + lines.returned - fee
    return Totals(carried_in, lines, fee_bps, fee, max(total, 0), min(total, 0))


# ---------------------------------------------------------------------------------------------- revenue


def collection_rate_bps(collected: int, open_arrears: int) -> int | None:
    """collected / (collected + open arrears) in basis points, rounded half up; None when both are 0 (nothing was
    due). Collected is what drivers paid in the period (gross captures); open arrears are failed auto-pay deductions
    of the period still owed (pending driver_receivable -> tenant_payable transfers neither posted nor voided)."""
    if collected < 0 or open_arrears < 0:
        raise ValueError("collected and open arrears are not negative")
    due = collected + open_arrears
    if due == 0:
        return None
    return (collected * BPS_DENOMINATOR * 2 + due) // (2 * due)


# ---------------------------------------------------------------------------------------------- reconciliation

# A provider's daily bill against the ledger, per (kind, out_trade_no): kind `payment` (money the provider took for
# us: ledger transfers debiting provider_clearing[X], posted) or `refund` (money it paid back: transfers crediting
# provider_clearing[X] with a REFUND_CODES code). out_trade_no is the payment id's hex (hub/payments/rules.py), the
# ledger's side names the payment in its reference (`payment_id`, on the transfer or on the pending it posts).
MISSING_IN_LEDGER, MISSING_AT_PROVIDER, AMOUNT_DIFFERS = "missing_in_ledger", "missing_at_provider", "amount_differs"
RECONCILED_KINDS = ("payment", "refund")
RECONCILIATION_CODE = "reconciliation"


@dataclass(frozen=True)
class Mismatch:
    kind: str
    out_trade_no: str
    provider_fen: int
    ledger_fen: int

    @property
    def problem(self) -> str:
        if self.ledger_fen == 0:
            return MISSING_IN_LEDGER
        if self.provider_fen == 0:
            return MISSING_AT_PROVIDER
        return AMOUNT_DIFFERS

    @property
    def clearing_effect(self) -> int:
        """What the ledger's provider_clearing[X] (money the provider holds for the hub, debit-normal) misses to
        match the bill: positive when the provider holds more than the ledger says (a payment it took that the
        ledger lacks, a refund the ledger has that it never paid), negative when it holds less. The difference
        moves between clearing and suspense by this much, so clearing then agrees with the provider."""
        difference = self.provider_fen - self.ledger_fen
        return difference if self.kind == "payment" else -difference


def mismatches(provider: dict[tuple[str, str], int], ledger: dict[tuple[str, str], int]) -> list[Mismatch]:
    """Every (kind, out_trade_no) whose amounts differ between the bill and the ledger (absent counts as 0), in a
    stable order."""
    found = []
    for key in sorted(set(provider) | set(ledger)):
        billed, booked = provider.get(key, 0), ledger.get(key, 0)
        if billed != booked:
            found.append(Mismatch(key[0], key[1], billed, booked))
    return found
