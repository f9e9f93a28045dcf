"""The plan: the data set's rows with timestamps and counters, computed without a database.

:func:`build_plan` turns :class:`~demo.specs.DemoData` into articles with their bodies and
comment threads and exact denormalised counters. Every choice comes from one
``random.Random(SEED)`` in a fixed order, so the order of the draws here is part of the data
set: changing it changes every row after it.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from demo.specs import (
    BASE,
    CENTRAL_ASIA_SLUG,
    SEED,
    ArticleSpec,
    DemoData,
    Desk,
    ThreadRow,
    slugify,
)


@dataclass
class PlannedComment:
    """A comment row; ``parent_sequence`` names its parent within the same article."""

    sequence: int
    parent_sequence: int | None
    depth: int
    username: str
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    reply_count: int = 0


@dataclass
class PlannedArticle:
    """An article row with its body, timestamps and comments."""

    spec: ArticleSpec
    slug: str
    body: str
    published_at: datetime
    updated_at: datetime
    comments: list[PlannedComment] = field(default_factory=list)

    @property
    def comment_count(self) -> int:
        """Comments shown (deleted ones are not counted)."""
        return sum(1 for c in self.comments if not c.deleted)

    @property
    def comment_seq(self) -> int:
        """The last comment sequence number used."""
        return len(self.comments)


def word_count(text: str) -> int:
    """Words in ``text``, as ``Article.word_count`` counts them."""
    return len(text.split())


def _chunks(sentences: list[str], parts: int, rng: random.Random) -> list[str]:
    """``sentences`` as ``parts`` paragraphs of uneven length (each at least one sentence)."""
    if not sentences:
        return []
    parts = max(1, min(parts, len(sentences)))
    cuts = sorted(rng.sample(range(1, len(sentences)), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, len(sentences)]
    return [" ".join(sentences[a:b]) for a, b in itertools.pairwise(bounds)]


def build_body(spec: ArticleSpec, desks_by_name: Mapping[str, Desk], rng: random.Random) -> str:
    """Lead, details, then background, reaction and outlook drawn from the article's desks.

    Between 3 and 8 paragraphs; long bodies get subheadings.
    """
    target = spec.words if spec.words is not None else rng.randint(150, 1100)
    own = [spec.lead, spec.details, *spec.extra]
    # Lead, details, extra (0-3), background (0-3, less the extra), reaction (0-2) and an outlook
    # paragraph when the article has desks: 3 to 8 paragraphs.
    most_context = max(0, 3 - (len(own) - 2))
    limits = {"context": 7 * most_context, "reaction": 8, "outlook": 3}
    shares = {"context": 0.62, "reaction": 0.28, "outlook": 0.10}
    desks = [desks_by_name[name] for name in spec.desks]
    pools: dict[str, list[str]] = {}
    for section in shares:
        pools[section] = [sentence for desk in desks for sentence in getattr(desk, section)]
        rng.shuffle(pools[section])
    remaining = max(target - sum(word_count(p) for p in own), 0)
    chosen: dict[str, list[str]] = {section: [] for section in shares}
    for section, share in shares.items():
        pool, picked, words = pools[section], chosen[section], 0
        while (
            pool
            and len(picked) < limits[section]
            and words + word_count(pool[-1]) <= remaining * share
        ):
            picked.append(pool.pop())
            words += word_count(picked[-1])
    if not chosen["outlook"] and pools["outlook"]:
        chosen["outlook"].append(pools["outlook"].pop())

    def total() -> int:
        return sum(word_count(p) for p in own + [s for c in chosen.values() for s in c])

    while total() < 150 and pools["context"] and len(chosen["context"]) < limits["context"]:
        chosen["context"].append(pools["context"].pop())
    context = _chunks(
        chosen["context"], min(most_context, math.ceil(len(chosen["context"]) / 4)), rng
    )
    reaction = _chunks(chosen["reaction"], min(2, math.ceil(len(chosen["reaction"]) / 3)), rng)
    outlook = [" ".join(chosen["outlook"])] if chosen["outlook"] else []
    long_form = len(own) + len(context) + len(reaction) + len(outlook) >= 7
    blocks = list(own)
    if context:
        blocks += (["## Background"] if long_form else []) + context
    blocks += reaction
    if outlook:
        blocks += (["## What comes next"] if long_form and context else []) + outlook
    return "\n\n".join(blocks)


def _comment_times(
    rng: random.Random, start: datetime, end: datetime, count: int
) -> list[datetime]:
    """``count`` strictly increasing times in [start, end), denser soon after ``start``."""
    span = int((end - start).total_seconds())
    offsets = sorted(int(span * rng.random() ** 1.7) for _ in range(count))
    times: list[datetime] = []
    previous = -1
    for offset in offsets:
        previous = max(offset, previous + 17)
        times.append(start + timedelta(seconds=previous))
    return times


def _edited_at(rng: random.Random, created_at: datetime, deleted: bool) -> datetime | None:
    if deleted or rng.random() >= 0.06:
        return None
    edited = created_at + timedelta(minutes=rng.randint(2, 40))
    return edited if edited < BASE else None


def _top_level_body(spec: ArticleSpec, data: DemoData, used: set[str], rng: random.Random) -> str:
    pools = data.comment_pools
    pool = [body for desk in spec.desks for body in pools.by_desk[desk]]
    pool += pools.general
    fresh = [body for body in pool if body not in used]
    if fresh:
        return rng.choice(fresh)
    for _ in range(50):
        body = f"{rng.choice(pool)} {rng.choice(pools.tails)}"
        if body not in used:
            return body
    return rng.choice(pool)


def _reply_body(parent: str, data: DemoData, used: set[str], rng: random.Random) -> str:
    pools = data.comment_pools
    body = ""
    for _ in range(50):
        opener = rng.choice(pools.reply_openers).format(parent=parent)
        body = f"{opener} {rng.choice(pools.reply_points)}"
        if body not in used:
            break
    return body


def build_generated_comments(
    spec: ArticleSpec, data: DemoData, published_at: datetime, count: int, rng: random.Random
) -> list[PlannedComment]:
    """A thread of ``count`` comments: top level, replies and replies to replies."""
    start = published_at + timedelta(minutes=3)
    end = min(BASE - timedelta(minutes=2), published_at + timedelta(hours=rng.randint(30, 120)))
    commenters = data.commenters
    plans: list[PlannedComment] = []
    used: set[str] = set()
    for sequence, created_at in enumerate(_comment_times(rng, start, end, count), start=1):
        parents = [c for c in plans if c.depth < 2 and not c.deleted]
        parent = rng.choice(parents) if parents and rng.random() < 0.55 else None
        if parent is None:
            username = rng.choice(commenters)
            body = _top_level_body(spec, data, used, rng)
        else:
            username = rng.choice([u for u in commenters if u != parent.username])
            body = _reply_body(parent.username, data, used, rng)
        used.add(body)
        deleted = rng.random() < 0.04
        plans.append(
            PlannedComment(
                sequence=sequence,
                parent_sequence=parent.sequence if parent else None,
                depth=parent.depth + 1 if parent else 0,
                username=username,
                body=body,
                created_at=created_at,
                edited_at=_edited_at(rng, created_at, deleted),
                deleted=deleted,
            )
        )
    return plans


def build_scripted_comments(
    thread: tuple[ThreadRow, ...],
    published_at: datetime,
    rng: random.Random,
) -> list[PlannedComment]:
    """A hand-written thread, spread between publication and ``BASE``."""
    start = published_at + timedelta(minutes=4)
    times = _comment_times(rng, start, BASE - timedelta(minutes=2), len(thread))
    plans: list[PlannedComment] = []
    for index, (username, parent_index, body, deleted) in enumerate(thread):
        parent = plans[parent_index] if parent_index is not None else None
        if parent is not None and (parent.deleted or parent.depth >= 2):
            raise ValueError(f"comment {index} replies to a deleted or too deep comment")
        plans.append(
            PlannedComment(
                sequence=index + 1,
                parent_sequence=parent.sequence if parent else None,
                depth=parent.depth + 1 if parent else 0,
                username=username,
                body=body,
                created_at=times[index],
                edited_at=None,
                deleted=deleted,
            )
        )
    return plans


def _count_replies(comments: list[PlannedComment]) -> None:
    by_sequence = {c.sequence: c for c in comments}
    for comment in comments:
        comment.reply_count = 0
    for comment in comments:
        if comment.parent_sequence is not None and not comment.deleted:
            by_sequence[comment.parent_sequence].reply_count += 1


def _comment_count(spec: ArticleSpec, rng: random.Random) -> int:
    if spec.comments is not None:
        return spec.comments
    return 0 if rng.random() < 0.12 else rng.randint(1, 25)


def build_plan(data: DemoData) -> list[PlannedArticle]:
    """Every article with its body, timestamps and comment thread, oldest first."""
    rng = random.Random(SEED)
    articles: list[PlannedArticle] = []
    for spec in data.articles:
        slug = slugify(spec.title)
        if spec.days_ago == 0:
            published_at = BASE - timedelta(hours=5)
        else:
            published_at = BASE - timedelta(days=spec.days_ago, minutes=rng.randint(0, 14 * 60))
        updated_at = published_at
        if rng.random() < 0.3:
            updated_at = published_at + timedelta(minutes=rng.randint(10, 180))
        body = build_body(spec, data.desks, rng)
        if slug == CENTRAL_ASIA_SLUG:
            comments = build_scripted_comments(data.showcase_thread, published_at, rng)
        else:
            count = _comment_count(spec, rng)
            comments = build_generated_comments(spec, data, published_at, count, rng)
        _count_replies(comments)
        articles.append(PlannedArticle(spec, slug, body, published_at, updated_at, comments))
    articles.sort(key=lambda a: a.published_at)
    check_plan(data, articles)
    return articles


def check_plan(data: DemoData, articles: list[PlannedArticle]) -> None:
    """Catch mistakes in the data files early, with a clear message (a ``ValueError``)."""
    slugs = [a.slug for a in articles]
    if len(set(slugs)) != len(slugs):
        raise ValueError("duplicate article slug")
    categories = {slug for slug, _, _ in data.categories}
    tags = {slug for slug, _ in data.tags}
    authors = {slug for slug, _, _, _ in data.authors}
    for article in articles:
        spec = article.spec
        if spec.category not in categories or spec.author not in authors:
            raise ValueError(f"{article.slug}: unknown category or author")
        if not set(spec.tags) <= tags or not 2 <= len(set(spec.tags)) <= 5:
            raise ValueError(f"{article.slug}: bad tags {spec.tags}")
        paragraphs = [p for p in article.body.split("\n\n") if not p.startswith("#")]
        if not 3 <= len(paragraphs) <= 8:
            raise ValueError(f"{article.slug}: {len(paragraphs)} paragraphs")
    for market in data.markets:
        if not set(market.articles) <= set(slugs) or not set(market.tags) <= tags:
            raise ValueError(f"{market.slug}: unknown article or tag")
        if not 2 <= len(market.outcomes) <= 5:
            raise ValueError(f"{market.slug}: needs 2 to 5 outcomes")
