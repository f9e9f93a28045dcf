"""What the demo data files describe, and the fixed points every load shares.

The records here are what :mod:`demo.datafiles` reads from ``demo/data/``; prose arrives as
plain one-line paragraphs (the files wrap it freely). ``SEED`` and ``BASE`` make the data set
deterministic: one seeded ``random.Random`` makes every choice and every timestamp is an
offset from ``BASE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from db.models import Role

SEED = 20261127
BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DEMO_PASSWORD = "demo-password"

# The showcase article (API.md, "Demo data"): its thread is the hand-written one in
# demo/data/comments.toml, not a generated one.
CENTRAL_ASIA_SLUG = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"

# (slug, name, bio, username of the staff account behind the byline)
AuthorRow = tuple[str, str, str, str | None]
# (slug, name, parent slug)
CategoryRow = tuple[str, str, str | None]
# (slug, name)
TagRow = tuple[str, str]
# (author, index of the parent in the thread, body, deleted)
ThreadRow = tuple[str, int | None, str, bool]


def slugify(title: str) -> str:
    """``"This Year's Heatwave"`` → ``"this-years-heatwave"``."""
    text = title.lower().replace("'", "").replace("\u2019", "")
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


@dataclass(frozen=True)
class UserSpec:
    """A demo account; it was created ``joined_days_ago`` days (and three hours) before BASE."""

    username: str
    display_name: str
    role: Role
    joined_days_ago: int


@dataclass(frozen=True)
class Desk:
    """The pools of sentences an article body draws its background, reaction and outlook from."""

    context: tuple[str, ...]
    reaction: tuple[str, ...]
    outlook: tuple[str, ...]


@dataclass(frozen=True)
class ArticleSpec:
    """One article as written: its own paragraphs, and what the planner may add to them."""

    title: str
    category: str
    author: str
    tags: tuple[str, ...]
    desks: tuple[str, ...]
    days_ago: int
    excerpt: str
    lead: str
    details: str
    extra: tuple[str, ...] = ()  # further hand-written paragraphs
    featured: bool = False
    words: int | None = None  # target body length; drawn at random when None
    comments: int | None = None  # generated comments; drawn at random when None


@dataclass(frozen=True)
class MarketSpec:
    """One prediction market, open since ``created_hours_ago`` hours before BASE."""

    slug: str
    question: str
    outcomes: tuple[str, ...]
    tags: tuple[str, ...]
    articles: tuple[str, ...]  # article slugs
    created_hours_ago: int
    closes_at: datetime
    liquidity_cents: int
    created_by: str | None
    description: str
    resolution_criteria: str


@dataclass(frozen=True)
class CommentPools:
    """The text generated comments are composed from."""

    general: tuple[str, ...]  # top-level comments for any article
    by_desk: dict[str, tuple[str, ...]]  # top-level comments for the articles of one desk
    tails: tuple[str, ...]  # appended to a top-level comment when an article used up its pool
    reply_openers: tuple[str, ...]  # "{parent}" is the parent comment's author
    reply_points: tuple[str, ...]


@dataclass(frozen=True)
class DemoData:
    """The whole data set as the files describe it, every table in id order."""

    users: tuple[UserSpec, ...]
    authors: tuple[AuthorRow, ...]
    categories: tuple[CategoryRow, ...]  # parents before children; siblings in display order
    tags: tuple[TagRow, ...]
    desks: dict[str, Desk]
    articles: tuple[ArticleSpec, ...]  # in the order the planner draws for them
    markets: tuple[MarketSpec, ...]
    comment_pools: CommentPools
    showcase_thread: tuple[ThreadRow, ...]  # the comments of CENTRAL_ASIA_SLUG

    @property
    def commenters(self) -> tuple[str, ...]:
        """Who writes the generated comments (the showcase thread also has the editor)."""
        return tuple(u.username for u in self.users if u.role is Role.READER)
