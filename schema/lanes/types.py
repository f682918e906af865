"""GraphQL types of lanes: lot sessions, lane decisions with their plate reads, exceptions (the queue's records),
lane codes, drivers' scans and auto-pay. Money is integer fen of the operator's currency."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from hub.lanes import operations as lanes
from hub.lanes.service import LaneAnswer
from schema.access.types import StandingKind, VehicleClass
from schema.context import Context, Info
from schema.loaders import by_id
from schema.relay import row_ids

if TYPE_CHECKING:
    from schema.pricing.types import TariffVersion
    from schema.supply.types import Facility, Lane

FacilityType = Annotated["Facility", strawberry.lazy("schema.supply.types")]
LaneType = Annotated["Lane", strawberry.lazy("schema.supply.types")]
TariffVersionType = Annotated["TariffVersion", strawberry.lazy("schema.pricing.types")]


@strawberry.enum
class LotSessionState(Enum):
    OPEN = "open"
    CLOSED = "closed"


@strawberry.enum(description="What the barrier does")
class BarrierDecision(Enum):
    OPEN = "open"
    HOLD = "hold"


@strawberry.enum(description="Where a passage came from")
class PassageSource(Enum):
    CAMERA = strawberry.enum_value("camera", description="The lane's cameras read the plate")
    ENTRY_CODE = strawberry.enum_value("entry_code", description="A driver's app scanned the entry lane's code")
    EXIT_CODE = strawberry.enum_value("exit_code", description="A driver's app scanned the exit lane's code")
    AGENT = strawberry.enum_value("agent", description="An agent corrected the plate and decided again")


@strawberry.enum(description="What needs a person at a lane")
class LaneExceptionKind(Enum):
    PLATE_DISAGREEMENT = "plate_disagreement"
    LOW_CONFIDENCE = "low_confidence"
    EXIT_WITHOUT_ENTRY = "exit_without_entry"
    DUPLICATE_ENTRY = "duplicate_entry"
    GATE_FAULT = "gate_fault"
    BARRIER_HELD = "barrier_held"
    RESTRICTED_PLATE = "restricted_plate"


@strawberry.enum
class LaneExceptionState(Enum):
    OPEN = "open"
    CLAIMED = "claimed"
    RESOLVED = "resolved"


# ------------------------------------------------------------------------------------------------ loaders


class LaneLoaders:
    """The request's loaders of lanes' rows by id."""

    def __init__(self, context: Context) -> None:
        self.session = by_id(context, lanes.sessions_by_ids, LotSession.from_row)
        self.decision = by_id(context, lanes.decisions_by_ids, LaneDecision.from_row)
        self.exception = by_id(context, lanes.exceptions_by_ids, LaneException.from_row)


def loaders(info: Info) -> LaneLoaders:
    return info.context.loaders.of("lanes", LaneLoaders)


async def _tariff_version(info: Info, version_id: uuid.UUID | None) -> Any:
    return None if version_id is None else await info.context.loaders.tariff_version.load(version_id)


# ------------------------------------------------------------------------------------------------- types


@strawberry.type(description="One camera's (or recognizer's) read of a vehicle at a lane")
class PlateRead:
    camera: str | None
    plate: str = strawberry.field(description="Normalized: upper case, no separators; empty when no plate was seen")
    raw_plate: str = strawberry.field(description="As the camera sent it")
    plate_valid: bool = strawberry.field(description="Whether it is a recognizable plate")
    confidence: float | None
    image: str | None = strawberry.field(description="The camera's reference to its snapshot")
    read_at: datetime | None

    @classmethod
    def of(cls, read: Mapping[str, Any]) -> PlateRead:
        read_at = read.get("read_at")
        return cls(
            camera=read.get("camera"),
            plate=read.get("plate") or "",
            raw_plate=read.get("raw_plate") or "",
            plate_valid=bool(read.get("plate_valid")),
            confidence=read.get("confidence"),
            image=read.get("image"),
            read_at=None if read_at is None else datetime.fromisoformat(read_at),
        )


@strawberry.type(description="A stay in a lot, from the entry lane's decision to the exit lane's")
class LotSession(relay.Node):
    id: relay.NodeID[str]
    plate: str | None = strawberry.field(description="Null for a vehicle that entered by the lane's code")
    state: LotSessionState
    standing: StandingKind = strawberry.field(description="The plate's standing at entry")
    vehicle_class: VehicleClass
    entered_at: datetime
    exited_at: datetime | None
    price_fen: int | None = strawberry.field(description="What the stay cost, set when it closes")
    paid_fen: int = strawberry.field(description="Paid towards the stay so far")
    paid_at: datetime | None
    close_reason: str | None = strawberry.field(
        description="Why the exit opened: whitelisted, pass, no_fee, no_tariff, paid, auto_pay"
    )
    quote: JSON | None = strawberry.field(description="The priced stay: total, segments and adjustments")
    tenant_id: strawberry.Private[uuid.UUID]
    facility_id: strawberry.Private[uuid.UUID]
    entry_lane_id: strawberry.Private[uuid.UUID]
    exit_lane_id: strawberry.Private[uuid.UUID | None]
    tariff_version_id: strawberry.Private[uuid.UUID | None]
    continues_session_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LotSession:
        return cls(
            id=str(row["id"]),
            plate=row["plate"],
            state=LotSessionState(row["state"]),
            standing=StandingKind(row["standing"]),
            vehicle_class=VehicleClass(row["vehicle_class"]),
            entered_at=row["entered_at"],
            exited_at=row["exited_at"],
            price_fen=row["price_fen"],
            paid_fen=row["paid_fen"],
            paid_at=row["paid_at"],
            close_reason=row["close_reason"],
            quote=row["quote"],
            tenant_id=row["tenant_id"],
            facility_id=row["facility_id"],
            entry_lane_id=row["entry_lane_id"],
            exit_lane_id=row["exit_lane_id"],
            tariff_version_id=row["tariff_version_id"],
            continues_session_id=row["continues_session_id"],
        )

    @strawberry.field
    async def facility(self, info: Info) -> FacilityType | None:
        return await info.context.loaders.facility.load(self.facility_id)

    @strawberry.field
    async def entry_lane(self, info: Info) -> LaneType | None:
        return await info.context.loaders.lane.load(self.entry_lane_id)

    @strawberry.field
    async def exit_lane(self, info: Info) -> LaneType | None:
        return None if self.exit_lane_id is None else await info.context.loaders.lane.load(self.exit_lane_id)

    @strawberry.field(description="The tariff version sealed at entry; null: the lot had no tariff (free)")
    async def tariff_version(self, info: Info) -> TariffVersionType | None:
        return await _tariff_version(info, self.tariff_version_id)

    @strawberry.field(description="The earlier session this re-entry continues")
    async def continues_session(self, info: Info) -> LotSession | None:
        return await loaders(info).session.load(self.continues_session_id)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[LotSession | None]:
        return await loaders(info).session.load_many(row_ids(node_ids))


@strawberry.type(description="One passage at a lane: the plate reads and the barrier's decision")
class LaneDecision(relay.Node):
    id: relay.NodeID[str]
    passage_id: str = strawberry.field(description="The gate's id of the passage (the idempotency key)")
    direction: str = strawberry.field(description="entry or exit")
    source: PassageSource
    plate: str | None = strawberry.field(description="The plate decided on; null when the reads gave none")
    reads: list[PlateRead]
    decision: BarrierDecision
    reason: str
    amount_due_fen: int | None
    passed_at: datetime = strawberry.field(description="When the vehicle was at the barrier, as the gate said")
    decided_at: datetime
    lane_id: strawberry.Private[uuid.UUID]
    facility_id: strawberry.Private[uuid.UUID]
    session_id: strawberry.Private[uuid.UUID | None]
    exception_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LaneDecision:
        return cls(
            id=str(row["id"]),
            passage_id=row["passage_id"],
            direction=row["direction"],
            source=PassageSource(row["source"]),
            plate=row["plate"],
            reads=[PlateRead.of(read) for read in row["reads"] or []],
            decision=BarrierDecision(row["decision"]),
            reason=row["reason"],
            amount_due_fen=row["amount_due_fen"],
            passed_at=row["passed_at"],
            decided_at=row["decided_at"],
            lane_id=row["lane_id"],
            facility_id=row["facility_id"],
            session_id=row["session_id"],
            exception_id=row["exception_id"],
        )

    @strawberry.field
    async def lane(self, info: Info) -> LaneType | None:
        return await info.context.loaders.lane.load(self.lane_id)

    @strawberry.field
    async def facility(self, info: Info) -> FacilityType | None:
        return await info.context.loaders.facility.load(self.facility_id)

    @strawberry.field(description="The session the decision opened, closed, priced or found inside")
    async def session(self, info: Info) -> LotSession | None:
        return await loaders(info).session.load(self.session_id)

    @strawberry.field(description="The exception the passage raised")
    async def exception(self, info: Info) -> LaneException | None:
        return await loaders(info).exception.load(self.exception_id)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[LaneDecision | None]:
        return await loaders(info).decision.load_many(row_ids(node_ids))


@strawberry.type(description="Something at a lane the machines could not decide, waiting for an agent")
class LaneException(relay.Node):
    id: relay.NodeID[str]
    kind: LaneExceptionKind
    state: LaneExceptionState
    plate: str | None
    reads: list[PlateRead] = strawberry.field(description="Every read of the passage, with its image reference")
    detail: JSON = strawberry.field(description="What else is known: the restriction's reason, the gate's fault")
    created_at: datetime = strawberry.field(description="Waiting since")
    claimed_by: str | None
    claimed_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolution: JSON | None
    facility_id: strawberry.Private[uuid.UUID]
    lane_id: strawberry.Private[uuid.UUID | None]
    session_id: strawberry.Private[uuid.UUID | None]
    decision_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LaneException:
        return cls(
            id=str(row["id"]),
            kind=LaneExceptionKind(row["kind"]),
            state=LaneExceptionState(row["state"]),
            plate=row["plate"],
            reads=[PlateRead.of(read) for read in row["reads"] or []],
            detail=row["detail"],
            created_at=row["created_at"],
            claimed_by=row["claimed_by"],
            claimed_at=row["claimed_at"],
            resolved_by=row["resolved_by"],
            resolved_at=row["resolved_at"],
            resolution=row["resolution"],
            facility_id=row["facility_id"],
            lane_id=row["lane_id"],
            session_id=row["session_id"],
            decision_id=row["decision_id"],
        )

    @strawberry.field(description="Seconds waited so far (until resolved)")
    def waiting_seconds(self, info: Info) -> int:
        until = self.resolved_at or info.context.now
        return max(0, int((until - self.created_at).total_seconds()))

    @strawberry.field
    async def facility(self, info: Info) -> FacilityType | None:
        return await info.context.loaders.facility.load(self.facility_id)

    @strawberry.field
    async def lane(self, info: Info) -> LaneType | None:
        return None if self.lane_id is None else await info.context.loaders.lane.load(self.lane_id)

    @strawberry.field
    async def session(self, info: Info) -> LotSession | None:
        return await loaders(info).session.load(self.session_id)

    @strawberry.field(description="The passage that raised it")
    async def decision(self, info: Info) -> LaneDecision | None:
        return await loaders(info).decision.load(self.decision_id)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[LaneException | None]:
        return await loaders(info).exception.load_many(row_ids(node_ids))


@strawberry.type(description="A lane's code for vehicles without a plate, to show as a QR code at the lane")
class LaneCode:
    code: str = strawberry.field(description="Stable for the lane's life; what the driver's app scans")
    link: str = strawberry.field(description="An https link carrying the code (opens the app)")
    direction: str = strawberry.field(description="entry: scan with scanEntryCode; exit: with scanExitCode")
    lane_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def lane(self, info: Info) -> LaneType | None:
        return await info.context.loaders.lane.load(self.lane_id)


@strawberry.type
class LaneReadSettings:
    read_confidence_threshold: float = strawberry.field(
        description="Every read of a passage must reach this confidence (0 to 1)"
    )
    lane_id: strawberry.Private[uuid.UUID]

    @strawberry.field
    async def lane(self, info: Info) -> LaneType | None:
        return await info.context.loaders.lane.load(self.lane_id)


@strawberry.type(description="The barrier's decision for a driver who scanned a lane's code")
class LaneScan:
    decision: BarrierDecision
    reason: str
    amount_due_fen: int | None = strawberry.field(description="At an exit: what is owed at the lane (0: nothing)")
    payment_link: str | None = strawberry.field(description="Where to pay when the exit holds for payment")
    exception_raised: bool = strawberry.field(description="An agent has been asked to look")
    session_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def of(cls, answer: LaneAnswer) -> LaneScan:
        return cls(
            decision=BarrierDecision(answer.decision),
            reason=answer.reason,
            amount_due_fen=answer.amount_due_fen,
            payment_link=answer.payment_link,
            exception_raised=answer.exception_id is not None,
            session_id=answer.session_id,
        )

    @strawberry.field(description="The driver's session at the lot")
    async def session(self, info: Info) -> LotSession | None:
        return await loaders(info).session.load(self.session_id)


@strawberry.type(description="Whether exits of a plate are charged to the driver's account (leave first, pay later)")
class AutoPayAuthorization:
    plate: str
    enabled: bool
    since: datetime | None
