"""Vehicle lists for operators: admins create, change, revoke and import entries; staff read them and check a
plate's standing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub.access import csvfile, service
from hub.access.rules import ListKind
from schema.access.inputs import (
    BlocklistEntryInput,
    UpdateBlocklistEntryInput,
    UpdateVehiclePassInput,
    UpdateWhitelistEntryInput,
    VehiclePassInput,
    WhitelistEntryInput,
    entry_fields,
)
from schema.access.types import (
    BlocklistEntry,
    BlocklistKind,
    VehicleListImportReport,
    VehicleListKind,
    VehiclePass,
    VehicleStanding,
    WhitelistCategory,
    WhitelistEntry,
)
from schema.context import Info
from schema.relay import check_first, connection, decode_cursor, uuid_of


async def _page(
    info: Info, kind: ListKind, build: Callable[[Any], Any], first: int | None, after: str | None, **criteria: Any
) -> Any:
    page_size = check_first(first)
    async with info.context.read() as session:
        rows = await service.entries_page(
            session, info.context.principal, kind, first=page_size, after=decode_cursor(after), **criteria
        )
    return connection(rows, page_size, after is not None, build, "plate")


def _facility(facility_id: relay.GlobalID | None) -> uuid.UUID | None:
    return None if facility_id is None else uuid_of(facility_id, "Facility", "facilityId")


@strawberry.type
class AccessQuery:
    @strawberry.field(description="The operator's passes by plate (operator staff and admins).")
    async def vehicle_passes(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        plate: Annotated[str | None, strawberry.argument(description="Any way of writing the plate")] = None,
        facility_id: Annotated[relay.GlobalID | None, strawberry.argument(description="Covering it")] = None,
        valid_on: Annotated[date | None, strawberry.argument(description="Valid on this day")] = None,
        include_revoked: bool = False,
    ) -> relay.Connection[VehiclePass]:
        return await _page(
            info,
            "pass",
            VehiclePass.from_row,
            first,
            after,
            plate=plate,
            facility_id=_facility(facility_id),
            valid_on=valid_on,
            include_revoked=include_revoked,
        )

    @strawberry.field(description="The operator's whitelist by plate (operator staff and admins).")
    async def whitelist_entries(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        plate: str | None = None,
        facility_id: relay.GlobalID | None = None,
        category: WhitelistCategory | None = None,
        valid_on: date | None = None,
        include_revoked: bool = False,
    ) -> relay.Connection[WhitelistEntry]:
        return await _page(
            info,
            "whitelist",
            WhitelistEntry.from_row,
            first,
            after,
            plate=plate,
            facility_id=_facility(facility_id),
            category=category.value if category else None,
            valid_on=valid_on,
            include_revoked=include_revoked,
        )

    @strawberry.field(description="The operator's blacklisted and restricted plates (operator staff and admins).")
    async def blocklist_entries(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        plate: str | None = None,
        kind: BlocklistKind | None = None,
        valid_on: date | None = None,
        include_revoked: bool = False,
    ) -> relay.Connection[BlocklistEntry]:
        return await _page(
            info,
            "blocklist",
            BlocklistEntry.from_row,
            first,
            after,
            plate=plate,
            blocklist_kind=kind.value if kind else None,
            valid_on=valid_on,
            include_revoked=include_revoked,
        )

    @strawberry.field(
        description="What the lists say about a plate at a facility at an instant (now by default): BLACKLISTED > "
        "RESTRICTED > WHITELISTED > PASS_HOLDER > VISITOR, the first that applies."
    )
    async def vehicle_standing(
        self, info: Info, facility_id: relay.GlobalID, plate: str, at: datetime | None = None
    ) -> VehicleStanding:
        facility = uuid_of(facility_id, "Facility", "facilityId")
        async with info.context.read() as session:
            standing = await service.vehicle_standing(session, info.context.principal, facility, plate, at)
        return VehicleStanding.of(standing)


async def _write(info: Info, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    async with info.context.write() as session:
        return await action(session, info.context.principal, *args, **kwargs)


IMPORT_DESCRIPTION = f"""Import a vehicle list from CSV text: up to {csvfile.MAX_ROWS:,} rows, all or nothing. \
Every row is checked, including duplicates within the file and against the live entries (an entry overlapping \
another of the same plate on the same list); if any row has a problem nothing is written and the report lists \
every problem (the first 1,000, with the count). dryRun checks without writing. UTF-8, comma-separated, header \
row required; column names ignore case; optional columns may be left out; empty cells are absent values.

