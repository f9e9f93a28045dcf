"""The markets' loaders: markets, outcomes, trades, positions, price history, their links."""

from __future__ import annotations

from collections import defaultdict

from api.core.dataloader import LoaderBase, by_field, grouped, lazy_loader, link_query
from api.markets.leaderboard import Ranking, ranking
from db import models
from db.sql import fetch_dicts, fetch_rows, placeholders, plain_rows


class MarketLoaders(LoaderBase):
    """Loaders of markets and trading; part of each request's ``api.loaders.Loaders``."""

    async def _positions_by_user_market(
        self, keys: list[tuple[int, int]]
    ) -> list[list[models.Position]]:
        users = list({u for u, _ in keys})
        markets = list({m for _, m in keys})
        rows = await models.Position.filter(
            user_id__in=users, market_id__in=markets, shares_units__gt=0
        ).order_by("outcome_id")
        return grouped(keys, (((r.user_id, r.market_id), r) for r in rows))

    async def _price_history(
        self, keys: list[tuple[int, int, int]]
    ) -> list[list[models.PricePoint]]:
        # (market, since epoch, bucket seconds): the last point of each bucket, the latest 1000
        # buckets per market; one statement for all markets asking the same since and bucket.
        by_window: dict[tuple[int, int], list[int]] = defaultdict(list)
        for market_id, since, bucket in keys:
            by_window[(since, bucket)].append(market_id)
        found: dict[tuple[int, int, int], list[models.PricePoint]] = {}
        for (since, bucket), market_ids in by_window.items():
            unique = list(set(market_ids))
            rows = await fetch_dicts(
                "SELECT * FROM (SELECT p.*, ROW_NUMBER() OVER "
                "(PARTITION BY p.market_id ORDER BY p.id DESC) AS _rn FROM price_points p "
                "JOIN (SELECT MAX(id) AS id FROM price_points "
                f"WHERE market_id IN ({placeholders(len(unique))}) AND at_epoch >= ? "
                "GROUP BY market_id, at_epoch / ?) last ON last.id = p.id) w "
                "WHERE _rn <= 1000 ORDER BY market_id, id",
                [*unique, since, bucket],
            )
            grouped: dict[int, list[models.PricePoint]] = defaultdict(list)
            build = plain_rows(models.PricePoint)
            for row in rows:
                grouped[row["market_id"]].append(build(row))
            for market_id in unique:
                found[(market_id, since, bucket)] = grouped.get(market_id, [])
        return [found[key] for key in keys]

    async def _outcomes_by_market(self, keys: list[int]) -> list[list[models.Outcome]]:
        unique = list(set(keys))
        rows = await fetch_rows(
            models.Outcome,
            f"SELECT * FROM outcomes WHERE market_id IN ({placeholders(len(unique))}) "
            "ORDER BY position",
            unique,
        )
        return grouped(keys, ((row.market_id, row) for row in rows))

    async def _tags_by_market(self, keys: list[int]) -> list[list[models.Tag]]:
        return await link_query(
            models.Tag, "tags", "market_tags", "market_id", "tag_id", keys, "t.name, t.id"
        )

    async def _markets_by_article(self, keys: list[int]) -> list[list[models.Market]]:
        return await link_query(
            models.Market,
            "markets",
            "market_articles",
            "article_id",
            "market_id",
            keys,
            "t.created_at DESC, t.id DESC",
        )

    async def _articles_by_market(self, keys: list[int]) -> list[list[models.Article]]:
        return await link_query(
            models.Article,
            "articles",
            "market_articles",
            "market_id",
            "article_id",
            keys,
            "t.published_at DESC, t.id DESC",
        )

    async def _rankings(self, keys: list[str]) -> list[Ranking]:
        # One key (EVERYONE): the leaderboard and every profile's rank and profit of a
        # response read one ranking, computed once.
        ranked = await ranking()
        return [ranked for _ in keys]

    # One loader per relation, made on its first use in a request.
    market_by_id = lazy_loader(by_field(models.Market, "id"))
    market_by_slug = lazy_loader(by_field(models.Market, "slug"))
    outcome_by_id = lazy_loader(by_field(models.Outcome, "id"))
    outcomes_by_market = lazy_loader(_outcomes_by_market, method=True)
    markets_by_article = lazy_loader(_markets_by_article, method=True)
    articles_by_market = lazy_loader(_articles_by_market, method=True)
    tags_by_market = lazy_loader(_tags_by_market, method=True)
    trade_by_id = lazy_loader(by_field(models.Trade, "id"))
    positions_by_user_market = lazy_loader(_positions_by_user_market, method=True)
    price_history_by_market = lazy_loader(_price_history, method=True)
    ranking_by_scope = lazy_loader(_rankings, method=True)


# The one scope of ``ranking_by_scope``: every trader on the site.
EVERYONE = "everyone"
