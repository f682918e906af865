"""Pure rules of notifications: what a notification is, which endpoints it goes to, what an endpoint's URL may be,
how a webhook is written and signed, when a failed delivery is tried again, and when an endpoint is given up on.
No I/O here.

Delivery policy (documented here because operators ask):
- A delivery is tried at most MAX_ATTEMPTS (8) times. After the n-th failed attempt the next one waits
  RETRY_DELAYS[n-1] (30 s, 2 min, 10 min, 1 h, 3 h, 6 h, 12 h), each stretched or shrunk by up to 20 % at
  random so that many deliveries that failed together do not come back together. The last attempt comes
  about 22 hours after the first; then the delivery is `failed` (an operator may redeliver it).
- Only a 2xx answer counts as delivered. Redirects are not followed (a 3xx is a failure), and an attempt that
  has no answer within ATTEMPT_TIMEOUT_SECONDS (5 s) failed.
- An endpoint is disabled, with the reason recorded, when it has failed continuously, without a single 2xx, for
  DISABLE_AFTER (24 h) and over at least DISABLE_MIN_FAILED_ATTEMPTS (8) attempts in a row. Both must hold:
  the time alone would let one unlucky event disable a quiet endpoint, the count alone would let a burst of
  events disable a busy endpoint during a short outage. Its pending deliveries then fail; enabling it again
  starts afresh.
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson

from connectors import signatures
from hub.errors import InvalidInput

# Event types, `<category>.<event>`. Lane decisions send the session ones; the exception queue sends
# exception.raised. Add new types here (and to the operator docs): endpoints subscribe by these names.
EVENT_TYPES: tuple[str, ...] = (
    "session.entered",
    "session.exited",
    "session.amount_due",
    "exception.raised",
    "street.payment_failed",
)
ALL_EVENTS = "*"
EVENT_CATEGORIES = frozenset(name.split(".", 1)[0] for name in EVENT_TYPES)
MAX_EVENT_TYPES = 50

URL_MAX_LENGTH = 2048
DESCRIPTION_MAX_LENGTH = 500
IDEMPOTENCY_KEY_MAX_LENGTH = 200
PAYLOAD_MAX_BYTES = 64 * 1024
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SUBJECT_KEY = re.compile(r"[a-z][a-z0-9_]{0,60}_id")
# Keys of a webhook's `data` the hub fills in itself.
RESERVED_DATA_KEYS = frozenset({"notification_id", "operator_id"})

MAX_ATTEMPTS = 8
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
)
JITTER = 0.2
ATTEMPT_TIMEOUT_SECONDS = 5.0
DISABLE_AFTER = timedelta(hours=24)
DISABLE_MIN_FAILED_ATTEMPTS = 8
# What of a failed answer is kept for the operator to read.
ERROR_MAX_LENGTH = 300

assert len(RETRY_DELAYS) == MAX_ATTEMPTS - 1


# ----------------------------------------------------------------------------------------- notifications


@dataclass(frozen=True)
class Notification:
    """Something that happened that a driver and the operator's webhooks should hear about.

    - `tenant_id`: the operator whose site it happened at (its endpoints receive it).
    - `type`: one of EVENT_TYPES.
    - `idempotency_key`: the same key for the same happening (say `"entry:<session id>"`): calling notify() again
      with it writes nothing new, so a retried lane decision does not notify twice. Unique per operator.
    - `occurred_at`: when it happened (timezone-aware).
    - `subject_ids`: what it is about, by name: `{"session_id": ..., "facility_id": ..., "lane_id": ...}`;
      names end in `_id`.
    - `payload`: the details (JSON values: plate, amount due in fen, currency, reason ...).
    - `driver_id`: the driver's user id when a driver should be told, None otherwise.

    Raises ValueError when malformed: that is a bug of the calling code, not of a user's input."""

    tenant_id: uuid.UUID
    type: str
    idempotency_key: str
    occurred_at: datetime
    subject_ids: Mapping[str, uuid.UUID] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)
    driver_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"type must be one of {', '.join(EVENT_TYPES)}, got {self.type!r}")
        key = self.idempotency_key
        if not isinstance(key, str) or not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH or not key.isprintable():
            raise ValueError(f"idempotency_key must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable characters")
        if not isinstance(self.occurred_at, datetime) or self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be a timezone-aware datetime")
        subjects: dict[str, uuid.UUID] = {}
        for name, value in dict(self.subject_ids).items():
            if not isinstance(name, str) or not SUBJECT_KEY.fullmatch(name) or name in RESERVED_DATA_KEYS:
                raise ValueError(f"subject id names look like `session_id` (and are not reserved), got {name!r}")
            if not isinstance(value, uuid.UUID):
                raise ValueError(f"subject id {name} must be a UUID")
            subjects[name] = uuid.UUID(int=value.int)  # a plain UUID, whatever subclass the database gave
        payload = _json_object(self.payload)
        clashes = sorted(set(payload) & (set(subjects) | RESERVED_DATA_KEYS))
        if clashes:
            raise ValueError(f"payload keys clash with subject ids or keys the hub fills in: {', '.join(clashes)}")
        object.__setattr__(self, "subject_ids", subjects)
        object.__setattr__(self, "payload", payload)


