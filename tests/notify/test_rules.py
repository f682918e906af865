"""Pure rules of notifications: the retry schedule, when an endpoint is given up on, which endpoints an event
goes to, what an endpoint's URL may be, what a notification may hold, and how a webhook is written and signed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import signatures
from hub.errors import InvalidInput
from hub.notify import rules
from hub.notify.rules import Notification

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
jitters = st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_nan=False)


# ------------------------------------------------------------------------------------------- retries


@given(st.lists(jitters, min_size=rules.MAX_ATTEMPTS - 1, max_size=rules.MAX_ATTEMPTS - 1))
def test_each_wait_is_longer_than_the_last_whatever_the_jitter(draws: list[float]) -> None:
    waits = [rules.retry_delay(failed, jitter) for failed, jitter in enumerate(draws, start=1)]
    assert all(wait is not None and wait > timedelta(0) for wait in waits)
    assert all(earlier < later for earlier, later in itertools.pairwise(waits))  # type: ignore[operator]


@given(jitters, st.integers(min_value=1, max_value=rules.MAX_ATTEMPTS - 1))
def test_jitter_keeps_a_wait_within_a_fifth_of_the_schedule(jitter: float, failed: int) -> None:
    wait = rules.retry_delay(failed, jitter)
    scheduled = rules.RETRY_DELAYS[failed - 1]
    assert wait is not None and scheduled * 0.8 <= wait <= scheduled * 1.2


def test_deliveries_that_failed_together_come_back_apart() -> None:
    assert rules.retry_delay(1, 0.1) != rules.retry_delay(1, 0.9)


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999])
def test_the_attempts_span_about_a_day_and_then_stop(jitter: float) -> None:
    waited = timedelta(0)
    failed = 1
    while (wait := rules.retry_delay(failed, jitter)) is not None:
        waited += wait
        failed += 1
    assert failed == rules.MAX_ATTEMPTS == 8
    assert timedelta(hours=16) <= waited <= timedelta(hours=28)
    assert rules.retry_delay(failed + 5, jitter) is None


def test_the_first_retry_comes_within_a_minute() -> None:
    wait = rules.retry_delay(1, 0.999)
    assert wait is not None and wait <= timedelta(minutes=1)


@pytest.mark.parametrize(("failed", "jitter"), [(0, 0.5), (-1, 0.5), (1, 1.0), (1, -0.1), (1, float("nan"))])
def test_retry_delay_refuses_impossible_arguments(failed: int, jitter: float) -> None:
    with pytest.raises(ValueError):
        rules.retry_delay(failed, jitter)


# ------------------------------------------------------------------------------------------- disabling


@pytest.mark.parametrize(
    ("failures", "failing_for", "disabled"),
    [
        (8, timedelta(hours=24), True),
        (40, timedelta(days=3), True),
        # A busy endpoint's short outage: many failures, not for long.
        (500, timedelta(hours=23, minutes=59), False),
        # A quiet endpoint: one event failed long ago, one now.
        (2, timedelta(days=3), False),
        (7, timedelta(hours=30), False),
    ],
)
def test_an_endpoint_is_disabled_after_a_day_and_eight_attempts_of_failing(
    failures: int, failing_for: timedelta, disabled: bool
) -> None:
    assert rules.should_disable(failures, NOW - failing_for, NOW) is disabled


def test_an_endpoint_that_is_not_failing_is_never_disabled() -> None:
    assert rules.should_disable(100, None, NOW) is False


def test_the_disable_reason_says_since_when_how_often_and_the_last_error() -> None:
    reason = rules.disable_reason(9, NOW - timedelta(days=1), "the endpoint answered HTTP 503")
    assert "9 attempts" in reason and "2026-11-20T08:00:00+00:00" in reason and "HTTP 503" in reason


def test_only_2xx_counts_as_delivered() -> None:
    assert [code for code in (199, 200, 204, 299, 300, 302, 400, 410, 500) if rules.is_delivered(code)] == [
        200,
        204,
        299,
    ]


def test_a_long_failure_is_cut_to_what_an_operator_reads() -> None:
    text = rules.failure_text(500, None, "x" * 5000)
    assert text.startswith("the endpoint answered HTTP 500: xxx") and len(text) == rules.ERROR_MAX_LENGTH
    assert rules.failure_text(None, "no answer within 5 s") == "no answer within 5 s"
    assert rules.failure_text(404, None, "  not\n  found ") == "the endpoint answered HTTP 404: not found"


# ------------------------------------------------------------------------------------------- event types


@pytest.mark.parametrize(
    ("patterns", "event_type", "matches"),
    [
        (["*"], "exception.raised", True),
        (["session.exited"], "session.exited", True),
        (["session.exited"], "session.entered", False),
        (["session.*"], "session.amount_due", True),
        (["session.*"], "exception.raised", False),
        (["exception.raised", "session.entered"], "session.entered", True),
        ([], "session.entered", False),
    ],
)
def test_which_endpoints_an_event_goes_to(patterns: list[str], event_type: str, matches: bool) -> None:
    assert rules.event_type_matches(patterns, event_type) is matches


def test_subscriptions_are_kept_sorted_without_repeats() -> None:
    assert rules.check_event_types(["session.exited", "*", "session.exited", "session.*"]) == [
        "*",
        "session.*",
        "session.exited",
    ]


@pytest.mark.parametrize(
    "patterns", [[], ["session.parked"], ["parking.*"], ["session."], ["Session.Entered"], [""], [None], "*"]
)
def test_unknown_or_missing_event_types_are_refused(patterns: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        rules.check_event_types(patterns)
    assert caught.value.details["field"] == "eventTypes"


def test_every_event_type_is_a_category_and_a_name() -> None:
    for event_type in rules.EVENT_TYPES:
        category, _, name = event_type.partition(".")
        assert category and name and rules.check_event_types([f"{category}.*"]) == [f"{category}.*"]


# ------------------------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/parkhub", "https://example.com:8443/a?b=c", "https://8.8.8.8/hook", " https://x.cn/ "],
)
def test_public_https_urls_are_accepted_everywhere(url: str) -> None:
    for development in (True, False):
        assert rules.check_endpoint_url(url, allow_loopback_http=development) == url.strip()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "http://localhost/hook", "http://[::1]:8080/"])
def test_plain_http_to_this_machine_only_outside_production(url: str) -> None:
    assert rules.check_endpoint_url(url, allow_loopback_http=True) == url
    with pytest.raises(InvalidInput):
        rules.check_endpoint_url(url, allow_loopback_http=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.1.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/hook",
        "https://intranet/hook",
        "https://printer.local/hook",
    ],
)
def test_production_refuses_this_machine_and_private_networks(url: str) -> None:
    with pytest.raises(InvalidInput, match="public internet"):
        rules.check_endpoint_url(url, allow_loopback_http=False)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/parkhub", "https"),
        ("ftp://hooks.example.com/", "https"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https:///path-only", "host"),
        ("https://hooks.example.com:99999/", "port"),
        ("https://hooks.example.com/a b", "spaces"),
        ("", "address"),
        (None, "address"),
        ("https://example.com/" + "a" * 3000, "2048"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: Any, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem) as caught:
        rules.check_endpoint_url(url, allow_loopback_http=True)
    assert caught.value.details["field"] == "url"


@pytest.mark.parametrize(
    ("address", "public"),
    [("93.184.216.34", True), ("2606:4700::1111", True), ("127.0.0.1", False), ("10.0.0.8", False),
     ("169.254.169.254", False), ("::1", False), ("fe80::1%eth0", False), ("not-an-address", False)],
)  # fmt: skip
def test_resolved_addresses_must_be_public_in_production(address: str, public: bool) -> None:
    assert rules.address_allowed(address, allow_private=False) is public
    assert rules.address_allowed(address, allow_private=True) is (address != "not-an-address")


# ------------------------------------------------------------------------------------------- notifications


def a_notification(**fields: Any) -> Notification:
    values: dict[str, Any] = {
        "tenant_id": uuid.uuid4(),
        "type": "session.amount_due",
        "idempotency_key": "due:1",
        "occurred_at": NOW,
        "subject_ids": {"session_id": uuid.uuid4()},
        "payload": {"amount_due": 1200, "currency": "CNY"},
    }
    return Notification(**{**values, **fields})


def test_a_payload_is_kept_as_plain_json() -> None:
    lane = uuid.uuid4()
    notification = a_notification(payload={"lane": lane, "at": NOW, "items": (1, 2)})
    assert notification.payload == {"lane": str(lane), "at": NOW.isoformat(), "items": [1, 2]}


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "session.parked"},
        {"idempotency_key": ""},
        {"idempotency_key": "k" * 201},
        {"idempotency_key": "line\nbreak"},
        {"occurred_at": datetime(2026, 11, 21, 8, 0)},
        {"subject_ids": {"session": uuid.uuid4()}},
        {"subject_ids": {"session_id": "not a uuid"}},
        {"subject_ids": {"operator_id": uuid.uuid4()}},
        {"payload": {"when": object()}},
        {"payload": {"session_id": "clash"}},
        {"payload": {"notification_id": "clash"}},
        {"payload": {"blob": "x" * (rules.PAYLOAD_MAX_BYTES + 1)}},
        {"payload": ["not", "an", "object"]},
    ],
)
def test_a_malformed_notification_is_refused_where_it_is_made(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        a_notification(**fields)


def test_a_webhook_is_a_standard_webhooks_payload_with_the_ids_then_the_details() -> None:
    notification = a_notification()
    notification_id = uuid.uuid4()
    data = rules.webhook_data(notification_id, notification.tenant_id, notification.subject_ids, notification.payload)
    body = rules.webhook_body(notification.type, notification.occurred_at, data)
    assert orjson.loads(body) == {
        "type": "session.amount_due",
        "timestamp": "2026-11-21T08:00:00+00:00",
        "data": {
            "notification_id": str(notification_id),
            "operator_id": str(notification.tenant_id),
            "session_id": str(notification.subject_ids["session_id"]),
            "amount_due": 1200,
            "currency": "CNY",
        },
    }
    # The same notification always makes the same bytes, whatever order its details came in.
    reordered_payload = {"currency": "CNY", "amount_due": 1200}
    reordered = rules.webhook_data(notification_id, notification.tenant_id, notification.subject_ids, reordered_payload)
    assert rules.webhook_body(notification.type, notification.occurred_at, reordered) == body


def test_during_a_rotation_a_receiver_knowing_either_secret_accepts_the_webhook() -> None:
    old, new, stranger = (signatures.generate_secret() for _ in range(3))
    body = b'{"type":"session.entered"}'
    timestamp = int(NOW.timestamp())
    header = rules.signature_header([new, old], "delivery-1", timestamp, body)
    assert len(header.split(" ")) == 2 and all(part.startswith("v1,") for part in header.split(" "))
    headers = {"webhook-id": "delivery-1", "webhook-timestamp": str(timestamp), "webhook-signature": header}
    for known in ([old], [new]):
        assert signatures.verify(known, headers, body, NOW) == "delivery-1"
    with pytest.raises(signatures.SignatureError):
        signatures.verify([stranger], headers, body, NOW)
    with pytest.raises(signatures.SignatureError):
        signatures.verify([old], headers, body + b" ", NOW)


def test_a_signature_is_an_hmac_sha256_of_id_timestamp_and_body() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    header = rules.signature_header([secret], "msg_1", 1_700_000_000, b"{}")
    expected = hmac.new(b"k" * 32, b"msg_1.1700000000.{}", hashlib.sha256).digest()
    assert header == "v1," + base64.b64encode(expected).decode()
