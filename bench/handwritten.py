"""The article page and the home feed without GraphQL: the baseline of ``bench.article_page``.

``POST /article-page`` with ``{"slug": ...}`` answers exactly what API.md's article-page query
answers (``{"data": {"article": {...}}}``), and ``POST /home`` (any body) exactly what README's
Home query answers, from a handful of hand-written statements over a Tortoise connection (the
app's driver and pool settings). It imports nothing of the project, so that changing the project
never moves the baseline: global IDs, cursors, initials, reading time, market status and LMSR
odds are re-derived here, and ``bench.article_page`` checks both answers against the app's
before it measures anything. Run it with
``DATABASE_URL=... uvicorn bench.handwritten:create_app --factory``.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import math
import os
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url

COMMENTS_PAGE = 10
REPLIES_PAGE = 5
RELATED = 5
FEATURED = 3
LATEST = 10
MARKETS = 5
WORDS_PER_MINUTE = 200

# -- the article page -----------------------------------------------------------------------

ARTICLE_SQL = """
SELECT a.id, a.slug, a.title, a.excerpt, a.body, a.published_at, a.word_count, a.featured,
       a.comment_count, a.category_id, au.name AS author_name, au.slug AS author_slug
  FROM articles a JOIN authors au ON au.id = a.author_id
 WHERE a.slug = ? AND a.state = 'PUBLISHED' AND a.published_at <= ?
"""

BREADCRUMB_SQL = """
WITH RECURSIVE chain(id, parent_id, slug, name, lvl) AS (
    SELECT id, parent_id, slug, name, 0 FROM categories WHERE id = ?
    UNION ALL
    SELECT c.id, c.parent_id, c.slug, c.name, chain.lvl + 1
      FROM categories c JOIN chain ON c.id = chain.parent_id
     WHERE chain.lvl < 64
)
SELECT name, slug FROM chain ORDER BY lvl DESC
"""

TAGS_SQL = """
SELECT t.slug, t.name FROM article_tags l JOIN tags t ON t.id = l.tag_id
 WHERE l.article_id = ? ORDER BY t.name, t.id
"""

# One page more than shown (for hasNextPage); COUNT(*) OVER () is the total before LIMIT.
COMMENTS_SQL = f"""
SELECT c.id, c.body, c.body_html, c.created_at, c.deleted, c.reply_count,
       u.username, u.display_name, COUNT(*) OVER () AS total
  FROM comments c JOIN users u ON u.id = c.author_id
 WHERE c.article_id = ? AND c.parent_id IS NULL
 ORDER BY c.created_at DESC, c.id DESC
 LIMIT {COMMENTS_PAGE + 1}
"""

REPLIES_SQL = f"""
WITH page AS (
    SELECT id FROM comments
     WHERE article_id = ? AND parent_id IS NULL
     ORDER BY created_at DESC, id DESC LIMIT {COMMENTS_PAGE}
)
SELECT * FROM (
    SELECT c.id, c.parent_id, c.body, c.deleted, c.created_at, u.username, u.display_name,
           ROW_NUMBER() OVER (PARTITION BY c.parent_id ORDER BY c.created_at, c.id) AS rn
      FROM comments c JOIN users u ON u.id = c.author_id
     WHERE c.parent_id IN (SELECT id FROM page)
) r WHERE rn <= {REPLIES_PAGE} ORDER BY parent_id, rn
"""

# API.md: most shared tags, then same category, then newest; never itself. Candidates: articles
# sharing a tag or the category, and the newest RELATED + 1 overall.
RELATED_SQL = f"""
WITH cand(other, shared) AS (
    SELECT t2.article_id, 1
      FROM article_tags t1
      JOIN article_tags t2 ON t2.tag_id = t1.tag_id AND t2.article_id <> t1.article_id
     WHERE t1.article_id = ?
    UNION ALL
    SELECT a.id, 0 FROM articles a WHERE a.category_id = ? AND a.id <> ?
    UNION ALL
    SELECT n.id, 0 FROM (SELECT id FROM articles a
                          WHERE a.state = 'PUBLISHED' AND a.published_at <= ?
                          ORDER BY published_at DESC, id DESC LIMIT {RELATED + 1}) n
     WHERE n.id <> ?
), scored AS (
    SELECT other, SUM(shared) AS shared FROM cand GROUP BY other
)
SELECT a.slug, a.title, a.published_at, a.comment_count
  FROM scored sc JOIN articles a ON a.id = sc.other
 WHERE a.state = 'PUBLISHED' AND a.published_at <= ?
 ORDER BY sc.shared DESC, CASE WHEN a.category_id = ? THEN 1 ELSE 0 END DESC,
          a.published_at DESC, a.id DESC
 LIMIT {RELATED}
