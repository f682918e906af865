"""`parkhub seed demo`: build the demo city (mounted as `parkhub seed` by hub/cli.py)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from hub.config import database_name, get_settings
from hub.seed import repository
from hub.seed.demo import DEFAULT_SEED, DEFAULT_SPACES, MAX_SPACES, DemoSpec, plan_city

seed_app = typer.Typer(help="Demo data for development and benchmarks.", no_args_is_help=True)


class SeedError(RuntimeError):
    """Seeding could not run; the message says why and what to do."""


@dataclass(frozen=True)
class SeedResult:
    operators: int
    lots: int
    curb_zones: int
    lanes: int
    spaces: int
    seconds: float

    @property
    def facilities(self) -> int:
        return self.lots + self.curb_zones

    def summary(self) -> str:
        return (
            f"Demo city loaded: {self.operators} operators, {self.facilities:,} facilities "
            f"({self.lots:,} lots, {self.curb_zones:,} curb zones), {self.lanes:,} lanes, "
            f"{self.spaces:,} spaces in {self.seconds:.1f} s."
        )


class _ProgressBars:
    """One bar per table, advanced by the loader as batches land."""

    def __init__(self, progress: Progress, totals: dict[str, int | None]) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {
            stage: progress.add_task(stage, total=total, start=False) for stage, total in totals.items()
        }

    def __call__(self, stage: str, rows: int) -> None:
        if stage not in self.tasks:
            # Stages with no known total up front (index rebuilds) appear when they start.
            self.tasks[stage] = self.progress.add_task(stage, total=None)
        task = self.tasks[stage]
        self.progress.start_task(task)
        self.progress.advance(task, rows)


async def seed_demo(
    database_url: str, spec: DemoSpec, *, if_empty: bool = False, console: Console | None = None
) -> SeedResult | None:
    """Load the demo city described by `spec` as the owner of `database_url`.

    Returns None (and says so) when `if_empty` is set and the database already has tenants."""
    console = console or Console()
    started = time.perf_counter()
    try:
        conn = await repository.connect(database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise SeedError(f"cannot connect to {database_name(database_url)}: {exc}") from exc
    try:
        if if_empty:
            existing = await repository.count_tenants(conn)
            if existing:
                console.print(
                    f"Database {database_name(database_url)} already has {existing} tenants; not seeding (--if-empty)."
                )
                return None
        plan = plan_city(spec)
        lots = sum(1 for facility in plan.facilities if facility.row.kind == "lot")
        progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        with progress:
            bars = _ProgressBars(
                progress,
                {
                    "tenants": len(plan.tenants),
                    "facilities": len(plan.facilities),
                    "lanes": len(plan.lanes),
                    "spaces": plan.space_count,
                },
            )
            try:
                counts = await repository.load_city(conn, plan, datetime.now(UTC), on_progress=bars)
            except asyncpg.UniqueViolationError as exc:
                raise SeedError(
                    f"{exc.detail or exc}: this demo city (or one with the same operator slugs) is already loaded. "
                    "Use --if-empty to skip seeding a database that has tenants, or seed a fresh database."
                ) from exc
            for task in progress.tasks:
                if task.total is None:
                    progress.update(task.id, total=task.completed)
        await repository.analyze(conn)
    finally:
        await conn.close()
    return SeedResult(
        operators=counts.tenants,
        lots=lots,
        curb_zones=counts.facilities - lots,
        lanes=counts.lanes,
        spaces=counts.spaces,
        seconds=time.perf_counter() - started,
    )


@seed_app.callback()
def _seed_group() -> None:
    """Demo data for development and benchmarks."""


@seed_app.command("demo")
def demo(
    spaces: int = typer.Option(
        DEFAULT_SPACES, "--spaces", min=1, max=MAX_SPACES, help="How many spaces; facilities scale in proportion."
    ),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="The random seed: the same seed gives the same city."),
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing when the database already has tenants."),
    slug_suffix: str = typer.Option(
        "", "--slug-suffix", help="Appended to every operator slug, so several demo cities can share a database."
    ),
) -> None:
    """Build a deterministic demo city in Shenzhen: about 10 operators, lots and curb zones, and spaces."""
    try:
        spec = DemoSpec(spaces=spaces, seed=seed, slug_suffix=slug_suffix)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console = Console()
    try:
        result = asyncio.run(seed_demo(get_settings().database_url, spec, if_empty=if_empty, console=console))
    except SeedError as exc:
        console.print(f"[red]Seeding failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    if result is not None:
        console.print(result.summary())