def _json_object(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as plain JSON values (UUIDs and datetimes as strings), so what is stored, published and sent
    is the same; ValueError when it is not a JSON object of reasonable size."""
    if not isinstance(payload, Mapping):
        raise ValueError("payload must be a mapping")
    try:
        encoded = orjson.dumps(dict(payload))
    except TypeError as exc:
        raise ValueError(f"payload must hold JSON values only: {exc}") from None
    if len(encoded) > PAYLOAD_MAX_BYTES:
        raise ValueError(f"payload is {len(encoded)} bytes encoded; at most {PAYLOAD_MAX_BYTES}")
    return orjson.loads(encoded)


def webhook_data(
    notification_id: uuid.UUID, tenant_id: uuid.UUID, subject_ids: Mapping[str, Any], payload: Mapping[str, Any]
) -> dict[str, Any]:
    """What a webhook's `data` (and a driver's notification) holds: the ids, then the details."""
    return {
        "notification_id": str(notification_id),
        "operator_id": str(tenant_id),
        **{name: str(value) for name, value in subject_ids.items()},
        **payload,
    }


def webhook_body(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> bytes:
    """The JSON a webhook carries, in the Standard Webhooks shape `{type, timestamp, data}`. Keys are sorted, so
    the same notification always makes the same bytes."""
    return orjson.dumps(
        {"type": event_type, "timestamp": occurred_at.isoformat(), "data": dict(data)},
        option=orjson.OPT_SORT_KEYS,
    )


def signature_header(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: one `v1,<base64>` per secret, space-separated (during a rotation's overlap the
    receiver may know only the old secret or only the new one, and any match passes)."""
    if not secrets:
        raise ValueError("an endpoint always has at least one secret")
    return " ".join(signatures.sign(secret, webhook_id, timestamp, body) for secret in secrets)


# ----------------------------------------------------------------------------------------- event types


def check_event_types(patterns: Iterable[Any]) -> list[str]:
    """What an endpoint subscribes to: '*' (everything), an event type, or a category's `session.*`. Sorted,
    without repeats; InvalidInput naming eventTypes otherwise."""
    if isinstance(patterns, str):
        raise InvalidInput("eventTypes must be a list of event types", field="eventTypes")
    checked: set[str] = set()
    for pattern in patterns:
        if not isinstance(pattern, str) or not (
            pattern == ALL_EVENTS
            or pattern in EVENT_TYPES
            or (pattern.endswith(".*") and pattern[:-2] in EVENT_CATEGORIES)
        ):
            raise InvalidInput(
                f"eventTypes: {pattern!r} is not '*', a category such as 'session.*', or one of "
                f"{', '.join(EVENT_TYPES)}",
                field="eventTypes",
            )
        checked.add(pattern)
    if not checked:
        raise InvalidInput("eventTypes: subscribe to at least one event type (or '*')", field="eventTypes")
    if len(checked) > MAX_EVENT_TYPES:
        raise InvalidInput(f"eventTypes: at most {MAX_EVENT_TYPES}", field="eventTypes")
    return sorted(checked)


