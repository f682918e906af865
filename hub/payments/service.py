"""Use cases of drivers' payments: pay a lot session (by payment token or by plate and facility), charge auto-pay
exits, pay arrears, refund, and apply what providers say (replies, callbacks from the inbox, queries by the sweep),
each exactly once. Functions never commit; their callers do. Provider calls are never made inside a transaction:
the payment row (state `created`) is the outbox, and the job `request_payment` (tasks.py), enqueued after commit,
makes the call and records its answer in a transaction of its own.

Scopes: a driver pays at any operator, and the rows a payment touches (the lot session, the payment, the gate
command) are the operator's, so paying runs in the operator's `connector` scope once the operator is known from the
signed payment token or the facility; the payment row names the driver, who then reads it under their own scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from hub import jobs
from hub.access import offers as access_offers
from hub.access import service as access
from hub.db import ANONYMOUS, Database, Scope, driver_of
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.lanes import gates
from hub.lanes import rules as lane_rules
from hub.lanes import service as lanes
from hub.ledger import service as ledger
from hub.ledger.rules import account_spec, transfer_id
from hub.merchants import rules as coupon_rules
from hub.merchants import service as merchants
from hub.payments import parkings, providers, repository, rules, street
from hub.payments.rules import Money
from hub.pricing import service as pricing
from hub.principal import Principal, require_operator_admin
from tenants import service as tenants

Row = Mapping[str, Any]
REQUEST_JOB = "request_payment"
REFUND_JOB = "request_refund"
CONFIRM_JOB = "confirm_payment"
PAYMENT_EVENT_KIND = "payment"
# A car whose exit held for payment this recently is taken to be still at the barrier: paying opens it.
WAITING_AT_BARRIER_MINUTES = 10


def now_utc() -> datetime:
    return datetime.now(UTC)


def connector_scope(tenant_id: uuid.UUID) -> Scope:
    return Scope("connector", tenant_id=tenant_id)


def _driver(principal: Principal) -> uuid.UUID:
    if principal.kind != "driver" or principal.user_id is None:
        raise Forbidden("only a signed-in driver can pay", required_role="driver")
    return principal.user_id


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > rules.IDEMPOTENCY_KEY_MAX:
        raise InvalidInput(
            f"idempotencyKey must be 1 to {rules.IDEMPOTENCY_KEY_MAX} characters", field="idempotencyKey"
        )
    return key


def money_of(row: Row) -> Money:
    return Money(row["id"], row["tenant_id"], row["driver_id"], row["provider"], row["amount_fen"], row["currency"])


async def ensure_accounts(session: AsyncSession, m: Money) -> None:
    specs = [
        account_spec("provider_clearing", m.provider, m.currency),
        account_spec("tenant_payable", m.tenant_id, m.currency),
    ]
    if m.driver_id is not None:
        specs += [
            account_spec("driver_prepaid", m.driver_id, m.currency),
            account_spec("driver_receivable", m.driver_id, m.currency),
        ]
    await ledger.ensure_accounts(session, specs)


async def notify_url(session: AsyncSession, tenant_id: uuid.UUID, provider: str) -> str:
    """Where the provider calls back for this operator: its payment connector, created on first use."""
    from hub.config import get_settings

    connector_id = await tenants.payment_connector(session, tenant_id, providers.FORMAT_OF_PROVIDER[provider])
    return f"{get_settings().payment_callback_url}/connectors/{connector_id}"


# ------------------------------------------------------------------------------------------ paying a lot


async def _session_by_token(session: AsyncSession, token: str) -> Row:
    code = lane_rules.read_code(token, lane_rules.PAYMENT_TOKEN)
    key = await lanes.operator_key(await driver_of(session), code.tenant_id, create=False)
    if key is None or not code.valid_under(key):
        raise InvalidInput("not a payment token issued by ParkHub", code="INVALID_CODE", field="token")
    row = await repository.open_lot_session(session, code.tenant_id, code.object_id)
    if row is None:
        raise NotFound("the session of this payment token is gone", field="token")
    return row


async def _tenant_of_target(db: Database, token: str | None, facility_id: uuid.UUID | None) -> uuid.UUID:
    if token is not None:
        return lane_rules.read_code(token, lane_rules.PAYMENT_TOKEN).tenant_id
    assert facility_id is not None
    async with db.transaction(ANONYMOUS) as session:
        tenant_id = await repository.facility_tenant(session, facility_id)
    if tenant_id is None:
        raise NotFound("no live facility has this id", field="facilityId")
    return tenant_id


async def pay_lot_session(
    db: Database,
    principal: Principal,
    *,
    token: str | None,
    plate: str | None,
    facility_id: uuid.UUID | None,
    idempotency_key: str,
    now: datetime,
) -> Row:
    """A payment of what a lot session owes now, by the payment token of an exit hold or by plate and facility
    (anyone may pay for any plate: the payer gets the receipt). Committed before it returns; the provider is asked
    after the commit. The same key again returns the same payment."""
    driver_id = _driver(principal)
    key = check_key(idempotency_key)
    if (token is None) == (plate is None or facility_id is None):
        raise InvalidInput("give either a payment token or a plate and a facility", field="token")
    tenant_id = await _tenant_of_target(db, token, facility_id)
    async with db.transaction(connector_scope(tenant_id)) as session:
        replay = await repository.payment_by_key(session, tenant_id, driver_id, key)
        if replay is not None:
            return replay
        if token is not None:
            lot = await _session_by_token(session, token)
        else:
            assert plate is not None and facility_id is not None
            from hub.lanes.operations import camera_form

            lot = await repository.open_lot_session_by_plate(session, tenant_id, facility_id, camera_form(plate))
            if lot is None:
                raise NotFound(
                    "no car with this plate is parked in this facility", code="NO_OPEN_SESSION", field="plate"
                )
        if lot["state"] != "open":
            raise Conflict("the session has ended: nothing to pay here", code="SESSION_NOT_OPEN")
        if await repository.open_payment_of(session, tenant_id, lot["id"]) is not None:
            raise Conflict("a payment of this session is in progress", code="PAYMENT_IN_PROGRESS")
        due = await _due_now(session, lot, now)
        if due <= 0:
            raise Conflict("nothing is owed for this stay now", code="NOTHING_DUE")
        provider = providers.default_name()
        await notify_url(session, tenant_id, provider)  # the operator's callback connector exists before the call
        row = await repository.insert_payment(
            session,
            {
                "tenant_id": tenant_id,
                "id": uuid.uuid4(),
                "driver_id": driver_id,
                "purpose": rules.LOT_SESSION,
                "subject_id": lot["id"],
                "facility_id": lot["facility_id"],
                "plate": lot["plate"],
                "method": rules.CHARGE,
                "amount_fen": due,
                "currency": lot["currency"],
                "provider": provider,
                "idempotency_key": key,
                "period_start": lot["entered_at"],
                "period_end": now,
            },
        )
        if row is None:  # the same key, at the same moment, from another request
            raise Conflict("this idempotency key is being used right now; retry", code="CONCURRENT_CHANGE")
        jobs.enqueue(session, REQUEST_JOB, str(tenant_id), str(row["id"]))
        return row


async def _due_now(session: AsyncSession, lot: Row, now: datetime) -> int:
    """What the exit lane would ask for if the car left now: the same pricing as hub.lanes' exit decision (the
    plate's standing, pass windows, a continued earlier stay, merchants' coupons reserved on the session), so a
    driver paying in the lot pays exactly what the barrier would charge, and a coupon is never paid for twice
    (once by the driver, once by the merchant's fund)."""
    if lot["tariff_version_id"] is None:
        return 0
    windows: list[tuple[datetime, datetime]] = []
    if lot["plate"] is not None:
        standing = await access.standing_of(session, lot["tenant_id"], lot["facility_id"], lot["plate"], now)
        if standing.kind == "whitelisted":
            return 0
        windows = await access.pass_windows_of(
            session, lot["tenant_id"], lot["facility_id"], lot["plate"], lot["entered_at"], now
        )
    earlier = None
    if lot["earlier_exited_at"] is not None:
        earlier = lane_rules.EarlierStay(
            lot["earlier_entered_at"], lot["earlier_exited_at"], lot["earlier_price_fen"] or 0
        )
    coupons = await merchants.reserved_coupons(await driver_of(session), lot["tenant_id"], lot["id"])
    tariff = await pricing.tariff_version(session, lot["tariff_version_id"], tenant_id=lot["tenant_id"])
    priced = lane_rules.price_exit(
        tariff,
        ZoneInfo(lot["time_zone"]),
        lot["vehicle_class"],
        lot["entered_at"],
        now,
        paid_fen=lot["paid_fen"],
        paid_at=lot["paid_at"],
        pass_windows=windows,
        earlier=earlier,
        coupons=[coupon_rules.pricing_coupon(coupon) for coupon in coupons],
    )
    return priced.due_fen


# ------------------------------------------------------------------------------------------- auto-pay


async def charge_pending_charges(session: AsyncSession, limit: int = 500) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """A deduction payment for every auto-pay exit's pending charge that has none (platform scope); the
    deductions are requested after commit. Returns (tenant, payment) ids."""
    created = []
    for charge in await repository.uncharged_pending_charges(session, limit):
        # The driver may also have paid the stay another way (in the lot, at the exit code, a friend by plate) with a
        # payment that was on its way when the exit charged auto-pay: while it is open the charge waits; what such
        # payments brought beyond what the stay had paid at its exit (the charge's `paid_fen`, already taken off its
        # amount) is not deducted again (found by the money-path simulation).
        besides = await repository.session_charges_paid_besides(session, charge["tenant_id"], charge["session_id"])
        if besides["open"]:
            continue
        amount = charge["amount_fen"] - max(0, int(besides["paid_fen"]) - charge["paid_fen"])
        if amount <= 0 or charge["driver_id"] is None:
            await repository.set_pending_charge_state(session, charge["tenant_id"], charge["id"], "cancelled")
            continue
        provider = providers.default_name()
        await notify_url(session, charge["tenant_id"], provider)
        row = await repository.insert_payment(
            session,
            {
                "tenant_id": charge["tenant_id"],
                "id": uuid.uuid4(),
                "driver_id": charge["driver_id"],
                "purpose": rules.LOT_SESSION,
                "subject_id": charge["session_id"],
                "facility_id": charge["facility_id"],
                "plate": charge["plate"],
                "method": rules.DEDUCT,
                "amount_fen": amount,
                "currency": charge["currency"],
                "provider": provider,
                "idempotency_key": f"charge:{charge['id']}",
                "period_start": charge["entered_at"],
                "period_end": charge["exited_at"],
            },
        )
        if row is not None:
            jobs.enqueue(session, REQUEST_JOB, str(row["tenant_id"]), str(row["id"]))
            created.append((row["tenant_id"], row["id"]))
    return created


# ------------------------------------------------------------------------------------------- arrears


async def my_arrears(session: AsyncSession, principal: Principal) -> list[Row]:
    return await repository.driver_arrears(session, _driver(principal))


async def pay_arrears(db: Database, principal: Principal, idempotency_key: str) -> list[Row]:
    """One payment per failed deduction the driver still owes (each at its operator); the same key again returns
    the same payments."""
    driver_id = _driver(principal)
    key = check_key(idempotency_key)
    async with db.transaction(principal.db_scope()) as session:
        owed = await repository.driver_arrears(session, driver_id)
    if not owed:
        raise Conflict("you owe nothing", code="NO_ARREARS")
    payments = []
    for failed in owed:
        tenant_id = failed["tenant_id"]
        async with db.transaction(connector_scope(tenant_id)) as session:
            item_key = f"{key}:{failed['id']}"
            row = await repository.payment_by_key(session, tenant_id, driver_id, item_key)
            if row is None:
                locked = await repository.payment(session, tenant_id, failed["id"], lock=True)
                if locked is None or locked["arrears_fen"] <= 0:
                    continue
                if await repository.open_payment_of(session, tenant_id, failed["id"]) is not None:
                    raise Conflict("a payment of these arrears is in progress", code="PAYMENT_IN_PROGRESS")
                provider = providers.default_name()
                await notify_url(session, tenant_id, provider)
                row = await repository.insert_payment(
                    session,
                    {
                        "tenant_id": tenant_id,
                        "id": uuid.uuid4(),
                        "driver_id": driver_id,
                        "purpose": rules.ARREARS,
                        "subject_id": failed["id"],
                        "facility_id": failed["facility_id"],
                        "plate": failed["plate"],
                        "method": rules.CHARGE,
                        "amount_fen": locked["arrears_fen"],
                        "currency": failed["currency"],
                        "provider": provider,
                        "idempotency_key": item_key,
                        "period_start": failed["period_start"],
                        "period_end": failed["period_end"],
                    },
                )
                assert row is not None
                jobs.enqueue(session, REQUEST_JOB, str(tenant_id), str(row["id"]))
            payments.append(row)
    return payments


# --------------------------------------------------------------------------------- what providers say


async def apply_word(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payment_id: uuid.UUID,
    word: str,
    now: datetime,
    *,
    reference: str | None = None,
    failure_code: str | None = None,
) -> Row | None:
    """Move a payment as the provider's `word` says, with its consequences (ledger, session, gate), once: the row
    is locked and the state machine ignores what no longer applies. None when no such payment."""
    row = await repository.payment(session, tenant_id, payment_id, lock=True)
    if row is None:
        return None
    target = rules.next_state(row["state"], word)
    if target is None:
        return row
    values: dict[str, Any] = {"state": target}
    if reference and not row["provider_reference"]:
        values["provider_reference"] = reference
    if target == rules.REQUESTED:
        values["requested_at"] = now
    if target in rules.FINAL_STATES:
        values["settled_at"] = now
    if target == rules.FAILED:
        values["failure_code"] = failure_code
    m = money_of(row)
    if target == rules.REQUESTED and row["method"] == rules.DEDUCT:
        await ensure_accounts(session, m)
        await ledger.create_transfers(session, [rules.deduction_pending(m)])
    elif target == rules.SUCCEEDED:
        await _succeeded(session, row, m, now)
    elif target == rules.FAILED and row["method"] == rules.DEDUCT:
        await ensure_accounts(session, m)
        if await _car_waits(session, row):
            await ledger.create_transfers(session, rules.deduction_voided(m))
        else:
            await ledger.create_transfers(session, rules.deduction_failed(m))
            values["arrears_fen"] = row["amount_fen"]
        await _settle_charge(session, row, "failed")
    if target in (rules.FAILED, rules.CANCELED) and row["purpose"] == rules.STREET_SESSION:
        jobs.enqueue(session, street.SETTLE_STREET_JOB, str(tenant_id), str(row["subject_id"]))
    return await repository.update_payment(session, tenant_id, payment_id, values)


async def _settle_charge(session: AsyncSession, row: Row, state: str) -> None:
    charge_key = row["idempotency_key"]
    if charge_key.startswith("charge:"):
        await repository.set_pending_charge_state(session, row["tenant_id"], uuid.UUID(charge_key[7:]), state)


async def _succeeded(session: AsyncSession, row: Row, m: Money, now: datetime) -> None:
    await ensure_accounts(session, m)
    if row["method"] == rules.DEDUCT:
        await ledger.create_transfers(session, rules.deduction_succeeded(m))
        await _settle_charge(session, row, "captured")
        if await _car_waits(session, row):  # the operator opens auto-pay exits on success: now
            await _count_towards_session(session, row, now, "auto-pay deduction succeeded")
        return
    if row["purpose"] == rules.ARREARS:
        failed = await repository.payment(session, row["tenant_id"], row["subject_id"], lock=True)
        assert failed is not None
        await ledger.create_transfers(session, rules.arrears_paid(money_of(failed), m))
        await repository.update_payment(session, row["tenant_id"], failed["id"], {"arrears_fen": 0})
        return
    if row["purpose"] == rules.STREET_SESSION:
        await ledger.create_transfers(session, rules.street_hold_captured(m))
        jobs.enqueue(session, street.SETTLE_STREET_JOB, str(row["tenant_id"]), str(row["subject_id"]))
        return
    if row["purpose"] == rules.PASS:  # a pass sold: captured, and the pass exists (once, unique by payment)
        await ledger.create_transfers(session, rules.pass_sale_transfers(m))
        terms = await repository.payment_terms(session, row["tenant_id"], row["id"])
        await access_offers.create_sold_pass(session, row, terms)
        return
    await ledger.create_transfers(session, rules.capture_transfers(m))
    if row["purpose"] == rules.LOT_SESSION:
        await _count_towards_session(session, row, now, f"paid {row['amount_fen']} fen at the exit")


async def _car_waits(session: AsyncSession, row: Row) -> bool:
    """Whether an auto-pay deduction's lot session is still open: its operator opens only on success, so the car
    has not left yet."""
    if row["purpose"] != rules.LOT_SESSION or row["subject_id"] is None:
        return False
    times = await repository.lot_session_times(session, row["tenant_id"], row["subject_id"])
    return times is not None and times["state"] == "open"


async def _count_towards_session(session: AsyncSession, row: Row, now: datetime, reason: str) -> None:
    """A lot payment counts towards its open session (an exit within the grace opens), and the lane where the car
    was held for it moments ago gets an open command, so the waiting car leaves without a new read."""
    try:
        await lanes.record_payment(session, row["tenant_id"], row["subject_id"], row["amount_fen"], now)
    except NotFound:
        return  # the car left meanwhile (an agent let it out): the money stands, refundable by the operator
    hold = await repository.latest_payment_hold(session, row["tenant_id"], row["subject_id"])
    if hold is not None and rules.is_recent_hold(hold["decided_at"], now, WAITING_AT_BARRIER_MINUTES):
        await gates.request_open(
            session, tenant_id=row["tenant_id"], lane_id=hold["lane_id"], requested_by="payments", reason=reason, at=now
        )


_EVENT_WORDS = {
    "payment_accepted": rules.ACCEPTED,
    "payment_succeeded": rules.SUCCEEDED,
    "payment_failed": rules.FAILED,
    "refund_succeeded": rules.SUCCEEDED,
    "refund_failed": rules.FAILED,
}


async def apply_provider_events(
    session: AsyncSession, tenant_id: uuid.UUID, events: Sequence[Row], now: datetime
) -> list[dict[str, Any]]:
    """Apply provider callbacks from the inbox (locked, pending), oldest first. Returns how each finished
    ({id, state, outcome}); a refund callback for a refund not known here yet stays pending (the inbox sweep
    retries it)."""
    finished: list[dict[str, Any]] = []
    for event in events:
        body: dict[str, Any] = event["body"]
        kind = body.get("event_kind")
        if kind == "service_state":  # a parking entry became chargeable or not (hub.payments.parkings)
            outcome = await parkings.apply_service_state(session, tenant_id, body)
            finished.append({"id": event["id"], "state": "applied", "outcome": outcome})
            continue
        word = _EVENT_WORDS.get(kind or "")
        if word is None:
            finished.append({"id": event["id"], "state": "applied", "outcome": "ignored"})
            continue
        if kind and kind.startswith("refund_"):
            refund_id = rules.payment_id_of(body.get("out_refund_no") or "")
            refund = None if refund_id is None else await repository.refund(session, tenant_id, refund_id)
            if refund is None:
                continue  # not known yet: stays pending
            await apply_refund_word(
                session, tenant_id, refund["id"], word, now, reference=body.get("provider_reference")
            )
            finished.append({"id": event["id"], "state": "applied", "outcome": word})
            continue
        payment_id = rules.payment_id_of(body.get("out_trade_no") or "")
        row = None if payment_id is None else await repository.payment(session, tenant_id, payment_id)
        if row is None:
            finished.append({"id": event["id"], "state": "dead", "outcome": "unknown_payment"})
            continue
        if body.get("amount_fen") is not None and body["amount_fen"] != row["amount_fen"]:
            finished.append({"id": event["id"], "state": "dead", "outcome": "amount_mismatch"})
            continue
        if word == rules.FAILED and row["state"] not in rules.FINAL_STATES:
            # A failure may be a superseded attempt arriving late (or early): it is applied only as the provider
            # confirms it when asked, after this commits; a success is definitive and applies at once.
            jobs.enqueue(session, CONFIRM_JOB, str(tenant_id), str(row["id"]))
            finished.append({"id": event["id"], "state": "applied", "outcome": "confirming"})
            continue
        before = row["state"]
        after = await apply_word(
            session,
            tenant_id,
            row["id"],
            word,
            now,
            reference=body.get("provider_reference"),
            failure_code=body.get("failure_code"),
        )
        changed = after is not None and after["state"] != before
        finished.append({"id": event["id"], "state": "applied", "outcome": "changed" if changed else "stale"})
    return finished


def provider_event_body(provider: str, event: Any) -> dict[str, Any]:
    """What the inbox keeps of one normalized provider callback (connectors.payments.ProviderEvent)."""
    return {
        "provider": provider,
        "event_kind": str(event.kind),
        "out_trade_no": event.out_trade_no,
        "out_refund_no": event.out_refund_no,
        "provider_reference": event.provider_reference,
        "amount_fen": event.amount_fen,
        "currency": event.currency,
        "failure_code": event.failure_code,
        "service_state": None if event.service_state is None else str(event.service_state),
        "details": {key: value for key, value in event.details.items() if key in ("parking_id", "plate")},
    }


# ------------------------------------------------------------------------------------------------ refunds


async def refund_payment(
    session: AsyncSession,
    principal: Principal,
    payment_id: uuid.UUID,
    amount_fen: int,
    reason: str,
    idempotency_key: str,
) -> Row:
    """An operator admin gives back part or all of a succeeded payment: reserved on the payment row under its lock
    (never more than paid minus refunded, also under concurrency), paid back by the provider after commit."""
    tenant_id = require_operator_admin(principal, "refunds")
    key = check_key(idempotency_key)
    reason = (reason or "").strip()
    if not reason or len(reason) > rules.REFUND_REASON_MAX:
        raise InvalidInput(f"a refund needs a reason of 1 to {rules.REFUND_REASON_MAX} characters", field="reason")
    if type(amount_fen) is not int or amount_fen <= 0:
        raise InvalidInput("amountFen must be above 0", code="INVALID_AMOUNT", field="amountFen")
    payment = await repository.payment(session, tenant_id, payment_id, lock=True)
    if payment is None:
        raise NotFound("no payment with this id belongs to the operator", field="id")
    replay = await repository.refund_by_key(session, tenant_id, payment_id, key)
    if replay is not None:
        return replay
    if payment["state"] != rules.SUCCEEDED:
        raise Conflict("only a succeeded payment can be refunded", code="PAYMENT_NOT_SUCCEEDED")
    available = rules.refundable_fen(payment["amount_fen"], payment["refunded_fen"], payment["refunding_fen"])
    if payment["purpose"] == rules.STREET_SESSION:
        available = min(available, await _street_refundable(session, payment))
    if amount_fen > available:
        raise InvalidInput(
            f"only {available} fen of this payment can still be refunded",
            code="REFUND_EXCEEDS_PAYMENT",
            field="amountFen",
            refundable_fen=available,
        )
    return await start_refund(
        session, payment, amount_fen, reason=reason, requested_by=principal.subject or principal.kind, key=key
    )


async def start_refund(
    session: AsyncSession,
    payment: Row,
    amount_fen: int,
    *,
    reason: str,
    requested_by: str,
    key: str,
    source: str = rules.FROM_PAYABLE,
) -> Row:
    """A refund of `amount_fen` of `payment` (locked by the caller, the amount checked refundable): reserved on the
    payment row, recorded, and asked of the provider after commit (the job `request_refund`)."""
    tenant_id = payment["tenant_id"]
    await repository.update_payment(
        session, tenant_id, payment["id"], {"refunding_fen": payment["refunding_fen"] + amount_fen}
    )
    await notify_url(session, tenant_id, payment["provider"])  # the provider's callback connector exists
    row = await repository.insert_refund(
        session,
        {
            "tenant_id": tenant_id,
            "id": uuid.uuid4(),
            "payment_id": payment["id"],
            "driver_id": payment["driver_id"],
            "amount_fen": amount_fen,
            "reason": reason,
            "requested_by": requested_by,
            "idempotency_key": key,
            "source": source,
        },
    )
    jobs.enqueue(session, REFUND_JOB, str(tenant_id), str(row["id"]))
    return row


async def _street_refundable(session: AsyncSession, payment: Row) -> int:
    """What an operator may refund of a curb prepay: only once the session ended and its hold was resolved, and
    only what the hold kept for the operator (the unused rest goes back from the driver's wallet: street.py), less
    what operators' refunds already took or are taking. Before, a refund drew on the operator's payable for money
    still held, and the unused part stayed in the driver's wallet (found by the money-path simulation)."""
    posted = transfer_id("street_post", payment["id"])
    voided = transfer_id("street_void", payment["id"])
    resolved = {row["id"]: row for row in await ledger.transfers(await driver_of(session), [posted, voided])}
    if not resolved:
        raise Conflict(
            "a curb prepay is settled when its session ends; refund it after that",
            code="PREPAY_NOT_SETTLED",
            field="id",
        )
    kept = int(resolved[posted]["amount"]) if posted in resolved else 0
    taken = sum(
        refund["amount_fen"]
        for refund in await repository.refunds_of(session, [payment["id"]])
        if refund["source"] == rules.FROM_PAYABLE and refund["state"] != rules.FAILED
    )
    return max(0, kept - taken)


async def apply_refund_word(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    refund_id: uuid.UUID,
    word: str,
    now: datetime,
    *,
    reference: str | None = None,
    failure_code: str | None = None,
) -> Row | None:
    """Move a refund as the provider says, once; its payment's reservation becomes refunded (and the ledger
    moves) on success, and is released on failure. The payment is locked first, then the refund."""
    peek = await repository.refund(session, tenant_id, refund_id)
    if peek is None:
        return None
    payment = await repository.payment(session, tenant_id, peek["payment_id"], lock=True)
    refund = await repository.refund(session, tenant_id, refund_id, lock=True)
    assert payment is not None and refund is not None
    target = rules.next_state(refund["state"], word)
    if target is None or target == "canceled":
        return refund
    values: dict[str, Any] = {"state": target}
    if reference and not refund["provider_reference"]:
        values["provider_reference"] = reference
    if target in rules.FINAL_STATES:
        values["settled_at"] = now
        amount = refund["amount_fen"]
        payment_values: dict[str, Any] = {"refunding_fen": payment["refunding_fen"] - amount}
        if target == rules.SUCCEEDED:
            payment_values["refunded_fen"] = payment["refunded_fen"] + amount
            m = money_of(payment)
            await ensure_accounts(session, m)
            await ledger.create_transfers(session, [rules.refund_transfer(m, refund_id, amount, refund["source"])])
            if payment["purpose"] == rules.PASS and payment_values["refunded_fen"] >= payment["amount_fen"]:
                await access_offers.revoke_sold_pass(session, tenant_id, payment["id"], now)  # refunded in full
        else:
            values["failure_code"] = failure_code
        await repository.update_payment(session, tenant_id, payment["id"], payment_values)
    return await repository.update_refund(session, tenant_id, refund_id, values)


# --------------------------------------------------------------------------------------------------- reads


async def my_payments(
    session: AsyncSession, principal: Principal, first: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Row]:
    return await repository.driver_payments(session, _driver(principal), first, after)


async def operator_payments(
    session: AsyncSession,
    principal: Principal,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
    facility_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> list[Row]:
    if principal.kind != "operator" or principal.tenant_id is None:
        raise Forbidden("an operator's payments are for its staff", required_role="operator_staff")
    return await repository.tenant_payments(session, principal.tenant_id, first, after, facility_id, since, until)


async def refunds_of(session: AsyncSession, payment_ids: Sequence[uuid.UUID]) -> list[Row]:
    return await repository.refunds_of(session, payment_ids)


def sweep_cutoff(now: datetime, seconds: int) -> datetime:
    return now - timedelta(seconds=seconds)
