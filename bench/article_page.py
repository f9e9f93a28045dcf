"""Benchmark: the article page and the home feed over GraphQL against a hand-written endpoint.

    .venv/bin/python -m bench.article_page [--requests 2000] [--concurrency 16] [--rounds 3]
        [--warmup 200] [--time-limit 240] [--pages article,home] [--app-root DIR]
        [--json PATH] [--database-url postgres://…  (an empty database) | --postgres]

It builds a fresh database (a temporary SQLite file by default) with the demo data, by the app
of ``--app-root`` (default: this tree), starts two uvicorn servers on loopback ports over it:
that app (``app:create_app``, run from ``--app-root``) and ``bench.handwritten`` (a few direct
SQL statements, no GraphQL, always from this tree), and checks that both answer each page
identically: API.md's article-page query (the demo's Central Asia article and the article with
the most comments) and README's Home query. Then it loads them in alternating rounds (per round
and page: GraphQL, then handwritten) from this process (keep-alive HTTP/1.1 with prepared
requests: ``bench.harness.load``) and prints requests/s, p50 and p99 latency of each and, per
page, the GraphQL/handwritten ratios. Machines here are noisy: read the ratios, not the
absolute figures. It also checks the pages against what the data says (denormalised counters,
related articles, odds) and prints what disagrees.

``--json PATH`` writes the headline ratios (per page, GraphQL / handwritten throughput and
server CPU per request: the median of the rounds' ratios) and every figure; ``bench.compare``
runs this on two trees.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.handwritten import as_datetime, reading_time
from bench.harness import cli
from bench.harness.api import CENTRAL_ASIA, HEADERS, global_id_pk
from bench.harness.databases import Database
from bench.harness.load import Batch, Call, Check, Connections, run_load
from bench.harness.results import Ratio, Results
from bench.harness.servers import BENCH_ROOT, Server, uvicorn_server
from bench.harness.stats import Figures, machine, print_table, ratio, split, summarise

# API.md's "article-page query", as the demo client ships it (a trusted document).
ARTICLE_PAGE = (BENCH_ROOT / "demo" / "operations" / "ArticlePage.graphql").read_text()

# README's "Home feed" query.
HOME = """
query Home {
  featured: articles(first: 3, filter: {featured: true}) {
    nodes { slug title excerpt readingTimeMinutes author { name initials } }
  }
  latest: articles(first: 10) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { slug title publishedAt commentCount
      category { name slug } tags { slug name } } }
  }
  categories { slug name children { slug name } }
  markets(first: 5) { nodes { slug question status outcomes { label probability } } }
}
"""

GRAPHQL, HANDWRITTEN = "graphql", "handwritten"
ARTICLE, HOME_PAGE = "article", "home"
PAGES = (ARTICLE, HOME_PAGE)


@dataclass
class Page:
    """One page both servers answer: its variants (slugs), how each server is asked for them,
    and the exact bytes each answered when verified (every load response must match)."""

    name: str
    path: str  # the handwritten route
    variants: list[str]
    graphql_bodies: list[bytes]
    handwritten_bodies: list[bytes]
    expected: dict[str, list[bytes]] = field(default_factory=dict)

    def calls(self, target: str, count: int) -> list[Call]:
        bodies = self.graphql_bodies if target == GRAPHQL else self.handwritten_bodies
        checks = [exactly(raw) for raw in self.expected[target]]
        return [
            Call(bodies[i % len(bodies)], HEADERS, checks[i % len(bodies)]) for i in range(count)
        ]


def exactly(expected: bytes) -> Check:
    def check(status: int, body: bytes) -> str:
        if status == 200 and body == expected:
            return ""
        return f"HTTP {status}: {body[:300].decode(errors='replace')}"

    return check


def article_page(slugs: list[str]) -> Page:
    graphql = [
        json.dumps(
            {"query": ARTICLE_PAGE, "variables": {"slug": slug}, "operationName": "ArticlePage"}
        ).encode()
        for slug in slugs
    ]
    handwritten = [json.dumps({"slug": slug}).encode() for slug in slugs]
    return Page(ARTICLE, "/article-page", slugs, graphql, handwritten)


def home_page() -> Page:
    graphql = json.dumps({"query": HOME, "operationName": "Home"}).encode()
    return Page(HOME_PAGE, "/home", ["home"], [graphql], [b"{}"])


# -- what the data says -----------------------------------------------------------------------


@dataclass
class DataFacts:
    """What the database says, to check the pages against (independently of both servers)."""

    database_version: str
    busiest_slug: str
    busiest_comments: int
    article_count: int = 0
    featured: list[str] = field(default_factory=list)  # the newest featured first
    # per slug
    words: dict[str, int] = field(default_factory=dict)
    visible_comments: dict[str, int] = field(default_factory=dict)
    top_level_comments: dict[str, int] = field(default_factory=dict)
    visible_replies: dict[int, int] = field(default_factory=dict)  # comment id -> count
    related: dict[str, list[str]] = field(default_factory=dict)
    # site-wide counter drift: human-readable lines
    counter_problems: list[str] = field(default_factory=list)


async def gather_facts(url: str, slugs: list[str], related_size: int = 5) -> DataFacts:
    """Read the demo data directly: versions, the busiest article and the pages' ground truth."""
    async with await Database.connect(url) as db:
        busiest = await db.fetch(
            "SELECT a.slug, COUNT(*) AS n FROM articles a JOIN comments c ON c.article_id = a.id "
            "GROUP BY a.id, a.slug ORDER BY COUNT(*) DESC, a.id LIMIT 1"
        )
        if not busiest:
            raise SystemExit("the demo data has no comments at all")
        facts = DataFacts(await db.version(), str(busiest[0]["slug"]), int(busiest[0]["n"]))
        slugs = [*slugs, facts.busiest_slug]
        articles = await db.fetch(
            "SELECT a.id, a.slug, a.body, a.word_count, a.category_id, a.published_at, "
            "a.featured, a.comment_count, (SELECT COUNT(*) FROM comments c "
            "  WHERE c.article_id = a.id AND NOT c.deleted) AS visible, "
            "(SELECT COUNT(*) FROM comments c "
            "  WHERE c.article_id = a.id AND c.parent_id IS NULL) AS top_level "
            "FROM articles a"
        )
        tag_rows = await db.fetch("SELECT article_id, tag_id FROM article_tags")
        replies = await db.fetch(
            "SELECT c.id, c.reply_count, (SELECT COUNT(*) FROM comments r "
            "  WHERE r.parent_id = c.id AND NOT r.deleted) AS visible FROM comments c"
        )
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
    for row in replies:
        facts.visible_replies[row["id"]] = int(row["visible"])
        if row["reply_count"] != row["visible"]:
            facts.counter_problems.append(
                f"comment {row['id']}: reply_count={row['reply_count']} but "
                f"{row['visible']} visible replies"
            )

    def newest(a: dict[str, Any]) -> tuple[datetime, int]:
        return as_datetime(a["published_at"]), a["id"]

    facts.article_count = len(articles)
    facts.featured = [
        a["slug"] for a in sorted(articles, key=newest, reverse=True) if a["featured"]
    ]
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
                *newest(o),
            ),
            reverse=True,
        )
        facts.related[slug] = [o["slug"] for o in others[:related_size]]
    return facts


