"""The comments' types: a comment or reply, and the orders of a thread."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from api.comments.lists import REPLIES, REPLIES_ORDER
from api.core.connection import connection_field
from api.core.dataloader import then
from api.core.errors import NotFound
from api.core.node import Node, row_converter, to_global_id
from api.core.permissions import has_role, require_role
from api.core.viewer import VIEWER
from api.core.visibility import article_row
from db import models

if TYPE_CHECKING:
    from api.accounts.types import User
    from api.news.types import Article

UserT = Annotated["User", strawberry.lazy("api.accounts.types")]
ArticleT = Annotated["Article", strawberry.lazy("api.news.types")]
CommentT = Annotated["Comment", strawberry.lazy("api.comments.types")]
user_from_row = row_converter(UserT)
article_from_row = row_converter(ArticleT)


@strawberry.enum(description="Orders of a comment list.")
class CommentOrder(Enum):
    NEWEST = strawberry.enum_value("NEWEST", description="Latest first.")
    OLDEST = strawberry.enum_value("OLDEST", description="Earliest first.")
    TOP = strawberry.enum_value("TOP", description="Most replies first, then newest.")


@strawberry.type(description="A comment on an article, or a reply to one.")
class Comment(Node):
    pk: strawberry.Private[int]
    article_id: strawberry.Private[int]
    author_id: strawberry.Private[int]
    parent_id: strawberry.Private[int | None]
    sequence: int = strawberry.field(
        description="Per article: 1, 2, 3… in commit order (the resume cursor of commentAdded)."
    )
    body: str = strawberry.field(description='As written (markdown); "" once deleted.')
    body_html: str = strawberry.field(
        description="The body rendered and sanitised: safe to insert into a page."
    )
    created_at: datetime = strawberry.field(description="When it was posted.")
    edited_at: datetime | None = strawberry.field(description="When it was last edited, if ever.")
    deleted: bool = strawberry.field(description="Deleted comments keep their place, bodiless.")
    reply_count: int = strawberry.field(description="Visible direct replies.")
    report_count_value: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: models.Comment) -> Comment:
        deleted = bool(row.deleted)
        return cls(
            id=strawberry.ID(to_global_id("Comment", row.id)),
            pk=row.id,
            article_id=row.article_id,
            author_id=row.author_id,
            parent_id=row.parent_id,
            sequence=row.sequence,
            body="" if deleted else row.body,
            body_html="" if deleted else row.body_html,
            created_at=row.created_at,
            edited_at=row.edited_at,
            deleted=deleted,
            reply_count=row.reply_count,
            report_count_value=row.report_count,
        )

    @strawberry.field(description="Who wrote it.")
    def author(self, info: Info) -> UserT:
        # Primed by the page's join: synchronous on a thread.
        return then(info.context.loaders.user_by_id.load(self.author_id), user_from_row)

    @strawberry.field(description="The article it is on.")
    async def article(self, info: Info) -> ArticleT:
        row = await article_row(
            info, await info.context.loaders.article_by_id.load(self.article_id)
        )
        if row is None:
            # A comment of an article the viewer can't see (a draft, archived) reached some way.
            raise NotFound("The comment's article is not published.")
        return article_from_row(row)

    @strawberry.field(description="The comment this replies to; null for a top-level comment.")
    async def parent(self, info: Info) -> Comment | None:
        if self.parent_id is None:
            return None
        row = await info.context.loaders.comment_by_id.load(self.parent_id)
        return Comment.from_row(row) if row else None

    replies = connection_field(
        CommentT, REPLIES, REPLIES_ORDER, description="Direct replies, oldest first."
    )

    @strawberry.field(
        description="How many users reported it: moderators only (else FORBIDDEN).",
        metadata=VIEWER,
    )
    def report_count(self, info: Info) -> int | None:
        require_role(info, models.Role.MODERATOR)
        return self.report_count_value

    @strawberry.field(
        description="Whether the viewer may edit it (its author, not deleted).", metadata=VIEWER
    )
    def viewer_can_edit(self, info: Info) -> bool:
        viewer = info.context.viewer
        return viewer is not None and not self.deleted and viewer.id == self.author_id

    @strawberry.field(
        description="Whether the viewer may delete it (its author or a moderator).",
        metadata=VIEWER,
    )
    def viewer_can_delete(self, info: Info) -> bool:
        viewer = info.context.viewer
        if viewer is None or self.deleted:
            return False
        return viewer.id == self.author_id or has_role(viewer, models.Role.MODERATOR)
