"""Benchmark: article search through the full-text index against the ``LIKE`` scan it replaced.

    .venv/bin/python -m bench.search [--sizes 10000,100000] [--rounds 5] [--postgres]

For each size a database is migrated by the app (so the index, its triggers and the tables are
the app's), filled with that many published articles (bodies of ~300 words drawn from a fixed
vocabulary with a seeded generator, so runs compare), and a fixed set of reader queries is run
both ways in the same process, interleaved round by round:

- index: the statement the ``search`` field sends for a first page (FTS5 ``MATCH`` with
  ``bm25`` on SQLite, ``websearch_to_tsquery`` with ``ts_rank_cd`` on PostgreSQL), 20 hits;
- LIKE: what ``ArticleFilter.search`` sent before: ``LOWER(col) LIKE '%word%'`` over title,
  excerpt and body, newest first, 20 rows.

It prints the median and p95 latency per query of each, and the ratio LIKE / index (how many
times faster the index answers). The statements are written out here (frozen): the bench
imports nothing of the code it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.harness.databases import Database, run_in_app, start_postgres
from bench.harness.servers import BENCH_ROOT

MIGRATE = "from db.migrate import main; main()"
QUERIES = ["harbour", "grain exports", "minister budget", "river water", "election"]
VOCABULARY = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "minister",
    "budget",
    "river",
    "water",
    "election",
    "harbour",
    "grain",
    "exports",
    "trade",
    "talks",
    "summit",
    "deal",
    "energy",
    "pipeline",
    "rates",
    "bank",
    "market",
    "prices",
    "inflation",
    "transit",
    "corridor",
    "port",
    "customs",
    "border",
    "vote",
    "parliament",
    "court",
    "ruling",
    "protest",
    "strike",
    "union",
    "wage",
    "farm",
    "harvest",
    "drought",
    "flood",
    "storm",
    "coast",
    "island",
    "bridge",
    "rail",
    "road",
]

FTS_SQLITE = """
SELECT a.id, -bm25(article_search, 10.0, 4.0, 1.0) AS rank
  FROM article_search JOIN articles a ON a.id = article_search.rowid
 WHERE article_search MATCH ? AND a.state = 'PUBLISHED' AND a.published_at <= ?
 ORDER BY rank DESC, a.id LIMIT 21
"""
FTS_POSTGRES = """
SELECT a.id, ts_rank_cd(s.document, q.q)::float8 AS rank
  FROM article_search s JOIN articles a ON a.id = s.article_id,
       (SELECT websearch_to_tsquery('english', ?) AS q) q
 WHERE s.document @@ q.q AND a.state = 'PUBLISHED' AND a.published_at <= ?
 ORDER BY rank DESC, a.id LIMIT 21
"""


def like_sql(words: list[str]) -> tuple[str, list[str]]:
    clauses, params = [], []
    for word in words:
        clauses.append("(LOWER(a.title) LIKE ? OR LOWER(a.excerpt) LIKE ? OR LOWER(a.body) LIKE ?)")
        params += [f"%{word}%"] * 3
    sql = (
        "SELECT a.id FROM articles a WHERE a.state = 'PUBLISHED' AND a.published_at <= ? AND "
        + " AND ".join(clauses)
        + " ORDER BY a.published_at DESC, a.id DESC LIMIT 21"
    )
    return sql, params


async def fill(db: Database, size: int) -> None:
    rng = random.Random(size)
    await db.fetch(
        "INSERT INTO users (username, display_name, password_hash, role, created_at) "
        "VALUES ('w', 'W', '', 'AUTHOR', '2026-01-01 00:00:00+00:00')"
    )
    await db.fetch("INSERT INTO authors (slug, name) VALUES ('w', 'W')")
    await db.fetch(
        "INSERT INTO categories (slug, name, path, depth, position) VALUES ('c', 'C', '/1/', 0, 0)"
    )
    batch: list[Any] = []
    for n in range(size):
        body = " ".join(rng.choice(VOCABULARY) for _ in range(300))
        title = " ".join(rng.choice(VOCABULARY) for _ in range(8)).title()
        stamp = f"2026-0{1 + n % 9}-1{n % 10} 12:00:00+00:00"
        batch.append((f"a{n}", title, title.lower(), body, stamp, stamp))
        if len(batch) == 1000 or n == size - 1:
            marks = ", ".join("(?, ?, ?, ?, 300, ?, ?, ?, 0, 0, 1, 1, 'PUBLISHED')" for _ in batch)
            params: list[Any] = []
            for slug, t, excerpt, b, published, updated in batch:
                params += [slug, t, excerpt, b, published, updated, False]
            await db.fetch(
                "INSERT INTO articles (slug, title, excerpt, body, word_count, published_at, "
                "updated_at, featured, comment_count, comment_seq, author_id, category_id, "
                f"state) VALUES {marks}",
                params,
            )
            batch = []
    if db.sqlite:
        await db.conn.commit()
        await db.fetch("ANALYZE")
    else:
        await db.fetch("ANALYZE")


async def timed(db: Database, sql: str, params: list[Any]) -> float:
    began = time.perf_counter()
    await db.fetch(sql, params)
    return time.perf_counter() - began


async def measure(url: str, size: int, rounds: int) -> dict[str, Any]:
    done = run_in_app(BENCH_ROOT, url, ["-c", MIGRATE])
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    async with await Database.connect(url) as db:
        began = time.perf_counter()
        await fill(db, size)
        filled = time.perf_counter() - began
        stamp = "2027-01-01 00:00:00+00:00"
        # SQLite compares the stored text; asyncpg wants a datetime.
        now: Any = stamp if db.sqlite else datetime.fromisoformat(stamp)
        index: list[float] = []
        like: list[float] = []
        for _ in range(rounds):
            for query in QUERIES:
                words = query.split()
                if db.sqlite:
                    expression = " AND ".join(f'"{w}"' for w in words)
                    index.append(await timed(db, FTS_SQLITE, [expression, now]))
                else:
                    index.append(await timed(db, FTS_POSTGRES, [query, now]))
                sql, params = like_sql(words)
                like.append(await timed(db, sql, [now, *params]))
        version = await db.version()
    return {
        "size": size,
        "engine": version,
        "fill_seconds": filled,
        "index_ms": _summary(index),
        "like_ms": _summary(like),
        "ratio": statistics.median(like) / statistics.median(index),
    }


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": statistics.median(ordered) * 1000,
        "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
    }


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="agora-search-") as folder:
        for size in sizes:
            results.append(
                await measure(f"sqlite://{Path(folder) / f's{size}.db'}", size, args.rounds)
            )
        if args.postgres:
            server = start_postgres()
            try:
                from bench.harness.databases import create_database

                for size in sizes:
                    url = await create_database(server, f"agora_search_{size}")
                    results.append(await measure(url, size, args.rounds))
            finally:
                server.stop()
    print(
        f"{'engine':<18} {'articles':>9} {'index p50':>10} {'p95':>8} "
        f"{'LIKE p50':>10} {'p95':>8} {'LIKE/index':>11}"
    )
    for r in results:
        print(
            f"{r['engine']:<18} {r['size']:>9} {r['index_ms']['median']:>8.2f}ms "
            f"{r['index_ms']['p95']:>6.2f}ms {r['like_ms']['median']:>8.2f}ms "
            f"{r['like_ms']['p95']:>6.2f}ms {r['ratio']:>10.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
