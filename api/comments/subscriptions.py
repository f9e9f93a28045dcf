"""The comments' subscription fields and their sources: new comments of a thread (in order,
resumable by sequence) and edits and deletions of its comments."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

import clock
from api.comments.types import Comment
from api.core.errors import BadUserInput, NotFound
from api.core.node import from_global_id
from api.core.subscriptions import refusals, websocket_only
from comments.queries import (
    article_exists,
    last_sequence,
    shown_comment,
    visible_comments_between,
)
from news.service import visible_now
from realtime.events import comments_channel
from realtime.sources import SOURCE, Stream, SubscriptionSource


async def _article_stream(arguments: Mapping[str, Any]) -> tuple[int, str]:
    """The article of ``articleId`` and its channel; BAD_USER_INPUT or NOT_FOUND."""
    article_id = from_global_id(str(arguments.get("articleId", "")), "Article")[1]
    if not await article_exists(article_id):
        raise NotFound("There is no such article.")
    return article_id, comments_channel(article_id)


async def _shown(article_id: int, loaders: Any) -> bool:
    """Whether readers (every subscriber of a shared group) see the article now."""
    return visible_now(await loaders.article_by_id.load(article_id), clock.now())


class CommentAdded(SubscriptionSource[int]):
    """``commentAdded``: every visible new comment of the article, in sequence order."""

    delivery = "ordered"
    sequenced = True

    async def open(self, arguments: Mapping[str, Any]) -> Stream[int]:
        """The article's thread, from ``afterSequence`` when given."""
        with refusals():
            article_id, channel = await _article_stream(arguments)
            after = arguments.get("afterSequence")
            if after is not None and (not isinstance(after, int) or after < 0):
                raise BadUserInput("afterSequence must be a non-negative integer.")
        return Stream(channel, article_id, after)

    async def root(self, target: int, event: Mapping[str, Any], loaders: Any) -> Any:
        """The comment an ``added`` event is about, unless deleted or hidden meanwhile."""
        if event.get("kind") != "added":
            return None
        # Posting is refused on an article readers don't see, but it may have been archived or
        # unpublished between the comment and this event: readers hear no more (as for edits).
        row = await shown_comment(int(event["comment_id"]))
        if row is None:  # deleted meanwhile, or its article hidden
            return None
        loaders.comment_by_id.prime(row.id, row)
        return Comment.from_row(row)

    async def replay(
        self, target: int, after: int, before: int | None, limit: int
    ) -> Sequence[tuple[int, Any]]:
        """The visible comments between the two sequences, from the database."""
        rows = await visible_comments_between(target, after, before, limit)
        return [(row.sequence, Comment.from_row(row)) for row in rows]

    async def head(self, target: int) -> int:
        """The article's last comment sequence."""
        return await last_sequence(target)


class CommentUpdated(SubscriptionSource[int]):
    """``commentUpdated``: each edit or deletion of one of the article's comments."""

    delivery = "ordered"

    async def open(self, arguments: Mapping[str, Any]) -> Stream[int]:
        """The article's thread."""
        with refusals():
            article_id, channel = await _article_stream(arguments)
        return Stream(channel, article_id)

    async def root(self, target: int, event: Mapping[str, Any], loaders: Any) -> Any:
        """The comment an edit or deletion event is about, as it is now."""
        if event.get("kind") == "added":
            return None
        row = await loaders.comment_by_id.load(int(event["comment_id"]))
        if row is None or not await _shown(row.article_id, loaders):
            # Archived or unpublished since the subscription opened: readers hear no more.
            return None
        return Comment.from_row(row)


COMMENT_ADDED = CommentAdded()
COMMENT_UPDATED = CommentUpdated()


@strawberry.subscription(
    description=(
        "Every new visible comment or reply on the article. With `afterSequence`, first the "
        "comments with a higher sequence, then live: no gap, no duplicate."
    ),
    metadata={SOURCE: COMMENT_ADDED},
)
async def comment_added(
    info: Info,
    article_id: Annotated[strawberry.ID, strawberry.argument(description="The article.")],
    after_sequence: Annotated[
        int | None,
        strawberry.argument(description="Replay comments after this sequence first."),
    ] = None,
) -> AsyncGenerator[Comment, None]:
    async for item in websocket_only():
        yield item


@strawberry.subscription(
    description='Edits and deletions of the article\'s comments (a deleted one has body "").',
    metadata={SOURCE: COMMENT_UPDATED},
)
async def comment_updated(
    info: Info,
    article_id: Annotated[strawberry.ID, strawberry.argument(description="The article.")],
) -> AsyncGenerator[Comment, None]:
    async for item in websocket_only():
        yield item
