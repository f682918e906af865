"""Use cases of notifications: `notify()` (what lane decisions and the exception queue call), operators' webhook
endpoints and deliveries, the attempts the delivery job makes, and drivers' notifications.

Each takes the caller's session and never commits. Jobs are queued with `hub.jobs.enqueue` and driver
notifications published on Redis only after that session's transaction commits; a rollback drops both.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from connectors import signatures
from hub import jobs
from hub.db import driver_of
from hub.drivers.service import require_driver
from hub.errors import Conflict, Forbidden, NotFound
from hub.live import after_commit
from hub.notify import repository, rules
from hub.notify.broker import DriverNotice, publish_driver_notices
from hub.notify.models import DELIVERY_STATES
from hub.notify.rules import Notification
from hub.principal import Principal
from tenants import rules as tenants_rules

logger = logging.getLogger("parkhub.notify")

DELIVER_JOB = "deliver_webhook"
# An attempt holds its delivery this long (far beyond its 5 s timeout); a worker that dies mid-attempt delays the
# delivery by this much, then the sweep queues it again.
ATTEMPT_LEASE = timedelta(minutes=2)
# A delivery whose queued job has not run for this long is queued again by the sweep (Redis lost it).
REDISPATCH_AFTER = timedelta(minutes=2)
DEFAULT_OVERLAP_HOURS = tenants_rules.DEFAULT_SECRET_OVERLAP_HOURS

DRIVER_NOTICES = "parkhub.notify.driver_notices"
after_commit.register(DRIVER_NOTICES, publish_driver_notices)


def now_utc() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------- notify


@dataclass(frozen=True)
class NotifyResult:
    notification_id: uuid.UUID
    # False when the tenant already had a notification with this idempotency key: nothing new was written
    # for the driver, and only endpoints that did not have it yet got a delivery.
    created: bool
    delivery_ids: tuple[uuid.UUID, ...]


async def _record_new(conn: asyncpg.Connection, event: Notification, now: datetime) -> Any:
    """The notification and its deliveries in one statement; None when its idempotency key was used before."""
    return await repository.record_notification(
        conn,
        tenant_id=event.tenant_id,
        type=event.type,
        idempotency_key=event.idempotency_key,
        subject_ids=event.subject_ids,
        payload=event.payload,
        driver_id=event.driver_id,
        occurred_at=event.occurred_at,
        now=now,
    )


async def notify(session: AsyncSession, event: Notification, *, now: datetime | None = None) -> NotifyResult:
    """Record `event` in the caller's transaction: the notification (the driver's inbox, when it names a driver)
    and one delivery per enabled endpoint of the tenant subscribed to its type. After commit, each delivery's
    job is queued and the driver's live subscribers are told. Idempotent on (tenant, idempotency key)."""
    now = now or now_utc()
    # A new notification and its deliveries: one statement (lanes decide with this on every passage).
    row = await _record_new(await driver_of(session), event, now)
    created = row is not None
    if row is not None:
        delivery_ids = list(row["delivery_ids"])
    else:  # notified before: the endpoints that did not have it yet (say, added since) get it now
        row = await repository.find_notification_by_key(session, event.tenant_id, event.idempotency_key)
        if row is None:  # the unique index said it exists: it must be visible in the tenant's own scope
            raise RuntimeError("a notification with this idempotency key exists but is not visible in this scope")
        endpoints = await repository.enabled_endpoints(session, event.tenant_id)
        # The stored type decides, so a repeated call can never widen who hears about the first one.
        matching = [
            endpoint["id"] for endpoint in endpoints if rules.event_type_matches(endpoint["event_types"], row["type"])
        ]
        delivery_ids = await repository.insert_deliveries(session, event.tenant_id, row["id"], matching, now)
    for delivery_id in delivery_ids:
        jobs.enqueue(session, DELIVER_JOB, str(event.tenant_id), str(delivery_id))
    if created and row["driver_id"] is not None:
        after_commit.stage(session, DRIVER_NOTICES, [DriverNotice.of_row(row)])
    return NotifyResult(row["id"], created, tuple(delivery_ids))


@dataclass(frozen=True)
class Recorded:
    """A notification written in a transaction without a Session (`record_on_connection`), and what `hand_over`
    sends once that transaction has committed."""

    result: NotifyResult
    tenant_id: uuid.UUID
    notice: DriverNotice | None


