"""Open-connection load with wrk (the issue's ``wrk -c32``), on the client CPU.

``run_wrk`` POSTs one body to a URL from ``connections`` keep-alive connections for
``duration`` seconds and returns the count, the rate and the latency percentiles wrk measured
(its own histogram, microseconds). Every answer is checked by a Lua ``response`` hook: status
200 and exactly the length of the answer verified beforehand (both servers of a benchmark
answer the same page with the same bytes every time; a wrong answer of the same length would
need the same bytes count by chance, and the benchmarks check the bytes once before and after).
wrk runs pinned to the client CPU when ``--pin auto`` (``bench.harness.pinning``); the servers'
CPU over the batch comes from their process trees (``procfs``).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import pinning

PERCENTILES = (50.0, 75.0, 90.0, 99.0, 99.9)
MARK = "WRK-JSON:"

# One Lua state per wrk thread: each counts its own wrong answers, done() sums them.
SCRIPT = """
wrk.method = "POST"
wrk.body = BODY
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) wrong = 0; first = "" end
function response(status, headers, body)
  if status ~= 200 or #body ~= EXPECTED then
    wrong = wrong + 1
    if first == "" then first = status .. " " .. string.sub(body, 1, 200) end
  end
end
function done(summary, latency, requests)
  local wrong_total, first_seen = 0, ""
  for _, t in ipairs(threads) do
    wrong_total = wrong_total + t:get("wrong")
    if first_seen == "" then first_seen = t:get("first") end
  end
  local e = summary.errors
  io.write(string.format(
    'MARK{"requests":%d,"duration_us":%d,"bytes":%d,"wrong":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"mean_us":%f,"max_us":%d,"percentiles":{',
    summary.requests, summary.duration, summary.bytes, wrong_total, e.connect, e.read,
    e.write, e.status, e.timeout, latency.mean, latency.max))
  for i, p in ipairs({PERCENTILES}) do
    if i > 1 then io.write(",") end
    io.write(string.format('"%s":%d', tostring(p), latency:percentile(p)))
  end
  local shown = string.gsub(first_seen, "[^%w %.:_-]", "?")
  io.write(string.format('},"first_wrong":"%s"}\\n', shown))
end
"""


def available() -> bool:
    """Whether wrk is installed (apt's ``wrk``)."""
    return shutil.which("wrk") is not None


@dataclass
class WrkBatch:
    """One wrk run against one server: what it counted and measured, and the server's CPU."""

    name: str
    requests: int = 0
    seconds: float = 0.0
    wrong: int = 0  # answers not 200 with the expected length
    errors: dict[str, int] = field(default_factory=dict)  # wrk's socket errors and timeouts
    percentiles_ms: dict[str, float] = field(default_factory=dict)
    mean_ms: float = math.nan
    max_ms: float = math.nan
    server_cpu: float = math.nan  # CPU seconds the measured processes used meanwhile
    extra_cpu: dict[str, float] = field(default_factory=dict)  # e.g. PostgreSQL's, apart
    first_wrong: str = ""

    @property
    def ok(self) -> int:
        return self.requests - self.wrong

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else math.nan

    @property
    def failed(self) -> int:
        return self.wrong + sum(self.errors.values())

    def cpu_ms(self, extra: bool = False) -> float:
        """Server CPU per answered request (ms); with ``extra``, the other processes' too."""
        total = self.server_cpu + (sum(self.extra_cpu.values()) if extra else 0.0)
        return total * 1000 / self.ok if self.ok else math.nan

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values.update(rate=self.rate, ok=self.ok, cpu_ms=self.cpu_ms())
        return values


def lua_script(body: bytes, expected_length: int) -> str:
    """The Lua script of a run: the body, the answer's length, the percentiles reported."""
    text = SCRIPT.replace("BODY", _lua_string(body.decode("utf-8")))
    text = text.replace("EXPECTED", str(expected_length)).replace("MARK", MARK)
    return text.replace("{PERCENTILES}", "{" + ", ".join(str(p) for p in PERCENTILES) + "}")


def _lua_string(text: str) -> str:
    """``text`` as a Lua long string (no escapes to get wrong)."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def run_wrk(
    name: str,
    url: str,
    body: bytes,
    expected_length: int,
    duration: float,
    connections: int = 32,
    threads: int = 1,
    cpu_of: Callable[[], float] | None = None,
    extra_cpu_of: dict[str, Callable[[], float]] | None = None,
    timeout_s: float = 10.0,
) -> WrkBatch:
    """``wrk -t threads -c connections -d duration`` POSTing ``body`` to ``url``; every answer
    must be 200 with ``expected_length`` bytes. ``cpu_of`` (the server's CPU clock) and
    ``extra_cpu_of`` (PostgreSQL's, say) are read before and after, for CPU per request."""
    if not available():
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    batch = WrkBatch(name)
    with tempfile.TemporaryDirectory(prefix="agora-wrk-") as folder:
        script = Path(folder) / "post.lua"
        script.write_text(lua_script(body, expected_length))
        command = [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(duration))}s",
            "--timeout",
            f"{timeout_s:g}s",
            "-s",
            str(script),
            url,
        ]
        extra = extra_cpu_of or {}
        cpu_before = cpu_of() if cpu_of else math.nan
        extra_before = {key: read() for key, read in extra.items()}
        began = time.perf_counter()
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=duration + timeout_s + 60,
            check=False,
            preexec_fn=pinning.client_preexec(),
        )
        elapsed = time.perf_counter() - began
        if cpu_of:
            batch.server_cpu = cpu_of() - cpu_before
        batch.extra_cpu = {key: read() - extra_before[key] for key, read in extra.items()}
    found = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-1000:]}")
    figures = json.loads(found[-1][len(MARK) :])
    batch.requests = int(figures["requests"])
    batch.seconds = figures["duration_us"] / 1e6 or elapsed
    batch.wrong = int(figures["wrong"])
    batch.errors = {
        key: int(figures[key])
        for key in ("connect", "read", "write", "timeout")
        if int(figures[key])
    }
    batch.percentiles_ms = {key: value / 1000 for key, value in figures["percentiles"].items()}
    batch.mean_ms = figures["mean_us"] / 1000
    batch.max_ms = figures["max_us"] / 1000
    batch.first_wrong = figures["first_wrong"]
    return batch


def summary(batches: Sequence[WrkBatch]) -> dict[str, Any]:
    """Rounds of one target: min/median/max of the rate, CPU per request and each percentile
    over the rounds, and the failures summed."""

    def spread(values: list[float]) -> dict[str, float]:
        numbers = sorted(v for v in values if not math.isnan(v))
        if not numbers:
            return {"min": math.nan, "median": math.nan, "max": math.nan}
        middle = len(numbers) // 2
        med = numbers[middle] if len(numbers) % 2 else (numbers[middle - 1] + numbers[middle]) / 2
        return {"min": numbers[0], "median": med, "max": numbers[-1]}

    keys = sorted({key for batch in batches for key in batch.percentiles_ms}, key=float)
    return {
        "rounds": len(batches),
        "requests": sum(batch.ok for batch in batches),
        "failed": sum(batch.failed for batch in batches),
        "rate": spread([batch.rate for batch in batches]),
        "cpu_ms": spread([batch.cpu_ms() for batch in batches]),
        "cpu_ms_with_extra": spread([batch.cpu_ms(extra=True) for batch in batches]),
        "percentiles_ms": {
            key: spread([batch.percentiles_ms.get(key, math.nan) for batch in batches])
            for key in keys
        },
    }
