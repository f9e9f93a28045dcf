"""``make bench``: every benchmark by its command line, then bench/RESULTS.md and its chart.

    .venv/bin/python -m bench.run [--quick] [--only article-sqlite,peer,…] [--list]
        [--results bench/RESULTS.md] [--chart bench/results.png] [--keep DIR]

Each part is one benchmark run as ``python -m bench.<script> … --json FILE --pin auto
--production`` (issue 13's harness, ``bench.harness.pinning``: servers and PostgreSQL on CPU 0,
the load generator on CPU 1; production logging and metrics on), one after the other, so no
two share the machine. Its JSON is read back and rendered: per target a table of min / median /
max over the rounds beside the baseline measured in the same run, the target and PASS or FAIL,
with the load average before and after the part; the machine (CPU model, cores, kernel, Python,
the versions of what is measured) at the top; and ``results.png``, the latency percentiles of
every target and baseline (matplotlib, Agg). A part that fails or can't run is reported as
such, never left out. ``--quick`` runs every part with small sizes (a smoke test of the chain:
its figures are printed, the verdicts say "(quick)"). ``--only`` runs some parts; the results
file then holds those only.

The cached page under writes (``bench/cache.py``, another part of issue 13) runs when that
module exists (``CACHE_SLOT``); until then its section says it is not there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness.servers import BENCH_ROOT

RESULTS = BENCH_ROOT / "bench" / "RESULTS.md"
CHART = BENCH_ROOT / "bench" / "results.png"
HARNESS = ["--pin", "auto", "--production"]


@dataclass
class Part:
    """One benchmark run: its module, its arguments (full and ``--quick``), how it is read."""

    name: str
    title: str
    module: str
    args: list[str]
    quick: list[str]
    render: Callable[[dict[str, Any], bool], list[str]]
    harness: list[str] = field(default_factory=lambda: list(HARNESS))
    present: Callable[[], bool] = lambda: True

    def command(self, quick: bool, out: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            self.module,
            *(self.quick if quick else self.args),
            *self.harness,
            "--json",
            str(out),
        ]


# -- figures ------------------------------------------------------------------------------------


def spread(values: list[Any]) -> tuple[float, float, float]:
    """(min, median, max) of the numbers among ``values`` (NaNs if none)."""
    numbers = sorted(float(v) for v in values if isinstance(v, int | float) and math.isfinite(v))
    if not numbers:
        return math.nan, math.nan, math.nan
    middle = len(numbers) // 2
    med = numbers[middle] if len(numbers) % 2 else (numbers[middle - 1] + numbers[middle]) / 2
    return numbers[0], med, numbers[-1]


def fmt(value: Any, digits: int = 1) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{value:,.{digits}f}"


def mmm(values: list[Any], digits: int = 1) -> str:
    low, med, high = spread(values)
    return f"{fmt(low, digits)} / **{fmt(med, digits)}** / {fmt(high, digits)}"


def verdict(ok: bool, quick: bool) -> str:
    text = "PASS" if ok else "FAIL"
    return f"{text} (quick)" if quick else f"**{text}**"


def ratio_row(ratios: dict[str, Any], name: str) -> tuple[float, list[float]]:
    found = ratios.get(name) or {}
    value = found.get("value")
    return (value if isinstance(value, int | float) else math.nan), list(found.get("samples", []))


TABLE_HEAD = [
    "| target | measure | min / **median** / max over rounds | baseline (median) | ratio | "
    "goal | verdict |",
    "| --- | --- | --- | --- | --- | --- | --- |",
]


# Chart series: (label, p50 ms, p99 ms, other percentiles) collected while rendering.
CHART_ROWS: list[tuple[str, dict[str, float]]] = []


def render_pages(document: dict[str, Any], quick: bool, where: str) -> list[str]:
    """bench.article_page: per page, GraphQL against the hand-written endpoint."""
    figures, ratios = document["figures"], document["ratios"]
    lines = [*TABLE_HEAD]
    for page, label in (("article", "Article page"), ("home", "Home feed")):
        if page not in figures:
            continue
        gql, hand = figures[page]["graphql"], figures[page]["handwritten"]
        value, samples = ratio_row(ratios, f"{page}: throughput graphql/handwritten")
        goal = 0.5
        lines.append(
            f"| {label} ({where}) | req/s | {mmm(gql['round_rates'])} | "
            f"{fmt(spread(hand['round_rates'])[1])} (hand-written) | {fmt(value, 2)}× "
            f"(rounds {fmt(min(samples, default=math.nan), 2)}–"
            f"{fmt(max(samples, default=math.nan), 2)}) | ≥ {goal}× (M) | "
            f"{verdict(value >= goal, quick)} |"
        )
        cpu, _ = ratio_row(ratios, f"{page}: server CPU per request graphql/handwritten")
        lines.append(
            f"| | server CPU ms/request | {mmm(gql['round_cpu_ms'], 2)} | "
            f"{fmt(spread(hand['round_cpu_ms'])[1], 2)} | {fmt(cpu, 2)}× | | |"
        )
        lines.append(
            f"| | p50 / p99 ms (all rounds) | {fmt(gql['p50_ms'], 1)} / {fmt(gql['p99_ms'], 1)} | "
            f"{fmt(hand['p50_ms'], 1)} / {fmt(hand['p99_ms'], 1)} | | | |"
        )
        CHART_ROWS.append((f"{label} {where}: Agora", {"50": gql["p50_ms"], "99": gql["p99_ms"]}))
        CHART_ROWS.append(
            (f"{label} {where}: hand-written", {"50": hand["p50_ms"], "99": hand["p99_ms"]})
        )
    return lines


def render_peer(document: dict[str, Any], quick: bool) -> list[str]:
    """bench.peer: Agora against PostGraphile 5 (wrk), both on the same PostgreSQL."""
    figures, ratios = document["figures"], document["ratios"]
    agora, peer = figures["agora"], figures["postgraphile"]
    value, samples = ratio_row(ratios, "peer: throughput agora/postgraphile")
    cpu, _ = ratio_row(ratios, "peer: CPU per request (server + PostgreSQL) agora/postgraphile")
    rounds = figures.get("rounds", {})
    a_rates = [b["rate"] for b in rounds.get("agora", [])]
    lines = [
        *TABLE_HEAD,
        f"| Reduced article page, PostgreSQL, wrk -c{figures.get('connections')} | req/s | "
        f"{mmm(a_rates)} | {fmt(peer['rate']['median'])} (PostGraphile) | {fmt(value, 2)}× "
        f"(rounds {fmt(min(samples, default=math.nan), 2)}–"
        f"{fmt(max(samples, default=math.nan), 2)}) | ≥ 1.0× (S) | "
        f"{verdict(value >= 1.0, quick)} |",
        f"| | CPU ms/request, server + PostgreSQL | "
        f"{mmm([b['cpu_ms'] + _pg(b) for b in rounds.get('agora', [])], 2)} | "
        f"{fmt(peer['cpu_ms_with_extra']['median'], 2)} | {fmt(cpu, 2)}× | | |",
        f"| | of which PostgreSQL, ms/request (median) | "
        f"{fmt(agora.get('postgres_cpu_ms_median'), 2)} | "
        f"{fmt(peer.get('postgres_cpu_ms_median'), 2)} | | | |",
    ]
    for key in ("50", "90", "99"):
        agora_rounds = [b["percentiles_ms"].get(key) for b in rounds.get("agora", [])]
        lines.append(
            f"| | p{key} ms | {mmm(agora_rounds)}"
            f" | {fmt(peer['percentiles_ms'][key]['median'])} | | | |"
        )
    for label, summary in (("Agora", agora), ("PostGraphile", peer)):
        CHART_ROWS.append(
            (
                f"Peer page PostgreSQL: {label}",
                {k: v["median"] for k, v in summary["percentiles_ms"].items()},
            )
        )
    return lines


def _pg(batch: dict[str, Any]) -> float:
    ok = batch.get("ok") or 0
    return batch.get("extra_cpu", {}).get("postgres", math.nan) * 1000 / ok if ok else math.nan


def render_trades(document: dict[str, Any], quick: bool) -> list[str]:
    """bench.trades: one market and many against a balance read, absolute goals too."""
    figures, ratios = document["figures"], document["ratios"]
    lines = [*TABLE_HEAD]
    read = figures.get("read", {})
    goals = {"one market": 300.0, "many markets": 500.0}
    for name, goal in goals.items():
        s = figures.get(name)
        if not s:
            continue
        value, _ = ratio_row(ratios, f"{name}/read throughput")
        ok = spread(s["round_rates"])[1] >= goal and s["p99_ms"] < 50
        lines.append(
            f"| Trades, {name}, {figures.get('database', '')} | trades/s | "
            f"{mmm(s['round_rates'])} | {fmt(spread(read.get('round_rates', []))[1])} (balance "
            f"read) | {fmt(value, 2)}× | ≥ {goal:g}/s, p99 < 50 ms (M) | {verdict(ok, quick)} |"
        )
        lines.append(
            f"| | p50 / p99 ms | {fmt(s['p50_ms'])} / {fmt(s['p99_ms'])} | "
            f"{fmt(read.get('p50_ms'))} / {fmt(read.get('p99_ms'))} | | | |"
        )
        CHART_ROWS.append((f"Trades: {name}", {"50": s["p50_ms"], "99": s["p99_ms"]}))
    return lines


FANOUT_GOAL_RATIO = 1.5  # CPU per delivery, shared / bare (M)
FANOUT_GOAL_KIB = 20.0  # per idle subscribed connection (M)
FANOUT_GOAL_P99_MS = 250.0  # one comment to the last of 5,000 subscribers of one article (M)


def render_fanout(document: dict[str, Any], quick: bool) -> list[str]:
    """bench.fanout: per scenario and size, shared against the bare broadcast of the same run.

    The CPU goal's verdict is on the ratios ``figures.goals`` names (per delivery, each side
    net of its trigger); the other ratios (per event, trigger included) are shown as
    information. A document from before ``goals`` existed had only per-event ratios, judged.
    """
    figures = document["figures"]
    results = figures.get("results", [])
    lines = [
        "| scenario | target | subscribers | p50 / p99 ms | done p99 ms | CPU ms/event | "
        "CPU µs/delivery | KiB/connection |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.get('scenario')} | {r.get('target')} | {r.get('subscribers')} | "
            f"{fmt(r.get('p50_ms'))} / {fmt(r.get('p99_ms'))} | "
            f"{fmt(r.get('completion_p99_ms'))} | {fmt(r.get('server_cpu_ms_per_event'), 2)} | "
            f"{fmt(r.get('server_cpu_us_per_delivery'))} | {fmt(r.get('rss_kib_per_connection'))} |"
        )
        if r.get("target") in ("shared", "bare") and r.get("scenario") == "comments":
            CHART_ROWS.append(
                (
                    f"Fan-out {r.get('subscribers')}: {r.get('target')}",
                    {"50": r.get("p50_ms", math.nan), "99": r.get("p99_ms", math.nan)},
                )
            )
    lines.append("")
    lines.append(
        "CPU ms/event: server CPU over a phase's events / events, the trigger included (a "
        "`postComment` or `buyShares` on Agora, a control message on bare). CPU µs/delivery: "
        "(that CPU − the same events' CPU on the same server with nobody subscribed, its "
        '"no subscribers" row: same events, same concurrency) / deliveries, so each side is '
        "net of its own trigger. done p99: per event, until its last subscriber had it."
    )
    lines.append("")
    lines.append(
        f"Goals (M): 5,000 on one article p99 ≤ {FANOUT_GOAL_P99_MS:g} ms; CPU per delivery ≤ "
        f"{FANOUT_GOAL_RATIO:g}× bare; ≤ {FANOUT_GOAL_KIB:g} KiB per idle connection."
    )
    ratios = document["ratios"]
    goals = figures.get("goals")
    if goals is None:
        goals = {name: FANOUT_GOAL_RATIO for name in ratios}
    for name, found in sorted(ratios.items()):
        value = found.get("value")
        if name in goals and not isinstance(value, int | float):
            judged = f"goal ≤ {goals[name]:g}×: no verdict, a net cost ≤ 0 in this run"
        elif name in goals:
            judged = f"goal ≤ {goals[name]:g}×: {verdict(value <= goals[name], quick)}"
        else:
            judged = "no goal"
        lines.append(f"- {name}: {fmt(value, 2)}× ({judged})")
    for r in results:
        if r.get("target") != "shared" or r.get("scenario") not in ("comments", "odds"):
            continue
        name = f"{r.get('scenario')} × {r.get('subscribers')}"
        kib = r.get("rss_kib_per_connection")
        ok = isinstance(kib, int | float) and kib <= FANOUT_GOAL_KIB
        lines.append(
            f"- {name}: VmRSS growth per idle subscribed connection, shared: {fmt(kib)} KiB "
            f"(goal ≤ {FANOUT_GOAL_KIB:g} KiB: {verdict(ok, quick)})"
        )
        if r.get("scenario") == "comments" and r.get("subscribers") == 5000:
            p99 = r.get("completion_p99_ms")
            ok = isinstance(p99, int | float) and p99 <= FANOUT_GOAL_P99_MS
            lines.append(
                f"- {name}: completion p99, shared (one client process): {fmt(p99)} ms "
                f"(goal ≤ {FANOUT_GOAL_P99_MS:g} ms: {verdict(ok, quick)})"
            )
    lines.extend(render_churn(figures.get("churn", {}), quick))
    return lines


def render_churn(churns: dict[str, Any], quick: bool) -> list[str]:
    """bench.fanout --churn: the server's VmRSS over connect → subscribe → abrupt-close cycles
    against the issue's goal (flat within ±5 %: end / after the first tenth)."""
    if not churns:
        return []
    lines = [
        "",
        "Memory over connect → subscribe → abrupt-close cycles (SO_LINGER 0), server VmRSS "
        "(goal, M: flat within ±5 % from the first tenth of the cycles to the end):",
        "",
        "| target | cycles | seconds | server CPU ms/cycle | VmRSS MiB after the first tenth → "
        "end | drift | goal | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in churns.items():
        samples = c.get("rss_kib") or []
        drift = c.get("drift")
        finite = isinstance(drift, int | float) and math.isfinite(drift)
        ok = finite and abs(drift) <= 0.05 and not c.get("failures")
        first = samples[0][1] / 1024 if samples else math.nan
        last = samples[-1][1] / 1024 if samples else math.nan
        lines.append(
            f"| {name} | {fmt(c.get('cycles'), 0)} | {fmt(c.get('seconds'))} | "
            f"{fmt(c.get('server_cpu_ms_per_cycle'), 2)} | {fmt(first)} → {fmt(last)} | "
            + (f"{drift * 100:+.1f} %" if finite else "–")
            + " | ±5 % (M) | "
            f"{verdict(ok, quick)} |"
        )
    return lines


def render_observability(document: dict[str, Any], quick: bool) -> list[str]:
    """bench.observability: metrics and logging on against off, µs of CPU per article page."""
    figures = document["figures"]
    budget = figures.get("budget_us", 150.0)
    difference = figures.get("difference_us", math.nan)
    ok = isinstance(difference, int | float) and difference <= budget
    on, off = figures.get("on", {}), figures.get("off", {})
    cpu = document["ratios"].get("article page: server CPU per request on/off", {}).get("value")
    return [
        *TABLE_HEAD,
        f"| Observability cost, article page | on − off µs CPU/request | "
        f"{mmm(figures.get('difference_us_rounds', []), 0)} | off: "
        f"{fmt(off.get('server_cpu_ms'), 2)} ms/request | on/off "
        f"{fmt(cpu, 3)}× "
        f"| ≤ {budget:g} µs | {verdict(ok, quick)} |",
        f"| | req/s on / off | {fmt(on.get('rate'))} | {fmt(off.get('rate'))} | | | |",
    ]


def render_generic(document: dict[str, Any], quick: bool) -> list[str]:
    """Any other benchmark (the cache slot): its headline ratios as they are."""
    lines = [f"- {name}: {fmt(r.get('value'), 3)}×" for name, r in document["ratios"].items()]
    for key in ("hit_ratio", "verdict"):
        if key in document["figures"]:
            lines.append(f"- {key}: {document['figures'][key]}")
    return lines or ["(no headline ratios in its JSON)"]


# PostGraphile's median requests/s in this run (set by render() from the peer part), the
# cached page's yardstick: the target is twice it.
PEER_RATE: dict[str, float] = {}


def render_cache(document: dict[str, Any], quick: bool) -> list[str]:
    """The cached page under writes: cached and uncached rates, the hit ratio and the writes
    that landed, and the cached rate against PostGraphile's from the peer part of this run."""
    figures = document["figures"]
    rates, cpu = figures.get("rates"), figures.get("cpu_ms")
    if not rates or not cpu:
        return render_generic(document, quick)
    cached, uncached = rates.get("cached", []), rates.get("uncached", [])
    peer = PEER_RATE.get("postgraphile")
    _, cached_median, _ = spread(cached)
    ratio = cached_median / peer if peer else math.nan
    writes, counts = figures.get("writes", {}), figures.get("counts", {})
    return [
        *TABLE_HEAD,
        f"| Article page from the cache, SQLite, under writes | req/s | {mmm(cached)} | "
        f"{fmt(peer)} (PostGraphile, peer part) | {fmt(ratio, 2)}× | ≥ 2× PostGraphile (M) | "
        + (verdict(ratio >= 2.0, quick) if peer else "– (peer part not run)")
        + " |",
        f"| | server CPU ms/request | {mmm(cpu.get('cached', []), 3)} | "
        f"uncached: {fmt(spread(cpu.get('uncached', []))[1], 2)} | | | |",
        f"| Same page uncached, same run | req/s | {mmm(uncached)} | | | | |",
        "",
        f"Hit ratio {fmt(figures.get('hit_ratio', math.nan), 4)} ({fmt(counts.get('hits'), 0)} "
        f"hits, {fmt(counts.get('misses'), 0)} misses, {fmt(counts.get('bypasses'), 0)} "
        f"bypasses) while {writes.get('comments', 0)} comments and {writes.get('trades', 0)} "
        "trades landed on the page being read (one of each a second).",
    ]


def cache_present() -> bool:
    return (BENCH_ROOT / "bench" / "cache.py").exists()


# -- the parts ------------------------------------------------------------------------------------

ARTICLE = ["--pages", "article,home"]
QUICK_ARTICLE = [*ARTICLE, "--requests", "120", "--rounds", "2", "--warmup", "20"]
PARTS = [
    Part(
        "article-sqlite",
        "Article page and home feed, SQLite: Agora vs hand-written",
        "bench.article_page",
        [*ARTICLE, "--requests", "2000", "--rounds", "4"],
        QUICK_ARTICLE,
        lambda d, q: render_pages(d, q, "SQLite"),
    ),
    Part(
        "article-postgres",
        "Article page and home feed, PostgreSQL: Agora vs hand-written",
        "bench.article_page",
        [*ARTICLE, "--requests", "2000", "--rounds", "4", "--postgres"],
        [*QUICK_ARTICLE, "--postgres"],
        lambda d, q: render_pages(d, q, "PostgreSQL"),
    ),
    Part(
        "peer",
        "PostGraphile 5 vs Agora, reduced article page, same PostgreSQL data",
        "bench.peer",
        ["--rounds", "4", "--duration", "10"],
        ["--quick"],
        render_peer,
    ),
    # CACHE_SLOT: bench/cache.py (the cached page under writes) runs here once it exists; its
    # own --quick and --json are assumed (as every benchmark's), its ratios shown as they are.
    Part(
        "cache",
        "Article page from the response cache under writes",
        "bench.cache",
        [],
        ["--quick"],
        render_cache,
        present=cache_present,
    ),
    Part(
        "trades",
        "Trades, SQLite, concurrency 16",
        "bench.trades",
        ["--rounds", "4"],
        ["--requests", "120", "--rounds", "2", "--warmup", "16", "--users", "16"],
        render_trades,
    ),
    Part(
        "fanout",
        "Fan-out: shared hub vs a bare websockets broadcast",
        "bench.fanout",
        ["--sizes", "1000,5000", "--events", "20", "--churn", "100000"],
        ["--sizes", "200", "--events", "3", "--markets", "10", "--per-market", "5"],
        render_fanout,
    ),
    Part(
        "observability",
        "Metrics and logging: on vs off",
        "bench.observability",
        ["--requests", "3000", "--rounds", "8"],
        ["--quick"],
        render_observability,
        # It runs both servers observed alike itself (one production, one quiet).
        harness=["--pin", "auto"],
    ),
]
BY_NAME = {part.name: part for part in PARTS}


# -- the machine ----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("strawberry-graphql", "graphql-core", "tortoise-orm", "uvicorn", "starlette"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    lock = BENCH_ROOT / "bench" / "peer" / "package-lock.json"
    if lock.exists():
        packages = json.loads(lock.read_text()).get("packages", {})
        peer = packages.get("node_modules/postgraphile", {}).get("version")
        if peer:
            found.append(f"postgraphile {peer}")
    return ", ".join(found)


def node_version() -> str:
    from bench.peer.__main__ import node_binary

    node = node_binary()
    if node is None:
        return "none ≥ 22"
    return subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout


def machine_lines() -> list[str]:
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable)",
        f"- kernel: {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        f"node {node_version().strip()}",
        f"- {versions()}",
    ]


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    part: Part
    status: str  # "ran", "failed", "absent"
    document: dict[str, Any] | None
    seconds: float
    load_before: float
    load_after: float
    tail: str = ""


