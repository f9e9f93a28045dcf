"""The newsroom's mutation payloads."""

from __future__ import annotations

from collections.abc import Awaitable

import strawberry

from api.core.errors import Forbidden
from api.core.refusals import UserError, payload_of
from api.news.types import Article, Author
from db import models
from news.service import NotAllowed


@strawberry.type(description="The result of an article mutation.")
class ArticlePayload:
    article: Article | None = strawberry.field(description="The article, as it is now.")
    errors: list[UserError] = strawberry.field(description="Why it was refused; [] on success.")


@strawberry.type(description="The result of updateAuthorProfile.")
class AuthorPayload:
    author: Author | None = strawberry.field(description="The viewer's byline, as it is now.")
    errors: list[UserError] = strawberry.field(description="Why it was refused; [] on success.")


async def article_payload(call: Awaitable[models.Article]) -> ArticlePayload:
    """The article the call returns, its refusal as a UserError, or FORBIDDEN."""
    try:
        return await payload_of(
            call,
            lambda row: ArticlePayload(article=Article.from_row(row), errors=[]),
            lambda error: ArticlePayload(article=None, errors=[error]),
        )
    except NotAllowed as exc:
        raise Forbidden(str(exc)) from exc


async def author_payload(call: Awaitable[models.Author]) -> AuthorPayload:
    """The byline the call returns, or its refusal as a UserError."""
    return await payload_of(
        call,
        lambda row: AuthorPayload(author=Author.from_row(row), errors=[]),
        lambda error: AuthorPayload(author=None, errors=[error]),
    )
