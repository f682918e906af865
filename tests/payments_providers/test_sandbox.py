"""The sandbox provider behaves like a real one: accepted at once, outcome by signed callback, the truth by query,
and every misbehaviour (failure, timeout, duplicates, reordering, loss, delay) on demand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.payments import (
    InvalidPaymentRequest,
    OrderStatus,
    ParkingEntryRequest,
    PaymentProvider,
    ProviderEventKind,
    ProviderUnavailable,
    ReplyStatus,
    ServiceQuery,
    ServiceState,
)
from connectors.payments.sandbox import SandboxProvider
from connectors.payments.sandbox_delivery import CallbackRecorder
from connectors.signatures import generate_secret
from tests.payments_providers.support import CALLBACK_URL, STARTED, Receiver, charge, deduction, ids, refund

SUCCEEDED = ProviderEventKind.PAYMENT_SUCCEEDED.value
FAILED = ProviderEventKind.PAYMENT_FAILED.value


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    yield Receiver()


@pytest.fixture
async def sandbox(receiver: Receiver) -> AsyncIterator[SandboxProvider]:
    async with receiver.client() as client:
        provider = SandboxProvider(secret=generate_secret(), client=client, retry_backoff_seconds=0, seed=7)
        receiver.provider = provider
        yield provider
        await provider.aclose()


async def test_the_sandbox_is_a_payment_provider(sandbox: SandboxProvider) -> None:
    assert isinstance(sandbox, PaymentProvider)
    assert sandbox.name == "sandbox"


async def test_a_charge_is_accepted_at_once_and_its_outcome_arrives_signed_later(
    sandbox: SandboxProvider, receiver: Receiver
) -> None:
    reply = await sandbox.charge(charge("PAY0000001", 1530))
    assert reply.status == ReplyStatus.ACCEPTED
    assert reply.provider_reference and reply.provider_reference.startswith("sbx_pay_")
    assert receiver.events == []  # not yet: it comes from a background task

    await sandbox.drain()
    [event] = receiver.events
    assert event.kind == ProviderEventKind.PAYMENT_SUCCEEDED
    assert (event.out_trade_no, event.amount_fen, event.currency) == ("PAY0000001", 1530, "CNY")
    assert event.provider_reference == reply.provider_reference
    assert event.raw["data"]["amount"] == "15.30"  # decimal yuan on the wire, exact fen after parsing
    assert event.occurred_at.tzinfo is not None

    order = await sandbox.query_payment("PAY0000001")
    assert (order.status, order.amount_fen, order.provider_reference) == (
        OrderStatus.SUCCEEDED,
        1530,
        reply.provider_reference,
    )


async def test_insufficient_funds_is_a_failure_callback(sandbox: SandboxProvider, receiver: Receiver) -> None:
    reply = await sandbox.charge(charge("PAY0000002", payer="sandbox:fail"))
    assert reply.status == ReplyStatus.ACCEPTED
    await sandbox.drain()
    [event] = receiver.events
    assert (event.kind.value, event.failure_code) == (FAILED, "INSUFFICIENT_FUNDS")
    assert (await sandbox.query_payment("PAY0000002")).status == OrderStatus.FAILED


async def test_a_timeout_hides_an_order_the_provider_did_take(sandbox: SandboxProvider, receiver: Receiver) -> None:
    with pytest.raises(ProviderUnavailable, match="WAS taken"):
        await sandbox.charge(charge("PAY0000003", payer="sandbox:timeout"))
    # The caller does not know; the provider does.
    order = await sandbox.query_payment("PAY0000003")
    assert order.status == OrderStatus.SUCCEEDED

    # Asking again with the same number gives the same order, never a second one.
    again = await sandbox.charge(charge("PAY0000003", payer="sandbox:timeout"))
    assert (again.status, again.provider_reference) == (ReplyStatus.SUCCEEDED, order.provider_reference)
    await sandbox.drain()
    assert receiver.kinds() == [(SUCCEEDED, "PAY0000003")]


async def test_an_unavailable_provider_took_nothing(sandbox: SandboxProvider) -> None:
    sandbox.set_outcome("PAY0000004", "unavailable")
    with pytest.raises(ProviderUnavailable, match="not taken"):
        await sandbox.charge(charge("PAY0000004"))
    assert (await sandbox.query_payment("PAY0000004")).status == OrderStatus.NOT_FOUND
    assert (await sandbox.charge(charge("PAY0000004"))).status == ReplyStatus.ACCEPTED


async def test_duplicate_callbacks_carry_the_same_event_id(sandbox: SandboxProvider, receiver: Receiver) -> None:
    await sandbox.charge(charge("PAY0000005", payer="sandbox:duplicate"))
    await sandbox.drain()
    assert receiver.kinds() == [(SUCCEEDED, "PAY0000005")] * 2
    first, second = ids(receiver.events)
    assert first == second


async def test_renotify_sends_the_outcome_again_under_a_new_id(sandbox: SandboxProvider, receiver: Receiver) -> None:
    await sandbox.charge(charge("PAY0000006", description="sandbox:renotify"))
    await sandbox.drain()
    assert receiver.kinds() == [(SUCCEEDED, "PAY0000006")] * 2
    assert len(set(ids(receiver.events))) == 2


async def test_reorder_delivers_the_refund_before_its_payment_and_the_superseded_failure_last(
    sandbox: SandboxProvider, receiver: Receiver
) -> None:
    await sandbox.charge(charge("PAY0000007", payer="sandbox:reorder"))
    await asyncio.sleep(0)
    assert receiver.events == []  # held back
    assert (await sandbox.refund(refund("REF0000007", "PAY0000007", 500, 1500))).status == ReplyStatus.ACCEPTED
    await sandbox.drain()

    assert receiver.kinds() == [
        (ProviderEventKind.REFUND_SUCCEEDED.value, "REF0000007"),
        (SUCCEEDED, "PAY0000007"),
        (FAILED, "PAY0000007"),
    ]
    succeeded, superseded = receiver.events[1:]
    assert superseded.occurred_at < succeeded.occurred_at  # older news, arriving last
    assert (await sandbox.query_payment("PAY0000007")).status == OrderStatus.SUCCEEDED


async def test_reorder_without_a_refund_is_released_by_drain(sandbox: SandboxProvider, receiver: Receiver) -> None:
    await sandbox.charge(charge("PAY0000008", payer="sandbox:reorder sandbox:fail"))
    assert sandbox.pending_deliveries == 2
    await sandbox.drain()
    assert receiver.kinds() == [(FAILED, "PAY0000008"), (ProviderEventKind.PAYMENT_ACCEPTED.value, "PAY0000008")]


async def test_lost_callbacks_never_arrive_but_the_query_tells_the_truth(
    sandbox: SandboxProvider, receiver: Receiver
) -> None:
    await sandbox.deduct(deduction("PAY0000009", plate="粤B12345 sandbox:lost"))
    await sandbox.drain()
    assert receiver.events == []
    assert [body["type"] for body in sandbox.lost] == [SUCCEEDED]
    assert (await sandbox.query_payment("PAY0000009")).status == OrderStatus.SUCCEEDED


async def test_slow_callbacks_wait_and_drain_waits_for_them(receiver: Receiver) -> None:
    async with receiver.client() as client:
        sandbox = SandboxProvider(secret=generate_secret(), client=client, slow_seconds=0.2)
        receiver.provider = sandbox
        await sandbox.charge(charge("PAY0000010", payer="sandbox:slow"))
        await asyncio.sleep(0)
        assert receiver.events == []
        assert sandbox.pending_deliveries == 1
        await sandbox.drain()
        assert receiver.kinds() == [(SUCCEEDED, "PAY0000010")]


async def test_a_pending_order_stays_accepted_until_completed(sandbox: SandboxProvider, receiver: Receiver) -> None:
    sandbox.set_outcome("PAY0000011", "pending")
    await sandbox.charge(charge("PAY0000011"))
    await sandbox.drain()
    assert receiver.events == []
    assert (await sandbox.query_payment("PAY0000011")).status == OrderStatus.ACCEPTED
    refused = await sandbox.refund(refund("REF0000011", "PAY0000011", 100, 1500))
    assert (refused.status, refused.failure_code) == (ReplyStatus.FAILED, "PAYMENT_NOT_CAPTURED")

    sandbox.complete("PAY0000011", succeed=False)
    await sandbox.drain()
    assert receiver.kinds() == [(FAILED, "PAY0000011")]
    with pytest.raises(KeyError):
        sandbox.complete("PAY0000011")


async def test_refused_deliveries_are_retried_then_given_up(sandbox: SandboxProvider, receiver: Receiver) -> None:
    receiver.answer_next(500, 503)
    await sandbox.charge(charge("PAY0000012"))
    await sandbox.drain()
    assert receiver.kinds() == [(SUCCEEDED, "PAY0000012")]
    assert [(attempt.status_code, attempt.outcome) for attempt in sandbox.deliveries] == [
        (500, "retrying"),
        (503, "retrying"),
        (204, "delivered"),
    ]

    recorder = CallbackRecorder(statuses=[500] * 3)
    async with recorder.client() as client:
        stubborn = SandboxProvider(secret=generate_secret(), client=client, max_attempts=3, retry_backoff_seconds=0)
        await stubborn.charge(charge("PAY0000013"))
        await stubborn.drain()
    assert [attempt.outcome for attempt in stubborn.deliveries] == ["retrying", "retrying", "gave_up"]
    assert recorder.events() == []
    assert len(recorder.requests) == 3
    # Every attempt is signed afresh, with the same webhook-id.
    assert len({request.headers["webhook-id"] for request, _, _ in recorder.requests}) == 1


async def test_refunds_never_exceed_what_was_captured(sandbox: SandboxProvider, receiver: Receiver) -> None:
    await sandbox.charge(charge("PAY0000014", 1000))
    first = await sandbox.refund(refund("REF0000014A", "PAY0000014", 600, 1000))
    assert first.status == ReplyStatus.ACCEPTED
    too_much = await sandbox.refund(refund("REF0000014B", "PAY0000014", 401, 1000))
    assert (too_much.status, too_much.failure_code) == (ReplyStatus.FAILED, "REFUND_EXCEEDS_CAPTURED")
    assert "only 400 fen" in (too_much.failure_message or "")
    assert (await sandbox.refund(refund("REF0000014C", "PAY0000014", 400, 1000))).status == ReplyStatus.ACCEPTED
    assert (await sandbox.query_refund("REF0000014B")).status == OrderStatus.NOT_FOUND

    # The same refund asked again is the same refund; the same number for another refund is refused.
    again = await sandbox.refund(refund("REF0000014A", "PAY0000014", 600, 1000))
    assert (again.status, again.provider_reference) == (ReplyStatus.SUCCEEDED, first.provider_reference)
    reused = await sandbox.refund(refund("REF0000014A", "PAY0000014", 300, 1000))
    assert (reused.status, reused.failure_code) == (ReplyStatus.FAILED, "OUT_REFUND_NO_USED")

    wrong_total = await sandbox.refund(refund("REF0000014D", "PAY0000014", 1, 999))
    assert wrong_total.failure_code == "TOTAL_MISMATCH"
    unknown = await sandbox.refund(refund("REF0000014E", "PAY9999999", 1, 1000))
    assert unknown.failure_code == "ORDER_NOT_FOUND"

    order = await sandbox.query_refund("REF0000014C")
    assert (order.status, order.out_trade_no, order.amount_fen) == (OrderStatus.SUCCEEDED, "PAY0000014", 400)


async def test_concurrent_refunds_together_never_exceed_the_payment(sandbox: SandboxProvider) -> None:
    await sandbox.charge(charge("PAY0000015", 1000))
    replies = await asyncio.gather(
        *(sandbox.refund(refund(f"REF0000015-{index}", "PAY0000015", 300, 1000)) for index in range(6))
    )
    accepted = [reply for reply in replies if reply.status == ReplyStatus.ACCEPTED]
    assert len(accepted) == 3
    assert {reply.failure_code for reply in replies if reply not in accepted} == {"REFUND_EXCEEDS_CAPTURED"}


async def test_a_pending_refund_holds_its_amount(sandbox: SandboxProvider, receiver: Receiver) -> None:
    await sandbox.charge(charge("PAY0000016", 1000))
    await sandbox.refund(refund("REF0000016A", "PAY0000016", 700, 1000, reason="sandbox:pending"))
    blocked = await sandbox.refund(refund("REF0000016B", "PAY0000016", 400, 1000))
    assert blocked.failure_code == "REFUND_EXCEEDS_CAPTURED"
    sandbox.complete("REF0000016A", succeed=False)  # declined: the amount is free again
    assert (await sandbox.refund(refund("REF0000016C", "PAY0000016", 1000, 1000))).status == ReplyStatus.ACCEPTED
    await sandbox.drain()
    assert (ProviderEventKind.REFUND_FAILED.value, "REF0000016A") in receiver.kinds()


async def test_a_used_number_for_a_different_order_is_refused(sandbox: SandboxProvider) -> None:
    await sandbox.charge(charge("PAY0000017", 1000))
    reused = await sandbox.charge(charge("PAY0000017", 2000))
    assert (reused.status, reused.failure_code) == (ReplyStatus.FAILED, "OUT_TRADE_NO_USED")


async def test_auto_pay_service_states_and_blocked_entries(sandbox: SandboxProvider, receiver: Receiver) -> None:
    assert (await sandbox.check_service(ServiceQuery(plate="粤B12345", plate_color="blue"))).state == "normal"
    paused = ServiceQuery(plate="粤B54321 sandbox:paused", plate_color="blue")
    assert (await sandbox.check_service(paused)).state == ServiceState.PAUSED
    refused = await sandbox.deduct(deduction("PAY0000018", plate="粤B54321 sandbox:paused"))
    assert (refused.status, refused.failure_code) == (ReplyStatus.FAILED, "SERVICE_NOT_AVAILABLE")

    entry_request = ParkingEntryRequest(
        out_parking_no="IN-1",
        plate="粤B12345",
        plate_color="blue",
        started_at=STARTED,
        facility_name="Civic Centre P1",
        notify_url=CALLBACK_URL,
    )
    entry = await sandbox.open_parking(entry_request)
    assert entry.state == ServiceState.NORMAL
    assert (await sandbox.open_parking(entry_request)).parking_id == entry.parking_id  # idempotent

    sandbox.set_parking_state(entry.parking_id, ServiceState.BLOCKED, "payer paused the service")
    blocked = await sandbox.deduct(deduction("PAY0000019", parking_id=entry.parking_id))
    assert blocked.failure_code == "PARKING_BLOCKED"
    await sandbox.drain()
    [event] = receiver.events
    assert (event.kind, event.service_state, event.details["parking_id"]) == (
        ProviderEventKind.SERVICE_STATE,
        ServiceState.BLOCKED,
        entry.parking_id,
    )


async def test_outcome_words_are_checked(sandbox: SandboxProvider) -> None:
    with pytest.raises(ValueError, match="unknown sandbox word"):
        sandbox.set_outcome("PAY0000020", "explode")
    with pytest.raises(ValueError, match="contradictory"):
        sandbox.set_outcome("PAY0000020", "fail", "pending")
    with pytest.raises(InvalidPaymentRequest, match="unknown sandbox word"):
        await sandbox.charge(charge("PAY0000020", payer="sandbox:fial"))
    with pytest.raises(InvalidPaymentRequest, match="payments"):
        await sandbox.refund(refund("REF0000020", "PAY0000020", 1, 1500, reason="sandbox:reorder"))


async def test_a_seed_makes_the_sandbox_reproducible(receiver: Receiver) -> None:
    async def references(seed: int) -> list[str | None]:
        async with receiver.client() as client:
            provider = SandboxProvider(secret=generate_secret(), client=client, seed=seed)
            receiver.provider = provider
            replies = [await provider.charge(charge(f"PAY00000{index}")) for index in range(21, 24)]
            await provider.drain()
            return [reply.provider_reference for reply in replies]

    assert await references(42) == await references(42)
    assert await references(42) != await references(43)


async def test_an_unreachable_receiver_is_tried_again() -> None:
    answers: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        if not answers:
            answers.append("refused")
            raise httpx.ConnectError("connection refused", request=request)
        answers.append("ok")
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(flaky)) as client:
        sandbox = SandboxProvider(secret=generate_secret(), client=client, retry_backoff_seconds=0)
        await sandbox.charge(charge("PAY0000025"))
        await sandbox.drain()
    assert answers == ["refused", "ok"]
    first, second = sandbox.deliveries
    assert (first.status_code, first.outcome, second.outcome) == (None, "retrying", "delivered")
    assert first.error is not None and "ConnectError" in first.error
