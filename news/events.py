"""What the newsroom tells the rest of the system: which article or byline changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from domain_events import Event

ArticleChange = Literal["created", "edited", "published", "unpublished", "archived"]


@dataclass(frozen=True)
class ArticleChanged(Event):
    """An article was created, edited, published (now or for later), unpublished or archived.

    ``visible_from`` is when readers see it from (None: they don't); ``links_changed`` says its
    markets changed (the markets' article lists with them).
    """

    kind: ArticleChange
    article_id: int
    visible_from: datetime | None
    links_changed: bool = False


@dataclass(frozen=True)
class AuthorChanged(Event):
    """A byline's name or biography changed (or the byline was made)."""

    author_id: int
