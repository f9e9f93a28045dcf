"""The news graph's lists as (Source, Ordering) specs: filters and orders, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.core.lists import by_time, search_terms
from api.core.pagination import NOW, Join, Ordering, SortKey, Source
from db import models
from db.search import article_ids_matching

# What readers see: published and live (``db.models.visible_sql``), as of the statement.
VISIBLE = (models.visible_sql("a"), (NOW,))

ARTICLE_ORDERS = {
    "NEWEST": by_time("NEWEST", "a", "published_at", True),
    "OLDEST": by_time("OLDEST", "a", "published_at", False),
    "MOST_COMMENTED": Ordering(
        "MOST_COMMENTED",
        (
            SortKey("a.comment_count", "int", True),
            SortKey("a.published_at", "datetime", True),
            SortKey("a.id", "int", True),
        ),
    ),
}

AUTHORS_ORDER = Ordering("NAME", (SortKey("au.name", "str", False), SortKey("au.id", "int", False)))
TAGS_ORDER = Ordering("NAME", (SortKey("t.name", "str", False), SortKey("t.id", "int", False)))

# Bylines come with a page of articles (see Join): a feed's `author { name }` costs no
# statement of its own (the home feed's featured articles made one).
ARTICLE_AUTHOR = Join("au", models.Author, "au.id = a.author_id", "author_by_id")
ARTICLES = Source(models.Article, "articles a", "a", where=(VISIBLE,), joins=(ARTICLE_AUTHOR,))
ARTICLES_BY_AUTHOR = Source(
    models.Article, "articles a", "a", where=(VISIBLE,), parent="a.author_id"
)
ARTICLES_BY_TAG = Source(
    models.Article,
    "articles a JOIN article_tags l ON l.article_id = a.id",
    "a",
    where=(VISIBLE,),
    parent="l.tag_id",
    joins=(ARTICLE_AUTHOR,),
)
# A category's articles are those of its whole subtree: paths are "/root/…/self/".
ARTICLES_BY_CATEGORY = Source(
    models.Article,
    "articles a JOIN categories c ON c.id = a.category_id "
    "JOIN categories anc ON c.path LIKE anc.path || '%'",
    "a",
    where=(VISIBLE,),
    parent="anc.id",
    joins=(ARTICLE_AUTHOR,),
)

# The editors' views of ``articles(filter: {status})``: what each status means in SQL.
STATUS_WHERE: dict[str, tuple[str, tuple[Any, ...]]] = {
    "DRAFT": ("a.state = 'DRAFT'", ()),
    "SCHEDULED": ("(a.state = 'PUBLISHED' AND a.published_at > ?)", (NOW,)),
    "PUBLISHED": VISIBLE,
    "ARCHIVED": ("a.state = 'ARCHIVED'", ()),
}
# Bylines readers see: those with a published article (a new author's byline, made with their
# first draft, doesn't tell readers someone is writing).
AUTHORS = Source(
    models.Author,
    "authors au",
    "au",
    where=(
        (
            "EXISTS (SELECT 1 FROM articles a WHERE a.author_id = au.id "
            f"AND {models.visible_sql('a')})",
            (NOW,),
        ),
    ),
)
TAGS = Source(models.Tag, "tags t", "t")


@dataclass(frozen=True)
class ArticleFilterValues:
    """ArticleFilter's fields as plain values."""

    category_slug: str | None = None
    tag_slug: str | None = None
    author_slug: str | None = None
    featured: bool | None = None
    search: str | None = None
    # An editor's view (DRAFT, SCHEDULED, PUBLISHED, ARCHIVED); None: what readers see.
    status: str | None = None
    # Only this user's articles (an author looking at their drafts).
    owner_user_id: int | None = None


def articles_source(flt: ArticleFilterValues | None) -> Source:
    """All articles matching the filter (an unknown slug matches nothing); readers' articles
    unless the filter names a status (the resolver checks who may)."""
    if flt is None:
        return ARTICLES
    where: list[tuple[str, tuple[Any, ...]]] = [
        STATUS_WHERE[flt.status] if flt.status is not None else VISIBLE
    ]
    if flt.owner_user_id is not None:
        where.append(
            ("a.author_id IN (SELECT id FROM authors WHERE user_id = ?)", (flt.owner_user_id,))
        )
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
    search = search_terms(flt.search)
    if search is not None:
        # Through the full-text index (db.search); nothing to look for matches nothing.
        where.append(article_ids_matching(search) or ("1 = 0", ()))
    return Source(models.Article, "articles a", "a", where=tuple(where), joins=(ARTICLE_AUTHOR,))
