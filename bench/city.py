"""The benchmark's own database, `<name>_bench`, holding a demo city of the requested size.

It is kept between runs: seeding a million spaces takes about a minute, so a second run at the same size
reuses it, and a run at another size rebuilds it from scratch."""

from __future__ import annotations

from rich.console import Console

from hub.config import Settings, database_name, get_settings, use_sibling_database
from hub.dbsetup import prepare
from hub.seed import repository
from hub.seed.cli import seed_demo
from hub.seed.demo import DemoSpec


def use_bench_database() -> Settings:
    """Point this process (and the API server it starts) at `<name>_bench` and return the settings."""
    use_sibling_database("_bench")
    return get_settings()


async def _space_count(settings: Settings) -> int:
    conn = await repository.connect(settings.database_url)
    try:
        return await repository.count_spaces(conn)
    finally:
        await conn.close()


async def _vacuum(settings: Settings) -> None:
    # Sets hint bits and the visibility map once, so the first measured searches do not pay for it.
    conn = await repository.connect(settings.database_url)
    try:
        for table in ("tenants", "facilities", "spaces"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()


async def ensure_city(settings: Settings, spaces: int, console: Console) -> None:
    await prepare(settings)
    existing = await _space_count(settings)
    if existing == spaces:
        console.print(f"{database_name(settings.database_url)} already holds a demo city of {spaces:,} spaces.")
        return
    if existing:
        console.print(f"{database_name(settings.database_url)} holds {existing:,} spaces; rebuilding at {spaces:,}.")
        await prepare(settings, fresh=True)
    result = await seed_demo(settings.database_url, DemoSpec(spaces=spaces), console=console)
    if result is not None:
        console.print(result.summary())
    await _vacuum(settings)
