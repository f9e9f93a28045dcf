"""Benchmark: what metrics and logging cost the article page, on vs off in the same run.

    .venv/bin/python -m bench.observability [--requests 3000] [--concurrency 16] [--rounds 6]
        [--warmup 200] [--time-limit 240] [--budget-us 150] [--cpu N|last|any] [--alternate]
        [--quick] [--app-root DIR] [--json PATH]
        [--database-url postgres://…  (an empty database) | --postgres]

On one fresh database with the demo data (a temporary SQLite file by default) it starts two
uvicorn servers of the app of ``--app-root``, the same way and with the same environment
(``AGORA_ENV=production``, ``LOG_FORMAT=json``, ``/metrics`` open to this machine, tracing
off, prometheus-client in its one-process mode), but for:

* ``on``: ``app:create_app`` as production runs it, at ``LOG_LEVEL=INFO``: a request id per
  request, one JSON request line per request written to the server's log, the request and
  operation metrics recorded, every SQL statement counted;
* ``off``: ``bench/quiet_app.py`` (``create_quiet_app``) over the same app: the same
  ``create_app`` with that observability patched out (its ``PATCHES`` say what each removes),
  at ``LOG_LEVEL=WARNING``.

It checks that both answer API.md's article-page query (the demo's Central Asia article) with
the same bytes, that ``on`` echoes an ``X-Request-ID`` and ``off`` sends none, then loads both
from this process (``bench.harness.load``: keep-alive connections, the same concurrency each),
every answer checked byte for byte, in rounds. In each round both servers are loaded at once
and both run pinned to the same CPU (``--cpu``; the last one by default), so that whatever
else runs on the machine slows both alike at every moment: loaded one after the other (on-off,
off-on, …: ``--alternate``) or on different CPUs, two identical servers differed by ±1–2 ms of
CPU per article page from round to round on a shared 2-core machine (the page costs ~13 ms
there), at once on one CPU by ±0.1 ms. Afterwards it checks that the observability really ran
in ``on`` and not in ``off``: ``on``'s log holds exactly one request line per article page it
answered (each with its own request id and SQL count) and its ``/metrics`` moved by exactly
the pages sent; ``off``'s log holds no request line and no counter or histogram of its
``/metrics`` moved. Any of these failing fails the run.

It prints, per round and as the median of the rounds: server CPU per request of each (the
process's CPU clock, ``bench.harness.procfs``), the difference on − off in µs of CPU per
request (the headline, with a distribution-free interval of its median from 6 rounds up;
issue 12's budget is 150 µs: PASS or FAIL, exit status 1 on FAIL), the ratios on/off of CPU
per request and of throughput, and p50/p99 latency. The difference is in CPU time of this
machine as loaded then: where a page costs more (a busy machine), so does its observability;
the on/off ratio carries over better. ``--quick`` is a smoke test of the chain (small sizes;
the budget is printed, not judged). ``--json PATH`` writes the on/off ratios, the difference
and every figure. An app that predates the observability (``quiet_app`` can't find what it
patches) is refused before anything starts (exit status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.article_page import article_page, exactly, show_diff
from bench.harness import cli, pinning
from bench.harness.api import CENTRAL_ASIA, HEADERS
from bench.harness.databases import Database
from bench.harness.load import Batch, Call, Connections, run_load
from bench.harness.results import Ratio, Results
from bench.harness.servers import BENCH_ROOT, Server, python_env, uvicorn_server
from bench.harness.stats import machine, median, print_table, ratio, split, summarise

ON, OFF = "on", "off"
TARGETS = (ON, OFF)
# ``off`` is bench/quiet_app.py of this tree, on the path after --app-root (as bench.fanout's
# unshared app), over --app-root's app; ``on`` gets the same path, unused.
QUIET_PATH = BENCH_ROOT / "bench"
FACTORIES = {ON: "app:create_app", OFF: "quiet_app:create_quiet_app"}
# What both servers run with: one production process, tracing off whatever this shell says.
COMMON_ENV = {
    "AGORA_ENV": "production",
    "LOG_FORMAT": "json",
    # In production /metrics answers only when told who may read it: here, this process.
    "METRICS_ALLOW": "127.0.0.1",
    "OTLP_ENDPOINT": "",
}
# Taken out of the servers' environment: prometheus-client turns to multi-process mode when
# either is present at all (even empty), writing every value to files in that folder.
UNSET = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")
LOG_LEVELS = {ON: "INFO", OFF: "WARNING"}
# Issue 12: "the cost of metrics and logging on the article page measured on vs off in the
# same run: at most 150 µs of CPU per request".
BUDGET_US = 150.0
DEFAULTS = {"requests": 3000, "rounds": 6, "warmup": 200}
QUICK = {"requests": 120, "rounds": 2, "warmup": 20}
# The request id the verification sends: ``on`` must answer with it, ``off`` with none.
CHECK_ID = "obsbench-verify-1"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
# The article page's request line: the route and the operation it names.
ROUTE, OPERATION = "/graphql", "ArticlePage"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# -- the servers ------------------------------------------------------------------------------


def quiet_app_problem(app_root: Path) -> str:
    """ "" if ``bench/quiet_app.py`` can take the observability out of ``app_root``'s app,
    else what it says is missing (it imports that app, in a subprocess run from there)."""
    done = subprocess.run(
        [sys.executable, "-m", "quiet_app"],
        cwd=app_root,
        env=python_env(app_root, {}, [QUIET_PATH]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode == 0:
        return ""
    return (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}")[-2000:]


def servers_for(app_root: Path, database_url: str, folder: Path) -> dict[str, Server]:
    """The two servers, not started: the same command but for the factory, the same
    environment but for LOG_LEVEL."""
    servers = {}
    for name in TARGETS:
        env = {**COMMON_ENV, "DATABASE_URL": database_url, "LOG_LEVEL": LOG_LEVELS[name]}
        server = uvicorn_server(name, FACTORIES[name], app_root, folder, env, paths=[QUIET_PATH])
        for variable in UNSET:
            server.env.pop(variable, None)
        servers[name] = server
    return servers


async def verify(servers: dict[str, Server], body: bytes) -> bytes:
    """Both servers answer the article page with the same bytes (a page, not errors); ``on``
    echoes the request's X-Request-ID and ``off`` sends none. Returns the answer."""
    headers = {**HEADERS, "x-request-id": CHECK_ID}
    answers: dict[str, httpx.Response] = {}
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
        for name, server in servers.items():
            answers[name] = await client.post(
                server.base_url + ROUTE, content=body, headers=headers
            )
    for name, answer in answers.items():
        document = answer.json() if answer.status_code == 200 else {}
        data = document.get("data") or {}
        if answer.status_code != 200 or "errors" in document or not data.get("article"):
            raise SystemExit(
                f"{name} gave no article page for {CENTRAL_ASIA}: HTTP {answer.status_code} "
                f"{answer.text[:2000]}"
            )
    echoed = answers[ON].headers.get("x-request-id")
    if echoed != CHECK_ID:
        raise SystemExit(f"on did not echo X-Request-ID {CHECK_ID!r} but {echoed!r}")
    if "x-request-id" in answers[OFF].headers:
        raise SystemExit(
            f"off answered X-Request-ID {answers[OFF].headers['x-request-id']!r}: the Observe "
            "middleware is still there (quiet_app's patch did not take)"
        )
    if answers[ON].content != answers[OFF].content:
        print("MISMATCH: on (-) vs off (+)")
        show_diff(ON, answers[ON].json(), OFF, answers[OFF].json())
        raise SystemExit(1)
    return answers[ON].content


