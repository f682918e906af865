"""Fixtures for the exception queue: a lot with its lanes and gate (tests/lanes), agents of its operator (each its
own token subject, which is who the audit trail names), the queue's GraphQL documents, and ways to raise
exceptions the way lanes do: through `POST /lanes/{id}/reads`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from hub import jobs
from tests.api.conftest import Caller, Callers, app, callers, client  # noqa: F401  (pytest finds fixtures by name)
from tests.ingest.conftest import run_worker  # noqa: F401 (the real arq worker, in burst mode)
from tests.lanes.conftest import Lot, lot, make_lot, plate_of  # noqa: F401
from tests.live.conftest import live_callers, live_http, live_server  # noqa: F401 (a running server, for subscriptions)

ITEM_FIELDS = """
id kind state plate heldReason passedAt detail raisedAt waitingSeconds claimedBy claimedAt resolvedBy resolvedAt
resolution facility { id name } lane { id name direction } reads { camera plate confidence image }
session { id plate state enteredAt exitedAt priceFen paidFen amountDueFen }
"""
AUDIT_FIELDS = "at actor action reason detail"
QUEUE = f"""
query($facilityIds: [ID!], $states: [LaneExceptionState!], $first: Int, $after: String) {{
  exceptionQueue(facilityIds: $facilityIds, states: $states, first: $first, after: $after) {{
    edges {{ cursor node {{ {ITEM_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
HISTORY = f"""
query($facilityIds: [ID!], $first: Int, $after: String) {{
  exceptionHistory(facilityIds: $facilityIds, first: $first, after: $after) {{
    edges {{ node {{ {ITEM_FIELDS} actions {{ {AUDIT_FIELDS} }} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
ITEM = f"query($id: ID!) {{ exceptionQueueItem(id: $id) {{ {ITEM_FIELDS} }} }}"
GATE_COMMAND_FIELDS = """
id command status lane reason requestedBy requestedAt expiresAt deliveredAt deliveries acknowledgedAt outcome
outcomeDetail faultException
"""
GATE_COMMAND = f"query($id: ID!) {{ exceptionQueueItem(id: $id) {{ gateCommand {{ {GATE_COMMAND_FIELDS} }} }} }}"
AUDIT = f"query($id: ID!) {{ exceptionAuditTrail(exceptionId: $id) {{ {AUDIT_FIELDS} }} }}"
CLAIM = f"""
mutation($id: ID!, $takeOver: Boolean! = false, $reason: String) {{
  claimException(id: $id, takeOver: $takeOver, reason: $reason) {{ {ITEM_FIELDS} }}
}}
"""
RELEASE = f"mutation($id: ID!, $reason: String) {{ releaseException(id: $id, reason: $reason) {{ {ITEM_FIELDS} }} }}"
CORRECT = f"""
mutation($id: ID!, $plate: String!, $reason: String) {{
  correctPlateAndRedecide(id: $id, plate: $plate, reason: $reason) {{
    settled decision reason amountDueFen paymentLink
    laneDecision {{ id source plate decision reason session {{ id }} }}
    exception {{ {ITEM_FIELDS} }}
  }}
}}
"""
OPEN_GATE = f"mutation($id: ID!, $reason: String) {{ openGateRemotely(id: $id, reason: $reason) {{ {ITEM_FIELDS} }} }}"
CLOSE_AT = f"""
mutation($id: ID!, $amountFen: Int!, $reason: String, $openGate: Boolean! = false) {{
  closeSessionAtAmount(id: $id, amountFen: $amountFen, reason: $reason, openGate: $openGate) {{ {ITEM_FIELDS} }}
}}
"""
WAIVE = f"""
mutation($id: ID!, $reason: String, $openGate: Boolean! = false) {{
  waiveException(id: $id, reason: $reason, openGate: $openGate) {{ {ITEM_FIELDS} }}
}}
"""


@pytest.fixture(autouse=True)
def _publishes_from_this_loop(request: pytest.FixtureRequest) -> None:
    """Queue changes of the tests' own requests are published through the in-process app's Redis pool.

    The pool is one per process (hub.jobs); a running test server (tests/live) started in another thread installs
    its own, bound to that thread's event loop, which this loop cannot use."""
    if "live_server" in request.fixturenames:
        request.getfixturevalue("live_server")  # started first, so the pool set below is the one left in place
    if "app" in request.fixturenames:
        jobs.set_job_pool(request.getfixturevalue("app").state.arq)


def agent(callers: Callers, tenant_id: uuid.UUID, name: str, role: str = "operator_staff") -> Caller:  # noqa: F811
    """A person of the operator working the queue, known by their own token subject."""
    token = callers._sign(kind="operator", subject=f"{name}@{tenant_id}", tenant_id=tenant_id, role=role)
    return Caller(callers.client, token, tenant_id=tenant_id)


def subject(name: str, lot: Lot) -> str:  # noqa: F811
    return f"{name}@{lot.tenant_id}"


def disagreeing(first: str, second: str) -> list[dict[str, Any]]:
    """Two cameras reading one passage differently, each with its snapshot."""
    return [
        {"camera": "cam-a", "plate": first, "confidence": 0.93, "image": "cam-a/0187.jpg"},
        {"camera": "cam-b", "plate": second, "confidence": 0.95, "image": "cam-b/0187.jpg"},
    ]


async def raise_disagreement(lot: Lot, lane: str, at: datetime, number: int | None = None) -> dict[str, Any]:  # noqa: F811
    """A passage whose two cameras disagree: the lane holds and raises a plate_disagreement; the gate's answer."""
    number = uuid.uuid4().int % 99_000 if number is None else number
    answer = await lot.gate.passage(lane, None, at, reads=disagreeing(plate_of(number), plate_of(number + 1)))
    assert (answer["decision"], answer["reason"]) == ("hold", "plate_disagreement"), answer
    return answer


@dataclass
class Desk:
    """The agents of one lot's operator: two staff members and an admin."""

    lot: Lot
    alice: Caller
    bob: Caller
    admin: Caller


@pytest.fixture
def desk(lot: Lot, callers: Callers) -> Desk:  # noqa: F811
    return Desk(
        lot,
        agent(callers, lot.tenant_id, "alice"),
        agent(callers, lot.tenant_id, "bob"),
        agent(callers, lot.tenant_id, "carol", role="operator_admin"),
    )


async def queue_of(caller: Caller, **variables: Any) -> list[dict[str, Any]]:
    data = await caller.data(QUEUE, {"first": 100, **variables})
    return [edge["node"] for edge in data["exceptionQueue"]["edges"]]


async def audit_of(caller: Caller, exception_id: str) -> list[dict[str, Any]]:
    return (await caller.data(AUDIT, {"id": exception_id}))["exceptionAuditTrail"]


async def gate_command_of(caller: Caller, exception_id: str) -> dict[str, Any] | None:
    """The gate command the exception's resolution sent, as the queue shows it (null when none)."""
    return (await caller.data(GATE_COMMAND, {"id": exception_id}))["exceptionQueueItem"]["gateCommand"]
