"""The object types of the graph. Fields read rows already loaded; relations go through loaders."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from db import models
from markets import lmsr
from resolvers import lists
from resolvers.loaders import now_utc
from schema.connection import After, Before, Connection, First, Last, load_connection
from schema.errors import BadUserInput
from schema.node import to_global_id
from schema.permissions import has_role, require_role, require_self_or_admin

WORDS_PER_MINUTE = 200


def money(cents: int) -> Decimal:
    """Cents as a Decimal with exactly 2 places."""
    return Decimal(int(cents)).scaleb(-2)


def shares(units: int) -> Decimal:
    """Ten-thousandths of a share as a Decimal with 4 places."""
    return Decimal(int(units)).scaleb(-4)


def initials(name: str) -> str:
    """First letters of the first and last words: "Oliver Scott" → "OS", "Plato" → "P"."""
    words = [w for w in name.replace("-", " ").split() if w[:1].isalnum()]
    if not words:
        return ""
    if len(words) == 1:
        return words[0][0].upper()
    return (words[0][0] + words[-1][0]).upper()


def reading_time(word_count: int) -> int:
    """Minutes to read ``word_count`` words at 200 a minute, rounded up, at least 1."""
    return max(1, math.ceil(word_count / WORDS_PER_MINUTE))


@strawberry.enum(description="What an account may do; each role includes the ones before it.")
class Role(Enum):
    READER = strawberry.enum_value("READER", description="Reads, comments and trades.")
    AUTHOR = strawberry.enum_value("AUTHOR", description="Also writes articles, creates markets.")
    MODERATOR = strawberry.enum_value("MODERATOR", description="Also moderates comments.")
    ADMIN = strawberry.enum_value("ADMIN", description="Also settles markets; sees balances.")


@strawberry.enum(description="The life cycle of a market.")
class MarketStatus(Enum):
    OPEN = strawberry.enum_value("OPEN", description="Trading.")
    CLOSED = strawberry.enum_value(
        "CLOSED", description="Past `closesAt`, not yet resolved or cancelled: no trading."
    )
    RESOLVED = strawberry.enum_value(
        "RESOLVED", description="Settled: each share of `resolvedOutcome` paid 1.00."
    )
    CANCELLED = strawberry.enum_value(
        "CANCELLED", description="Called off: traders' net costs were refunded."
    )


@strawberry.enum(description="Orders of an article list.")
class ArticleOrder(Enum):
    NEWEST = strawberry.enum_value("NEWEST", description="Latest published first.")
    OLDEST = strawberry.enum_value("OLDEST", description="Earliest published first.")
    MOST_COMMENTED = strawberry.enum_value(
        "MOST_COMMENTED", description="Most visible comments first, then newest."
    )


@strawberry.enum(description="Orders of a comment list.")
class CommentOrder(Enum):
    NEWEST = strawberry.enum_value("NEWEST", description="Latest first.")
    OLDEST = strawberry.enum_value("OLDEST", description="Earliest first.")
    TOP = strawberry.enum_value("TOP", description="Most replies first, then newest.")


@strawberry.enum(description="Orders of a market list.")
class MarketOrder(Enum):
    TRENDING = strawberry.enum_value(
        "TRENDING", description="Most volume traded in the last 24 hours, then newest."
    )
    NEWEST = strawberry.enum_value("NEWEST", description="Latest created first.")
    CLOSING_SOON = strawberry.enum_value(
        "CLOSING_SOON",
        description="Open markets closing soonest first; closed and settled ones after.",
    )
    VOLUME = strawberry.enum_value("VOLUME", description="Most volume traded ever first.")


@strawberry.enum(description="Bucket sizes of a price history.")
class HistoryInterval(Enum):
    MINUTE = strawberry.enum_value("MINUTE", description="One point a minute.")
    HOUR = strawberry.enum_value("HOUR", description="One point an hour.")
    DAY = strawberry.enum_value("DAY", description="One point a day.")


@strawberry.interface(description="An object with a global ID: any of them is `node(id:)`.")
class Node:
    id: strawberry.ID = strawberry.field(description="The global, opaque ID of this object.")


@strawberry.type(description="An account: a reader, staff behind a byline, a moderator or admin.")
class User(Node):
    pk: strawberry.Private[int]
    username: str = strawberry.field(description="The unique login name.")
    display_name: str = strawberry.field(description="The name shown beside comments.")
    initials: str = strawberry.field(description="Up to two letters for an avatar.")
    created_at: datetime = strawberry.field(description="When the account was created.")
    role: Role = strawberry.field(description="What the account may do.")

    @strawberry.field(
        description=(
            "Credits in the wallet: readable by the account itself and admins only (anyone "
            "else gets FORBIDDEN and null)."
        )
    )
    async def balance(self, info: Info) -> Decimal | None:
        require_self_or_admin(info, self.pk)
        cents = await info.context.loaders.balance_by_user.load(self.pk)
        return None if cents is None else money(cents)

    @strawberry.field(description="Holdings with shares or realised profit, newest first.")
    async def positions(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Position]:
        return await load_connection(
            info,
            self.pk,
            lists.POSITIONS_BY_USER,
            lists.POSITIONS_ORDER,
            Position.from_row,
            first,
            after,
            last,
            before,
        )

    @strawberry.field(description="Trades, newest first (trading is public).")
    async def trades(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Trade]:
        return await load_connection(
            info,
            self.pk,
            lists.TRADES_BY_USER,
            lists.TRADES_ORDER,
            Trade.from_row,
            first,
            after,
            last,
            before,
        )

    @classmethod
    def from_row(cls, row: models.User) -> User:
        return cls(
            id=strawberry.ID(to_global_id("User", row.id)),
            pk=row.id,
            username=row.username,
            display_name=row.display_name,
            initials=initials(row.display_name),
            created_at=row.created_at,
            role=Role(row.role.value if isinstance(row.role, Enum) else row.role),
        )


@strawberry.type(description="A byline.")
class Author(Node):
    pk: strawberry.Private[int]
    user_id: strawberry.Private[int | None]
    slug: str = strawberry.field(description="The URL name: /authors/<slug>.")
    name: str = strawberry.field(description="The full name shown in the byline.")
    initials: str = strawberry.field(
        description='First letters of the first and last name: "Oliver Scott" → "OS".'
    )
    bio: str | None = strawberry.field(description="A short biography, if any.")

    @classmethod
    def from_row(cls, row: models.Author) -> Author:
        return cls(
            id=strawberry.ID(to_global_id("Author", row.id)),
            pk=row.id,
            user_id=row.user_id,
            slug=row.slug,
            name=row.name,
            initials=initials(row.name),
            bio=row.bio,
        )

    @strawberry.field(description="The staff account behind the byline, if any.")
    async def user(self, info: Info) -> User | None:
        if self.user_id is None:
            return None
        row = await info.context.loaders.user_by_id.load(self.user_id)
        return User.from_row(row) if row else None

    @strawberry.field(description="How many articles carry this byline.")
    async def article_count(self, info: Info) -> int:
        return await info.context.loaders.count_by_parent.load((self.pk, lists.ARTICLES_BY_AUTHOR))

    @strawberry.field(description="The author's articles, newest first.")
    async def articles(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Article]:
        return await load_connection(
            info,
            self.pk,
            lists.ARTICLES_BY_AUTHOR,
            lists.ARTICLE_ORDERS["NEWEST"],
            Article.from_row,
            first,
            after,
            last,
            before,
        )


@strawberry.type(description="A node of the category tree (Politics › Diplomacy › Bilateral).")
class Category(Node):
    pk: strawberry.Private[int]
    parent_id: strawberry.Private[int | None]
    slug: str = strawberry.field(description="The URL name: /category/<slug>.")
    name: str = strawberry.field(description="The display name.")

    @classmethod
    def from_row(cls, row: models.Category) -> Category:
        return cls(
            id=strawberry.ID(to_global_id("Category", row.id)),
            pk=row.id,
            parent_id=row.parent_id,
            slug=row.slug,
            name=row.name,
        )

    @strawberry.field(description="The enclosing category; null at the top level.")
    async def parent(self, info: Info) -> Category | None:
        if self.parent_id is None:
            return None
        tree = await info.context.loaders.category_tree()
        row = tree.by_id.get(self.parent_id)
        return Category.from_row(row) if row else None

    @strawberry.field(description="The categories directly inside this one.")
    async def children(self, info: Info) -> list[Category]:
        tree = await info.context.loaders.category_tree()
        return [Category.from_row(row) for row in tree.children.get(self.pk, [])]

    @strawberry.field(description="Root → this category, for a breadcrumb trail.")
    async def breadcrumb(self, info: Info) -> list[Category]:
        tree = await info.context.loaders.category_tree()
        return [Category.from_row(row) for row in tree.breadcrumb(self.pk)]

    @strawberry.field(description="Articles in this category and all categories inside it.")
    async def articles(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        order_by: Annotated[
            ArticleOrder, strawberry.argument(description="The order of the list.")
        ] = ArticleOrder.NEWEST,
    ) -> Connection[Article]:
        return await load_connection(
            info,
            self.pk,
            lists.ARTICLES_BY_CATEGORY,
            lists.ARTICLE_ORDERS[order_by.name],
            Article.from_row,
            first,
            after,
            last,
            before,
        )


@strawberry.type(description="A topic label shared by articles and markets.")
class Tag(Node):
    pk: strawberry.Private[int]
    slug: str = strawberry.field(description="The URL name: /tag/<slug>.")
    name: str = strawberry.field(description="The display name.")

    @classmethod
    def from_row(cls, row: models.Tag) -> Tag:
        return cls(
            id=strawberry.ID(to_global_id("Tag", row.id)), pk=row.id, slug=row.slug, name=row.name
        )

    @strawberry.field(description="How many articles carry this tag.")
    async def article_count(self, info: Info) -> int:
        return await info.context.loaders.count_by_parent.load((self.pk, lists.ARTICLES_BY_TAG))

    @strawberry.field(description="Articles with this tag.")
    async def articles(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        order_by: Annotated[
            ArticleOrder, strawberry.argument(description="The order of the list.")
        ] = ArticleOrder.NEWEST,
    ) -> Connection[Article]:
        return await load_connection(
            info,
            self.pk,
            lists.ARTICLES_BY_TAG,
            lists.ARTICLE_ORDERS[order_by.name],
            Article.from_row,
            first,
            after,
            last,
            before,
        )

    @strawberry.field(description="Markets with this tag, newest first.")
    async def markets(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Market]:
        return await load_connection(
            info,
            self.pk,
            lists.MARKETS_BY_TAG,
            lists.market_orders("NEWEST", now_utc()),
            Market.from_row,
            first,
            after,
            last,
            before,
        )


@strawberry.type(description="A published story.")
class Article(Node):
    pk: strawberry.Private[int]
    author_id: strawberry.Private[int]
    category_id: strawberry.Private[int]
    slug: str = strawberry.field(description="The URL name: /articles/<slug>.")
    title: str = strawberry.field(description="The headline.")
    excerpt: str = strawberry.field(description="A one- or two-sentence summary for lists.")
    body: str = strawberry.field(description="The full text (markdown).")
    published_at: datetime = strawberry.field(description="When it was published.")
    updated_at: datetime = strawberry.field(description="When it was last changed.")
    reading_time_minutes: int = strawberry.field(
        description="ceil(words in body / 200), at least 1."
    )
    featured: bool = strawberry.field(description="Whether editors feature it on the home page.")
    comment_count: int = strawberry.field(
        description="Visible (not deleted) comments, replies included."
    )

    @classmethod
    def from_row(cls, row: models.Article) -> Article:
        return cls(
            id=strawberry.ID(to_global_id("Article", row.id)),
            pk=row.id,
            author_id=row.author_id,
            category_id=row.category_id,
            slug=row.slug,
            title=row.title,
            excerpt=row.excerpt,
            body=row.body,
            published_at=row.published_at,
            updated_at=row.updated_at,
            reading_time_minutes=reading_time(row.word_count),
            featured=bool(row.featured),
            comment_count=row.comment_count,
        )

    @strawberry.field(description="The byline.")
    async def author(self, info: Info) -> Author:
        return Author.from_row(await info.context.loaders.author_by_id.load(self.author_id))

    @strawberry.field(description="The most specific category.")
    async def category(self, info: Info) -> Category:
        tree = await info.context.loaders.category_tree()
        return Category.from_row(tree.by_id[self.category_id])

    @strawberry.field(
        description="Root → leaf categories: Politics › Diplomacy › Bilateral Relations."
    )
    async def breadcrumb(self, info: Info) -> list[Category]:
        tree = await info.context.loaders.category_tree()
        return [Category.from_row(row) for row in tree.breadcrumb(self.category_id)]

    @strawberry.field(description="The article's tags, by name.")
    async def tags(self, info: Info) -> list[Tag]:
        return [
            Tag.from_row(row) for row in await info.context.loaders.tags_by_article.load(self.pk)
        ]

    @strawberry.field(description="Top-level comments; replies nest under each.")
    async def comments(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        order_by: Annotated[
            CommentOrder, strawberry.argument(description="The order of the list.")
        ] = CommentOrder.NEWEST,
    ) -> Connection[Comment]:
        return await load_connection(
            info,
            self.pk,
            lists.TOP_LEVEL_COMMENTS,
            lists.COMMENT_ORDERS[order_by.name],
            Comment.from_row,
            first,
            after,
            last,
            before,
        )

    @strawberry.field(
        description=(
            "Articles sharing the most tags, then the same category, then newest; never this "
            "one. `first` is 0–20."
        )
    )
    async def related_articles(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="How many (0–20).")] = 5,
    ) -> list[Article]:
        limit = info.context.settings.max_related_articles
        if not 0 <= first <= limit:
            raise BadUserInput(f"`first` must be between 0 and {limit}, got {first}.")
        rows = await info.context.loaders.related_articles_by_article.load((self.pk, first))
        return [Article.from_row(row) for row in rows]

    @strawberry.field(description="The markets this article discusses.")
    async def markets(self, info: Info) -> list[Market]:
        rows = await info.context.loaders.markets_by_article.load(self.pk)
        return [Market.from_row(row) for row in rows]


@strawberry.type(description="A comment on an article, or a reply to one.")
class Comment(Node):
    pk: strawberry.Private[int]
    article_id: strawberry.Private[int]
    author_id: strawberry.Private[int]
    parent_id: strawberry.Private[int | None]
    sequence: int = strawberry.field(
        description="Per article: 1, 2, 3… in commit order (the resume cursor of commentAdded)."
    )
    body: str = strawberry.field(description='As written (markdown); "" once deleted.')
    body_html: str = strawberry.field(
        description="The body rendered and sanitised: safe to insert into a page."
    )
    created_at: datetime = strawberry.field(description="When it was posted.")
    edited_at: datetime | None = strawberry.field(description="When it was last edited, if ever.")
    deleted: bool = strawberry.field(description="Deleted comments keep their place, bodiless.")
    reply_count: int = strawberry.field(description="Visible direct replies.")
    report_count_value: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: models.Comment) -> Comment:
        deleted = bool(row.deleted)
        return cls(
            id=strawberry.ID(to_global_id("Comment", row.id)),
            pk=row.id,
            article_id=row.article_id,
            author_id=row.author_id,
            parent_id=row.parent_id,
            sequence=row.sequence,
            body="" if deleted else row.body,
            body_html="" if deleted else row.body_html,
            created_at=row.created_at,
            edited_at=row.edited_at,
            deleted=deleted,
            reply_count=row.reply_count,
            report_count_value=row.report_count,
        )

    @strawberry.field(description="Who wrote it.")
    async def author(self, info: Info) -> User:
        return User.from_row(await info.context.loaders.user_by_id.load(self.author_id))

    @strawberry.field(description="The article it is on.")
    async def article(self, info: Info) -> Article:
        return Article.from_row(await info.context.loaders.article_by_id.load(self.article_id))

    @strawberry.field(description="The comment this replies to; null for a top-level comment.")
    async def parent(self, info: Info) -> Comment | None:
        if self.parent_id is None:
            return None
        row = await info.context.loaders.comment_by_id.load(self.parent_id)
        return Comment.from_row(row) if row else None

    @strawberry.field(description="Direct replies, oldest first.")
    async def replies(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Comment]:
        return await load_connection(
            info,
            self.pk,
            lists.REPLIES,
            lists.REPLIES_ORDER,
            Comment.from_row,
            first,
            after,
            last,
            before,
        )

    @strawberry.field(description="How many users reported it: moderators only (else FORBIDDEN).")
    def report_count(self, info: Info) -> int | None:
        require_role(info, models.Role.MODERATOR)
        return self.report_count_value

    @strawberry.field(description="Whether the viewer may edit it (its author, not deleted).")
    def viewer_can_edit(self, info: Info) -> bool:
        viewer = info.context.viewer
        return viewer is not None and not self.deleted and viewer.id == self.author_id

    @strawberry.field(description="Whether the viewer may delete it (its author or a moderator).")
    def viewer_can_delete(self, info: Info) -> bool:
        viewer = info.context.viewer
        if viewer is None or self.deleted:
            return False
        return viewer.id == self.author_id or has_role(viewer, models.Role.MODERATOR)


@strawberry.type(description="One answer of a market, with its current probability.")
class Outcome(Node):
    pk: strawberry.Private[int]
    market_id: strawberry.Private[int]
    label: str = strawberry.field(description='The answer: "Yes", "No", a candidate\'s name…')
    probability: float = strawberry.field(
        description="The market's current probability of this answer, in [0, 1]."
    )

    @strawberry.field(description="The market it belongs to.")
    async def market(self, info: Info) -> Market:
        return Market.from_row(await info.context.loaders.market_by_id.load(self.market_id))


def market_status(row: models.Market, now: datetime | None = None) -> MarketStatus:
    """The public status: OPEN past ``closes_at`` reads CLOSED."""
    state = row.state.value if isinstance(row.state, Enum) else str(row.state)
    if state == "OPEN" and row.closes_at <= (now or now_utc()):
        return MarketStatus.CLOSED
    return MarketStatus(state)


def outcome_types(market: models.Market, outcomes: list[models.Outcome]) -> list[Outcome]:
    """The outcomes with their probabilities: LMSR prices, or 1 and 0s once resolved."""
    if market.resolved_outcome_id is not None:
        probs = [1.0 if o.id == market.resolved_outcome_id else 0.0 for o in outcomes]
    elif len(outcomes) >= 2:
        b = lmsr.liquidity_parameter(market.liquidity_cents / 100, len(outcomes))
        probs = lmsr.prices([o.shares_units / 10_000 for o in outcomes], b)
    else:
        probs = [1.0 for _ in outcomes]
    return [
        Outcome(
            id=strawberry.ID(to_global_id("Outcome", o.id)),
            pk=o.id,
            market_id=market.id,
            label=o.label,
            probability=p,
        )
        for o, p in zip(outcomes, probs, strict=True)
    ]


@strawberry.type(description="A prediction market run by an automated market maker (LMSR).")
class Market(Node):
    pk: strawberry.Private[int]
    row: strawberry.Private[models.Market]
    slug: str = strawberry.field(description="The URL name: /markets/<slug>.")
    question: str = strawberry.field(description="What the market asks.")
    description: str = strawberry.field(description="Background for traders.")
    resolution_criteria: str = strawberry.field(description="Exactly how it will be settled.")
    created_at: datetime = strawberry.field(description="When it was created.")
    closes_at: datetime = strawberry.field(description="When trading stops.")
    resolved_at: datetime | None = strawberry.field(description="When it was settled, if it was.")
    liquidity: Decimal = strawberry.field(
        description="The market maker's subsidy, which is also its maximum loss."
    )
    volume: Decimal = strawberry.field(description="Credits traded, buys and sells.")
    trader_count: int = strawberry.field(description="Distinct accounts that have traded.")

    @classmethod
    def from_row(cls, row: models.Market) -> Market:
        return cls(
            id=strawberry.ID(to_global_id("Market", row.id)),
            pk=row.id,
            row=row,
            slug=row.slug,
            question=row.question,
            description=row.description,
            resolution_criteria=row.resolution_criteria,
            created_at=row.created_at,
            closes_at=row.closes_at,
            resolved_at=row.resolved_at,
            liquidity=money(row.liquidity_cents),
            volume=money(row.volume_cents),
            trader_count=row.trader_count,
        )

    @strawberry.field(description="OPEN, CLOSED (past closesAt, unsettled), RESOLVED or CANCELLED.")
    def status(self) -> MarketStatus:
        return market_status(self.row)

    @strawberry.field(description="Who created it; null for the house.")
    async def created_by(self, info: Info) -> User | None:
        user_id = self.row.created_by_id
        if user_id is None:
            return None
        row = await info.context.loaders.user_by_id.load(user_id)
        return User.from_row(row) if row else None

    @strawberry.field(
        description="2 to 10 answers; probabilities sum to 1 (after resolution: 1 and 0s)."
    )
    async def outcomes(self, info: Info) -> list[Outcome]:
        rows = await info.context.loaders.outcomes_by_market.load(self.pk)
        return outcome_types(self.row, rows)

    @strawberry.field(description="The winning answer once resolved.")
    async def resolved_outcome(self, info: Info) -> Outcome | None:
        if self.row.resolved_outcome_id is None:
            return None
        rows = await info.context.loaders.outcomes_by_market.load(self.pk)
        for outcome in outcome_types(self.row, rows):
            if outcome.pk == self.row.resolved_outcome_id:
                return outcome
        return None

    @strawberry.field(description="Articles that discuss this market, newest first.")
    async def articles(self, info: Info) -> list[Article]:
        rows = await info.context.loaders.articles_by_market.load(self.pk)
        return [Article.from_row(row) for row in rows]

    @strawberry.field(description="Trades on this market, newest first.")
    async def trades(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Trade]:
        return await load_connection(
            info,
            self.pk,
            lists.TRADES_BY_MARKET,
            lists.TRADES_ORDER,
            Trade.from_row,
            first,
            after,
            last,
            before,
        )

    @strawberry.field(
        metadata={"max_items": 1000},  # what the query limits count it as
        description=(
            "The probabilities over time: the last point of each interval since `since` "
            "(default: the market's creation), at most 1000 points, kept after settlement."
        ),
    )
    async def price_history(
        self,
        info: Info,
        since: Annotated[
            datetime | None, strawberry.argument(description="The earliest time wanted.")
        ] = None,
        interval: Annotated[
            HistoryInterval, strawberry.argument(description="The bucket size.")
        ] = HistoryInterval.HOUR,
    ) -> list[PricePoint]:
        start = int(since.timestamp()) if since is not None else 0
        seconds = {"MINUTE": 60, "HOUR": 3600, "DAY": 86400}[interval.name]
        rows = await info.context.loaders.price_history_by_market.load((self.pk, start, seconds))
        return [PricePoint(at=row.at, probabilities=json.loads(row.probabilities)) for row in rows]

    @strawberry.field(description="The viewer's positions in this market; [] when anonymous.")
    async def viewer_position(self, info: Info) -> list[Position]:
        viewer = info.context.viewer
        if viewer is None:
            return []
        rows = await info.context.loaders.positions_by_user_market.load((viewer.id, self.pk))
        return [Position.from_row(row) for row in rows]

    @strawberry.field(description="The market's tags, by name.")
    async def tags(self, info: Info) -> list[Tag]:
        return [
            Tag.from_row(row) for row in await info.context.loaders.tags_by_market.load(self.pk)
        ]


@strawberry.type(description="The probabilities of a market at a moment.")
class PricePoint:
    at: datetime = strawberry.field(description="When the last change in this bucket happened.")
    probabilities: list[float] = strawberry.field(
        description="One per outcome, in the order of Market.outcomes."
    )


async def _outcome_probability(info: Info, market_id: int, outcome_id: int) -> float:
    market = await info.context.loaders.market_by_id.load(market_id)
    rows = await info.context.loaders.outcomes_by_market.load(market_id)
    for outcome in outcome_types(market, rows):
        if outcome.pk == outcome_id:
            return outcome.probability
    return 0.0


@strawberry.type(description="One executed purchase or sale.")
class Trade(Node):
    pk: strawberry.Private[int]
    market_id: strawberry.Private[int]
    outcome_id: strawberry.Private[int]
    user_id: strawberry.Private[int]
    shares: Decimal = strawberry.field(description="Shares: > 0 bought, < 0 sold.")
    amount: Decimal = strawberry.field(description="Credits paid (> 0) or received (< 0).")
    probability_before: float = strawberry.field(description="The outcome's probability before.")
    probability_after: float = strawberry.field(description="The outcome's probability after.")
    created_at: datetime = strawberry.field(description="When it executed.")

    @classmethod
    def from_row(cls, row: models.Trade) -> Trade:
        return cls(
            id=strawberry.ID(to_global_id("Trade", row.id)),
            pk=row.id,
            market_id=row.market_id,
            outcome_id=row.outcome_id,
            user_id=row.user_id,
            shares=shares(row.shares_units),
            amount=money(row.amount_cents),
            probability_before=row.probability_before,
            probability_after=row.probability_after,
            created_at=row.created_at,
        )

    @strawberry.field(description="The market traded.")
    async def market(self, info: Info) -> Market:
        return Market.from_row(await info.context.loaders.market_by_id.load(self.market_id))

    @strawberry.field(description="The outcome bought or sold.")
    async def outcome(self, info: Info) -> Outcome:
        return await _outcome(info, self.market_id, self.outcome_id)

    @strawberry.field(description="Who traded (trading is public).")
    async def user(self, info: Info) -> User:
        return User.from_row(await info.context.loaders.user_by_id.load(self.user_id))


async def _outcome(info: Info, market_id: int, outcome_id: int) -> Outcome:
    market = await info.context.loaders.market_by_id.load(market_id)
    rows = await info.context.loaders.outcomes_by_market.load(market_id)
    return next(o for o in outcome_types(market, rows) if o.pk == outcome_id)


def position_value_cents(row: models.Position, probability: float) -> int:
    """shares × probability, rounded down to the cent; after settlement, what it paid."""
    if row.settled_value_cents is not None:
        return int(row.settled_value_cents)
    return math.floor(row.shares_units * probability / 100)


@strawberry.type(description="A user's holding of one outcome.")
class Position:
    row: strawberry.Private[models.Position]
    shares: Decimal = strawberry.field(description="Shares held.")
    cost_basis: Decimal = strawberry.field(
        description="What the shares held cost, at average cost: a sale reduces it pro rata."
    )

    @classmethod
    def from_row(cls, row: models.Position) -> Position:
        return cls(row=row, shares=shares(row.shares_units), cost_basis=money(row.cost_basis_cents))

    @strawberry.field(description="The market.")
    async def market(self, info: Info) -> Market:
        return Market.from_row(await info.context.loaders.market_by_id.load(self.row.market_id))

    @strawberry.field(description="The outcome held.")
    async def outcome(self, info: Info) -> Outcome:
        return await _outcome(info, self.row.market_id, self.row.outcome_id)

    async def _value_cents(self, info: Info) -> int:
        p = await _outcome_probability(info, self.row.market_id, self.row.outcome_id)
        return position_value_cents(self.row, p)

    @strawberry.field(
        description=(
            "shares × probability, rounded down to the cent; after resolution shares × payout, "
            "after cancellation the refund."
        )
    )
    async def value(self, info: Info) -> Decimal:
        return money(await self._value_cents(info))

    @strawberry.field(description="value − costBasis + profit already realised by sales.")
    async def profit(self, info: Info) -> Decimal:
        value = await self._value_cents(info)
        return money(value - self.row.cost_basis_cents + self.row.realized_cents)


@strawberry.type(description="A preview of a trade at the current prices: nothing changes.")
class Quote:
    outcome: Outcome = strawberry.field(description="The outcome.")
    shares: Decimal = strawberry.field(description="Shares the trade would buy or sell.")
    amount: Decimal = strawberry.field(description="Credits it would cost or return.")
    average_price: float = strawberry.field(description="amount / shares.")
    probability_before: float = strawberry.field(description="The outcome's probability now.")
    probability_after: float = strawberry.field(description="Its probability after the trade.")


@strawberry.type(description="A trader's standing.")
class LeaderboardEntry:
    rank: int = strawberry.field(description="1 for the most profitable.")
    user: User = strawberry.field(description="The trader.")
    profit: Decimal = strawberry.field(description="Realised plus unrealised profit.")
    volume: Decimal = strawberry.field(description="Credits traded, buys and sells.")


@strawberry.type(description="Site-wide counts for a dashboard or footer.")
class SiteStats:
    article_count: int = strawberry.field(description="Published articles.")
    comment_count: int = strawberry.field(description="Visible comments, replies included.")
    market_count: int = strawberry.field(description="Markets in any state.")
    open_market_count: int = strawberry.field(description="Markets open for trading now.")
    trader_count: int = strawberry.field(description="Accounts that have ever traded.")
    volume: Decimal = strawberry.field(description="Credits traded on all markets.")


def as_type(type_name: str, row: Any) -> Any:
    """The schema object for a row of ``type_name`` (for node lookups)."""
    converters: dict[str, Callable[[Any], Any]] = {
        "Article": Article.from_row,
        "Author": Author.from_row,
        "Category": Category.from_row,
        "Tag": Tag.from_row,
        "Comment": Comment.from_row,
        "User": User.from_row,
        "Market": Market.from_row,
        "Trade": Trade.from_row,
    }
    return converters[type_name](row)
