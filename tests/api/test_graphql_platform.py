"""The GraphQL platform: limits on abusive queries, typed and masked errors, authentication failures,
batched loading, and the exported SDL kept in step with the code."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from hub.auth import token_claims
from hub.db import Database
from schema.api import schema
from tests.api import supply_ops as ops
from tests.api.conftest import Caller, Callers

SDL_PATH = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"


def test_exported_schema_matches_the_code() -> None:
    assert SDL_PATH.read_text() == schema.as_str() + "\n", "schema/schema.graphql drifted: run `make schema`"


async def test_too_deep_a_query_is_refused(callers: Callers) -> None:
    nested = (
        "{ facilities { edges { node { spaces { edges { node { facility { spaces { edges { node { facility "
        "{ name } } } } } } } } } } } }"
    )
    body = await callers.anonymous().post(nested)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "depth" in body["errors"][0]["message"]


async def test_too_many_aliases_are_refused(callers: Callers) -> None:
    query = "{ " + " ".join(f"a{i}: me {{ kind }}" for i in range(40)) + " }"
    body = await callers.anonymous().post(query)
    assert "aliases" in body["errors"][0]["message"]


async def test_too_many_tokens_are_refused(callers: Callers) -> None:
    query = "{ me { " + " ".join(["kind"] * 3000) + " } }"
    body = await callers.anonymous().post(query)
    assert body["errors"] and body.get("data") is None


async def test_syntax_errors_are_typed(callers: Callers) -> None:
    body = await callers.anonymous().post("{ me { kind ")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_unexpected_errors_are_masked(callers: Callers, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.supply import service

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("connection string postgresql://secret@db")

    monkeypatch.setattr(service, "search_spaces_near", broken)
    body = await callers.anonymous().post("{ spacesNear(lon: 114, lat: 22.5, radiusMeters: 10) { distanceMeters } }")
    error = body["errors"][0]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "secret" not in str(body)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer not-a-token", "malformed"),
        ("Basic abc", "malformed"),
    ],
)
async def test_bad_tokens_get_401_with_a_reason(callers: Callers, header: str, reason: str) -> None:
    response = await callers.client.post(
        "/graphql", json={"query": "{ me { kind } }"}, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_expired_tampered_and_foreign_tokens_get_401(callers: Callers) -> None:
    keystore = callers.app.state.keystore
    claims = token_claims(kind="city", subject="dash")
    expired = keystore.sign({**claims, "exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200})
    wrong_audience = keystore.sign({**claims, "aud": "someone-else"})
    good = keystore.sign(claims)
    header, payload, signature = good.split(".")
    tampered = ".".join([header, payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB"), signature])
    descriptions = []
    for token in (expired, wrong_audience, tampered):
        response = await callers.client.post(
            "/graphql", json={"query": "{ me { kind } }"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, token
        descriptions.append(response.json()["error_description"])
    assert "expired" in descriptions[0]
    assert "audience" in descriptions[1]
    response = await callers.client.post(
        "/graphql", json={"query": "{ me { kind } }"}, headers={"Authorization": f"Bearer {good}"}
    )
    assert response.json()["data"]["me"]["kind"] == "city"


async def test_graphiql_is_served_outside_production(callers: Callers) -> None:
    response = await callers.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()


async def _statements(db: Database, caller: Caller, query: str) -> int:
    """Statements the database received for one request: those sent through SQLAlchemy, and those sent
    straight on the driver connection (asyncpg's query logger sees only the latter)."""
    count = 0

    def count_statement(*args: object) -> None:
        nonlocal count
        count += 1

    def log_driver_query(record: object) -> None:
        count_statement()

    checked_out = []

    def on_checkout(dbapi_connection: Any, record: object, proxy: object) -> None:
        dbapi_connection.driver_connection.add_query_logger(log_driver_query)
        checked_out.append(dbapi_connection.driver_connection)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count_statement)
    event.listen(db.engine.sync_engine.pool, "checkout", on_checkout)
    try:
        await caller.data(query)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count_statement)
        event.remove(db.engine.sync_engine.pool, "checkout", on_checkout)
        for connection in checked_out:
            connection.remove_query_logger(log_driver_query)
    return count


async def test_nested_lists_cost_a_fixed_number_of_queries(callers: Callers, app) -> None:  # type: ignore[no-untyped-def]
    """However many facilities a page holds, their operators, lanes, occupancy and spaces load in one
    batch each (no N+1)."""
    db = app.state.db
    query = """{ facilities(first: 100) { edges { node { name operator { name } lanes { name }
                 occupancy { total vacant } } } } }"""
    counts = []
    for sites in (1, 4):
        admin = await callers.operator()
        for index in range(sites):
            await ops.build_site(admin, 114.3 + index * 0.01, 22.65, f"Q{uuid.uuid4().hex[:5]}", spaces=2)
        counts.append(await _statements(db, admin, query))
    assert counts[0] == counts[1]
    # BEGIN + scope + facilities + operators + lanes + occupancy
    assert counts[0] <= 6


async def test_find_a_space_is_a_single_query(callers: Callers, app) -> None:  # type: ignore[no-untyped-def]
    query = """{ spacesNear(lon: 113.9, lat: 22.6, radiusMeters: 3000, first: 50) { distanceMeters
                 space { code facility { name } operator { name } } facility { name } operator { slug } } }"""
    # BEGIN + set scope + the search itself; facility and operator come with it
    assert await _statements(app.state.db, callers.anonymous(), query) == 3
