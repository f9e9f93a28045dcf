"""Site-wide counts in one statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from db.models import visible_sql
from db.sql import fetch_dicts

# Articles and comments as readers count them: those of published, live articles.
_VISIBLE = visible_sql("a")


@dataclass(frozen=True)
class StatsValues:
    """The numbers behind SiteStats."""

    article_count: int
    comment_count: int
    market_count: int
    open_market_count: int
    trader_count: int
    volume_cents: int


async def site_stats(now: datetime) -> StatsValues:
    """Counts across the whole site (one round trip)."""
    rows = await fetch_dicts(
        f"""
        SELECT
          (SELECT COUNT(*) FROM articles a WHERE {_VISIBLE}) AS article_count,
          (SELECT COUNT(*) FROM comments c JOIN articles a ON a.id = c.article_id
            WHERE c.deleted = ? AND {_VISIBLE}) AS comment_count,
          (SELECT COUNT(*) FROM markets) AS market_count,
          (SELECT COUNT(*) FROM markets WHERE state = 'OPEN' AND closes_at > ?) AS open_markets,
          (SELECT COUNT(DISTINCT user_id) FROM trades) AS trader_count,
          (SELECT COALESCE(SUM(volume_cents), 0) FROM markets) AS volume_cents
        """,
        [now, False, now, now],
    )
    row = rows[0]
    return StatsValues(
        article_count=int(row["article_count"]),
        comment_count=int(row["comment_count"]),
        market_count=int(row["market_count"]),
        open_market_count=int(row["open_markets"]),
        trader_count=int(row["trader_count"]),
        volume_cents=int(row["volume_cents"]),
    )
