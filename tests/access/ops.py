"""GraphQL documents and builders the vehicle-list tests share."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Caller
from tests.api.supply_ops import square

PASS_FIELDS = (
    "id plate holderName holderPhone validFrom validUntil weekdays windowStart windowEnd vehicleClass note "
    "revokedAt facilities { id }"
)
CREATE_PASS = f"mutation($input: VehiclePassInput!) {{ createVehiclePass(input: $input) {{ {PASS_FIELDS} }} }}"
UPDATE_PASS = (
    f"mutation($id: ID!, $input: UpdateVehiclePassInput!) {{ updateVehiclePass(id: $id, input: $input) "
    f"{{ {PASS_FIELDS} }} }}"
)
REVOKE_PASS = "mutation($id: ID!) { revokeVehiclePass(id: $id) { id revokedAt } }"
PASSES = (
    "query($plate: String, $first: Int, $after: String, $facilityId: ID, $validOn: Date, $revoked: Boolean! = false) "
    "{ vehiclePasses(plate: $plate, first: $first, after: $after, facilityId: $facilityId, validOn: $validOn, "
    f"includeRevoked: $revoked) {{ edges {{ node {{ {PASS_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
)

WHITELIST_FIELDS = "id plate category validFrom validUntil reason revokedAt facilities { id }"
CREATE_WHITELIST = (
    f"mutation($input: WhitelistEntryInput!) {{ createWhitelistEntry(input: $input) {{ {WHITELIST_FIELDS} }} }}"
)
UPDATE_WHITELIST = (
    "mutation($id: ID!, $input: UpdateWhitelistEntryInput!) { updateWhitelistEntry(id: $id, input: $input) "
    f"{{ {WHITELIST_FIELDS} }} }}"
)
REVOKE_WHITELIST = "mutation($id: ID!) { revokeWhitelistEntry(id: $id) { id revokedAt } }"
WHITELIST = (
    "query($plate: String, $category: WhitelistCategory, $facilityId: ID) { whitelistEntries(plate: $plate, "
    f"category: $category, facilityId: $facilityId) {{ edges {{ node {{ {WHITELIST_FIELDS} }} }} }} }}"
)

BLOCKLIST_FIELDS = "id plate kind reason validFrom validUntil revokedAt"
CREATE_BLOCKLIST = (
    f"mutation($input: BlocklistEntryInput!) {{ createBlocklistEntry(input: $input) {{ {BLOCKLIST_FIELDS} }} }}"
)
UPDATE_BLOCKLIST = (
    "mutation($id: ID!, $input: UpdateBlocklistEntryInput!) { updateBlocklistEntry(id: $id, input: $input) "
    f"{{ {BLOCKLIST_FIELDS} }} }}"
)
REVOKE_BLOCKLIST = "mutation($id: ID!) { revokeBlocklistEntry(id: $id) { id revokedAt } }"
BLOCKLIST = (
    "query($plate: String, $kind: BlocklistKind) { blocklistEntries(plate: $plate, kind: $kind) "
    f"{{ edges {{ node {{ {BLOCKLIST_FIELDS} }} }} }} }}"
)

STANDING = (
    "query($facilityId: ID!, $plate: String!, $at: DateTime) { vehicleStanding(facilityId: $facilityId, "
    "plate: $plate, at: $at) { kind list entryId reason category vehicleClass until idlePassId } }"
)
IMPORT = (
    "mutation($kind: VehicleListKind!, $csv: String!, $dryRun: Boolean! = false) { importVehicleList(kind: $kind, "
    "csv: $csv, dryRun: $dryRun) { kind dryRun rowsRead validRows imported errorCount errorsTruncated "
    "errors { row field code message } } }"
)
NODE = "query($id: ID!) { node(id: $id) { id __typename } }"


async def create_lot(admin: Caller, code: str, zone: str, lon: float, lat: float) -> dict[str, Any]:
    document = "mutation($input: LotInput!) { createLot(input: $input) { id code timeZone } }"
    variables = {"input": {"name": f"Lot {code}", "code": code, "timeZone": zone, "geometry": square(lon, lat)}}
    return (await admin.data(document, variables))["createLot"]


def november_pass(plate: str = "粤B12345", **fields: Any) -> dict[str, Any]:
    return {"plate": plate, "validFrom": "2026-11-01", "validUntil": "2026-11-30", **fields}


async def errors_of(caller: Caller, document: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
    body = await caller.post(document, variables)
    assert body.get("errors"), f"expected an error, got {body}"
    return body["errors"]


async def count_passes(caller: Caller, plate: str | None = None) -> int:
    page = await caller.data(PASSES, {"plate": plate, "first": 100, "revoked": True})
    return len(page["vehiclePasses"]["edges"])
