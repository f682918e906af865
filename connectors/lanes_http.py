"""The lanes' gate API: a gate controller asks, synchronously, whether its barrier opens for the vehicle its cameras
read (`POST /lanes/{lane_id}/reads`), reports its faults (`POST /lanes/{lane_id}/faults`), and fetches and
acknowledges the commands agents send it (`GET /lanes/{lane_id}/commands`, `POST .../commands/{id}/ack`).

Authentication. A lane speaks as its operator's connector: any enabled connector of the lane's operator with the
`native` format may call for any of the operator's lanes (devices are bound to lanes, connectors are not, so the
operator's native connector is "the lane's connector"). A connector that signs uses Standard Webhooks headers
(`webhook-id`, `webhook-timestamp`, `webhook-signature`); one with a shared secret sends
`Authorization: Bearer <secret>` (or `X-ParkHub-Secret`), exactly as for `POST /connectors/{id}`.

Reads. The body is one passage at the lane, with one read or several (two cameras, or a camera and a second
recognizer):

    {"passage_id": "G3-20261121-000187", "at": "2026-11-21T08:00:03+08:00",
     "reads": [{"camera": "cam-a", "plate": "粤B12345", "confidence": 0.93, "image": "sha256:...",
                "read_at": "2026-11-21T08:00:02+08:00"}, ...]}

or a single read without the list: `{"passage_id": ..., "camera": ..., "plate": ..., "confidence": ...}`.
`passage_id` (1-200 characters) is required and is the idempotency key: the same passage again gets the same
decision and changes nothing. `plate` may be empty or null (the camera saw no plate). `confidence` is 0..1 (a read
without one does not meet the lane's threshold). `image` is the camera's reference to its snapshot. `at` and
`read_at` are ISO 8601; without an offset they are read in the connector's time zone; `at` defaults to the latest
`read_at`, else the time of the request, and may not be more than 5 minutes ahead of ParkHub's clock.

The answer, 200, once the read(s), the decision and any session or exception change are committed:

    {"decision": "open" | "hold", "reason": "entered", "session_id": "...", "amount_due_fen": null,
     "payment_link": null, "exception_id": null, "plate": "粤B12345", "passage_id": "...",
     "decision_id": "...", "replayed": false}

Errors are JSON `{error, message}`: 404 unknown_lane, 403 no_lane_connector / connector_disabled,
401 unauthenticated, 413 request_too_large, 400 malformed_payload (with the `field`); nothing is written.

Faults: `{"kind": "barrier_stuck", "detail": <any JSON>, "at": ISO (optional)}` puts a `gate_fault` exception in
the facility's queue and answers 201 `{"exception_id": "..."}`.

Commands (hub.lanes.gates). `GET /lanes/{lane_id}/commands?wait=<0..25>` answers the lane's live commands (today
only `open`, an agent's remote open) and marks them delivered:

    {"commands": [{"id": "...", "command": "open", "reason": "driver waiting, motor reset",
                   "requested_at": "...", "expires_at": "..."}]}

With `wait` above 0 (seconds, decimals allowed) it is a long poll: it answers as soon as a command arrives, or
with an empty list when the wait is over; the gate calls again at once. A signed GET signs an empty body. A
command delivered but not acknowledged is delivered again on every fetch until it expires (the gate may have lost
the answer): the gate acts once per command id and ignores repeats. A command that expired (a minute after the
agent asked, unless said otherwise) is never delivered: the gate never acts on a stale open.

`POST /lanes/{lane_id}/commands/{command_id}/ack` with `{"outcome": "opened" | "failed", "detail": <any JSON>}`
records what the barrier did, once: the same outcome again answers 200 and changes nothing (`"repeated": true`), a
different one 409 `already_acknowledged`. An acknowledgement after expiry is still recorded. `failed` also puts a
`gate_fault` exception in the facility's queue (its id is `fault_exception_id`). The answer, 200:

    {"id": "...", "status": "acknowledged" | "failed", "outcome": "opened" | "failed", "acknowledged_at": "...",
     "fault_exception_id": null, "repeated": false}

An unknown command, or another lane's, is 404 unknown_command.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors import signatures
from connectors.http import CREDENTIALS_TTL_SECONDS, problem
from hub.db import Database
from hub.errors import NotFound
from hub.lanes import exceptions as lane_exceptions
from hub.lanes import gate_rules, gates
from hub.lanes import service as lanes
from hub.lanes.rules import MAX_READS, Read, make_read
from tenants import service as tenants

LANE_FORMAT = "native"
MAX_BODY_BYTES = 64 * 1024
MAX_TEXT = 200
MAX_FAULT_DETAIL_BYTES = 8 * 1024
FUTURE_TOLERANCE = timedelta(minutes=5)


class MalformedPassage(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def response(self) -> JSONResponse:
        return problem(400, "malformed_payload", f"{self.field}: {self.message}", field=self.field)


# --------------------------------------------------------------------------------------------- parsing


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedPassage("body", "is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedPassage("body", "must be a JSON object")
    return data


def _text(data: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise MalformedPassage(path, "is required")
        return None
    if not isinstance(value, str):
        raise MalformedPassage(path, "must be a string")
    if len(value) > MAX_TEXT:
        raise MalformedPassage(path, f"must be at most {MAX_TEXT} characters")
    if required and not value.strip():
        raise MalformedPassage(path, "must not be empty")
    return value


def _instant(data: dict[str, Any], key: str, path: str, zone: ZoneInfo) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedPassage(path, "must be an ISO 8601 date and time, e.g. 2026-11-21T08:00:00+08:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _confidence(data: dict[str, Any], path: str) -> float | None:
    value = data.get("confidence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MalformedPassage(path, "must be a number from 0 to 1")
    if not 0 <= value <= 1:
        raise MalformedPassage(path, f"must be from 0 to 1, got {value}")
    return float(value)


def _read(data: Any, path: str, zone: ZoneInfo) -> Read:
    if not isinstance(data, dict):
        raise MalformedPassage(path or "body", "must be an object")
    prefix = f"{path}." if path else ""
    return make_read(
        _text(data, "plate", f"{prefix}plate"),
        _confidence(data, f"{prefix}confidence"),
        camera=_text(data, "camera", f"{prefix}camera"),
        image=_text(data, "image", f"{prefix}image"),
        read_at=_instant(data, "read_at", f"{prefix}read_at", zone),
    )


def parse_passage(body: bytes, zone: ZoneInfo, received_at: datetime, connector_id: uuid.UUID) -> lanes.Passage:
    """The passage a gate sent (see the module's docstring); MalformedPassage naming the field otherwise."""
    data = _object(body)
    passage_id = _text(data, "passage_id", "passage_id", required=True)
    assert passage_id is not None
    if "reads" in data:
        items = data["reads"]
        if not isinstance(items, list) or not items:
            raise MalformedPassage("reads", "must be a non-empty array")
        if len(items) > MAX_READS:
            raise MalformedPassage("reads", f"at most {MAX_READS} reads of one passage, got {len(items)}")
        reads = tuple(_read(item, f"reads[{index}]", zone) for index, item in enumerate(items))
    else:
        reads = (_read(data, "", zone),)
    at = _instant(data, "at", "at", zone)
    if at is None:
        read_times = [read.read_at for read in reads if read.read_at is not None]
        at = max(read_times) if read_times else received_at
    if at > received_at + FUTURE_TOLERANCE:
        raise MalformedPassage("at", "is more than 5 minutes in the future: check the gate's clock")
    return lanes.Passage(passage_id.strip(), reads, at, source="camera", connector_id=connector_id)


# -------------------------------------------------------------------------------------- authentication


@dataclass
class _Connectors:
    connectors: tuple[tenants.WebhookConnector, ...]
    expires: float


class LaneCredentials:
    """Per process: each lane's operator (a lane never changes operator; unknown ids are remembered briefly) and
    each operator's native connectors with their live secrets (for CREDENTIALS_TTL_SECONDS, as for
    `/connectors`: a disabled connector or a rotated-out secret stops working within that time)."""

    def __init__(self, ttl: float = CREDENTIALS_TTL_SECONDS, size: int = 100_000) -> None:
        self.ttl = ttl
        self.size = size
        self._lanes: OrderedDict[uuid.UUID, tuple[uuid.UUID | None, float]] = OrderedDict()
        self._connectors: dict[uuid.UUID, _Connectors] = {}

    async def lane_tenant(self, db: Database, lane_id: uuid.UUID) -> uuid.UUID | None:
        now = time.monotonic()
        entry = self._lanes.get(lane_id)
        if entry is None or (entry[0] is None and entry[1] <= now):
            tenant_id = await lanes.lane_tenant(db, lane_id)
            entry = self._lanes[lane_id] = (tenant_id, now + self.ttl)
            while len(self._lanes) > self.size:
                self._lanes.popitem(last=False)
        return entry[0]

    async def connectors(self, db: Database, tenant_id: uuid.UUID) -> tuple[tenants.WebhookConnector, ...]:
        now = time.monotonic()
        entry = self._connectors.get(tenant_id)
        if entry is None or entry.expires <= now:
            found = await tenants.webhook_connectors_of(db, tenant_id, LANE_FORMAT)
            if len(self._connectors) > 10_000:
                self._connectors.clear()
            entry = self._connectors[tenant_id] = _Connectors(found, now + self.ttl)
        return entry.connectors

    def clear(self) -> None:
        self._lanes.clear()
        self._connectors.clear()


credentials = LaneCredentials()


@dataclass(frozen=True)
class _Caller:
    tenant_id: uuid.UUID
    lane_id: uuid.UUID
    connector: tenants.WebhookConnector
    body: bytes


def _authenticated(
    connectors: tuple[tenants.WebhookConnector, ...], headers: dict[str, str], body: bytes
) -> tuple[tenants.WebhookConnector | None, str]:
    """The connector whose credentials the request carries, or None and why not."""
    now = datetime.now(UTC)
    if headers.get("webhook-signature"):
        signing = [connector for connector in connectors if connector.auth_mode == "signature"]
        reason = "no native connector of the lane's operator signs its requests"
        for connector in signing:
            try:
                signatures.verify(connector.secrets, headers, body, now)
                return connector, ""
            except signatures.SignatureError as error:
                reason = str(error)
        return None, reason
    presented = signatures.presented_secret(headers)
    for connector in connectors:
        if connector.auth_mode == "secret" and signatures.check_shared_secret(connector.secrets, presented):
            return connector, ""
    return None, "missing or wrong connector credentials (a signature, or 'Authorization: Bearer <secret>')"


async def _caller(request: Request) -> _Caller | JSONResponse:
    try:
        lane_id = uuid.UUID(request.path_params["lane_id"])
    except ValueError:
        return problem(404, "unknown_lane", "no lane has this id")
    db: Database = request.app.state.db
    tenant_id = await credentials.lane_tenant(db, lane_id)
    if tenant_id is None:
        return problem(404, "unknown_lane", "no lane in service has this id")
    connectors = await credentials.connectors(db, tenant_id)
    enabled = tuple(connector for connector in connectors if not connector.disabled)
    if not enabled:
        if connectors:
            return problem(403, "connector_disabled", "the lane operator's native connectors are disabled")
        return problem(403, "no_lane_connector", "the lane's operator has no native connector for its lanes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return problem(413, "request_too_large", f"a lane request is at most {MAX_BODY_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return problem(413, "request_too_large", f"a lane request is at most {MAX_BODY_BYTES} bytes")
    headers = {key.lower(): value for key, value in request.headers.items()}
    connector, refusal = _authenticated(enabled, headers, body)
    if connector is None:
        return problem(401, "unauthenticated", refusal)
    return _Caller(tenant_id, lane_id, connector, body)


# ----------------------------------------------------------------------------------------------- routes


async def receive_reads(request: Request) -> JSONResponse:
    caller = await _caller(request)
    if isinstance(caller, JSONResponse):
        return caller
    received_at = datetime.now(UTC)
    try:
        passage = parse_passage(caller.body, ZoneInfo(caller.connector.time_zone), received_at, caller.connector.id)
    except MalformedPassage as error:
        return error.response()
    try:
        answer = await lanes.decide_at_lane(request.app.state.db, caller.tenant_id, caller.lane_id, passage)
    except NotFound as error:
        return problem(404, "unknown_lane", error.message)
    return JSONResponse(answer.as_json())


async def receive_fault(request: Request) -> JSONResponse:
    caller = await _caller(request)
    if isinstance(caller, JSONResponse):
        return caller
    zone = ZoneInfo(caller.connector.time_zone)
    try:
        data = _object(caller.body)
        kind = _text(data, "kind", "kind", required=True)
        assert kind is not None
        detail = data.get("detail")
        if len(orjson.dumps(detail)) > MAX_FAULT_DETAIL_BYTES:
            raise MalformedPassage("detail", f"must be at most {MAX_FAULT_DETAIL_BYTES} bytes of JSON")
        at = _instant(data, "at", "at", zone) or datetime.now(UTC)
    except MalformedPassage as error:
        return error.response()
    try:
        exception_id = await lane_exceptions.report_gate_fault(
            request.app.state.db, caller.tenant_id, caller.lane_id, kind.strip(), detail, at, caller.connector.id
        )
    except NotFound as error:
        return problem(404, "unknown_lane", error.message)
    return JSONResponse({"exception_id": str(exception_id)}, status_code=201)


def _wait(value: str | None) -> float:
    if value is None or not value.strip():
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        raise MalformedPassage("wait", "must be a number of seconds") from None
    if not math.isfinite(seconds) or not 0 <= seconds <= gate_rules.MAX_WAIT_SECONDS:
        raise MalformedPassage("wait", f"must be from 0 to {gate_rules.MAX_WAIT_SECONDS:.0f} seconds, got {value}")
    return seconds


async def fetch_commands(request: Request) -> JSONResponse:
    caller = await _caller(request)
    if isinstance(caller, JSONResponse):
        return caller
    try:
        wait = _wait(request.query_params.get("wait"))
    except MalformedPassage as error:
        return error.response()
    broker = getattr(request.app.state, "gate_broker", None)
    commands = await gates.await_commands(
        request.app.state.db, broker, caller.tenant_id, caller.lane_id, wait, gone=request.is_disconnected
    )
    return JSONResponse({"commands": [command.for_gate() for command in commands]})


def _acknowledgement(body: bytes) -> tuple[str, Any]:
    data = _object(body)
    outcome = data.get("outcome")
    if outcome not in gate_rules.GATE_OUTCOMES:
        raise MalformedPassage("outcome", f"must be one of {', '.join(gate_rules.GATE_OUTCOMES)}")
    detail = data.get("detail")
    if len(orjson.dumps(detail)) > MAX_FAULT_DETAIL_BYTES:
        raise MalformedPassage("detail", f"must be at most {MAX_FAULT_DETAIL_BYTES} bytes of JSON")
    return outcome, detail


async def acknowledge_command(request: Request) -> JSONResponse:
    caller = await _caller(request)
    if isinstance(caller, JSONResponse):
        return caller
    try:
        command_id = uuid.UUID(request.path_params["command_id"])
    except ValueError:
        return problem(404, "unknown_command", "no command has this id")
    try:
        outcome, detail = _acknowledgement(caller.body)
    except MalformedPassage as error:
        return error.response()
    try:
        answer = await gates.acknowledge(
            request.app.state.db,
            caller.tenant_id,
            caller.lane_id,
            command_id,
            outcome,
            detail,
            connector_id=caller.connector.id,
        )
    except NotFound as error:
        return problem(404, "unknown_command", error.message)
    except gate_rules.AlreadyAcknowledged as error:
        return problem(409, "already_acknowledged", error.message, **error.details)
    command = answer.command
    return JSONResponse(
        {
            "id": str(command.id),
            "status": command.status(gates.now_utc()),
            "outcome": command.outcome,
            "acknowledged_at": None if command.acknowledged_at is None else command.acknowledged_at.isoformat(),
            "fault_exception_id": None if command.fault_exception_id is None else str(command.fault_exception_id),
            "repeated": answer.repeated,
        }
    )


routes = [
    Route("/lanes/{lane_id}/reads", receive_reads, methods=["POST"]),
    Route("/lanes/{lane_id}/faults", receive_fault, methods=["POST"]),
    Route("/lanes/{lane_id}/commands", fetch_commands, methods=["GET"]),
    Route("/lanes/{lane_id}/commands/{command_id}/ack", acknowledge_command, methods=["POST"]),
]
