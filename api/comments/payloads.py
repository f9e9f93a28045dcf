"""The comments' mutation payloads."""

from __future__ import annotations

from collections.abc import Awaitable

import strawberry

from api.comments.types import Comment
from api.core.errors import Forbidden
from api.core.refusals import UserError, payload_of
from comments.service import NotAllowed
from db import models


@strawberry.type(description="The result of a comment mutation.")
class CommentPayload:
    comment: Comment | None = strawberry.field(description="The comment, as it is now.")
    errors: list[UserError] = strawberry.field(description="Why it was refused; [] on success.")


def comment_error(error: UserError) -> CommentPayload:
    """The payload of a refused comment mutation."""
    return CommentPayload(comment=None, errors=[error])


async def comment_payload(call: Awaitable[models.Comment]) -> CommentPayload:
    """The comment the call returns, its refusal as a UserError, or FORBIDDEN."""
    try:
        return await payload_of(
            call,
            lambda row: CommentPayload(comment=Comment.from_row(row), errors=[]),
            comment_error,
        )
    except NotAllowed as exc:
        raise Forbidden(str(exc)) from exc