"""

ARTICLE_MARKETS_SQL = """
SELECT m.id, m.slug, m.question, m.state, m.closes_at, m.resolved_outcome_id, m.liquidity_cents
  FROM market_articles l JOIN markets m ON m.id = l.market_id
 WHERE l.article_id = ? ORDER BY m.created_at DESC, m.id DESC
"""

ARTICLE_OUTCOMES_SQL = """
SELECT o.id, o.market_id, o.label, o.shares_units
  FROM market_articles l JOIN outcomes o ON o.market_id = l.market_id
 WHERE l.article_id = ? ORDER BY o.market_id, o.position
"""

# -- the home feed --------------------------------------------------------------------------

FEATURED_SQL = f"""
SELECT a.slug, a.title, a.excerpt, a.word_count, au.name AS author_name
  FROM articles a JOIN authors au ON au.id = a.author_id
 WHERE a.featured = ? AND a.state = 'PUBLISHED' AND a.published_at <= ?
 ORDER BY a.published_at DESC, a.id DESC LIMIT {FEATURED}
"""

LATEST_SQL = f"""
SELECT a.id, a.slug, a.title, a.published_at, a.comment_count, a.category_id,
       COUNT(*) OVER () AS total
  FROM articles a WHERE a.state = 'PUBLISHED' AND a.published_at <= ?
 ORDER BY a.published_at DESC, a.id DESC LIMIT {LATEST + 1}
"""

LATEST_TAGS_SQL = f"""
SELECT l.article_id, t.slug, t.name FROM article_tags l JOIN tags t ON t.id = l.tag_id
 WHERE l.article_id IN (SELECT id FROM articles a
                         WHERE a.state = 'PUBLISHED' AND a.published_at <= ?
                         ORDER BY published_at DESC, id DESC LIMIT {LATEST})
 ORDER BY t.name, t.id
"""

CATEGORIES_SQL = "SELECT id, parent_id, slug, name, position FROM categories"

# TRENDING: most volume traded in the last 24 hours, then newest.
TRENDING_SQL = f"""
SELECT m.id, m.slug, m.question, m.state, m.closes_at, m.resolved_outcome_id, m.liquidity_cents
  FROM markets m
 ORDER BY (SELECT COALESCE(SUM(ABS(tr.amount_cents)), 0) FROM trades tr
            WHERE tr.market_id = m.id AND tr.created_at > ?) DESC,
          m.created_at DESC, m.id DESC
 LIMIT {MARKETS}
"""


# -- what the API derives from rows ---------------------------------------------------------


def global_id(type_name: str, pk: int) -> str:
    """A Relay global ID: base64 of "Type:pk"."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def as_datetime(value: Any) -> datetime:
    """A stored timestamp (text on SQLite, datetime on PostgreSQL) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: Any) -> str:
    """A stored timestamp as the API's DateTime (ISO 8601, UTC)."""
    return as_datetime(value).isoformat()


