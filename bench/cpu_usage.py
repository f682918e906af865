"""Where a run's CPU went, read from /proc: the server's processes, the worker's, the PostgreSQL backends
of the bench database, and the whole machine. Other programs share the machine (tests, other benchmarks), so
a run's rate alone says little; CPU time per event of ParkHub's own processes says what the work costs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; the fields after it are plain.
    return text[text.rindex(")") + 2 :].split()


def _cpu_seconds(fields: list[str]) -> float:
    # utime and stime: fields 14 and 15 of the file, 12 and 13 after the command name.
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def group_cpu(process_group: int | None) -> dict[int, float]:
    """CPU seconds so far of every live process in `process_group` (a server started in a session of its own)."""
    if process_group is None:
        return {}
    found: dict[int, float] = {}
    for entry in PROC.iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[2]) == process_group:  # pgrp
            found[int(entry.name)] = _cpu_seconds(fields)
    return found


def pids_cpu(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        if (fields := _stat_fields(pid)) is not None:
            found[pid] = _cpu_seconds(fields)
    return found


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over its cores."""
    values = [int(value) for value in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return (sum(values) - idle) / TICKS_PER_SECOND, sum(values) / TICKS_PER_SECOND


@dataclass(frozen=True)
class CpuSnapshot:
    server: dict[int, float]
    worker: dict[int, float]
    postgres: dict[int, float]
    machine: tuple[float, float]


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds spent between two snapshots."""

    server: float
    worker: float
    postgres: float
    machine_busy: float
    machine_total: float

    @property
    def others(self) -> float:
        """Everything else that kept the machine busy: the load generator, Redis, other programs."""
        return max(0.0, self.machine_busy - self.server - self.worker - self.postgres)


def snapshot(server_group: int | None, worker_group: int | None, postgres_pids: list[int]) -> CpuSnapshot:
    return CpuSnapshot(
        group_cpu(server_group), group_cpu(worker_group), pids_cpu(postgres_pids), machine_busy_seconds()
    )


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    # A process that started in between counts from zero; one that ended in between is lost (rare here).
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> CpuUse:
    return CpuUse(
        server=_spent(before.server, after.server),
        worker=_spent(before.worker, after.worker),
        postgres=_spent(before.postgres, after.postgres),
        machine_busy=after.machine[0] - before.machine[0],
        machine_total=after.machine[1] - before.machine[1],
    )
