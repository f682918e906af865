"""Test helpers for the payment providers: a stand-in for ParkHub's callback endpoint, and request builders."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.payments import (
    CallbackRejected,
    ChargeRequest,
    DeductionRequest,
    PaymentProvider,
    ProviderEvent,
    RefundRequest,
)

CALLBACK_URL = "http://parkhub.test/callbacks/payments"
STARTED = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


class Receiver:
    """Plays ParkHub's callback endpoint over httpx.ASGITransport: authenticates each callback with the
    provider's `parse_callback`, keeps what it accepted (in arrival order) and answers 204, or answers the
    rejection's status with its JSON. `answer_next` makes it fail the next requests (a receiver outage)."""

    def __init__(self) -> None:
        self.provider: PaymentProvider | None = None
        self.events: list[ProviderEvent] = []
        self.rejections: list[CallbackRejected] = []
        self._outage: list[int] = []
        self.app = Starlette(routes=[Route("/callbacks/payments", self._handle, methods=["POST"])])

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://parkhub.test")

    def answer_next(self, *statuses: int) -> None:
        self._outage.extend(statuses)

    def kinds(self) -> list[tuple[str, str | None]]:
        return [(event.kind.value, event.out_refund_no or event.out_trade_no) for event in self.events]

    async def _handle(self, request: Request) -> Response:
        if self._outage:
            return JSONResponse({"error": "unavailable"}, status_code=self._outage.pop(0))
        assert self.provider is not None
        body = await request.body()
        try:
            events = self.provider.parse_callback(request.headers, body, datetime.now(UTC))
        except CallbackRejected as rejected:
            self.rejections.append(rejected)
            return JSONResponse(rejected.as_json(), status_code=rejected.status)
        self.events.extend(events)
        return Response(status_code=204)


def charge(out_trade_no: str, amount_fen: int = 1500, *, payer: str | None = "driver-1", **extra: Any) -> ChargeRequest:
    return ChargeRequest(
        out_trade_no=out_trade_no,
        amount_fen=amount_fen,
        description=extra.pop("description", "Civic Centre P1 parking"),
        notify_url=CALLBACK_URL,
        payer=payer,
        **extra,
    )


def deduction(out_trade_no: str, amount_fen: int = 800, *, plate: str = "粤B12345", **extra: Any) -> DeductionRequest:
    return DeductionRequest(
        out_trade_no=out_trade_no,
        amount_fen=amount_fen,
        plate=plate,
        plate_color=extra.pop("plate_color", "blue"),
        parking_id=extra.pop("parking_id", "5K8264ILTKCH16CQ250"),
        started_at=STARTED,
        ended_at=STARTED + timedelta(hours=2),
        facility_name="Civic Centre P1",
        notify_url=CALLBACK_URL,
        **extra,
    )


def refund(
    out_refund_no: str, out_trade_no: str, amount_fen: int, total_fen: int, reason: str = "ended early"
) -> RefundRequest:
    return RefundRequest(
        out_refund_no=out_refund_no,
        out_trade_no=out_trade_no,
        amount_fen=amount_fen,
        total_fen=total_fen,
        reason=reason,
        notify_url=CALLBACK_URL,
    )


def ids(events: Iterable[ProviderEvent]) -> list[str]:
    return [event.event_id for event in events]
