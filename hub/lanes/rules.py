"""Pure rules of lanes: reconciling a passage's reads, the entry and exit decisions, pricing an exit, and the
signed codes of lanes and payment links. No I/O.

Entry, in this order (the first that applies decides):

1. Reads: every read of the passage must name the same plate (after normalization), be a recognizable plate,
   and carry a confidence at or above the lane's threshold (a read without a confidence does not meet it).
   Disagreement holds with a `plate_disagreement` exception, a doubtful read with `low_confidence`; a passage
   whose reads found no plate at all holds with `no_plate` (the vehicle uses the lane's entry code).
2. Standing: blacklisted holds; restricted holds with a `restricted_plate` exception (an agent decides).
3. Lot full (open sessions >= capacity): visitors hold; pass holders and whitelisted vehicles still enter.
4. Already inside (an open session of the plate in this facility): hold with a `duplicate_entry` exception;
   never a second session.
5. Otherwise a session opens (continuing the plate's previous session when it left within the tariff's
   re-entry interval).

Exit: no open session holds with an `exit_without_entry` exception. Whitelisted vehicles leave free. Otherwise
the stay is priced under the tariff version sealed at entry, leaving out the plate's pass windows, merchants'
coupons bound to the session and what was paid within the exit grace: nothing due opens (reason `pass` when
passes covered the stay, `coupon` when coupons did, `paid` after a payment, `no_fee` or `no_tariff` otherwise);
an active auto-pay authorization opens and closes the session with its price and a pending charge; anything else
holds with the amount due and a payment link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from connectors.plates import normalize_camera_plate
from hub.errors import InvalidInput
from hub.pricing.rules import Coupon, Quote, amount_due, price_reentry
from hub.pricing.tariff import Tariff

DEFAULT_READ_THRESHOLD = 0.8
MAX_READS = 8
# A driver scanning the entry code again within this time gets the same answer, not a duplicate-entry hold.
CODE_RESCAN_WINDOW = timedelta(minutes=5)

Decision = Literal["open", "hold"]

# Reasons, stable codes the gate and the operator's screens show.
ENTERED = "entered"
REENTERED = "reentered"
BLACKLISTED = "blacklisted"
RESTRICTED = "restricted"
LOT_FULL = "lot_full"
ALREADY_INSIDE = "already_inside"
PLATE_DISAGREEMENT = "plate_disagreement"
LOW_CONFIDENCE = "low_confidence"
NO_PLATE = "no_plate"
EXIT_WITHOUT_ENTRY = "exit_without_entry"
WHITELISTED = "whitelisted"
PASS = "pass"
NO_FEE = "no_fee"
NO_TARIFF = "no_tariff"
PAID = "paid"
AUTO_PAY = "auto_pay"
PAYMENT_DUE = "payment_due"
# Auto-pay at an operator that opens only once the deduction succeeded: the car waits, the success opens the lane.
AWAITING_PAYMENT = "awaiting_payment"
COUPON = "coupon"  # merchants' coupons covered what the stay cost

# The tariff engine's label of the time a pass covered.
PASS_SEGMENT = "pass"

# Exception kinds raised by decisions (the table's list has gate_fault and barrier_held too).
DUPLICATE_ENTRY = "duplicate_entry"
RESTRICTED_PLATE = "restricted_plate"


# ------------------------------------------------------------------------------------------------ reads


@dataclass(frozen=True)
class Read:
    """One camera's (or recognizer's) read of a passing vehicle. `plate` is normalized ("" when the camera saw
    no plate) and `plate_valid` says whether it is a recognizable plate; `raw_plate` is what was sent."""

    camera: str | None
    raw_plate: str
    plate: str
    plate_valid: bool
    confidence: float | None
    image: str | None
    read_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "plate": self.plate,
            "raw_plate": self.raw_plate,
            "plate_valid": self.plate_valid,
            "confidence": self.confidence,
            "image": self.image,
            "read_at": None if self.read_at is None else self.read_at.isoformat(),
        }


def make_read(
    plate: str | None,
    confidence: float | None = None,
    *,
    camera: str | None = None,
    image: str | None = None,
    read_at: datetime | None = None,
) -> Read:
    raw = plate or ""
    normalized, valid = normalize_camera_plate(raw) if raw.strip() else ("", False)
    return Read(camera, raw, normalized, valid, confidence, image, read_at)


@dataclass(frozen=True)
class Reconciliation:
    """The passage's plate when its reads agree and are sure enough; otherwise `problem` says why not."""

    plate: str | None
    problem: str | None = None


