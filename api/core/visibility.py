"""Who sees which article: readers see published, live ones; an article's author and
moderators see it in every state. Lists filter in SQL (``api.news.lists.VISIBLE``); single
lookups (``article(slug)``, ``node(id)``, a comment's article) go through :func:`can_see`.
"""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

import clock
from accounts.roles import at_least
from db import models
from news.service import visible_now
from realtime.sharing import ViewerUnreachable


async def can_see(info: Info, row: Any) -> bool:
    """Whether the viewer may see article ``row`` (a plain row or a model instance)."""
    if row is None:
        return False
    if visible_now(row, clock.now()):
        return True
    try:
        viewer: models.User | None = info.context.viewer
    except ViewerUnreachable:
        # An execution shared between viewers sees what readers see.
        return False
    if viewer is None or not at_least(viewer.role, models.Role.AUTHOR):
        return False
    if at_least(viewer.role, models.Role.MODERATOR):
        return True
    byline = await info.context.loaders.author_by_user.load(viewer.id)
    return byline is not None and byline.id == row.author_id


async def article_row(info: Info, row: Any) -> Any:
    """``row`` if the viewer may see it, else None."""
    return row if await can_see(info, row) else None
