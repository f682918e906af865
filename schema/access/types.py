"""GraphQL types of the vehicle lists: passes, whitelist and blocklist entries, a plate's standing, and the
report of a CSV import."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay

from hub.access import rules, service
from hub.access.rules import ListKind
from schema.context import Info
from schema.relay import row_ids

if TYPE_CHECKING:
    from schema.supply.types import Facility

FacilityType = Annotated["Facility", strawberry.lazy("schema.supply.types")]


@strawberry.enum(description="The vehicle lists of an operator")
class VehicleListKind(Enum):
    PASS = "pass"
    WHITELIST = "whitelist"
    BLOCKLIST = "blocklist"


@strawberry.enum(description="The vehicle classes tariffs price")
class VehicleClass(Enum):
    SMALL = "small"
    STANDARD = "standard"
    LARGE = "large"
    NEW_ENERGY = "new_energy"


@strawberry.enum
class WhitelistCategory(Enum):
    OFFICIAL = "official"
    VIP = "vip"
    RESERVED = "reserved"
    TEAM = "team"


@strawberry.enum
class BlocklistKind(Enum):
    BLACKLIST = strawberry.enum_value("blacklist", description="Never enters")
    RESTRICTED = strawberry.enum_value("restricted", description="Entry waits for an agent's decision")


@strawberry.enum(description="What the lists say about a plate at a facility, in order of precedence")
class StandingKind(Enum):
    BLACKLISTED = "blacklisted"
    RESTRICTED = "restricted"
    WHITELISTED = "whitelisted"
    PASS_HOLDER = "pass_holder"
    VISITOR = "visitor"


async def _facilities(info: Info, facility_ids: list[uuid.UUID] | None) -> list[Any] | None:
    if facility_ids is None:
        return None
    found = await info.context.loaders.facility.load_many(facility_ids)
    return [facility for facility in found if facility is not None]


async def _nodes(info: Info, kind: ListKind, node_ids: Iterable[str], build: Any) -> list[Any]:
    ids = row_ids(node_ids)
    wanted = [entry_id for entry_id in ids if entry_id is not None]
    async with info.context.read() as session:
        rows = await service.entries_by_ids(session, info.context.principal, kind, wanted)
    found = {row["id"]: build(row) for row in rows}
    return [found.get(entry_id) if entry_id is not None else None for entry_id in ids]


@strawberry.type(
    description="A monthly (or any-term) pass. Dates, weekdays and the daily window are read in the time zone of "
    "the facility where the vehicle is; a window ending before it starts runs past midnight, and that part "
    "belongs to the day it started."
)
class VehiclePass(relay.Node):
    id: relay.NodeID[str]
    plate: str = strawberry.field(description="Normalized: upper case, no separators")
    holder_name: str | None
    holder_phone: str | None
    valid_from: date
    valid_until: date = strawberry.field(description="The last valid day (inclusive)")
    weekdays: list[int] = strawberry.field(description="ISO weekdays: 1 = Monday ... 7 = Sunday")
    window_start: str | None = strawberry.field(description="HH:MM; null with windowEnd: all day")
    window_end: str | None = strawberry.field(description="HH:MM; before windowStart: runs past midnight")
    vehicle_class: VehicleClass
    note: str | None
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None
    facility_ids: strawberry.Private[list[uuid.UUID] | None]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> VehiclePass:
        window_start, window_end = row["window_start"], row["window_end"]
        return cls(
            id=str(row["id"]),
            plate=row["plate"],
            holder_name=row["holder_name"],
            holder_phone=row["holder_phone"],
            valid_from=row["valid_from"],
            valid_until=row["valid_until"],
            weekdays=list(row["weekdays"]),
            window_start=None if window_start is None else rules.format_time_of_day(window_start),
            window_end=None if window_end is None else rules.format_time_of_day(window_end),
            vehicle_class=VehicleClass(row["vehicle_class"]),
            note=row["note"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            revoked_at=row["revoked_at"],
            facility_ids=row["facility_ids"],
        )

    @strawberry.field(description="The facilities the pass covers; null: every facility of the operator")
    async def facilities(self, info: Info) -> list[FacilityType] | None:
        return await _facilities(info, self.facility_ids)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[VehiclePass | None]:
        return await _nodes(info, "pass", node_ids, cls.from_row)


@strawberry.type(description="A plate let in and out free at some or all of the operator's facilities")
class WhitelistEntry(relay.Node):
    id: relay.NodeID[str]
    plate: str
    category: WhitelistCategory
    valid_from: date | None
    valid_until: date | None = strawberry.field(description="The last valid day (inclusive); null: open-ended")
    reason: str | None
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None
    facility_ids: strawberry.Private[list[uuid.UUID] | None]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> WhitelistEntry:
        return cls(
            id=str(row["id"]),
            plate=row["plate"],
            category=WhitelistCategory(row["category"]),
            valid_from=row["valid_from"],
            valid_until=row["valid_until"],
            reason=row["reason"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            revoked_at=row["revoked_at"],
            facility_ids=row["facility_ids"],
        )

    @strawberry.field(description="The facilities the entry covers; null: every facility of the operator")
    async def facilities(self, info: Info) -> list[FacilityType] | None:
        return await _facilities(info, self.facility_ids)

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[WhitelistEntry | None]:
        return await _nodes(info, "whitelist", node_ids, cls.from_row)


@strawberry.type(description="A plate refused (blacklist) or held for an agent (restricted) at every facility")
class BlocklistEntry(relay.Node):
    id: relay.NodeID[str]
    plate: str
    kind: BlocklistKind
    reason: str
    valid_from: date | None
    valid_until: date | None = strawberry.field(description="The last valid day (inclusive); null: open-ended")
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> BlocklistEntry:
        return cls(
            id=str(row["id"]),
            plate=row["plate"],
            kind=BlocklistKind(row["kind"]),
            reason=row["reason"],
            valid_from=row["valid_from"],
            valid_until=row["valid_until"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            revoked_at=row["revoked_at"],
        )

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[BlocklistEntry | None]:
        return await _nodes(info, "blocklist", node_ids, cls.from_row)


NODE_TYPES: dict[ListKind, str] = {"pass": "VehiclePass", "whitelist": "WhitelistEntry", "blocklist": "BlocklistEntry"}


def global_id(kind: ListKind | None, entry_id: uuid.UUID | None) -> relay.GlobalID | None:
    return None if kind is None or entry_id is None else relay.GlobalID(NODE_TYPES[kind], str(entry_id))


@strawberry.type(description="What the operator's lists say about a plate at one facility and instant")
class VehicleStanding:
    kind: StandingKind
    list: VehicleListKind | None = strawberry.field(description="The deciding entry's list; null for a visitor")
    entry_id: relay.GlobalID | None = strawberry.field(description="The deciding entry; null for a visitor")
    reason: str | None
    category: WhitelistCategory | None
    vehicle_class: VehicleClass | None = strawberry.field(description="The deciding pass's vehicle class")
    until: datetime | None = strawberry.field(
        description="When this standing ends by itself: the end of the pass's current window, or the end of the "
        "entry's last valid day; null when open-ended"
    )
    idle_pass_id: relay.GlobalID | None = strawberry.field(
        description="For a visitor: a pass at this facility whose dates include today but which does not cover "
        "this instant (another weekday, or outside its daily window)"
    )

    @classmethod
    def of(cls, standing: rules.Standing) -> VehicleStanding:
        return cls(
            kind=StandingKind(standing.kind),
            list=None if standing.list is None else VehicleListKind(standing.list),
            entry_id=global_id(standing.list, standing.entry_id),
            reason=standing.reason,
            category=None if standing.category is None else WhitelistCategory(standing.category),
            vehicle_class=None if standing.vehicle_class is None else VehicleClass(standing.vehicle_class),
            until=standing.until,
            idle_pass_id=global_id("pass", standing.idle_pass_id),
        )


@strawberry.type(description="One problem of an imported file")
class VehicleListImportError:
    row: int = strawberry.field(description="As a spreadsheet numbers it: the header is row 1")
    field: str | None = strawberry.field(description="The column, when the problem is in one")
    code: str
    message: str


@strawberry.type
class VehicleListImportReport:
    kind: VehicleListKind
    dry_run: bool
    rows_read: int = strawberry.field(description="Entry rows in the file (blank lines not counted)")
    valid_rows: int = strawberry.field(description="Rows without any problem")
    imported: int = strawberry.field(description="Rows written: 0 on a dry run or when any row has a problem")
    error_count: int = strawberry.field(description="Every problem found")
    errors_truncated: bool = strawberry.field(description="errors lists only the first 1,000")
    errors: list[VehicleListImportError]

    @classmethod
    def of(cls, report: service.ImportReport) -> VehicleListImportReport:
        return cls(
            kind=VehicleListKind(report.kind),
            dry_run=report.dry_run,
            rows_read=report.rows_read,
            valid_rows=report.valid_rows,
            imported=report.imported,
            error_count=report.error_count,
            errors_truncated=report.errors_truncated,
            errors=[
                VehicleListImportError(row=error.row, field=error.field, code=error.code, message=error.message)
                for error in report.errors
            ],
        )