def run_part(part: Part, quick: bool, folder: Path) -> Outcome:
    """Run one part's benchmark; its JSON and the load averages around it."""
    if not part.present():
        return Outcome(part, "absent", None, 0.0, os.getloadavg()[0], os.getloadavg()[0])
    out = folder / f"{part.name}.json"
    command = part.command(quick, out)
    print(f"== {part.name}: {' '.join(command[2:])}", flush=True)
    before, began = os.getloadavg()[0], time.monotonic()
    log = folder / f"{part.name}.log"
    with log.open("w") as sink:
        done = subprocess.run(command, cwd=BENCH_ROOT, stdout=sink, stderr=subprocess.STDOUT)
    seconds, after = time.monotonic() - began, os.getloadavg()[0]
    text = log.read_text(errors="replace")
    print(text[-2500:], flush=True)
    document = json.loads(out.read_text()) if out.exists() else None
    status = "ran" if document is not None and done.returncode in (0, 1) else "failed"
    # What --from needs to render this part again as it was: the load around it, its time.
    (folder / f"{part.name}.run.json").write_text(
        json.dumps({"load_before": before, "load_after": after, "seconds": seconds})
    )
    return Outcome(part, status, document, seconds, before, after, text[-1500:])


def kept(part: Part, folder: Path) -> Outcome:
    """A part's outcome from a ``--keep`` folder (its load averages and time as recorded when
    it ran, where the folder has them)."""
    if not part.present():
        return Outcome(part, "absent", None, 0.0, math.nan, math.nan)
    path = folder / f"{part.name}.json"
    log = folder / f"{part.name}.log"
    document = json.loads(path.read_text()) if path.exists() else None
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log kept)"
    seconds = float(document.get("seconds", math.nan)) if document else math.nan
    load = float(document.get("load_average", math.nan)) if document else math.nan
    before = math.nan
    run = folder / f"{part.name}.run.json"
    if run.exists():
        recorded = json.loads(run.read_text())
        before, load, seconds = recorded["load_before"], recorded["load_after"], recorded["seconds"]
    return Outcome(part, "ran" if document else "failed", document, seconds, before, load, tail)


