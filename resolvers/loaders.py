"""Per-request DataLoaders: every relation of the graph is one batched query.

One loader per relation, named ``<thing>_by_<key>``, one result per key (``None`` or ``[]`` on a
miss). Connection loaders take ``(parent, ListSpec)`` keys and answer all parents that share a
spec with one windowed statement (see ``resolvers.pagination``).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from db import models
from db.sql import fetch_dicts, placeholders
from markets.ledger import balances_of_users
from resolvers.pagination import Ordering, Page, PageRequest, Source, count_rows, fetch_pages
from schema.errors import ResponseTooLarge

M = TypeVar("M", bound=Model)
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class ListSpec:
    """Everything about a list but its parent: where rows come from, their order, the page."""

    source: Source
    ordering: Ordering
    request: PageRequest


def _by_field(model: type[M], field: str) -> Callable[[list[Any]], Awaitable[list[M | None]]]:
    # A key longer than the column matches nothing (and Tortoise refuses to send it).
    max_length = getattr(model._meta.fields_map[field], "max_length", None)

    async def load(keys: list[Any]) -> list[M | None]:
        wanted = {k for k in keys if max_length is None or len(k) <= max_length}
        rows = await model.filter(**{f"{field}__in": list(wanted)}) if wanted else []
        found = {getattr(row, field): row for row in rows}
        return [found.get(key) for key in keys]

    return load


def _grouped(keys: Sequence[Any], pairs: Iterable[tuple[Any, Any]]) -> list[list[Any]]:
    groups: dict[Any, list[Any]] = defaultdict(list)
    for key, value in pairs:
        groups[key].append(value)
    return [groups.get(key, []) for key in keys]


class CategoryTree:
    """The whole category tree, loaded once per request (a news site has hundreds at most)."""

    def __init__(self, categories: Sequence[models.Category]) -> None:
        ordered = sorted(categories, key=lambda c: (c.position, c.name, c.id))
        self.by_id = {c.id: c for c in ordered}
        self.by_slug = {c.slug: c for c in ordered}
        self.children: dict[int | None, list[models.Category]] = defaultdict(list)
        for category in ordered:
            self.children[category.parent_id].append(category)

    def breadcrumb(self, category_id: int) -> list[models.Category]:
        """Root → the category itself."""
        trail: list[models.Category] = []
        node = self.by_id.get(category_id)
        while node is not None and len(trail) < 64:
            trail.append(node)
            node = None if node.parent_id is None else self.by_id.get(node.parent_id)
        trail.reverse()
        return trail


class ResponseBudget:
    """How many objects loaders may hand to one response (cache hits included: one article id
    asked for 100 times under 30 aliases is one row but 3,000 objects to render)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0

    def error(self) -> ResponseTooLarge:
        """What the response becomes once over the budget."""
        return ResponseTooLarge(
            f"The response would hold more than {self.limit} objects. Ask for less.",
            limit="responseObjects",
        )

    @property
    def exceeded(self) -> bool:
        """Whether the response has been handed more objects than its limit."""
        return self.limit is not None and self.used > self.limit

    def spend(self, future: asyncio.Future[Any]) -> None:
        """Count what a load resolved to: a list's items, a page's rows, else one object."""
        if future.cancelled() or future.exception() is not None:
            return
        value = future.result()
        if isinstance(value, list):
            self.used += len(value)
        elif isinstance(value, Page):
            self.used += len(value.rows)
        else:
            self.used += 1


T = TypeVar("T")


class CountingDataLoader(DataLoader[K, T]):
    """A DataLoader that counts what it hands out against a ResponseBudget; once over it, every
    further load fails at once, so execution winds down instead of building the response."""

    budget: ResponseBudget

    def load(self, key: K) -> Awaitable[T]:
        """DataLoader's load, counted; refused at once when the budget is spent."""
        if self.budget.exceeded:
            failed: asyncio.Future[T] = self.loop.create_future()
            failed.set_exception(self.budget.error())
            return failed
        future = cast("asyncio.Future[T]", super().load(key))
        # A callback, not a wrapping coroutine: loads are the hot path of every page.
        if future.done():
            self.budget.spend(future)
        else:
            future.add_done_callback(self.budget.spend)
        return future


