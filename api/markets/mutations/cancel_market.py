"""``cancelMarket``: call a market off and refund its traders."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.core.metadata import EXPENSIVE
from api.core.node import pk_of
from api.core.permissions import require_role
from api.markets.inputs import CancelMarketInput
from api.markets.payloads import MarketPayload, market_payload
from db import models


@strawberry.mutation(
    metadata=EXPENSIVE,
    description="Cancel a market (ADMIN): refunds each trader's net cost when positive.",
)
async def cancel_market(
    info: Info,
    input: Annotated[CancelMarketInput, strawberry.argument(description="What to do.")],
) -> MarketPayload:
    require_role(info, models.Role.ADMIN)
    market_id = pk_of(input.market_id, "Market")
    trading = info.context.services.trading
    return await market_payload(trading.cancel(market_id))
