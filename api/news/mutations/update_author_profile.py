"""``updateAuthorProfile``: the viewer's byline."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.core.permissions import require_role
from api.news.inputs import UpdateAuthorProfileInput
from api.news.payloads import AuthorPayload, author_payload
from db import models


@strawberry.mutation(
    description="Change the viewer's byline: its name and biography (AUTHOR and above)."
)
async def update_author_profile(
    info: Info,
    input: Annotated[UpdateAuthorProfileInput, strawberry.argument(description="The changes.")],
) -> AuthorPayload:
    viewer = require_role(info, models.Role.AUTHOR)
    return await author_payload(
        info.context.services.newsroom.update_profile(viewer, input.name, input.bio)
    )
