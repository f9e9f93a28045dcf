"""``updateArticle``: change any part of an article."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.core.node import pk_of
from api.core.permissions import require_role
from api.news.inputs import UpdateArticleInput
from api.news.payloads import ArticlePayload, article_payload
from db import models
from news.service import ArticleFields


@strawberry.mutation(
    description="Edit an article: its author, or a moderator (who alone sets `featured`)."
)
async def update_article(
    info: Info,
    input: Annotated[UpdateArticleInput, strawberry.argument(description="The changes.")],
) -> ArticlePayload:
    viewer = require_role(info, models.Role.AUTHOR)
    article_id = pk_of(input.article_id, "Article")
    values = ArticleFields(
        title=input.title,
        excerpt=input.excerpt,
        body=input.body,
        category_slug=input.category_slug,
        tag_slugs=None if input.tag_slugs is None else list(input.tag_slugs),
        market_ids=(
            None if input.market_ids is None else [pk_of(g, "Market") for g in input.market_ids]
        ),
        featured=input.featured,
        slug=input.slug,
    )
    return await article_payload(info.context.services.newsroom.update(viewer, article_id, values))
