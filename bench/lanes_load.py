"""The lanes benchmark's load: gates' requests generated beforehand, one file per lane, and wrk driving them
with a thread and a connection per lane.

wrk's Lua state is per thread, so with one connection per thread each state is one lane's gate: it sends its
lane's requests in order, and each answer belongs to the request it sent last, so it can be checked against the
reason its vehicle should get. Paced runs use wrk's `delay()`, which wrk calls before every request, the first
one too (so the lanes do not start in step); the latency wrk records runs from sending a request to its answer,
without the wait."""

from __future__ import annotations

import json
import re
import resource
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.cpu_usage import CpuUse
from bench.http_load import WrkError, ensure_wrk
from bench.lanes_setup import LanesOperator, PlannedExit
from bench.results import LoadResult
from hub.lanes import rules as lane_rules

# The reasons the Lua script tallies by name (anything else counts as "other").
REASONS = (
    lane_rules.PAYMENT_DUE,
    lane_rules.PAID,
    lane_rules.PASS,
    lane_rules.WHITELISTED,
    lane_rules.AUTO_PAY,
    lane_rules.NO_FEE,
    lane_rules.EXIT_WITHOUT_ENTRY,
    lane_rules.LOW_CONFIDENCE,
    lane_rules.PLATE_DISAGREEMENT,
)
OTHER_REASON = "other"

# Each wrk thread has one connection, so its Lua state is one lane's gate: it sends its lane's requests in order
# and each answer belongs to the request it sent last. Records are `<size> <expected reason>\n<raw request>`.
LUA_TEMPLATE = r"""
local files = @FILES@
local reasons = @REASONS@
local interval = @INTERVAL@

local reason_index = {}
for i, name in ipairs(reasons) do reason_index[name] = i end

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
  local list, wants, pos = {}, {}, 1
  while pos <= #data do
    local newline = string.find(data, "\n", pos, true)
    local size, want = string.match(string.sub(data, pos, newline - 1), "^(%d+) ?(.*)$")
    size = tonumber(size)
    list[#list + 1] = string.sub(data, newline + 1, newline + size)
    wants[#wants + 1] = want
    pos = newline + size + 1
  end
  return list, wants
end

function init(args)
  requests, wants = load(files[id])
  position = 0
  wrapped = 0
  bad_status = 0
  mismatched = 0
  answered = 0
  for i = 0, #reasons do _G["tally_" .. i] = 0 end
  math.randomseed(7919 * id)
end

if interval > 0 then
  function delay()
    return math.floor(interval * (0.5 + math.random()))
  end
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
  answered = answered + 1
  if status ~= 200 then
    bad_status = bad_status + 1
    return
  end
  local want = wants[position]
  if want == "" then return end
  local reason = string.match(body, '"reason":"([^"]*)"')
  local index = reason_index[reason] or 0
  _G["tally_" .. index] = _G["tally_" .. index] + 1
  if reason ~= want then mismatched = mismatched + 1 end
end

function done(summary, latency, requests)
  local totals = {bad_status = 0, mismatched = 0, wrapped = 0}
  local tallies = {}
  for i = 0, #reasons do tallies[i] = 0 end
  local fewest, most = nil, 0
  for _, t in ipairs(threads) do
    local lane = t:get("answered")
    if fewest == nil or lane < fewest then fewest = lane end
    if lane > most then most = lane end
    totals.bad_status = totals.bad_status + t:get("bad_status")
    totals.mismatched = totals.mismatched + t:get("mismatched")
    totals.wrapped = totals.wrapped + t:get("wrapped")
    for i = 0, #reasons do tallies[i] = tallies[i] + t:get("tally_" .. i) end
  end
  local parts = {}
  for i = 0, #reasons do parts[#parts + 1] = tostring(tallies[i]) end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d bad_status=%d mismatched=%d " ..
    "wrapped=%d socket_errors=%d lane_min=%d lane_max=%d tallies=%s\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, totals.bad_status, totals.mismatched, totals.wrapped, e.connect + e.read + e.write + e.timeout,
    fewest or 0, most, table.concat(parts, ",")))
end
"""

RESULT_LINE = re.compile(
    r"BENCH requests=(\d+) duration_us=(\d+) p50_us=(\d+) p90_us=(\d+) p99_us=(\d+) max_us=(\d+) "
    r"bad_status=(\d+) mismatched=(\d+) wrapped=(\d+) socket_errors=(\d+) lane_min=(\d+) lane_max=(\d+) "
    r"tallies=([\d,]+)"
)


# --- requests -----------------------------------------------------------------------------------------------


def passage_body(passage_id: str, planned: PlannedExit, *, cameras: int) -> bytes:
    """A gate's passage: one read per camera, each with the plate, a confidence above the lanes' threshold and
    a snapshot reference. No `at`: the passage is at the time ParkHub receives it."""
    reads = [
        {
            "camera": f"exit-cam-{'ab'[camera]}",
            "plate": planned.plate,
            "confidence": round(0.9 + 0.09 * ((planned.sequence + camera) % 10) / 10, 3),
            "image": f"snap/{passage_id}-{'ab'[camera]}.jpg",
        }
        for camera in range(cameras)
    ]
    return orjson.dumps({"passage_id": passage_id, "reads": reads})


