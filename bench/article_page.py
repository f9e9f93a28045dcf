"""Benchmark: the article-page GraphQL query against a hand-written endpoint, same data.

    PYTHONPATH=. .venv/bin/python -m bench.article_page [--requests 2000] [--concurrency 16]
        [--rounds 3] [--warmup 200] [--time-limit 120]
        [--database-url postgres://…  (an empty database) | --postgres]

It builds a fresh database (a temporary SQLite file by default) with the demo data, starts two
uvicorn servers on loopback ports over that database, the real app (``app:create_app``) and
``bench.handwritten`` (a few direct SQL statements, no GraphQL), checks that both answer the
article page identically, then loads them in alternating rounds from this process with httpx
and prints requests/s, p50 and p99 latency of each and the GraphQL/handwritten ratios. Machines
here are noisy: read the ratios, not the absolute figures. It also checks the page against what
the data says (denormalised counters, related articles, odds) and prints what disagrees.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from tortoise import Tortoise

from api.core.node import from_global_id
from api.news.types import reading_time
from db.config import tortoise_config
from db.sql import fetch_dicts
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent

CENTRAL_ASIA = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"

# API.md's "article-page query" (one line broken in two to fit the line length).
ARTICLE_PAGE = """
query ArticlePage($slug: String!) {
  article(slug: $slug) {
    id slug title excerpt body publishedAt readingTimeMinutes featured
    author { name initials slug }
    breadcrumb { name slug }
    tags { slug name }
    commentCount
    comments(first: 10) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { cursor node { id body bodyHtml createdAt author { username displayName initials }
        replyCount
        replies(first: 5) { nodes { id body createdAt author { username initials } } } } }
    }
    relatedArticles(first: 5) { slug title publishedAt commentCount }
    markets { slug question status outcomes { label probability } }
  }
}
"""

HEADERS = {"content-type": "application/json", "accept": "application/json"}


# -- servers ----------------------------------------------------------------------------------


@dataclass
class Target:
    """One server under test and how to ask it for an article page."""

    name: str
    factory: str  # "module:function" for ``uvicorn --factory``
    path: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    # slug -> the exact response bytes seen during verification (every load response must match)
    expected: dict[str, bytes] = field(default_factory=dict)

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (Linux /proc; else NaN)."""
        if self.process is None:
            return math.nan
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return math.nan
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def body(self, slug: str) -> bytes:
        if self.path == "/graphql":
            payload: dict[str, Any] = {
                "query": ARTICLE_PAGE,
                "variables": {"slug": slug},
                "operationName": "ArticlePage",
            }
        else:
            payload = {"slug": slug}
        return json.dumps(payload).encode()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(target: Target, database_url: str, folder: Path) -> None:
    """Start ``target`` as a uvicorn subprocess on a free loopback port."""
    target.port = free_port()
    target.log = folder / f"{target.name}.log"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        AGORA_ENV="test",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        target.factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(target.port),
        "--log-level",
        "warning",
        "--no-access-log",
        # Targets take turns; keep the idle one's connections open for the next round.
        "--timeout-keep-alive",
        "600",
    ]
    with target.log.open("wb") as log:
        target.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def stop_server(target: Target) -> None:
    """Terminate ``target``'s process (and only it), killing it if it lingers."""
    proc = target.process
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def log_tail(target: Target, chars: int = 3000) -> str:
    if target.log is None or not target.log.exists():
        return ""
    return target.log.read_text(errors="replace")[-chars:]


