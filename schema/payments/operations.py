"""Payments for drivers (pay a lot session by payment token or plate and facility, arrears, their payments as
receipts) and operators (their payments, refunds). Resolvers are thin: hub.payments.service does the work."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from hub.payments import invoices, refunds, service
from schema.context import Info
from schema.payments.types import AutoPayOpensOn, InvoiceRequest, Payment, PaymentRefund
from schema.relay import check_first, connection, decode_time_cursor, uuid_of
from tenants import service as tenants


@strawberry.type
class PaymentsQuery:
    @strawberry.field(description="The driver's own payments at every operator, newest first (receipts).")
    async def my_payments(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> relay.Connection[Payment]:
        page_size = check_first(first)
        async with info.context.read() as session:
            rows = await service.my_payments(session, info.context.principal, page_size, decode_time_cursor(after))
        return connection(rows, page_size, after is not None, Payment.from_row, "created_at")

    @strawberry.field(description="The driver's failed auto-pay deductions still owed.")
    async def my_arrears(self, info: Info) -> list[Payment]:
        async with info.context.read() as session:
            rows = await service.my_arrears(session, info.context.principal)
        return [Payment.from_row(row) for row in rows]

    @strawberry.field(description="The operator's payments, newest first (operator staff).")
    async def payments(
        self,
        info: Info,
        facility_id: relay.GlobalID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> relay.Connection[Payment]:
        page_size = check_first(first)
        facility = None if facility_id is None else uuid_of(facility_id, "Facility", "facilityId")
        async with info.context.read() as session:
            rows = await service.operator_payments(
                session, info.context.principal, page_size, decode_time_cursor(after), facility, since, until
            )
        return connection(rows, page_size, after is not None, Payment.from_row, "created_at")

    @strawberry.field(
        description="E-invoice requests, newest first: a driver's own at every operator, or the operator's (staff)."
    )
    async def invoice_requests(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> relay.Connection[InvoiceRequest]:
        page_size = check_first(first)
        async with info.context.read() as session:
            rows = await invoices.invoice_requests_page(
                session, info.context.principal, page_size, decode_time_cursor(after)
            )
        return connection(rows, page_size, after is not None, InvoiceRequest.from_row, "created_at")

    @strawberry.field(description="When the operator's barriers open for auto-pay exits (operator staff).")
    async def auto_pay_opening(self, info: Info) -> AutoPayOpensOn:
        async with info.context.read() as session:
            return AutoPayOpensOn(await tenants.auto_pay_opening(session, info.context.principal))


@strawberry.type
class PaymentsMutation:
    @strawberry.mutation(
        description="Pay what a lot session owes now (drivers): by the payment token of an exit hold, or by plate "
        "and facility (for any plate). The provider's result follows; an exit within the grace then opens."
    )
    async def pay_lot_session(
        self,
        info: Info,
        idempotency_key: str,
        token: str | None = None,
        plate: str | None = None,
        facility_id: relay.GlobalID | None = None,
    ) -> Payment:
        facility = None if facility_id is None else uuid_of(facility_id, "Facility", "facilityId")
        row = await service.pay_lot_session(
            info.context.db,
            info.context.principal,
            token=token,
            plate=plate,
            facility_id=facility,
            idempotency_key=idempotency_key,
            now=service.now_utc(),
        )
        return Payment.from_row(row)

    @strawberry.mutation(description="Pay every failed auto-pay deduction the driver owes (one payment each).")
    async def pay_arrears(self, info: Info, idempotency_key: str) -> list[Payment]:
        rows = await service.pay_arrears(info.context.db, info.context.principal, idempotency_key)
        return [Payment.from_row(row) for row in rows]

    @strawberry.mutation(
        description="Refund part or all of a succeeded payment (operator admins; reason required). Never more than "
        "paid minus refunded; the provider pays it back after this returns. A curb prepay: only once its session "
        "ended (PREPAY_NOT_SETTLED before), and only what its hold kept (the unused rest is refunded by itself)."
    )
    async def refund_payment(
        self, info: Info, id: relay.GlobalID, amount_fen: int, reason: str, idempotency_key: str
    ) -> PaymentRefund:
        payment_id = uuid_of(id, "Payment")
        async with info.context.write() as session:
            row = await service.refund_payment(
                session, info.context.principal, payment_id, amount_fen, reason, idempotency_key
            )
        return PaymentRefund.from_row(row)

    @strawberry.mutation(
        description="Ask the provider again for a refund it declined (operator admins): a new refund of the same "
        "amount and source, once per declined refund (asking again returns it). REFUND_NOT_DECLINED otherwise."
    )
    async def retry_refund(self, info: Info, id: relay.GlobalID) -> PaymentRefund:
        refund_id = uuid_of(id, "PaymentRefund")
        async with info.context.write() as session:
            row = await refunds.retry_refund(session, info.context.principal, refund_id)
        return PaymentRefund.from_row(row)

    @strawberry.mutation(
        description="Ask for an e-invoice of one of your succeeded payments (drivers). Recorded as REQUESTED; "
        "issuing is a later integration. Asking again for the same payment returns the same request."
    )
    async def request_invoice(
        self, info: Info, payment_id: relay.GlobalID, title: str, email: str, tax_id: str | None = None
    ) -> InvoiceRequest:
        row = await invoices.request_invoice(
            info.context.db, info.context.principal, uuid_of(payment_id, "Payment", "paymentId"), title, tax_id, email
        )
        return InvoiceRequest.from_row(row)

    @strawberry.mutation(
        description="When the operator's barriers open for auto-pay exits (operator admins): ACCEPTED at once, or "
        "SUCCEEDED only once the deduction succeeded (the exit holds with reason awaiting_payment until then)."
    )
    async def set_auto_pay_opening(self, info: Info, opens_on: AutoPayOpensOn) -> AutoPayOpensOn:
        async with info.context.write() as session:
            value = await tenants.set_auto_pay_opening(session, info.context.principal, opens_on.value)
        return AutoPayOpensOn(value)
