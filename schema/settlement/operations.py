"""Settlement over GraphQL. Operators (and the platform admin naming an operator): statements with lines, payout
and included transfers, revenue by facility or channel. The city (and the platform admin): revenue and collection
rate across operators. Resolvers are thin: hub.settlement.service does the work."""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry import relay

from hub.errors import InvalidInput
from hub.settlement import service
from schema.context import Info
from schema.relay import check_first, connection, decode_cursor, uuid_of
from schema.settlement.types import CityRevenue, RevenueGroup, RevenueRow, SettlementStatement


def _date_cursor(after: str | None) -> date | None:
    decoded = decode_cursor(after)
    if decoded is None:
        return None
    try:
        return date.fromisoformat(decoded[0])
    except ValueError:
        raise InvalidInput("after: not a cursor returned by this API", code="INVALID_CURSOR", field="after") from None


@strawberry.type
class SettlementQuery:
    @strawberry.field(
        description="Settlement statements, newest business date first, dates in [since, until) (operator staff; "
        "the platform admin names operatorId)."
    )
    async def settlement_statements(
        self,
        info: Info,
        since: date | None = None,
        until: date | None = None,
        operator_id: relay.GlobalID | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> relay.Connection[SettlementStatement]:
        page_size = check_first(first)
        operator = None if operator_id is None else uuid_of(operator_id, "Operator", "operatorId")
        tenant = service.reader_tenant(info.context.principal, operator)
        async with info.context.read() as session:
            rows = await service.statements(
                session, tenant, since=since, until=until, after=_date_cursor(after), limit=page_size + 1
            )
        return connection(rows, page_size, after is not None, SettlementStatement.from_row, "business_date")

    @strawberry.field(description="One settlement statement (operator staff: their own; the platform admin: any).")
    async def settlement_statement(self, info: Info, id: relay.GlobalID) -> SettlementStatement:
        statement_id = uuid_of(id, "SettlementStatement")
        tenant = service.node_tenant(info.context.principal)
        async with info.context.read() as session:
            row = await service.statement(session, tenant, statement_id)
        return SettlementStatement.from_row(row)

    @strawberry.field(
        description="The operator's revenue in [since, until) by FACILITY or CHANNEL (operator staff), from the "
        "ledger's posted movements of its payable."
    )
    async def revenue(self, info: Info, since: datetime, until: datetime, group_by: RevenueGroup) -> list[RevenueRow]:
        async with info.context.read() as session:
            rows = await service.revenue(session, info.context.principal, since, until, group_by.value)
        return [RevenueRow.from_row(row, group_by) for row in rows]

    @strawberry.field(
        description="Revenue and collection rate across every operator in [since, until) (the city, the platform)."
    )
    async def city_revenue(self, info: Info, since: datetime, until: datetime) -> CityRevenue:
        async with info.context.read() as session:
            rows = await service.city_revenue(session, info.context.principal, since, until)
        return CityRevenue.from_rows(rows, since, until)


@strawberry.type
class SettlementMutation:
    @strawberry.mutation(
        description="Record that a statement's payout arrived (the platform admin), with the bank's or provider's "
        "reference: the pending payout is posted. Again: no change; a failed payout: PAYOUT_FAILED."
    )
    async def confirm_payout(self, info: Info, id: relay.GlobalID, reference: str | None = None) -> SettlementStatement:
        statement = uuid_of(id, "SettlementStatement")
        async with info.context.write() as session:
            row = await service.confirm_payout_as(session, info.context.principal, statement, reference)
        return SettlementStatement.from_row(row)

    @strawberry.mutation(
        description="Record that a statement's payout bounced (the platform admin), and why: the pending payout is "
        "voided and its money returns on the operator's next statement. Again: no change; a confirmed payout: "
        "PAYOUT_CONFIRMED."
    )
    async def fail_payout(self, info: Info, id: relay.GlobalID, reason: str) -> SettlementStatement:
        statement = uuid_of(id, "SettlementStatement")
        async with info.context.write() as session:
            row = await service.fail_payout_as(session, info.context.principal, statement, reason)
        return SettlementStatement.from_row(row)