# -- what the observability left behind: /metrics and the log -------------------------------------


async def scrape(server: Server) -> Samples | None:
    """Every counter and histogram sample of ``server``'s /metrics (None: not reachable).

    ``_created`` samples (when a labelled series was first used) are left out: a timestamp."""
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
        response = await client.get(server.base_url + "/metrics")
    if response.status_code != 200:
        return None
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        if family.type not in ("counter", "histogram"):
            continue  # gauges (the pool sampled once a second) move by themselves
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def moved(before: Samples, after: Samples) -> dict[str, float]:
    """The samples that changed, by a readable name, with their change."""
    changes = {}
    for key in sorted(before.keys() | after.keys()):
        delta = after.get(key, 0.0) - before.get(key, 0.0)
        if delta:
            name, labels = key
            shown = ",".join(f'{k}="{v}"' for k, v in labels)
            changes[f"{name}{{{shown}}}" if shown else name] = delta
    return changes


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How far one sample (``name`` with exactly ``labels``) moved; absent counts as 0."""
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def request_lines(log: str) -> Iterator[dict[str, Any]]:
    """The request lines (``agora.access``, event ``request``) among a server log's JSON lines."""
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(record, dict)
            and record.get("logger") == "agora.access"
            and record.get("event") == "request"
        ):
            yield record


