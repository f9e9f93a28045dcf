"""``sellShares``: sell shares of an outcome."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.core.amounts import optional_cents, to_share_units
from api.core.metadata import EXPENSIVE
from api.core.node import pk_of
from api.core.permissions import require_viewer
from api.markets.inputs import SellSharesInput
from api.markets.payloads import TradePayload, trade_payload
from markets.trading import TradeResult


@strawberry.mutation(
    metadata=EXPENSIVE, description="Sell shares; the proceeds are rounded down to the cent."
)
async def sell_shares(
    info: Info,
    input: Annotated[SellSharesInput, strawberry.argument(description="What to do.")],
) -> TradePayload:
    viewer = require_viewer(info)
    outcome_id = pk_of(input.outcome_id, "Outcome")

    async def run() -> TradeResult:
        # Converted inside the payload's call: a bad amount is a UserError, like a refusal.
        result = await info.context.services.trading.sell(
            viewer,
            outcome_id,
            to_share_units(input.shares, "shares"),
            optional_cents(input.min_amount, "minAmount"),
            input.idempotency_key,
        )
        if result.outcomes is not None:
            # The trade read them under its lock: market { outcomes } needs no statement.
            info.context.loaders.outcomes_by_market.prime(result.market.id, result.outcomes, True)
        return result

    return await trade_payload(run())
