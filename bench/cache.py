"""Benchmark: the article page from the response cache under writes, against the same app
uncached.

    .venv/bin/python -m bench.cache [--requests 30000] [--uncached-requests 600]
        [--concurrency 16] [--rounds 3] [--writes-per-second 1] [--app-root DIR]
        [--json PATH] [--postgres | --database-url …]

Two uvicorn servers of the same app over one demo database: ``cached`` (RESPONSE_CACHE=true)
and ``uncached``. While both are loaded in alternating rounds with API.md's article page (the
Central Asia article), a writer sends, every second, one comment on that article and one trade
on its market to the cached server (in process, its versions live there: a write elsewhere
would bump nothing it knows; with REDIS_URL every worker's would). It prints requests/s,
p50/p99 and server CPU per request of each, the cached/uncached ratios, the hit ratio (from the
cached server's ``agora_response_cache_total``), and how many writes landed. Every answer is
checked for errors; the freshness itself is the tests' business (tests/http/test_response_cache.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import secrets
from pathlib import Path

import httpx

from bench.harness import cli
from bench.harness.api import CENTRAL_ASIA, HEADERS
from bench.harness.load import Batch, Call, Connections, run_load
from bench.harness.results import Ratio, Results
from bench.harness.servers import BENCH_ROOT, Server, uvicorn_server
from bench.harness.stats import median, split

ARTICLE_PAGE = (BENCH_ROOT / "demo" / "operations" / "ArticlePage.graphql").read_text()
CACHED, UNCACHED = "cached", "uncached"
_COUNTER = re.compile(r'^agora_response_cache_total\{result="(\w+)"\} ([0-9.e+]+)$', re.M)


def page_call() -> Call:
    """One article-page request; any error fails it."""
    body = json.dumps({"query": ARTICLE_PAGE, "variables": {"slug": CENTRAL_ASIA}}).encode()

    def check(status: int, answer: bytes) -> str:
        if status != 200:
            return f"HTTP {status}"
        return "errors in the answer" if b'"errors"' in answer else ""

    return Call(body, dict(HEADERS), check)


async def counters(client: httpx.AsyncClient, server: Server) -> dict[str, float]:
    """The cached server's hit / miss / bypass counters now."""
    text = (await client.get(server.base_url + "/metrics")).text
    return {name: float(value) for name, value in _COUNTER.findall(text)}


async def gql(
    client: httpx.AsyncClient, server: Server, query: str, variables: dict, token: str = ""
) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        server.base_url + "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"bench set-up failed: {body['errors']}")
    return dict(body["data"])


async def writer(server: Server, per_second: float, landed: list[str]) -> None:
    """A comment and a trade on the page being read, ``per_second`` times a second each."""
    async with httpx.AsyncClient(timeout=30) as client:
        name = "bench" + secrets.token_hex(4)
        signed = await gql(
            client,
            server,
            "mutation($i: SignUpInput!) { signUp(input: $i) { token errors { code } } }",
            {"i": {"username": name, "password": "bench-password-1", "displayName": "Bench"}},
        )
        token = signed["signUp"]["token"]
        article = (
            await gql(
                client,
                server,
                "query($s: String!) { article(slug: $s) { id markets { outcomes { id } } } }",
                {"s": CENTRAL_ASIA},
            )
        )["article"]
        outcome = article["markets"][0]["outcomes"][0]["id"]
        n = 0
        while True:
            n += 1
            await gql(
                client,
                server,
                "mutation($a: ID!, $b: String!) { postComment(input: {articleId: $a, body: $b}) "
                "{ errors { code } } }",
                {"a": article["id"], "b": f"bench comment {n}"},
                token,
            )
            landed.append("comment")
            await gql(
                client,
                server,
                'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "0.50"}) '
                "{ errors { code } } }",
                {"o": outcome},
                token,
            )
            landed.append("trade")
            await asyncio.sleep(1 / per_second)