@dataclass
class Checks:
    """What the run verified about the observability itself; ``problems`` fail it."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def expect(self, condition: bool, problem: str) -> None:
        """``problem`` fails the run unless ``condition``."""
        if not condition:
            self.problems.append(problem)


def check_metrics(
    checks: Checks, before: dict[str, Samples | None], after: dict[str, Samples | None], sent: int
) -> None:
    """``on``'s /metrics moved by exactly the ``sent`` article pages; ``off``'s not at all."""
    on_before, on_after = before[ON], after[ON]
    if on_before is None or on_after is None:
        checks.problems.append("on's /metrics is not reachable (METRICS_ALLOW=127.0.0.1 set)")
    else:
        for what, figure in (
            (
                "agora_http_requests_total (/graphql, POST, 200)",
                delta(
                    on_before,
                    on_after,
                    "agora_http_requests_total",
                    route=ROUTE,
                    method="POST",
                    status="200",
                ),
            ),
            (
                "agora_graphql_operations_total (ArticlePage, query, ok)",
                delta(
                    on_before,
                    on_after,
                    "agora_graphql_operations_total",
                    operation=OPERATION,
                    type="query",
                    outcome="ok",
                ),
            ),
            (
                "agora_graphql_operation_duration_seconds_count (ArticlePage)",
                delta(
                    on_before,
                    on_after,
                    "agora_graphql_operation_duration_seconds_count",
                    operation=OPERATION,
                    type="query",
                ),
            ),
        ):
            checks.expect(figure == sent, f"on: {what} moved by {figure:g}, {sent} sent")
        sql = delta(on_before, on_after, "agora_sql_statements_total")
        checks.figures["on_sql_statements"] = sql
        checks.notes.append(
            f"on's /metrics moved by exactly the {sent} article pages sent (requests, operations,"
            f" latency observations); agora_sql_statements_total by {sql:g}"
        )
    off_before, off_after = before[OFF], after[OFF]
    if off_before is None or off_after is None:
        checks.notes.append("off's /metrics is not reachable: nothing to compare")
    else:
        changes = moved(off_before, off_after)
        checks.figures["off_metrics_moved"] = changes
        shown = ", ".join(f"{k} +{v:g}" for k, v in list(changes.items())[:5])
        checks.expect(not changes, f"off: /metrics moved: {shown}")
        if not changes:
            checks.notes.append(
                f"off's /metrics: none of its {len(off_after)} counter and histogram samples moved"
            )


def is_article_line(line: dict[str, Any]) -> bool:
    """Whether a /graphql request line is the article page's, answered: its operation, 200, no
    error code, a SQL count, a duration and a request id (the verification's, or a new one)."""
    request_id = line.get("request_id")
    return (
        line.get("operation") == OPERATION
        and line.get("operation_type") == "query"
        and line.get("status") == 200
        and line.get("error_code") is None
        and isinstance(line.get("sql"), int)
        and isinstance(line.get("duration_ms"), int | float)
        and isinstance(request_id, str)
        and (request_id == CHECK_ID or GENERATED_ID.fullmatch(request_id) is not None)
    )


def check_lines(checks: Checks, servers: dict[str, Server], sent: int) -> None:
    """``on`` wrote exactly one request line per article page it was sent (ids unique, each
    with its SQL count); ``off`` wrote none. Read once the servers have stopped (flushed)."""
    on_lines = list(request_lines(servers[ON].log_text()))
    pages = [line for line in on_lines if line.get("route") == ROUTE]
    others = Counter(str(line.get("route")) for line in on_lines if line.get("route") != ROUTE)
    ids = [line.get("request_id") for line in pages]
    bad = [line for line in pages if not is_article_line(line)]
    sql = Counter(line.get("sql") for line in pages)
    checks.figures["on_request_lines"] = len(pages)
    checks.figures["on_other_request_lines"] = dict(others)
    checks.figures["sql_per_article_page"] = {str(k): v for k, v in sql.items()}
    checks.expect(
        len(pages) == sent,
        f"on: {len(pages)} request lines for {ROUTE} in its log, {sent} article pages sent",
    )
    checks.expect(not bad, f"on: {len(bad)} request lines not as expected, first: {bad[:1]}")
    checks.expect(
        len(set(ids)) == len(ids), f"on: {len(ids) - len(set(ids))} request ids used twice"
    )
    checks.expect(ids.count(CHECK_ID) == 1, f"on: the id {CHECK_ID} on {ids.count(CHECK_ID)} lines")
    off_lines = list(request_lines(servers[OFF].log_text()))
    checks.figures["off_request_lines"] = len(off_lines)
    checks.expect(
        not off_lines, f"off: {len(off_lines)} request lines in its log, first: {off_lines[:1]}"
    )
    if not checks.problems:
        per_page = ", ".join(f"{n} statements ×{count}" for n, count in sorted(sql.items()))
        checks.notes.append(
            f"on's log: one request line per article page sent ({len(pages)}, ids unique; "
            f"SQL per page: {per_page}) and {sum(others.values())} for other routes "
            f"({dict(others)}); off's log: no request line"
        )
    statements = checks.figures.get("on_sql_statements")
    lines_sql = sum(line["sql"] for line in pages if isinstance(line.get("sql"), int))
    if statements is not None:
        # Statements outside requests (the housekeeping loop) count in the metric only.
        checks.expect(
            statements >= lines_sql,
            f"on: agora_sql_statements_total moved by {statements:g}, the lines say {lines_sql}",
        )


# -- the run ------------------------------------------------------------------------------------


def order(round_index: int) -> tuple[str, str]:
    """on, off, then off, on, …: whatever drifts during a round pair falls on both alike (and
    together, who starts first)."""
    return (ON, OFF) if round_index % 2 == 0 else (OFF, ON)


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (what ``--cpu`` may name)."""
    return sorted(os.sched_getaffinity(0))


async def bench(args: argparse.Namespace, database_url: str, folder: Path) -> Results:
    """Start both servers on ``database_url``, verify them, load them, check what the
    observability left behind and report (``cli.run`` calls it)."""
    async with await Database.connect(database_url) as db:
        database_version = await db.version()
    body = article_page([CENTRAL_ASIA]).graphql_bodies[0]
    servers = servers_for(args.app_root, database_url, folder)
    placement = pinning.current()
    if placement.server is not None and args.cpu_default:
        # --pin auto: both servers on the harness's server CPU, away from this process's.
        args.cpu = min(placement.server)
    cpus = None if args.cpu is None else {args.cpu}
    batches: dict[str, list[Batch]] = {name: [] for name in TARGETS}
    checks = Checks()
    sent = 0  # article pages sent to on
    try:
        for server in servers.values():
            server.start()
            if cpus:  # at once, before it starts a thread (they inherit it) ...
                server.pin(cpus)
        for server in servers.values():
            await server.wait_ready()
            if cpus:  # ... and every thread once it serves, to be sure
                server.pin(cpus)
        print(
            f"servers (app of {args.app_root}): on pid {servers[ON].pid} on :{servers[ON].port}"
            f" (app:create_app, LOG_LEVEL=INFO), off pid {servers[OFF].pid} on "
            f":{servers[OFF].port} (quiet_app:create_quiet_app, LOG_LEVEL=WARNING), "
            + (f"both on CPU {args.cpu}" if cpus else "on any CPU")
        )
        before = {name: await scrape(server) for name, server in servers.items()}
        expected = await verify(servers, body)
        sent += 1
        print(
            f"verified: the same {len(expected)} bytes from both for the article page of "
            f"{CENTRAL_ASIA}; on echoes X-Request-ID, off sends none"
        )
        calls = [Call(body, HEADERS, exactly(expected))]
        cap = args.time_limit / ((len(servers) if args.alternate else 1) * args.rounds)
        async with Connections(servers[ON]) as pool_on, Connections(servers[OFF]) as pool_off:
            pools = {ON: pool_on, OFF: pool_off}

            async def batch(name: str, count: int, time_cap: float) -> Batch:
                return await run_load(
                    pools[name], ROUTE, name, calls * count, args.concurrency, time_cap
                )

            async def round_of(first: int, count: int, time_cap: float) -> dict[str, Batch]:
                """Both servers' batches of a round: one after the other, or at once."""
                names = order(first)
                if args.alternate:
                    return {name: await batch(name, count, time_cap) for name in names}
                done = await asyncio.gather(*(batch(name, count, time_cap) for name in names))
                return dict(zip(names, done, strict=True))

            if args.warmup:
                warm = await round_of(0, args.warmup, 60.0)
                for name, result in warm.items():
                    if result.failures:
                        print(f"warm-up errors on {name}: {result.first_failure}")
                        return Results(1)
                sent += args.warmup
            how = "on-off, off-on, … one after the other" if args.alternate else "both at once"
            print(
                f"load: {args.requests} article pages per server in {args.rounds} rounds "
                f"({how}), concurrency {args.concurrency} each, warm-up {args.warmup}, "
                f"cap {cap:.0f}s per batch"
            )
            for index, count in enumerate(split(args.requests, args.rounds)):
                measured = await round_of(index, count, cap)
                for name in TARGETS:
                    batches[name].append(measured[name])
                # What on answered (or failed) is what its log and /metrics must show.
                sent += len(measured[ON].latencies) + sum(measured[ON].failures.values())
        after = {name: await scrape(server) for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
    for server in servers.values():
        problem = server.exit_problem()
        if problem:
            checks.problems.append(problem)
    check_metrics(checks, before, after, sent)
    check_lines(checks, servers, sent)
    return report(args, batches, checks, database_version)


# -- the report --------------------------------------------------------------------------------


# The fewest rounds with a 95 % interval of their median (six: min … max covers 97 %).
INTERVAL_ROUNDS = 6


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """An interval holding the median of what the values sample with at least ``level``
    probability, from their order statistics (the sign test's: the k-th smallest and the k-th
    largest, k as large as the binomial distribution allows); (low, high, its coverage), NaNs
    for fewer than ``INTERVAL_ROUNDS`` values."""
    ordered = sorted(v for v in values if not math.isnan(v))
    n = len(ordered)
    tail, k = 0.0, 0  # P(fewer than k of n below the median) = tail
    while k < n:
        step = math.comb(n, k) / 2**n
        if tail + step > (1 - level) / 2:
            break
        tail += step
        k += 1
    if k == 0:
        return math.nan, math.nan, math.nan
    return ordered[k - 1], ordered[n - k], 1 - 2 * tail


@dataclass
class Round:
    """One round's figures: per server CPU µs per request, requests/s, p50 and p99 (ms)."""

    first: str
    cpu_us: dict[str, float]
    rate: dict[str, float]
    p50_ms: dict[str, float]
    p99_ms: dict[str, float]

    @property
    def difference_us(self) -> float:
        """on − off, µs of server CPU per request."""
        return self.cpu_us[ON] - self.cpu_us[OFF]

    @classmethod
    def of(cls, first: str, batches: dict[str, Batch]) -> Round:
        """The round of ``batches`` (one per server); ``first``: the one started first."""
        summaries = {name: summarise(name, [batch]) for name, batch in batches.items()}
        return cls(
            first,
            {n: ratio(b.server_cpu * 1e6, len(b.latencies)) for n, b in batches.items()},
            {n: summary.rate for n, summary in summaries.items()},
            {n: summary.p50_ms for n, summary in summaries.items()},
            {n: summary.p99_ms for n, summary in summaries.items()},
        )

    def as_json(self) -> dict[str, Any]:
        """The round's figures for ``--json``."""
        return {
            "first": self.first,
            "cpu_us_per_request": self.cpu_us,
            "difference_us": self.difference_us,
            "requests_per_second": self.rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
        }


def print_rounds(rounds: list[Round], alternate: bool) -> None:
    """One line per round and one of medians: CPU, throughput and latency of both servers."""
    header = (
        f"{'round':<9} {'CPU µs/req on':>13} {'off':>7} {'on − off':>9} {'on/off':>7}   "
        f"{'req/s on':>8} {'off':>6} {'on/off':>7}   {'p50 ms on':>9} {'off':>6}   "
        f"{'p99 ms on':>9} {'off':>6}"
    )
    print(header)
    print("-" * len(header))

    def row(
        label: str,
        cpu: dict[str, float],
        diff: float,
        rate: dict[str, float],
        p50: dict[str, float],
        p99: dict[str, float],
    ) -> None:
        print(
            f"{label:<9} {cpu[ON]:>13.0f} {cpu[OFF]:>7.0f} {diff:>+9.0f} "
            f"{ratio(cpu[ON], cpu[OFF]):>7.3f}   {rate[ON]:>8.1f} {rate[OFF]:>6.1f} "
            f"{ratio(rate[ON], rate[OFF]):>7.3f}   {p50[ON]:>9.2f} {p50[OFF]:>6.2f}   "
            f"{p99[ON]:>9.2f} {p99[OFF]:>6.2f}"
        )

    for number, r in enumerate(rounds, 1):
        label = f"{number} {r.first}-{OFF if r.first == ON else ON}" if alternate else str(number)
        row(label, r.cpu_us, r.difference_us, r.rate, r.p50_ms, r.p99_ms)

    def mid(attribute: str) -> dict[str, float]:
        return {n: median([getattr(r, attribute)[n] for r in rounds]) for n in TARGETS}

    print("-" * len(header))
    row(
        "median",
        mid("cpu_us"),
        median([r.difference_us for r in rounds]),
        mid("rate"),
        mid("p50_ms"),
        mid("p99_ms"),
    )
    print("(median: of each column over the rounds; on/off and on − off: of the rounds' own)")


def report(
    args: argparse.Namespace, batches: dict[str, list[Batch]], checks: Checks, version: str
) -> Results:
    """Print the figures, the checks and the verdict; the run's status, ratios and figures."""
    print()
    print(machine(version))
    outcome = Results(0)
    rounds = [
        Round.of(order(i)[0], {name: batches[name][i] for name in TARGETS})
        for i in range(len(batches[ON]))
    ]
    figures = {name: summarise(name, batches[name]) for name in TARGETS}
    print()
    print_table(list(figures.values()), "article page")
    print()
    print_rounds(rounds, args.alternate)

    differences = [r.difference_us for r in rounds]
    difference = median(differences)
    cpu = Ratio.of_rounds([r.cpu_us[ON] for r in rounds], [r.cpu_us[OFF] for r in rounds], "lower")
    rate = Ratio.of_rounds([r.rate[ON] for r in rounds], [r.rate[OFF] for r in rounds], "higher")
    p50 = Ratio.of_rounds([r.p50_ms[ON] for r in rounds], [r.p50_ms[OFF] for r in rounds], "lower")
    p99 = Ratio.of_rounds([r.p99_ms[ON] for r in rounds], [r.p99_ms[OFF] for r in rounds], "lower")
    print()
    print(f"metrics and logging on the article page, on vs off (median of {len(rounds)} rounds):")
    low, high, coverage = median_interval(differences)
    print(
        f"  server CPU per request  on − off {difference:+.0f} µs "
        f"(rounds: {' '.join(f'{d:+.0f}' for d in differences)})"
    )
    if math.isnan(coverage):
        print(f"    (too few rounds for an interval: {INTERVAL_ROUNDS} at least)")
    else:
        print(
            f"    {coverage:.0%} interval of the median: {low:+.0f} … {high:+.0f} µs "
            "(order statistics of the rounds: no assumption on their distribution)"
        )
    print(f"  server CPU per request  on/off {cpu.value:6.3f}x")
    print(f"  throughput              on/off {rate.value:6.3f}x")
    print(f"  p50 latency             on/off {p50.value:6.3f}x")
    print(f"  p99 latency             on/off {p99.value:6.3f}x")

    print()
    print("checks:")
    for note in checks.notes:
        print(f"  ok: {note}")
    for name, summary in figures.items():
        if summary.failed:
            checks.problems.append(
                f"{summary.failed} requests to {name} failed or answered something else; "
                f"first: {next(iter(summary.failures))}"
            )
    for problem in checks.problems:
        print(f"  ! {problem}")
    if checks.problems:
        outcome.status = 1

    within = not math.isnan(difference) and difference <= args.budget_us
    verdict = "PASS" if within else "FAIL"
    print()
    if args.quick:
        print(
            f"budget (not judged with --quick, too few requests): {difference:+.0f} µs of server "
            f"CPU per request for metrics and logging, at most {args.budget_us:g} µs: {verdict}"
        )
    else:
        print(
            f"{verdict}: metrics and logging cost {difference:+.0f} µs of server CPU per article "
            f"page (median of {len(rounds)} rounds), budget {args.budget_us:g} µs"
        )
        if not within:
            outcome.status = 1
        if low <= args.budget_us < high:
            print(
                "  (the interval spans the budget: the run can't tell for sure; more rounds, or "
                "a quieter machine, narrow it)"
            )

    outcome.ratios = {
        "article page: server CPU per request on/off": cpu,
        "article page: throughput on/off": rate,
    }
    outcome.figures = {
        "database": version,
        "budget_us": args.budget_us,
        "difference_us": difference,
        "difference_us_rounds": differences,
        "difference_us_interval": {"low": low, "high": high, "coverage": coverage},
        "verdict": verdict if not args.quick else f"{verdict} (quick: not judged)",
        "p50_ratio": p50.as_json(),
        "p99_ratio": p99.as_json(),
        "rounds": [r.as_json() for r in rounds],
        "checks": {"problems": checks.problems, "notes": checks.notes, **checks.figures},
        **{name: summary.as_json() for name, summary in figures.items()},
    }
    return outcome


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked (``--quick`` fills in the sizes not given)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.observability",
        description="The article page with metrics and logging on vs off: their CPU per request.",
    )
    parser.add_argument(
        "--requests",
        type=int,
        help=f"measured requests per server (default {DEFAULTS['requests']})",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"rounds, each measuring both servers (default {DEFAULTS['rounds']})",
    )
    parser.add_argument(
        "--warmup", type=int, help=f"unmeasured requests per server (default {DEFAULTS['warmup']})"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=240.0,
        help="hard cap in seconds on all measured rounds together (split evenly between batches)",
    )
    parser.add_argument(
        "--budget-us",
        type=float,
        default=BUDGET_US,
        help=f"most µs of server CPU per request on − off may be (default {BUDGET_US:g}: issue 12)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke test: {QUICK['requests']} requests in {QUICK['rounds']} rounds, warm-up "
        f"{QUICK['warmup']} (unless given), the budget not judged",
    )
    parser.add_argument(
        "--cpu",
        default="last",
        help="the CPU both servers are pinned to (default: the last this process may use; "
        "with --pin auto, the harness's server CPU, the load generator on another), or "
        "'any' to let the scheduler place them",
    )
    parser.add_argument(
        "--alternate",
        action="store_true",
        help="load the servers one after the other in each round (on-off, off-on, …) instead "
        "of both at once: far noisier where other work shares the machine",
    )
    cli.add_common_arguments(parser)
    args = parser.parse_args(argv)
    cpus = usable_cpus()
    args.cpu_default = args.cpu == "last"
    if args.cpu == "any":
        args.cpu = None
    elif args.cpu == "last":
        args.cpu = cpus[-1]
    elif args.cpu.isdigit() and int(args.cpu) in cpus:
        args.cpu = int(args.cpu)
    else:
        parser.error(f"--cpu must be one of {', '.join(map(str, cpus))}, last or any")
    sizes = QUICK if args.quick else DEFAULTS
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.requests < 1 or args.concurrency < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--requests, --concurrency and --rounds must be positive, --warmup >= 0")
    if args.requests < args.rounds:
        parser.error("--requests must be at least --rounds (every round measures both servers)")
    cli.check_common(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.observability``: its exit status."""
    args = parse_args(argv)
    # Before the database is made: an app quiet_app can't patch is not measured at all.
    problem = quiet_app_problem(args.app_root)
    if problem:
        print(f"cannot measure the app of {args.app_root} without its observability:\n{problem}")
        return 2
    return cli.run("observability", args, bench)


if __name__ == "__main__":
    sys.exit(main())
