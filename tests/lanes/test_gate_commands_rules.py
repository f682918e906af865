"""The gate command channel's pure rules: a command's life and status, the wait, and repeated acknowledgements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import InvalidInput
from hub.lanes import gate_rules as rules

ASKED = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
EXPIRES = ASKED + rules.COMMAND_TTL


def status(seconds: float, *, delivered: bool = False, outcome: str | None = None) -> str:
    return rules.status_of(
        expires_at=EXPIRES,
        delivered_at=ASKED + timedelta(seconds=1) if delivered else None,
        acknowledged_at=ASKED + timedelta(seconds=2) if outcome else None,
        outcome=outcome,
        now=ASKED + timedelta(seconds=seconds),
    )


def test_a_command_lives_a_minute_unless_told_otherwise_and_never_longer_than_the_limit() -> None:
    assert rules.expiry(ASKED) == ASKED + timedelta(seconds=60)
    assert rules.expiry(ASKED, timedelta(seconds=15)) == ASKED + timedelta(seconds=15)
    for life in (timedelta(0), timedelta(seconds=-1), rules.MAX_TTL + timedelta(seconds=1)):
        with pytest.raises(InvalidInput):
            rules.expiry(ASKED, life)
    with pytest.raises(ValueError):
        rules.expiry(ASKED.replace(tzinfo=None))


def test_the_status_follows_the_facts_and_the_clock() -> None:
    assert status(0) == "pending"
    assert status(10, delivered=True) == "delivered"
    assert status(60) == "expired"  # expiry is exclusive: at expires_at no gate is told any more
    assert status(59.999) == "pending"
    assert status(61, delivered=True) == "expired"
    assert status(5, delivered=True, outcome="opened") == "acknowledged"
    assert status(5, delivered=True, outcome="failed") == "failed"


@given(st.floats(min_value=0, max_value=3600), st.booleans(), st.sampled_from([None, "opened", "failed"]))
def test_an_answer_wins_whenever_it_came_and_nothing_unanswered_outlives_its_expiry(
    seconds: float, delivered: bool, outcome: str | None
) -> None:
    found = status(seconds, delivered=delivered, outcome=outcome)
    assert found in rules.STATUSES
    if outcome is not None:
        assert found == ("acknowledged" if outcome == "opened" else "failed")
    elif seconds >= 60:
        assert found == "expired"
    else:
        assert found == ("delivered" if delivered else "pending")


def test_the_first_answer_is_recorded_the_same_again_changes_nothing_another_conflicts() -> None:
    assert rules.ack_step(None, "opened") == "record"
    assert rules.ack_step("opened", "opened") == "same"
    assert rules.ack_step("failed", "failed") == "same"
    with pytest.raises(rules.AlreadyAcknowledged) as refused:
        rules.ack_step("opened", "failed")
    assert refused.value.code == "ALREADY_ACKNOWLEDGED"
    assert refused.value.details == {"recorded_outcome": "opened"}


def test_outcomes_and_waits_are_checked() -> None:
    assert rules.check_outcome("opened") == "opened"
    for outcome in ("open", "", None, 1):
        with pytest.raises(InvalidInput):
            rules.check_outcome(outcome)
    assert rules.check_wait(0) == 0
    assert rules.check_wait(rules.MAX_WAIT_SECONDS) == rules.MAX_WAIT_SECONDS
    for wait in (-0.1, rules.MAX_WAIT_SECONDS + 0.1):
        with pytest.raises(InvalidInput):
            rules.check_wait(wait)