PASS columns:
{csvfile.describe_columns("pass")}

WHITELIST columns:
{csvfile.describe_columns("whitelist")}

BLOCKLIST columns:
{csvfile.describe_columns("blocklist")}"""


@strawberry.type
class AccessMutation:
    @strawberry.mutation(description="Sell or grant a pass (operator admins). DUPLICATE_ENTRY when it overlaps one.")
    async def create_vehicle_pass(self, info: Info, input: VehiclePassInput) -> VehiclePass:
        return VehiclePass.from_row(await _write(info, service.create_entry, "pass", entry_fields(input)))

    @strawberry.mutation(description="Change a live pass; the whole pass is checked again.")
    async def update_vehicle_pass(self, info: Info, id: relay.GlobalID, input: UpdateVehiclePassInput) -> VehiclePass:
        entry_id = uuid_of(id, "VehiclePass")
        return VehiclePass.from_row(await _write(info, service.update_entry, "pass", entry_id, entry_fields(input)))

    @strawberry.mutation(description="End a pass now (kept, revoked, for the record).")
    async def revoke_vehicle_pass(self, info: Info, id: relay.GlobalID) -> VehiclePass:
        return VehiclePass.from_row(await _write(info, service.revoke_entry, "pass", uuid_of(id, "VehiclePass")))

    @strawberry.mutation(description="Whitelist a plate (operator admins). DUPLICATE_ENTRY when it overlaps one.")
    async def create_whitelist_entry(self, info: Info, input: WhitelistEntryInput) -> WhitelistEntry:
        return WhitelistEntry.from_row(await _write(info, service.create_entry, "whitelist", entry_fields(input)))

    @strawberry.mutation
    async def update_whitelist_entry(
        self, info: Info, id: relay.GlobalID, input: UpdateWhitelistEntryInput
    ) -> WhitelistEntry:
        entry_id = uuid_of(id, "WhitelistEntry")
        row = await _write(info, service.update_entry, "whitelist", entry_id, entry_fields(input))
        return WhitelistEntry.from_row(row)

    @strawberry.mutation
    async def revoke_whitelist_entry(self, info: Info, id: relay.GlobalID) -> WhitelistEntry:
        row = await _write(info, service.revoke_entry, "whitelist", uuid_of(id, "WhitelistEntry"))
        return WhitelistEntry.from_row(row)

    @strawberry.mutation(
        description="Blacklist or restrict a plate (operator admins). DUPLICATE_ENTRY when it overlaps one."
    )
    async def create_blocklist_entry(self, info: Info, input: BlocklistEntryInput) -> BlocklistEntry:
        return BlocklistEntry.from_row(await _write(info, service.create_entry, "blocklist", entry_fields(input)))

    @strawberry.mutation
    async def update_blocklist_entry(
        self, info: Info, id: relay.GlobalID, input: UpdateBlocklistEntryInput
    ) -> BlocklistEntry:
        entry_id = uuid_of(id, "BlocklistEntry")
        row = await _write(info, service.update_entry, "blocklist", entry_id, entry_fields(input))
        return BlocklistEntry.from_row(row)

    @strawberry.mutation
    async def revoke_blocklist_entry(self, info: Info, id: relay.GlobalID) -> BlocklistEntry:
        row = await _write(info, service.revoke_entry, "blocklist", uuid_of(id, "BlocklistEntry"))
        return BlocklistEntry.from_row(row)

    @strawberry.mutation(description=IMPORT_DESCRIPTION)
    async def import_vehicle_list(
        self, info: Info, kind: VehicleListKind, csv: str, dry_run: bool = False
    ) -> VehicleListImportReport:
        report = await _write(info, service.import_list, kind.value, csv, dry_run=dry_run)
        return VehicleListImportReport.of(report)
