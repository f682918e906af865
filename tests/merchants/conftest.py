"""Fixtures for merchant codes: the lanes' lot and gate, a merchant with an API key and coupon books recorded by the
operator admin, and GraphQL calls as the merchant (its key in X-Merchant-Key). After every test the whole ledger
balances, sums match and bounds hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hub.db import Database
from hub.ledger import service as ledger
from tests.lanes.conftest import Lot, add_native_connector, app, callers, client, lot, make_lot  # noqa: F401

CREATE_MERCHANT = "mutation($name: String!) { createMerchant(name: $name) { id name } }"
ISSUE_KEY = 'mutation($m: ID!) { issueMerchantKey(merchantId: $m, label: "till") { key merchantKey { id } } }'
RECORD_BOOK = (
    "mutation($input: CouponBookInput!) { recordCouponBook(input: $input) "
    "{ id kind count allocated fundedFen fund { balanceFen reservedFen availableFen } } }"
)
BOOKS = "query($m: ID) { couponBooks(merchantId: $m) { id allocated fund { balanceFen reservedFen availableFen } } }"
REDEMPTION_FIELDS = "id kind plate reservedFen valueFen state sessionId"
GIVE = (
    "mutation($book: ID!, $plate: String!, $m: ID) { giveCouponToPlate(bookId: $book, plate: $plate, "
    f"merchantId: $m) {{ {REDEMPTION_FIELDS} }} }}"
)
CREATE_CODE = (
    "mutation($input: MerchantCodeInput!, $m: ID) { createMerchantCode(input: $input, merchantId: $m) "
    "{ code merchantCode { id kind limit used } } }"
)
REDEEM = (
    f"mutation($code: String!, $plate: String) {{ redeemCode(code: $code, plate: $plate) {{ {REDEMPTION_FIELDS} }} }}"
)
REDEMPTIONS = (
    "query($m: ID, $s: ID) { couponRedemptions(merchantId: $m, sessionId: $s, first: 100) "
    f"{{ edges {{ node {{ {REDEMPTION_FIELDS} }} }} }} }}"
)


@dataclass
class Shop:
    """A merchant of the lot's operator and its API key."""

    lot: Lot
    client: httpx.AsyncClient
    merchant_id: str
    key: str

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers={"X-Merchant-Key": self.key}
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

    async def book(self, kind: str, count: int, unit_price_fen: int, **value: int) -> dict[str, Any]:
        """The operator admin records a book the shop paid for."""
        values = {"merchantId": self.merchant_id, "kind": kind, "count": count, "unitPriceFen": unit_price_fen}
        data = await self.lot.admin.data(RECORD_BOOK, {"input": values | value})
        return data["recordCouponBook"]

    async def give(self, book_id: str, plate: str) -> dict[str, Any]:
        return (await self.data(GIVE, {"book": book_id, "plate": plate}))["giveCouponToPlate"]

    async def code(self, kind: str, book_id: str, **fields: Any) -> str:
        data = await self.data(CREATE_CODE, {"input": {"kind": kind, "bookId": book_id, **fields}})
        return data["createMerchantCode"]["code"]

    async def fund(self) -> dict[str, int]:
        books = (await self.lot.staff.data(BOOKS, {"m": self.merchant_id}))["couponBooks"]
        return books[0]["fund"]

    async def redemptions(self, session_id: str | None = None) -> list[dict[str, Any]]:
        data = await self.lot.staff.data(REDEMPTIONS, {"m": self.merchant_id, "s": session_id})
        return [edge["node"] for edge in data["couponRedemptions"]["edges"]]


async def make_shop(lot: Lot, client: httpx.AsyncClient, name: str = "Tea House") -> Shop:  # noqa: F811
    merchant = (await lot.admin.data(CREATE_MERCHANT, {"name": name}))["createMerchant"]
    key = (await lot.admin.data(ISSUE_KEY, {"m": merchant["id"]}))["issueMerchantKey"]["key"]
    return Shop(lot, client, merchant["id"], key)


@pytest.fixture
async def shop(lot: Lot, client: httpx.AsyncClient) -> Shop:  # noqa: F811
    return await make_shop(lot, client)


@pytest.fixture(autouse=True)
async def ledger_stays_sound(owner_db: Database) -> AsyncIterator[None]:
    yield
    async with owner_db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        violations = await ledger.check_invariants(raw.driver_connection)
    assert violations == []
