"""What the markets tell subscribers: small messages of ids and sequence numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain_events import Event


@dataclass(frozen=True)
class OddsState:
    """A market right after a change, as the change's own transaction left it: the market
    row, its outcome rows in position order, and the trade row (None without a trade).

    Rows are read-only (``db.sql.PlainRow``s or model instances): the trade's answer and the
    subscribers' updates may share them.
    """

    market: Any
    outcomes: Sequence[Any]
    trade: Any | None


@dataclass(frozen=True)
class OddsChanged(Event):
    """The odds of a market changed: a trade, its creation, or its settlement.

    ``seq`` is the market's ``odds_seq`` after the change (0 for a new market), so a subscriber
    can tell a missed change; ``trade_id`` is the trade that moved the price, if one did.
    ``state``: the market at ``seq``, when the publisher has it at hand (a trade's transaction
    read and wrote all of it), for this process's subscribers; never part of what crosses
    processes (those read the committed rows by the ids), nor of the event's identity.
    """

    market_id: int
    seq: int
    trade_id: int | None
    state: OddsState | None = field(default=None, compare=False, repr=False)
