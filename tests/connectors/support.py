"""Building inbound requests for the format tests; the sample bodies are copies kept in `samples/`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from connectors.events import ParsedRequest
from connectors.formats import ConnectorFormat, InboundRequest, parse

SAMPLES = Path(__file__).parent / "samples"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Every sample is older than this, and nothing is more than 5 minutes after it unless a test says so.
RECEIVED_AT = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def sample(name: str) -> dict[str, Any]:
    return orjson.loads((SAMPLES / name).read_bytes())


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def make_request(
    body: bytes | dict[str, Any] | list[Any],
    *,
    content_type: str = "application/json",
    query: dict[str, str] | None = None,
    webhook_id: str | None = None,
    received_at: datetime = RECEIVED_AT,
    default_tz: ZoneInfo = SHANGHAI,
) -> InboundRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return InboundRequest(
        body=raw,
        content_type=content_type,
        query=query or {},
        webhook_id=webhook_id,
        received_at=received_at,
        default_tz=default_tz,
    )


def parse_as(fmt: ConnectorFormat, body: bytes | dict[str, Any] | list[Any], **options: Any) -> ParsedRequest:
    return parse(fmt, make_request(body, **options))
