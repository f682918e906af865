"""The GraphQL schema: per-domain queries, mutations and subscriptions merged, Relay nodes, security limits."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from hub.errors import DomainError
from schema.access.operations import AccessMutation, AccessQuery
from schema.connectors.mutations import ConnectorMutation
from schema.connectors.queries import ConnectorQuery
from schema.connectors.types import Connector, Device
from schema.drivers.operations import DriverMutation, DriverQuery
from schema.drivers.types import Vehicle
from schema.errors import TypedErrors
from schema.history.queries import HistoryQuery
from schema.ingest.operations import IngestMutation, IngestQuery
from schema.lanes.operations import LanesMutation, LanesQuery
from schema.live.streaming import ContextPerOperation, TypedStreamErrors
from schema.live.subscriptions import LiveSubscription
from schema.merchants.operations import MerchantsMutation, MerchantsQuery
from schema.notify.operations import NotifyMutation, NotifyQuery
from schema.notify.subscriptions import NotifySubscription
from schema.passes.operations import PassesMutation, PassesQuery
from schema.payments.operations import PaymentsMutation, PaymentsQuery
from schema.pricing.operations import PricingMutation, PricingQuery
from schema.pricing.types import TariffVersion
from schema.queue.operations import QueueMutation, QueueQuery
from schema.queue.subscriptions import QueueSubscription
from schema.scalars import SCALAR_MAP
from schema.settlement.operations import SettlementMutation, SettlementQuery
from schema.settlement.reconciliation import ReconciliationItem, ReconciliationMutation, ReconciliationQuery
from schema.settlement.types import SettlementStatement
from schema.street.operations import StreetMutation, StreetQuery
from schema.supply.mutations import SupplyMutation
from schema.supply.queries import SupplyQuery
from schema.supply.types import Facility, Lane, Space
from schema.tenants.operations import TenantMutation, TenantQuery
from schema.tenants.types import Operator

logger = logging.getLogger("parkhub.graphql")

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2_000
CACHE_SIZE = 512


# The limiters' validation rules, built once: a rule class made per request would make every request's rule
# set new to the validation cache, which would then validate (walk the whole document) every time.
LIMIT_RULES = [
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
]


@strawberry.type
class Query(
    SupplyQuery,
    TenantQuery,
    DriverQuery,
    IngestQuery,
    ConnectorQuery,
    HistoryQuery,
    AccessQuery,
    PricingQuery,
    LanesQuery,
    NotifyQuery,
    StreetQuery,
    QueueQuery,
    PaymentsQuery,
    PassesQuery,
    MerchantsQuery,
    SettlementQuery,
    ReconciliationQuery,
):
    node: relay.Node | None = relay.node(description="Any object by its global id; null when not visible to you")
    nodes: list[relay.Node | None] = relay.node(description="Objects by global ids; null where not visible")


@strawberry.type
class Mutation(
    SupplyMutation,
    TenantMutation,
    DriverMutation,
    IngestMutation,
    ConnectorMutation,
    AccessMutation,
    PricingMutation,
    LanesMutation,
    NotifyMutation,
    StreetMutation,
    QueueMutation,
    PaymentsMutation,
    PassesMutation,
    MerchantsMutation,
    ReconciliationMutation,
    SettlementMutation,
):
    pass


@strawberry.type
class Subscription(LiveSubscription, NotifySubscription, QueueSubscription):
    pass


class ParkHubSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Typed domain errors and bad requests are the caller's business; only unexpected ones are logged.
        for error in errors:
            if error.original_error is not None and not isinstance(error.original_error, DomainError | GraphQLError):
                logger.error("unexpected error at %s", error.path, exc_info=error.original_error)


schema = ParkHubSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[
        Facility,
        Lane,
        Space,
        Operator,
        Vehicle,
        Connector,
        Device,
        TariffVersion,
        SettlementStatement,
        ReconciliationItem,
    ],
    extensions=[
        # Over a WebSocket, first give the operation a context of its own (TypedErrors closes it at the end).
        ContextPerOperation,
        TypedErrors,
        TypedStreamErrors,
        lambda: AddValidationRules(LIMIT_RULES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        # Fresh extension objects per request; the LRU caches behind them are module-level and shared.
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
    ],
    config=StrawberryConfig(scalar_map=SCALAR_MAP),
)
