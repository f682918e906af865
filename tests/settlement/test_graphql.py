"""Settlement through GraphQL as each caller: an operator's statements (lines, payout, transfers paged, also for a
whole list of statements at once), revenue by facility and by channel (attributed through the payments the ledger's
transfers name), the city's revenue and collection rate across operators; and who may see what."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from strawberry import relay

from hub.db import PLATFORM, Database
from hub.ledger import service as ledger
from hub.ledger.rules import PENDING, TransferSpec, account_spec, transfer_id
from tests.api.conftest import Callers, app, callers, client  # noqa: F401
from tests.settlement.conftest import Operator, coupon, make_operator, move, settle

STATEMENTS = """
query($first: Int, $after: String, $transfers: Int) {
  settlementStatements(first: $first, after: $after) {
    edges { cursor node { id businessDate grossFen refundsFen couponsFen otherFen feeFen payoutFen carriedOutFen
      transferCount lines { line amountFen } payout { state amountFen account }
      transfers(first: $transfers) { items { seq line code amountFen paymentId } hasNextPage endCursor } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
STATEMENT = """
query($id: ID!, $after: String) {
  settlementStatement(id: $id) {
    id payoutFen transfers(first: 2, after: $after) { items { seq } hasNextPage endCursor }
  }
}
"""
NODE = "query($id: ID!) { node(id: $id) { ... on SettlementStatement { id grossFen } } }"
REVENUE = """
query($since: DateTime!, $until: DateTime!, $by: RevenueGroup!) {
  revenue(since: $since, until: $until, groupBy: $by) {
    facilityId channel grossFen refundsFen couponsFen netFen payments
  }
}
"""
CITY = """
query($since: DateTime!, $until: DateTime!) {
  cityRevenue(since: $since, until: $until) {
    grossFen openArrearsFen collectionRateBps
    operators { operatorId grossFen refundsFen netFen openArrearsFen openArrears collectionRateBps operator { id } }
  }
}
"""


async def _payment_row(db: Database, op: Operator, facility: uuid.UUID, method: str, amount: int) -> uuid.UUID:
    async with db.transaction(PLATFORM) as session:
        return (
            await session.execute(
                text(
                    "INSERT INTO payments (tenant_id, purpose, facility_id, method, amount_fen, provider, state, "
                    "idempotency_key) VALUES (:t, 'lot_session', :f, :m, :a, 'sandbox', 'succeeded', :k) RETURNING id"
                ),
                {"t": op.tenant_id, "f": facility, "m": method, "a": amount, "k": uuid.uuid4().hex},
            )
        ).scalar_one()


def _paid(op: Operator, payment_id: uuid.UUID, amount: int, code: str = "payment_applied") -> TransferSpec:
    return TransferSpec(
        transfer_id(code, payment_id),
        op.clearing.id,
        op.payable.id,
        amount,
        code,
        tenant_id=op.tenant_id,
        reference={"payment_id": str(payment_id)},
    )


def _refunded(op: Operator, payment_id: uuid.UUID, amount: int) -> TransferSpec:
    return TransferSpec(
        transfer_id("refund", uuid.uuid4()),
        op.payable.id,
        op.clearing.id,
        amount,
        "refund",
        tenant_id=op.tenant_id,
        reference={"payment_id": str(payment_id)},
    )


@pytest.fixture
async def books(db: Database, callers: Callers) -> tuple[Operator, dict[str, uuid.UUID]]:  # noqa: F811
    op = await make_operator(db)
    north, south = uuid.uuid4(), uuid.uuid4()
    charged = await _payment_row(db, op, north, "charge", 1000)
    charged_too = await _payment_row(db, op, north, "charge", 2000)
    deducted = await _payment_row(db, op, south, "deduct", 500)
    await move(
        db,
        [
            _paid(op, charged, 1000),
            _paid(op, charged_too, 2000),
            _paid(op, deducted, 500, code="deduction_post"),
            _refunded(op, charged, 300),
            coupon(op, 150),
        ],
    )
    return op, {"north": north, "south": south}


async def test_an_operator_reads_its_statements_lines_payout_and_transfers(
    db: Database,
    callers: Callers,  # noqa: F811
    books: tuple[Operator, dict[str, uuid.UUID]],
) -> None:
    op, _ = books
    await settle(db, op, op.today() - timedelta(days=1))  # an empty day first: days settle in order
    statement = (await settle(db, op)).statement
    staff = await callers.operator("operator_staff", tenant_id=op.tenant_id)
    data = await staff.data(STATEMENTS, {"first": 10, "transfers": 2})
    edges = data["settlementStatements"]["edges"]
    assert [edge["node"]["businessDate"] for edge in edges] == [
        op.today().isoformat(),
        (op.today() - timedelta(days=1)).isoformat(),
    ]
    today, yesterday = edges[0]["node"], edges[1]["node"]
    assert (today["grossFen"], today["refundsFen"], today["couponsFen"], today["otherFen"]) == (3500, 300, 150, 0)
    assert today["feeFen"] == statement["fee"] == 19  # 0.6% of 3200 = 19.2
    assert today["payoutFen"] == 3500 - 300 + 150 - 19
    assert (
        sum(line["amountFen"] * (-1 if line["line"] == "REFUNDS" else 1) for line in today["lines"]) - today["feeFen"]
        == today["payoutFen"] + today["carriedOutFen"]
    )
    assert today["payout"] == {
        "state": "PENDING",
        "amountFen": today["payoutFen"],
        "account": today["payout"]["account"],
    }
    assert today["payout"]["account"].startswith("tenant_payout_in_transit:")
    assert yesterday["payout"] is None and yesterday["transferCount"] == 0
    assert yesterday["transfers"] == {"items": [], "hasNextPage": False, "endCursor": None}
    first_page = today["transfers"]
    assert len(first_page["items"]) == 2 and first_page["hasNextPage"]
    assert first_page["items"][0]["paymentId"] is not None

    # Page through one statement's transfers: all five, in ledger order, each once.
    seen, after = [], None
    while True:
        page = (await staff.data(STATEMENT, {"id": today["id"], "after": after}))["settlementStatement"]["transfers"]
        seen.extend(item["seq"] for item in page["items"])
        if not page["hasNextPage"]:
            break
        after = page["endCursor"]
    assert len(seen) == today["transferCount"] == 5 and seen == sorted(set(seen))
    assert (await staff.data(NODE, {"id": today["id"]}))["node"] == {"id": today["id"], "grossFen": 3500}
    # The statements connection pages too.
    page = (await staff.data(STATEMENTS, {"first": 1, "transfers": 1}))["settlementStatements"]
    assert page["pageInfo"]["hasNextPage"]
    rest = await staff.data(STATEMENTS, {"first": 1, "after": page["pageInfo"]["endCursor"], "transfers": 1})
    assert [e["node"]["id"] for e in rest["settlementStatements"]["edges"]] == [yesterday["id"]]


async def test_statements_are_private_to_their_operator(
    db: Database,
    callers: Callers,  # noqa: F811
    books: tuple[Operator, dict[str, uuid.UUID]],
) -> None:
    op, _ = books
    statement = (await settle(db, op)).statement
    gid = (await (await callers.operator(tenant_id=op.tenant_id)).data(STATEMENTS, {"first": 1}))[
        "settlementStatements"
    ]["edges"][0]["node"]["id"]
    other = await callers.operator()
    assert (await other.data(STATEMENTS, {"first": 10}))["settlementStatements"]["edges"] == []
    assert await other.error_code(STATEMENT, {"id": gid}) == "STATEMENT_NOT_FOUND"
    assert (await other.data(NODE, {"id": gid}))["node"] is None
    driver = await callers.driver()
    assert await driver.error_code(STATEMENTS, {"first": 1}) == "FORBIDDEN"
    assert (await driver.data(NODE, {"id": gid}))["node"] is None
    # The platform admin reads any statement by id.
    node = (await callers.platform().data(NODE, {"id": gid}))["node"]
    assert node == {"id": gid, "grossFen": statement["gross"]}


async def test_revenue_by_facility_and_by_channel(
    db: Database,
    callers: Callers,  # noqa: F811
    books: tuple[Operator, dict[str, uuid.UUID]],
) -> None:
    op, facilities = books
    staff = await callers.operator("operator_staff", tenant_id=op.tenant_id)
    now = datetime.now(UTC)
    period = {"since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(hours=1)).isoformat()}
    by_facility = (await staff.data(REVENUE, {**period, "by": "FACILITY"}))["revenue"]
    rows = {row["facilityId"]: row for row in by_facility}
    north = rows[_facility_gid(facilities["north"])]
    assert (north["grossFen"], north["refundsFen"], north["netFen"], north["payments"]) == (3000, 300, 2700, 2)
    assert rows[_facility_gid(facilities["south"])]["grossFen"] == 500
    assert rows[None]["couponsFen"] == 150  # a coupon without a session names no facility
    by_channel = {row["channel"]: row for row in (await staff.data(REVENUE, {**period, "by": "CHANNEL"}))["revenue"]}
    assert by_channel["sandbox/charge/lot_session"]["grossFen"] == 3000
    assert by_channel["sandbox/deduct/lot_session"]["grossFen"] == 500
    assert by_channel["merchant_coupon"]["couponsFen"] == 150
    assert sum(row["netFen"] for row in by_channel.values()) == 3000 + 500 - 300 + 150
    later = {"since": (now + timedelta(hours=1)).isoformat(), "until": (now + timedelta(hours=2)).isoformat()}
    assert (await staff.data(REVENUE, {**later, "by": "CHANNEL"}))["revenue"] == []
    backwards = {"since": period["until"], "until": period["since"]}
    assert await staff.error_code(REVENUE, {**backwards, "by": "CHANNEL"}) == "INVALID_PERIOD"
    assert await callers.city().error_code(REVENUE, {**period, "by": "CHANNEL"}) == "FORBIDDEN"


def _facility_gid(facility: uuid.UUID) -> str:
    from strawberry import relay

    return str(relay.GlobalID("Facility", str(facility)))


async def test_city_revenue_and_collection_rate_across_operators(
    db: Database,
    callers: Callers,  # noqa: F811
    books: tuple[Operator, dict[str, uuid.UUID]],
) -> None:
    op, _ = books
    debtor = await make_operator(db)
    async with db.transaction(PLATFORM) as session:
        driver = (
            await session.execute(
                text("INSERT INTO users (email) VALUES (:e) RETURNING id"), {"e": f"d-{uuid.uuid4().hex[:8]}@x.test"}
            )
        ).scalar_one()
        receivable = account_spec("driver_receivable", driver)
        await ledger.ensure_accounts(session, [receivable])
    arrears = [
        TransferSpec(
            transfer_id("arrears", uuid.uuid4()),
            receivable.id,
            debtor.payable.id,
            amount,
            "arrears",
            kind=PENDING,
            tenant_id=debtor.tenant_id,
            driver_id=driver,
        )
        for amount in (400, 600)
    ]
    await move(db, [*arrears, _paid(debtor, uuid.uuid4(), 3000, code="payment")])
    now = datetime.now(UTC)
    period = {"since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(hours=1)).isoformat()}
    city = (await callers.city().data(CITY, period))["cityRevenue"]
    operators = {row["operatorId"]: row for row in city["operators"]}
    mine = operators[_operator_gid(op.tenant_id)]
    assert (mine["grossFen"], mine["refundsFen"], mine["netFen"]) == (3500, 300, 3350)
    assert (mine["openArrearsFen"], mine["collectionRateBps"]) == (0, 10_000)
    theirs = operators[_operator_gid(debtor.tenant_id)]
    assert (theirs["grossFen"], theirs["openArrearsFen"], theirs["openArrears"]) == (3000, 1000, 2)
    assert theirs["collectionRateBps"] == 7500  # 3000 / (3000 + 1000)
    assert theirs["operator"] == {"id": _operator_gid(debtor.tenant_id)}
    assert city["grossFen"] >= 6500 and city["openArrearsFen"] >= 1000
    assert await (await callers.operator(tenant_id=op.tenant_id)).error_code(CITY, period) == "FORBIDDEN"
    assert (await callers.platform().data(CITY, period))["cityRevenue"]["grossFen"] == city["grossFen"]


def _operator_gid(tenant: uuid.UUID) -> str:
    from strawberry import relay

    return str(relay.GlobalID("Operator", str(tenant)))


CONFIRM = """
mutation($id: ID!, $reference: String) {
  confirmPayout(id: $id, reference: $reference) { id payout { state amountFen reference resolvedAt } }
}
"""
FAIL = """
mutation($id: ID!, $reason: String!) {
  failPayout(id: $id, reason: $reason) { id payout { state amountFen reference resolvedAt } }
}
"""


async def test_the_platform_admin_confirms_or_fails_payouts(
    db: Database,
    callers: Callers,  # noqa: F811
    books: tuple[Operator, dict[str, uuid.UUID]],
) -> None:
    op, _ = books
    statement = (await settle(db, op)).statement
    gid = str(relay.GlobalID("SettlementStatement", str(statement["id"])))
    admin = callers.platform()
    # The operator sees its payout but cannot vouch for it; nor can a driver.
    operator_admin = await callers.operator("operator_admin", tenant_id=op.tenant_id)
    assert await operator_admin.error_code(CONFIRM, {"id": gid}) == "FORBIDDEN"
    assert await (await callers.driver()).error_code(FAIL, {"id": gid, "reason": "x"}) == "FORBIDDEN"
    assert await admin.error_code(FAIL, {"id": gid, "reason": "  "}) == "INVALID_INPUT"
    unknown = str(relay.GlobalID("SettlementStatement", str(uuid.uuid4())))
    assert await admin.error_code(CONFIRM, {"id": unknown}) == "STATEMENT_NOT_FOUND"

    confirmed = (await admin.data(CONFIRM, {"id": gid, "reference": "BANK-20261121-0042"}))["confirmPayout"]
    assert confirmed["payout"]["state"] == "CONFIRMED" and confirmed["payout"]["reference"] == "BANK-20261121-0042"
    assert confirmed["payout"]["amountFen"] == statement["payout"] > 0
    again = (await admin.data(CONFIRM, {"id": gid, "reference": "another"}))["confirmPayout"]
    assert again == confirmed  # confirming twice changes nothing
    assert await admin.error_code(FAIL, {"id": gid, "reason": "bounced"}) == "PAYOUT_CONFIRMED"
    in_transit = await _payout_in_transit(db, op)
    assert (in_transit.posted, in_transit.pending) == (statement["payout"], 0)


async def test_a_failed_payout_returns_on_the_next_statement(
    db: Database,
    callers: Callers,  # noqa: F811
    books: tuple[Operator, dict[str, uuid.UUID]],
) -> None:
    op, _ = books
    statement = (await settle(db, op)).statement
    gid = str(relay.GlobalID("SettlementStatement", str(statement["id"])))
    failed = (await callers.platform().data(FAIL, {"id": gid, "reason": "account closed"}))["failPayout"]
    assert failed["payout"]["state"] == "FAILED" and failed["payout"]["reference"] == "account closed"
    assert await callers.platform().error_code(CONFIRM, {"id": gid}) == "PAYOUT_FAILED"
    assert (await _payout_in_transit(db, op)).pending == 0
    following = (await settle(db, op, op.today() + timedelta(days=1))).statement
    assert following["returned"] == following["payout"] == statement["payout"]


async def _payout_in_transit(db: Database, op: Operator) -> ledger.Balance:
    async with db.transaction(PLATFORM) as session:
        spec = account_spec("tenant_payout_in_transit", op.tenant_id, "CNY")
        return (await ledger.balances(session, [spec.id]))[spec.id]
