"""Authenticating inbound webhooks: Standard Webhooks signatures, or a shared secret where a sender cannot sign.

Standard Webhooks (https://www.standardwebhooks.com): the sender signs `{webhook-id}.{webhook-timestamp}.{body}`
with HMAC-SHA256 under the connector's secret (`whsec_` + base64 of the key bytes) and sends
`webhook-signature: v1,<base64>`; during key rotation it may send several space-separated signatures, and
ParkHub may hold several secrets (the current one and the one being retired): any match passes. Timestamps
more than 5 minutes from now are refused, which with deduplication on `webhook-id` stops replays.

Senders that cannot sign (LoRaWAN network servers, OCPI) present a per-connector secret instead:
`Authorization: Bearer <secret>`, `Authorization: Token <secret>` (OCPI) or `X-ParkHub-Secret: <secret>`.
Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as random_source
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60
_SIGNATURE_VERSION = "v1"
_INTEGER = re.compile(r"-?[0-9]{1,18}")


class SignatureError(Exception):
    """The request is not authentic; `reason` says why in plain English (safe to return to the sender)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def generate_secret() -> str:
    """A new signing secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random_source.token_bytes(32)).decode("ascii")


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value (`v1,<base64>`) a sender holding `secret` would send."""
    digest = _digest(_key(secret), webhook_id, timestamp, body)
    return f"{_SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def verify(secrets: Sequence[str], headers: Mapping[str, str], body: bytes, now: datetime) -> str:
    """Check a Standard Webhooks request against any of `secrets`; returns its `webhook-id` (the dedupe key).
    `headers` has lower-case names. Raises SignatureError naming what is wrong."""
    missing = [name for name in ("webhook-id", "webhook-timestamp", "webhook-signature") if not headers.get(name)]
    if missing:
        raise SignatureError(f"missing header{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    webhook_id = headers["webhook-id"]
    timestamp_text = headers["webhook-timestamp"].strip()
    if not _INTEGER.fullmatch(timestamp_text):
        raise SignatureError("webhook-timestamp is not an integer number of seconds since the epoch")
    timestamp = int(timestamp_text)
    current = int((now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp())
    if timestamp < current - TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than 5 minutes old: the message is stale or replayed")
    if timestamp > current + TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than 5 minutes in the future: check the sender's clock")

    presented = [
        value
        for version, _, value in (item.partition(",") for item in headers["webhook-signature"].split())
        if version == _SIGNATURE_VERSION and value
    ]
    if not presented:
        raise SignatureError("webhook-signature has no v1 signature")
    matched = False
    for secret in secrets:
        expected = base64.b64encode(_digest(_key(secret), webhook_id, timestamp, body))
        for signature in presented:
            # Every pair is compared (no early exit) so timing says nothing about which part matched.
            matched |= hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
    if not matched:
        raise SignatureError("no signature matches: wrong secret, or the body was changed on the way")
    return webhook_id


def check_shared_secret(secrets: Sequence[str], presented: str | None) -> bool:
    """Whether `presented` equals one of the connector's `secrets` (constant-time, all compared)."""
    if not presented:
        return False
    candidate = presented.encode("utf-8")
    matched = False
    for secret in secrets:
        if secret:  # an empty configured secret must never let an empty-ish token in
            matched |= hmac.compare_digest(secret.encode("utf-8"), candidate)
    return matched


def presented_secret(headers: Mapping[str, str]) -> str | None:
    """The secret a non-signing sender presents (lower-case header names): `authorization: Bearer <s>`,
    `authorization: Token <s>` (OCPI), or `x-parkhub-secret: <s>`."""
    scheme, _, credential = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() in ("bearer", "token") and credential.strip():
        return credential.strip()
    secret = headers.get("x-parkhub-secret", "").strip()
    return secret or None


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signing secret is not `whsec_` followed by base64") from None


def _digest(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> bytes:
    signed_content = f"{webhook_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed_content, hashlib.sha256).digest()
