"""Find-a-space over HTTP with wrk: 32 connections posting the public GraphQL search at random points."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.points import lua_bounds, lua_districts_table
from bench.results import LoadResult

NEAR_QUERY = (
    "query Near($lon: Float!, $lat: Float!) { spacesNear(lon: $lon, lat: $lat, radiusMeters: 500, first: 20) "
    "{ distanceMeters space { id code status evCharger } facility { id name kind } operator { name } } }"
)

# Each request is a fresh random point; a response counts as an error unless it is a 200 without "errors".
LUA_TEMPLATE = r"""
local districts = @DISTRICTS@
local bounds = @BOUNDS@
local query = @QUERY@
local total_weight = 0
for _, d in ipairs(districts) do total_weight = total_weight + d[4] end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local threads = {}
local next_id = 1
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(7919 * id)
  failed = 0
end

local function gauss()
  local u1 = math.random()
  if u1 < 1e-12 then u1 = 1e-12 end
  return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * math.random())
end

function request()
  local pick = math.random() * total_weight
  local d = districts[#districts]
  for _, candidate in ipairs(districts) do
    pick = pick - candidate[4]
    if pick < 0 then d = candidate break end
  end
  local lon, lat
  repeat
    lon = d[1] + gauss() * d[3] / (111320 * math.cos(math.rad(d[2])))
    lat = d[2] + gauss() * d[3] / 110574
  until lon > bounds[1] and lat > bounds[2] and lon < bounds[3] and lat < bounds[4]
  local body = string.format('{"query":%s,"variables":{"lon":%.6f,"lat":%.6f}}', query, lon, lat)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then failed = failed + 1 end
end

function done(summary, latency, requests)
  local failures = 0
  for _, t in ipairs(threads) do failures = failures + t:get("failed") end
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d failed=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), failures,
    e.connect + e.read + e.write + e.timeout))
end
"""

RESULT_LINE = re.compile(
    r"BENCH requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) failed=(\d+) socket_errors=(\d+)"
)


class WrkError(RuntimeError):
    pass


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise WrkError("wrk is not installed; install it with `sudo apt-get install wrk`")
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        completed = subprocess.run(install, env=env, capture_output=True, text=True)
        if completed.returncode != 0:
            raise WrkError(f"could not install wrk: {completed.stderr.strip()[-500:]}")
    found = shutil.which("wrk")
    if not found:
        raise WrkError("wrk is still not on PATH after installing it")
    return found


def lua_script() -> str:
    return (
        LUA_TEMPLATE.replace("@DISTRICTS@", lua_districts_table())
        .replace("@BOUNDS@", lua_bounds())
        .replace("@QUERY@", "[==[" + json.dumps(NEAR_QUERY) + "]==]")
    )


def run_wrk(url: str, *, connections: int, seconds: int, threads: int = 2) -> LoadResult:
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="parkhub-wrk-") as scratch:
        script = Path(scratch) / "find_a_space.lua"
        script.write_text(lua_script())
        command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    match = RESULT_LINE.search(completed.stdout)
    if completed.returncode != 0 or match is None:
        raise WrkError(f"wrk failed ({completed.returncode}): {completed.stdout[-800:]} {completed.stderr[-800:]}")
    requests, duration_us, p50_us, p99_us, failed, socket_errors = (int(value) for value in match.groups())
    return LoadResult(
        label="HTTP (wrk)",
        connections=connections,
        seconds=duration_us / 1e6,
        # Only good answers count towards the rate; failures are reported beside it.
        requests=max(0, requests - failed),
        errors=failed + socket_errors,
        p50_ms=p50_us / 1000,
        p99_ms=p99_us / 1000,
    )
