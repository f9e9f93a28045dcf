"""``postComment``: a comment or a reply."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.comments.inputs import PostCommentInput
from api.comments.payloads import CommentPayload, comment_payload
from api.core.node import pk_of
from api.core.permissions import require_viewer


@strawberry.mutation(description="Comment on an article, or reply to a comment.")
async def post_comment(
    info: Info,
    input: Annotated[PostCommentInput, strawberry.argument(description="What to do.")],
) -> CommentPayload:
    viewer = require_viewer(info)
    article_id = pk_of(input.article_id, "Article")
    parent_id = None if input.parent_id is None else pk_of(input.parent_id, "Comment")
    return await comment_payload(
        info.context.comments.post(viewer, article_id, input.body, parent_id)
    )
