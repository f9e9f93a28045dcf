"""Machine-readable results (``--json PATH``): the headline ratios and the raw figures."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness.stats import median, pairs


@dataclass(frozen=True)
class Ratio:
    """A headline ratio of the project to its baseline, measured in one run."""

    value: float
    better: str  # "higher" or "lower": which way the project looks better
    samples: tuple[float, ...] = ()  # the rounds' ratios, when ``value`` is their median

    @classmethod
    def of_rounds(cls, a: Sequence[float], b: Sequence[float], better: str) -> Ratio:
        """The median of a_i / b_i over rounds that each measured a then b.

        Load from elsewhere on the machine comes and goes; two batches measured one right after
        the other mostly see the same, and the median drops the rounds where they did not.
        """
        samples = tuple(pairs(a, b))
        return cls(median(samples), better, samples)

    def as_json(self) -> dict[str, Any]:
        values: dict[str, Any] = {"value": self.value, "better": self.better}
        if self.samples:
            values["samples"] = list(self.samples)
        return _plain(values)


@dataclass
class Results:
    """What a benchmark run found: its exit status, its headline ratios, everything measured."""

    status: int
    ratios: dict[str, Ratio] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """``value`` with NaN and infinities as null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_json(path: Path, benchmark: str, app_root: Path, results: Results, began: float) -> None:
    document = {
        "benchmark": benchmark,
        "app_root": str(app_root),
        "argv": sys.argv[1:],
        "status": results.status,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
        "seconds": round(time.time() - began, 1),
        "load_average": round(os.getloadavg()[0], 2),  # at the end: what else ran meanwhile
        "ratios": {name: ratio.as_json() for name, ratio in results.ratios.items()},
        "figures": _plain(results.figures),
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    assert isinstance(document, dict)
    return document
