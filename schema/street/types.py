"""GraphQL types of on-street sessions: sessions with their actions (what each start, extension and ending cost or
gave back), the result of a driver's request, and enforcement flags. Money is integer fen of the operator's
currency."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from hub.street import rules, service
from schema.access.types import VehicleClass
from schema.context import Context, Info
from schema.loaders import by_id
from schema.relay import row_ids

if TYPE_CHECKING:
    from schema.pricing.types import TariffVersion
    from schema.supply.types import Facility, Space

FacilityType = Annotated["Facility", strawberry.lazy("schema.supply.types")]
SpaceType = Annotated["Space", strawberry.lazy("schema.supply.types")]
TariffVersionType = Annotated["TariffVersion", strawberry.lazy("schema.pricing.types")]


@strawberry.enum(description="Where a street session is in its life")
class StreetSessionState(Enum):
    ACTIVE = strawberry.enum_value("active", description="Running as started")
    EXTENDED = strawberry.enum_value("extended", description="Running, with more time bought since the start")
    ENDED_EARLY = strawberry.enum_value("ended_early", description="The driver ended it before the paid end")
    EXPIRED = strawberry.enum_value("expired", description="The paid time ran out")
    ENDED_BY_SENSOR = strawberry.enum_value("ended_by_sensor", description="The bay's sensor saw the car leave")
    ENDED_BY_DRIVER = strawberry.enum_value("ended_by_driver", description="The driver ended an auto-pay session")
    PAYMENT_FAILED = strawberry.enum_value(
        "payment_failed", description="Its prepayment failed, so no time was paid for: ended when that was known"
    )


@strawberry.enum
class StreetPaymentMode(Enum):
    PREPAID = strawberry.enum_value("prepaid", description="A duration bought at the start; refunded if ended early")
    POSTPAID = strawberry.enum_value("postpaid", description="Auto-pay: priced and charged when it ends")


@strawberry.enum
class StreetSessionOrigin(Enum):
    DRIVER = strawberry.enum_value("driver", description="A driver started it by space code")
    CAMERA = strawberry.enum_value("camera", description="A curb camera saw a plate with auto-pay")


@strawberry.enum
class StreetSessionActionKind(Enum):
    START = "start"
    EXTEND = "extend"
    END = "end"
    EXPIRE = "expire"
    CAMERA_START = "camera_start"
    SENSOR_END = "sensor_end"
    PAYMENT_FAILED = strawberry.enum_value(
        "payment_failed", description="A purchase's prepayment failed: the minutes it bought were taken back"
    )


@strawberry.enum(description="Why an enforcement flag is over")
class EnforcementResolution(Enum):
    SESSION_STARTED = "session_started"
    VACATED = "vacated"
    STATUS_CHANGED = strawberry.enum_value("status_changed", description="Retired, reserved or out of service")


# ------------------------------------------------------------------------------------------------ loaders


class StreetLoaders:
    def __init__(self, context: Context) -> None:
        async def actions(ids: list[uuid.UUID]) -> list[list[StreetSessionAction]]:
            async with context.read() as session:
                found = await service.actions_of_sessions(session, context.principal, ids)
            return [[StreetSessionAction.from_row(row) for row in found.get(row_id, [])] for row_id in ids]

        self.session = by_id(
            context, service.sessions_by_ids, lambda row: StreetSession.from_row(row, service.now_utc())
        )
        self.actions: DataLoader[uuid.UUID, list[StreetSessionAction]] = DataLoader(load_fn=actions)
        self.flag = by_id(context, service.flags_by_ids, EnforcementFlag.from_row)


def loaders(info: Info) -> StreetLoaders:
    return info.context.loaders.of("street", StreetLoaders)


# ------------------------------------------------------------------------------------------------- types


@strawberry.type(description="One thing that happened to a street session, and the money it moves")
class StreetSessionAction:
    kind: StreetSessionActionKind
    at: datetime
    minutes: int | None = strawberry.field(description="Bought by a start or an extension")
    paid_until: datetime | None = strawberry.field(description="The paid end after this action (prepaid)")
    charge_fen: int = strawberry.field(
        description="What the driver owes for this action: a start's price, what an extension adds, an auto-pay "
        "session's price when it ends"
    )
    refund_fen: int = strawberry.field(description="What ending early gives back: paid minus the true price")

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StreetSessionAction:
        return cls(
            kind=StreetSessionActionKind(row["kind"]),
            at=row["at"],
            minutes=row["minutes"],
            paid_until=row["paid_until"],
            charge_fen=row["charge_fen"],
            refund_fen=row["refund_fen"],
        )


@strawberry.type(
    description="A car's stay in one curb bay: prepaid by a driver, or started by a curb camera for a plate "
    "with auto-pay"
)
class StreetSession(relay.Node):
    id: relay.NodeID[str]
    plate: str = strawberry.field(description="As cameras read plates: upper case, no separators")
    space_code: str = strawberry.field(description="The bay's code when the session started")
    vehicle_class: VehicleClass
    payment_mode: StreetPaymentMode
    origin: StreetSessionOrigin
    state: StreetSessionState = strawberry.field(
        description="As of now: a prepaid session whose paid time ran out reads EXPIRED"
    )
    active: bool = strawberry.field(description="Still holding the bay")
    started_at: datetime
    paid_until: datetime | None = strawberry.field(description="Prepaid: the end of the time bought")
    ended_at: datetime | None
    prepaid_minutes: int = strawberry.field(description="Prepaid: minutes bought, extensions included")
    paid_fen: int = strawberry.field(description="Prepaid: what the time bought cost, extensions included")
    price_fen: int | None = strawberry.field(description="Once ended: the true price of the time parked")
    refund_fen: int | None = strawberry.field(description="Prepaid, once ended: paid minus the true price, never < 0")
    charge_fen: int | None = strawberry.field(description="Postpaid, once ended: the charge pending")
    currency: str = strawberry.field(description="ISO 4217 code of the operator's currency")
    quote: JSON | None = strawberry.field(
        description="The latest pricing, itemized: of the time bought while running, of the true time once ended"
    )
    tenant_id: strawberry.Private[uuid.UUID]
    space_id: strawberry.Private[uuid.UUID]
    facility_id: strawberry.Private[uuid.UUID]
    tariff_version_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Mapping[str, Any], now: datetime) -> StreetSession:
        state = rules.effective_state(row["state"], row["payment_mode"], row["paid_until"], now)
        expired_now = state == rules.EXPIRED and row["state"] != rules.EXPIRED
        return cls(
            id=str(row["id"]),
            plate=row["plate"],
            space_code=row["space_code"],
            vehicle_class=VehicleClass(row["vehicle_class"]),
            payment_mode=StreetPaymentMode(row["payment_mode"]),
            origin=StreetSessionOrigin(row["origin"]),
            state=StreetSessionState(state),
            active=rules.is_open(state),
            started_at=row["started_at"],
            paid_until=row["paid_until"],
            # Expired but not written yet: it ended at its paid end, at the price paid, refunding nothing.
            ended_at=row["paid_until"] if expired_now else row["ended_at"],
            prepaid_minutes=row["prepaid_minutes"],
            paid_fen=row["paid_fen"],
            price_fen=row["paid_fen"] if expired_now else row["price_fen"],
            refund_fen=0 if expired_now else row["refund_fen"],
            charge_fen=row["charge_fen"],
            currency=row["currency"],
            quote=row["quote"],
            tenant_id=row["tenant_id"],
            space_id=row["space_id"],
            facility_id=row["facility_id"],
            tariff_version_id=row["tariff_version_id"],
        )

    @strawberry.field(description="Null when the bay is no longer visible to you (e.g. retired)")
    async def space(self, info: Info) -> SpaceType | None:
        return await info.context.loaders.space.load(self.space_id)

    @strawberry.field
    async def facility(self, info: Info) -> FacilityType | None:
        return await info.context.loaders.facility.load(self.facility_id)

    @strawberry.field(description="The tariff version sealed at the start")
    async def tariff_version(self, info: Info) -> TariffVersionType | None:
        return await info.context.loaders.tariff_version.load(self.tariff_version_id)

    @strawberry.field(description="What happened to the session, oldest first")
    async def actions(self, info: Info) -> list[StreetSessionAction]:
        return await loaders(info).actions.load(uuid.UUID(str(self.id)))

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[StreetSession | None]:
        return await loaders(info).session.load_many(row_ids(node_ids))


@strawberry.type(description="What a driver's start, extension or ending did")
class StreetSessionResult:
    session: StreetSession
    action: StreetSessionAction = strawberry.field(
        description="This request's action, with what it costs (chargeFen) or gives back (refundFen)"
    )
    replayed: bool = strawberry.field(
        description="True when the idempotency key was seen before: nothing new happened, nothing charged again"
    )

    @classmethod
    def of(cls, change: service.Change) -> StreetSessionResult:
        return cls(
            session=StreetSession.from_row(change.session, service.now_utc()),
            action=StreetSessionAction.from_row(change.action),
            replayed=change.replayed,
        )


@strawberry.type(description="An occupied curb bay with no session for longer than the grace, for enforcement")
class EnforcementFlag(relay.Node):
    id: relay.NodeID[str]
    space_code: str
    occupied_since: datetime = strawberry.field(description="When the bay's sensor reported the car")
    unpaid_since: datetime = strawberry.field(description="Since when no session covers it")
    raised_at: datetime
    resolved_at: datetime | None
    resolution: EnforcementResolution | None
    space_id: strawberry.Private[uuid.UUID]
    facility_id: strawberry.Private[uuid.UUID]
    session_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EnforcementFlag:
        return cls(
            id=str(row["id"]),
            space_code=row["space_code"],
            occupied_since=row["occupied_since"],
            unpaid_since=row["unpaid_since"],
            raised_at=row["raised_at"],
            resolved_at=row["resolved_at"],
            resolution=None if row["resolution"] is None else EnforcementResolution(row["resolution"]),
            space_id=row["space_id"],
            facility_id=row["facility_id"],
            session_id=row["session_id"],
        )

    @strawberry.field
    def open(self) -> bool:
        return self.resolved_at is None

    @strawberry.field
    async def space(self, info: Info) -> SpaceType | None:
        return await info.context.loaders.space.load(self.space_id)

    @strawberry.field
    async def facility(self, info: Info) -> FacilityType | None:
        return await info.context.loaders.facility.load(self.facility_id)

    @strawberry.field(description="The session whose start resolved it")
    async def session(self, info: Info) -> StreetSession | None:
        return await loaders(info).session.load(self.session_id)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[EnforcementFlag | None]:
        return await loaders(info).flag.load_many(row_ids(node_ids))


@strawberry.input(
    description="A prepaid session by space code. Name the bay by spaceId (from find-a-space), or by operator "
    "(the operator's slug) and spaceCode, as the sign beside the bay shows them: codes are unique per operator."
)
class StartStreetSessionInput:
    space_id: relay.GlobalID | None = None
    operator: str | None = strawberry.field(default=None, description="The operator's slug, as on the sign")
    space_code: str | None = strawberry.field(default=None, description="The code painted on the bay")
    plate: str
    duration_minutes: int = strawberry.field(
        description="Whole steps of the zone tariff's billing increment (INVALID_DURATION says which), up to a day"
    )
    vehicle_class: VehicleClass = VehicleClass.STANDARD
    idempotency_key: str | None = strawberry.field(
        default=None, description="Retrying with the same key returns the first answer and charges nothing again"
    )
