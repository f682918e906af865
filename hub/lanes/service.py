"""Lane decisions: decide a passage at a lane (entry or exit) from its plate reads or a driver's scan of the
lane's code, and record the exceptions that need an agent. (hub/lanes/operations.py has the operators' and
drivers' use cases around lanes.)

A decision reads and writes in the caller's transaction (`decide_passage`), or in one of its own that is
committed before the answer (`decide_at_lane`, for the gate's synchronous request, which runs on the bare asyncpg
connection when it can: see there): the reads, the decision and any session or exception change are one
transaction. Lanes act under the connector scope of the lane's operator;
a driver's scan of a lane code acts under it too once the code's signature proves the code is the operator's.

Functions never commit, except those taking a `Database`, which open and commit their own transactions."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from hub import jobs
from hub.access import rules as access_rules
from hub.access import service as access
from hub.access.rules import VISITOR, Entry, Standing
from hub.config import get_settings
from hub.db import ANONYMOUS, Database, Scope, driver_of
from hub.errors import Conflict, InvalidInput, NotFound
from hub.lanes import exceptions, repository, rules
from hub.lanes.rules import EarlierStay, ExitPrice, Outcome, Read
from hub.merchants import rules as coupon_rules
from hub.merchants import service as merchants
from hub.notify import Notification, notify
from hub.notify import service as notifications
from hub.payments import parkings
from hub.pricing import service as pricing
from hub.pricing.tariff import Tariff

# The public address payment links and lane code links point at (the payment pages come with the payments issue).
# Attempts of a decision that met a concurrent change (another lane closing the same session, the same passage
# sent twice at once): the next attempt sees the change and decides on it.
DECISION_ATTEMPTS = 3


def now_utc() -> datetime:
    return datetime.now(UTC)


def public_base_url() -> str:
    return get_settings().public_url


class ConcurrentChange(Conflict):
    """Another transaction changed what this decision read; deciding again gives the right answer."""

    code = "CONCURRENT_CHANGE"


class _SessionNeeded(Exception):
    """The gate's fast path (a transaction without an ORM Session) met what only a Session's transaction does:
    an exception for the agents' queue (whose live view reads it as the Session commits), a tariff version not yet
    in this process's cache, or a notification key seen before. Its transaction is rolled back, and the passage
    is decided again in a Session."""


@dataclass
class _Tx:
    """Where a decision reads and writes: its transaction's asyncpg connection and, except on the gate's fast
    path, its Session. On the fast path `handovers` keeps the notifications to hand over once committed."""

    conn: asyncpg.Connection
    session: AsyncSession | None
    handovers: list[notifications.Recorded] = field(default_factory=list)
    pending_jobs: list[jobs.PendingJob] = field(default_factory=list)

    def enqueue(self, function_name: str, *args: Any) -> None:
        """A job to send once the decision has committed (hub.jobs), on either path."""
        if self.session is not None:
            jobs.enqueue(self.session, function_name, *args)
        else:
            jobs.check_job(function_name)
            self.pending_jobs.append(jobs.PendingJob(function_name, args, None))


# ------------------------------------------------------------------------------------------------ passages


@dataclass(frozen=True)
class Passage:
    """One vehicle at one lane's barrier: the gate's passage id (the idempotency key), its reads and instant.
    `source` is camera (reads), entry_code / exit_code (a driver's scan: no reads, `driver_id` set) or agent
    (a corrected plate)."""

    passage_id: str
    reads: tuple[Read, ...]
    at: datetime
    source: str = "camera"
    connector_id: uuid.UUID | None = None
    driver_id: uuid.UUID | None = None


@dataclass(frozen=True)
class LaneAnswer:
    """What the gate (or the driver's app) is told. `amount_due_fen` is set for exits (0 when nothing is owed at
    the lane), `payment_link` when an exit holds for payment. `replayed`: the passage was decided before and
    this is that decision again."""

    decision_id: uuid.UUID | None  # None for a driver's repeated scan, which is not a new passage
    lane_id: uuid.UUID
    passage_id: str
    decision: str
    reason: str
    plate: str | None
    session_id: uuid.UUID | None
    amount_due_fen: int | None
    payment_link: str | None
    exception_id: uuid.UUID | None
    replayed: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "passage_id": self.passage_id,
            "plate": self.plate,
            "session_id": None if self.session_id is None else str(self.session_id),
            "amount_due_fen": self.amount_due_fen,
            "payment_link": self.payment_link,
            "exception_id": None if self.exception_id is None else str(self.exception_id),
            "decision_id": None if self.decision_id is None else str(self.decision_id),
            "replayed": self.replayed,
        }


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# ------------------------------------------------------------------------------------------------- keys

_KEYS: dict[uuid.UUID, bytes] = {}  # an operator's code key never changes once made


async def operator_key(conn: asyncpg.Connection, tenant_id: uuid.UUID, *, create: bool) -> bytes | None:
    """The operator's key for lane codes and payment tokens (made on first use when `create`)."""
    key = _KEYS.get(tenant_id)
    if key is None:
        key = await repository.code_key(conn, tenant_id)
        if key is None and create:
            await repository.insert_code_key(conn, tenant_id, secrets.token_bytes(rules.KEY_BYTES))
            key = await repository.code_key(conn, tenant_id)
        if key is not None:
            _KEYS[tenant_id] = key
    return key


async def _payment_link(conn: asyncpg.Connection, tenant_id: uuid.UUID, session_id: uuid.UUID) -> str:
    key = await operator_key(conn, tenant_id, create=True)
    assert key is not None
    return rules.payment_link(public_base_url(), rules.sign_code(key, rules.PAYMENT_TOKEN, tenant_id, session_id))


# -------------------------------------------------------------------------------------------- deciding


@dataclass
class _Decision:
    """A decision being made: the context row (and the plate's list entries it carried), and what will be
    written."""

    tenant_id: uuid.UUID
    lane_id: uuid.UUID
    passage: Passage
    context: asyncpg.Record
    plate: str | None
    entries: list[Entry] = field(default_factory=list)
    outcome: Outcome | None = None
    session_id: uuid.UUID | None = None
    amount_due_fen: int | None = None
    exception_id: uuid.UUID | None = None
    exception_detail: dict[str, Any] = field(default_factory=dict)

    @property
    def facility_id(self) -> uuid.UUID:
        return self.context["facility_id"]

    @property
    def direction(self) -> str:
        return self.context["direction"]


def _candidate_plate(reads: Sequence[Read]) -> str | None:
    """The plate every read names, whatever their confidence (the context is read for it before the lane's
    threshold is known)."""
    plates = {read.plate for read in reads}
    return next(iter(plates)) if len(plates) == 1 and "" not in plates else None


async def decide_passage(
    session: AsyncSession, tenant_id: uuid.UUID, lane_id: uuid.UUID, passage: Passage
) -> LaneAnswer:
    """Decide a passage at the lane and write the decision (and any session or exception change) in the caller's
    transaction, under a scope that sees the operator's rows (its connector scope). A passage id decided before
    returns that decision again (`replayed`) and writes nothing. NotFound UNKNOWN_LANE when the lane is not a
    live lane of the operator; InvalidInput WRONG_LANE when a driver scans an entry code at an exit or the other
    way round; ConcurrentChange when a concurrent decision got in the way (decide again)."""
    return await _decide(_Tx(await driver_of(session), session), tenant_id, lane_id, passage)


async def _decide(tx: _Tx, tenant_id: uuid.UUID, lane_id: uuid.UUID, passage: Passage) -> LaneAnswer:
    conn = tx.conn
    code_scan = passage.source in ("entry_code", "exit_code")
    candidate = None if code_scan else _candidate_plate(passage.reads)
    rows = await repository.decision_context(
        conn, tenant_id, lane_id, passage.passage_id, candidate, passage.driver_id if code_scan else None, passage.at
    )
    if not rows:
        raise NotFound("no live lane with this id belongs to the operator", code="UNKNOWN_LANE", field="laneId")
    context = rows[0]
    if context["replay_id"] is not None:
        return await _replay(conn, tenant_id, lane_id, passage, context)
    if code_scan and passage.source != f"{context['direction']}_code":
        raise InvalidInput(
            f"this is an {context['direction']} lane: scan its code with "
            + ("scanEntryCode" if context["direction"] == "entry" else "scanExitCode"),
            code="WRONG_LANE",
            field="code",
        )
    entries = access.entries_of_rows(repository.context_entries(rows))
    decision = _Decision(tenant_id, lane_id, passage, context, candidate, entries)
    if not code_scan:
        reconciled = rules.reconcile(passage.reads, context["threshold"])
        if reconciled.problem is not None:
            decision.plate = None
            decision.outcome = rules.unread_outcome(reconciled.problem)
            decision.exception_detail = {"threshold": context["threshold"], "direction": decision.direction}
            if candidate is not None:  # one plate, read without enough confidence: what the agent may confirm
                decision.exception_detail["candidate_plate"] = candidate
                if context["session_id"] is not None:
                    decision.exception_detail["candidate_session_id"] = str(context["session_id"])
            return await _write(tx, decision)
    if decision.direction == "entry":
        rescan = _rescan_of_entry_code(decision)
        if rescan is not None:
            return rescan
        await _decide_entry(tx, decision)
    else:
        await _decide_exit(tx, decision)
    answer = await _write(tx, decision)
    await _notify(tx, decision, answer)
    return answer


def _driver_to_tell(decision: _Decision) -> uuid.UUID | None:
    """Who drives the car: the account that scanned a lane code, owns the session, or pays for the plate."""
    context = decision.context
    return decision.passage.driver_id or context["session_driver_id"] or context["auto_pay_driver_id"]


async def _notify(tx: _Tx, decision: _Decision, answer: LaneAnswer) -> None:
    """Entry, exit and amount due reach the driver and the operator's webhooks after the commit (hub.notify).
    Keyed by the decision, so a replayed passage tells nobody twice."""
    outcome = decision.outcome
    if outcome is None or answer.session_id is None:
        return
    if outcome.opens_session:
        kind = "session.entered"
    elif outcome.closes_session:
        kind = "session.exited"
    elif outcome.reason == rules.PAYMENT_DUE:
        kind = "session.amount_due"
    else:
        return
    payload: dict[str, Any] = {"plate": answer.plate, "decision": outcome.decision, "reason": outcome.reason}
    if answer.amount_due_fen is not None:
        payload |= {
            "amount_due_fen": answer.amount_due_fen,
            "currency": decision.context["currency"],
            "payment_link": answer.payment_link,
        }
    event = Notification(
        tenant_id=decision.tenant_id,
        type=kind,
        idempotency_key=f"lane-decision:{answer.decision_id}",
        occurred_at=decision.passage.at,
        subject_ids={
            "session_id": answer.session_id,
            "facility_id": decision.facility_id,
            "lane_id": decision.lane_id,
            "decision_id": answer.decision_id,
        },
        payload=payload,
        driver_id=_driver_to_tell(decision),
    )
    if tx.session is not None:
        await notify(tx.session, event)
        return
    recorded = await notifications.record_on_connection(tx.conn, event)
    if recorded is None:  # (a new decision's key is new: not expected, but a Session handles it)
        raise _SessionNeeded
    tx.handovers.append(recorded)


async def _replay(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, lane_id: uuid.UUID, passage: Passage, context: asyncpg.Record
) -> LaneAnswer:
    session_id = context["replay_session_id"]
    link = None
    if context["replay_reason"] == rules.PAYMENT_DUE and session_id is not None:
        link = await _payment_link(conn, tenant_id, session_id)
    return LaneAnswer(
        context["replay_id"],
        lane_id,
        passage.passage_id,
        context["replay_decision"],
        context["replay_reason"],
        context["replay_plate"],
        session_id,
        context["replay_amount_due_fen"],
        link,
        context["replay_exception_id"],
        replayed=True,
    )


def _rescan_of_entry_code(decision: _Decision) -> LaneAnswer | None:
    """A driver scanning the entry code again at the same lane just after entering gets the same answer."""
    context, passage = decision.context, decision.passage
    if (
        passage.source == "entry_code"
        and context["session_id"] is not None
        and context["session_entry_lane_id"] == decision.lane_id
        and context["session_entered_at"] >= passage.at - rules.CODE_RESCAN_WINDOW
    ):
        return LaneAnswer(
            None,
            decision.lane_id,
            passage.passage_id,
            "open",
            rules.ENTERED,
            None,
            context["session_id"],
            None,
            None,
            None,
            replayed=True,
        )
    return None


def _standing(decision: _Decision, at: datetime) -> Standing:
    """The plate's standing at `at`, from the list entries the context read (as hub.access.standing_of)."""
    if decision.plate is None:
        return VISITOR
    return access_rules.standing(decision.entries, decision.facility_id, at, ZoneInfo(decision.context["time_zone"]))


async def _tariff(tx: _Tx, version_id: uuid.UUID, tenant_id: uuid.UUID) -> Tariff:
    """A sealed tariff version read under the decision's scope (its id came from the context), from the
    process cache (hub.pricing); on the fast path a version not cached yet is read in a Session."""
    if tx.session is not None:
        return await pricing.tariff_version(tx.session, version_id, tenant_id=tenant_id)
    cached = pricing.TARIFFS.get(version_id)
    if cached is None or cached[0] != tenant_id:
        raise _SessionNeeded
    return cached[1]


async def _decide_entry(tx: _Tx, decision: _Decision) -> None:
    conn, context, passage = tx.conn, decision.context, decision.passage
    standing = _standing(decision, passage.at)
    capacity = context["capacity"]
    outcome = rules.entry_outcome(
        standing.kind,
        lot_full=capacity is not None and context["open_sessions"] >= capacity,
        already_inside=context["session_id"] is not None,
    )
    if outcome.exception == rules.DUPLICATE_ENTRY:
        decision.session_id = context["session_id"]
    if outcome.exception == rules.RESTRICTED_PLATE:
        decision.exception_detail = {"reason": standing.reason, "blocklist_entry_id": str(standing.entry_id)}
    if outcome.opens_session:
        # The facility's tariff version in effect at entry (none: the lot is free), sealed on the session.
        version_id = context["entry_tariff_version_id"]
        tariff = None if version_id is None else await _tariff(tx, version_id, decision.tenant_id)
        continues = rules.is_reentry(tariff, context["recent_exited_at"], passage.at)
        if continues:
            outcome = rules.entry_outcome(standing.kind, lot_full=False, already_inside=False, continues=True)
        decision.session_id = uuid.uuid4()
        opened = await repository.insert_session(
            conn,
            (
                decision.tenant_id,
                decision.session_id,
                decision.facility_id,
                decision.plate,
                passage.driver_id,
                standing.kind,
                standing.entry_id,
                standing.vehicle_class or pricing.DEFAULT_VEHICLE_CLASS,
                decision.lane_id,
                passage.at,
                version_id,
                context["recent_id"] if continues else None,
            ),
        )
        if not opened:  # the same vehicle entered at another lane a moment ago
            raise ConcurrentChange("the vehicle's session changed while deciding; decide again")
        if context["auto_pay_id"] is not None and decision.plate is not None:
            # The provider charges after the car left only against an entry opened now (hub.payments.parkings).
            tx.enqueue(parkings.OPEN_PARKING_JOB, str(decision.tenant_id), str(decision.session_id))
    decision.outcome = outcome


async def _decide_exit(tx: _Tx, decision: _Decision) -> None:
    conn, context, passage = tx.conn, decision.context, decision.passage
    session_id = context["session_id"]
    if session_id is None:
        decision.outcome = rules.exit_outcome(
            has_session=False, standing="visitor", priced=None, paid_fen=0, auto_pay=False
        )
        return
    exit_at = max(passage.at, context["session_entered_at"])
    standing = _standing(decision, exit_at)
    # Merchants' coupons bound to the session (read with the context): applied to the price, settled at close.
    coupons = repository.context_coupons(context)
    priced: ExitPrice | None = None
    version_id = context["session_tariff_version_id"]
    if standing.kind != "whitelisted":
        tariff = None
        if version_id is not None:
            tariff = await _tariff(tx, version_id, decision.tenant_id)
        windows: list[tuple[datetime, datetime]] = []
        has_pass = "pass_holder" in (context["session_standing"], standing.kind) or standing.idle_pass_id is not None
        if tariff is not None and decision.plate is not None and has_pass:
            windows = access.merged_pass_windows(
                decision.entries, ZoneInfo(context["time_zone"]), context["session_entered_at"], exit_at
            )
        earlier = None
        if context["earlier_exited_at"] is not None:
            earlier = EarlierStay(
                context["earlier_entered_at"], context["earlier_exited_at"], context["earlier_price_fen"] or 0
            )
        priced = rules.price_exit(
            tariff,
            ZoneInfo(context["time_zone"]),
            context["session_vehicle_class"],
            context["session_entered_at"],
            exit_at,
            paid_fen=context["session_paid_fen"],
            paid_at=context["session_paid_at"],
            pass_windows=windows,
            earlier=earlier,
            coupons=[coupon_rules.pricing_coupon(coupon) for coupon in coupons],
        )
    outcome = rules.exit_outcome(
        has_session=True,
        standing=standing.kind,
        priced=priced,
        paid_fen=context["session_paid_fen"],
        # An auto-pay plate whose provider will not charge its stay (service paused, not enabled) pays at the exit.
        auto_pay=context["auto_pay_id"] is not None and context["session_parking_state"] not in parkings.UNCHARGEABLE,
        auto_pay_waits=context["auto_pay_opens_on"] == "succeeded",
        auto_pay_failed=context["charge_state"] in ("failed", "cancelled"),
    )
    decision.outcome = outcome
    decision.session_id = session_id
    decision.amount_due_fen = priced.due_fen if priced is not None and outcome.decision == "hold" else 0
    auto_pay = outcome.reason in (rules.AUTO_PAY, rules.AWAITING_PAYMENT)
    if not outcome.closes_session:
        if auto_pay:  # charged now; the car waits at the barrier until the deduction succeeded (hub.payments)
            assert priced is not None
            if not await _charge(conn, decision, session_id, priced.due_fen, if_version=context["session_version"]):
                raise ConcurrentChange("the session changed while deciding; decide again")
        return
    quote = None if priced is None else rules.quote_json(priced.quote, version_id)
    closed = await repository.close_session(
        conn,
        (
            decision.tenant_id,
            session_id,
            decision.lane_id,
            exit_at,
            0 if priced is None else priced.total_fen,
            None if quote is None else _json(quote),
            outcome.reason,
            context["auto_pay_driver_id"] if auto_pay else None,
            # Only the session this decision priced: a coupon redeemed or a payment made since (each touches the
            # session) would be priced twice or not at all, so the decision runs again instead.
            context["session_version"],
        ),
    )
    if not closed:  # another exit lane closed it, or a coupon or payment changed it, a moment ago
        raise ConcurrentChange("the session was closed or changed while deciding; decide again")
    if coupons:
        values = priced.quote.coupon_values() if priced is not None and priced.quote is not None else {}
        await merchants.settle_session_coupons(
            conn, decision.tenant_id, session_id, coupons, values, exit_at, context["currency"]
        )
    if auto_pay:
        assert priced is not None
        await _charge(conn, decision, session_id, priced.due_fen)


async def _charge(
    conn: asyncpg.Connection,
    decision: _Decision,
    session_id: uuid.UUID,
    amount_fen: int,
    *,
    if_version: datetime | None = None,
) -> bool:
    """The stay's pending charge for auto-pay (one per session: a repeated read adds none). With `if_version`, only
    while the open session is as the decision read it (False, nothing written, when it changed)."""
    context = decision.context
    values = (
        decision.tenant_id,
        session_id,
        context["auto_pay_id"],
        context["auto_pay_driver_id"],
        decision.plate,
        amount_fen,
        context["currency"],
        context["session_paid_fen"],
    )
    if if_version is None:
        await repository.insert_charge(conn, values)
        return True
    return await repository.insert_charge_if_current(conn, values, if_version)


async def _write(tx: _Tx, decision: _Decision) -> LaneAnswer:
    """The exception the outcome raises, then the decision row; the answer."""
    conn, outcome, passage = tx.conn, decision.outcome, decision.passage
    assert outcome is not None
    decision_id = uuid.uuid4()
    if outcome.exception is not None:
        if tx.session is None:  # the queue's live view learns of it as a Session commits
            raise _SessionNeeded
        decision.exception_id = await exceptions.raise_exception(
            tx.session,
            tenant_id=decision.tenant_id,
            kind=outcome.exception,
            facility_id=decision.facility_id,
            lane_id=decision.lane_id,
            session_id=decision.session_id,
            decision_id=decision_id,
            plate=decision.plate or decision.context["session_plate"],
            reads=passage.reads,
            detail={**decision.exception_detail, "source": passage.source, "passage_id": passage.passage_id},
            reason=outcome.reason,
        )
    written = await repository.insert_decision(
        conn,
        (
            decision.tenant_id,
            decision_id,
            decision.lane_id,
            decision.facility_id,
            decision.direction,
            passage.passage_id,
            passage.source,
            passage.connector_id,
            decision.plate,
            passage.driver_id,
            _json([read.as_json() for read in passage.reads]),
            outcome.decision,
            outcome.reason,
            decision.session_id,
            decision.amount_due_fen,
            decision.exception_id,
            passage.at,
        ),
    )
    if not written:  # the same passage, sent twice at once: the other one's decision stands
        raise ConcurrentChange("this passage was decided meanwhile; decide again to get that decision")
    link = None
    if outcome.reason == rules.PAYMENT_DUE and decision.session_id is not None:
        link = await _payment_link(conn, decision.tenant_id, decision.session_id)
    return LaneAnswer(
        decision_id,
        decision.lane_id,
        passage.passage_id,
        outcome.decision,
        outcome.reason,
        decision.plate,
        decision.session_id,
        decision.amount_due_fen,
        link,
        decision.exception_id,
    )


async def decide_at_lane(db: Database, tenant_id: uuid.UUID, lane_id: uuid.UUID, passage: Passage) -> LaneAnswer:
    """`decide_passage` in a transaction of its own under the operator's connector scope, committed before this
    returns; decided again when a concurrent decision got in the way.

    A gate waits for this, so it first runs without an ORM Session (`Database.driver_transaction`, five round
    trips for an exit: begin and scope, context, decision, notification, commit); the Session's own work was about
    40% of an exit's API CPU (bench/lanes_profile.py). What needs a Session (`_SessionNeeded`: an exception to
    raise, a tariff version this process has not cached yet) rolls that back and decides again in one. The
    notifications it wrote are handed over (their jobs and live notices sent) once it has committed."""
    scope = Scope("connector", tenant_id=tenant_id)
    for attempt in range(DECISION_ATTEMPTS):
        try:
            try:
                async with db.driver_transaction(scope) as conn:
                    tx = _Tx(conn, None)
                    answer = await _decide(tx, tenant_id, lane_id, passage)
            except _SessionNeeded:
                async with db.transaction(scope) as session:
                    return await decide_passage(session, tenant_id, lane_id, passage)
            for recorded in tx.handovers:
                notifications.hand_over(recorded)
            jobs.send_committed(tx.pending_jobs)
            return answer
        except ConcurrentChange:
            if attempt == DECISION_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def lane_tenant(db: Database, lane_id: uuid.UUID) -> uuid.UUID | None:
    """The operator of a live lane (lanes are public supply: read before the caller is known)."""
    async with db.transaction(ANONYMOUS) as session:
        return await repository.lane_tenant(await driver_of(session), lane_id)


async def record_payment(
    session: AsyncSession, tenant_id: uuid.UUID, session_id: uuid.UUID, amount_fen: int, paid_at: datetime
) -> Mapping[str, Any]:
    """Count a payment towards an open session (for the payments issue): the exit that follows within the
    tariff's exit grace owes nothing more. NotFound when the session is not open."""
    if amount_fen <= 0:
        raise InvalidInput("a payment must be above 0 fen", code="INVALID_AMOUNT", field="amountFen")
    conn = await driver_of(session)
    row = await repository.record_payment(conn, tenant_id, session_id, amount_fen, paid_at)
    if row is None:
        raise NotFound("no open session with this id belongs to the operator", field="sessionId")
    return row
