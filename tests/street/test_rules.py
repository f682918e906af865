"""The pure rules of street sessions: the state machine, prepaid and extension prices, refunds on ending early
(not a share of the time), automatic starts and ends, enforcement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.errors import DomainError
from hub.pricing.rules import price
from hub.pricing.tariff import Tariff
from hub.street import rules
from hub.street.rules import Interval
from tests.street.conftest import DAY_CAP_FEN, FIRST_HALF_HOUR_FEN, METER, QUARTER_HOUR_FEN, metered_fen

SHENZHEN = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # 10:00 local
TARIFF = Tariff.from_dict(METER)


def minutes(count: float) -> timedelta:
    return timedelta(minutes=count)


# ---- the state machine ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "event", "expected"),
    [
        (rules.PREPAID, rules.EXTEND, rules.EXTENDED),
        (rules.PREPAID, rules.END, rules.ENDED_EARLY),
        (rules.PREPAID, rules.EXPIRE, rules.EXPIRED),
        (rules.POSTPAID, rules.VACATE, rules.ENDED_BY_SENSOR),
        (rules.POSTPAID, rules.END, rules.ENDED_BY_DRIVER),
    ],
)
def test_an_open_session_moves_as_the_machine_says(mode: str, event: str, expected: str) -> None:
    paid_until = START + minutes(60) if mode == rules.PREPAID else None
    now = START + minutes(70) if event == rules.EXPIRE else START + minutes(10)
    for state in rules.OPEN_STATES:
        assert rules.transition(mode, state, event, paid_until, now) == expected


@pytest.mark.parametrize("final", rules.FINAL_STATES)
@pytest.mark.parametrize("event", [rules.EXTEND, rules.END, rules.VACATE])
def test_a_final_session_refuses_everything(final: str, event: str) -> None:
    with pytest.raises(DomainError) as refused:
        rules.transition(rules.PREPAID, final, event, START + minutes(60), START + minutes(10))
    assert refused.value.code == "SESSION_ENDED"
    assert refused.value.details["state"] == final


def test_a_prepaid_session_past_its_paid_end_is_expired_before_any_sweep_writes_it() -> None:
    paid_until = START + minutes(60)
    assert rules.effective_state(rules.EXTENDED, rules.PREPAID, paid_until, paid_until - minutes(1)) == rules.EXTENDED
    assert rules.effective_state(rules.EXTENDED, rules.PREPAID, paid_until, paid_until) == rules.EXPIRED
    with pytest.raises(DomainError) as refused:
        rules.transition(rules.PREPAID, rules.ACTIVE, rules.END, paid_until, paid_until + minutes(1))
    assert (refused.value.code, refused.value.details["state"]) == ("SESSION_ENDED", rules.EXPIRED)
    # A postpaid session has no paid end: it runs until something ends it.
    assert rules.effective_state(rules.ACTIVE, rules.POSTPAID, None, START + timedelta(days=3)) == rules.ACTIVE


def test_only_prepaid_sessions_extend_and_only_postpaid_ones_end_by_sensor() -> None:
    with pytest.raises(DomainError) as extend_postpaid:
        rules.transition(rules.POSTPAID, rules.ACTIVE, rules.EXTEND, None, START)
    assert extend_postpaid.value.code == "NOT_PREPAID"
    with pytest.raises(DomainError) as vacate_prepaid:
        rules.transition(rules.PREPAID, rules.ACTIVE, rules.VACATE, START + minutes(60), START)
    assert vacate_prepaid.value.code == "INVALID_TRANSITION"


# ---- durations -------------------------------------------------------------------------------------------


def test_durations_are_bought_in_the_tariffs_steps() -> None:
    assert rules.increment_minutes(TARIFF) == 15  # 30-minute first unit, 15-minute units
    thirds = Tariff.from_dict(
        {
            "default_rate": {
                "unit_minutes": 20,
                "unit_price_fen": 100,
                "first_unit_minutes": 30,
                "first_unit_price_fen": 300,
            }
        }
    )
    assert rules.increment_minutes(thirds) == 10
    rules.check_minutes(15, TARIFF, "durationMinutes")
    rules.check_minutes(rules.MAX_PREPAID_MINUTES, TARIFF, "durationMinutes")
    for wrong in (0, 10, 20, -15, rules.MAX_PREPAID_MINUTES + 15):
        with pytest.raises(DomainError) as refused:
            rules.check_minutes(wrong, TARIFF, "durationMinutes")
        assert refused.value.code == "INVALID_DURATION"
        assert refused.value.details["increment_minutes"] == 15


def test_an_extension_may_not_take_the_time_bought_past_a_day() -> None:
    rules.check_minutes(60, TARIFF, "minutes", already=rules.MAX_PREPAID_MINUTES - 60)
    with pytest.raises(DomainError) as refused:
        rules.check_minutes(75, TARIFF, "minutes", already=rules.MAX_PREPAID_MINUTES - 60)
    assert refused.value.details["max_minutes"] == 60


# ---- money -------------------------------------------------------------------------------------------------


def test_a_prepaid_span_costs_the_engines_price_of_it() -> None:
    bought = rules.buy(TARIFF, SHENZHEN, "standard", START, 90)
    assert bought.paid_until == START + minutes(90)
    assert bought.total_fen == bought.cost_fen == FIRST_HALF_HOUR_FEN + 4 * QUARTER_HOUR_FEN


def test_an_extension_costs_what_the_longer_span_adds() -> None:
    bought = rules.buy(TARIFF, SHENZHEN, "standard", START, 30)
    extended = rules.extend(TARIFF, SHENZHEN, "standard", START, bought.paid_until, bought.total_fen, 30)
    # The first half hour is not bought twice: the extension is two quarter hours, not a new first unit.
    assert extended.cost_fen == 2 * QUARTER_HOUR_FEN
    assert extended.total_fen == metered_fen(60)
    assert extended.paid_until == START + minutes(60)


def test_ending_early_refunds_paid_minus_the_true_price_not_a_share_of_the_time() -> None:
    bought = rules.buy(TARIFF, SHENZHEN, "standard", START, 120)  # 500 + 6 * 200 = 1700
    settled = rules.settle(
        TARIFF, SHENZHEN, "standard", rules.PREPAID, rules.ENDED_EARLY, START, START + minutes(20), bought.total_fen
    )
    assert settled.price_fen == FIRST_HALF_HOUR_FEN  # 20 minutes is inside the first half hour
    assert settled.refund_fen == bought.total_fen - FIRST_HALF_HOUR_FEN
    linear_refund = bought.total_fen * (120 - 20) // 120
    assert settled.refund_fen != linear_refund
    assert settled.charge_fen is None


def test_under_the_day_cap_ending_early_may_refund_nothing() -> None:
    bought = rules.buy(TARIFF, SHENZHEN, "standard", START, 600)
    assert bought.total_fen == DAY_CAP_FEN
    capped = rules.settle(
        TARIFF, SHENZHEN, "standard", rules.PREPAID, rules.ENDED_EARLY, START, START + minutes(240), bought.total_fen
    )
    assert (capped.price_fen, capped.refund_fen) == (DAY_CAP_FEN, 0)
    below = rules.settle(
        TARIFF, SHENZHEN, "standard", rules.PREPAID, rules.ENDED_EARLY, START, START + minutes(180), bought.total_fen
    )
    assert below.refund_fen == DAY_CAP_FEN - metered_fen(180)


def test_a_postpaid_session_is_charged_its_true_price_and_refunded_nothing() -> None:
    settled = rules.settle(
        TARIFF, SHENZHEN, "standard", rules.POSTPAID, rules.ENDED_BY_SENSOR, START, START + minutes(50), 0
    )
    assert settled.charge_fen == settled.price_fen == metered_fen(50)
    assert settled.refund_fen is None


def test_the_vehicle_class_scales_the_price() -> None:
    large = Tariff.from_dict({**METER, "vehicle_class_percent": {"large": 200}})
    assert rules.buy(large, SHENZHEN, "large", START, 60).total_fen == 2 * metered_fen(60)


@given(
    bought=st.integers(min_value=1, max_value=96).map(lambda steps: steps * 15),
    extensions=st.lists(st.integers(min_value=1, max_value=8).map(lambda steps: steps * 15), max_size=3),
    ended_at=st.floats(min_value=0, max_value=1),
)
def test_prepaid_money_always_adds_up(bought: int, extensions: list[int], ended_at: float) -> None:
    """Whatever is bought and extended, the driver pays exactly the price of the whole span, and ending at any
    moment refunds paid minus the true price, never negative and never more than was paid."""
    purchase = rules.buy(TARIFF, SHENZHEN, "standard", START, bought)
    paid, paid_until = purchase.cost_fen, purchase.paid_until
    for more in extensions:
        extension = rules.extend(TARIFF, SHENZHEN, "standard", START, paid_until, paid, more)
        paid, paid_until = paid + extension.cost_fen, extension.paid_until
    assert paid == price(TARIFF, SHENZHEN, "standard", START, paid_until).total_fen
    end = START + (paid_until - START) * ended_at
    settled = rules.settle(TARIFF, SHENZHEN, "standard", rules.PREPAID, rules.ENDED_EARLY, START, end, paid)
    assert 0 <= settled.refund_fen <= paid
    assert settled.refund_fen == paid - settled.price_fen


# ---- automatic sessions ---------------------------------------------------------------------------------------


def test_a_sighting_in_an_occupied_bay_starts_at_the_sensors_arrival() -> None:
    history = [Interval("vacant", START - minutes(60), START), Interval("occupied", START, None)]
    decided = rules.auto_session_start(START + minutes(3), history, None, START + minutes(4))
    assert decided.start == START


def test_a_camera_may_see_the_plate_just_before_the_sensor_reports_the_car() -> None:
    history = [
        Interval("vacant", START - minutes(60), START + minutes(1)),
        Interval("occupied", START + minutes(1), None),
    ]
    assert rules.auto_session_start(START, history, None, START + minutes(5)).start == START + minutes(1)


def test_a_sighting_in_a_vacant_bay_waits_for_the_sensor_then_starts_nothing() -> None:
    history = [Interval("vacant", START - minutes(60), None)]
    assert rules.auto_session_start(START, history, None, START + minutes(1)) == rules.AutoStart()
    late = rules.auto_session_start(START, history, None, START + rules.SIGHTING_LEAD)
    assert (late.start, late.outcome) == (None, rules.BAY_VACANT)


def test_without_a_sensed_status_the_sighting_itself_starts_the_session() -> None:
    assert rules.auto_session_start(START, [], None, START).start == START
    assert rules.auto_session_start(START, [Interval("unknown", START - minutes(5), None)], None, START).start == START


def test_a_car_that_stays_after_its_prepaid_session_starts_paying_from_its_end() -> None:
    history = [Interval("occupied", START - minutes(90), None)]
    decided = rules.auto_session_start(START, history, START - minutes(30), START)
    assert decided.start == START - minutes(30)


def test_the_first_vacancy_after_the_start_ends_a_postpaid_session_and_silence_ends_nothing() -> None:
    history = [
        Interval("vacant", START - minutes(60), START),
        Interval("occupied", START, START + minutes(40)),
        Interval("unknown", START + minutes(40), START + minutes(50)),
        Interval("vacant", START + minutes(50), START + minutes(70)),
        Interval("occupied", START + minutes(70), None),
    ]
    assert rules.sensor_end(START, history) == START + minutes(50)
    assert rules.sensor_end(START, history[:3]) is None


# ---- enforcement --------------------------------------------------------------------------------------------------


def test_an_occupied_bay_is_flagged_after_the_grace_counted_from_its_last_session() -> None:
    grace = rules.ENFORCEMENT_GRACE
    assert not rules.needs_enforcement(START, None, START + grace - minutes(1))
    assert rules.needs_enforcement(START, None, START + grace)
    # A prepaid session ended (or ran out) while the car stayed: the grace counts from its end.
    assert not rules.needs_enforcement(START, START + minutes(60), START + minutes(62))
    assert rules.needs_enforcement(START, START + minutes(60), START + minutes(60) + grace)
    assert rules.unpaid_since(START, START + minutes(60)) == START + minutes(60)


@pytest.mark.parametrize(
    ("status", "confirmed", "retired", "has_session", "expected"),
    [
        ("occupied", True, False, True, rules.SESSION_STARTED),
        ("vacant", True, False, False, rules.VACATED),
        ("vacant", False, False, False, None),  # a silent sensor: nobody saw the car leave
        ("occupied", True, False, False, None),
        ("out_of_service", True, False, False, rules.STATUS_CHANGED),
        ("occupied", True, True, False, rules.STATUS_CHANGED),
    ],
)
def test_a_flag_stands_until_a_session_starts_or_the_bay_is_seen_vacant(
    status: str, confirmed: bool, retired: bool, has_session: bool, expected: str | None
) -> None:
    assert rules.flag_resolution(status, confirmed, retired, has_session) == expected


def test_idempotency_keys_are_short_printable_strings() -> None:
    assert rules.check_idempotency_key(None) is None
    assert rules.check_idempotency_key("start-1") == "start-1"
    for wrong in ("", "x" * 101, "tab\there"):
        with pytest.raises(DomainError) as refused:
            rules.check_idempotency_key(wrong)
        assert refused.value.code == "INVALID_IDEMPOTENCY_KEY"