async def wait_ready(target: Target, within: float = 60.0) -> None:
    """Poll /healthz until the server answers; fail early if its process died."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            assert target.process is not None
            if target.process.poll() is not None:
                raise RuntimeError(
                    f"{target.name} server exited with {target.process.returncode}:\n"
                    + log_tail(target)
                )
            try:
                response = await client.get(f"{target.base_url}/healthz")
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{target.name} server not ready after {within:.0f}s:\n{log_tail(target)}")


# -- the database -----------------------------------------------------------------------------


async def ensure_empty_postgres(url: str) -> None:
    """Refuse a PostgreSQL database that already has tables: the benchmark needs a fresh one."""
    import asyncpg

    conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
    finally:
        await conn.close()
    if count:
        raise SystemExit(f"the database must be empty, it has {count} tables: {url}")


@dataclass
class DataFacts:
    """What the database says, to check the page against (independently of both servers)."""

    database_version: str
    busiest_slug: str
    busiest_comments: int
    # per slug
    words: dict[str, int] = field(default_factory=dict)
    visible_comments: dict[str, int] = field(default_factory=dict)
    top_level_comments: dict[str, int] = field(default_factory=dict)
    visible_replies: dict[int, int] = field(default_factory=dict)  # comment id -> count
    related: dict[str, list[str]] = field(default_factory=dict)
    # site-wide counter drift: human-readable lines
    counter_problems: list[str] = field(default_factory=list)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value


async def gather_facts(settings: Settings, slugs: list[str], related_size: int = 5) -> DataFacts:
    """Read the demo data directly: versions, the busiest article and the page's ground truth."""
    await Tortoise.init(config=tortoise_config(settings))
    try:
        if settings.is_sqlite:
            version = "SQLite " + str((await fetch_dicts("SELECT sqlite_version() AS v"))[0]["v"])
        else:
            rows = await fetch_dicts("SELECT current_setting('server_version') AS v")
            version = "PostgreSQL " + str(rows[0]["v"])
        busiest = await fetch_dicts(
            "SELECT a.slug, COUNT(*) AS n FROM articles a JOIN comments c ON c.article_id = a.id "
            "GROUP BY a.id, a.slug ORDER BY COUNT(*) DESC, a.id LIMIT 1"
        )
        if not busiest:
            raise SystemExit("the demo data has no comments at all")
        facts = DataFacts(version, str(busiest[0]["slug"]), int(busiest[0]["n"]))
        slugs = [*slugs, facts.busiest_slug]

        articles = await fetch_dicts(
            "SELECT a.id, a.slug, a.body, a.word_count, a.category_id, a.published_at, "
            "a.comment_count, (SELECT COUNT(*) FROM comments c "
            "  WHERE c.article_id = a.id AND NOT c.deleted) AS visible, "
            "(SELECT COUNT(*) FROM comments c "
            "  WHERE c.article_id = a.id AND c.parent_id IS NULL) AS top_level "
            "FROM articles a"
        )
        tag_rows = await fetch_dicts("SELECT article_id, tag_id FROM article_tags")
        tags: dict[int, set[int]] = defaultdict(set)
        for row in tag_rows:
            tags[row["article_id"]].add(row["tag_id"])
        for a in articles:
            words = len(a["body"].split())
            if reading_time(words) != reading_time(a["word_count"]):
                facts.counter_problems.append(
                    f"article {a['slug']}: word_count={a['word_count']} but the body has "
                    f"{words} words (readingTimeMinutes {reading_time(a['word_count'])} "
                    f"instead of {reading_time(words)})"
                )
            if a["comment_count"] != a["visible"]:
                facts.counter_problems.append(
                    f"article {a['slug']}: comment_count={a['comment_count']} but "
                    f"{a['visible']} visible comments"
                )
        replies = await fetch_dicts(
            "SELECT c.id, c.reply_count, (SELECT COUNT(*) FROM comments r "
            "  WHERE r.parent_id = c.id AND NOT r.deleted) AS visible FROM comments c"
        )
        for row in replies:
            facts.visible_replies[row["id"]] = int(row["visible"])
            if row["reply_count"] != row["visible"]:
                facts.counter_problems.append(
                    f"comment {row['id']}: reply_count={row['reply_count']} but "
                    f"{row['visible']} visible replies"
                )

        by_slug = {row["slug"]: row for row in articles}
        for slug in slugs:
            if slug not in by_slug:
                continue
            a = by_slug[slug]
            facts.words[slug] = len(a["body"].split())
            facts.visible_comments[slug] = int(a["visible"])
            facts.top_level_comments[slug] = int(a["top_level"])
            # API.md: most shared tags, then same category, then newest; never itself.
            others = sorted(
                (o for o in articles if o["id"] != a["id"]),
                key=lambda o: (
                    len(tags[a["id"]] & tags[o["id"]]),
                    o["category_id"] == a["category_id"],
                    _as_datetime(o["published_at"]),
                    o["id"],
                ),
                reverse=True,
            )
            facts.related[slug] = [o["slug"] for o in others[:related_size]]
        return facts
    finally:
        await Tortoise.close_connections()


