"""Shared test data for geo: the Shenzhen service area and generators of valid shapes inside it."""

from __future__ import annotations

import math
import random

from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon, box

WEST, SOUTH, EAST, NORTH = 113.75, 22.40, 114.65, 22.87
SHENZHEN = box(WEST, SOUTH, EAST, NORTH)


def star_polygon(lon: float, lat: float, radii: list[float], jitters: list[float]) -> Polygon:
    """A simple polygon around (lon, lat): one vertex per radius at increasing angles, so it never crosses
    itself. Each jitter (0..1) moves its vertex within its angular slot."""
    n = len(radii)
    slot = 2 * math.pi / n
    shell = [
        (lon + r * math.cos(slot * (i + 0.1 + 0.8 * j)), lat + r * math.sin(slot * (i + 0.1 + 0.8 * j)))
        for i, (r, j) in enumerate(zip(radii, jitters, strict=True))
    ]
    return Polygon(shell)


lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
lats = st.floats(min_value=-90, max_value=90, allow_nan=False)
shenzhen_lons = st.floats(min_value=WEST + 0.01, max_value=EAST - 0.01)
shenzhen_lats = st.floats(min_value=SOUTH + 0.01, max_value=NORTH - 0.01)


@st.composite
def star_polygons(
    draw: st.DrawFn, centre_lons: st.SearchStrategy[float], centre_lats: st.SearchStrategy[float]
) -> Polygon:
    n = draw(st.integers(min_value=3, max_value=12))
    radii = draw(st.lists(st.floats(min_value=1e-4, max_value=0.01), min_size=n, max_size=n))
    jitters = draw(st.lists(st.floats(min_value=0, max_value=1), min_size=n, max_size=n))
    return star_polygon(draw(centre_lons), draw(centre_lats), radii, jitters)


def random_shapes(rng: random.Random, count: int) -> list[Point | LineString | Polygon]:
    """Points, short lines and small polygons scattered over Shenzhen."""
    shapes: list[Point | LineString | Polygon] = []
    for i in range(count):
        lon, lat = rng.uniform(WEST, EAST), rng.uniform(SOUTH, NORTH)
        kind = i % 3
        if kind == 0:
            shapes.append(Point(lon, lat))
        elif kind == 1:
            shapes.append(LineString([(lon, lat), (lon + rng.uniform(-0.01, 0.01), lat + rng.uniform(-0.01, 0.01))]))
        else:
            n = rng.randint(3, 8)
            shapes.append(
                star_polygon(lon, lat, [rng.uniform(1e-4, 0.005) for _ in range(n)], [rng.random() for _ in range(n)])
            )
    return shapes
