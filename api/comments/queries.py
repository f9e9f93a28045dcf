"""The comments' root fields: the moderation queue (threads hang off their articles)."""

from __future__ import annotations

from strawberry.types import Info

from api.comments.lists import REPORTED_COMMENTS, REPORTED_ORDER
from api.comments.types import Comment
from api.core.connection import connection_field
from api.core.permissions import require_role
from db import models


def _moderators_only(info: Info) -> None:
    require_role(info, models.Role.MODERATOR)


reported_comments = connection_field(
    Comment,
    REPORTED_COMMENTS,
    REPORTED_ORDER,
    parent=None,
    guard=_moderators_only,
    description="The moderation queue: live comments with reports, most reported first "
    "(MODERATOR and ADMIN only).",
)
