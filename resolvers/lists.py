"""The lists of the graph as (Source, Ordering) specs: filters and orders, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from db import models
from db.sql import is_postgres, like_pattern
from resolvers.pagination import Join, Ordering, SortKey, Source
from schema.errors import BadUserInput

MAX_SEARCH_LENGTH = 200
_DAY = timedelta(days=1)


def _by_time(name: str, prefix: str, column: str, desc: bool) -> Ordering:
    return Ordering(
        name,
        (SortKey(f"{prefix}.{column}", "datetime", desc), SortKey(f"{prefix}.id", "int", desc)),
    )


ARTICLE_ORDERS = {
    "NEWEST": _by_time("NEWEST", "a", "published_at", True),
    "OLDEST": _by_time("OLDEST", "a", "published_at", False),
    "MOST_COMMENTED": Ordering(
        "MOST_COMMENTED",
        (
            SortKey("a.comment_count", "int", True),
            SortKey("a.published_at", "datetime", True),
            SortKey("a.id", "int", True),
        ),
    ),
}

COMMENT_ORDERS = {
    "NEWEST": _by_time("NEWEST", "c", "created_at", True),
    "OLDEST": _by_time("OLDEST", "c", "created_at", False),
    "TOP": Ordering(
        "TOP",
        (
            SortKey("c.reply_count", "int", True),
            SortKey("c.created_at", "datetime", True),
            SortKey("c.id", "int", True),
        ),
    ),
}
REPLIES_ORDER = _by_time("OLDEST", "c", "created_at", False)

AUTHORS_ORDER = Ordering("NAME", (SortKey("au.name", "str", False), SortKey("au.id", "int", False)))
TAGS_ORDER = Ordering("NAME", (SortKey("t.name", "str", False), SortKey("t.id", "int", False)))

ARTICLES = Source(models.Article, "articles a", "a")
ARTICLES_BY_AUTHOR = Source(models.Article, "articles a", "a", parent="a.author_id")
ARTICLES_BY_TAG = Source(
    models.Article, "articles a JOIN article_tags l ON l.article_id = a.id", "a", parent="l.tag_id"
)
# A category's articles are those of its whole subtree: paths are "/root/…/self/".
ARTICLES_BY_CATEGORY = Source(
    models.Article,
    "articles a JOIN categories c ON c.id = a.category_id "
    "JOIN categories anc ON c.path LIKE anc.path || '%'",
    "a",
    parent="anc.id",
)
# Comment authors come with the page (see Join): a thread costs no query per author.
_COMMENT_AUTHOR = Join("u", models.User, "u.id = c.author_id", "user_by_id")
TOP_LEVEL_COMMENTS = Source(
    models.Comment,
    "comments c",
    "c",
    where=(("c.parent_id IS NULL", ()),),
    parent="c.article_id",
    joins=(_COMMENT_AUTHOR,),
)
REPORTED_COMMENTS = Source(
    models.Comment,
    "comments c",
    "c",
    where=(("c.report_count > 0 AND c.deleted = ?", (False,)),),
    joins=(_COMMENT_AUTHOR,),
)
REPORTED_ORDER = Ordering(
    "REPORTED",
    (
        SortKey("c.report_count", "int", True),
        SortKey("c.created_at", "datetime", True),
        SortKey("c.id", "int", True),
    ),
)
REPLIES = Source(models.Comment, "comments c", "c", parent="c.parent_id", joins=(_COMMENT_AUTHOR,))
TRADES_ORDER = _by_time("NEWEST", "t", "created_at", True)
TRADES_BY_MARKET = Source(models.Trade, "trades t", "t", parent="t.market_id")
TRADES_BY_USER = Source(models.Trade, "trades t", "t", parent="t.user_id")
# Positions that hold shares or have realised something, most recently opened first.
POSITIONS_ORDER = Ordering("NEWEST", (SortKey("p.id", "int", True),))
POSITIONS_BY_USER = Source(
    models.Position,
    "positions p",
    "p",
    where=(("(p.shares_units <> 0 OR p.realized_cents <> 0)", ()),),
    parent="p.user_id",
)
AUTHORS = Source(models.Author, "authors au", "au")
TAGS = Source(models.Tag, "tags t", "t")
MARKETS_BY_TAG = Source(
    models.Market, "markets m JOIN market_tags l ON l.market_id = m.id", "m", parent="l.tag_id"
)


def _search_terms(search: str | None) -> str | None:
    if search is None:
        return None
    text = search.strip()
    if len(text) > MAX_SEARCH_LENGTH:
        raise BadUserInput(f"`search` is at most {MAX_SEARCH_LENGTH} characters.", field="search")
    return text or None


def _search_clause(columns: list[str], search: str) -> tuple[str, tuple[Any, ...]]:
    pattern = like_pattern(search)
    sql = " OR ".join(f"LOWER({column}) LIKE ? ESCAPE '\\'" for column in columns)
    return f"({sql})", tuple(pattern for _ in columns)


@dataclass(frozen=True)
class ArticleFilterValues:
    """ArticleFilter's fields as plain values."""

    category_slug: str | None = None
    tag_slug: str | None = None
    author_slug: str | None = None
    featured: bool | None = None
    search: str | None = None


