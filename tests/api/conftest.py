"""Fixtures for tests that go through the HTTP API as each kind of caller."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from hub.app import create_app
from hub.auth import ensure_signing_key, token_claims
from hub.db import PLATFORM, Database
from tenants import service as tenants_service

SHENZHEN_LOT = {
    "type": "Polygon",
    "coordinates": [
        [[114.0500, 22.5400], [114.0510, 22.5400], [114.0510, 22.5410], [114.0500, 22.5410], [114.0500, 22.5400]]
    ],
}


@pytest.fixture(scope="session")
async def app(settings, db: Database, owner_db: Database) -> AsyncIterator[Starlette]:  # type: ignore[no-untyped-def]
    await ensure_signing_key(owner_db)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://parkhub.test") as http:
        yield http


@dataclass
class Caller:
    """One kind of caller with its token, able to run GraphQL against the app."""

    client: httpx.AsyncClient
    token: str | None
    tenant_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.post(query, variables)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    async def error_code(self, query: str, variables: dict[str, Any] | None = None) -> str:
        body = await self.post(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        return body["errors"][0]["extensions"]["code"]


@dataclass
class Callers:
    client: httpx.AsyncClient
    app: Starlette
    db: Database

    def _sign(self, **claims: Any) -> str:
        return self.app.state.keystore.sign(token_claims(**claims))

    def anonymous(self) -> Caller:
        return Caller(self.client, None)

    def city(self) -> Caller:
        return Caller(self.client, self._sign(kind="city", subject="city-dashboard"))

    def platform(self) -> Caller:
        return Caller(self.client, self._sign(kind="platform", subject="platform-admin"))

    async def driver(self) -> Caller:
        async with self.db.transaction(PLATFORM) as session:
            user = await tenants_service.ensure_user(session, f"driver-{uuid.uuid4().hex[:10]}@example.com")
        token = self._sign(kind="driver", subject=user.email, user_id=user.id)
        return Caller(self.client, token, user_id=user.id)

    async def operator(self, role: str = "operator_admin", tenant_id: uuid.UUID | None = None) -> Caller:
        if tenant_id is None:
            async with self.db.transaction(PLATFORM) as session:
                tenant = await tenants_service.create_tenant(
                    session, slug=f"op-{uuid.uuid4().hex[:10]}", name="Test Operator"
                )
                tenant_id = tenant.id
        token = self._sign(kind="operator", subject=f"staff@{tenant_id}", tenant_id=tenant_id, role=role)
        return Caller(self.client, token, tenant_id=tenant_id)


@pytest.fixture(scope="session")
def callers(client: httpx.AsyncClient, app: Starlette, db: Database) -> Callers:
    return Callers(client, app, db)