class Loaders:
    """All loaders of one request (or one subscription event): a fresh cache each time.

    ``max_objects`` bounds what one response may load (None: no bound, for subscription events,
    whose size the document limits already bound).
    """

    def __init__(self, max_objects: int | None = None) -> None:
        self.budget = ResponseBudget(max_objects)
        # Every relation is one loader counted against the budget.
        self.user_by_id = self._loader(_by_field(models.User, "id"))
        self.author_by_id = self._loader(_by_field(models.Author, "id"))
        self.author_by_slug = self._loader(_by_field(models.Author, "slug"))
        self.author_by_user = self._loader(_by_field(models.Author, "user_id"))
        self.article_by_id = self._loader(_by_field(models.Article, "id"))
        self.article_by_slug = self._loader(_by_field(models.Article, "slug"))
        self.tag_by_id = self._loader(_by_field(models.Tag, "id"))
        self.tag_by_slug = self._loader(_by_field(models.Tag, "slug"))
        self.comment_by_id = self._loader(_by_field(models.Comment, "id"))
        self.market_by_id = self._loader(_by_field(models.Market, "id"))
        self.market_by_slug = self._loader(_by_field(models.Market, "slug"))
        self.outcome_by_id = self._loader(_by_field(models.Outcome, "id"))
        self.outcomes_by_market = self._loader(self._outcomes_by_market)
        self.tags_by_article = self._loader(self._tags_by_article)
        self.markets_by_article = self._loader(self._markets_by_article)
        self.articles_by_market = self._loader(self._articles_by_market)
        self.tags_by_market = self._loader(self._tags_by_market)
        self.related_articles_by_article = self._loader(self._related_articles)
        self.page_by_parent: CountingDataLoader[tuple[Any, ListSpec], Page[Any]] = self._loader(
            self._pages
        )
        self.count_by_parent: CountingDataLoader[tuple[Any, Source], int] = self._loader(
            self._counts
        )
        self.balance_by_user = self._loader(self._balances)
        self.trade_by_id = self._loader(_by_field(models.Trade, "id"))
        self.positions_by_user_market = self._loader(self._positions_by_user_market)
        self.price_history_by_market = self._loader(self._price_history)
        self._tree: CategoryTree | None = None

    def _loader(
        self, load_fn: Callable[[list[Any]], Awaitable[Any]]
    ) -> CountingDataLoader[Any, Any]:
        loader: CountingDataLoader[Any, Any] = CountingDataLoader(load_fn)
        loader.budget = self.budget
        return loader

    async def category_tree(self) -> CategoryTree:
        """The category tree, from one query the first time it is needed in this request."""
        if self._tree is None:
            self._tree = CategoryTree(await models.Category.all())
        return self._tree

    async def _balances(self, keys: list[int]) -> list[int | None]:
        found = await balances_of_users(list(set(keys)))
        return [found.get(key) for key in keys]

    async def _positions_by_user_market(
        self, keys: list[tuple[int, int]]
    ) -> list[list[models.Position]]:
        users = list({u for u, _ in keys})
        markets = list({m for _, m in keys})
        rows = await models.Position.filter(
            user_id__in=users, market_id__in=markets, shares_units__gt=0
        ).order_by("outcome_id")
        return _grouped(keys, (((r.user_id, r.market_id), r) for r in rows))

    async def _price_history(
        self, keys: list[tuple[int, int, int]]
    ) -> list[list[models.PricePoint]]:
        # (market, since epoch, bucket seconds): the last point of each bucket, the latest 1000
        # buckets per market; one statement for all markets asking the same since and bucket.
        by_window: dict[tuple[int, int], list[int]] = defaultdict(list)
        for market_id, since, bucket in keys:
            by_window[(since, bucket)].append(market_id)
        found: dict[tuple[int, int, int], list[models.PricePoint]] = {}
        for (since, bucket), market_ids in by_window.items():
            unique = list(set(market_ids))
            rows = await fetch_dicts(
                "SELECT * FROM (SELECT p.*, ROW_NUMBER() OVER "
                "(PARTITION BY p.market_id ORDER BY p.id DESC) AS _rn FROM price_points p "
                "JOIN (SELECT MAX(id) AS id FROM price_points "
                f"WHERE market_id IN ({placeholders(len(unique))}) AND at_epoch >= ? "
                "GROUP BY market_id, at_epoch / ?) last ON last.id = p.id) w "
                "WHERE _rn <= 1000 ORDER BY market_id, id",
                [*unique, since, bucket],
            )
            grouped: dict[int, list[models.PricePoint]] = defaultdict(list)
            for row in rows:
                grouped[row["market_id"]].append(models.PricePoint._init_from_db(**row))
            for market_id in unique:
                found[(market_id, since, bucket)] = grouped.get(market_id, [])
        return [found[key] for key in keys]

    # -- relations through link tables ---------------------------------------------------

    async def _outcomes_by_market(self, keys: list[int]) -> list[list[models.Outcome]]:
        rows = await models.Outcome.filter(market_id__in=list(set(keys))).order_by("position")
        return _grouped(keys, ((row.market_id, row) for row in rows))

    async def _tags_by_article(self, keys: list[int]) -> list[list[models.Tag]]:
        return await _link_query(
            models.Tag, "tags", "article_tags", "article_id", "tag_id", keys, "t.name, t.id"
        )

    async def _tags_by_market(self, keys: list[int]) -> list[list[models.Tag]]:
        return await _link_query(
            models.Tag, "tags", "market_tags", "market_id", "tag_id", keys, "t.name, t.id"
        )

    async def _markets_by_article(self, keys: list[int]) -> list[list[models.Market]]:
        return await _link_query(
            models.Market,
            "markets",
            "market_articles",
            "article_id",
            "market_id",
            keys,
            "t.created_at DESC, t.id DESC",
        )

    async def _articles_by_market(self, keys: list[int]) -> list[list[models.Article]]:
        return await _link_query(
            models.Article,
            "articles",
            "market_articles",
            "market_id",
            "article_id",
            keys,
            "t.published_at DESC, t.id DESC",
        )

    async def _related_articles(self, keys: list[tuple[int, int]]) -> list[list[models.Article]]:
        by_size: dict[int, list[int]] = defaultdict(list)
        for article_id, size in keys:
            by_size[size].append(article_id)
        found: dict[tuple[int, int], list[models.Article]] = {}
        for size, ids in by_size.items():
            for article_id, rows in (await related_articles(list(set(ids)), size)).items():
                found[(article_id, size)] = rows
        return [found.get(key, []) for key in keys]

    # -- connections --------------------------------------------------------------------

    async def _pages(self, keys: list[tuple[Any, ListSpec]]) -> list[Page[Any]]:
        by_spec: dict[ListSpec, list[Any]] = defaultdict(list)
        for parent, spec in keys:
            by_spec[spec].append(parent)
        found: dict[tuple[Any, ListSpec], Page[Any]] = {}
        for spec, parents in by_spec.items():
            unique = list(dict.fromkeys(parents))
            if unique == [None]:
                pages = await fetch_pages(spec.source, spec.ordering, spec.request)
            else:
                pages = await fetch_pages(spec.source, spec.ordering, spec.request, unique)
            for parent, page in pages.items():
                found[(parent, spec)] = page
                for loader_name, rows in page.related.items():
                    loader: DataLoader[Any, Any] = getattr(self, loader_name)
                    for row in rows:
                        loader.prime(row.pk, row)
        return [found[key] for key in keys]

    async def _counts(self, keys: list[tuple[Any, Source]]) -> list[int]:
        by_source: dict[Source, list[Any]] = defaultdict(list)
        for parent, source in keys:
            by_source[source].append(parent)
        found: dict[tuple[Any, Source], int] = {}
        for source, parents in by_source.items():
            unique = list(dict.fromkeys(parents))
            counts = await count_rows(source, None if unique == [None] else unique)
            for parent, count in counts.items():
                found[(parent, source)] = count
        return [found[key] for key in keys]