def articles_source(flt: ArticleFilterValues | None) -> Source:
    """All articles matching the filter (an unknown slug matches nothing)."""
    if flt is None:
        return ARTICLES
    where: list[tuple[str, tuple[Any, ...]]] = []
    if flt.category_slug is not None:
        where.append(
            (
                "a.category_id IN (SELECT c.id FROM categories c JOIN categories root "
                "ON c.path LIKE root.path || '%' WHERE root.slug = ?)",
                (flt.category_slug,),
            )
        )
    if flt.tag_slug is not None:
        where.append(
            (
                "a.id IN (SELECT l.article_id FROM article_tags l JOIN tags t ON t.id = l.tag_id "
                "WHERE t.slug = ?)",
                (flt.tag_slug,),
            )
        )
    if flt.author_slug is not None:
        where.append(("a.author_id IN (SELECT id FROM authors WHERE slug = ?)", (flt.author_slug,)))
    if flt.featured is not None:
        where.append(("a.featured = ?", (flt.featured,)))
    search = _search_terms(flt.search)
    if search is not None:
        where.append(_search_clause(["a.title", "a.excerpt", "a.body"], search))
    return Source(models.Article, "articles a", "a", where=tuple(where))


def time_literal(moment: datetime) -> str:
    """``moment`` as an SQL literal comparable with stored timestamps (ours, never user text)."""
    if is_postgres():
        return f"CAST('{moment.isoformat()}' AS TIMESTAMPTZ)"
    return f"'{moment.isoformat(' ')}'"


def market_orders(name: str, now: datetime) -> Ordering:
    """The ordering for MarketOrder ``name`` at time ``now``."""
    if name == "NEWEST":
        return _by_time("NEWEST", "m", "created_at", True)
    if name == "VOLUME":
        return Ordering(
            "VOLUME", (SortKey("m.volume_cents", "bigint", True), SortKey("m.id", "int", True))
        )
    now_sql = time_literal(now)
    if name == "CLOSING_SOON":
        # Markets still open come first, soonest close first; closed and settled ones follow.
        return Ordering(
            "CLOSING_SOON",
            (
                SortKey(
                    f"CASE WHEN m.state = 'OPEN' AND m.closes_at > {now_sql} THEN 0 ELSE 1 END",
                    "int",
                    False,
                ),
                SortKey("m.closes_at", "datetime", False),
                SortKey("m.id", "int", False),
            ),
        )
    if name == "TRENDING":
        since = time_literal(now.replace(microsecond=0) - _DAY)
        volume_24h = (
            "(SELECT COALESCE(SUM(ABS(tr.amount_cents)), 0) FROM trades tr "
            f"WHERE tr.market_id = m.id AND tr.created_at > {since})"
        )
        return Ordering(
            "TRENDING",
            (
                SortKey(volume_24h, "bigint", True),
                SortKey("m.created_at", "datetime", True),
                SortKey("m.id", "int", True),
            ),
        )
    raise BadUserInput(f"Unknown market order {name!r}.")


@dataclass(frozen=True)
class MarketFilterValues:
    """MarketFilter's fields as plain values."""

    status: str | None = None
    tag_slug: str | None = None
    search: str | None = None


def markets_source(flt: MarketFilterValues | None, now: datetime) -> Source:
    """All markets matching the filter; CLOSED means OPEN but past its closing time."""
    where: list[tuple[str, tuple[Any, ...]]] = []
    if flt is not None:
        if flt.status == "OPEN":
            where.append(("(m.state = 'OPEN' AND m.closes_at > ?)", (now,)))
        elif flt.status == "CLOSED":
            where.append(("(m.state = 'OPEN' AND m.closes_at <= ?)", (now,)))
        elif flt.status is not None:
            where.append(("m.state = ?", (flt.status,)))
        if flt.tag_slug is not None:
            where.append(
                (
                    "m.id IN (SELECT l.market_id FROM market_tags l JOIN tags t "
                    "ON t.id = l.tag_id WHERE t.slug = ?)",
                    (flt.tag_slug,),
                )
            )
        search = _search_terms(flt.search)
        if search is not None:
            where.append(_search_clause(["m.question", "m.description"], search))
    return Source(models.Market, "markets m", "m", where=tuple(where))
