"""The pure decision rules: reconciling reads, the entry and exit decisions, pricing an exit, signed codes."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import InvalidInput
from hub.lanes import rules
from hub.lanes.rules import EarlierStay, ExitPrice, make_read, reconcile
from hub.pricing.tariff import Rate, Tariff

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURLY = Tariff(default_rate=Rate(60, 500), free_minutes=15, exit_grace_minutes=15, reentry_minutes=10)
ENTRY = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


def minutes(count: float) -> datetime:
    return ENTRY + timedelta(minutes=count)


# ---------------------------------------------------------------------------------------------- reads


def test_reads_agreeing_after_normalization_give_the_plate() -> None:
    reads = [make_read("粤B·12345", 0.9), make_read("粤b 12345", 0.81)]
    assert reconcile(reads, 0.8) == rules.Reconciliation("粤B12345")


@pytest.mark.parametrize(
    ("reads", "problem"),
    [
        ([make_read("粤B12345", 0.9), make_read("粤B12346", 0.9)], rules.PLATE_DISAGREEMENT),
        ([make_read("粤B12345", 0.9), make_read(None, None)], rules.PLATE_DISAGREEMENT),
        ([make_read("粤B12345", 0.9), make_read("粤B12345", 0.79)], rules.LOW_CONFIDENCE),
        ([make_read("粤B12345", None)], rules.LOW_CONFIDENCE),
        ([make_read("粤B1?", 0.99)], rules.LOW_CONFIDENCE),
        ([make_read("", None)], rules.NO_PLATE),
        ([], rules.NO_PLATE),
    ],
)
def test_reads_that_disagree_or_doubt_give_no_plate(reads: list[rules.Read], problem: str) -> None:
    assert reconcile(reads, 0.8) == rules.Reconciliation(None, problem)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=4), st.floats(0, 1))
def test_agreeing_reads_pass_exactly_when_every_confidence_reaches_the_threshold(
    confidences: list[float], threshold: float
) -> None:
    result = reconcile([make_read("粤B12345", confidence) for confidence in confidences], threshold)
    assert (result.plate is not None) == all(confidence >= threshold for confidence in confidences)


def test_an_unread_passage_raises_an_exception_unless_no_plate_was_seen() -> None:
    assert rules.unread_outcome(rules.NO_PLATE) == rules.Outcome("hold", rules.NO_PLATE)
    assert rules.unread_outcome(rules.LOW_CONFIDENCE).exception == "low_confidence"


def test_a_threshold_is_between_0_and_1() -> None:
    assert rules.check_threshold(0.0) == 0.0
    with pytest.raises(InvalidInput):
        rules.check_threshold(1.01)


# --------------------------------------------------------------------------------------------- entry


@pytest.mark.parametrize(
    ("standing", "lot_full", "inside", "decision", "reason", "exception"),
    [
        ("visitor", False, False, "open", "entered", None),
        ("blacklisted", False, True, "hold", "blacklisted", None),
        ("restricted", True, True, "hold", "restricted", "restricted_plate"),
        ("visitor", True, False, "hold", "lot_full", None),
        ("visitor", True, True, "hold", "lot_full", None),
        ("pass_holder", True, False, "open", "entered", None),
        ("whitelisted", True, False, "open", "entered", None),
        ("pass_holder", True, True, "hold", "already_inside", "duplicate_entry"),
        ("visitor", False, True, "hold", "already_inside", "duplicate_entry"),
    ],
)
def test_entry_decisions_follow_the_documented_order(
    standing: str, lot_full: bool, inside: bool, decision: str, reason: str, exception: str | None
) -> None:
    outcome = rules.entry_outcome(standing, lot_full=lot_full, already_inside=inside)
    assert (outcome.decision, outcome.reason, outcome.exception) == (decision, reason, exception)
    assert outcome.opens_session == (decision == "open")


def test_reentry_is_within_the_tariffs_interval_of_the_last_exit() -> None:
    left = minutes(100)
    assert rules.is_reentry(HOURLY, left, left + timedelta(minutes=10))
    assert not rules.is_reentry(HOURLY, left, left + timedelta(minutes=10, seconds=1))
    assert not rules.is_reentry(HOURLY, None, left)
    assert not rules.is_reentry(Tariff(default_rate=Rate(60, 500)), left, left + timedelta(minutes=1))
    assert not rules.is_reentry(None, left, left)


# ---------------------------------------------------------------------------------------------- exit


def priced(**options: object) -> ExitPrice:
    return rules.price_exit(HOURLY, SHANGHAI, "standard", ENTRY, minutes(124), **options)  # type: ignore[arg-type]


def test_an_exit_is_priced_under_the_sealed_tariff() -> None:
    assert (priced().total_fen, priced().due_fen, priced().covered_by_pass) == (1500, 1500, False)


def test_a_payment_within_the_exit_grace_prices_the_stay_up_to_the_payment() -> None:
    within = priced(paid_fen=1000, paid_at=minutes(110))  # two started hours when paid; left 14 minutes later
    assert (within.total_fen, within.due_fen) == (1000, 0)
    late = priced(paid_fen=1000, paid_at=minutes(100))  # 24 minutes before leaving: the grace is 15
    assert (late.total_fen, late.due_fen) == (1500, 500)


def test_a_pass_covering_the_stay_leaves_nothing_to_pay() -> None:
    covered = priced(pass_windows=[(minutes(-60), minutes(600))])
    assert (covered.total_fen, covered.due_fen, covered.covered_by_pass) == (0, 0, True)
    partly = priced(pass_windows=[(minutes(-60), minutes(61))])
    assert partly.covered_by_pass is False and partly.due_fen > 0


def test_a_continued_stay_is_priced_from_the_first_entry_and_credited() -> None:
    earlier = EarlierStay(minutes(-130), minutes(-10), 1000)
    continued = rules.price_exit(HOURLY, SHANGHAI, "standard", minutes(-5), minutes(0), earlier=earlier)
    assert (continued.total_fen, continued.due_fen) == (500, 500)


def test_a_lot_without_a_tariff_charges_nothing() -> None:
    free = rules.price_exit(None, SHANGHAI, "standard", ENTRY, minutes(600))
    assert (free.total_fen, free.due_fen, free.quote) == (0, 0, None)


def test_a_gate_clock_behind_the_entry_does_not_fail_the_exit() -> None:
    early = rules.price_exit(HOURLY, SHANGHAI, "standard", ENTRY, minutes(-1))
    assert early.due_fen == 0


@pytest.mark.parametrize(
    ("price", "standing", "paid", "auto_pay", "decision", "reason"),
    [
        (None, "whitelisted", 0, False, "open", "whitelisted"),
        (ExitPrice(0, 0, priced().quote, True), "pass_holder", 0, False, "open", "pass"),
        (ExitPrice(0, 0, priced().quote, False), "visitor", 0, False, "open", "no_fee"),
        (ExitPrice(0, 0, None, False), "visitor", 0, True, "open", "no_tariff"),
        (ExitPrice(1500, 0, priced().quote, False), "visitor", 1500, True, "open", "paid"),
        (ExitPrice(1500, 1500, priced().quote, False), "visitor", 0, True, "open", "auto_pay"),
        (ExitPrice(1500, 1500, priced().quote, False), "pass_holder", 0, False, "hold", "payment_due"),
    ],
)
def test_exit_decisions(
    price: ExitPrice | None, standing: str, paid: int, auto_pay: bool, decision: str, reason: str
) -> None:
    outcome = rules.exit_outcome(has_session=True, standing=standing, priced=price, paid_fen=paid, auto_pay=auto_pay)
    assert (outcome.decision, outcome.reason, outcome.exception) == (decision, reason, None)
    assert outcome.closes_session == (decision == "open")


def test_an_exit_without_a_session_holds_for_an_agent() -> None:
    outcome = rules.exit_outcome(has_session=False, standing="whitelisted", priced=None, paid_fen=0, auto_pay=True)
    assert (outcome.decision, outcome.exception) == ("hold", "exit_without_entry")


def test_the_stored_quote_lists_every_line() -> None:
    version = uuid.uuid4()
    stored = rules.quote_json(priced().quote, version)
    assert stored is not None
    assert (stored["tariff_version_id"], stored["total_fen"]) == (str(version), 1500)
    assert sum(line["amount_fen"] for line in stored["segments"] + stored["adjustments"]) == 1500


# -------------------------------------------------------------------------------------------- codes


@given(st.uuids(), st.uuids(), st.binary(min_size=32, max_size=32))
def test_a_signed_code_reads_back_and_holds_only_under_its_key(
    tenant_id: uuid.UUID, lane_id: uuid.UUID, key: bytes
) -> None:
    code = rules.sign_code(key, rules.LANE_CODE, tenant_id, lane_id)
    read = rules.read_code(code, rules.LANE_CODE)
    assert (read.tenant_id, read.object_id) == (tenant_id, lane_id)
    assert read.valid_under(key)
    assert not read.valid_under(bytes(byte ^ 1 for byte in key))


def test_a_code_of_another_kind_or_tampered_with_is_refused() -> None:
    key, tenant_id, lane_id = b"k" * 32, uuid.uuid4(), uuid.uuid4()
    code = rules.sign_code(key, rules.LANE_CODE, tenant_id, lane_id)
    with pytest.raises(InvalidInput):
        rules.read_code(code, rules.PAYMENT_TOKEN)
    with pytest.raises(InvalidInput):
        rules.read_code(code[:-3], rules.LANE_CODE)
    # A payment token for the same ids is signed differently: one cannot stand in for the other.
    assert rules.sign_code(key, rules.PAYMENT_TOKEN, tenant_id, lane_id)[3:] != code[3:]
    prefix, body = code.split(".", 1)
    payload = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[0] ^= 1  # another operator's id, same signature
    tampered = f"{prefix}." + base64.urlsafe_b64encode(bytes(payload)).decode().rstrip("=")
    assert not rules.read_code(tampered, rules.LANE_CODE).valid_under(key)