def odds_problems(markets: list[dict[str, Any]]) -> list[str]:
    problems = []
    for market in markets:
        probabilities = [o["probability"] for o in market["outcomes"]]
        if not 2 <= len(probabilities) <= 10:
            problems.append(f"market {market['slug']}: {len(probabilities)} outcomes")
        if not all(0.0 <= p <= 1.0 for p in probabilities) or not math.isclose(
            sum(probabilities), 1.0, abs_tol=1e-9
        ):
            problems.append(f"market {market['slug']}: probabilities {probabilities}")
    return problems


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
        _, pk = global_id_pk(node["id"])
        if node["replyCount"] != facts.visible_replies.get(pk, 0):
            problems.append(
                f"comment {pk}: replyCount={node['replyCount']}, visible replies: "
                f"{facts.visible_replies.get(pk, 0)}"
            )
    related = [r["slug"] for r in article["relatedArticles"]]
    if related != facts.related[slug]:
        problems.append(f"relatedArticles={related}, by API.md's rule: {facts.related[slug]}")
    return problems + odds_problems(article["markets"])


def audit_home(data: dict[str, Any], facts: DataFacts) -> list[str]:
    """Where the home feed disagrees with what the data says."""
    problems: list[str] = []
    if data["latest"]["totalCount"] != facts.article_count:
        problems.append(
            f"latest.totalCount={data['latest']['totalCount']}, articles: {facts.article_count}"
        )
    featured = [node["slug"] for node in data["featured"]["nodes"]]
    if featured != facts.featured[:3]:
        problems.append(f"featured={featured}, the newest featured: {facts.featured[:3]}")
    return problems + odds_problems(data["markets"]["nodes"])