def exit_request(host: str, lane_id: str, secret: str, body: bytes) -> bytes:
    """The raw HTTP/1.1 request (keep-alive) of a gate authenticating with its connector's shared secret."""
    head = (
        f"POST /lanes/{lane_id}/reads HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Content-Type: application/json\r\n"
        f"Authorization: Bearer {secret}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


def healthz_request(host: str) -> bytes:
    return f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def cameras_at(lane: int) -> int:
    """Every other lane has two cameras (the reads must agree); the others one."""
    return 2 if lane % 2 == 0 else 1


def lane_requests(
    host: str, operator: LanesOperator, plans: Sequence[Sequence[PlannedExit]], tag: str, *, repeat_to: int = 0
) -> list[list[tuple[bytes, str]]]:
    """Each lane's requests in order with the reason each should get. With `repeat_to` a lane's plan is sent
    again and again (with new passage ids) up to that many requests: only for vehicles who are held."""
    per_lane = []
    for lane, plan in enumerate(plans):
        lane_id = str(operator.exit_lanes[lane].id)
        count = max(repeat_to, len(plan))
        requests = []
        for number in range(count):
            planned = plan[number % len(plan)]
            passage_id = f"{tag}-{lane:03d}-{number:06d}"
            body = passage_body(passage_id, planned, cameras=cameras_at(lane))
            requests.append((exit_request(host, lane_id, operator.secret, body), planned.kind.reason))
        per_lane.append(requests)
    return per_lane


def request_record(raw: bytes, expected_reason: str) -> bytes:
    """`<size> <expected reason>\\n<raw request>`: what the Lua script reads (an empty reason: any 200)."""
    return f"{len(raw)} {expected_reason}\n".encode() + raw


def write_lane_files(per_lane: Sequence[Sequence[tuple[bytes, str]]], directory: Path) -> list[Path]:
    """One file of records per lane (per wrk thread), in the lane's order, in `directory` (made if need be)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for lane, requests in enumerate(per_lane):
        path = directory / f"lane-{lane:03d}.bin"
        with path.open("wb") as handle:
            for raw, reason in requests:
                handle.write(request_record(raw, reason))
        paths.append(path)
    return paths


def lua_script(files: Sequence[Path], interval_ms: float) -> str:
    lua_files = "{" + ", ".join(json.dumps(str(path)) for path in files) + "}"
    lua_reasons = "{" + ", ".join(json.dumps(reason) for reason in REASONS) + "}"
    return (
        LUA_TEMPLATE.replace("@FILES@", lua_files)
        .replace("@REASONS@", lua_reasons)
        .replace("@INTERVAL@", f"{max(0.0, interval_ms):g}")
    )


# --- runs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaneRun:
    """One wrk run of 100 lanes. `load.requests` counts answers as expected only (a 200 with the expected
    reason, or any 200 from /healthz)."""

    load: LoadResult
    p90_ms: float
    max_ms: float
    bad_status: int
    mismatched: int
    wrapped: bool
    tallies: dict[str, int]
    lane_range: tuple[int, int]  # the fewest and the most answers a lane got
    client_cpu_s: float  # wrk's own CPU time
    cpu: CpuUse | None = None
    connections: tuple[int, ...] = ()  # the lanes' connections each server process held, mid-run
    db_sessions: int = 0  # database connections opened during the run (the server's, and the bench's own)


def parse_wrk_output(stdout: str, *, label: str, connections: int) -> LaneRun:
    match = RESULT_LINE.search(stdout)
    if match is None:
        raise WrkError(f"wrk printed no result line: {stdout[-800:]}")
    *numbers, tallies_text = match.groups()
    (requests, duration_us, p50, p90, p99, worst, bad_status, mismatched, wrapped, socket_errors, fewest, most) = map(
        int, numbers
    )
    counts = [int(value) for value in tallies_text.split(",")]
    tallies = {OTHER_REASON: counts[0]} | dict(zip(REASONS, counts[1:], strict=True))
    failed = bad_status + mismatched
    load = LoadResult(
        label=label,
        connections=connections,
        seconds=duration_us / 1e6,
        requests=max(0, requests - failed),
        errors=failed + socket_errors,
        p50_ms=p50 / 1000,
        p99_ms=p99 / 1000,
    )
    tallies = {reason: count for reason, count in tallies.items() if count}
    return LaneRun(load, p90 / 1000, worst / 1000, bad_status, mismatched, wrapped > 0, tallies, (fewest, most), 0.0)


def run_lanes_wrk(
    base_url: str, files: Sequence[Path], *, label: str, seconds: int, interval_ms: float = 0.0
) -> LaneRun:
    """wrk with a thread and a connection per file (per lane), for `seconds`; paced when `interval_ms` > 0."""
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="parkhub-wrk-") as scratch:
        script = Path(scratch) / "lanes.lua"
        script.write_text(lua_script(files, interval_ms))
        threads = len(files)
        command = [wrk, f"-t{threads}", f"-c{threads}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        completed = subprocess.run([*command, base_url], capture_output=True, text=True, timeout=seconds + 120)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise WrkError(f"wrk failed ({completed.returncode}): {completed.stdout[-800:]} {completed.stderr[-800:]}")
    run = parse_wrk_output(completed.stdout, label=label, connections=threads)
    client = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return LaneRun(**{**run.__dict__, "client_cpu_s": client})
