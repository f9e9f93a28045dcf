"""Reads of markets for live delivery."""

from __future__ import annotations

from db import models


async def market_exists(market_id: int) -> bool:
    """Whether market ``market_id`` (odds to follow) exists."""
    return await models.Market.filter(id=market_id).count() > 0
