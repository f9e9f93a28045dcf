"""The newsroom's writes: drafts, edits, publishing (now or at a time), unpublishing, archiving,
and the byline behind an author's account.

Who may do what (the resolvers check the role, AUTHOR and above, before calling):
- an author edits, publishes, unpublishes and archives their own articles;
- a moderator or an admin does so to anyone's, and alone sets ``featured``;
- anyone else acting on an article readers can't see gets NOT_FOUND (a draft's existence
  doesn't leak); on one they can see, :class:`NotAllowed` (FORBIDDEN).

Readers see an article while it is PUBLISHED and ``published_at <= now`` (``db.models.
visible_sql``): publishing for later needs no job to become visible. Every write is one
transaction; its event is published after the commit.

Slugs come from titles, unique among current and old slugs, made when an article is first
published: a draft's slug is ``draft-<random>`` (a title-based one would tell other authors,
through a taken slug, what someone else is writing). From then on it is frozen, and an explicit
new slug keeps the old one resolving (``article_slugs``).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from accounts.roles import at_least
from clock import Clock, now
from db import models
from db.search import MARKERS_REFUSED, holds_markers
from db.sql import execute, fetch_dicts, placeholders
from domain_events import Publisher, discard
from news.events import ArticleChange, ArticleChanged, AuthorChanged
from news.render import render_article
from refusals import not_found, validation
from settings import Settings

TITLE_MAX = 300
EXCERPT_MAX = 1_000
NAME_MAX = 120
BIO_MAX = 2_000
SLUG_MAX = 200
MAX_TAGS = 20
MAX_MARKETS = 20
# A slug as given: lowercase ASCII letters and digits in hyphen-separated words.
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Bodies longer than this render on a worker thread (30,000 characters take ~8 ms).
RENDER_ON_LOOP_CHARS = 4_000


class NotAllowed(Exception):
    """The user may not do this to the article (an access error, not a refusal)."""


@dataclass(frozen=True)
class ArticleFields:
    """The parts of an article a write sets; None leaves a part as it is (a draft needs a
    title and a category)."""

    title: str | None = None
    excerpt: str | None = None
    body: str | None = None
    category_slug: str | None = None
    tag_slugs: list[str] | None = None
    market_ids: list[int] | None = None
    featured: bool | None = None
    slug: str | None = None


def word_count(text: str) -> int:
    """Words in ``text``, as ``Article.word_count`` counts them."""
    return len(text.split())


def slugify(text: str, length: int = 180) -> str:
    """A URL name from a title: lowercase ASCII words joined by hyphens, at most ``length``
    characters (room left for a "-2" suffix under the column's size); "article" if none."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:length].rstrip("-") or "article"


DRAFT_SLUG_PREFIX = "draft-"


def draft_slug() -> str:
    """The slug of an article not yet published: random, so it tells nothing."""
    return DRAFT_SLUG_PREFIX + secrets.token_hex(6)


def is_moderator(user: models.User) -> bool:
    """Whether ``user`` may edit and publish anyone's articles and feature them."""
    return at_least(user.role, models.Role.MODERATOR)


def visible_now(article: models.Article | None, moment: datetime) -> bool:
    """Whether readers see ``article`` at ``moment`` (None: there is none)."""
    if article is None:
        return False
    state = getattr(article.state, "value", article.state)
    published = article.published_at
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return state == models.ArticleState.PUBLISHED.value and published <= moment


async def next_go_live(after: datetime) -> datetime | None:
    """When the next scheduled article goes live (after ``after``), or None: an answer that
    read the news stops being right then, with no write to tell (one index lookup)."""
    rows = await fetch_dicts(
        "SELECT MIN(published_at) AS at FROM articles "
        "WHERE state = 'PUBLISHED' AND published_at > ?",
        [after],
    )
    at = rows[0]["at"] if rows else None
    if at is None:
        return None
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class Newsroom:
    """Article and byline writes, bound to the settings, a publisher and a clock."""

    def __init__(
        self, settings: Settings, publish: Publisher = discard, clock: Clock = now
    ) -> None:
        self.settings = settings
        self._publish = publish
        self.clock = clock

    # -- checks ------------------------------------------------------------------------------

    def _title(self, title: str) -> str:
        text = " ".join(title.split())
        if not 1 <= len(text) <= TITLE_MAX:
            raise validation(f"A title is 1 to {TITLE_MAX} characters.", "title")
        if holds_markers(text):
            raise validation(f"A title {MARKERS_REFUSED}.", "title")
        return text

    def _excerpt(self, excerpt: str) -> str:
        text = excerpt.strip()
        if len(text) > EXCERPT_MAX:
            raise validation(f"An excerpt is at most {EXCERPT_MAX} characters.", "excerpt")
        if holds_markers(text):
            raise validation(f"An excerpt {MARKERS_REFUSED}.", "excerpt")
        return text

    def _body(self, body: str) -> str:
        text = body.strip("\n")
        limit = self.settings.article_body_max_length
        if len(text) > limit:
            raise validation(f"A body is at most {limit} characters.", "body")
        if holds_markers(text):
            raise validation(f"A body {MARKERS_REFUSED}.", "body")
        return text

    def _slug(self, slug: str) -> str:
        if not (1 <= len(slug) <= SLUG_MAX and SLUG_PATTERN.match(slug)):
            raise validation(
                "A slug is 1 to 200 lowercase letters, digits and single hyphens.", "slug"
            )
        if slug.startswith(DRAFT_SLUG_PREFIX):
            raise validation('Slugs starting with "draft-" are for unpublished articles.', "slug")
        return slug

    @staticmethod
    def _publish_at(moment: datetime | None, current: datetime) -> datetime:
        if moment is None:
            return current
        if moment.tzinfo is None:
            raise validation("publishAt needs a time zone (use UTC: …Z).", "publishAt")
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:
            raise validation("publishAt is out of range.", "publishAt") from None
        if moment <= current:
            raise validation(
                "publishAt must be in the future; leave it out to publish now.", "publishAt"
            )
        return moment

    async def _category_id(self, slug: str, conn: BaseDBAsyncClient) -> int:
        rows = await fetch_dicts("SELECT id FROM categories WHERE slug = ?", [slug[:200]], conn)
        if not rows:
            raise not_found("There is no such category.", "categorySlug")
        return int(rows[0]["id"])

    async def _tag_ids(self, slugs: list[str], conn: BaseDBAsyncClient) -> list[int]:
        if len(slugs) > MAX_TAGS:
            raise validation(f"At most {MAX_TAGS} tags.", "tagSlugs")
        wanted = list(dict.fromkeys(slugs))
        if not wanted:
            return []
        rows = await fetch_dicts(
            f"SELECT id, slug FROM tags WHERE slug IN ({placeholders(len(wanted))})",
            [s[:200] for s in wanted],
            conn,
        )
        by_slug = {row["slug"]: int(row["id"]) for row in rows}
        if len(by_slug) != len(wanted):
            raise not_found("One of the tags does not exist.", "tagSlugs")
        return [by_slug[s] for s in wanted]

    async def _market_ids(self, ids: list[int], conn: BaseDBAsyncClient) -> list[int]:
        if len(ids) > MAX_MARKETS:
            raise validation(f"At most {MAX_MARKETS} markets.", "marketIds")
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        rows = await fetch_dicts(
            f"SELECT id FROM markets WHERE id IN ({placeholders(len(wanted))})", wanted, conn
        )
        if len(rows) != len(wanted):
            raise not_found("One of the markets does not exist.", "marketIds")
        return wanted

    async def _render(self, body: str) -> str:
        if len(body) <= RENDER_ON_LOOP_CHARS:
            return render_article(body)
        return await asyncio.to_thread(render_article, body)

    # -- the byline --------------------------------------------------------------------------

    async def _byline(self, user: models.User, conn: BaseDBAsyncClient) -> models.Author:
        """The user's byline, made from their display name the first time they write."""
        author = await models.Author.filter(user_id=user.id).using_db(conn).first()
        if author is not None:
            return author
        name = " ".join(user.display_name.split())[:NAME_MAX] or user.username
        return await self._new_author(user, name, None, conn)

    async def _new_author(
        self, user: models.User, name: str, bio: str | None, conn: BaseDBAsyncClient
    ) -> models.Author:
        # Bylines' slugs are 120 characters at most (NFKD can make a name longer).
        base = slugify(name, 110) if slugify(name) != "article" else slugify(user.username, 110)
        taken = {
            row["slug"]
            for row in await fetch_dicts(
                "SELECT slug FROM authors WHERE slug = ? OR slug LIKE ?",
                [base, base + "-%"],
                conn,
            )
        }
        slug = next(
            s for n in range(1, 10_000) if (s := base if n == 1 else f"{base}-{n}") not in taken
        )
        return await models.Author.create(
            slug=slug, name=name, bio=bio, user_id=user.id, using_db=conn
        )

    async def update_profile(
        self, user: models.User, name: str | None, bio: str | None
    ) -> models.Author:
        """Change the user's byline (made if they have none); ``bio`` "" clears it."""
        if name is not None:
            name = " ".join(name.split())
            if not 1 <= len(name) <= NAME_MAX:
                raise validation(f"A name is 1 to {NAME_MAX} characters.", "name")
        if bio is not None:
            bio = bio.strip()
            if len(bio) > BIO_MAX:
                raise validation(f"A biography is at most {BIO_MAX} characters.", "bio")
        async with in_transaction() as conn:
            author = await models.Author.filter(user_id=user.id).using_db(conn).first()
            if author is None:
                author = await self._new_author(
                    user,
                    name or " ".join(user.display_name.split())[:NAME_MAX] or user.username,
                    bio or None,
                    conn,
                )
            else:
                if name is not None:
                    author.name = name
                if bio is not None:
                    author.bio = bio or None  # type: ignore[assignment]
                await author.save(using_db=conn, update_fields=["name", "bio"])
        await self._publish(AuthorChanged(author.id))
        return author

    # -- articles ----------------------------------------------------------------------------

    async def _editable(
        self, user: models.User, article_id: int, conn: BaseDBAsyncClient
    ) -> models.Article:
        """The article, locked, if ``user`` may change it; NOT_FOUND or NotAllowed otherwise."""
        article = (
            await models.Article.filter(id=article_id).using_db(conn).select_for_update().first()
        )
        if article is None:
            raise not_found("There is no such article.", "articleId")
        if is_moderator(user):
            return article
        owner = await fetch_dicts(
            "SELECT user_id FROM authors WHERE id = ?", [article.author_id], conn
        )
        if owner and owner[0]["user_id"] == user.id:
            return article
        if not visible_now(article, self.clock()):
            raise not_found("There is no such article.", "articleId")
        raise NotAllowed("Only its author and moderators can change an article.")

    def _featured(self, user: models.User, featured: bool | None, current: bool = False) -> None:
        """Featuring (or unfeaturing) is for moderators; leaving it as it is, for anyone."""
        if featured is not None and featured != current and not is_moderator(user):
            raise NotAllowed("Only moderators and admins feature articles.")

    async def _free_slug(self, base: str, article_id: int | None, conn: BaseDBAsyncClient) -> str:
        """``base`` or ``base-2``, ``base-3``…: the first taken by no other article, current
        or old."""
        rows = await fetch_dicts(
            "SELECT slug, id AS article_id FROM articles WHERE slug = ? OR slug LIKE ? "
            "UNION ALL SELECT slug, article_id FROM article_slugs WHERE slug = ? OR slug LIKE ?",
            [base, base + "-%", base, base + "-%"],
            conn,
        )
        taken = {row["slug"] for row in rows if row["article_id"] != article_id}
        for n in range(1, 10_000):
            candidate = base if n == 1 else f"{base}-{n}"
            if candidate not in taken:
                return candidate
        raise validation("Too many articles have this title.", "title")

    async def _links(
        self,
        article_id: int,
        tag_ids: list[int] | None,
        market_ids: list[int] | None,
        conn: BaseDBAsyncClient,
    ) -> None:
        if tag_ids is not None:
            await execute("DELETE FROM article_tags WHERE article_id = ?", [article_id], conn)
            if tag_ids:
                await models.ArticleTag.bulk_create(
                    [models.ArticleTag(article_id=article_id, tag_id=t) for t in tag_ids],
                    using_db=conn,
                )
        if market_ids is not None:
            await execute("DELETE FROM market_articles WHERE article_id = ?", [article_id], conn)
            if market_ids:
                await models.MarketArticle.bulk_create(
                    [models.MarketArticle(market_id=m, article_id=article_id) for m in market_ids],
                    using_db=conn,
                )

    async def _html(self, article_id: int, html: str, conn: BaseDBAsyncClient) -> None:
        changed = await execute(
            "UPDATE article_html SET html = ? WHERE article_id = ?", [html, article_id], conn
        )
        if (
            changed == 0
            and not await models.ArticleHtml.filter(article_id=article_id).using_db(conn).exists()
        ):
            # (asyncpg reports no row counts for some statements: look before inserting.)
            await models.ArticleHtml.create(article_id=article_id, html=html, using_db=conn)

    async def create(self, user: models.User, values: ArticleFields) -> models.Article:
        """A new draft by ``user`` (their byline is made the first time)."""
        if values.title is None:
            raise validation("A new article needs a title.", "title")
        if values.category_slug is None:
            raise validation("A new article needs a category.", "categorySlug")
        if values.slug is not None:
            raise validation("A slug is set with updateArticle.", "slug")
        self._featured(user, values.featured)
        title = self._title(values.title)
        excerpt = self._excerpt(values.excerpt or "")
        body = self._body(values.body or "")
        html = await self._render(body)
        moment = self.clock()
        for _attempt in range(5):
            try:
                async with in_transaction() as conn:
                    category_id = await self._category_id(values.category_slug, conn)
                    tag_ids = await self._tag_ids(values.tag_slugs or [], conn)
                    market_ids = await self._market_ids(values.market_ids or [], conn)
                    author = await self._byline(user, conn)
                    article = await models.Article.create(
                        slug=draft_slug(),
                        title=title,
                        excerpt=excerpt,
                        body=body,
                        word_count=word_count(body),
                        # A draft's publishedAt is when it was written (readers never see it).
                        published_at=moment,
                        updated_at=moment,
                        featured=bool(values.featured),
                        author_id=author.id,
                        category_id=category_id,
                        state=models.ArticleState.DRAFT,
                        using_db=conn,
                    )
                    await self._links(article.id, tag_ids, market_ids, conn)
                    await models.ArticleHtml.create(article_id=article.id, html=html, using_db=conn)
            except IntegrityError:
                # Another writer took the slug between the look and the insert: look again.
                continue
            break
        else:
            raise validation("Too many articles are being written with this title.", "title")
        await self._publish(ArticleChanged("created", article.id, None, bool(market_ids)))
        return article

    async def update(
        self, user: models.User, article_id: int, values: ArticleFields
    ) -> models.Article:
        """Change any of an article's parts; ``updated_at`` moves with its content."""
        title = self._title(values.title) if values.title is not None else None
        excerpt = self._excerpt(values.excerpt) if values.excerpt is not None else None
        body = self._body(values.body) if values.body is not None else None
        slug = self._slug(values.slug) if values.slug is not None else None
        html = await self._render(body) if body is not None else None
        moment = self.clock()
        try:
            async with in_transaction() as conn:
                article = await self._editable(user, article_id, conn)
                self._featured(user, values.featured, bool(article.featured))
                was_visible = visible_now(article, moment)
                changes: dict[str, object] = {}
                if title is not None and title != article.title:
                    changes["title"] = title
                if slug is not None and slug != article.slug:
                    if slug != await self._free_slug(slug, article.id, conn):
                        raise validation("Another article has this slug.", "slug")
                    changes["slug"] = slug
                    if article.first_published_at is not None:
                        # Published once: its old URL keeps resolving.
                        await execute(
                            "DELETE FROM article_slugs WHERE slug = ? AND article_id = ?",
                            [slug, article.id],
                            conn,
                        )
                        await models.ArticleSlug.create(
                            slug=article.slug,
                            article_id=article.id,
                            created_at=moment,
                            using_db=conn,
                        )
                if excerpt is not None and excerpt != article.excerpt:
                    changes["excerpt"] = excerpt
                if body is not None and body != article.body:
                    changes["body"] = body
                    changes["word_count"] = word_count(body)
                if values.category_slug is not None:
                    category_id = await self._category_id(values.category_slug, conn)
                    if category_id != article.category_id:
                        changes["category_id"] = category_id
                if values.featured is not None and values.featured != article.featured:
                    changes["featured"] = values.featured
                tag_ids = (
                    await self._tag_ids(values.tag_slugs, conn)
                    if values.tag_slugs is not None
                    else None
                )
                market_ids = (
                    await self._market_ids(values.market_ids, conn)
                    if values.market_ids is not None
                    else None
                )
                links = tag_ids is not None or market_ids is not None
                if changes or links:
                    changes["updated_at"] = moment
                    for name, value in changes.items():
                        setattr(article, name, value)
                    await article.save(using_db=conn, update_fields=list(changes))
                    await self._links(article.id, tag_ids, market_ids, conn)
                    if html is not None and "body" in changes:
                        await self._html(article.id, html, conn)
        except IntegrityError:
            raise validation("Another article has this slug.", "slug") from None
        if changes or links:
            visible = visible_now(article, moment)
            await self._publish(
                ArticleChanged(
                    "edited",
                    article.id,
                    article.published_at if visible else None,
                    market_ids is not None,
                    was_visible=was_visible,
                )
            )
        return article

    async def publish(
        self, user: models.User, article_id: int, publish_at: datetime | None
    ) -> models.Article:
        """Publish now (``publish_at`` None) or at a future time. Publishing an article that
        is already live, with no time, changes nothing (a retried request)."""
        moment = self.clock()
        when = self._publish_at(publish_at, moment)
        for _attempt in range(5):
            try:
                article, was_visible = await self._published(user, article_id, publish_at, when)
            except IntegrityError:
                # Its title's slug was taken between the look and the write: look again.
                continue
            break
        else:
            raise validation("Too many articles are being published with this title.", "title")
        if article is None:
            return await models.Article.get(id=article_id)
        kind: ArticleChange = "published" if publish_at is None else "scheduled"
        await self._publish(ArticleChanged(kind, article.id, when, was_visible=was_visible))
        return article

    async def _published(
        self, user: models.User, article_id: int, publish_at: datetime | None, when: datetime
    ) -> tuple[models.Article | None, bool]:
        """The publishing transaction: the article, and whether readers saw it before (None
        for an article live already, published again with no time: nothing changed)."""
        async with in_transaction() as conn:
            article = await self._editable(user, article_id, conn)
            was_visible = visible_now(article, self.clock())
            if publish_at is None and was_visible:
                return None, True
            if not article.title or not article.body.strip():
                raise validation("An article needs a title and a body to be published.", "body")
            article.state = models.ArticleState.PUBLISHED
            article.published_at = when
            # Live now: subscribers are told now. Scheduled: by the scheduler, at its time.
            article.announced_at = when if publish_at is None else None
            fields = ["state", "published_at", "announced_at"]
            if article.first_published_at is None:
                article.first_published_at = when
                fields.append("first_published_at")
            if article.slug.startswith(DRAFT_SLUG_PREFIX):
                # Its URL for good, from the title it is published with.
                article.slug = await self._free_slug(slugify(article.title), article.id, conn)
                fields.append("slug")
            await article.save(using_db=conn, update_fields=fields)
        return article, was_visible

    async def announce_due(self, moment: datetime, batch_rows: int = 500) -> int:
        """Tell subscribers (and the response cache) of each scheduled article whose time
        came by ``moment``, once: the scheduler's job, run by one worker a slot. Returns how
        many went live."""
        total = 0
        while True:
            # Shielded: a cancelled BEGIN would keep the connection (app.housekeeping).
            rows = await asyncio.shield(self._mark_due(moment, batch_rows))
            for row in rows:
                published = row["published_at"]
                if isinstance(published, str):
                    published = datetime.fromisoformat(published)
                await self._publish(ArticleChanged("live", int(row["id"]), published))
            total += len(rows)
            if len(rows) < batch_rows:
                return total

    async def _mark_due(self, moment: datetime, batch_rows: int) -> list[dict[str, Any]]:
        async with in_transaction() as conn:
            return await fetch_dicts(
                "UPDATE articles SET announced_at = ? WHERE id IN ("
                "SELECT id FROM articles WHERE state = 'PUBLISHED' AND announced_at IS NULL "
                f"AND published_at <= ? ORDER BY published_at, id LIMIT {int(batch_rows)}) "
                "RETURNING id, published_at",
                [moment, moment],
                conn,
            )

    async def unpublish(self, user: models.User, article_id: int) -> models.Article:
        """Back to a draft (from published, scheduled or archived); a draft stays one."""
        return await self._move(user, article_id, models.ArticleState.DRAFT, "unpublished")

    async def archive(self, user: models.User, article_id: int) -> models.Article:
        """Hidden from readers with its comments; its markets trade and settle as before."""
        return await self._move(user, article_id, models.ArticleState.ARCHIVED, "archived")

    async def _move(
        self,
        user: models.User,
        article_id: int,
        state: models.ArticleState,
        kind: ArticleChange,
    ) -> models.Article:
        async with in_transaction() as conn:
            article = await self._editable(user, article_id, conn)
            if getattr(article.state, "value", article.state) == state.value:
                return article
            was_visible = visible_now(article, self.clock())
            article.state = state
            # Published again later, it is announced again.
            article.announced_at = None
            await article.save(using_db=conn, update_fields=["state", "announced_at"])
        await self._publish(ArticleChanged(kind, article.id, None, was_visible=was_visible))
        return article
