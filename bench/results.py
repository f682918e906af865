"""One load run's figures, however it was driven."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadResult:
    label: str
    connections: int
    seconds: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The value below which `fraction` of the samples fall (nearest rank)."""
    if not sorted_values:
        return float("nan")
    rank = math.ceil(fraction * len(sorted_values))
    return sorted_values[max(0, min(len(sorted_values), rank) - 1)]
