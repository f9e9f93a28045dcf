"""The site-wide root fields."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

import clock
from api.core.amounts import money
from api.site.stats import site_stats
from api.site.types import SiteStats


@strawberry.field(description="Site-wide counts.")
async def stats(info: Info) -> SiteStats:
    values = await site_stats(clock.now())
    return SiteStats(
        article_count=values.article_count,
        comment_count=values.comment_count,
        market_count=values.market_count,
        open_market_count=values.open_market_count,
        trader_count=values.trader_count,
        volume=money(values.volume_cents),
    )
