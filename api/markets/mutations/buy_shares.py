"""``buyShares``: spend an exact amount on an outcome."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.core.amounts import to_cents, to_share_units
from api.core.metadata import EXPENSIVE
from api.core.node import pk_of
from api.core.permissions import require_viewer
from api.markets.inputs import BuySharesInput
from api.markets.payloads import TradePayload, trade_payload
from markets.trading import TradeResult


@strawberry.mutation(
    metadata=EXPENSIVE,
    description="Spend exactly `amount` on an outcome; the shares are rounded down.",
)
async def buy_shares(
    info: Info,
    input: Annotated[BuySharesInput, strawberry.argument(description="What to do.")],
) -> TradePayload:
    viewer = require_viewer(info)
    outcome_id = pk_of(input.outcome_id, "Outcome")

    async def run() -> TradeResult:
        amount = to_cents(input.amount, "amount")
        minimum = (
            None
            if input.min_shares is None
            else to_share_units(input.min_shares, "minShares", allow_zero=True)
        )
        return await info.context.services.trading.buy(
            viewer, outcome_id, amount, minimum, input.idempotency_key
        )

    return await trade_payload(run())
