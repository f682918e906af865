"""Pass sales: a driver buys a month of an operator's pass offer (hub/access/offers.py) for a plate. Like paying a
lot session, the payment row (purpose `pass`, subject the offer, amount the offer's price, period the month bought)
is written first and is the outbox; the provider is asked after the commit, and the callback applies once. On
success the ledger captures as any charge (provider clearing -> driver wallet -> operator payable, the last leg coded
`pass_sale`, counted as gross by settlement) and the vehicle pass is created, exactly once (unique by payment). A
failed payment creates nothing; a refund that returns all of it revokes the pass (service.apply_refund_word).

The payment keeps the offer's terms as they are at the purchase (`terms`), and the pass gets those, whatever
happens to the offer before the payment succeeds. A month that meets a live pass of the plate, or a month of it
still being paid for, is refused (PASS_OVERLAPS)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import orjson

from hub import jobs
from hub.access import offer_rules
from hub.access import offers as access_offers
from hub.access import rules as access_rules
from hub.db import ANONYMOUS, Database, Scope
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.payments import providers, repository, rules
from hub.payments.service import check_key, notify_url
from hub.principal import Principal

Row = Mapping[str, Any]
REQUEST_JOB = "request_payment"


def _driver(principal: Principal) -> uuid.UUID:
    if principal.kind != "driver" or principal.user_id is None:
        raise Forbidden("only a signed-in driver can buy a pass", required_role="driver")
    return principal.user_id


async def buy_pass(
    db: Database,
    principal: Principal,
    *,
    offer_id: uuid.UUID,
    plate: str,
    starts_on: date,
    idempotency_key: str,
    now: datetime,
) -> Row:
    """A payment of one month of `offer_id` for `plate` from `starts_on` (in the offer's facility's zone), committed
    before it returns; the provider is asked after the commit. The same key again returns the same payment."""
    driver_id = _driver(principal)
    key = check_key(idempotency_key)
    try:
        normalized = access_rules.list_plate(plate)
    except InvalidInput as error:
        raise InvalidInput(error.message, code=error.code, field="plate") from None
    async with db.transaction(ANONYMOUS) as session:
        tenant_id = await access_offers.offer_tenant(session, offer_id)
    if tenant_id is None:
        raise NotFound("this pass offer is not on sale", code="OFFER_NOT_ON_SALE", field="offerId")
    async with db.transaction(Scope("connector", tenant_id=tenant_id)) as session:
        replay = await repository.payment_by_key(session, tenant_id, driver_id, key)
        if replay is not None:
            return replay
        offer, facility_id, zone = await access_offers.offer_for_sale(session, tenant_id, offer_id)
        offer_rules.check_start(starts_on, now.astimezone(zone).date())
        period_start, period_end = offer_rules.period_of(starts_on, zone)
        payment_id = uuid.uuid4()
        terms = offer_rules.pass_terms(offer)
        month = access_offers.month_of_pass(tenant_id, terms, normalized, payment_id, (period_start, period_end), zone)
        being_bought = [
            access_offers.month_of_pass(
                tenant_id, other["terms"], normalized, other["id"], (other["period_start"], other["period_end"]), zone
            )
            for other in await repository.open_pass_purchases(session, tenant_id, normalized)
            if other["terms"] is not None
        ]
        await access_offers.refuse_overlapping_month(session, tenant_id, month, being_bought)
        provider = providers.default_name()
        await notify_url(session, tenant_id, provider)  # the operator's callback connector exists before the call
        row = await repository.insert_payment(
            session,
            {
                "tenant_id": tenant_id,
                "id": payment_id,
                "driver_id": driver_id,
                "purpose": rules.PASS,
                "subject_id": offer["id"],
                "facility_id": facility_id,
                "plate": normalized,
                "method": rules.CHARGE,
                "amount_fen": offer["price_fen"],
                "currency": offer["currency"],
                "provider": provider,
                "idempotency_key": key,
                "period_start": period_start,
                "period_end": period_end,
                "terms": orjson.dumps(terms).decode(),
            },
        )
        if row is None:  # the same key, at the same moment, from another request
            raise Conflict("this idempotency key is being used right now; retry", code="CONCURRENT_CHANGE")
        jobs.enqueue(session, REQUEST_JOB, str(tenant_id), str(row["id"]))
        return row
