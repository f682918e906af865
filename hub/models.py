"""Every table, imported in one place for Alembic's autogenerate and for tests."""

from hub.db import Base
from hub.drivers.models import Vehicle
from hub.supply.models import Facility, Lane, Space
from tenants.models import Membership, OAuthClient, SigningKey, Tenant, User

__all__ = [
    "Base",
    "Facility",
    "Lane",
    "Membership",
    "OAuthClient",
    "SigningKey",
    "Space",
    "Tenant",
    "User",
    "Vehicle",
]
