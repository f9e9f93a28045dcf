"""``createMarket``: a market funded by the house."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from api.core.amounts import to_cents
from api.core.metadata import EXPENSIVE
from api.core.node import pk_of
from api.core.permissions import require_role
from api.markets.inputs import CreateMarketInput
from api.markets.payloads import MarketPayload, market_payload
from db import models


@strawberry.mutation(
    metadata=EXPENSIVE, description="Create a market funded by the house (AUTHOR and above)."
)
async def create_market(
    info: Info,
    input: Annotated[CreateMarketInput, strawberry.argument(description="What to do.")],
) -> MarketPayload:
    viewer = require_role(info, models.Role.AUTHOR)
    article_ids = [pk_of(gid, "Article") for gid in input.article_ids]

    async def run() -> models.Market:
        return await info.context.services.trading.create_market(
            viewer,
            input.question,
            input.description,
            input.resolution_criteria,
            input.outcomes,
            input.closes_at,
            to_cents(input.liquidity, "liquidity"),
            article_ids,
            input.tag_slugs,
        )

    return await market_payload(run())
