"""The leaderboard: profit (realised + unrealised) per trader, then volume."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from db import models
from db.sql import fetch_dicts, placeholders
from markets.pricing import position_value_cents, probabilities


@dataclass(frozen=True)
class Standing:
    """One trader's numbers, in cents."""

    user_id: int
    profit_cents: int
    volume_cents: int


@dataclass(frozen=True)
class Ranking:
    """Every trader's standing, best first, and each one's rank (1 for the best) by user id:
    the leaderboard's order, so a profile's rank is the place it has on the leaderboard."""

    ordered: list[Standing]
    by_user: dict[int, tuple[int, Standing]]

    @classmethod
    def of(cls, ordered: list[Standing]) -> Ranking:
        """The ranking of standings already in the leaderboard's order."""
        return cls(ordered, {s.user_id: (i + 1, s) for i, s in enumerate(ordered)})


async def ranking() -> Ranking:
    """Every trader (anyone with a trade) by profit, then volume, then earliest account.

    Unrealised profit needs every open position valued at its market's current price, so this
    reads all positions: fine for thousands of traders; a larger site would keep a running
    per-user tally updated by the trading transaction.
    """
    positions = await fetch_dicts(
        "SELECT user_id, market_id, outcome_id, shares_units, cost_basis_cents, realized_cents, "
        "settled_value_cents FROM positions"
    )
    volumes = {
        int(r["user_id"]): int(r["v"])
        for r in await fetch_dicts(
            "SELECT user_id, SUM(ABS(amount_cents)) AS v FROM trades GROUP BY user_id"
        )
    }
    market_ids = sorted({int(p["market_id"]) for p in positions})
    probability: dict[int, float] = {}
    if market_ids:
        marks = placeholders(len(market_ids))
        markets = {
            int(r["id"]): models.Market._init_from_db(**r)
            for r in await fetch_dicts(f"SELECT * FROM markets WHERE id IN ({marks})", market_ids)
        }
        outcomes: dict[int, list[models.Outcome]] = defaultdict(list)
        for r in await fetch_dicts(
            f"SELECT * FROM outcomes WHERE market_id IN ({marks}) ORDER BY market_id, position",
            market_ids,
        ):
            outcomes[int(r["market_id"])].append(models.Outcome._init_from_db(**r))
        for market_id, market in markets.items():
            rows = outcomes[market_id]
            for outcome, price in zip(rows, probabilities(market, rows), strict=True):
                probability[outcome.id] = price
    profit: dict[int, int] = defaultdict(int)
    for p in positions:
        settled = p["settled_value_cents"]
        value = position_value_cents(
            int(p["shares_units"]),
            None if settled is None else int(settled),
            probability.get(int(p["outcome_id"]), 0.0),
        )
        profit[int(p["user_id"])] += value - int(p["cost_basis_cents"]) + int(p["realized_cents"])
    ranked = sorted(
        (Standing(u, profit[u], volumes.get(u, 0)) for u in set(profit) | set(volumes)),
        key=lambda s: (-s.profit_cents, -s.volume_cents, s.user_id),
    )
    return Ranking.of(ranked)