def audit(slug: str, article: dict[str, Any], facts: DataFacts) -> list[str]:
    """Where the article page disagrees with what the data (and API.md) says."""
    problems: list[str] = []
    expected_minutes = reading_time(facts.words[slug])
    if article["readingTimeMinutes"] != expected_minutes:
        problems.append(
            f"readingTimeMinutes={article['readingTimeMinutes']}, the body has "
            f"{facts.words[slug]} words: {expected_minutes}"
        )
    if article["commentCount"] != facts.visible_comments[slug]:
        problems.append(
            f"commentCount={article['commentCount']}, visible comments in the database: "
            f"{facts.visible_comments[slug]}"
        )
    comments = article["comments"]
    if comments["totalCount"] != facts.top_level_comments[slug]:
        problems.append(
            f"comments.totalCount={comments['totalCount']}, top-level comments: "
            f"{facts.top_level_comments[slug]}"
        )
    if comments["pageInfo"]["hasNextPage"] != (facts.top_level_comments[slug] > 10):
        problems.append(f"comments.pageInfo.hasNextPage={comments['pageInfo']['hasNextPage']}")
    for edge in comments["edges"]:
        node = edge["node"]
        _, pk = from_global_id(node["id"])
        if node["replyCount"] != facts.visible_replies.get(pk, 0):
            problems.append(
                f"comment {pk}: replyCount={node['replyCount']}, visible replies: "
                f"{facts.visible_replies.get(pk, 0)}"
            )
    related = [r["slug"] for r in article["relatedArticles"]]
    if related != facts.related[slug]:
        problems.append(f"relatedArticles={related}, by API.md's rule: {facts.related[slug]}")
    for market in article["markets"]:
        probabilities = [o["probability"] for o in market["outcomes"]]
        if not 2 <= len(probabilities) <= 10:
            problems.append(f"market {market['slug']}: {len(probabilities)} outcomes")
        if not all(0.0 <= p <= 1.0 for p in probabilities) or not math.isclose(
            sum(probabilities), 1.0, abs_tol=1e-9
        ):
            problems.append(f"market {market['slug']}: probabilities {probabilities}")
    return problems


# -- verification and load ---------------------------------------------------------------------


async def fetch_page(client: httpx.AsyncClient, target: Target, slug: str) -> tuple[bytes, Any]:
    response = await client.post(
        target.base_url + target.path, content=target.body(slug), headers=HEADERS
    )
    if response.status_code != 200:
        raise RuntimeError(
            f"{target.name} answered HTTP {response.status_code} for {slug}: {response.text[:500]}"
        )
    return response.content, response.json()


