"""``resolveMarket``: settle a market on its winning outcome."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.core.metadata import EXPENSIVE
from api.core.node import pk_of
from api.core.permissions import require_role
from api.markets.inputs import ResolveMarketInput
from api.markets.payloads import MarketPayload, market_payload
from db import models


@strawberry.mutation(
    metadata=EXPENSIVE,
    description="Resolve a market (ADMIN): each winning share pays 1.00. Repeating it "
    "changes nothing; any other settlement of a settled market is MARKET_NOT_OPEN.",
)
async def resolve_market(
    info: Info,
    input: Annotated[ResolveMarketInput, strawberry.argument(description="What to do.")],
) -> MarketPayload:
    require_role(info, models.Role.ADMIN)
    market_id = pk_of(input.market_id, "Market")
    outcome_id = pk_of(input.outcome_id, "Outcome")
    trading = info.context.services.trading
    return await market_payload(trading.resolve(market_id, outcome_id))
