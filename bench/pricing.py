"""Tariff engine throughput: a 3-day stay with bands, tiers, first-unit pricing and both caps, priced in a loop.

The tariff is a typical Shenzhen lot's: weekday day band 08:00-20:00 (first hour 1,000 fen, then 300 per 30 min,
dearer after 4 hours), a weekend day band, a night band 20:00-08:00 (200 per hour), a day cap of 6,000 fen and a
rolling 24-hour cap of 8,000 fen, large vehicles at 200%. Each quote moves the stay by a few minutes so no two
quotes are the same. The tariff is checked and compiled once per instance, as a service holding it would;
`from_dict_us` says what reading it from its JSON form costs on top, once per request if a service did that.

`python -m bench.pricing [seconds]` prints the figures. Nothing is asserted: they depend on the machine.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bench.results import percentile
from hub.pricing.rules import price
from hub.pricing.tariff import Band, Rate, Tariff, Tier

ZONE = ZoneInfo("Asia/Shanghai")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
ALL_DAYS = (*WEEKDAYS, "sat", "sun")
STAY = timedelta(days=3, hours=2, minutes=17)


def bench_tariff() -> Tariff:
    return Tariff(
        default_rate=Rate(60, 200),
        bands=(
            Band(
                "weekday",
                WEEKDAYS,
                "08:00",
                "20:00",
                Rate(30, 300, first_unit_minutes=60, first_unit_price_fen=1000),
                (Tier(240, Rate(30, 500)),),
            ),
            Band("weekend", ("sat", "sun"), "08:00", "20:00", Rate(30, 200, 60, 600)),
            Band("night", ALL_DAYS, "20:00", "08:00", Rate(60, 200)),
        ),
        free_minutes=15,
        entry_grace_minutes=10,
        exit_grace_minutes=15,
        day_cap_fen=6000,
        rolling_24h_cap_fen=8000,
        session_max_fen=30000,
        minimum_charge_fen=200,
        vehicle_class_percent=(("large", 200), ("new_energy", 50)),
        reentry_minutes=30,
    )


def run_tariff_throughput(seconds: float) -> dict[str, float]:
    """Price 3-day stays for `seconds`; quotes per second and the p50/p99 time of one quote in microseconds."""
    tariff = bench_tariff()
    first_entry = datetime(2026, 11, 18, 7, 3, tzinfo=ZONE)
    timings: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    quotes = 0
    while time.perf_counter() < deadline:
        entry = first_entry + timedelta(minutes=7 * (quotes % 500))
        vehicle_class = "large" if quotes % 4 == 0 else "standard"
        before = time.perf_counter_ns()
        price(tariff, ZONE, vehicle_class, entry, entry + STAY)
        timings.append((time.perf_counter_ns() - before) / 1000)
        quotes += 1
    elapsed = time.perf_counter() - started
    timings.sort()
    document = tariff.to_dict()
    reads = 200
    before = time.perf_counter_ns()
    for _ in range(reads):
        Tariff.from_dict(document)
    return {
        "quotes": quotes,
        "seconds": round(elapsed, 3),
        "quotes_per_s": round(quotes / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_us": round(percentile(timings, 0.50), 1),
        "p99_us": round(percentile(timings, 0.99), 1),
        "from_dict_us": round((time.perf_counter_ns() - before) / 1000 / reads, 1),
    }


if __name__ == "__main__":
    print(run_tariff_throughput(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0))