def cursor(order: str, moment: Any, pk: int) -> str:
    """A keyset cursor: unpadded URL-safe base64 of ``["ORDER","<ISO time>",id]``."""
    raw = json.dumps([order, iso(moment), int(pk)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def initials(name: str) -> str:
    """First letters of the first and last words: "Oliver Scott" → "OS", "Plato" → "P"."""
    words = [w for w in name.replace("-", " ").split() if w[:1].isalnum()]
    if not words:
        return ""
    if len(words) == 1:
        return words[0][0].upper()
    return (words[0][0] + words[-1][0]).upper()


def reading_time(word_count: int) -> int:
    """Minutes to read ``word_count`` words at 200 a minute, rounded up, at least 1."""
    return max(1, math.ceil(word_count / WORDS_PER_MINUTE))


def market_status(market: dict[str, Any], now: datetime) -> str:
    """The public status: OPEN past ``closes_at`` reads CLOSED."""
    state = str(market["state"])
    if state == "OPEN" and as_datetime(market["closes_at"]) <= now:
        return "CLOSED"
    return state


def probabilities(market: dict[str, Any], outcomes: Sequence[dict[str, Any]]) -> list[float]:
    """LMSR prices p_i = softmax(q/b)_i with b = liquidity / ln n; 1 and 0s once resolved."""
    resolved = market["resolved_outcome_id"]
    if resolved is not None:
        return [1.0 if o["id"] == resolved else 0.0 for o in outcomes]
    if len(outcomes) < 2:
        return [1.0 for _ in outcomes]
    b = market["liquidity_cents"] / 100 / math.log(len(outcomes))
    scaled = [o["shares_units"] / 10_000 / b for o in outcomes]
    top = max(scaled)
    weights = [math.exp(x - top) for x in scaled]
    total = math.fsum(weights)
    return [w / total for w in weights]


def market_list(
    markets: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """``{slug question status outcomes { label probability }}`` per market, in order."""
    by_market: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for o in outcomes:
        by_market[o["market_id"]].append(o)
    answer = []
    for m in markets:
        rows = by_market.get(m["id"], [])
        answer.append(
            {
                "slug": m["slug"],
                "question": m["question"],
                "status": market_status(m, now),
                "outcomes": [
                    {"label": o["label"], "probability": p}
                    for o, p in zip(rows, probabilities(m, rows), strict=True)
                ],
            }
        )
    return answer


# -- the database ---------------------------------------------------------------------------


class Db:
    """The one connection (pool on PostgreSQL) of the process, with ``?`` placeholders."""

    client: BaseDBAsyncClient | None = None
    postgres = False

    @classmethod
    async def open(cls, url: str) -> None:
        if url.startswith("sqlite"):
            config: dict[str, Any] = expand_db_url("sqlite://" + url.split("://", 1)[1])
            config["credentials"].update(
                journal_mode="WAL", journal_size_limit=16384, foreign_keys="ON"
            )
        else:
            cls.postgres = True
            config = expand_db_url("postgres://" + url.split("://", 1)[1])
            config["engine"] = "tortoise.backends.asyncpg"
            timeout = int(os.environ.get("DB_TIMEOUT_SECONDS") or 5)
            config["credentials"].update(
                minsize=1,
                maxsize=int(os.environ.get("DB_POOL_SIZE") or 10),
                timeout=timeout,
                command_timeout=timeout / 2,
            )
        client_class = importlib.import_module(config["engine"]).client_class
        cls.client = client_class(connection_name="default", **config["credentials"])
        await cls.client.create_connection(with_db=True)

    @classmethod
    async def close(cls) -> None:
        if cls.client is not None:
            await cls.client.close()

    @classmethod
    async def rows(cls, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        assert cls.client is not None
        if cls.postgres:
            parts = sql.split("?")
            sql = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        return await cls.client.execute_query_dict(sql, list(params))


# -- the answers ----------------------------------------------------------------------------


def _moment(at: datetime) -> Any:
    """``at`` as the app compares times: a timestamp on PostgreSQL, ISO text (space-separated)
    on SQLite."""
    return at if Db.postgres else at.isoformat(" ")


def _now() -> Any:
    """Now, as a parameter: readers see an article once it is published and its time has come."""
    return _moment(datetime.now(UTC))


async def _article_markets(article_id: int) -> list[dict[str, Any]]:
    markets, outcomes = await asyncio.gather(
        Db.rows(ARTICLE_MARKETS_SQL, [article_id]), Db.rows(ARTICLE_OUTCOMES_SQL, [article_id])
    )
    return market_list(markets, outcomes, datetime.now(UTC))


async def article_page(slug: str) -> dict[str, Any] | None:
    """The ``article`` object of the article-page query, or ``None`` for an unknown slug."""
    found = await Db.rows(ARTICLE_SQL, [slug, _now()])
    if not found:
        return None
    a = found[0]
    article_id, category_id, now = a["id"], a["category_id"], _now()
    crumbs, tags, comments, replies, related, markets = await asyncio.gather(
        Db.rows(BREADCRUMB_SQL, [category_id]),
        Db.rows(TAGS_SQL, [article_id]),
        Db.rows(COMMENTS_SQL, [article_id]),
        Db.rows(REPLIES_SQL, [article_id]),
        Db.rows(
            RELATED_SQL,
            [article_id, category_id, article_id, now, article_id, now, category_id],
        ),
        _article_markets(article_id),
    )

    replies_by_parent: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in replies:
        replies_by_parent[r["parent_id"]].append(
            {
                "id": global_id("Comment", r["id"]),
                "body": "" if r["deleted"] else r["body"],
                "createdAt": iso(r["created_at"]),
                "author": {"username": r["username"], "initials": initials(r["display_name"])},
            }
        )

    edges = []
    for c in comments[:COMMENTS_PAGE]:
        deleted = bool(c["deleted"])
        edges.append(
            {
                "cursor": cursor("NEWEST", c["created_at"], c["id"]),
                "node": {
                    "id": global_id("Comment", c["id"]),
                    "body": "" if deleted else c["body"],
                    "bodyHtml": "" if deleted else c["body_html"],
                    "createdAt": iso(c["created_at"]),
                    "author": {
                        "username": c["username"],
                        "displayName": c["display_name"],
                        "initials": initials(c["display_name"]),
                    },
                    "replyCount": c["reply_count"],
                    "replies": {"nodes": replies_by_parent.get(c["id"], [])},
                },
            }
        )

    return {
        "id": global_id("Article", article_id),
        "slug": a["slug"],
        "title": a["title"],
        "excerpt": a["excerpt"],
        "body": a["body"],
        "publishedAt": iso(a["published_at"]),
        "readingTimeMinutes": reading_time(a["word_count"]),
        "featured": bool(a["featured"]),
        "author": {
            "name": a["author_name"],
            "initials": initials(a["author_name"]),
            "slug": a["author_slug"],
        },
        "breadcrumb": [{"name": row["name"], "slug": row["slug"]} for row in crumbs],
        "tags": [{"slug": row["slug"], "name": row["name"]} for row in tags],
        "commentCount": a["comment_count"],
        "comments": {
            "totalCount": int(comments[0]["total"]) if comments else 0,
            "pageInfo": {
                "hasNextPage": len(comments) > COMMENTS_PAGE,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
            "edges": edges,
        },
        "relatedArticles": [
            {
                "slug": row["slug"],
                "title": row["title"],
                "publishedAt": iso(row["published_at"]),
                "commentCount": row["comment_count"],
            }
            for row in related
        ],
        "markets": markets,
    }


async def _trending_markets() -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    since = now.replace(microsecond=0) - timedelta(days=1)
    markets = await Db.rows(TRENDING_SQL, [_moment(since)])
    outcomes: list[dict[str, Any]] = []
    if markets:
        marks = ", ".join("?" for _ in markets)
        outcomes = await Db.rows(
            f"SELECT id, market_id, label, shares_units FROM outcomes "
            f"WHERE market_id IN ({marks}) ORDER BY market_id, position",
            [m["id"] for m in markets],
        )
    return market_list(markets, outcomes, now)


async def home() -> dict[str, Any]:
    """The ``data`` of README's Home query."""
    now = _now()
    featured, latest, tags, categories, markets = await asyncio.gather(
        Db.rows(FEATURED_SQL, [True, now]),
        Db.rows(LATEST_SQL, [now]),
        Db.rows(LATEST_TAGS_SQL, [now]),
        Db.rows(CATEGORIES_SQL),
        _trending_markets(),
    )
    tags_by_article: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in tags:
        tags_by_article[row["article_id"]].append({"slug": row["slug"], "name": row["name"]})
    # The app orders the tree by (position, name, id) in Python, not by the database's collation.
    categories.sort(key=lambda c: (c["position"], c["name"], c["id"]))
    by_id = {c["id"]: c for c in categories}
    children: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    for c in categories:
        children[c["parent_id"]].append(c)

    edges = [
        {
            "cursor": cursor("NEWEST", a["published_at"], a["id"]),
            "node": {
                "slug": a["slug"],
                "title": a["title"],
                "publishedAt": iso(a["published_at"]),
                "commentCount": a["comment_count"],
                "category": {
                    "name": by_id[a["category_id"]]["name"],
                    "slug": by_id[a["category_id"]]["slug"],
                },
                "tags": tags_by_article.get(a["id"], []),
            },
        }
        for a in latest[:LATEST]
    ]
    return {
        "featured": {
            "nodes": [
                {
                    "slug": a["slug"],
                    "title": a["title"],
                    "excerpt": a["excerpt"],
                    "readingTimeMinutes": reading_time(a["word_count"]),
                    "author": {"name": a["author_name"], "initials": initials(a["author_name"])},
                }
                for a in featured
            ]
        },
        "latest": {
            "totalCount": int(latest[0]["total"]) if latest else 0,
            "pageInfo": {
                "hasNextPage": len(latest) > LATEST,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
            "edges": edges,
        },
        "categories": [
            {
                "slug": c["slug"],
                "name": c["name"],
                "children": [{"slug": k["slug"], "name": k["name"]} for k in children[c["id"]]],
            }
            for c in children[None]
        ],
        "markets": {"nodes": markets},
    }


# -- the application ------------------------------------------------------------------------


async def article_page_endpoint(request: Request) -> Response:
    try:
        payload = await request.json()
        slug = payload["slug"]
        if not isinstance(slug, str):
            raise TypeError(slug)
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": 'expected a JSON body {"slug": "..."}'}, status_code=400)
    return JSONResponse({"data": {"article": await article_page(slug)}})


async def home_endpoint(request: Request) -> Response:
    return JSONResponse({"data": await home()})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app(database_url: str | None = None) -> Starlette:
    """The baseline application on ``database_url`` (default: ``DATABASE_URL``)."""
    url = database_url or os.environ.get("DATABASE_URL") or "sqlite://agora.sqlite3"

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await Db.open(url)
        try:
            yield
        finally:
            await Db.close()

    routes = [
        Route("/article-page", article_page_endpoint, methods=["POST"]),
        Route("/home", home_endpoint, methods=["POST"]),
        Route("/healthz", healthz),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