async def bench(args: argparse.Namespace, database_url: str, folder: Path) -> Results:
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "COMMENT_RATE": "100000/1"}
    servers = {
        CACHED: uvicorn_server(
            CACHED, "app:create_app", args.app_root, folder, {**env, "RESPONSE_CACHE": "true"}
        ),
        UNCACHED: uvicorn_server(UNCACHED, "app:create_app", args.app_root, folder, env),
    }
    batches: dict[str, list[Batch]] = {CACHED: [], UNCACHED: []}
    hits = misses = bypasses = 0.0
    landed: list[str] = []
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            await server.wait_ready()
        write = asyncio.create_task(writer(servers[CACHED], args.writes_per_second, landed))
        try:
            async with (
                httpx.AsyncClient() as client,
                Connections(servers[CACHED]) as pool_a,
                Connections(servers[UNCACHED]) as pool_b,
            ):
                pools = {CACHED: pool_a, UNCACHED: pool_b}
                for name in servers:  # warm-up
                    await run_load(pools[name], "/graphql", name, [page_call()] * 200, 16, 60)
                counts = zip(
                    split(args.requests, args.rounds),
                    split(args.uncached_requests, args.rounds),
                    strict=True,
                )
                for cached_count, uncached_count in counts:
                    for name in servers:
                        before = await counters(client, servers[CACHED])
                        count = cached_count if name == CACHED else uncached_count
                        calls = [page_call() for _ in range(count)]
                        batch = await run_load(
                            pools[name], "/graphql", name, calls, args.concurrency, 300
                        )
                        if batch.failures:
                            print(f"{name}: failures {dict(batch.failures)}")
                            return Results(1)
                        batches[name].append(batch)
                        if name == CACHED:
                            after = await counters(client, servers[CACHED])
                            hits += after.get("hit", 0) - before.get("hit", 0)
                            misses += after.get("miss", 0) - before.get("miss", 0)
                            bypasses += after.get("bypass", 0) - before.get("bypass", 0)
        finally:
            write.cancel()
            with contextlib.suppress(BaseException):
                await write
    finally:
        for server in servers.values():
            server.stop()
    return report(batches, hits, misses, bypasses, landed)


def report(
    batches: dict[str, list[Batch]], hits: float, misses: float, bypasses: float, landed: list[str]
) -> Results:
    rates: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    print()
    print(f"{'target':10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}")
    for name, runs in batches.items():
        rates[name] = [len(b.latencies) / b.elapsed for b in runs]
        cpu[name] = [1000 * b.server_cpu / max(1, len(b.latencies)) for b in runs]
        latencies = sorted(x for b in runs for x in b.latencies)
        p50 = 1000 * latencies[len(latencies) // 2]
        p99 = 1000 * latencies[int(len(latencies) * 0.99)]
        print(
            f"{name:10} {median(rates[name]):8.0f} {p50:8.2f} {p99:8.2f} {median(cpu[name]):11.3f}"
        )
    total = hits + misses + bypasses
    print(
        f"hit ratio {hits / total:.4f} ({hits:.0f} hits, {misses:.0f} misses, "
        f"{bypasses:.0f} bypasses); writes landed meanwhile: "
        f"{landed.count('comment')} comments, {landed.count('trade')} trades"
    )
    results = Results(0)
    results.ratios = {
        "article page: throughput cached/uncached": Ratio.of_rounds(
            rates[CACHED], rates[UNCACHED], "higher"
        ),
        "article page: server CPU per request cached/uncached": Ratio.of_rounds(
            cpu[CACHED], cpu[UNCACHED], "lower"
        ),
    }
    results.figures["hit_ratio"] = hits / total if total else 0.0
    # Absolute figures per round, so `make bench` can set the cached rate beside PostGraphile's.
    results.figures["rates"] = rates
    results.figures["cpu_ms"] = cpu
    results.figures["writes"] = {
        "comments": landed.count("comment"),
        "trades": landed.count("trade"),
    }
    results.figures["counts"] = {"hits": hits, "misses": misses, "bypasses": bypasses}
    for label, value in results.ratios.items():
        print(f"{label}: {value.value:.2f}")
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cache",
        description="The article page from the response cache under writes vs uncached.",
    )
    parser.add_argument(
        "--requests", type=int, default=30000, help="requests to the cached server (all rounds)"
    )
    parser.add_argument(
        "--uncached-requests", type=int, default=600, help="requests to the uncached server"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of A then B")
    parser.add_argument(
        "--writes-per-second", type=float, default=1.0, help="comments (and trades) a second"
    )
    cli.add_common_arguments(parser)
    args = parser.parse_args(argv)
    cli.check_common(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    return cli.run("cache", parse_args(argv), bench)


if __name__ == "__main__":
    raise SystemExit(main())
