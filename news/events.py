"""What the newsroom tells the rest of the system: which article or byline changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from domain_events import Event

ArticleChange = Literal[
    "created", "edited", "published", "scheduled", "live", "unpublished", "archived"
]


@dataclass(frozen=True)
class ArticleChanged(Event):
    """An article was created, edited, published now, scheduled (published for later), went
    live at its scheduled time ("live", told once by the scheduler), unpublished or archived.

    "published" and "live" are when readers start to see it (``articlePublished``).
    ``visible_from`` is when readers see it from (None: they don't); ``was_visible`` whether
    they saw it before the change; ``links_changed`` says its markets changed (the markets'
    article lists with them).
    """

    kind: ArticleChange
    article_id: int
    visible_from: datetime | None
    links_changed: bool = False
    was_visible: bool = False


@dataclass(frozen=True)
class AuthorChanged(Event):
    """A byline's name or biography changed (or the byline was made)."""

    author_id: int