async def record_on_connection(
    conn: asyncpg.Connection, event: Notification, *, now: datetime | None = None
) -> Recorded | None:
    """`notify()` for a transaction on an asyncpg connection without a Session (hub.db.driver_transaction), for
    an event whose idempotency key is new: the notification and its deliveries in one statement. None when the
    tenant already has a notification with this key: nothing was written, and `notify()` in a Session is the
    way to go. Call `hand_over()` once the transaction has committed."""
    row = await _record_new(conn, event, now or now_utc())
    if row is None:
        return None
    delivery_ids = tuple(row["delivery_ids"])
    if delivery_ids:
        jobs.check_job(DELIVER_JOB)  # raises inside the transaction, as enqueue() does
    notice = DriverNotice.of_row(row) if row["driver_id"] is not None else None
    return Recorded(NotifyResult(row["id"], True, delivery_ids), event.tenant_id, notice)


def hand_over(recorded: Recorded) -> None:
    """After the commit of `record_on_connection`'s transaction: queue the deliveries' jobs and tell the driver's
    live subscribers, as a Session's commit does for `notify()`."""
    tenant = str(recorded.tenant_id)
    jobs.send_committed(
        [jobs.PendingJob(DELIVER_JOB, (tenant, str(delivery_id)), None) for delivery_id in recorded.result.delivery_ids]
    )
    if recorded.notice is not None:
        after_commit.publish_committed(DRIVER_NOTICES, [recorded.notice])


# ------------------------------------------------------------------------------------------- authorization


def webhook_admin_tenant(principal: Principal) -> uuid.UUID:
    """The tenant whose webhook endpoints the caller may change: an operator admin's own."""
    if principal.is_operator_admin and principal.tenant_id is not None:
        return principal.tenant_id
    raise Forbidden("only an operator admin manages the operator's webhooks", required_role="operator_admin")


def webhook_reader_tenant(principal: Principal) -> uuid.UUID:
    """The tenant whose endpoints and deliveries the caller may read: any operator staff member's own."""
    if principal.kind == "operator" and principal.tenant_id is not None:
        return principal.tenant_id
    raise Forbidden("an operator's webhooks are visible to its staff only", required_role="operator_staff")


# ------------------------------------------------------------------------------------------- endpoints


def _endpoint_not_found(endpoint_id: uuid.UUID) -> NotFound:
    return NotFound(f"no webhook endpoint with id {endpoint_id}", code="ENDPOINT_NOT_FOUND", field="id")


async def create_endpoint(
    session: AsyncSession,
    principal: Principal,
    *,
    url: str,
    event_types: Sequence[str],
    description: str | None = None,
    allow_local: bool,
) -> tuple[repository.Row, str]:
    """A new endpoint of the caller's tenant and its signing secret, returned this once. `allow_local` (outside
    production) lets it point at this machine over plain http."""
    tenant_id = webhook_admin_tenant(principal)
    checked_url = rules.check_endpoint_url(url, allow_loopback_http=allow_local)
    checked_types = rules.check_event_types(event_types)
    checked_description = rules.check_description(description)
    endpoint = await repository.insert_endpoint(session, tenant_id, checked_url, checked_description, checked_types)
    secret = signatures.generate_secret()
    await repository.insert_endpoint_secret(session, tenant_id, endpoint["id"], secret)
    return endpoint, secret


async def update_endpoint(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    allow_local: bool,
) -> repository.Row:
    """Change the endpoint's `url`, `event_types` and/or `description` (the keys given; a None description
    clears it). Deliveries already made keep going to the endpoint, at its new URL."""
    tenant_id = webhook_admin_tenant(principal)
    values: dict[str, Any] = {}
    if "url" in changes:
        values["url"] = rules.check_endpoint_url(changes["url"], allow_loopback_http=allow_local)
    if "event_types" in changes:
        values["event_types"] = rules.check_event_types(changes["event_types"] or [])
    if "description" in changes:
        values["description"] = rules.check_description(changes["description"])
    endpoint = await repository.update_endpoint(session, tenant_id, endpoint_id, values)
    if endpoint is None:
        raise _endpoint_not_found(endpoint_id)
    return endpoint


async def rotate_endpoint_secret(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: uuid.UUID,
    *,
    overlap_hours: float = DEFAULT_OVERLAP_HOURS,
    now: datetime | None = None,
) -> tuple[repository.Row, str]:
    """A new signing secret, returned this once. Until `overlap_hours` (0 to 7 days) have passed, webhooks carry
    a signature by the new secret and one by each previous one, so the receiver can switch whenever it likes."""
    tenant_id = webhook_admin_tenant(principal)
    overlap = tenants_rules.check_overlap_hours(overlap_hours)
    now = now or now_utc()
    endpoint = await repository.update_endpoint(session, tenant_id, endpoint_id, {})  # locks: rotations queue up
    if endpoint is None:
        raise _endpoint_not_found(endpoint_id)
    secret = signatures.generate_secret()
    secret_id = await repository.insert_endpoint_secret(session, tenant_id, endpoint_id, secret)
    await repository.expire_endpoint_secrets(session, tenant_id, endpoint_id, secret_id, now + overlap, now)
    return endpoint, secret


