"""Where drivers search: random points scattered around the demo city's dense districts.

The HTTP load (a wrk Lua script) and the direct load draw from the same distribution, so both paths
answer comparable searches."""

from __future__ import annotations

import math
import random

from hub.seed.demo import METRES_PER_DEG_LAT, METRES_PER_DEG_LON_AT_EQUATOR, SERVICE_AREA_BOUNDS
from hub.seed.places import DENSE_DISTRICT_CODES, DISTRICTS_BY_CODE

DENSE_DISTRICTS = tuple(DISTRICTS_BY_CODE[code] for code in DENSE_DISTRICT_CODES)


def random_search_point(rng: random.Random) -> tuple[float, float]:
    """A point around a dense district (weighted like the supply), redrawn until it is inside the city."""
    west, south, east, north = SERVICE_AREA_BOUNDS
    district = rng.choices(DENSE_DISTRICTS, weights=[d.weight for d in DENSE_DISTRICTS])[0]
    while True:
        east_m, north_m = rng.gauss(0, district.spread_m), rng.gauss(0, district.spread_m)
        lon = district.lon + east_m / (METRES_PER_DEG_LON_AT_EQUATOR * math.cos(math.radians(district.lat)))
        lat = district.lat + north_m / METRES_PER_DEG_LAT
        if west < lon < east and south < lat < north:
            return lon, lat


def lua_bounds() -> str:
    """The service area as a Lua table literal: {west, south, east, north}."""
    return "{" + ", ".join(str(value) for value in SERVICE_AREA_BOUNDS) + "}"


def lua_districts_table() -> str:
    """The same districts as a Lua table literal: {lon, lat, spread_m, weight} per district."""
    rows = ", ".join(f"{{{d.lon}, {d.lat}, {d.spread_m}, {d.weight}}}" for d in DENSE_DISTRICTS)
    return "{" + rows + "}"
