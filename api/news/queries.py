"""The news graph's root fields: articles, authors, tags and categories."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.core.connection import (
    After,
    Before,
    Connection,
    First,
    Last,
    connection_field,
    load_connection,
)
from api.core.lists import relevance
from api.core.permissions import has_role, require_role
from api.core.visibility import article_row
from api.news.inputs import ArticleFilter
from api.news.lists import (
    ARTICLE_ORDERS,
    AUTHORS,
    AUTHORS_ORDER,
    TAGS,
    TAGS_ORDER,
    ArticleFilterValues,
    articles_source,
)
from api.news.loaders import CategoryTree
from api.news.types import (
    Article,
    ArticleOrder,
    ArticleStatus,
    Author,
    Category,
    Tag,
    category_of,
)
from db import models

Slug = Annotated[str, strawberry.argument(description="The URL name.")]


@strawberry.field(
    description=(
        "An article by its slug, or by a slug it had before (its `slug` is then the current "
        "one: redirect). Null when there is none, or the viewer may not see it (a draft)."
    )
)
async def article(info: Info, slug: Slug) -> Article | None:
    loaders = info.context.loaders
    row = await loaders.article_by_slug.load(slug)
    if row is None:
        old = await loaders.article_slug_by_slug.load(slug)
        if old is not None:
            row = await loaders.article_by_id.load(old.article_id)
    row = await article_row(info, row)
    return Article.from_row(row) if row else None


def _status_filter(info: Info, status: ArticleStatus) -> int | None:
    """The user whose articles a status filter is limited to (None: everyone's)."""
    viewer = require_role(info, models.Role.AUTHOR)
    if has_role(viewer, models.Role.MODERATOR) or status is ArticleStatus.PUBLISHED:
        return None
    return viewer.id


@strawberry.field(description="Published articles, filtered and ordered.")
def articles(
    info: Info,
    first: First = None,
    after: After = None,
    last: Last = None,
    before: Before = None,
    filter: Annotated[
        ArticleFilter | None, strawberry.argument(description="Narrows the list.")
    ] = None,
    order_by: Annotated[
        ArticleOrder | None,
        strawberry.argument(
            description=(
                "The order of the list. Left out: NEWEST, or most relevant first when the "
                "filter has a `search`."
            )
        ),
    ] = None,
) -> Connection[Article]:
    values = None
    if filter is not None:
        values = ArticleFilterValues(
            category_slug=filter.category_slug,
            tag_slug=filter.tag_slug,
            author_slug=filter.author_slug,
            featured=filter.featured,
            search=filter.search,
            status=None if filter.status is None else filter.status.name,
            owner_user_id=None if filter.status is None else _status_filter(info, filter.status),
        )
    ordering = None
    if order_by is None:
        ordering = relevance(
            "Article",
            None if filter is None else filter.search,
            "a",
            ARTICLE_ORDERS["NEWEST"].keys,
        )
    return load_connection(
        info,
        None,
        articles_source(values),
        ordering or ARTICLE_ORDERS[(order_by or ArticleOrder.NEWEST).name],
        Article.from_row,
        first,
        after,
        last,
        before,
    )


@strawberry.field(
    description="An author by slug: one with a published article, as `authors` lists them."
)
async def author(info: Info, slug: Slug) -> Author | None:
    loaders = info.context.loaders
    row = await loaders.author_by_slug.load(slug)
    if row is None or not await loaders.author_shown.load(row.id):
        return None
    return Author.from_row(row)


authors = connection_field(
    Author, AUTHORS, AUTHORS_ORDER, parent=None, description="All authors, by name."
)


@strawberry.field(description="A tag by slug.")
async def tag(info: Info, slug: Slug) -> Tag | None:
    row = await info.context.loaders.tag_by_slug.load(slug)
    return Tag.from_row(row) if row else None


tags = connection_field(Tag, TAGS, TAGS_ORDER, parent=None, description="All tags, by name.")


@strawberry.field(description="A category by slug.")
def category(info: Info, slug: Slug) -> Category | None:
    def found(tree: CategoryTree) -> Category | None:
        row = tree.by_slug.get(slug)
        return category_of(info, row) if row else None

    return info.context.loaders.with_category_tree(found)


@strawberry.field(description="The top-level categories; their children nest.")
def categories(info: Info) -> list[Category]:
    return info.context.loaders.with_category_tree(
        lambda tree: [category_of(info, row) for row in tree.children.get(None, [])]
    )
