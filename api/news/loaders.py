"""The news graph's loaders: authors, articles, tags, the category tree, related articles."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

import clock
from api.core.dataloader import LoaderBase, by_field, lazy_loader, link_query, then
from db import models
from db.sql import fetch_dicts, fetch_rows, placeholders, plain_rows

R = TypeVar("R")


class NewsLoaders(LoaderBase):
    """Loaders of the news graph; part of each request's ``api.loaders.Loaders``."""

    def __init__(self, max_objects: int | None = None) -> None:
        super().__init__(max_objects)
        self._tree: CategoryTree | None = None
        self._tree_loading: asyncio.Future[CategoryTree] | None = None

    async def category_tree(self) -> CategoryTree:
        """The category tree, from one query the first time it is needed in this request."""
        if self._tree is not None:
            return self._tree
        return await self._loading_tree()

    def _loading_tree(self) -> asyncio.Future[CategoryTree]:
        # One task loads it for every field that asks in the meantime.
        if self._tree_loading is None:
            self._tree_loading = asyncio.ensure_future(self._load_tree())
        return self._tree_loading

    async def _load_tree(self) -> CategoryTree:
        self._tree = CategoryTree(await fetch_rows(models.Category, "SELECT * FROM categories"))
        return self._tree

    def with_category_tree(self, use: Callable[[CategoryTree], R]) -> R:
        """``use(tree)``: at once once the tree is loaded (a resolver returning this is then
        synchronous), else an awaitable of it (``then`` of the one task loading the tree)."""
        if self._tree is not None:
            return use(self._tree)
        return then(self._loading_tree(), use)

    async def _tags_by_article(self, keys: list[int]) -> list[list[models.Tag]]:
        return await link_query(
            models.Tag, "tags", "article_tags", "article_id", "tag_id", keys, "t.name, t.id"
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

    async def _author_shown(self, keys: list[int]) -> list[bool]:
        # As ``authors`` lists them: bylines with an article readers see (api.news.lists).
        rows = await fetch_dicts(
            f"SELECT DISTINCT a.author_id AS id FROM articles a "
            f"WHERE a.author_id IN ({placeholders(len(keys))}) AND {models.visible_sql('a')}",
            [*keys, clock.now()],
        )
        shown = {int(row["id"]) for row in rows}
        return [key in shown for key in keys]

    # One loader per relation, made on its first use in a request.
    author_by_id = lazy_loader(by_field(models.Author, "id"))
    author_by_slug = lazy_loader(by_field(models.Author, "slug"))
    author_by_user = lazy_loader(by_field(models.Author, "user_id"))
    # Whether readers see the byline at all (``author(slug)``, ``node``): one with only drafts
    # doesn't tell anyone someone is writing.
    author_shown = lazy_loader(_author_shown, method=True)
    article_by_id = lazy_loader(by_field(models.Article, "id"))
    article_by_slug = lazy_loader(by_field(models.Article, "slug"))
    # A slug an article had before (it keeps resolving to the article).
    article_slug_by_slug = lazy_loader(by_field(models.ArticleSlug, "slug"))
    html_by_article = lazy_loader(by_field(models.ArticleHtml, "article_id"))
    tag_by_id = lazy_loader(by_field(models.Tag, "id"))
    tag_by_slug = lazy_loader(by_field(models.Tag, "slug"))
    tags_by_article = lazy_loader(_tags_by_article, method=True)
    related_articles_by_article = lazy_loader(_related_articles, method=True)


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


async def related_articles(article_ids: list[int], size: int) -> dict[int, list[models.Article]]:
    """Per article: most shared tags, then same category, then newest; never itself.

    Candidates are the articles sharing a tag or the category, and the newest ``size + 1``
    overall (so a lone article still gets a list), scored and cut per article in one statement.
    """
    if size <= 0 or not article_ids:
        return {article_id: [] for article_id in article_ids}
    build = plain_rows(models.Article)
    moment = clock.now()
    if len(article_ids) == 1:
        sql = _RELATED_ONE.format(
            size=size, candidates=size + 1, visible_n=_VISIBLE_N, visible_a=_VISIBLE_A
        )
        one = article_ids[0]
        rows = await fetch_dicts(sql, [one, one, moment, one, one, moment])
        return {one: [build(row) for row in rows]}
    rows = await fetch_dicts(
        _related_many(len(article_ids), size),
        [*article_ids, *article_ids, moment, *article_ids, moment],
    )
    result: dict[int, list[models.Article]] = {article_id: [] for article_id in article_ids}
    for row in rows:
        result[row["_parent"]].append(build(row))
    return result


# Only articles readers see are related (and fill the newest candidates).
_VISIBLE_N = models.visible_sql("v")
_VISIBLE_A = models.visible_sql("a")

# One article (its page): the same ranking as _related_many's, by ORDER BY … LIMIT, the
# candidates scored by id alone and only the kept articles' rows read (the windowed form ranked
# every candidate with all its columns, its body included: 2.8 times the cost).
_RELATED_ONE = """
    WITH cand(other, shared) AS (
        SELECT t2.article_id, 1
          FROM article_tags t1
          JOIN article_tags t2 ON t2.tag_id = t1.tag_id AND t2.article_id <> t1.article_id
         WHERE t1.article_id = ?
        UNION ALL
        SELECT a.id, 0 FROM articles s JOIN articles a ON a.category_id = s.category_id
         WHERE s.id = ? AND a.id <> s.id
        UNION ALL
        SELECT n.id, 0 FROM (SELECT v.id FROM articles v WHERE {visible_n}
                             ORDER BY v.published_at DESC, v.id DESC
                             LIMIT {candidates}) n WHERE n.id <> ?
    ), scored AS (
        SELECT other, SUM(shared) AS shared FROM cand GROUP BY other
    ), kept AS (
        SELECT sc.other, sc.shared,
               CASE WHEN a.category_id = s.category_id THEN 1 ELSE 0 END AS same_category,
               a.published_at
          FROM scored sc
          JOIN articles a ON a.id = sc.other
          JOIN articles s ON s.id = ?
         WHERE {visible_a}
         ORDER BY sc.shared DESC, same_category DESC, a.published_at DESC, a.id DESC
         LIMIT {size}
    )
    SELECT a.*
      FROM kept k JOIN articles a ON a.id = k.other
     ORDER BY k.shared DESC, k.same_category DESC, k.published_at DESC, a.id DESC
"""


def _related_many(count: int, size: int) -> str:
    marks = placeholders(count)
    return f"""
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
              JOIN (SELECT v.id FROM articles v WHERE {_VISIBLE_N}
                    ORDER BY v.published_at DESC, v.id DESC
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
             WHERE {_VISIBLE_A}
        ) ranked WHERE _rn <= {size} ORDER BY _parent, _rn
        """
