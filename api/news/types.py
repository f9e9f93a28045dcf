"""The news graph's types: articles, bylines, categories, tags."""

from __future__ import annotations

import math
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

import clock
from api.accounts.types import initials
from api.comments.lists import COMMENT_ORDERS, TOP_LEVEL_COMMENTS
from api.comments.types import CommentOrder
from api.core.connection import OrderBy, connection_field
from api.core.dataloader import then
from api.core.errors import BadUserInput
from api.core.node import Node, row_converter, to_global_id
from api.markets.lists import MARKETS_BY_TAG, MARKETS_NEWEST
from api.news.lists import (
    ARTICLE_ORDERS,
    ARTICLES_BY_AUTHOR,
    ARTICLES_BY_CATEGORY,
    ARTICLES_BY_TAG,
)
from api.news.loaders import CategoryTree
from db import models
from news.render import render_article

if TYPE_CHECKING:
    from api.accounts.types import User
    from api.comments.types import Comment
    from api.markets.types import Market

UserT = Annotated["User", strawberry.lazy("api.accounts.types")]
CommentT = Annotated["Comment", strawberry.lazy("api.comments.types")]
MarketT = Annotated["Market", strawberry.lazy("api.markets.types")]
ArticleT = Annotated["Article", strawberry.lazy("api.news.types")]
user_from_row = row_converter(UserT)
market_from_row = row_converter(MarketT)

WORDS_PER_MINUTE = 200


def reading_time(word_count: int) -> int:
    """Minutes to read ``word_count`` words at 200 a minute, rounded up, at least 1."""
    return max(1, math.ceil(word_count / WORDS_PER_MINUTE))


@strawberry.enum(description="Orders of an article list.")
class ArticleOrder(Enum):
    NEWEST = strawberry.enum_value("NEWEST", description="Latest published first.")
    OLDEST = strawberry.enum_value("OLDEST", description="Earliest published first.")
    MOST_COMMENTED = strawberry.enum_value(
        "MOST_COMMENTED", description="Most visible comments first, then newest."
    )


ARTICLE_ORDERS_BY = OrderBy(ArticleOrder, ArticleOrder.NEWEST, ARTICLE_ORDERS)


@strawberry.enum(description="Where an article is in its life; readers see PUBLISHED ones only.")
class ArticleStatus(Enum):
    DRAFT = strawberry.enum_value(
        "DRAFT", description="Being written; never published or unpublished."
    )
    SCHEDULED = strawberry.enum_value(
        "SCHEDULED", description="Published for a future time (publishAt): readers see it then."
    )
    PUBLISHED = strawberry.enum_value("PUBLISHED", description="Live: readers see it.")
    ARCHIVED = strawberry.enum_value(
        "ARCHIVED", description="Hidden from readers with its comments; its markets trade on."
    )


def article_status(state: str, published_at: datetime) -> ArticleStatus:
    """The public status of a stored state: PUBLISHED with a future time reads SCHEDULED."""
    if state == "PUBLISHED" and published_at > clock.now():
        return ArticleStatus.SCHEDULED
    return ArticleStatus(state)


@strawberry.type(description="A byline.")
class Author(Node):
    pk: strawberry.Private[int]
    user_id: strawberry.Private[int | None]
    slug: str = strawberry.field(description="The URL name: /authors/<slug>.")
    name: str = strawberry.field(description="The full name shown in the byline.")
    initials: str = strawberry.field(
        description='First letters of the first and last name: "Oliver Scott" → "OS".'
    )
    bio: str | None = strawberry.field(description="A short biography, if any.")

    @classmethod
    def from_row(cls, row: models.Author) -> Author:
        return cls(
            id=strawberry.ID(to_global_id("Author", row.id)),
            pk=row.id,
            user_id=row.user_id,
            slug=row.slug,
            name=row.name,
            initials=initials(row.name),
            bio=row.bio,
        )

    @strawberry.field(description="The staff account behind the byline, if any.")
    def user(self, info: Info) -> UserT | None:
        if self.user_id is None:
            return None
        return then(
            info.context.loaders.user_by_id.load(self.user_id),
            lambda row: user_from_row(row) if row else None,
        )

    @strawberry.field(description="How many articles carry this byline.")
    async def article_count(self, info: Info) -> int:
        return await info.context.loaders.count_by_parent.load((self.pk, ARTICLES_BY_AUTHOR))

    articles = connection_field(
        ArticleT,
        ARTICLES_BY_AUTHOR,
        ARTICLE_ORDERS["NEWEST"],
        description="The author's articles, newest first.",
    )


