"""Standard Webhooks signatures and per-connector shared secrets."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.signatures import (
    SignatureError,
    check_shared_secret,
    generate_secret,
    presented_secret,
    sign,
    verify,
)

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
BODY = b'{"id":"e1","device_id":"S1","occupied":true}'
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def signed_headers(secret: str, body: bytes = BODY, at: datetime = NOW, webhook_id: str = "msg_1") -> dict[str, str]:
    timestamp = int(at.timestamp())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }


def test_generated_secrets_are_whsec_and_32_random_bytes() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # The example published with the Standard Webhooks specification.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_good_signature_returns_the_webhook_id() -> None:
    assert verify([SECRET], signed_headers(SECRET), BODY, NOW) == "msg_1"


def test_rotation_any_secret_and_any_signature_may_match() -> None:
    old, new = generate_secret(), generate_secret()
    headers = signed_headers(new)
    # The sender signs with both keys while rotating; ParkHub still holds the old one first.
    headers["webhook-signature"] = f"{sign(old, 'msg_1', int(NOW.timestamp()), BODY)} {headers['webhook-signature']}"
    assert verify([old, new], headers, BODY, NOW) == "msg_1"
    assert verify([new], signed_headers(new), BODY, NOW) == "msg_1"
    assert verify([SECRET, new], signed_headers(new), BODY, NOW) == "msg_1"


def test_tampered_body_is_refused() -> None:
    with pytest.raises(SignatureError, match="no signature matches") as caught:
        verify([SECRET], signed_headers(SECRET), BODY.replace(b"true", b"false"), NOW)
    assert "body" in caught.value.reason


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(SignatureError, match="no signature matches"):
        verify([generate_secret()], signed_headers(SECRET), BODY, NOW)


def test_stale_timestamp_is_refused_even_when_correctly_signed() -> None:
    headers = signed_headers(SECRET, at=NOW - timedelta(minutes=5, seconds=1))
    with pytest.raises(SignatureError, match="more than 5 minutes old"):
        verify([SECRET], headers, BODY, NOW)


def test_future_timestamp_is_refused_with_its_own_reason() -> None:
    headers = signed_headers(SECRET, at=NOW + timedelta(minutes=5, seconds=1))
    with pytest.raises(SignatureError, match="in the future"):
        verify([SECRET], headers, BODY, NOW)


def test_timestamps_at_the_edge_of_the_window_pass() -> None:
    for offset in (timedelta(minutes=-5), timedelta(minutes=5)):
        assert verify([SECRET], signed_headers(SECRET, at=NOW + offset), BODY, NOW) == "msg_1"


@pytest.mark.parametrize(
    ("missing", "says"),
    [
        (("webhook-id",), "missing header: webhook-id"),
        (("webhook-signature",), "missing header: webhook-signature"),
        (("webhook-id", "webhook-timestamp"), "missing headers: webhook-id, webhook-timestamp"),
    ],
)
def test_missing_headers_are_named(missing: tuple[str, ...], says: str) -> None:
    headers = {name: value for name, value in signed_headers(SECRET).items() if name not in missing}
    with pytest.raises(SignatureError, match=says):
        verify([SECRET], headers, BODY, NOW)


@pytest.mark.parametrize("timestamp", ["1740816000.5", "soon", "1_740_816_000", ""])
def test_timestamp_must_be_an_integer(timestamp: str) -> None:
    headers = signed_headers(SECRET) | {"webhook-timestamp": timestamp}
    expected = "missing header" if not timestamp else "not an integer"
    with pytest.raises(SignatureError, match=expected):
        verify([SECRET], headers, BODY, NOW)


def test_signatures_of_other_versions_are_not_considered() -> None:
    headers = signed_headers(SECRET)
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v1a,")
    with pytest.raises(SignatureError, match="no v1 signature"):
        verify([SECRET], headers, BODY, NOW)


@given(body=st.binary(max_size=200), webhook_id=st.text(min_size=1, max_size=30).filter(str.strip))
def test_any_signed_body_verifies_and_any_change_does_not(body: bytes, webhook_id: str) -> None:
    headers = signed_headers(SECRET, body=body, webhook_id=webhook_id)
    assert verify([SECRET], headers, body, NOW) == webhook_id
    with pytest.raises(SignatureError):
        verify([SECRET], headers, body + b" ", NOW)


def test_shared_secret_check() -> None:
    assert check_shared_secret(["old-secret", "new-secret"], "new-secret")
    assert not check_shared_secret(["old-secret", "new-secret"], "other")
    assert not check_shared_secret(["old-secret"], None)
    assert not check_shared_secret(["old-secret"], "")
    assert not check_shared_secret([""], "")


@pytest.mark.parametrize(
    ("headers", "secret"),
    [
        ({"authorization": "Bearer s3cret"}, "s3cret"),
        ({"authorization": "bearer   s3cret "}, "s3cret"),
        ({"authorization": "Token b2NwaS10b2tlbg=="}, "b2NwaS10b2tlbg=="),
        ({"x-parkhub-secret": "s3cret"}, "s3cret"),
        ({"authorization": "Basic dXNlcjpwYXNz", "x-parkhub-secret": "s3cret"}, "s3cret"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, None),
        ({"authorization": "Bearer "}, None),
        ({}, None),
    ],
)
def test_presented_secret(headers: dict[str, str], secret: str | None) -> None:
    assert presented_secret(headers) == secret


def test_a_malformed_configured_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="not `whsec_` followed by base64"):
        sign("whsec_not base64!", "msg_1", 1, BODY)