def show_diff(a_name: str, a: Any, b_name: str, b: Any, limit: int = 200) -> None:
    left = json.dumps(a, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    right = json.dumps(b, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    diff = list(difflib.unified_diff(left, right, a_name, b_name, lineterm="", n=3))
    for line in diff[:limit]:
        print(line)
    if len(diff) > limit:
        print(f"... {len(diff) - limit} more diff lines")


async def verify(graphql: Target, handwritten: Target, slugs: list[str]) -> dict[str, Any]:
    """Both servers give the same page for every slug; returns the GraphQL articles by slug."""
    pages: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=30.0) as client:
        for slug in slugs:
            raw_a, a = await fetch_page(client, graphql, slug)
            raw_b, b = await fetch_page(client, handwritten, slug)
            if "errors" in a or not isinstance(a.get("data"), dict) or a["data"]["article"] is None:
                print(f"GraphQL gave no article (or errors) for {slug}:")
                print(json.dumps(a, indent=2)[:3000])
                raise SystemExit(1)
            if a != b:
                print(f"MISMATCH for {slug}: GraphQL (-) vs handwritten (+)")
                show_diff("graphql", a, "handwritten", b)
                raise SystemExit(1)
            graphql.expected[slug] = raw_a
            handwritten.expected[slug] = raw_b
            pages[slug] = a["data"]["article"]
    return pages


@dataclass
class Batch:
    """The outcome of one timed run of requests against one target."""

    latencies: list[float]
    elapsed: float
    errors: int
    capped: bool
    first_error: str = ""
    server_cpu: float = math.nan  # CPU seconds the server used during the batch
    client_cpu: float = math.nan  # CPU seconds this (load generator) process used

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed > 0 else 0.0


async def run_batch(
    client: httpx.AsyncClient,
    target: Target,
    slugs: list[str],
    total: int,
    concurrency: int,
    time_cap: float,
) -> Batch:
    """``total`` requests from ``concurrency`` workers, cycling over ``slugs``; stops at the cap.

    A response counts only if it is HTTP 200 and byte-for-byte the verified page.
    """
    url = target.base_url + target.path
    bodies = [(target.body(slug), target.expected[slug]) for slug in slugs]
    latencies: list[float] = []
    errors = 0
    first_error = ""
    issued = 0
    server_cpu, client_cpu = target.cpu_seconds(), time.process_time()
    start = time.perf_counter()
    deadline = start + time_cap

    async def worker() -> None:
        nonlocal issued, errors, first_error
        while issued < total and time.perf_counter() < deadline:
            body, expected = bodies[issued % len(bodies)]
            issued += 1
            began = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=HEADERS)
                ok = response.status_code == 200 and response.content == expected
                problem = "" if ok else f"HTTP {response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                ok, problem = False, f"{type(exc).__name__}: {exc}"
            ended = time.perf_counter()
            if ok:
                latencies.append(ended - began)
            else:
                errors += 1
                first_error = first_error or problem

    async with asyncio.timeout(time_cap + 60):
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return Batch(
        latencies,
        elapsed,
        errors,
        issued < total,
        first_error,
        server_cpu=target.cpu_seconds() - server_cpu,
        client_cpu=time.process_time() - client_cpu,
    )


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` (0–100) of already sorted values."""
    if not sorted_values:
        return math.nan
    position = (len(sorted_values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


@dataclass
class Summary:
    name: str
    ok: int
    errors: int
    rate: float
    p50_ms: float
    p99_ms: float
    round_rates: list[float]
    capped: bool
    server_cpu_ms: float  # server CPU per successful request
    client_cpu_share: float  # load generator CPU / wall time (1.0 = one core saturated)


def summarise(name: str, batches: list[Batch]) -> Summary:
    latencies = sorted(lat for batch in batches for lat in batch.latencies)
    elapsed = sum(batch.elapsed for batch in batches)
    return Summary(
        name=name,
        ok=len(latencies),
        errors=sum(batch.errors for batch in batches),
        rate=len(latencies) / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        round_rates=[batch.rate for batch in batches],
        capped=any(batch.capped for batch in batches),
        server_cpu_ms=_ratio(sum(b.server_cpu for b in batches) * 1000, len(latencies)),
        client_cpu_share=_ratio(sum(b.client_cpu for b in batches), elapsed),
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.article_page",
        description="The article-page GraphQL query vs a hand-written endpoint, same database.",
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="measured requests per target (all rounds)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of A then B")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests per target")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=120.0,
        help="hard cap in seconds on all measured rounds together (split evenly between batches)",
    )
    add_database_arguments(parser)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--requests, --concurrency and --rounds must be positive, --warmup >= 0")
    if args.database_url and not args.database_url.startswith(
        ("postgres://", "postgresql://", "asyncpg://")
    ):
        parser.error("--database-url must be a postgres:// URL (SQLite is the default)")
    return args


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    """``--database-url`` or ``--postgres`` (default: a temporary SQLite file)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--database-url", help="an EMPTY PostgreSQL database (postgres://…); default: temp SQLite"
    )
    where.add_argument(
        "--postgres",
        action="store_true",
        help="start a throwaway PostgreSQL server (tests.services), bench on it, stop it",
    )


@contextmanager
def scratch_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="agora-bench-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def bench(args: argparse.Namespace, database_url: str, folder: Path) -> int:
    from app import prepare_database

    settings = Settings(database_url=database_url, env="test")
    if not settings.is_sqlite:
        await ensure_empty_postgres(database_url)
    print(f"preparing the database ({'SQLite' if settings.is_sqlite else 'PostgreSQL'}) …")
    began = time.perf_counter()
    await prepare_database(settings)
    facts = await gather_facts(settings, [CENTRAL_ASIA])
    print(f"  migrated and seeded in {time.perf_counter() - began:.1f}s")
    slugs = list(dict.fromkeys([CENTRAL_ASIA, facts.busiest_slug]))

    graphql = Target("graphql", "app:create_app", "/graphql")
    handwritten = Target("handwritten", "bench.handwritten:create_app", "/article-page")
    targets = [graphql, handwritten]
    try:
        for target in targets:
            start_server(target, database_url, folder)
        for target in targets:
            await wait_ready(target)
        print(
            f"servers: graphql pid {graphql.process.pid if graphql.process else '?'} "
            f"on :{graphql.port}, handwritten pid "
            f"{handwritten.process.pid if handwritten.process else '?'} on :{handwritten.port}"
        )

        pages = await verify(graphql, handwritten, slugs)
        print(
            f"verified: identical JSON from both servers for {CENTRAL_ASIA} and the busiest "
            f"article {facts.busiest_slug} ({facts.busiest_comments} comments)"
        )
        print("data check (the page against the database and API.md):")
        found_problems = False
        for slug in slugs:
            for problem in audit(slug, pages[slug], facts):
                found_problems = True
                print(f"  ! {slug}: {problem}")
        for problem in facts.counter_problems[:20]:
            found_problems = True
            print(f"  ! {problem}")
        if len(facts.counter_problems) > 20:
            print(f"  ! … {len(facts.counter_problems) - 20} more counter problems")
        if not found_problems:
            print("  ok: counters, reading time, related articles and odds agree")

        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        per_round = [
            args.requests // args.rounds + (1 if i < args.requests % args.rounds else 0)
            for i in range(args.rounds)
        ]
        cap = args.time_limit / (2 * args.rounds)
        async with (
            httpx.AsyncClient(limits=limits, timeout=30.0) as client_a,
            httpx.AsyncClient(limits=limits, timeout=30.0) as client_b,
        ):
            clients = {graphql.name: client_a, handwritten.name: client_b}
            if args.warmup:
                for target in targets:
                    warm = await run_batch(
                        clients[target.name], target, slugs, args.warmup, args.concurrency, 60.0
                    )
                    if warm.errors:
                        print(f"warm-up errors on {target.name}: {warm.first_error}")
                        return 1
            print(
                f"load: {args.requests} requests per target in {args.rounds} rounds "
                f"(A then B), concurrency {args.concurrency}, warm-up {args.warmup}, "
                f"slugs cycled: {len(slugs)}, cap {cap:.0f}s per batch"
            )
            results: dict[str, list[Batch]] = {target.name: [] for target in targets}
            for count in per_round:
                for target in targets:
                    batch = await run_batch(
                        clients[target.name], target, slugs, count, args.concurrency, cap
                    )
                    results[target.name].append(batch)
        summaries = [summarise(name, batches) for name, batches in results.items()]
    finally:
        for target in targets:
            stop_server(target)

    report(summaries, facts)
    errors = sum(s.errors for s in summaries)
    if errors:
        first = next(b.first_error for bs in results.values() for b in bs if b.first_error)
        print(f"\n{errors} requests failed or answered something else; first: {first}")
        return 1
    return 0


def report(summaries: list[Summary], facts: DataFacts) -> None:
    print()
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{facts.database_version}, {os.cpu_count()} cores "
        f"({len(os.sched_getaffinity(0))} usable), {platform.machine()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print()
    header = (
        f"{'target':<12} {'ok':>6} {'errors':>6} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} "
        f"{'srv CPU ms/req':>14} {'client CPU':>10}"
    )
    print(header + "   req/s per round")
    print("-" * (len(header) + 20))
    for s in summaries:
        rounds = " ".join(f"{rate:.0f}" for rate in s.round_rates)
        capped = "  (time cap hit)" if s.capped else ""
        print(
            f"{s.name:<12} {s.ok:>6} {s.errors:>6} {s.rate:>9.1f} {s.p50_ms:>9.2f} "
            f"{s.p99_ms:>9.2f} {s.server_cpu_ms:>14.2f} {s.client_cpu_share:>9.0%}"
            f"   {rounds}{capped}"
        )
    by_name = {s.name: s for s in summaries}
    gql, hand = by_name["graphql"], by_name["handwritten"]
    print()
    print("GraphQL / handwritten:")
    print(f"  throughput   {_ratio(gql.rate, hand.rate):6.2f}x")
    print(f"  p50 latency  {_ratio(gql.p50_ms, hand.p50_ms):6.2f}x")
    print(f"  p99 latency  {_ratio(gql.p99_ms, hand.p99_ms):6.2f}x")
    print(f"  server CPU per request {_ratio(gql.server_cpu_ms, hand.server_cpu_ms):6.2f}x")
    print(
        "(client CPU: the load generator's share of one core; near 100% it, not the server,"
        " limits the rate)"
    )


BenchFn = Callable[[argparse.Namespace, str, Path], Coroutine[Any, Any, int]]


async def bench_throwaway_postgres(
    args: argparse.Namespace, folder: Path, run: BenchFn | None = None
) -> int:
    """Run a benchmark on a throwaway PostgreSQL (started and stopped here)."""
    import pytest

    from tests.services import create_database, start_postgres

    try:
        server = start_postgres()
    except (Exception, pytest.skip.Exception, pytest.fail.Exception) as exc:
        print(f"cannot start a throwaway PostgreSQL: {exc}")
        return 2
    try:
        url = await create_database(server, f"agora_bench_{uuid.uuid4().hex[:12]}")
        print(f"throwaway PostgreSQL on 127.0.0.1:{server.port}")
        return await (run or bench)(args, url, folder)
    finally:
        server.stop()


def run_on_chosen_database(args: argparse.Namespace, run: BenchFn) -> int:
    """``--postgres``, ``--database-url`` or a temporary SQLite file: the benchmarks' one main."""
    with scratch_folder() as folder:
        if args.postgres:
            return asyncio.run(bench_throwaway_postgres(args, folder, run))
        if args.database_url:
            return asyncio.run(run(args, args.database_url, folder))
        return asyncio.run(run(args, f"sqlite://{folder}/agora-bench.sqlite3", folder))


def main(argv: list[str] | None = None) -> int:
    return run_on_chosen_database(parse_args(argv), bench)


if __name__ == "__main__":
    sys.exit(main())