def render(outcomes: list[Outcome], quick: bool) -> str:
    CHART_ROWS.clear()
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench.run"
        + (" --quick" if quick else "")
        + f"`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; the one generated "
        "output kept in git. Every part: the app and its baseline under uvicorn (the peer under "
        "node), servers and PostgreSQL pinned to CPU 0, the load generator to CPU 1, rounds "
        "interleaved, production logging and metrics on (`AGORA_ENV=production`, "
        "`LOG_FORMAT=json`, `LOG_LEVEL=INFO`). Ratios are medians of the rounds' own ratios; "
        "read them rather than the absolute figures on a shared machine.",
        "",
        "## Machine",
        "",
        *machine_lines(),
        "",
        "![latency percentiles](results.png)",
        "",
    ]
    if quick:
        lines += ["**Quick run (a smoke test): small sizes, verdicts not meaningful.**", ""]
    PEER_RATE.clear()
    for outcome in outcomes:
        if outcome.part.name == "peer" and outcome.document:
            rate = outcome.document["figures"].get("postgraphile", {}).get("rate", {})
            if isinstance(rate.get("median"), int | float):
                PEER_RATE["postgraphile"] = rate["median"]
    for outcome in outcomes:
        part = outcome.part
        lines += [f"## {part.title}", ""]
        if outcome.status == "absent":
            lines += [f"Not run: `{part.module}` is not in this tree yet.", ""]
            continue
        document = outcome.document
        lines.append(
            f"`python -m {part.module} {' '.join(part.quick if quick else part.args)} "
            f"{' '.join(part.harness)}` — {fmt(outcome.seconds, 0)} s, load average "
            f"{fmt(outcome.load_before, 2)} before, {fmt(outcome.load_after, 2)} after"
            + (f"; exit status {document['status']}" if document else "")
        )
        lines.append("")
        if document is None:
            lines += ["It failed before writing its results:", "", "```", outcome.tail, "```", ""]
            continue
        placement = document["figures"].get("placement", {}).get("note")
        if placement:
            lines += [f"Placement: {placement}.", ""]
        try:
            lines += part.render(document, quick)
        except (KeyError, TypeError, ValueError) as exc:
            lines += [f"(its JSON lacks a figure this report reads: {exc!r})"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def chart(path: Path, quick: bool) -> None:
    """Latency percentiles of every target and baseline, one horizontal group each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(label, values) for label, values in CHART_ROWS if values]
    if not rows:
        return
    keys = sorted({k for _, values in rows for k in values}, key=float)
    height = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.5))
    for index, key in enumerate(keys):
        positions = [i + index * height for i in range(len(rows))]
        values = [
            values.get(key, math.nan) if isinstance(values.get(key), int | float) else math.nan
            for _, values in rows
        ]
        ax.barh(positions, values, height=height, label=f"p{key}")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))])
    ax.set_yticklabels([label for label, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    shown = [
        v
        for _, values in rows
        for v in values.values()
        if isinstance(v, int | float) and math.isfinite(v) and v > 0
    ]
    if shown:
        ax.set_xlim(min(shown) / 2, max(shown) * 1.5)  # every bar starts inside the plot
    ax.set_xlabel("latency, ms (log scale)")
    ax.set_title("Latency percentiles" + (" (quick run)" if quick else "") + ", bench/RESULTS.md")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every part with small sizes")
    parser.add_argument(
        "--only", type=lambda text: [p.strip() for p in text.split(",") if p.strip()], default=[]
    )
    parser.add_argument("--list", action="store_true", help="name the parts and stop")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--chart", type=Path, default=CHART)
    parser.add_argument("--keep", type=Path, help="keep each part's JSON and log here")
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="run nothing: render the results from the JSON files a --keep folder holds",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.only if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown parts {unknown}; the parts: {', '.join(BY_NAME)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for part in PARTS:
            print(f"{part.name:<18} {part.title}")
        return 0
    chosen = [BY_NAME[name] for name in args.only] if args.only else PARTS
    if args.source:
        outcomes = [kept(part, args.source) for part in chosen]
        args.results.write_text(render(outcomes, args.quick))
        chart(args.chart, args.quick)
        print(f"wrote {args.results} and {args.chart} from {args.source}")
        return 0
    with tempfile.TemporaryDirectory(prefix="agora-bench-run-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        outcomes = [run_part(part, args.quick, folder) for part in chosen]
    args.results.write_text(render(outcomes, args.quick))
    chart(args.chart, args.quick)
    print(f"wrote {args.results} and {args.chart}")
    return 0 if all(o.status != "failed" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
