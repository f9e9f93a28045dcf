"""Loading the demo data into an empty database: ``python -m demo`` (``make seed``).

Everything in the data set is original sample text. :func:`load_demo_data` reads the data files
(:mod:`demo.datafiles`), plans the rows (:mod:`demo.plan`) and inserts them in one transaction,
then trades most markets through the real engine so their charts have history. Two loads
produce the same rows, apart from the password hashes, which have a fresh salt.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import tomllib
from datetime import datetime, timedelta

from tortoise import Tortoise
from tortoise.transactions import in_transaction

from accounts.passwords import hash_password
from clock import now
from comments.render import render_markdown
from db.config import tortoise_config
from db.models import (
    Article,
    ArticleHtml,
    ArticleState,
    ArticleTag,
    Author,
    Category,
    Comment,
    Market,
    MarketArticle,
    MarketState,
    MarketTag,
    Outcome,
    Position,
    Role,
    Tag,
    User,
)
from demo.datafiles import DATA_DIR, read_demo_data
from demo.plan import build_plan, word_count
from demo.specs import BASE, DEMO_PASSWORD, DemoData
from domain_events import discard
from markets.ledger import fund_market, grant_starting_credits
from markets.store import record_price
from markets.trading import Trading
from news.render import render_article
from news.service import ArticleFields, Newsroom
from refusals import Refusal
from settings import Settings, load_settings


async def _database_is_empty() -> bool:
    return not (await User.all().exists() or await Article.all().exists())


async def load_demo_data() -> bool:
    """Insert the demo data set if the database has no users and no articles.

    Tortoise must be initialised. Returns whether anything was loaded. Everything goes in one
    transaction: either the whole data set is there or none of it.
    """
    if not await _database_is_empty():
        return False
    data = read_demo_data()
    plan = build_plan(data)
    password_hash = hash_password(DEMO_PASSWORD)

    async with in_transaction() as conn:
        await User.bulk_create(
            [
                User(
                    username=u.username,
                    display_name=u.display_name,
                    password_hash=password_hash,
                    role=u.role,
                    created_at=BASE - timedelta(days=u.joined_days_ago, hours=3),
                )
                for u in data.users
            ],
            using_db=conn,
        )
        user_ids: dict[str, int] = dict(await User.all(using_db=conn).values_list("username", "id"))
        # Every account starts with the sign-up grant, through the ledger like a real sign-up.
        grant = load_settings().signup_grant_cents
        for u in data.users:
            await grant_starting_credits(
                conn, user_ids[u.username], grant, BASE - timedelta(days=u.joined_days_ago, hours=3)
            )

        await Author.bulk_create(
            [
                Author(
                    slug=slug,
                    name=name,
                    bio=bio,
                    user_id=user_ids[username] if username else None,
                )
                for slug, name, bio, username in data.authors
            ],
            using_db=conn,
        )
        author_ids: dict[str, int] = dict(await Author.all(using_db=conn).values_list("slug", "id"))

        # One at a time: a category's path holds its own id.
        category_ids: dict[str, int] = {}
        category_paths: dict[str, str] = {}
        positions: dict[str | None, int] = {}
        for slug, name, parent in data.categories:
            position = positions.get(parent, 0)
            positions[parent] = position + 1
            category = await Category.create(
                slug=slug,
                name=name,
                parent_id=category_ids[parent] if parent else None,
                path="",
                depth=category_paths[parent].count("/") - 1 if parent else 0,
                position=position,
                using_db=conn,
            )
            category.path = f"{category_paths[parent] if parent else '/'}{category.id}/"
            await category.save(using_db=conn, update_fields=["path"])
            category_ids[slug] = category.id
            category_paths[slug] = category.path

        await Tag.bulk_create(
            [Tag(slug=slug, name=name) for slug, name in data.tags],
            using_db=conn,
        )
        tag_ids: dict[str, int] = dict(await Tag.all(using_db=conn).values_list("slug", "id"))

        await Article.bulk_create(
            [
                Article(
                    slug=a.slug,
                    title=a.spec.title,
                    excerpt=a.spec.excerpt,
                    body=a.body,
                    word_count=word_count(a.body),
                    published_at=a.published_at,
                    updated_at=a.updated_at,
                    featured=a.spec.featured,
                    author_id=author_ids[a.spec.author],
                    category_id=category_ids[a.spec.category],
                    comment_count=a.comment_count,
                    comment_seq=a.comment_seq,
                    state=ArticleState.PUBLISHED,
                    first_published_at=a.published_at,
                    announced_at=a.published_at,
                )
                for a in plan
            ],
            using_db=conn,
        )
        article_ids: dict[str, int] = dict(
            await Article.all(using_db=conn).values_list("slug", "id")
        )
        await ArticleHtml.bulk_create(
            [
                ArticleHtml(article_id=article_ids[a.slug], html=render_article(a.body))
                for a in plan
            ],
            using_db=conn,
        )
        await ArticleTag.bulk_create(
            [
                ArticleTag(article_id=article_ids[a.slug], tag_id=tag_ids[tag])
                for a in plan
                for tag in a.spec.tags
            ],
            using_db=conn,
        )

        # Comments go in oldest article first, in sequence order, so ids follow creation order;
        # parents are linked afterwards, once every comment has its id.
        await Comment.bulk_create(
            [
                Comment(
                    article_id=article_ids[a.slug],
                    parent_id=None,
                    author_id=user_ids[c.username],
                    sequence=c.sequence,
                    body=c.body,
                    body_html=render_markdown(c.body),
                    created_at=c.created_at,
                    edited_at=c.edited_at,
                    deleted=c.deleted,
                    reply_count=c.reply_count,
                )
                for a in plan
                for c in a.comments
            ],
            batch_size=500,
            using_db=conn,
        )
        comment_ids: dict[tuple[int, int], int] = {
            (article_id, sequence): comment_id
            for comment_id, article_id, sequence in await Comment.all(using_db=conn).values_list(
                "id", "article_id", "sequence"
            )
        }
        links = [
            Comment(
                id=comment_ids[(article_ids[a.slug], c.sequence)],
                parent_id=comment_ids[(article_ids[a.slug], c.parent_sequence)],
            )
            for a in plan
            for c in a.comments
            if c.parent_sequence is not None
        ]
        if links:
            await Comment.bulk_update(links, fields=["parent_id"], batch_size=200, using_db=conn)

        await Market.bulk_create(
            [
                Market(
                    slug=m.slug,
                    question=m.question,
                    description=m.description,
                    resolution_criteria=m.resolution_criteria,
                    created_at=BASE - timedelta(hours=m.created_hours_ago),
                    created_by_id=user_ids[m.created_by] if m.created_by else None,
                    state=MarketState.OPEN,
                    closes_at=m.closes_at,
                    resolved_at=None,
                    resolved_outcome_id=None,
                    liquidity_cents=m.liquidity_cents,
                    volume_cents=0,
                    trader_count=0,
                    odds_seq=0,
                )
                for m in data.markets
            ],
            using_db=conn,
        )
        market_ids: dict[str, int] = dict(await Market.all(using_db=conn).values_list("slug", "id"))
        await Outcome.bulk_create(
            [
                Outcome(market_id=market_ids[m.slug], position=i, label=label, shares_units=0)
                for m in data.markets
                for i, label in enumerate(m.outcomes)
            ],
            using_db=conn,
        )
        await MarketTag.bulk_create(
            [
                MarketTag(market_id=market_ids[m.slug], tag_id=tag_ids[tag])
                for m in data.markets
                for tag in m.tags
            ],
            using_db=conn,
        )
        await MarketArticle.bulk_create(
            [
                MarketArticle(market_id=market_ids[m.slug], article_id=article_ids[slug])
                for m in data.markets
                for slug in m.articles
            ],
            using_db=conn,
        )
        # Each market maker is funded by the issuer, as createMarket does.
        for m in data.markets:
            created = BASE - timedelta(hours=m.created_hours_ago)
            await fund_market(conn, market_ids[m.slug], m.liquidity_cents, created)
            even = 1 / len(m.outcomes)
            await record_price(conn, market_ids[m.slug], [even] * len(m.outcomes), created)
    await _trade_history(data, market_ids, user_ids)
    await _newsroom_drafts()
    return True


async def _newsroom_drafts() -> None:
    """The editor's drafts and scheduled article (``data/newsroom.toml``), written through the
    newsroom as the editor would: invisible to readers."""
    with (DATA_DIR / "newsroom.toml").open("rb") as file:
        drafts = tomllib.load(file)["drafts"]
    editor = await User.get(username="editor")
    newsroom = Newsroom(load_settings(), publish=discard)
    for draft in drafts:
        article = await newsroom.create(
            editor,
            ArticleFields(
                title=draft["title"],
                excerpt=draft["excerpt"],
                body=draft["body"].strip(),
                category_slug=draft["category"],
                tag_slugs=list(draft["tags"]),
            ),
        )
        if "publish_in_days" in draft:
            when = now() + timedelta(days=int(draft["publish_in_days"]))
            await newsroom.publish(editor, article.id, when)


class _WalkingClock:
    """A clock the demo trades set by hand, so the charts have days of history."""

    def __init__(self) -> None:
        self.now = BASE

    def __call__(self) -> datetime:
        return self.now


async def _trade_history(
    data: DemoData, market_ids: dict[str, int], user_ids: dict[str, int]
) -> None:
    """Trade most markets through the real engine, spread over the days before BASE."""
    # A generator of its own, apart from the planner's: trades never shift the articles.
    rng = random.Random(20261128)
    clock = _WalkingClock()
    trading = Trading(Settings(), publish=discard, clock=clock)
    traders = [u for u in data.users if u.role == Role.READER]
    users = {u.username: await User.get(id=user_ids[u.username]) for u in traders}
    for m in data.markets[: max(1, len(data.markets) - 3)]:
        market_id = market_ids[m.slug]
        outcomes = await Outcome.filter(market_id=market_id).order_by("position")
        favourite = rng.randrange(len(outcomes))
        start = BASE - timedelta(hours=m.created_hours_ago)
        end = min(BASE, m.closes_at - timedelta(hours=1))
        count = rng.randint(8, 30)
        step = (end - start) / (count + 1)
        for n in range(count):
            clock.now = start + step * (n + 1) + timedelta(minutes=rng.randint(0, 30))
            user = users[rng.choice(traders).username]
            held = [
                p
                for p in await Position.filter(user_id=user.id, market_id=market_id)
                if p.shares_units > 0
            ]
            if held and rng.random() < 0.25:
                position = rng.choice(held)
                units = max(1, position.shares_units // rng.choice([2, 3, 1]))
                with contextlib.suppress(Refusal):  # e.g. a sale worth under a cent
                    await trading.sell(user, position.outcome_id, units)
                continue
            index = favourite if rng.random() < 0.6 else rng.randrange(len(outcomes))
            amount = rng.choice([500, 1000, 1500, 2500, 4000, 6000])
            with contextlib.suppress(Refusal):  # a reader who has spent everything
                await trading.buy(user, outcomes[index].id, amount)


async def _load(settings: Settings) -> bool:
    await Tortoise.init(config=tortoise_config(settings))
    try:
        return await load_demo_data()
    finally:
        await Tortoise.close_connections()


def main() -> None:
    """``python -m demo``: load the demo data into an empty, migrated database."""
    settings = load_settings()
    if settings.is_production:
        print(
            "refusing to load demo data: AGORA_ENV is 'production' "
            "(demo data is for development and test databases only)",
            file=sys.stderr,
        )
        sys.exit(2)
    loaded = asyncio.run(_load(settings))
    print("demo data loaded" if loaded else "database not empty: demo data not loaded")


if __name__ == "__main__":
    main()
