"""``reportComment``: a comment flagged for moderators."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.comments.inputs import ReportCommentInput
from api.comments.payloads import CommentPayload, comment_payload
from api.core.node import pk_of
from api.core.permissions import require_viewer


@strawberry.mutation(description="Flag a comment for moderators (once per user and comment).")
async def report_comment(
    info: Info,
    input: Annotated[ReportCommentInput, strawberry.argument(description="What to do.")],
) -> CommentPayload:
    viewer = require_viewer(info)
    comment_id = pk_of(input.comment_id, "Comment")

    return await comment_payload(info.context.comments.report(viewer, comment_id, input.reason))
