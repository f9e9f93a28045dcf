"""The markets' root fields: markets, trade previews, the leaderboard."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

import clock
from api.core.amounts import money, shares, to_cents, to_share_units
from api.core.connection import After, Before, Connection, First, Last, load_connection
from api.core.errors import BadUserInput, Refused
from api.core.lists import relevance
from api.core.node import from_global_id
from api.markets.inputs import MarketFilter, QuoteInput
from api.markets.lists import MarketFilterValues, market_orders, markets_source
from api.markets.loaders import EVERYONE
from api.markets.types import (
    LeaderboardEntry,
    Market,
    MarketOrder,
    Quote,
    outcome_types,
    user_from_row,
)
from refusals import Refusal, validation


@strawberry.field(description="A market by slug.")
async def market(
    info: Info, slug: Annotated[str, strawberry.argument(description="The URL name.")]
) -> Market | None:
    row = await info.context.loaders.market_by_slug.load(slug)
    return Market.from_row(row) if row else None


@strawberry.field(description="Markets, filtered and ordered.")
def markets(
    info: Info,
    first: First = None,
    after: After = None,
    last: Last = None,
    before: Before = None,
    filter: Annotated[
        MarketFilter | None, strawberry.argument(description="Narrows the list.")
    ] = None,
    order_by: Annotated[
        MarketOrder | None,
        strawberry.argument(
            description=(
                "The order of the list. Left out: TRENDING, or most relevant first when the "
                "filter has a `search`."
            )
        ),
    ] = None,
) -> Connection[Market]:
    now = clock.now()
    values = None
    if filter is not None:
        values = MarketFilterValues(
            status=filter.status.name if filter.status else None,
            tag_slug=filter.tag_slug,
            search=filter.search,
        )
    return load_connection(
        info,
        None,
        markets_source(values, now),
        (
            order_by is None
            and relevance(
                "Market",
                None if filter is None else filter.search,
                "m",
                market_orders("NEWEST", now).keys,
            )
        )
        or market_orders((order_by or MarketOrder.TRENDING).name, now),
        Market.from_row,
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
    info: Info,
    first: Annotated[int, strawberry.argument(description="How many (0–100).")] = 20,
) -> list[LeaderboardEntry]:
    if not 0 <= first <= info.context.settings.max_page_size:
        raise BadUserInput(
            f"`first` must be between 0 and {info.context.settings.max_page_size}.",
            field="first",
        )
    rows = (await info.context.loaders.ranking_by_scope.load(EVERYONE)).ordered[:first]
    users = await info.context.loaders.user_by_id.load_many([r.user_id for r in rows])
    return [
        LeaderboardEntry(
            rank=i + 1,
            user=user_from_row(user),
            profit=money(row.profit_cents),
            volume=money(row.volume_cents),
        )
        for i, (row, user) in enumerate(zip(rows, users, strict=True))
    ]
