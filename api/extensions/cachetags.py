"""What a response read, as version tags: the response cache's vocabulary, read side and write
side in one place so the two can't drift apart.

A cached response depends on the tags its execution read. They come from two places, and every
load must be declared, or the response is not cached (fail safe):

- every DataLoader load (``api.core.dataloader`` calls :meth:`TagRecorder.loaded` for each):
  :data:`LOADER_TAGS` maps the loader's attribute name to a function of (key, value);
- every root field of the operation: :data:`ROOT_TAGS` (``None``: never cached).

The write side: :func:`event_tags` maps each domain event (published after every commit) to the
tags it bumps. The vocabulary:

- ``article:<id>``: the article row (its ``comment_count``) and every comment on it (rows,
  threads, replies, counts); bumped by any comment change on that article.
- ``comments``: any comment anywhere (lists not keyed by article).
- ``market:<id>``: the market row, its outcomes, trades, price history; bumped by a trade,
  the market's creation or its settlement.
- ``markets``: which markets exist and their order by volume; bumped by every market event.
- ``market-links``: which articles and tags a market is linked to (set at a market's creation,
  and by updateArticle's marketIds).
- ``trading``: positions and trade lists of users (any trade or settlement).
- ``news``: articles, bylines and tags as readers see them (which articles exist and are
  visible, their content, counts and lists); bumped by every newsroom write (``news.events``),
  which bumps ``article:<id>`` too.

Categories change only through the demo loader and scripts: they carry no tag (the cache's
epoch covers a flush). A market's status also follows the clock (OPEN → CLOSED at
``closesAt``): a loaded open market makes its response expire at that time. So does a scheduled
article's publication: a response that read ``news`` expires when the next scheduled article
goes live (``app.response_cache``), and the scheduler bumps ``news`` then too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from api.core.pagination import Page, Source
from comments.events import CommentChanged
from db import models
from domain_events import Event
from markets.events import OddsChanged
from news.events import ArticleChanged, AuthorChanged

# A tag function: (key, value) → the tags, or None when the value can't be cached.
TagFunction = Callable[["TagRecorder", Any, Any], "tuple[str, ...] | None"]


class TagRecorder:
    """The tags one execution read (hung on its loaders' budget while a cache miss executes):
    the set, whether anything undeclared was read, and when the answer stops being right by
    the clock alone."""

    def __init__(self, now: datetime) -> None:
        self.tags: set[str] = set()
        self.uncacheable: str | None = None
        self.now = now
        self.expires_at: datetime | None = None
        # Comments seen: id → article, so an empty replies page still knows its article.
        self.comment_articles: dict[int, int] = {}

    def refuse(self, why: str) -> None:
        """Mark the response as never cacheable (the first reason is kept)."""
        if self.uncacheable is None:
            self.uncacheable = why

    def expire(self, at: datetime) -> None:
        """The response stops being right at ``at`` (a market closing)."""
        if self.expires_at is None or at < self.expires_at:
            self.expires_at = at

    def loaded(self, loader: object, key: Any, future: Any) -> None:
        """One load: its tags once it resolved (now when it already has)."""
        # Its attribute name on the loaders (``lazy_loader`` names each one it makes).
        name = getattr(loader, "name", None)
        function = LOADER_TAGS.get(name or "")
        if function is None:
            self.refuse(f"loader {name or loader!r} declares no cache tags")
            return

        def done(fut: Any) -> None:
            if fut.cancelled() or fut.exception() is not None:
                self.refuse("a load failed")
                return
            tags = function(self, key, fut.result())
            if tags is None:
                self.refuse(f"loader {name} is not cacheable for this key")
            else:
                self.tags.update(tags)

        if future.done():
            done(future)
        else:
            future.add_done_callback(done)

    # -- helpers the tag functions share ----------------------------------------------------

    def market_row(self, row: models.Market) -> str:
        """``market:<id>``; an open market's response expires at its closing time."""
        state = getattr(row.state, "value", row.state)
        closes = row.closes_at
        if closes.tzinfo is None:
            closes = closes.replace(tzinfo=UTC)
        if state == "OPEN" and closes > self.now:
            self.expire(closes)
        return f"market:{row.id}"

    def comment_row(self, row: models.Comment) -> str:
        """``article:<id>`` of a comment's article (remembered for its replies)."""
        self.comment_articles[row.id] = row.article_id
        return f"article:{row.article_id}"


def _news(rec: TagRecorder, key: Any, value: Any) -> tuple[str, ...]:
    return ("news",)


def _article(rec: TagRecorder, key: Any, value: Any) -> tuple[str, ...] | None:
    # A miss (an unknown slug or id) is a miss until a newsroom write.
    return ("news",) if value is None else ("news", f"article:{value.id}")


def _articles(rec: TagRecorder, key: Any, value: Any) -> tuple[str, ...]:
    return ("news", *(f"article:{row.id}" for row in value))


def _comment(rec: TagRecorder, key: Any, value: Any) -> tuple[str, ...]:
    return ("comments",) if value is None else (rec.comment_row(value),)


def _market(rec: TagRecorder, key: Any, value: Any) -> tuple[str, ...]:
    return ("markets",) if value is None else (rec.market_row(value),)


def _markets(rec: TagRecorder, key: Any, value: Any) -> tuple[str, ...]:
    return ("market-links", *(rec.market_row(row) for row in value))


def _by_market_key(rec: TagRecorder, key: Any, value: Any) -> tuple[str, ...]:
    market_id = key[0] if isinstance(key, tuple) else key
    return (f"market:{market_id}",)


def _market_links(rec: TagRecorder, key: Any, value: Any) -> tuple[str, ...]:
    return ("market-links", f"market:{key}", *(f"article:{row.id}" for row in value))


def _outcome(rec: TagRecorder, key: Any, value: Any) -> tuple[str, ...]:
    return ("markets",) if value is None else (f"market:{value.market_id}",)


def _trade(rec: TagRecorder, key: Any, value: Any) -> tuple[str, ...]:
    return ("trading",) if value is None else (f"market:{value.market_id}",)


def _user(rec: TagRecorder, key: Any, value: Any) -> tuple[str, ...] | None:
    # Profiles change through no API write; a user that doesn't exist yet may (sign-up).
    return None if value is None else ()


def _never(rec: TagRecorder, key: Any, value: Any) -> None:
    return None


def _source_tags(rec: TagRecorder, parent: Any, source: Source, spec: Any, value: Any) -> Any:
    """The tags of one list (a page, or a count when ``value`` is None) by its source's model."""
    model = source.model
    rows = value.rows if isinstance(value, Page) else []
    if model is models.Comment:
        tags = [rec.comment_row(row) for row in rows]
        if source.parent == "c.article_id":
            tags.append(f"article:{parent}")
        elif source.parent == "c.parent_id" and parent in rec.comment_articles:
            tags.append(f"article:{rec.comment_articles[parent]}")
        elif source.parent == "c.author_id":
            # A profile's comments: any comment, and which articles readers see.
            tags.extend(("comments", "news"))
        else:
            tags.append("comments")
        return tuple(tags)
    if model is models.Article:
        tags = ["news", *(f"article:{row.id}" for row in rows)]
        if spec is not None and spec.ordering.name == "MOST_COMMENTED":
            tags.append("comments")
        return tuple(tags)
    if model in (models.Author, models.Tag):
        return ("news",)
    if model is models.Market:
        if any(isinstance(p, datetime) for _, params in source.where for p in params):
            return None  # a status filter against the clock
        if spec is not None and spec.ordering.name in ("TRENDING", "CLOSING_SOON"):
            return None  # an order against the clock
        return ("markets", "market-links", *(rec.market_row(row) for row in rows))
    if model is models.Trade:
        if source.parent == "t.market_id":
            return (f"market:{parent}",)
        return ("trading",)
    if model is models.Position:
        return ("trading",)
    return None


def _page(rec: TagRecorder, key: Any, value: Any) -> Any:
    parent, spec = key
    return _source_tags(rec, parent, spec.source, spec, value)


def _count(rec: TagRecorder, key: Any, value: Any) -> Any:
    parent, source = key
    return _source_tags(rec, parent, source, None, None)


LOADER_TAGS: dict[str, TagFunction] = {
    "page_by_parent": _page,
    "count_by_parent": _count,
    "author_by_id": _news,
    "author_by_slug": _news,
    "author_by_user": _news,
    "author_shown": _news,
    "article_by_id": _article,
    "article_by_slug": _article,
    "article_slug_by_slug": _news,
    "html_by_article": _news,
    "tag_by_id": _news,
    "tag_by_slug": _news,
    "tags_by_article": _news,
    "related_articles_by_article": _articles,
    "comment_by_id": _comment,
    "market_by_id": _market,
    "market_by_slug": _market,
    "outcome_by_id": _outcome,
    "outcomes_by_market": _by_market_key,
    "markets_by_article": _markets,
    "articles_by_market": _market_links,
    "tags_by_market": lambda rec, key, value: ("market-links",),
    "trade_by_id": _trade,
    "price_history_by_market": _by_market_key,
    # Only the viewer's own positions and balance read these: never shared.
    "positions_by_user_market": _never,
    "balance_by_user": _never,
    "user_by_id": _user,
    "user_by_username": _user,
    # Profits and ranks: every position valued at its market's prices.
    "ranking_by_scope": lambda rec, key, value: ("trading", "markets"),
}
"""Every loader of ``api.loaders.Loaders`` → its tag function; a loader missing here makes any
response that uses it uncacheable (``tests/http/test_response_cache.py`` lists the gaps)."""

ROOT_TAGS: dict[str, tuple[str, ...] | None] = {
    "__typename": (),
    "node": (),
    "nodes": (),
    "article": (),
    "articles": (),
    "author": (),
    "authors": (),
    "tag": (),
    "tags": (),
    "category": (),
    "categories": (),
    "market": (),
    "markets": (),
    "user": (),
    # Reads articles and markets with its own statements; ranks move with either.
    "search": ("news", "markets"),
    # Reads the ranking (``ranking_by_scope``) and the users on it.
    "leaderboard": (),
    # openMarketCount follows the clock; quote is a preview against the clock and the viewer's
    # limits; me and the moderation queue depend on the viewer.
    "stats": None,
    "quote": None,
    "me": None,
    "reportedComments": None,
}
"""Each root query field → the tags it reads beside its loads (None: never cached); a root
field missing here is never cached."""


def event_tags(event: Event) -> tuple[str, ...]:
    """The tags a committed change bumps (before its mutation answers)."""
    match event:
        case CommentChanged():
            return (f"article:{event.article_id}", "comments")
        case ArticleChanged():
            article = f"article:{event.article_id}"
            if event.kind == "edited" and not (event.was_visible or event.visible_from):
                # A draft edited (autosaves): no reader's answer had it, nor will have it now;
                # only its editors' (never cached) and its own lookups (article:<id>).
                return (article, "market-links") if event.links_changed else (article,)
            news = ("news", article)
            return (*news, "market-links") if event.links_changed else news
        case AuthorChanged():
            return ("news",)
        case OddsChanged():
            tags = (f"market:{event.market_id}", "markets", "trading")
            if event.seq == 0 and event.trade_id is None:
                # A new market: the articles and tags it is linked to list it now.
                return (*tags, "market-links")
            return tags
    return ()
