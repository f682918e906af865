"""Every table, imported in one place for Alembic's autogenerate and for tests."""

from hub.access.models import BlocklistEntry, VehiclePass, WhitelistEntry  # noqa: F401  (for Alembic)
from hub.db import Base
from hub.drivers.models import Vehicle
from hub.ingest.models import InboxEvent, PlateSighting
from hub.lanes.models import LotSession  # noqa: F401  (registers every lanes table, for Alembic)
from hub.ledger.models import LedgerAccount  # noqa: F401  (registers every ledger table, for Alembic)
from hub.merchants.models import Merchant  # noqa: F401  (registers every merchants table, for Alembic)
from hub.notify.models import WebhookDelivery  # noqa: F401  (registers every notify table, for Alembic)
from hub.payments.models import Payment  # noqa: F401  (registers every payments table, for Alembic)
from hub.pricing.models import TariffVersion
from hub.settlement.models import SettlementStatement  # noqa: F401  (registers every settlement table, for Alembic)
from hub.street.models import StreetSession  # noqa: F401  (registers every street table, for Alembic)
from hub.supply.models import Device, Facility, Lane, Space, SpaceStatusInterval
from tenants.models import Connector, ConnectorSecret, Membership, OAuthClient, SigningKey, Tenant, User

__all__ = [
    "Base",
    "Connector",
    "ConnectorSecret",
    "Device",
    "Facility",
    "InboxEvent",
    "Lane",
    "Membership",
    "OAuthClient",
    "PlateSighting",
    "SigningKey",
    "Space",
    "SpaceStatusInterval",
    "TariffVersion",
    "Tenant",
    "User",
    "Vehicle",
]