async def _link_query(
    model: type[M],
    table: str,
    link_table: str,
    key_column: str,
    target_column: str,
    keys: list[int],
    order: str,
) -> list[list[M]]:
    """Rows of ``table`` linked to each key through ``link_table``: one statement for all."""
    unique = list(set(keys))
    rows = await fetch_dicts(
        f"SELECT t.*, l.{key_column} AS _parent FROM {link_table} l "
        f"JOIN {table} t ON t.id = l.{target_column} "
        f"WHERE l.{key_column} IN ({placeholders(len(unique))}) ORDER BY {order}",
        unique,
    )
    return _grouped(keys, ((row["_parent"], model._init_from_db(**row)) for row in rows))


async def related_articles(article_ids: list[int], size: int) -> dict[int, list[models.Article]]:
    """Per article: most shared tags, then same category, then newest; never itself.

    Candidates are the articles sharing a tag or the category, and the newest ``size + 1``
    overall (so a lone article still gets a list), scored and cut per article in one statement.
    """
    if size <= 0 or not article_ids:
        return {article_id: [] for article_id in article_ids}
    marks = placeholders(len(article_ids))
    rows = await fetch_dicts(
        f"""
        WITH cand(src, other, shared) AS (
            SELECT t1.article_id, t2.article_id, 1
              FROM article_tags t1
              JOIN article_tags t2 ON t2.tag_id = t1.tag_id AND t2.article_id <> t1.article_id
             WHERE t1.article_id IN ({marks})
            UNION ALL
            SELECT s.id, a.id, 0
              FROM articles s JOIN articles a ON a.category_id = s.category_id AND a.id <> s.id
             WHERE s.id IN ({marks})
            UNION ALL
            SELECT s.id, n.id, 0
              FROM articles s
              JOIN (SELECT id FROM articles ORDER BY published_at DESC, id DESC
                    LIMIT {size + 1}) n ON n.id <> s.id
             WHERE s.id IN ({marks})
        ), scored AS (
            SELECT src, other, SUM(shared) AS shared FROM cand GROUP BY src, other
        )
        SELECT * FROM (
            SELECT a.*, sc.src AS _parent,
                   ROW_NUMBER() OVER (
                       PARTITION BY sc.src
                       ORDER BY sc.shared DESC,
                                CASE WHEN a.category_id = s.category_id THEN 1 ELSE 0 END DESC,
                                a.published_at DESC, a.id DESC) AS _rn
              FROM scored sc
              JOIN articles a ON a.id = sc.other
              JOIN articles s ON s.id = sc.src
        ) ranked WHERE _rn <= {size} ORDER BY _parent, _rn
        """,
        [*article_ids, *article_ids, *article_ids],
    )
    result: dict[int, list[models.Article]] = {article_id: [] for article_id in article_ids}
    for row in rows:
        result[row["_parent"]].append(models.Article._init_from_db(**row))
    return result


def now_utc() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