async def set_endpoint_enabled(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID, *, enabled: bool, now: datetime | None = None
) -> repository.Row:
    """Enable (with a clean failure record) or disable an endpoint. Disabling fails its pending deliveries;
    an operator may redeliver them once it is enabled again."""
    tenant_id = webhook_admin_tenant(principal)
    if enabled:
        endpoint = await repository.enable_endpoint(session, tenant_id, endpoint_id)
    else:
        reason = f"disabled by {principal.subject or 'an operator admin'}"
        endpoint = await repository.disable_endpoint(session, tenant_id, endpoint_id, now or now_utc(), reason)
        if endpoint is not None:
            await repository.fail_pending_deliveries(
                session, tenant_id, endpoint_id, "not sent: the endpoint was disabled"
            )
    if endpoint is None:
        raise _endpoint_not_found(endpoint_id)
    return endpoint


async def list_endpoints(session: AsyncSession, principal: Principal) -> list[repository.Row]:
    return await repository.list_endpoints(session, webhook_reader_tenant(principal))


async def endpoints_by_ids(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[repository.Row]:
    """The endpoints among `ids` the caller may see (none, for anyone but the operator's staff)."""
    if principal.kind != "operator" or principal.tenant_id is None or not ids:
        return []
    return await repository.find_endpoints(session, principal.tenant_id, ids)


# ------------------------------------------------------------------------------------------- deliveries (admin)


async def deliveries_page(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: uuid.UUID,
    *,
    state: str | None,
    first: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[repository.Row]:
    """An endpoint's deliveries, newest first (`first + 1` rows: the extra one proves a next page)."""
    tenant_id = webhook_reader_tenant(principal)
    if state is not None and state not in DELIVERY_STATES:
        raise ValueError(f"unknown delivery state {state!r}")
    if not await repository.find_endpoints(session, tenant_id, [endpoint_id]):
        raise NotFound(f"no webhook endpoint with id {endpoint_id}", code="ENDPOINT_NOT_FOUND", field="endpointId")
    return await repository.deliveries_page(session, tenant_id, endpoint_id, state, first, after)


async def deliveries_by_ids(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[repository.Row]:
    if principal.kind != "operator" or principal.tenant_id is None or not ids:
        return []
    return await repository.find_deliveries(session, principal.tenant_id, ids)


async def redeliver(
    session: AsyncSession, principal: Principal, delivery_id: uuid.UUID, *, now: datetime | None = None
) -> repository.Row:
    """Send a delivery again, now, with a fresh set of attempts and the same webhook-id (so a receiver that
    already processed it can tell). Its endpoint must be enabled."""
    tenant_id = webhook_admin_tenant(principal)
    now = now or now_utc()
    found = await repository.find_deliveries(session, tenant_id, [delivery_id])
    if not found:
        raise NotFound(f"no webhook delivery with id {delivery_id}", code="DELIVERY_NOT_FOUND", field="deliveryId")
    endpoint = await repository.update_endpoint(session, tenant_id, found[0]["endpoint_id"], {})
    if endpoint is None or endpoint["disabled_at"] is not None:
        raise Conflict(
            "the delivery's endpoint is disabled: enable it first", code="ENDPOINT_DISABLED", field="deliveryId"
        )
    await repository.restart_delivery(session, tenant_id, delivery_id, now)
    jobs.enqueue(session, DELIVER_JOB, str(tenant_id), str(delivery_id))
    return (await repository.find_deliveries(session, tenant_id, [delivery_id]))[0]


# ------------------------------------------------------------------------------------------- attempts (the job)


@dataclass(frozen=True)
class Attempt:
    """One attempt's request: the body and the secrets to sign it with (newest first)."""

    tenant_id: uuid.UUID
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    body: bytes
    secrets: tuple[str, ...]
    number: int  # 1 for the first attempt of a round

    @property
    def webhook_id(self) -> str:
        """The same on every attempt and redelivery: receivers deduplicate on it."""
        return str(self.delivery_id)


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None  # None when no answer came (refused, timed out, TLS failure)
    error: str | None = None  # why, when no answer came
    response_excerpt: str = ""  # the start of a non-2xx answer's body


async def claim_attempt(
    session: AsyncSession, tenant_id: uuid.UUID, delivery_id: uuid.UUID, now: datetime
) -> Attempt | None:
    """The attempt to make now, or None when the delivery is not due (another job has it, it was delivered or
    it failed) or its endpoint is disabled (then it fails here)."""
    row = await repository.claim_delivery(session, tenant_id, delivery_id, now, now + ATTEMPT_LEASE)
    if row is None:
        return None
    if row["disabled_at"] is not None:
        await repository.fail_delivery(session, tenant_id, delivery_id, "not sent: the endpoint is disabled")
        return None
    secrets = await repository.signing_secrets(session, tenant_id, row["endpoint_id"], now)
    data = rules.webhook_data(row["notification_id"], tenant_id, row["subject_ids"], row["payload"])
    return Attempt(
        tenant_id=tenant_id,
        delivery_id=delivery_id,
        endpoint_id=row["endpoint_id"],
        url=row["url"],
        body=rules.webhook_body(row["type"], row["occurred_at"], data),
        secrets=tuple(secrets),
        number=row["attempts"] + 1,
    )


async def record_attempt(
    session: AsyncSession, attempt: Attempt, result: AttemptResult, now: datetime, jitter: float
) -> str:
    """Write what the attempt gave: delivered, due again after the backoff, or failed for good; count it for
    the endpoint, and disable the endpoint when the disable rule says so. Returns the delivery's state."""
    tenant_id, delivery_id, endpoint_id = attempt.tenant_id, attempt.delivery_id, attempt.endpoint_id
    current = await repository.lock_delivery(session, tenant_id, delivery_id)
    if current is None:  # deleted with its endpoint meanwhile
        return "gone"
    attempts = current["attempts"] + 1
    delivered = result.status_code is not None and rules.is_delivered(result.status_code)
    error = None if delivered else rules.failure_text(result.status_code, result.error, result.response_excerpt)
    disabled_reason: str | None = None
    if delivered:
        state, next_attempt_at = "delivered", None
        await repository.count_endpoint_success(session, tenant_id, endpoint_id)
    else:
        run = await repository.count_endpoint_failure(session, tenant_id, endpoint_id, now)
        if (
            run is not None
            and run["disabled_at"] is None
            and rules.should_disable(run["consecutive_failures"], run["failing_since"], now)
        ):
            disabled_reason = rules.disable_reason(run["consecutive_failures"], run["failing_since"], error or "")
        delay = rules.retry_delay(attempts, jitter)
        if current["state"] != "pending" or delay is None or disabled_reason is not None:
            # Out of attempts, or the endpoint is being given up on, or someone failed it meanwhile.
            state, next_attempt_at = ("failed" if current["state"] == "pending" else current["state"]), None
        else:
            state, next_attempt_at = "pending", now + delay
    await repository.record_attempt(
        session,
        tenant_id,
        delivery_id,
        state=state,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        attempted_at=now,
        status_code=result.status_code,
        error=error,
    )
    if disabled_reason is not None:
        await repository.disable_endpoint(session, tenant_id, endpoint_id, now, disabled_reason)
        await repository.fail_pending_deliveries(
            session, tenant_id, endpoint_id, "not sent: the endpoint was disabled after failing repeatedly"
        )
        logger.warning("notify: webhook endpoint %s of tenant %s disabled: %s", endpoint_id, tenant_id, disabled_reason)
    return state


async def dispatch_due_deliveries(session: AsyncSession, now: datetime, limit: int) -> int:
    """Queue (after commit) a job for every pending delivery that is due and has none queued: retries whose
    time has come, and first attempts whose job Redis lost. Runs in the platform scope."""
    rows = await repository.dispatch_due_deliveries(session, now, now - REDISPATCH_AFTER, limit)
    for row in rows:
        jobs.enqueue(session, DELIVER_JOB, str(row["tenant_id"]), str(row["id"]))
    return len(rows)


# ------------------------------------------------------------------------------------------- drivers


async def my_notifications(
    session: AsyncSession, principal: Principal, *, first: int, after: tuple[datetime, uuid.UUID] | None
) -> list[repository.Row]:
    """The driver's notifications from every operator, newest first (`first + 1` rows)."""
    return await repository.driver_notifications_page(session, require_driver(principal), first, after)


async def notifications_by_ids(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[repository.Row]:
    """Notifications among `ids` the caller may see: a driver their own, an operator's staff their tenant's."""
    if not ids:
        return []
    if principal.kind == "driver" and principal.user_id is not None:
        return await repository.find_notifications(session, ids, tenant_id=None, driver_id=principal.user_id)
    if principal.kind == "operator" and principal.tenant_id is not None:
        return await repository.find_notifications(session, ids, tenant_id=principal.tenant_id, driver_id=None)
    return []
