"""The migrations build exactly the schema the models describe: a column, index or constraint added to one and
not the other would otherwise show up only when someone next autogenerates a migration."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.db import Database
from hub.models import Base


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # PostGIS's own tables and the GiST indexes it names idx_* are not ours (as in migrations/env.py).
    if type_ == "table" and reflected and compare_to is None:
        return False
    return not (type_ == "index" and reflected and (name or "").startswith("idx_") and compare_to is None)


async def test_the_migrated_database_matches_the_models(owner_db: Database) -> None:
    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"include_object": _include, "compare_type": True, "target_metadata": Base.metadata}
        )
        return compare_metadata(context, Base.metadata)

    async with owner_db.engine.connect() as conn:
        assert await conn.run_sync(differences) == []