# -- verification and load ---------------------------------------------------------------------


async def fetch(client: httpx.AsyncClient, server: Server, path: str, body: bytes) -> bytes:
    response = await client.post(server.base_url + path, content=body, headers=HEADERS)
    if response.status_code != 200:
        raise RuntimeError(
            f"{server.name} answered HTTP {response.status_code}: {response.text[:500]}"
        )
    return response.content


def show_diff(a_name: str, a: Any, b_name: str, b: Any, limit: int = 200) -> None:
    left = json.dumps(a, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    right = json.dumps(b, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    diff = list(difflib.unified_diff(left, right, a_name, b_name, lineterm="", n=3))
    for line in diff[:limit]:
        print(line)
    if len(diff) > limit:
        print(f"... {len(diff) - limit} more diff lines")


async def verify(servers: dict[str, Server], page: Page) -> list[dict[str, Any]]:
    """Both servers give the same answer for every variant; returns GraphQL's ``data``s."""
    answers = []
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
        for variant, gql_body, hand_body in zip(
            page.variants, page.graphql_bodies, page.handwritten_bodies, strict=True
        ):
            raw_a = await fetch(client, servers[GRAPHQL], "/graphql", gql_body)
            raw_b = await fetch(client, servers[HANDWRITTEN], page.path, hand_body)
            a, b = json.loads(raw_a), json.loads(raw_b)
            data = a.get("data")
            if "errors" in a or not isinstance(data, dict) or None in data.values():
                print(f"GraphQL gave no {page.name} (or errors) for {variant}:")
                print(json.dumps(a, indent=2)[:3000])
                raise SystemExit(1)
            if a != b:
                print(f"MISMATCH for {page.name} {variant}: GraphQL (-) vs handwritten (+)")
                show_diff(GRAPHQL, a, HANDWRITTEN, b)
                raise SystemExit(1)
            page.expected.setdefault(GRAPHQL, []).append(raw_a)
            page.expected.setdefault(HANDWRITTEN, []).append(raw_b)
            answers.append(data)
    return answers


def check_data(pages: dict[str, Page], answers: dict[str, list[Any]], facts: DataFacts) -> None:
    print("data check (the pages against the database and API.md):")
    found: list[str] = []
    if ARTICLE in pages:
        for slug, data in zip(pages[ARTICLE].variants, answers[ARTICLE], strict=True):
            found += [f"{slug}: {problem}" for problem in audit(slug, data["article"], facts)]
    if HOME_PAGE in pages:
        found += [f"home: {problem}" for problem in audit_home(answers[HOME_PAGE][0], facts)]
    found += facts.counter_problems
    for problem in found[:30]:
        print(f"  ! {problem}")
    if len(found) > 30:
        print(f"  ! … {len(found) - 30} more")
    if not found:
        print("  ok: counters, reading time, related articles, the feed and odds agree")


async def bench(args: argparse.Namespace, database_url: str, folder: Path) -> Results:
    facts = await gather_facts(database_url, [CENTRAL_ASIA])
    slugs = list(dict.fromkeys([CENTRAL_ASIA, facts.busiest_slug]))
    pages = {ARTICLE: article_page(slugs), HOME_PAGE: home_page()}
    pages = {name: pages[name] for name in args.pages}
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    servers = {
        GRAPHQL: uvicorn_server(GRAPHQL, "app:create_app", args.app_root, folder, env),
        HANDWRITTEN: uvicorn_server(
            HANDWRITTEN, "bench.handwritten:create_app", BENCH_ROOT, folder, env
        ),
    }
    results: dict[tuple[str, str], list[Batch]] = defaultdict(list)
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            await server.wait_ready()
        print(
            f"servers: graphql (app of {args.app_root}) pid {servers[GRAPHQL].pid} on "
            f":{servers[GRAPHQL].port}, handwritten pid {servers[HANDWRITTEN].pid} on "
            f":{servers[HANDWRITTEN].port}"
        )
        answers = {name: await verify(servers, page) for name, page in pages.items()}
        print(
            f"verified: identical JSON from both servers for {', '.join(pages)} "
            f"(articles {CENTRAL_ASIA} and the busiest, {facts.busiest_slug}, "
            f"{facts.busiest_comments} comments)"
        )
        check_data(pages, answers, facts)

        cap = args.time_limit / (len(servers) * len(pages) * args.rounds)
        async with (
            Connections(servers[GRAPHQL]) as pool_a,
            Connections(servers[HANDWRITTEN]) as pool_b,
        ):
            pools = {GRAPHQL: pool_a, HANDWRITTEN: pool_b}

            async def batch(page: Page, name: str, count: int, time_cap: float) -> Batch:
                path = "/graphql" if name == GRAPHQL else page.path
                calls = page.calls(name, count)
                return await run_load(pools[name], path, name, calls, args.concurrency, time_cap)

            for page in pages.values():
                for name in servers:
                    warm = await batch(page, name, args.warmup, 60.0) if args.warmup else None
                    if warm is not None and warm.failures:
                        print(f"warm-up errors on {name}, {page.name}: {warm.first_failure}")
                        return Results(1)
            print(
                f"load: {args.requests} requests per page and target in {args.rounds} rounds "
                f"(per page: GraphQL then handwritten), concurrency {args.concurrency}, "
                f"warm-up {args.warmup}, cap {cap:.0f}s per batch"
            )
            for count in split(args.requests, args.rounds):
                for page in pages.values():
                    for name in servers:
                        results[(page.name, name)].append(await batch(page, name, count, cap))
    finally:
        for server in servers.values():
            server.stop()
    return report(results, pages, facts)


def report(
    results: dict[tuple[str, str], list[Batch]], pages: dict[str, Page], facts: DataFacts
) -> Results:
    print()
    print(machine(facts.database_version))
    outcome = Results(0)
    for page in pages:
        gql = summarise(GRAPHQL, results[(page, GRAPHQL)])
        hand = summarise(HANDWRITTEN, results[(page, HANDWRITTEN)])
        print()
        print_table([gql, hand], page)
        print(f"GraphQL / handwritten, {page}:")
        print(f"  throughput   {ratio(gql.rate, hand.rate):6.2f}x")
        print(f"  p50 latency  {ratio(gql.p50_ms, hand.p50_ms):6.2f}x")
        print(f"  p99 latency  {ratio(gql.p99_ms, hand.p99_ms):6.2f}x")
        print(f"  server CPU per request {ratio(gql.server_cpu_ms, hand.server_cpu_ms):6.2f}x")
        outcome.ratios.update(headline(page, gql, hand))
        outcome.figures[page] = {GRAPHQL: gql.as_json(), HANDWRITTEN: hand.as_json()}
        for figures in (gql, hand):
            if figures.failed:
                outcome.status = 1
                print(
                    f"{figures.failed} {page} requests to {figures.name} failed or answered "
                    f"something else; first: {next(iter(figures.failures))}"
                )
    outcome.figures["database"] = facts.database_version
    return outcome


def headline(page: str, gql: Figures, hand: Figures) -> dict[str, Ratio]:
    """Per page, GraphQL / handwritten, round by round (their median): throughput and server
    CPU per request."""
    return {
        f"{page}: throughput graphql/handwritten": Ratio.of_rounds(
            gql.round_rates, hand.round_rates, "higher"
        ),
        f"{page}: server CPU per request graphql/handwritten": Ratio.of_rounds(
            gql.round_cpu_ms, hand.round_cpu_ms, "lower"
        ),
    }


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.article_page",
        description="The article page and the home feed: GraphQL vs a hand-written endpoint.",
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="measured requests per page and target"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of A then B")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests per target")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=240.0,
        help="hard cap in seconds on all measured rounds together (split evenly between batches)",
    )
    parser.add_argument("--pages", type=cli.subset(PAGES), default=list(PAGES), help="article,home")
    cli.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--requests, --concurrency and --rounds must be positive, --warmup >= 0")
    cli.check_common(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    return cli.run("article_page", parse_args(argv), bench)


if __name__ == "__main__":
    sys.exit(main())
