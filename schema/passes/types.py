"""GraphQL types and inputs of pass offers (monthly passes operators sell to drivers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from hub.access import offers, rules
from schema.access.inputs import FACILITIES, WEEKDAYS, WINDOW_END, WINDOW_START
from schema.access.types import FacilityType, _facilities
from schema.context import Info
from schema.relay import row_ids

UNSET = strawberry.UNSET


@strawberry.type(
    description="A monthly pass an operator sells: one calendar month from the day a driver chooses, at its "
    "facilities, on its weekdays and within its daily window (read in the facility's zone), for its price."
)
class PassOffer(relay.Node):
    id: relay.NodeID[str]
    name: str
    price_fen: int = strawberry.field(description="The price of one calendar month, in fen")
    currency: str
    weekdays: list[int] = strawberry.field(description="ISO weekdays: 1 = Monday ... 7 = Sunday")
    window_start: str | None = strawberry.field(description="HH:MM; null with windowEnd: all day")
    window_end: str | None = strawberry.field(description="HH:MM; before windowStart: runs past midnight")
    on_sale: bool
    created_at: datetime
    updated_at: datetime
    facility_ids: strawberry.Private[list[uuid.UUID]]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PassOffer:
        start, end = row["window_start"], row["window_end"]
        return cls(
            id=str(row["id"]),
            name=row["name"],
            price_fen=row["price_fen"],
            currency=row["currency"],
            weekdays=list(row["weekdays"]),
            window_start=None if start is None else rules.format_time_of_day(start),
            window_end=None if end is None else rules.format_time_of_day(end),
            on_sale=row["on_sale"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            facility_ids=list(row["facility_ids"]),
        )

    @strawberry.field(description="The facilities the passes it sells cover")
    async def facilities(self, info: Info) -> list[FacilityType]:
        return await _facilities(info, self.facility_ids) or []

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[PassOffer | None]:
        ids = row_ids(node_ids)
        async with info.context.read() as session:
            rows = await offers.offers_by_ids(session, [offer_id for offer_id in ids if offer_id is not None])
        found = {row["id"]: cls.from_row(row) for row in rows}
        return [found.get(offer_id) if offer_id is not None else None for offer_id in ids]


@strawberry.input
class PassOfferInput:
    name: str
    facility_ids: list[relay.GlobalID] = strawberry.field(description="At least one of the operator's facilities")
    price_fen: int = strawberry.field(description="The price of one calendar month, in fen")
    weekdays: list[int] | None = strawberry.field(default=None, description=WEEKDAYS)
    window_start: str | None = strawberry.field(default=None, description=WINDOW_START)
    window_end: str | None = strawberry.field(default=None, description=WINDOW_END)
    on_sale: bool = True


@strawberry.input
class UpdatePassOfferInput:
    name: str | None = UNSET
    facility_ids: list[relay.GlobalID] | None = strawberry.field(default=UNSET, description=FACILITIES)
    price_fen: int | None = UNSET
    weekdays: list[int] | None = UNSET
    window_start: str | None = UNSET
    window_end: str | None = UNSET
    on_sale: bool | None = UNSET
