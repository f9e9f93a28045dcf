"""What the markets tell subscribers: small messages of ids and sequence numbers."""

from __future__ import annotations

from dataclasses import dataclass

from domain_events import Event


@dataclass(frozen=True)
class OddsChanged(Event):
    """The odds of a market changed: a trade, its creation, or its settlement.

    ``seq`` is the market's ``odds_seq`` after the change (0 for a new market), so a subscriber
    can tell a missed change; ``trade_id`` is the trade that moved the price, if one did.
    """

    market_id: int
    seq: int
    trade_id: int | None