def event_type_matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to `patterns` receives `event_type`."""
    category = event_type.split(".", 1)[0]
    return any(pattern in (ALL_EVENTS, event_type, f"{category}.*") for pattern in patterns)


# ----------------------------------------------------------------------------------------- endpoint URLs


def check_endpoint_url(url: Any, *, allow_loopback_http: bool) -> str:
    """An endpoint's URL: https to a host on the public internet. `allow_loopback_http` (outside production)
    also allows http to this machine (127.0.0.1, ::1, localhost) and hosts on private networks, for
    development. InvalidInput naming url otherwise."""

    def refuse(problem: str) -> InvalidInput:
        return InvalidInput(f"url: {problem}", field="url")

    if not isinstance(url, str) or not url.strip():
        raise refuse("give the endpoint's address, e.g. https://example.com/parkhub/webhooks")
    url = url.strip()
    if len(url) > URL_MAX_LENGTH:
        raise refuse(f"at most {URL_MAX_LENGTH} characters")
    if any(character.isspace() or not character.isprintable() for character in url):
        raise refuse("must not contain spaces or control characters")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError:
        raise refuse("the port is not a number from 0 to 65535") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise refuse("must name a host")
    if parts.username is not None or parts.password is not None:
        raise refuse("must not carry credentials; receivers check the webhook-signature header instead")
    if parts.fragment:
        raise refuse("must not have a #fragment (it is never sent)")
    scheme = parts.scheme.lower()
    if scheme == "http":
        if not (allow_loopback_http and host in LOOPBACK_NAMES):
            raise refuse("must use https (plain http is allowed only to 127.0.0.1 or localhost in development)")
    elif scheme != "https":
        raise refuse("must be an https:// address")
    if not allow_loopback_http and not host_may_be_public(host):
        raise refuse("must be reachable on the public internet, not this machine or a private network")
    return url


def host_may_be_public(host: str) -> bool:
    """False for names and addresses that can only mean this machine or a private network; a name that DNS
    resolves later is checked again when sending (address_allowed)."""
    if host in LOOPBACK_NAMES or host.endswith((".localhost", ".local", ".internal")):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." in host  # a single-label name is resolved on the local network
    return address.is_global


def address_allowed(address: str, *, allow_private: bool) -> bool:
    """Whether a resolved address may be sent to: public ones always, others only outside production (this
    keeps an endpoint from reaching the hub's own network, such as a cloud metadata service)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return allow_private or parsed.is_global


def check_description(description: Any) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str) or len(description.strip()) > DESCRIPTION_MAX_LENGTH:
        raise InvalidInput(f"description: at most {DESCRIPTION_MAX_LENGTH} characters", field="description")
    return description.strip() or None


# ----------------------------------------------------------------------------------------- retries


def is_delivered(status_code: int) -> bool:
    return 200 <= status_code <= 299


def retry_delay(failed_attempts: int, jitter: float) -> timedelta | None:
    """How long to wait after the `failed_attempts`-th failed attempt before the next; None when that was the
    last. `jitter` in [0, 1) (a random number) stretches the wait between 80 % and 120 % of the schedule."""
    if failed_attempts < 1:
        raise ValueError("failed_attempts counts the attempts made, from 1")
    if not (0.0 <= jitter < 1.0) or math.isnan(jitter):
        raise ValueError("jitter must be in [0, 1)")
    if failed_attempts >= MAX_ATTEMPTS:
        return None
    return RETRY_DELAYS[failed_attempts - 1] * (1 - JITTER + 2 * JITTER * jitter)


def should_disable(consecutive_failures: int, failing_since: datetime | None, now: datetime) -> bool:
    """Whether an endpoint that has failed `consecutive_failures` attempts in a row, the first at
    `failing_since`, with no success since, is to be disabled (see the module's notes)."""
    return (
        failing_since is not None
        and consecutive_failures >= DISABLE_MIN_FAILED_ATTEMPTS
        and now - failing_since >= DISABLE_AFTER
    )


def disable_reason(consecutive_failures: int, failing_since: datetime, last_error: str) -> str:
    return (
        f"disabled automatically: {consecutive_failures} attempts in a row failed, with no successful delivery "
        f"since {failing_since.isoformat(timespec='seconds')}; the last: {last_error}"
    )


def failure_text(status_code: int | None, error: str | None, response_excerpt: str = "") -> str:
    """What the operator reads about a failed attempt."""
    if status_code is not None:
        text = f"the endpoint answered HTTP {status_code}"
        excerpt = " ".join(response_excerpt.split())
        if excerpt:
            text += f": {excerpt}"
    else:
        text = error or "the attempt failed"
    return text if len(text) <= ERROR_MAX_LENGTH else text[: ERROR_MAX_LENGTH - 1] + "…"
