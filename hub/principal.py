"""Who is calling: the verified identity every resolver and service decides on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from hub.db import Scope
from hub.errors import Forbidden

PrincipalKind = Literal["anonymous", "driver", "operator", "city", "connector", "platform"]
OPERATOR_ROLES = ("operator_admin", "operator_staff")


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    subject: str = ""
    tenant_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    # For operators: operator_admin (changes the tenant's supply) or operator_staff (reads, works queues).
    role: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_operator_admin(self) -> bool:
        return self.kind == "operator" and self.role == "operator_admin"

    def db_scope(self) -> Scope:
        """The row-level security scope of this caller's transactions."""
        if self.kind in ("operator", "connector"):
            return Scope(self.kind, tenant_id=self.tenant_id)
        if self.kind == "driver":
            return Scope("driver", user_id=self.user_id)
        return Scope(self.kind)


ANONYMOUS_PRINCIPAL = Principal("anonymous")


def tenant_filter(principal: Principal) -> uuid.UUID | None:
    """The explicit tenant filter for reads: a tenant-scoped caller reads only its tenant."""
    return principal.tenant_id if principal.kind in ("operator", "connector") else None


def require_operator_admin(principal: Principal, what: str = "its supply") -> uuid.UUID:
    """The tenant an operator admin changes `what` of; Forbidden for anyone else."""
    if principal.is_operator_admin and principal.tenant_id:
        return principal.tenant_id
    raise Forbidden(f"only an operator admin of the tenant may change {what}", required_role="operator_admin")
