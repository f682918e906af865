"""GraphQL documents and builders the supply tests share."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Caller

CREATE_LOT = "mutation($input: LotInput!) { createLot(input: $input) { id name kind code geometry } }"
CREATE_CURB = "mutation($input: CurbZoneInput!) { createCurbZone(input: $input) { id name kind code geometry } }"
CREATE_LANE = "mutation($input: LaneInput!) { createLane(input: $input) { id name direction } }"
CREATE_SPACES = "mutation($input: [SpaceInput!]!) { createSpaces(input: $input) { count spaces { id code } } }"
UPDATE_FACILITY = (
    "mutation($id: ID!, $input: UpdateFacilityInput!) { updateFacility(id: $id, input: $input) { id name } }"
)
RETIRE_FACILITY = "mutation($id: ID!) { retireFacility(id: $id) { id retiredAt } }"
UPDATE_LANE = "mutation($id: ID!, $input: UpdateLaneInput!) { updateLane(id: $id, input: $input) { id } }"
RETIRE_LANE = "mutation($id: ID!) { retireLane(id: $id) { id } }"
UPDATE_SPACE = "mutation($id: ID!, $input: UpdateSpaceInput!) { updateSpace(id: $id, input: $input) { id status } }"
RETIRE_SPACES = "mutation($ids: [ID!]!) { retireSpaces(ids: $ids) { id } }"
NODE = "query($id: ID!) { node(id: $id) { id __typename } }"


def square(lon: float, lat: float, size: float = 0.002) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]],
    }


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


async def build_site(admin: Caller, lon: float, lat: float, prefix: str, spaces: int = 3) -> dict[str, Any]:
    """A lot with an entry lane and `spaces` vacant spaces at (lon, lat), plus a curb zone beside it."""
    lot = (await admin.data(CREATE_LOT, {"input": {"name": f"{prefix} Lot", "geometry": square(lon, lat)}}))[
        "createLot"
    ]
    curb = (
        await admin.data(
            CREATE_CURB,
            {
                "input": {
                    "name": f"{prefix} Street",
                    "code": f"{prefix}-Z1",
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [[lon, lat - 0.0005], [lon + 0.002, lat - 0.0005]],
                    },
                    "side": "LEFT",
                    "parkingAngle": "PARALLEL",
                }
            },
        )
    )["createCurbZone"]
    lane = (await admin.data(CREATE_LANE, {"input": {"facilityId": lot["id"], "name": "In 1", "direction": "ENTRY"}}))[
        "createLane"
    ]
    created = await admin.data(
        CREATE_SPACES,
        {
            "input": [
                {
                    "facilityId": lot["id"],
                    "code": f"{prefix}-{index}",
                    "geometry": point(lon + 0.0002 * (index + 1), lat + 0.001),
                    "status": "VACANT",
                }
                for index in range(spaces)
            ]
        },
    )
    return {"lot": lot, "curb": curb, "lane": lane, "spaces": created["createSpaces"]["spaces"]}
