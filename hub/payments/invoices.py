"""E-invoice (fapiao) requests: a driver asks for an invoice of one of their succeeded payments, naming the buyer
(title, optionally a tax id) and where to send it. Recorded as `requested`, listed for the driver and the operator;
issuing it is a later integration with a tax-invoice service (states `issued` and `rejected` are reserved for it).
Asking again for the same payment returns the existing request."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.db import Database
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.payments import repository, rules
from hub.principal import Principal

Row = Mapping[str, Any]
TITLE_MAX = 100
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
# A unified social credit code (18 characters) or an older taxpayer number (15 to 20 characters).
TAX_ID = re.compile(r"^[0-9A-Z]{15,20}$")


def check_request(title: str, tax_id: str | None, email: str) -> tuple[str, str | None, str]:
    title = (title or "").strip()
    if not title or len(title) > TITLE_MAX:
        raise InvalidInput(f"the invoice title must be 1 to {TITLE_MAX} characters", field="title")
    email = (email or "").strip()
    if len(email) > 254 or not EMAIL.match(email):
        raise InvalidInput("not an email address", code="INVALID_EMAIL", field="email")
    tax = (tax_id or "").strip().upper() or None
    if tax is not None and not TAX_ID.match(tax):
        raise InvalidInput("a tax id is 15 to 20 digits or capital letters", code="INVALID_TAX_ID", field="taxId")
    return title, tax, email


async def request_invoice(
    db: Database, principal: Principal, payment_id: uuid.UUID, title: str, tax_id: str | None, email: str
) -> Row:
    """Committed before it returns. Written in the operator's scope (the payment's tenant), after checking under the
    driver's own scope that the payment is theirs."""
    if principal.kind != "driver" or principal.user_id is None:
        raise Forbidden("only the driver who paid can ask for an invoice", required_role="driver")
    title, tax, email = check_request(title, tax_id, email)
    async with db.transaction(principal.db_scope()) as session:
        payment = await repository.payment(session, None, payment_id)
    if payment is None or payment["driver_id"] != principal.user_id:
        raise NotFound("no payment of yours has this id", field="paymentId")
    if payment["state"] != rules.SUCCEEDED:
        raise Conflict("only a succeeded payment can be invoiced", code="PAYMENT_NOT_SUCCEEDED")
    from hub.payments.service import connector_scope

    async with db.transaction(connector_scope(payment["tenant_id"])) as session:
        row = await repository.insert_invoice_request(
            session,
            {
                "tenant_id": payment["tenant_id"],
                "id": uuid.uuid4(),
                "payment_id": payment_id,
                "driver_id": principal.user_id,
                "title": title,
                "tax_id": tax,
                "email": email,
                "amount_fen": payment["amount_fen"] - payment["refunded_fen"],
            },
        )
        if row is None:  # asked before: the existing request
            row = await repository.invoice_request_of(session, payment["tenant_id"], payment_id)
            assert row is not None
    return row


async def invoice_requests_page(
    session: AsyncSession, principal: Principal, first: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Row]:
    """A driver's own requests at every operator, or an operator's requests (its staff)."""
    if principal.kind == "driver" and principal.user_id is not None:
        return await repository.invoice_requests_page(session, first=first, after=after, driver_id=principal.user_id)
    if principal.kind == "operator" and principal.tenant_id is not None:
        return await repository.invoice_requests_page(session, first=first, after=after, tenant_id=principal.tenant_id)
    raise Forbidden("invoice requests are the paying driver's and the operator's", required_role="driver")
