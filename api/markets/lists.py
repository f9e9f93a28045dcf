"""The markets' lists as (Source, Ordering) specs: markets, trades, positions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from api.core.errors import BadUserInput
from api.core.lists import by_time, search_terms, time_literal
from api.core.pagination import Ordering, SortKey, Source
from db import models
from db.search import market_ids_matching

_DAY = timedelta(days=1)

TRADES_ORDER = by_time("NEWEST", "t", "created_at", True)
TRADES_BY_MARKET = Source(models.Trade, "trades t", "t", parent="t.market_id")
TRADES_BY_USER = Source(models.Trade, "trades t", "t", parent="t.user_id")
# Positions that hold shares or have realised something, most recently opened first.
POSITIONS_ORDER = Ordering("NEWEST", (SortKey("p.id", "int", True),))
POSITIONS_BY_USER = Source(
    models.Position,
    "positions p",
    "p",
    where=(("(p.shares_units <> 0 OR p.realized_cents <> 0)", ()),),
    parent="p.user_id",
)
MARKETS_BY_TAG = Source(
    models.Market, "markets m JOIN market_tags l ON l.market_id = m.id", "m", parent="l.tag_id"
)


MARKETS_NEWEST = by_time("NEWEST", "m", "created_at", True)


def market_orders(name: str, now: datetime) -> Ordering:
    """The ordering for MarketOrder ``name`` at time ``now``."""
    if name == "NEWEST":
        return MARKETS_NEWEST
    if name == "VOLUME":
        return Ordering(
            "VOLUME", (SortKey("m.volume_cents", "bigint", True), SortKey("m.id", "int", True))
        )
    now_sql = time_literal(now)
    if name == "CLOSING_SOON":
        # Markets still open come first, soonest close first; closed and settled ones follow.
        return Ordering(
            "CLOSING_SOON",
            (
                SortKey(
                    f"CASE WHEN m.state = 'OPEN' AND m.closes_at > {now_sql} THEN 0 ELSE 1 END",
                    "int",
                    False,
                ),
                SortKey("m.closes_at", "datetime", False),
                SortKey("m.id", "int", False),
            ),
        )
    if name == "TRENDING":
        since = time_literal(now.replace(microsecond=0) - _DAY)
        volume_24h = (
            "(SELECT COALESCE(SUM(ABS(tr.amount_cents)), 0) FROM trades tr "
            f"WHERE tr.market_id = m.id AND tr.created_at > {since})"
        )
        return Ordering(
            "TRENDING",
            (
                SortKey(volume_24h, "bigint", True),
                SortKey("m.created_at", "datetime", True),
                SortKey("m.id", "int", True),
            ),
        )
    raise BadUserInput(f"Unknown market order {name!r}.")


@dataclass(frozen=True)
class MarketFilterValues:
    """MarketFilter's fields as plain values."""

    status: str | None = None
    tag_slug: str | None = None
    search: str | None = None


def markets_source(flt: MarketFilterValues | None, now: datetime) -> Source:
    """All markets matching the filter; CLOSED means OPEN but past its closing time."""
    where: list[tuple[str, tuple[Any, ...]]] = []
    if flt is not None:
        if flt.status == "OPEN":
            where.append(("(m.state = 'OPEN' AND m.closes_at > ?)", (now,)))
        elif flt.status == "CLOSED":
            where.append(("(m.state = 'OPEN' AND m.closes_at <= ?)", (now,)))
        elif flt.status is not None:
            where.append(("m.state = ?", (flt.status,)))
        if flt.tag_slug is not None:
            where.append(
                (
                    "m.id IN (SELECT l.market_id FROM market_tags l JOIN tags t "
                    "ON t.id = l.tag_id WHERE t.slug = ?)",
                    (flt.tag_slug,),
                )
            )
        search = search_terms(flt.search)
        if search is not None:
            # Through the full-text index (db.search); nothing to look for matches nothing.
            where.append(market_ids_matching(search) or ("1 = 0", ()))
    return Source(models.Market, "markets m", "m", where=tuple(where))
