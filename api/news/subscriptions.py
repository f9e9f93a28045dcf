"""``articlePublished``: articles as they go live, for a live home page (or a category's or a
tag's page). An article published now is told at once; a scheduled one by the scheduler's job
when its time comes (once, by one worker)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

import clock
from api.core.errors import BadUserInput, NotFound
from api.core.subscriptions import refusals, websocket_only
from api.news.types import Article
from db.sql import fetch_dicts
from news.service import visible_now
from realtime.events import ARTICLES
from realtime.sources import SOURCE, Stream, SubscriptionSource

# (category id, tag id): what a subscription narrows to (None: anything).
Target = tuple[int | None, int | None]
SLUG_MAX = 120


async def _id_of(table: str, what: str, argument: str, value: Any) -> int | None:
    """The id of the ``table`` row with slug ``value`` (None for None); BAD_USER_INPUT for a
    malformed slug, NOT_FOUND for an unknown one."""
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= SLUG_MAX:
        raise BadUserInput(f"`{argument}` is a slug of 1 to {SLUG_MAX} characters.")
    rows = await fetch_dicts(f"SELECT id FROM {table} WHERE slug = ?", [value])
    if not rows:
        raise NotFound(f"There is no such {what}.")
    return int(rows[0]["id"])


class ArticlePublished(SubscriptionSource[Target]):
    """Each article as readers start to see it, in a category's subtree and with a tag when
    asked."""

    delivery = "ordered"

    async def open(self, arguments: Mapping[str, Any]) -> Stream[Target]:
        """The articles channel, narrowed by ``categorySlug`` and ``tagSlug``."""
        with refusals():
            category = await _id_of(
                "categories", "category", "categorySlug", arguments.get("categorySlug")
            )
            tag = await _id_of("tags", "tag", "tagSlug", arguments.get("tagSlug"))
        return Stream(ARTICLES, (category, tag))

    async def root(self, target: Target, event: Mapping[str, Any], loaders: Any) -> Any:
        """The article that went live, if readers see it and it is in the subscription's
        category (or one inside it) and carries its tag."""
        row = await loaders.article_by_id.load(int(event["article_id"]))
        # Unpublished again before its event got here: nothing to tell.
        if row is None or not visible_now(row, clock.now()):
            return None
        category, tag = target
        if category is not None:
            tree = await loaders.category_tree()
            if category not in {c.id for c in tree.breadcrumb(row.category_id)}:
                return None
        if tag is not None:
            tags = await loaders.tags_by_article.load(row.id)
            if tag not in {t.id for t in tags}:
                return None
        return Article.from_row(row)


ARTICLE_PUBLISHED = ArticlePublished()


@strawberry.subscription(
    description=(
        "Each article as it goes live (published now, or a scheduled one at its time), in the "
        "category (or one inside it) and with the tag when given: a live home page."
    ),
    metadata={SOURCE: ARTICLE_PUBLISHED},
)
async def article_published(
    info: Info,
    category_slug: Annotated[
        str | None, strawberry.argument(description="Only articles in this category's subtree.")
    ] = None,
    tag_slug: Annotated[
        str | None, strawberry.argument(description="Only articles with this tag.")
    ] = None,
) -> AsyncGenerator[Article, None]:
    async for item in websocket_only():
        yield item
