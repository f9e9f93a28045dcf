"""Compare two trees: each benchmark's ratios to its baseline, measured interleaved.

    .venv/bin/python -m bench.compare --old DIR --new DIR
        [--benchmarks article_page,trades,fanout] [--rounds 3] [--quick]
        [--article-page-args "…"] [--trades-args "…"] [--fanout-args "…"]
        [--tolerance 5] [--keep DIR] [--json PATH]

For each benchmark it runs ``python -m bench.<name> --app-root OLD`` and ``--app-root NEW``
alternately, ``--rounds`` times each (old, new, old, new…), all from this tree (the baselines
never change), each with ``--json``; then it prints, per headline ratio, the median of the old
runs, the median of the new ones (of all their rounds, where a run's ratio is a median of
rounds) and new/old − 1, flagging any change beyond ``--tolerance`` percent (exit status 1; 2
if a run failed). A ratio is of the app to its baseline in the same run, so what the machine
does meanwhile mostly cancels out; the min–max spread of each side between runs shows what is
left. Each benchmark gets moderate sizes by default (about 15 minutes for all three at 3 rounds
on 2 cores) or small ones with ``--quick``; ``--<name>-args`` replaces them.

Before and after a restructuring, from the tree of the result::

    git worktree add /tmp/agora-before <commit before>
    .venv/bin/python -m bench.compare --old /tmp/agora-before --new .
    git worktree remove /tmp/agora-before
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.harness.cli import app_root, subset
from bench.harness.results import read_json
from bench.harness.servers import BENCH_ROOT, python_env
from bench.harness.stats import median

BENCHMARKS = ("article_page", "trades", "fanout")
# Sizes for a comparison: enough requests that a ratio settles, few enough for 3 rounds.
SIZES = {
    "article_page": "--requests 900 --rounds 9 --warmup 100",
    "trades": "--requests 900 --rounds 9 --warmup 64",
    "fanout": "--sizes 1000 --events 40 --markets 5 --per-market 200 --trade-rounds 8",
}
# A smoke test of the whole chain, not a measurement.
QUICK = {
    "article_page": "--requests 100 --rounds 1 --warmup 20",
    "trades": "--requests 90 --rounds 1 --warmup 16",
    "fanout": "--sizes 100 --events 3 --markets 5 --per-market 5",
}


def run_once(
    benchmark: str, side: str, root: Path, number: int, extra: list[str], folder: Path
) -> dict[str, Any] | None:
    """One run of ``benchmark`` on ``root``; its results, or None (said why) if it failed."""
    stem = folder / f"{benchmark}-{number}-{side}"
    command = [sys.executable, "-m", f"bench.{benchmark}", "--app-root", str(root)]
    command += ["--json", f"{stem}.json", *extra]
    began = time.perf_counter()
    with open(f"{stem}.log", "wb") as log:
        done = subprocess.run(
            command,
            cwd=BENCH_ROOT,
            env=python_env(BENCH_ROOT, {}),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.perf_counter() - began
    results = read_json(Path(f"{stem}.json")) if Path(f"{stem}.json").exists() else None
    if done.returncode != 0 or results is None or results["status"] != 0:
        tail = Path(f"{stem}.log").read_text(errors="replace")[-2000:]
        print(f"  {side} #{number}: FAILED (exit {done.returncode}) after {seconds:.0f}s:\n{tail}")
        return None
    shown = ", ".join(
        f"{name} {_number(ratio['value'])}" for name, ratio in results["ratios"].items()
    )
    load = results.get("load_average")
    print(f"  {side} #{number} ({seconds:.0f}s, load {load}): {shown}", flush=True)
    return results


def _number(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def _spread(values: list[float]) -> str:
    """min–max of the values as ± percent around their median."""
    middle = median(values)
    if len(values) < 2 or not middle or math.isnan(middle):
        return "-"
    return f"±{(max(values) - min(values)) / 2 / middle:.1%}"


def compare(
    benchmark: str, runs: dict[str, list[dict[str, Any]]], tolerance: float
) -> tuple[list[dict[str, Any]], int]:
    """Per ratio: the medians of both sides and the change; and how many are flagged.

    A side's median is over every round of every run where the ratio is a median of rounds
    (all the pairs that were measured), else over the runs; the spread is between runs.
    """
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"old": [], "new": []})
    pooled: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"old": [], "new": []})
    better: dict[str, str] = {}
    for side, results in runs.items():
        for result in results:
            for name, ratio in result["ratios"].items():
                better[name] = ratio["better"]
                if ratio["value"] is not None:
                    values[name][side].append(float(ratio["value"]))
                    samples = ratio.get("samples") or [ratio["value"]]
                    pooled[name][side] += [float(v) for v in samples if v is not None]
    rows = []
    flagged = 0
    width = max([len(benchmark) + 19, *(len(name) for name in values)])
    print()
    print(
        f"{benchmark + ': ratio to baseline':<{width}} {'better':>6} {'old':>7} {'new':>7} "
        f"{'change':>7}   {'spread old':>10} {'spread new':>10}"
    )
    for name, sides in values.items():
        old, new = median(pooled[name]["old"]), median(pooled[name]["new"])
        change = new / old - 1 if old and not math.isnan(old) else math.nan
        flag = ""
        if math.isnan(change):
            flag = "  (no figure)"
        elif abs(change) > tolerance / 100:
            flagged += 1
            worse = (change < 0) == (better[name] == "higher")
            flag = f"  ! {'worse' if worse else 'better'} beyond ±{tolerance:g}%"
        print(
            f"{name:<{width}} {better[name]:>6} {_number(old):>7} {_number(new):>7} "
            f"{'-' if math.isnan(change) else f'{change:+.1%}':>7}   "
            f"{_spread(sides['old']):>10} {_spread(sides['new']):>10}{flag}"
        )
        rows.append(
            {
                "benchmark": benchmark,
                "ratio": name,
                "better": better[name],
                "old": sides["old"],
                "new": sides["new"],
                "old_median": None if math.isnan(old) else old,
                "new_median": None if math.isnan(new) else new,
                "change": None if math.isnan(change) else change,
                "flagged": flag.startswith("  !"),
            }
        )
    return rows, flagged


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description="Each benchmark on two trees, interleaved: the change of its ratios.",
    )
    parser.add_argument("--old", type=app_root, required=True, help="the tree before")
    parser.add_argument("--new", type=app_root, required=True, help="the tree after")
    parser.add_argument("--benchmarks", type=subset(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--rounds", type=int, help="runs per tree and benchmark (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 round: a smoke test")
    for name in BENCHMARKS:
        parser.add_argument(
            f"--{name.replace('_', '-')}-args",
            dest=f"{name}_args",
            help=f'options of bench.{name} instead of "{SIZES[name]}"',
        )
    parser.add_argument("--tolerance", type=float, default=5.0, help="percent (default 5)")
    parser.add_argument("--keep", type=Path, help="keep every run's log and JSON in this folder")
    parser.add_argument("--json", type=Path, help="write the comparison here")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rounds < 1 or args.tolerance <= 0:
        parser.error("--rounds and --tolerance must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="agora-compare-"))
    folder.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    print(f"old: {args.old}\nnew: {args.new}\n{args.rounds} round(s) of old then new")
    rows: list[dict[str, Any]] = []
    flagged = failed = 0
    try:
        for benchmark in args.benchmarks:
            options = (
                getattr(args, f"{benchmark}_args") or (QUICK if args.quick else SIZES)[benchmark]
            )
            print(f"\n{benchmark} {options}")
            runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
            for number in range(1, args.rounds + 1):
                for side, root in (("old", args.old), ("new", args.new)):
                    result = run_once(benchmark, side, root, number, shlex.split(options), folder)
                    if result is None:
                        failed += 1
                    else:
                        runs[side].append(result)
            found, count = compare(benchmark, runs, args.tolerance)
            rows += found
            flagged += count
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(
        f"\n{time.perf_counter() - began:.0f}s; {flagged} ratio(s) changed beyond "
        f"±{args.tolerance:g}%, {failed} failed run(s)"
    )
    if args.json:
        document = {"old": str(args.old), "new": str(args.new), "rounds": args.rounds}
        args.json.write_text(json.dumps({**document, "ratios": rows}, indent=2) + "\n")
    return 2 if failed else 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
