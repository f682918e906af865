from tests.api.conftest import SHENZHEN_LOT, Callers

CREATE_LOT = """
mutation($input: LotInput!) { createLot(input: $input) { id name kind geometry operator { slug } } }
"""
CREATE_SPACES = """
mutation($input: [SpaceInput!]!) { createSpaces(input: $input) { count spaces { id code status } } }
"""
NEAR = """
query($lon: Float!, $lat: Float!) {
  spacesNear(lon: $lon, lat: $lat, radiusMeters: 500, first: 5) {
    distanceMeters space { code status facility { name } } facility { name } operator { name }
  }
}
"""


async def test_operator_builds_a_lot_and_a_driver_finds_it(callers: Callers) -> None:
    admin = await callers.operator()
    lot = (await admin.data(CREATE_LOT, {"input": {"name": "Smoke Lot", "geometry": SHENZHEN_LOT}}))["createLot"]
    assert lot["kind"] == "LOT"
    spaces = [
        {
            "facilityId": lot["id"],
            "code": f"SM-{i}",
            "geometry": {"type": "Point", "coordinates": [114.0502 + i * 0.0001, 22.5405]},
            "status": "VACANT",
        }
        for i in range(3)
    ]
    created = (await admin.data(CREATE_SPACES, {"input": spaces}))["createSpaces"]
    assert created["count"] == 3
    found = (await callers.anonymous().data(NEAR, {"lon": 114.0502, "lat": 22.5405}))["spacesNear"]
    codes = [row["space"]["code"] for row in found]
    assert codes[:1] == ["SM-0"]
