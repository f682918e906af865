"""Pass sales: operators define pass offers (admins create and change them, staff read them), anyone lists the
offers on sale at a facility, and drivers buy a month of one for a plate. Resolvers are thin: hub.access.offers and
hub.payments.passes do the work."""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry
from strawberry import relay

from hub.access import offers
from hub.payments import passes
from hub.payments import service as payments
from schema.access.inputs import entry_fields
from schema.context import Info
from schema.passes.types import PassOffer, PassOfferInput, UpdatePassOfferInput
from schema.payments.types import Payment
from schema.relay import uuid_of


def _offer_fields(value: Any) -> dict[str, Any]:
    fields = entry_fields(value)
    if fields.get("facility_ids", strawberry.UNSET) is None:
        fields["facility_ids"] = []  # an offer always names its facilities: refused as empty
    return fields


@strawberry.type
class PassesQuery:
    @strawberry.field(description="The pass offers on sale at a facility, cheapest first (anyone).")
    async def pass_offers(self, info: Info, facility_id: relay.GlobalID) -> list[PassOffer]:
        facility = uuid_of(facility_id, "Facility", "facilityId")
        async with info.context.read() as session:
            rows = await offers.offers_at_facility(session, facility)
        return [PassOffer.from_row(row) for row in rows]

    @strawberry.field(description="The operator's pass offers by name (operator staff).")
    async def operator_pass_offers(self, info: Info, include_off_sale: bool = True) -> list[PassOffer]:
        async with info.context.read() as session:
            rows = await offers.operator_offers(session, info.context.principal, include_off_sale)
        return [PassOffer.from_row(row) for row in rows]


@strawberry.type
class PassesMutation:
    @strawberry.mutation(description="Define a pass offer (operator admins).")
    async def create_pass_offer(self, info: Info, input: PassOfferInput) -> PassOffer:
        async with info.context.write() as session:
            row = await offers.create_offer(session, info.context.principal, _offer_fields(input))
        return PassOffer.from_row(row)

    @strawberry.mutation(
        description="Change a pass offer (operator admins): the fields given; onSale false takes it off sale. "
        "Passes already sold keep their terms."
    )
    async def update_pass_offer(self, info: Info, id: relay.GlobalID, input: UpdatePassOfferInput) -> PassOffer:
        offer_id = uuid_of(id, "PassOffer")
        async with info.context.write() as session:
            row = await offers.update_offer(session, info.context.principal, offer_id, _offer_fields(input))
        return PassOffer.from_row(row)

    @strawberry.mutation(
        description="Buy one calendar month of a pass offer for a plate from startsOn (drivers): a payment of the "
        "offer's price (purpose pass). When it succeeds the plate's pass exists; a failed payment makes none. The "
        "same idempotencyKey again returns the same payment."
    )
    async def buy_pass(
        self, info: Info, offer_id: relay.GlobalID, plate: str, starts_on: date, idempotency_key: str
    ) -> Payment:
        row = await passes.buy_pass(
            info.context.db,
            info.context.principal,
            offer_id=uuid_of(offer_id, "PassOffer", "offerId"),
            plate=plate,
            starts_on=starts_on,
            idempotency_key=idempotency_key,
            now=payments.now_utc(),
        )
        return Payment.from_row(row)
