"""The provider-callback benchmark's parts that can be checked without timing anything: its pre-signed callbacks
are what the sandbox adapter accepts, and a tiny run against the test database accepts every callback, applies
every payment with exactly its capture, and leaves the ledger sound and nothing unapplied behind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from rich.console import Console

from bench.callbacks import NO_WORKER, WITH_WORKER, run_callbacks
from bench.callbacks_setup import BenchPayment, signed_callbacks
from connectors.payments import sandbox_wire
from connectors.payments.base import ProviderEventKind
from hub.config import Settings
from hub.payments import rules


def _split(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, body = raw.split(b"\r\n\r\n", 1)
    request_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
    assert int(headers["content-length"]) == len(body)
    return request_line, headers, body


def test_pre_signed_callbacks_are_sandbox_successes_the_adapter_accepts(settings: Settings) -> None:
    connector_id = uuid.uuid4()
    payments = [BenchPayment(uuid.uuid4(), 1230), BenchPayment(uuid.uuid4(), 500)]
    raws = list(signed_callbacks("127.0.0.1:1", connector_id, settings.payment_sandbox_secret, payments, label="t"))
    seen = set()
    for payment, raw in zip(payments, raws, strict=True):
        request_line, headers, body = _split(raw)
        assert request_line == f"POST /connectors/{connector_id} HTTP/1.1"
        [event] = sandbox_wire.parse_callback(settings.payment_sandbox_secret, headers, body, datetime.now(UTC))
        assert event.kind == ProviderEventKind.PAYMENT_SUCCEEDED
        assert event.out_trade_no == rules.out_trade_no(payment.id)
        assert (event.amount_fen, event.currency) == (payment.amount_fen, "CNY")
        seen.add(event.event_id)
    assert len(seen) == 2


async def _drop_queued_cron_jobs(redis) -> None:  # type: ignore[no-untyped-def]
    """The bench's `parkhub worker` schedules its cron jobs in the suite's queue; the suite's burst workers have no
    cron functions and would fail on one left behind."""
    for job_id in await redis.zrange("arq:queue", 0, -1):
        if job_id.startswith(b"cron:"):
            await redis.zrem("arq:queue", job_id)
            await redis.delete(b"arq:job:" + job_id)


async def test_a_tiny_run_accepts_and_applies_every_callback(settings: Settings, redis) -> None:  # type: ignore[no-untyped-def]
    try:
        report = await run_callbacks(Console(quiet=True), settings, workers=1, connections=4, seconds=1, payments=50)
    finally:
        await _drop_queued_cron_jobs(redis)

    assert report.problems == []
    for name in (NO_WORKER, WITH_WORKER):
        run = report.runs[name]
        assert run.rejected == 0  # every answer a 202 (repeats of the 50 are duplicates, accepted once)
    assert report.accepted_a == 50
    assert report.after_b is not None
    assert (report.after_b.accepted, report.after_b.succeeded) == (50, 50)
    check = report.verification
    assert check is not None
    assert (check.succeeded, check.wrong_transfers, check.unapplied_captures, check.violations) == (50, 0, 0, [])
    assert report.removed == (50, 0)  # the run's inbox rows went; no payment was left unapplied
