"""Site-wide counts."""

from __future__ import annotations

from decimal import Decimal

import strawberry


@strawberry.type(description="Site-wide counts for a dashboard or footer.")
class SiteStats:
    article_count: int = strawberry.field(description="Published articles.")
    comment_count: int = strawberry.field(description="Visible comments, replies included.")
    market_count: int = strawberry.field(description="Markets in any state.")
    open_market_count: int = strawberry.field(description="Markets open for trading now.")
    trader_count: int = strawberry.field(description="Accounts that have ever traded.")
    volume: Decimal = strawberry.field(description="Credits traded on all markets.")
