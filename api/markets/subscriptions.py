"""The markets' subscription field and its source: a market's odds, at once and on every change
(coalesced: a client that falls behind gets the latest, never a backlog)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

import clock
from api.core.errors import NotFound
from api.core.node import from_global_id
from api.core.subscriptions import refusals, websocket_only
from api.markets.types import Market, OddsUpdate, Trade, outcome_types
from markets.events import OddsState
from markets.queries import market_exists
from realtime.events import local_of, odds_channel
from realtime.sources import SOURCE, Stream, SubscriptionSource


async def odds_update(
    market_id: int, seq: int | None, trade_id: int | None, loaders: Any
) -> OddsUpdate | None:
    """The root object of an oddsUpdated message."""
    market = await loaders.market_by_id.load(market_id)
    if market is None:
        return None
    outcomes = await loaders.outcomes_by_market.load(market_id)
    trade = await loaders.trade_by_id.load(trade_id) if trade_id else None
    return OddsUpdate(
        market=Market.from_row(market),
        outcomes=outcome_types(market, outcomes),
        seq=market.odds_seq if seq is None else seq,
        at=clock.now(),
        last_trade=Trade.from_row(trade) if trade else None,
    )


class OddsUpdated(SubscriptionSource[int]):
    """``oddsUpdated``: the market's odds now, then after each change."""

    delivery = "coalesced"

    async def open(self, arguments: Mapping[str, Any]) -> Stream[int]:
        """The market of ``marketId``."""
        with refusals():
            market_id = from_global_id(str(arguments.get("marketId", "")), "Market")[1]
            if not await market_exists(market_id):
                raise NotFound("There is no such market.")
        return Stream(odds_channel(market_id), market_id)

    async def root(self, target: int, event: Mapping[str, Any], loaders: Any) -> Any:
        """The odds after the event's change (and its trade, if one made it): from the state
        the event carries (a trade's, exactly at its ``seq``), else read through ``loaders``."""
        state = local_of(event)
        if not isinstance(state, OddsState) or state.market.id != target:
            return await odds_update(target, event.get("seq"), event.get("trade_id"), loaders)
        market, trade = state.market, state.trade
        rows = list(state.outcomes)

        def prime(made: Any) -> None:
            # The rows of this message's state, for the fields below the root that load them
            # (``lastTrade { outcome { probability } }``, ``market { … }``): read from the
            # database instead, a later trade's rows would mix two states in one message.
            made.market_by_id.prime(market.id, market)
            made.outcomes_by_market.prime(market.id, rows)
            for outcome in rows:
                made.outcome_by_id.prime(outcome.id, outcome)
            if trade is not None:
                made.trade_by_id.prime(trade.id, trade)

        on_made = getattr(loaders, "on_made", None)
        if callable(on_made):
            on_made(prime)  # loaders made only if a field reads one
        else:
            prime(loaders)
        return OddsUpdate(
            market=Market.from_row(market),
            outcomes=outcome_types(market, rows),
            seq=market.odds_seq,
            at=clock.now(),
            last_trade=Trade.from_row(trade) if trade is not None else None,
        )

    async def snapshot(self, target: int, loaders: Any) -> tuple[int, Any] | None:
        """The odds as they are: the first message."""
        update = await odds_update(target, None, None, loaders)
        return None if update is None else (update.seq, update)


ODDS_UPDATED = OddsUpdated()


@strawberry.subscription(
    description="The current odds at once, then one update per change of the market.",
    metadata={SOURCE: ODDS_UPDATED},
)
async def odds_updated(
    info: Info,
    market_id: Annotated[strawberry.ID, strawberry.argument(description="The market.")],
) -> AsyncGenerator[OddsUpdate, None]:
    async for item in websocket_only():
        yield item
