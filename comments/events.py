"""What the comments tell subscribers: ids and the article's sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain_events import Event

CommentChange = Literal["added", "edited", "deleted"]


@dataclass(frozen=True)
class CommentChanged(Event):
    """A comment was added, edited or deleted on an article.

    ``sequence`` is the comment's place on its article (for "added", the article's newest).
    """

    kind: CommentChange
    article_id: int
    comment_id: int
    sequence: int
