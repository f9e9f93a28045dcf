"""``createArticle``: a new draft."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.core.node import pk_of
from api.core.permissions import require_role
from api.news.inputs import CreateArticleInput
from api.news.payloads import ArticlePayload, article_payload
from db import models
from news.service import ArticleFields


@strawberry.mutation(description="Write a new draft (AUTHOR and above); readers see nothing yet.")
async def create_article(
    info: Info,
    input: Annotated[CreateArticleInput, strawberry.argument(description="The draft.")],
) -> ArticlePayload:
    viewer = require_role(info, models.Role.AUTHOR)
    values = ArticleFields(
        title=input.title,
        excerpt=input.excerpt,
        body=input.body,
        category_slug=input.category_slug,
        tag_slugs=list(input.tag_slugs),
        market_ids=[pk_of(gid, "Market") for gid in input.market_ids],
        featured=input.featured,
    )
    return await article_payload(info.context.services.newsroom.create(viewer, values))
