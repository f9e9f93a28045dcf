"""The markets' inputs: market filters, trade previews, and the trading and market mutations'."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from api.markets.types import MarketStatus


@strawberry.input(description="Narrows a market list; all given fields must match.")
class MarketFilter:
    status: MarketStatus | None = strawberry.field(
        default=None, description="Markets in this status."
    )
    tag_slug: str | None = strawberry.field(default=None, description="Markets with this tag.")
    search: str | None = strawberry.field(
        default=None,
        description=(
            "Full-text search over the question and description, read as `search` reads its "
            "query (≤ 200 characters); most relevant first unless `orderBy` is given."
        ),
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


@strawberry.input(description="Spend credits on an outcome.")
class BuySharesInput:
    outcome_id: strawberry.ID = strawberry.field(description="The outcome to buy.")
    amount: Decimal = strawberry.field(description="Credits to spend exactly (2 places).")
    min_shares: Decimal | None = strawberry.field(
        default=None, description="Slippage guard: refuse if this buys fewer shares."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Your key for this request (24 h): a retry returns the first trade.",
    )


@strawberry.input(description="Sell shares of an outcome.")
class SellSharesInput:
    outcome_id: strawberry.ID = strawberry.field(description="The outcome to sell.")
    shares: Decimal = strawberry.field(description="Shares to sell (4 places).")
    min_amount: Decimal | None = strawberry.field(
        default=None, description="Slippage guard: refuse if the proceeds are less."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Your key for this request (24 h): a retry returns the first trade.",
    )


@strawberry.input(description="A new market (AUTHOR and above).")
class CreateMarketInput:
    question: str = strawberry.field(description="What it asks (10–300 characters).")
    description: str = strawberry.field(description="Background for traders.")
    resolution_criteria: str = strawberry.field(description="Exactly how it will be settled.")
    outcomes: list[str] = strawberry.field(description="2 to 10 distinct answers.")
    closes_at: datetime = strawberry.field(description="When trading stops (future, UTC).")
    liquidity: Decimal = strawberry.field(
        description="The maker's subsidy and maximum loss, at least the minimum (10.00)."
    )
    article_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Articles that discuss it."
    )
    tag_slugs: list[str] = strawberry.field(default_factory=list, description="Its tags.")


@strawberry.input(description="Settle a market on its winning outcome (ADMIN).")
class ResolveMarketInput:
    market_id: strawberry.ID = strawberry.field(description="The market.")
    outcome_id: strawberry.ID = strawberry.field(description="The winning outcome.")


@strawberry.input(description="Call a market off and refund traders (ADMIN).")
class CancelMarketInput:
    market_id: strawberry.ID = strawberry.field(description="The market.")