def reconcile(reads: Sequence[Read], threshold: float) -> Reconciliation:
    plates = {read.plate for read in reads}
    if not reads or plates == {""}:
        return Reconciliation(None, NO_PLATE)
    if len(plates) > 1:  # two plates, or one camera saw a plate where another saw none
        return Reconciliation(None, PLATE_DISAGREEMENT)
    plate = next(iter(plates))
    doubtful = any(not read.plate_valid or read.confidence is None or read.confidence < threshold for read in reads)
    return Reconciliation(None, LOW_CONFIDENCE) if doubtful else Reconciliation(plate)


def check_threshold(value: float, field: str = "threshold") -> float:
    if not 0.0 <= value <= 1.0:
        raise InvalidInput(f"{field} must be between 0 and 1, got {value}", code="INVALID_THRESHOLD", field=field)
    return value


# -------------------------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Outcome:
    """What to answer the gate and what to change: `exception` is the kind to raise (None: none)."""

    decision: Decision
    reason: str
    exception: str | None = None
    opens_session: bool = False
    closes_session: bool = False


def entry_outcome(standing: str, *, lot_full: bool, already_inside: bool, continues: bool = False) -> Outcome:
    """The entry decision for a plate whose reads agreed (see the module's order)."""
    if standing == "blacklisted":
        return Outcome("hold", BLACKLISTED)
    if standing == "restricted":
        return Outcome("hold", RESTRICTED, exception=RESTRICTED_PLATE)
    if lot_full and standing not in ("pass_holder", "whitelisted"):
        return Outcome("hold", LOT_FULL)
    if already_inside:
        return Outcome("hold", ALREADY_INSIDE, exception=DUPLICATE_ENTRY)
    return Outcome("open", REENTERED if continues else ENTERED, opens_session=True)


def unread_outcome(problem: str) -> Outcome:
    """The decision for a passage whose reads did not give a plate (`reconcile`'s problem)."""
    return Outcome("hold", problem, exception=None if problem == NO_PLATE else problem)


@dataclass(frozen=True)
class ExitPrice:
    """A stay priced at exit: `total_fen` is the stay's price (what the session closes with), `due_fen` what is
    still owed after payments within the exit grace. `quote` is None when the lot has no tariff."""

    total_fen: int
    due_fen: int
    quote: Quote | None
    covered_by_pass: bool
    covered_by_coupons: bool = False


@dataclass(frozen=True)
class EarlierStay:
    """The session a re-entry continues: priced together with it, its charge credited."""

    entered_at: datetime
    exited_at: datetime
    charged_fen: int


def price_exit(
    tariff: Tariff | None,
    zone: ZoneInfo,
    vehicle_class: str,
    entered_at: datetime,
    exit_at: datetime,
    *,
    paid_fen: int = 0,
    paid_at: datetime | None = None,
    pass_windows: Sequence[tuple[datetime, datetime]] = (),
    earlier: EarlierStay | None = None,
    coupons: Sequence[Coupon] = (),
) -> ExitPrice:
    """The stay from `entered_at` to `exit_at` under `tariff` (None: free). A payment made within the tariff's
        exit grace before `exit_at` prices the stay up to the payment (`amount_due`); a stay that continues an
        earlier one is priced with it (`price_reentry`); merchants' coupons bound to the session take their part off
    (hub/pricing/coupons.py)."""
    if tariff is None:
        return ExitPrice(0, 0, None, False)
    exit_at = max(exit_at, entered_at)  # a gate clock a little behind must not make the stay negative
    if earlier is None:
        due = amount_due(tariff, zone, vehicle_class, entered_at, exit_at, paid_fen, paid_at, pass_windows, coupons)
        quote, due_fen = due.quote, due.due_fen
    else:
        priced_until = exit_at
        if paid_at is not None and exit_at <= paid_at + timedelta(minutes=tariff.exit_grace_minutes):
            priced_until = max(entered_at, min(exit_at, paid_at))
        quote = price_reentry(
            tariff,
            zone,
            vehicle_class,
            earlier.entered_at,
            earlier.exited_at,
            earlier.charged_fen,
            entered_at,
            priced_until,
            pass_windows,
            coupons,
        )
        due_fen = max(0, quote.total_fen - paid_fen)
    covered = quote.total_fen == 0 and any(line.rule == PASS_SEGMENT for line in quote.segments)
    by_coupons = quote.total_fen == 0 and any(value > 0 for value in quote.coupon_values().values())
    return ExitPrice(quote.total_fen, due_fen, quote, covered, by_coupons)


