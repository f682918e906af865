"""Signed webhook load with wrk: pre-generated requests, each with its own `webhook-id` and event ids.

wrk cannot compute an HMAC per request, and the hub rightly refuses to accept an event id twice, so every
request is built and signed here beforehand (Standard Webhooks, timestamp = now, valid for 5 minutes) and
written, already as raw HTTP, to one file per wrk thread. Each thread's Lua state reads its own file and sends
its requests in order; it starts over only when it runs out (then the repeats are duplicates, which the count
below does not take as accepted, and the run is flagged).

A response counts as a durable accept only when it is a 202 whose `accepted` equals the events sent: the hub
answers 202 after the commit, so that is an event safely in the inbox. Anything else is reported as an error.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.http_load import WrkError, ensure_wrk
from bench.results import LoadResult
from connectors.signatures import sign

LUA_TEMPLATE = r"""
local files = @FILES@
local expected = @EXPECTED@

local threads = {}
local next_id = 1
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function load(path)
  local handle = assert(io.open(path, "rb"))
  local data = handle:read("*a")
  handle:close()
  local list, pos = {}, 1
  while pos <= #data do
    local newline = string.find(data, "\n", pos, true)
    local size = tonumber(string.sub(data, pos, newline - 1))
    list[#list + 1] = string.sub(data, newline + 1, newline + size)
    pos = newline + size + 1
  end
  return list
end

function init(args)
  requests = load(files[id])
  position = 0
  rejected = 0
  short = 0
  wrapped = 0
end

function request()
  position = position + 1
  if position > #requests then
    position = 1
    wrapped = wrapped + 1
  end
  return requests[position]
end

function response(status, headers, body)
  if status ~= 202 then
    rejected = rejected + 1
  elseif expected ~= "" and not string.find(body, expected, 1, true) then
    short = short + 1
  end
end

function done(summary, latency, requests)
  local total_rejected, total_short, total_wrapped = 0, 0, 0
  for _, t in ipairs(threads) do
    total_rejected = total_rejected + t:get("rejected")
    total_short = total_short + t:get("short")
    total_wrapped = total_wrapped + t:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d rejected=%d short=%d wrapped=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), total_rejected,
    total_short, total_wrapped, e.connect + e.read + e.write + e.timeout))
end
"""

RESULT_LINE = re.compile(
    r"BENCH requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) rejected=(\d+) short=(\d+) wrapped=(\d+) "
    r"socket_errors=(\d+)"
)


@dataclass(frozen=True)
class SignedFeed:
    """Where the requests go and who signs them."""

    host: str  # host:port, for the Host header
    connector_id: uuid.UUID
    secret: str  # `whsec_...`
    device_ids: tuple[str, ...]  # the devices the events name, in turn


@dataclass(frozen=True)
class IngestRun:
    """One wrk run of signed webhooks. `load.requests` counts durable accepts only."""

    load: LoadResult
    events_per_request: int
    rejected: int  # answers other than 202
    short: int  # 202s that accepted fewer events than were sent (duplicates: the pre-generated ones ran out)
    wrapped: bool  # a wrk thread started over on its requests

    @property
    def events_rate(self) -> float:
        return self.load.rate * self.events_per_request


def native_event(event_id: str, device_id: str, occupied: bool, at: str) -> str:
    """One occupancy event in ParkHub's native format, as compact JSON text."""
    return json.dumps(
        {"id": event_id, "type": "occupancy", "device_id": device_id, "time": at, "occupied": occupied},
        separators=(",", ":"),
    )


def signed_request(feed: SignedFeed, webhook_id: str, timestamp: int, body: bytes) -> bytes:
    """The raw HTTP/1.1 request (keep-alive) a signing sender would send."""
    head = (
        f"POST /connectors/{feed.connector_id} HTTP/1.1\r\n"
        f"Host: {feed.host}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"webhook-id: {webhook_id}\r\n"
        f"webhook-timestamp: {timestamp}\r\n"
        f"webhook-signature: {sign(feed.secret, webhook_id, timestamp, body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


def generate_requests(
    feed: SignedFeed, *, prefix: str, count: int, events_per_request: int, now: datetime | None = None
) -> Iterator[bytes]:
    """`count` signed requests of `events_per_request` events each (a bare event when 1, else a batch), with
    ids unique under `prefix`. Devices take turns; each device's successive events alternate occupied and
    vacant, so the worker has real changes to apply."""
    now = now or datetime.now(UTC)
    timestamp = int(now.timestamp())
    at = now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    devices = feed.device_ids
    sequence = 0
    for number in range(count):
        events = []
        for _ in range(events_per_request):
            device = devices[sequence % len(devices)]
            occupied = (sequence // len(devices)) % 2 == 0
            events.append(native_event(f"{prefix}-{sequence}", device, occupied, at))
            sequence += 1
        body = events[0] if events_per_request == 1 else '{"events":[' + ",".join(events) + "]}"
        yield signed_request(feed, f"{prefix}-r{number}", timestamp, body.encode())


def write_request_files(requests: Iterator[bytes], directory: Path, threads: int) -> list[Path]:
    """Deal the requests round-robin into one file per wrk thread: `<size>\\n<raw request>` records."""
    paths = [directory / f"requests-{index + 1}.bin" for index in range(threads)]
    handles = [path.open("wb") for path in paths]
    try:
        for number, raw in enumerate(requests):
            handle = handles[number % threads]
            handle.write(f"{len(raw)}\n".encode())
            handle.write(raw)
    finally:
        for handle in handles:
            handle.close()
    return paths


def lua_script(files: list[Path], expected_accepted: int | None) -> str:
    expected = f'"accepted":{expected_accepted},' if expected_accepted is not None else ""
    lua_files = "{" + ", ".join(json.dumps(str(path)) for path in files) + "}"
    return LUA_TEMPLATE.replace("@FILES@", lua_files).replace("@EXPECTED@", json.dumps(expected))


def run_ingest_wrk(
    url: str,
    files: list[Path],
    *,
    label: str,
    events_per_request: int,
    connections: int,
    seconds: int,
    expect_all_accepted: bool = True,
) -> IngestRun:
    """Drive `url` with the requests in `files` (one per wrk thread) for `seconds`.

    With `expect_all_accepted` a 202 counts only when it says every event was accepted; without it (the
    no-op baseline, which accepts nothing) any 202 counts."""
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="parkhub-wrk-") as scratch:
        script = Path(scratch) / "ingest.lua"
        script.write_text(lua_script(files, events_per_request if expect_all_accepted else None))
        command = [
            wrk,
            f"-t{len(files)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    match = RESULT_LINE.search(completed.stdout)
    if completed.returncode != 0 or match is None:
        raise WrkError(f"wrk failed ({completed.returncode}): {completed.stdout[-800:]} {completed.stderr[-800:]}")
    requests, duration_us, p50_us, p99_us, rejected, short, wrapped, socket_errors = (
        int(value) for value in match.groups()
    )
    failed = rejected + short
    load = LoadResult(
        label=label,
        connections=connections,
        seconds=duration_us / 1e6,
        requests=max(0, requests - failed),
        errors=failed + socket_errors,
        p50_ms=p50_us / 1000,
        p99_ms=p99_us / 1000,
    )
    return IngestRun(load, events_per_request, rejected, short, wrapped > 0)
