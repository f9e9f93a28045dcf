"""The article page without GraphQL: a baseline for ``bench.article_page``.

``POST /article-page`` with ``{"slug": ...}`` answers exactly what the article-page query of
API.md answers (``{"data": {"article": {...}}}``), from a handful of hand-written statements run
through the same Tortoise connection, with the project's own helpers for IDs, cursors, initials,
reading time and market odds. Run it with
``DATABASE_URL=... uvicorn bench.handwritten:create_app --factory``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tortoise.contrib.starlette import RegisterTortoise

from api.accounts.types import initials
from api.comments.lists import COMMENT_ORDERS, REPLIES_ORDER
from api.core.node import to_global_id
from api.core.pagination import encode_cursor
from api.markets.types import market_status, outcome_types
from api.news.loaders import related_articles
from api.news.types import reading_time
from db import models
from db.config import tortoise_config
from db.sql import fetch_dicts
from settings import Settings, load_settings

COMMENTS_PAGE = 10
REPLIES_PAGE = 5
RELATED = 5
NEWEST = COMMENT_ORDERS["NEWEST"]
# The hand-written SQL below hard-codes these orders; fail loudly if the project changes them.
assert [(k.expr, k.desc) for k in NEWEST.keys] == [("c.created_at", True), ("c.id", True)]
assert [(k.expr, k.desc) for k in REPLIES_ORDER.keys] == [("c.created_at", False), ("c.id", False)]

ARTICLE_SQL = """
SELECT a.id, a.slug, a.title, a.excerpt, a.body, a.published_at, a.word_count, a.featured,
       a.comment_count, a.category_id, au.name AS author_name, au.slug AS author_slug
  FROM articles a JOIN authors au ON au.id = a.author_id
 WHERE a.slug = ?
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

MARKETS_SQL = """
SELECT m.* FROM market_articles l JOIN markets m ON m.id = l.market_id
 WHERE l.article_id = ? ORDER BY m.created_at DESC, m.id DESC
"""

OUTCOMES_SQL = """
SELECT o.* FROM market_articles l JOIN outcomes o ON o.market_id = l.market_id
 WHERE l.article_id = ? ORDER BY o.market_id, o.position
"""


def iso(value: Any) -> str:
    """A stored timestamp (text on SQLite, datetime on PostgreSQL) as UTC ISO 8601."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC).isoformat()
    return value.astimezone(UTC).isoformat()


def _comment_author(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "username": row["username"],
        "displayName": row["display_name"],
        "initials": initials(row["display_name"]),
    }


async def _markets(article_id: int) -> list[dict[str, Any]]:
    """The article's markets with their outcomes and odds."""
    markets, outcomes = await asyncio.gather(
        fetch_dicts(MARKETS_SQL, [article_id]), fetch_dicts(OUTCOMES_SQL, [article_id])
    )
    outcome_rows: dict[int, list[models.Outcome]] = defaultdict(list)
    for o in outcomes:
        outcome_rows[o["market_id"]].append(models.Outcome._init_from_db(**o))
    market_list = []
    for m in markets:
        market = models.Market._init_from_db(**m)
        market_list.append(
            {
                "slug": market.slug,
                "question": market.question,
                "status": market_status(market).name,
                "outcomes": [
                    {"label": o.label, "probability": o.probability}
                    for o in outcome_types(market, outcome_rows.get(market.id, []))
                ],
            }
        )
    return market_list


async def article_page(slug: str) -> dict[str, Any] | None:
    """The ``article`` object of the article-page query, or ``None`` for an unknown slug."""
    found = await fetch_dicts(ARTICLE_SQL, [slug])
    if not found:
        return None
    a = found[0]
    article_id = a["id"]
    crumbs, tags, comments, replies, related, market_list = await asyncio.gather(
        fetch_dicts(BREADCRUMB_SQL, [a["category_id"]]),
        fetch_dicts(TAGS_SQL, [article_id]),
        fetch_dicts(COMMENTS_SQL, [article_id]),
        fetch_dicts(REPLIES_SQL, [article_id]),
        related_articles([article_id], RELATED),
        _markets(article_id),
    )

    replies_by_parent: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in replies:
        deleted = bool(r["deleted"])
        replies_by_parent[r["parent_id"]].append(
            {
                "id": to_global_id("Comment", r["id"]),
                "body": "" if deleted else r["body"],
                "createdAt": iso(r["created_at"]),
                "author": {"username": r["username"], "initials": initials(r["display_name"])},
            }
        )

    edges = []
    for c in comments[:COMMENTS_PAGE]:
        deleted = bool(c["deleted"])
        edges.append(
            {
                "cursor": encode_cursor(NEWEST, [c["created_at"], c["id"]]),
                "node": {
                    "id": to_global_id("Comment", c["id"]),
                    "body": "" if deleted else c["body"],
                    "bodyHtml": "" if deleted else c["body_html"],
                    "createdAt": iso(c["created_at"]),
                    "author": _comment_author(c),
                    "replyCount": c["reply_count"],
                    "replies": {"nodes": replies_by_parent.get(c["id"], [])},
                },
            }
        )

    return {
        "id": to_global_id("Article", article_id),
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
                "slug": row.slug,
                "title": row.title,
                "publishedAt": row.published_at.isoformat(),
                "commentCount": row.comment_count,
            }
            for row in related[article_id]
        ],
        "markets": market_list,
    }


async def article_page_endpoint(request: Request) -> Response:
    try:
        payload = await request.json()
        slug = payload["slug"]
        if not isinstance(slug, str):
            raise TypeError(slug)
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": 'expected a JSON body {"slug": "..."}'}, status_code=400)
    return JSONResponse({"data": {"article": await article_page(slug)}})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app(settings: Settings | None = None) -> Starlette:
    """The baseline application for ``settings`` (read from the environment by default)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with RegisterTortoise(app, config=tortoise_config(settings)):
            yield

    routes = [
        Route("/article-page", article_page_endpoint, methods=["POST"]),
        Route("/healthz", healthz),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
