"""The comments' mutation inputs."""

from __future__ import annotations

import strawberry


@strawberry.input(description="A new comment, or a reply.")
class PostCommentInput:
    article_id: strawberry.ID = strawberry.field(description="The article commented on.")
    body: str = strawberry.field(description="Markdown, 1–10,000 characters after trimming.")
    parent_id: strawberry.ID | None = strawberry.field(
        default=None, description="The comment replied to (on the same article), if any."
    )


@strawberry.input(description="A new body for the viewer's comment.")
class EditCommentInput:
    comment_id: strawberry.ID = strawberry.field(description="The comment.")
    body: str = strawberry.field(description="The new body.")


@strawberry.input(description="A comment to delete.")
class DeleteCommentInput:
    comment_id: strawberry.ID = strawberry.field(description="The comment.")


@strawberry.input(description="A comment to flag for moderators.")
class ReportCommentInput:
    comment_id: strawberry.ID = strawberry.field(description="The comment.")
    reason: str = strawberry.field(description="Why, in a sentence (1–500 characters).")
