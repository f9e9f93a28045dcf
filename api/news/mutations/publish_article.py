"""``publishArticle``: live now, or at a time."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.core.node import pk_of
from api.core.permissions import require_role
from api.news.inputs import PublishArticleInput
from api.news.payloads import ArticlePayload, article_payload
from db import models


@strawberry.mutation(
    description=(
        "Publish an article now, or schedule it (publishAt): readers see it from then on. "
        "Its author, or a moderator."
    )
)
async def publish_article(
    info: Info,
    input: Annotated[PublishArticleInput, strawberry.argument(description="What and when.")],
) -> ArticlePayload:
    viewer = require_role(info, models.Role.AUTHOR)
    article_id = pk_of(input.article_id, "Article")
    return await article_payload(
        info.context.services.newsroom.publish(viewer, article_id, input.publish_at)
    )