def exit_outcome(
    *,
    has_session: bool,
    standing: str,
    priced: ExitPrice | None,
    paid_fen: int,
    auto_pay: bool,
    auto_pay_waits: bool = False,
    auto_pay_failed: bool = False,
) -> Outcome:
    """The exit decision (see the module's order). `priced` is None only when there is no session or the
    vehicle is whitelisted (nothing to price). `auto_pay_waits`: the operator opens auto-pay exits only once the
    deduction succeeded (hold `awaiting_payment`); `auto_pay_failed`: this stay's deduction failed, so the driver
    pays like anyone else (`payment_due`)."""
    if not has_session:
        return Outcome("hold", EXIT_WITHOUT_ENTRY, exception=EXIT_WITHOUT_ENTRY)
    if standing == "whitelisted" or priced is None:
        return Outcome("open", WHITELISTED, closes_session=True)
    if priced.due_fen == 0:
        if priced.covered_by_pass:
            reason = PASS
        elif priced.covered_by_coupons:
            reason = COUPON
        elif paid_fen > 0:
            reason = PAID
        else:
            reason = NO_TARIFF if priced.quote is None else NO_FEE
        return Outcome("open", reason, closes_session=True)
    if auto_pay and not auto_pay_failed:
        if auto_pay_waits:
            return Outcome("hold", AWAITING_PAYMENT)
        return Outcome("open", AUTO_PAY, closes_session=True)
    return Outcome("hold", PAYMENT_DUE)


def is_reentry(tariff: Tariff | None, earlier_exit: datetime | None, entry_at: datetime) -> bool:
    """Whether an entry at `entry_at` continues the session that left at `earlier_exit`."""
    if tariff is None or earlier_exit is None or tariff.reentry_minutes <= 0:
        return False
    return earlier_exit <= entry_at <= earlier_exit + timedelta(minutes=tariff.reentry_minutes)


def quote_json(quote: Quote | None, version_id: uuid.UUID | None) -> dict[str, Any] | None:
    """The priced stay as the session stores it: total, class, segments and adjustments (times in ISO)."""
    if quote is None:
        return None
    return {
        "tariff_version_id": None if version_id is None else str(version_id),
        "total_fen": quote.total_fen,
        "vehicle_class": quote.vehicle_class,
        "priced_from": quote.priced_from.isoformat(),
        "priced_until": quote.priced_until.isoformat(),
        "segments": [
            {
                "start": line.start.isoformat(),
                "end": line.end.isoformat(),
                "rule": line.rule,
                "units": line.units,
                "unit_price_fen": line.unit_price_fen,
                "amount_fen": line.amount_fen,
            }
            for line in quote.segments
        ],
        "adjustments": [
            {
                "kind": line.kind,
                "start": line.start.isoformat(),
                "end": line.end.isoformat(),
                "amount_fen": line.amount_fen,
                "reason": line.reason,
                **({"ref": line.ref} if line.ref else {}),
            }
            for line in quote.adjustments
        ],
    }


# ---------------------------------------------------------------------------------------- signed codes
# A lane code (the QR code at a lane) names the operator and the lane; a payment token names the operator and a
# session. Both are `<kind>1.<base64url of tenant id, object id and a 16-byte HMAC-SHA256 under the operator's
# key>`: stable (the same lane always has the same code), unforgeable without the key, and readable without a
# database lookup up to the signature check, which needs the operator's key.

LANE_CODE = "L"
PAYMENT_TOKEN = "P"
KEY_BYTES = 32
_MAC_BYTES = 16


def _mac(key: bytes, kind: str, tenant_id: uuid.UUID, object_id: uuid.UUID) -> bytes:
    message = kind.encode() + tenant_id.bytes + object_id.bytes
    return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]


def sign_code(key: bytes, kind: str, tenant_id: uuid.UUID, object_id: uuid.UUID) -> str:
    payload = tenant_id.bytes + object_id.bytes + _mac(key, kind, tenant_id, object_id)
    return f"{kind}1." + base64.urlsafe_b64encode(payload).decode().rstrip("=")


@dataclass(frozen=True)
class SignedCode:
    """A code as read, before its signature is checked against the operator's key."""

    kind: str
    tenant_id: uuid.UUID
    object_id: uuid.UUID
    mac: bytes

    def valid_under(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, _mac(key, self.kind, self.tenant_id, self.object_id))


def read_code(code: str, kind: str) -> SignedCode:
    """The parts of a code of `kind`; InvalidInput INVALID_CODE when it is not one (the signature is the
    caller's to check with `valid_under`)."""
    prefix = f"{kind}1."
    text = code.strip() if isinstance(code, str) else ""
    try:
        if not text.startswith(prefix) or len(text) > 100:
            raise ValueError
        body = text[len(prefix) :]
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if len(payload) != 32 + _MAC_BYTES:
            raise ValueError
    except ValueError:
        what = "lane code" if kind == LANE_CODE else "payment token"
        raise InvalidInput(f"not a {what} issued by ParkHub", code="INVALID_CODE", field="code") from None
    return SignedCode(kind, uuid.UUID(bytes=payload[:16]), uuid.UUID(bytes=payload[16:32]), payload[32:])


def payment_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/pay/{token}"


def lane_code_link(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/lane/{code}"