@strawberry.type(description="A node of the category tree (Politics › Diplomacy › Bilateral).")
class Category(Node):
    pk: strawberry.Private[int]
    parent_id: strawberry.Private[int | None]
    slug: str = strawberry.field(description="The URL name: /category/<slug>.")
    name: str = strawberry.field(description="The display name.")

    @classmethod
    def from_row(cls, row: models.Category) -> Category:
        return cls(
            id=strawberry.ID(to_global_id("Category", row.id)),
            pk=row.id,
            parent_id=row.parent_id,
            slug=row.slug,
            name=row.name,
        )

    @strawberry.field(description="The enclosing category; null at the top level.")
    def parent(self, info: Info) -> Category | None:
        parent_id = self.parent_id
        if parent_id is None:
            return None

        def parent(tree: CategoryTree) -> Category | None:
            row = tree.by_id.get(parent_id)
            return category_of(info, row) if row else None

        return info.context.loaders.with_category_tree(parent)

    @strawberry.field(description="The categories directly inside this one.")
    def children(self, info: Info) -> list[Category]:
        return info.context.loaders.with_category_tree(
            lambda tree: [category_of(info, row) for row in tree.children.get(self.pk, [])]
        )

    @strawberry.field(description="Root → this category, for a breadcrumb trail.")
    def breadcrumb(self, info: Info) -> list[Category]:
        return info.context.loaders.with_category_tree(
            lambda tree: [category_of(info, row) for row in tree.breadcrumb(self.pk)]
        )

    articles = connection_field(
        ArticleT,
        ARTICLES_BY_CATEGORY,
        ARTICLE_ORDERS_BY,
        description="Articles in this category and all categories inside it.",
    )


def category_of(info: Info, row: models.Category) -> Category:
    """The category of a row of this request's tree, one object per row (a list's articles
    share a few categories; a tree's children are everyone's)."""
    return info.context.loaders.kept(
        ("Category", row.id, row.parent_id, row.slug, row.name), lambda: Category.from_row(row)
    )


def tag_of(info: Info, row: models.Tag) -> Tag:
    """A tag of a row, one object per tag and values (a tag is under many articles of a list)."""
    return info.context.loaders.kept(("Tag", row.id, row.slug, row.name), lambda: Tag.from_row(row))


@strawberry.type(description="A topic label shared by articles and markets.")
class Tag(Node):
    pk: strawberry.Private[int]
    slug: str = strawberry.field(description="The URL name: /tag/<slug>.")
    name: str = strawberry.field(description="The display name.")

    @classmethod
    def from_row(cls, row: models.Tag) -> Tag:
        return cls(
            id=strawberry.ID(to_global_id("Tag", row.id)), pk=row.id, slug=row.slug, name=row.name
        )

    @strawberry.field(description="How many articles carry this tag.")
    async def article_count(self, info: Info) -> int:
        return await info.context.loaders.count_by_parent.load((self.pk, ARTICLES_BY_TAG))

    articles = connection_field(
        ArticleT, ARTICLES_BY_TAG, ARTICLE_ORDERS_BY, description="Articles with this tag."
    )

    markets = connection_field(
        MarketT, MARKETS_BY_TAG, MARKETS_NEWEST, description="Markets with this tag, newest first."
    )


# Bodies with no stored rendering (written before renderings were stored), by (id, body).
_RENDERED: dict[tuple[int, str], str] = {}
_RENDERED_MAX = 256


def _rendered(pk: int, body: str) -> str:
    key = (pk, body)
    html = _RENDERED.get(key)
    if html is None:
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        html = _RENDERED[key] = render_article(body)
    return html


