"""The markets' inputs for reads: market filters and trade previews (mutation inputs live with
their mutations)."""

from __future__ import annotations

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
