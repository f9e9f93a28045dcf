"""``deleteComment``: a comment deleted by its author or a moderator."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.comments.inputs import DeleteCommentInput
from api.comments.payloads import CommentPayload, comment_payload
from api.core.node import pk_of
from api.core.permissions import require_viewer


@strawberry.mutation(
    description="Delete a comment (its author or a moderator); it keeps its place."
)
async def delete_comment(
    info: Info,
    input: Annotated[DeleteCommentInput, strawberry.argument(description="What to do.")],
) -> CommentPayload:
    viewer = require_viewer(info)
    comment_id = pk_of(input.comment_id, "Comment")
    return await comment_payload(info.context.comments.delete(viewer, comment_id))
