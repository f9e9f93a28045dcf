"""``editComment``: a new body for the viewer's own comment."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.comments.inputs import EditCommentInput
from api.comments.payloads import CommentPayload, comment_payload
from api.core.node import pk_of
from api.core.permissions import require_viewer


@strawberry.mutation(description="Change the body of the viewer's own comment.")
async def edit_comment(
    info: Info,
    input: Annotated[EditCommentInput, strawberry.argument(description="What to do.")],
) -> CommentPayload:
    viewer = require_viewer(info)
    comment_id = pk_of(input.comment_id, "Comment")
    return await comment_payload(info.context.comments.edit(viewer, comment_id, input.body))
