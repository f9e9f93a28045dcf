"""What the markets tell subscribers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OddsEvent:
    """The odds of a market changed (published after the commit)."""

    market_id: int
    seq: int
    trade_id: int | None
