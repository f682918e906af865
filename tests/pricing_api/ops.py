"""GraphQL documents, tariffs and builders the tariff API tests share."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from tests.api import supply_ops
from tests.api.conftest import Caller

VERSION_FIELDS = "id version validFrom createdAt createdBy facility { id } definition { json }"

SET_TARIFF = f"""
mutation($facilityId: ID!, $tariff: TariffInput, $tariffJson: JSON, $validFrom: DateTime) {{
  setTariff(facilityId: $facilityId, tariff: $tariff, tariffJson: $tariffJson, validFrom: $validFrom) {{
    {VERSION_FIELDS}
  }}
}}
"""

HISTORY = f"""
query($facilityId: ID!) {{
  tariffHistory(facilityId: $facilityId) {{
    facility {{ id }} current {{ id version }} versions {{ {VERSION_FIELDS} }}
  }}
}}
"""

FACILITY_TARIFF = """
query($id: ID!) {
  node(id: $id) { ... on Facility { id tariff { id version validFrom definition { json } } } }
}
"""

QUOTE = """
query($facilityId: ID!, $from: DateTime!, $to: DateTime!, $vehicleClass: VehicleClass! = STANDARD) {
  quote(facilityId: $facilityId, from: $from, to: $to, vehicleClass: $vehicleClass) {
    tariff { id version } facility { id } vehicleClass from to currency totalFen
    segments { start end rule units unitPriceFen amountFen }
    adjustments { kind start end amountFen reason }
  }
}
"""

NEAR = """
query($lon: Float!, $lat: Float!, $radius: Float!, $first: Int!, $filter: SpaceSearchFilter, $sortBy: SpaceSort!) {
  spacesNear(lon: $lon, lat: $lat, radiusMeters: $radius, first: $first, filter: $filter, sortBy: $sortBy) {
    distanceMeters quotedPriceFen space { code } facility { id }
  }
}
"""

NODE = "query($id: ID!) { node(id: $id) { id ... on TariffVersion { version createdBy } } }"

# A day band with a tier and a night band wrapping midnight, a day cap, a large-vehicle surcharge: the typed
# input (GraphQL names) and the same tariff in the engine's JSON form.
DAY_NIGHT_TYPED: dict[str, Any] = {
    "defaultRate": {"unitMinutes": 60, "unitPriceFen": 300},
    "bands": [
        {
            "name": "day",
            "days": ["MON", "TUE", "WED", "THU", "FRI"],
            "start": "08:00",
            "end": "20:00",
            "rate": {"unitMinutes": 30, "unitPriceFen": 400, "firstUnitMinutes": 60, "firstUnitPriceFen": 500},
            "tiers": [{"afterMinutes": 180, "rate": {"unitMinutes": 30, "unitPriceFen": 600}}],
        },
        {
            "name": "night",
            "days": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"],
            "start": "22:00",
            "end": "06:00",
            "rate": {"unitMinutes": 60, "unitPriceFen": 100},
        },
    ],
    "freeMinutes": 15,
    "freeMode": "FREE_IF_UNDER",
    "dayCapFen": 6000,
    "minimumChargeFen": 200,
    "vehicleClassPercent": {"large": 200, "newEnergy": 50},
}

DAY_NIGHT_JSON: dict[str, Any] = {
    "default_rate": {
        "unit_minutes": 60,
        "unit_price_fen": 300,
        "first_unit_minutes": None,
        "first_unit_price_fen": None,
    },
    "default_tiers": [],
    "bands": [
        {
            "name": "day",
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "08:00",
            "end": "20:00",
            "rate": {"unit_minutes": 30, "unit_price_fen": 400, "first_unit_minutes": 60, "first_unit_price_fen": 500},
            "tiers": [
                {
                    "after_minutes": 180,
                    "rate": {
                        "unit_minutes": 30,
                        "unit_price_fen": 600,
                        "first_unit_minutes": None,
                        "first_unit_price_fen": None,
                    },
                }
            ],
        },
        {
            "name": "night",
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": "22:00",
            "end": "06:00",
            "rate": {
                "unit_minutes": 60,
                "unit_price_fen": 100,
                "first_unit_minutes": None,
                "first_unit_price_fen": None,
            },
            "tiers": [],
        },
    ],
    "free_minutes": 15,
    "free_mode": "free_if_under",
    "entry_grace_minutes": 0,
    "exit_grace_minutes": 0,
    "day_cap_fen": 6000,
    "rolling_24h_cap_fen": None,
    "session_max_fen": None,
    "minimum_charge_fen": 200,
    "vehicle_class_percent": {"large": 200, "new_energy": 50},
    "reentry_minutes": 0,
}


def flat_json(unit_minutes: int, unit_price_fen: int, **options: Any) -> dict[str, Any]:
    """A one-rate tariff in the JSON form (the engine fills in every option left out)."""
    return {"default_rate": {"unit_minutes": unit_minutes, "unit_price_fen": unit_price_fen}, **options}


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def set_tariff(
    admin: Caller,
    facility_id: str,
    *,
    tariff: dict[str, Any] | None = None,
    tariff_json: dict[str, Any] | None = None,
    valid_from: datetime | None = None,
) -> dict[str, Any]:
    variables = {
        "facilityId": facility_id,
        "tariff": tariff,
        "tariffJson": tariff_json,
        "validFrom": None if valid_from is None else iso(valid_from),
    }
    return (await admin.data(SET_TARIFF, variables))["setTariff"]


async def create_lot(admin: Caller, lon: float, lat: float, time_zone: str | None = None) -> dict[str, Any]:
    lot_input: dict[str, Any] = {"name": f"Lot {uuid.uuid4().hex[:6]}", "geometry": supply_ops.square(lon, lat)}
    if time_zone is not None:
        lot_input["timeZone"] = time_zone
    return (await admin.data(supply_ops.CREATE_LOT, {"input": lot_input}))["createLot"]


async def errors(caller: Caller, query: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
    body = await caller.post(query, variables)
    assert body.get("errors"), f"expected an error, got {body}"
    return body["errors"]
