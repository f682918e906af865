"""Per-request GraphQL context: the caller, one read transaction shared by the request's resolvers and
DataLoaders, and write transactions that mutations commit themselves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info as StrawberryInfo

from hub.config import Settings
from hub.db import SET_SCOPE_SQL, Database, scope_params
from hub.principal import Principal
from hub.supply.service import confirmed_after, now_utc


class Context:
    def __init__(self, *, request: Any, principal: Principal, db: Database, settings: Settings) -> None:
        self.request = request
        self.principal = principal
        self.db = db
        self.settings = settings
        self.now: datetime = now_utc()
        self.confirmed_after: datetime = confirmed_after(self.now)
        self._session: AsyncSession | None = None
        # One connection runs one statement at a time; resolvers that GraphQL runs concurrently take turns.
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """The request's read transaction, opened on first use under the caller's RLS scope."""
        async with self._lock:
            if self._session is None:
                session = self.db.sessionmaker()
                await session.begin()
                await session.execute(SET_SCOPE_SQL, scope_params(self.principal.db_scope()))
                self._session = session
            yield self._session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction of its own, committed when the block succeeds: a mutation's writes are durable
        before its result is returned, and a failed mutation writes nothing."""
        async with self.db.transaction(self.principal.db_scope()) as session:
            yield session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            try:
                await session.commit()
            finally:
                await session.close()

    @cached_property
    def loaders(self) -> Any:
        from schema.loaders import Loaders

        return Loaders(self)


Info = StrawberryInfo[Context, None]
