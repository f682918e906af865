"""The requests the hub builds are checked before anything is sent: integer fen, the providers' number rules,
aware times, refunds within their payment."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from connectors.payments import (
    ChargeRequest,
    DeductionRequest,
    InvalidPaymentRequest,
    ParkingEntryRequest,
    ServiceQuery,
)
from tests.payments_providers.support import CALLBACK_URL, STARTED, charge, deduction, refund


@pytest.mark.parametrize(
    ("amount", "words"),
    [(15.0, "got float"), (True, "got bool"), ("1500", "got str"), (0, "between 1"), (-5, "between 1")],
)
def test_amounts_are_positive_integer_fen(amount: object, words: str) -> None:
    with pytest.raises(InvalidPaymentRequest, match=words):
        charge("PAY0000001", amount)  # type: ignore[arg-type]


@pytest.mark.parametrize("number", ["short", "has space 01", "x" * 33, "订单0000001", ""])
def test_out_trade_no_follows_the_providers_rules(number: str) -> None:
    with pytest.raises(InvalidPaymentRequest, match="out_trade_no"):
        charge(number)


def test_other_fields_are_checked() -> None:
    with pytest.raises(InvalidPaymentRequest, match="currency"):
        charge("PAY0000001", currency="cny")
    with pytest.raises(InvalidPaymentRequest, match="notify_url"):
        ChargeRequest(out_trade_no="PAY0000001", amount_fen=1, description="x", notify_url="/relative")
    with pytest.raises(InvalidPaymentRequest, match="expires_at"):
        charge("PAY0000001", expires_at=datetime(2026, 11, 21, 8, 0))
    with pytest.raises(InvalidPaymentRequest, match="plate_color"):
        deduction("PAY0000001", plate_color="purple")
    with pytest.raises(InvalidPaymentRequest, match="before started_at"):
        DeductionRequest(
            out_trade_no="PAY0000001",
            amount_fen=100,
            plate="粤B12345",
            plate_color="blue",
            parking_id="P1",
            started_at=STARTED,
            ended_at=STARTED - timedelta(minutes=1),
            facility_name="P1",
            notify_url=CALLBACK_URL,
        )
    with pytest.raises(InvalidPaymentRequest, match="free_minutes"):
        ParkingEntryRequest(
            out_parking_no="IN-1",
            plate="粤B12345",
            plate_color="green",
            started_at=STARTED,
            facility_name="P1",
            notify_url=CALLBACK_URL,
            free_minutes=-1,
        )
    with pytest.raises(InvalidPaymentRequest, match="plate"):
        ServiceQuery(plate=" ", plate_color="blue")


def test_a_refund_cannot_exceed_its_payment() -> None:
    assert refund("REF0000001", "PAY0000001", 1500, 1500).amount_fen == 1500
    with pytest.raises(InvalidPaymentRequest, match="more than total_fen"):
        refund("REF0000001", "PAY0000001", 1501, 1500)
    with pytest.raises(InvalidPaymentRequest, match="out_refund_no"):
        refund("退款1", "PAY0000001", 1, 1500)
