"""Figures: percentiles, ratios, medians, the summary of timed batches and its table."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` (0–100) of already sorted values (NaN if none)."""
    if not sorted_values:
        return math.nan
    position = (len(sorted_values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def ratio(a: float, b: float) -> float:
    """a / b, NaN when b is 0 or NaN."""
    return a / b if b and not math.isnan(b) else math.nan


def median(values: Sequence[float]) -> float:
    """The median of the values that are numbers (NaN if none)."""
    numbers = [v for v in values if not math.isnan(v)]
    return statistics.median(numbers) if numbers else math.nan


def pairs(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """a_i / b_i: two series measured in alternation, round by round."""
    return [ratio(x, y) for x, y in zip(a, b, strict=True)]


def split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` near-equal whole parts."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Timed(Protocol):
    """A timed batch of requests (see ``bench.harness.load.Batch``)."""

    latencies: list[float]
    failures: Counter[str]
    elapsed: float
    capped: bool
    server_cpu: float
    client_cpu: float


@dataclass
class Figures:
    """What timed batches of one target add up to."""

    name: str
    ok: int
    failed: int
    rate: float  # successful requests per second
    p50_ms: float
    p99_ms: float
    round_rates: list[float]
    round_cpu_ms: list[float]  # server CPU per successful request, round by round
    capped: bool
    server_cpu_ms: float  # server CPU per successful request
    client_cpu_share: float  # load generator CPU / wall time (1.0 = one core saturated)
    failures: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["failures"] = dict(self.failures)
        return values


def summarise(name: str, batches: Sequence[Timed]) -> Figures:
    latencies = sorted(lat for batch in batches for lat in batch.latencies)
    elapsed = sum(batch.elapsed for batch in batches)
    failures: Counter[str] = Counter()
    for batch in batches:
        failures.update(batch.failures)
    return Figures(
        name=name,
        ok=len(latencies),
        failed=sum(failures.values()),
        rate=ratio(len(latencies), elapsed),
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        round_rates=[ratio(len(batch.latencies), batch.elapsed) for batch in batches],
        round_cpu_ms=[ratio(batch.server_cpu * 1000, len(batch.latencies)) for batch in batches],
        capped=any(batch.capped for batch in batches),
        server_cpu_ms=ratio(sum(batch.server_cpu for batch in batches) * 1000, len(latencies)),
        client_cpu_share=ratio(sum(batch.client_cpu for batch in batches), elapsed),
        failures=failures,
    )


def print_table(
    rows: Sequence[Figures],
    label: str,
    extra_header: str = "",
    extra: Callable[[Figures], str] | None = None,
) -> None:
    """One line per target: ok, failed, req/s, p50, p99, server CPU, client CPU, per round."""
    width = max(12, *(len(row.name) for row in rows))
    header = (
        f"{label:<{width}} {'ok':>6} {'failed':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'srv CPU ms/req':>14} {'client CPU':>10}"
    )
    print(header + f"   {'req/s per round':<17} {extra_header}".rstrip())
    print("-" * (len(header) + 20 + len(extra_header)))
    for row in rows:
        rounds = " ".join(f"{rate:.0f}" for rate in row.round_rates)
        capped = " (capped)" if row.capped else ""
        print(
            f"{row.name:<{width}} {row.ok:>6} {row.failed:>6} {row.rate:>8.1f} {row.p50_ms:>8.2f} "
            f"{row.p99_ms:>8.2f} {row.server_cpu_ms:>14.2f} {row.client_cpu_share:>9.0%}   "
            f"{rounds + capped:<17} {extra(row) if extra else ''}".rstrip()
        )
    print(
        "(client CPU: the load generator's share of one core; near 100% it, not the server,"
        " limits the rate)"
    )


def machine(database_version: str) -> str:
    """One line on the interpreter, the database and the machine, for a report's head."""
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{database_version}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
        f"{platform.machine()}, load average {os.getloadavg()[0]:.2f}"
    )
