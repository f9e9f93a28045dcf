"""The markets' mutation payloads."""

from __future__ import annotations

from collections.abc import Awaitable
from decimal import Decimal

import strawberry

from api.core.amounts import money
from api.core.refusals import UserError, payload_of
from api.markets.types import Market, Position, Trade
from db import models
from markets.trading import TradeResult


@strawberry.type(description="The result of buyShares and sellShares.")
class TradePayload:
    trade: Trade | None = strawberry.field(description="The trade (the first one, on a replay).")
    position: Position | None = strawberry.field(description="The position after it.")
    market: Market | None = strawberry.field(description="The market after it.")
    balance: Decimal | None = strawberry.field(description="The wallet's balance right after it.")
    errors: list[UserError] = strawberry.field(description="Why it was refused; [] on success.")


@strawberry.type(description="The result of a market mutation.")
class MarketPayload:
    market: Market | None = strawberry.field(description="The market, as it is now.")
    errors: list[UserError] = strawberry.field(description="Why it was refused; [] on success.")


def _trade(result: TradeResult) -> TradePayload:
    return TradePayload(
        trade=Trade.from_row(result.trade),
        position=Position.from_row(result.position),
        market=Market.from_row(result.market),
        balance=money(result.balance_cents),
        errors=[],
    )


def _trade_error(error: UserError) -> TradePayload:
    return TradePayload(trade=None, position=None, market=None, balance=None, errors=[error])


async def trade_payload(call: Awaitable[TradeResult]) -> TradePayload:
    """The trade the call makes, or its refusal as a UserError."""
    return await payload_of(call, _trade, _trade_error)


def _market_error(error: UserError) -> MarketPayload:
    return MarketPayload(market=None, errors=[error])


async def market_payload(call: Awaitable[models.Market]) -> MarketPayload:
    """The market the call returns, or its refusal as a UserError."""
    return await payload_of(
        call, lambda row: MarketPayload(market=Market.from_row(row), errors=[]), _market_error
    )
