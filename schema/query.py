"""The root Query type."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.types import Info

from db import models
from refusals import Refusal, validation
from resolvers import leaderboard, lists, nodes, stats
from resolvers.loaders import now_utc
from schema.amounts import to_cents, to_share_units
from schema.connection import After, Before, Connection, First, Last, load_connection
from schema.errors import BadUserInput, Refused
from schema.node import from_global_id
from schema.permissions import require_role
from schema.types import (
    Article,
    ArticleOrder,
    Author,
    Category,
    Comment,
    LeaderboardEntry,
    Market,
    MarketOrder,
    MarketStatus,
    Node,
    Quote,
    SiteStats,
    Tag,
    User,
    money,
    outcome_types,
    shares,
)


@strawberry.input(description="Narrows an article list; all given fields must match.")
class ArticleFilter:
    category_slug: str | None = strawberry.field(
        default=None, description="Articles in this category or any category inside it."
    )
    tag_slug: str | None = strawberry.field(default=None, description="Articles with this tag.")
    author_slug: str | None = strawberry.field(
        default=None, description="Articles with this byline."
    )
    featured: bool | None = strawberry.field(
        default=None, description="Only featured (true) or only other (false) articles."
    )
    search: str | None = strawberry.field(
        default=None,
        description="Words in the title, excerpt or body, case-insensitive (≤ 200 characters).",
    )


@strawberry.input(description="Narrows a market list; all given fields must match.")
class MarketFilter:
    status: MarketStatus | None = strawberry.field(
        default=None, description="Markets in this status."
    )
    tag_slug: str | None = strawberry.field(default=None, description="Markets with this tag.")
    search: str | None = strawberry.field(
        default=None,
        description="Words in the question or description, case-insensitive (≤ 200 characters).",
    )


@strawberry.input(
    description="A trade to preview: exactly one of `amount` (a purchase spending that amount) "
    "or `shares` (a sale of that many shares)."
)
class QuoteInput:
    outcome_id: strawberry.ID = strawberry.field(description="The outcome to trade.")
    amount: Decimal | None = strawberry.field(
        default=None, description="Credits to spend (a purchase), 2 decimal places at most."
    )
    shares: Decimal | None = strawberry.field(
        default=None, description="Shares to sell, 4 decimal places at most."
    )


@strawberry.type(description="Every read entry point of the graph.")
class Query:
    @strawberry.field(description="Any object by its global ID; null if there is none.")
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global ID.")],
    ) -> Node | None:
        return await nodes.load_node(info, id)

    @strawberry.field(
        description="Objects by global ID (at most 100), in the same order; null for a miss."
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[
            list[strawberry.ID], strawberry.argument(description="Up to 100 global IDs.")
        ],
    ) -> list[Node | None]:
        limit = info.context.settings.max_node_ids
        if len(ids) > limit:
            raise BadUserInput(f"`ids` takes at most {limit} IDs, got {len(ids)}.", field="ids")
        return await nodes.load_nodes(info, [str(gid) for gid in ids])

    @strawberry.field(description="An article by its slug.")
    async def article(
        self, info: Info, slug: Annotated[str, strawberry.argument(description="The URL name.")]
    ) -> Article | None:
        row = await info.context.loaders.article_by_slug.load(slug)
        return Article.from_row(row) if row else None

    @strawberry.field(description="Published articles, filtered and ordered.")
    async def articles(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            ArticleFilter | None, strawberry.argument(description="Narrows the list.")
        ] = None,
        order_by: Annotated[
            ArticleOrder, strawberry.argument(description="The order of the list.")
        ] = ArticleOrder.NEWEST,
    ) -> Connection[Article]:
        values = None
        if filter is not None:
            values = lists.ArticleFilterValues(
                category_slug=filter.category_slug,
                tag_slug=filter.tag_slug,
                author_slug=filter.author_slug,
                featured=filter.featured,
                search=filter.search,
            )
        return await load_connection(
            info,
            None,
            lists.articles_source(values),
            lists.ARTICLE_ORDERS[order_by.name],
            Article.from_row,
            first,
            after,
            last,
            before,
        )

    @strawberry.field(description="An author by slug.")
    async def author(
        self, info: Info, slug: Annotated[str, strawberry.argument(description="The URL name.")]
    ) -> Author | None:
        row = await info.context.loaders.author_by_slug.load(slug)
        return Author.from_row(row) if row else None

    @strawberry.field(description="All authors, by name.")
    async def authors(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Author]:
        return await load_connection(
            info,
            None,
            lists.AUTHORS,
            lists.AUTHORS_ORDER,
            Author.from_row,
            first,
            after,
            last,
            before,
        )

    @strawberry.field(description="A tag by slug.")
    async def tag(
        self, info: Info, slug: Annotated[str, strawberry.argument(description="The URL name.")]
    ) -> Tag | None:
        row = await info.context.loaders.tag_by_slug.load(slug)
        return Tag.from_row(row) if row else None

    @strawberry.field(description="All tags, by name.")
    async def tags(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Tag]:
        return await load_connection(
            info, None, lists.TAGS, lists.TAGS_ORDER, Tag.from_row, first, after, last, before
        )

    @strawberry.field(description="A category by slug.")
    async def category(
        self, info: Info, slug: Annotated[str, strawberry.argument(description="The URL name.")]
    ) -> Category | None:
        tree = await info.context.loaders.category_tree()
        row = tree.by_slug.get(slug)
        return Category.from_row(row) if row else None

    @strawberry.field(description="The top-level categories; their children nest.")
    async def categories(self, info: Info) -> list[Category]:
        tree = await info.context.loaders.category_tree()
        return [Category.from_row(row) for row in tree.children.get(None, [])]

    @strawberry.field(description="A market by slug.")
    async def market(
        self, info: Info, slug: Annotated[str, strawberry.argument(description="The URL name.")]
    ) -> Market | None:
        row = await info.context.loaders.market_by_slug.load(slug)
        return Market.from_row(row) if row else None

    @strawberry.field(description="Markets, filtered and ordered.")
    async def markets(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            MarketFilter | None, strawberry.argument(description="Narrows the list.")
        ] = None,
        order_by: Annotated[
            MarketOrder, strawberry.argument(description="The order of the list.")
        ] = MarketOrder.TRENDING,
    ) -> Connection[Market]:
        now = now_utc()
        values = None
        if filter is not None:
            values = lists.MarketFilterValues(
                status=filter.status.name if filter.status else None,
                tag_slug=filter.tag_slug,
                search=filter.search,
            )
        return await load_connection(
            info,
            None,
            lists.markets_source(values, now),
            lists.market_orders(order_by.name, now),
            Market.from_row,
            first,
            after,
            last,
            before,
        )

    @strawberry.field(description="The logged-in account; null when anonymous.")
    def me(self, info: Info) -> User | None:
        viewer = info.context.viewer
        return User.from_row(viewer) if viewer else None

    @strawberry.field(
        description="The moderation queue: live comments with reports, most reported first "
        "(MODERATOR and ADMIN only)."
    )
    async def reported_comments(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Comment]:
        require_role(info, models.Role.MODERATOR)
        return await load_connection(
            info,
            None,
            lists.REPORTED_COMMENTS,
            lists.REPORTED_ORDER,
            Comment.from_row,
            first,
            after,
            last,
            before,
        )

    @strawberry.field(
        description=(
            "A preview of a trade at the current prices, by the same code as the trade itself; "
            "changes nothing. Refusals are errors whose extensions.code is the ErrorCode the "
            "trade would have given."
        )
    )
    async def quote(
        self,
        info: Info,
        input: Annotated[QuoteInput, strawberry.argument(description="The trade to preview.")],
    ) -> Quote:
        outcome_id = from_global_id(str(input.outcome_id), "Outcome")[1]
        trading = info.context.services.trading
        viewer = info.context.viewer
        try:
            if (input.amount is None) == (input.shares is None):
                raise validation("Give exactly one of amount and shares.", "amount")
            if input.amount is not None:
                state, plan = await trading.quote_buy(
                    viewer, outcome_id, to_cents(input.amount, "amount")
                )
            else:
                assert input.shares is not None
                state, plan = await trading.quote_sell(
                    viewer, outcome_id, to_share_units(input.shares, "shares")
                )
        except Refusal as refusal:
            raise Refused(refusal.code, refusal.message, field=refusal.field) from refusal
        outcome = outcome_types(state.market, state.outcomes)[plan.index]
        return Quote(
            outcome=outcome,
            shares=shares(abs(plan.shares_units)),
            amount=money(abs(plan.amount_cents)),
            average_price=plan.average_price,
            probability_before=plan.probability_before,
            probability_after=plan.probability_after,
        )

    @strawberry.field(description="Traders by profit (realised + unrealised), then volume.")
    async def leaderboard(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="How many (0–100).")] = 20,
    ) -> list[LeaderboardEntry]:
        if not 0 <= first <= info.context.settings.max_page_size:
            raise BadUserInput(
                f"`first` must be between 0 and {info.context.settings.max_page_size}.",
                field="first",
            )
        rows = await leaderboard.standings(first)
        users = await info.context.loaders.user_by_id.load_many([r.user_id for r in rows])
        return [
            LeaderboardEntry(
                rank=i + 1,
                user=User.from_row(user),
                profit=money(row.profit_cents),
                volume=money(row.volume_cents),
            )
            for i, (row, user) in enumerate(zip(rows, users, strict=True))
        ]

    @strawberry.field(description="Site-wide counts.")
    async def stats(self, info: Info) -> SiteStats:
        values = await stats.site_stats(now_utc())
        return SiteStats(
            article_count=values.article_count,
            comment_count=values.comment_count,
            market_count=values.market_count,
            open_market_count=values.open_market_count,
            trader_count=values.trader_count,
            volume=money(values.volume_cents),
        )
