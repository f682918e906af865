"""GraphQL types of drivers' own rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from schema.context import Info
from schema.relay import row_ids


@strawberry.type
class Vehicle(relay.Node):
    id: relay.NodeID[str]
    plate: str
    nickname: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Vehicle:
        return cls(id=str(row["id"]), plate=row["plate"], nickname=row["nickname"], created_at=row["created_at"])

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Vehicle | None]:
        return await info.context.loaders.vehicle.load_many(row_ids(node_ids))