@strawberry.type(description="A story: published, or (for its author and editors) a draft.")
class Article(Node):
    pk: strawberry.Private[int]
    author_id: strawberry.Private[int]
    category_id: strawberry.Private[int]
    slug: str = strawberry.field(description="The URL name: /articles/<slug>.")
    title: str = strawberry.field(description="The headline.")
    excerpt: str = strawberry.field(description="A one- or two-sentence summary for lists.")
    body: str = strawberry.field(description="The full text (markdown).")
    published_at: datetime = strawberry.field(description="When it was published.")
    updated_at: datetime = strawberry.field(description="When it was last changed.")
    reading_time_minutes: int = strawberry.field(
        description="ceil(words in body / 200), at least 1."
    )
    featured: bool = strawberry.field(description="Whether editors feature it on the home page.")
    comment_count: int = strawberry.field(
        description="Visible (not deleted) comments, replies included."
    )
    last_comment_sequence: int = strawberry.field(
        description=(
            "The sequence of the latest comment or reply (0 when none), read together with "
            "commentCount: commentAdded(afterSequence: this) delivers exactly what came after "
            "this read, and commentCount counts everything up to it."
        )
    )

    state: strawberry.Private[str]

    @classmethod
    def from_row(cls, row: models.Article) -> Article:
        return cls(
            id=strawberry.ID(to_global_id("Article", row.id)),
            pk=row.id,
            author_id=row.author_id,
            category_id=row.category_id,
            state=getattr(row.state, "value", row.state),
            slug=row.slug,
            title=row.title,
            excerpt=row.excerpt,
            body=row.body,
            published_at=row.published_at,
            updated_at=row.updated_at,
            reading_time_minutes=reading_time(row.word_count),
            featured=bool(row.featured),
            comment_count=row.comment_count,
            last_comment_sequence=row.comment_seq,
        )

    @strawberry.field(
        description=(
            "DRAFT, SCHEDULED, PUBLISHED or ARCHIVED. Readers only ever see PUBLISHED articles; "
            "the author and moderators see the rest."
        )
    )
    def status(self) -> ArticleStatus:
        return article_status(self.state, self.published_at)

    @strawberry.field(
        description=(
            "When it goes (SCHEDULED) or went live; null for a draft. For a draft, publishedAt "
            "is when it was written."
        )
    )
    def publish_at(self) -> datetime | None:
        return None if self.state == "DRAFT" else self.published_at

    @strawberry.field(
        description=(
            "The body rendered from Markdown and sanitised (headings, quotes, lists, links, "
            "images with http(s) sources): safe to insert into a page."
        )
    )
    def body_html(self, info: Info) -> str:
        return then(
            info.context.loaders.html_by_article.load(self.pk),
            lambda row: row.html if row is not None else _rendered(self.pk, self.body),
        )

    @strawberry.field(description="The byline.")
    def author(self, info: Info) -> Author:
        return then(info.context.loaders.author_by_id.load(self.author_id), Author.from_row)

    @strawberry.field(description="The most specific category.")
    def category(self, info: Info) -> Category:
        return info.context.loaders.with_category_tree(
            lambda tree: category_of(info, tree.by_id[self.category_id])
        )

    @strawberry.field(
        description="Root → leaf categories: Politics › Diplomacy › Bilateral Relations."
    )
    def breadcrumb(self, info: Info) -> list[Category]:
        return info.context.loaders.with_category_tree(
            lambda tree: [category_of(info, row) for row in tree.breadcrumb(self.category_id)]
        )

    @strawberry.field(description="The article's tags, by name.")
    def tags(self, info: Info) -> list[Tag]:
        return then(
            info.context.loaders.tags_by_article.load(self.pk),
            lambda rows: [tag_of(info, row) for row in rows],
        )

    comments = connection_field(
        CommentT,
        TOP_LEVEL_COMMENTS,
        OrderBy(CommentOrder, CommentOrder.NEWEST, COMMENT_ORDERS),
        description="Top-level comments; replies nest under each.",
    )

    @strawberry.field(
        description=(
            "Articles sharing the most tags, then the same category, then newest; never this "
            "one. `first` is 0–20."
        )
    )
    def related_articles(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="How many (0–20).")] = 5,
    ) -> list[Article]:
        limit = info.context.settings.max_related_articles
        if not 0 <= first <= limit:
            raise BadUserInput(f"`first` must be between 0 and {limit}, got {first}.")
        return then(
            info.context.loaders.related_articles_by_article.load((self.pk, first)),
            lambda rows: [Article.from_row(row) for row in rows],
        )

    @strawberry.field(description="The markets this article discusses.")
    def markets(self, info: Info) -> list[MarketT]:
        return then(
            info.context.loaders.markets_by_article.load(self.pk),
            lambda rows: [market_from_row(row) for row in rows],
        )
