"""Benchmark: article search through the full-text index against the ``LIKE`` scan it replaced.

    .venv/bin/python -m bench.search [--sizes 10000,100000] [--rounds 5] [--postgres]

For each size a database is migrated by the app (so the index, its triggers and the tables are
the app's), filled with that many published articles (bodies of 300 words drawn from a
Zipf-distributed vocabulary of 8,000 made-up words by a seeded generator, so runs compare), and
a fixed set of reader queries (words matching 0.1–9 % of the articles) is run both ways in the
same process, interleaved round by round:

- index: the statement the ``search`` field sends for a first page (FTS5 ``MATCH`` with
  ``bm25`` on SQLite, ``websearch_to_tsquery`` with ``ts_rank_cd`` on PostgreSQL), 20 hits;
- LIKE: what ``ArticleFilter.search`` sent before: ``LOWER(col) LIKE '%word%'`` over title,
  excerpt and body, newest first, 20 rows.

It prints the median and p95 latency per query of each, and the ratios LIKE / index (how many
times faster the index answers): of the medians, and of the total time over the whole mix.
The statements are written out here (frozen): the bench imports nothing of the code it
measures.
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
from itertools import accumulate
from pathlib import Path
from typing import Any

from bench.harness.databases import Database, create_database, run_in_app, start_postgres
from bench.harness.servers import BENCH_ROOT

MIGRATE = "from db.migrate import main; main()"
# A news corpus's words follow Zipf's law: a few very common, most rare. Words are made from
# syllables (pronounceable, never English: no stemming coincidences), ranked by frequency.
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "nu",
    "pe",
    "ra",
    "si",
    "to",
    "ve",
    "zu",
    "ba",
    "de",
    "fi",
    "go",
    "hu",
    "ja",
    "ke",
    "li",
    "mo",
    "na",
]
VOCABULARY = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES][:8000]
WEIGHTS = [1 / (rank + 1) ** 1.07 for rank in range(len(VOCABULARY))]
# What readers look for: words of middling rarity (in ~0.5–3 % of articles), alone and in pairs
# (the pairs match far fewer).
QUERIES = [
    VOCABULARY[300],
    VOCABULARY[900],
    VOCABULARY[2500],
    f"{VOCABULARY[200]} {VOCABULARY[700]}",
    f"{VOCABULARY[150]} {VOCABULARY[1200]}",
]

CUMULATIVE = list(accumulate(WEIGHTS))

FTS_SQLITE = """
SELECT a.id, -bm25(article_search, 10.0, 4.0, 1.0) AS rank
  FROM article_search JOIN articles a ON a.id = article_search.rowid
 WHERE article_search MATCH ? AND a.state = 'PUBLISHED' AND a.published_at <= ?
 ORDER BY rank DESC, a.id LIMIT 21
"""
FTS_POSTGRES = """
SELECT a.id, ts_rank_cd(s.document, q.q)::float8 AS rank
  FROM article_search s JOIN articles a ON a.id = s.article_id,
       (SELECT websearch_to_tsquery('agora_search', ?) AS q) q
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

    def moment(text: str) -> Any:
        # SQLite compares the stored text; asyncpg wants a datetime.
        return text if db.sqlite else datetime.fromisoformat(text)

    await db.fetch(
        "INSERT INTO users (username, display_name, password_hash, role, created_at) "
        "VALUES ('w', 'W', '', 'AUTHOR', ?)",
        [moment("2026-01-01 00:00:00+00:00")],
    )
    await db.fetch("INSERT INTO authors (slug, name) VALUES ('w', 'W')")
    await db.fetch(
        "INSERT INTO categories (slug, name, path, depth, position) VALUES ('c', 'C', '/1/', 0, 0)"
    )
    batch: list[Any] = []
    for n in range(size):
        body = " ".join(rng.choices(VOCABULARY, cum_weights=CUMULATIVE, k=300))
        title = " ".join(rng.choices(VOCABULARY, cum_weights=CUMULATIVE, k=8)).title()
        stamp = moment(f"2026-0{1 + n % 9}-1{n % 10} 12:00:00+00:00")
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
        # Over the whole mix (rare queries cost LIKE a scan of everything): total time.
        "ratio_total": sum(like) / sum(index),
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
            url = f"sqlite://{Path(folder) / f's{size}.db'}"
            results.append(await measure(url, size, args.rounds))
            _print(results[-1:])
        if args.postgres:
            server = start_postgres()
            try:
                for size in sizes:
                    url = await create_database(server, f"agora_search_{size}")
                    results.append(await measure(url, size, args.rounds))
                    _print(results[-1:])
            finally:
                server.stop()
    print()
    _print(results)
    return 0


def _print(results: list[dict[str, Any]]) -> None:
    print(
        f"{'engine':<42} {'articles':>9} {'index p50':>10} {'p95':>8} "
        f"{'LIKE p50':>10} {'p95':>8} {'ratio p50':>10} {'ratio total':>12}",
        flush=True,
    )
    for r in results:
        print(
            f"{r['engine']:<42} {r['size']:>9} {r['index_ms']['median']:>8.2f}ms "
            f"{r['index_ms']['p95']:>6.2f}ms {r['like_ms']['median']:>8.2f}ms "
            f"{r['like_ms']['p95']:>6.2f}ms {r['ratio']:>9.1f}x {r['ratio_total']:>11.1f}x",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
