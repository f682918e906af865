"""The queue's pure rules: who may claim or act, reasons, which session an exception concerns, what a live
subscriber hears, and that a queue event survives its trip through Redis unchanged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from hub.errors import Forbidden, InvalidInput
from hub.principal import Principal
from hub.queue import rules
from hub.queue.events import QueueEvent, QueueItem, QueueSession
from hub.queue.rules import Agent, AlreadyClaimed, AlreadyResolved, NotClaimed, QueueWatch

TENANT = uuid.uuid4()
ALICE = Agent(TENANT, "alice", is_admin=False)
CAROL = Agent(TENANT, "carol", is_admin=True)


def item(facility_id: uuid.UUID, tenant_id: uuid.UUID = TENANT) -> QueueItem:
    now = datetime.now(UTC)
    session = QueueSession(uuid.uuid4(), "粤B12345", "open", now, None, None, 0, 500)
    return QueueItem(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        kind="low_confidence",
        state="claimed",
        facility_id=facility_id,
        facility_name="P1",
        lane_id=uuid.uuid4(),
        lane_name="Out",
        lane_direction="exit",
        decision_id=uuid.uuid4(),
        decision_reason="low_confidence",
        passed_at=now,
        plate="粤B12345",
        reads=[{"camera": "cam-a", "plate": "粤B12345", "confidence": 0.5, "image": "a.jpg"}],
        detail={"threshold": 0.8},
        session=session,
        claimed_by="alice",
        claimed_at=now,
        resolved_by=None,
        resolved_at=None,
        resolution=None,
        created_at=now,
    )


def test_who_is_an_agent() -> None:
    staff = Principal("operator", "alice", TENANT, role="operator_staff")
    assert rules.agent_of(staff) == ALICE
    assert rules.agent_of(Principal("operator", "carol", TENANT, role="operator_admin")).is_admin
    for outsider in (
        Principal("driver", "d@example.com", user_id=uuid.uuid4()),
        Principal("city", "city"),
        Principal("connector", "gate", TENANT),
        Principal("operator", "", TENANT, role="operator_staff"),
    ):
        with pytest.raises(Forbidden):
            rules.agent_of(outsider)


def test_claiming() -> None:
    assert rules.claim_step("open", None, ALICE, take_over=False) == "claim"
    assert rules.claim_step("open", None, ALICE, take_over=True) == "claim"
    assert rules.claim_step("claimed", "alice", ALICE, take_over=False) == "keep"
    with pytest.raises(AlreadyClaimed):
        rules.claim_step("claimed", "bob", ALICE, take_over=False)
    with pytest.raises(Forbidden):
        rules.claim_step("claimed", "bob", ALICE, take_over=True)
    assert rules.claim_step("claimed", "bob", CAROL, take_over=True) == "take_over"
    with pytest.raises(AlreadyResolved):
        rules.claim_step("resolved", "alice", CAROL, take_over=True)


def test_only_the_holder_acts() -> None:
    rules.check_holder("claimed", "alice", ALICE)
    with pytest.raises(NotClaimed):
        rules.check_holder("open", None, ALICE)
    with pytest.raises(AlreadyClaimed):
        rules.check_holder("claimed", "bob", ALICE)
    with pytest.raises(AlreadyClaimed):  # an admin takes the claim over first
        rules.check_holder("claimed", "bob", CAROL)
    with pytest.raises(AlreadyResolved):
        rules.check_holder("resolved", "alice", ALICE)


def test_reasons_and_amounts() -> None:
    assert rules.check_reason("  paid cash ") == "paid cash"
    assert rules.check_reason(None, required=False) is None
    for blank in (None, "", " \t"):
        with pytest.raises(InvalidInput) as refused:
            rules.check_reason(blank)
        assert refused.value.code == "REASON_REQUIRED"
    with pytest.raises(InvalidInput):
        rules.check_reason("x" * (rules.REASON_MAX_LENGTH + 1))
    assert rules.check_amount(0) == 0
    with pytest.raises(InvalidInput):
        rules.check_amount(-1)
    assert rules.check_states(None) == ("open", "claimed")
    with pytest.raises(InvalidInput):
        rules.check_states(["resolved"])


def test_the_session_an_exception_concerns() -> None:
    own, candidate = uuid.uuid4(), uuid.uuid4()
    assert rules.session_of({"session_id": own, "detail": {"candidate_session_id": str(candidate)}}) == own
    assert rules.session_of({"session_id": None, "detail": {"candidate_session_id": str(candidate)}}) == candidate
    assert rules.session_of({"session_id": None, "detail": {}}) is None


def test_a_correction_settles_when_the_barrier_opens_or_a_new_exception_takes_over() -> None:
    assert rules.redecision_settles("open", raised_exception=False)
    assert rules.redecision_settles("hold", raised_exception=True)
    assert not rules.redecision_settles("hold", raised_exception=False)


def test_a_watch_hears_its_operator_and_facilities_only() -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    at = datetime.now(UTC)
    here = QueueEvent("raised", "system", at, item(mine))
    there = QueueEvent("raised", "system", at, item(other))
    elsewhere = QueueEvent("raised", "system", at, item(mine, tenant_id=uuid.uuid4()))
    assert QueueWatch(TENANT).matches(here) and QueueWatch(TENANT).matches(there)
    assert not QueueWatch(TENANT).matches(elsewhere)
    one = QueueWatch(TENANT, frozenset({mine}))
    assert one.matches(here) and not one.matches(there)


def test_an_event_travels_unchanged_and_nothing_else_passes_for_one() -> None:
    event = QueueEvent("claimed", "alice", datetime.now(UTC), item(uuid.uuid4()))
    assert QueueEvent.from_json(event.to_json()) == event
    for garbage in (b"{", b"[]", b'{"action": "raised"}', b'{"action": "x", "actor": "a", "at": "now", "item": {}}'):
        with pytest.raises(ValueError):
            QueueEvent.from_json(garbage)
