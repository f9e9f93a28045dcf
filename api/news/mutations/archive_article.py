"""``archiveArticle``: hidden from readers with its comments."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.core.node import pk_of
from api.core.permissions import require_role
from api.news.inputs import ArticleIdInput
from api.news.payloads import ArticlePayload, article_payload
from db import models


@strawberry.mutation(
    description=(
        "Archive an article: hidden from readers with its comments; its markets trade and "
        "settle as before. Its author, or a moderator."
    )
)
async def archive_article(
    info: Info,
    input: Annotated[ArticleIdInput, strawberry.argument(description="The article.")],
) -> ArticlePayload:
    viewer = require_role(info, models.Role.AUTHOR)
    article_id = pk_of(input.article_id, "Article")
    return await article_payload(info.context.services.newsroom.archive(viewer, article_id))
