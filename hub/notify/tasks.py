"""Jobs of notifications: deliver one webhook (one attempt, then its outcome), and the sweep that queues due
retries and deliveries whose job was lost. Each receives ids, reloads rows and is safe to run twice: an attempt
first claims its delivery in the database, so a second job for it finds nothing due.

The attempt is a Standard Webhooks POST: `webhook-id` (the delivery's id, the same on every attempt),
`webhook-timestamp` (now, in seconds) and `webhook-signature` (`v1,<base64>` for each current secret). Only a 2xx
counts; redirects are not followed; the attempt has ATTEMPT_TIMEOUT_SECONDS in all. In production the endpoint's
host must resolve to public addresses only, so a webhook cannot be aimed at the hub's own network.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from arq import cron

from hub.config import get_settings
from hub.db import PLATFORM, Scope
from hub.jobs import JobContext, job, register_cron
from hub.notify import rules, service
from hub.notify.service import Attempt, AttemptResult

SWEEP_LIMIT = 10_000
RESPONSE_EXCERPT_BYTES = 512
USER_AGENT = "ParkHub-Webhooks/1.0"


@job
async def deliver_webhook(ctx: JobContext, tenant_id: str, delivery_id: str) -> str:
    """Make the delivery's due attempt and record it; returns its state after ("skipped" when not due)."""
    tenant = uuid.UUID(tenant_id)
    # The worker acts for the tenant, like the inbox's jobs: row-level security keeps it to that tenant's rows.
    scope = Scope("connector", tenant_id=tenant)
    async with ctx["db"].transaction(scope) as session:
        attempt = await service.claim_attempt(session, tenant, uuid.UUID(delivery_id), datetime.now(UTC))
    if attempt is None:
        return "skipped"
    result = await send(attempt, allow_private=not get_settings().production)
    async with ctx["db"].transaction(scope) as session:
        return await service.record_attempt(session, attempt, result, datetime.now(UTC), random.random())


async def send(attempt: Attempt, *, allow_private: bool) -> AttemptResult:
    """POST the attempt's body, signed; what came back. Never raises for the endpoint's failures."""
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": attempt.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": rules.signature_header(attempt.secrets, attempt.webhook_id, timestamp, attempt.body),
    }
    try:
        async with asyncio.timeout(rules.ATTEMPT_TIMEOUT_SECONDS):
            if not allow_private:
                await _check_public(attempt.url)
            async with (
                httpx.AsyncClient(timeout=rules.ATTEMPT_TIMEOUT_SECONDS, follow_redirects=False) as client,
                client.stream("POST", attempt.url, content=attempt.body, headers=headers) as response,
            ):
                excerpt = b""
                if not rules.is_delivered(response.status_code):
                    async for chunk in response.aiter_bytes():
                        excerpt += chunk
                        if len(excerpt) >= RESPONSE_EXCERPT_BYTES:
                            break
                return AttemptResult(
                    response.status_code,
                    response_excerpt=excerpt[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace"),
                )
    except TimeoutError:
        return AttemptResult(None, f"no answer within {rules.ATTEMPT_TIMEOUT_SECONDS:g} s")
    except _Refused as refused:
        return AttemptResult(None, str(refused))
    except httpx.HTTPError as error:
        return AttemptResult(None, f"could not reach the endpoint: {type(error).__name__}: {error}".rstrip(": "))
    except OSError as error:
        return AttemptResult(None, f"could not reach the endpoint: {error}")


class _Refused(Exception):
    """The endpoint's host is not one the hub sends to."""


async def _check_public(url: str) -> None:
    """Raise _Refused when the URL's host resolves to an address that is not public (loopback, private,
    link-local, such as a cloud metadata service). The HTTP client resolves again, so a name that changes its
    answer within these milliseconds could still slip through; the URL's own checks stop the plain cases."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as error:
        raise _Refused(f"could not resolve {host}: {error}") from None
    addresses = {str(info[4][0]) for info in infos}
    blocked = sorted(address for address in addresses if not rules.address_allowed(address, allow_private=False))
    if not addresses or blocked:
        raise _Refused(f"not sent: {host} resolves to an address that is not public ({', '.join(blocked)})")


async def sweep_webhook_deliveries(ctx: JobContext) -> int:
    """Queue due deliveries that have no job queued; the retry schedule relies on this (see the module)."""
    async with ctx["db"].transaction(PLATFORM) as session:
        return await service.dispatch_due_deliveries(session, datetime.now(UTC), SWEEP_LIMIT)


# Every 10 seconds: a retry is due at most this late, which the backoff's own jitter dwarfs.
register_cron(
    cron(sweep_webhook_deliveries, second=set(range(0, 60, 10)), run_at_startup=True, unique=True, timeout=60)
)
