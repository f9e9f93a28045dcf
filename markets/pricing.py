"""Pricing: the pure rules of a market, apart from any transaction.

Probabilities, the plan of a buy or a sale, whether a market trades, its public status, the
value of a position and the bounds of an amount. Nothing here reads or writes the database:
the trading service loads a :class:`MarketState` under its locks and plans with it, the quote
plans with the same functions without writing, and the API reads status and values from here.

Amounts are integers: cents, and 1/10,000 shares. Rounding always favours the house.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from markets import lmsr
from refusals import Refusal, RefusalCode, not_found, validation

if TYPE_CHECKING:  # rows are only read here, never loaded
    from db import models

UNITS_PER_SHARE = 10_000
CENTS_PER_CREDIT = 100
UNITS_PER_CENT = UNITS_PER_SHARE // CENTS_PER_CREDIT
# Float results are shaded down by this much before rounding, so float error can't round a
# trader's shares or proceeds up.
_SHADE = 1.0 - 1e-12
MAX_TRADE_CENTS = 10**12
MAX_TRADE_UNITS = 10**13


class MarketStatus(StrEnum):
    """The public status of a market: its stored state, with OPEN past ``closes_at`` CLOSED."""

    OPEN = "OPEN"
    CLOSED = "CLOSED"
    RESOLVED = "RESOLVED"
    CANCELLED = "CANCELLED"


def is_open(state: str, closes_at: datetime, now: datetime) -> bool:
    """Whether a market in stored ``state`` closing at ``closes_at`` trades at ``now``.

    Closing is exclusive: at ``closes_at`` itself the market is closed.
    """
    return state == MarketStatus.OPEN and closes_at > now


def market_status(state: str, closes_at: datetime, now: datetime) -> MarketStatus:
    """The public status: OPEN past ``closes_at`` reads CLOSED; the rest is the stored state."""
    if state == MarketStatus.OPEN and not is_open(state, closes_at, now):
        return MarketStatus.CLOSED
    return MarketStatus(state)


def probabilities(market: models.Market, outcomes: list[models.Outcome]) -> list[float]:
    """The outcomes' probabilities, in order: LMSR prices, or 1 and 0s once resolved.

    A market has 2 to 10 outcomes; should a row ever have fewer, each reads 1 rather than
    the price function refusing.
    """
    if market.resolved_outcome_id is not None:
        return [1.0 if o.id == market.resolved_outcome_id else 0.0 for o in outcomes]
    if len(outcomes) < 2:
        return [1.0 for _ in outcomes]
    return lmsr.prices(_quantities(outcomes), _liquidity_parameter(market, outcomes))


def position_value_cents(
    shares_units: int, settled_value_cents: int | None, probability: float
) -> int:
    """shares × probability, rounded down to the cent; after settlement, what it paid."""
    if settled_value_cents is not None:
        return int(settled_value_cents)
    return math.floor(shares_units * probability / UNITS_PER_CENT)


def _quantities(outcomes: list[models.Outcome]) -> list[float]:
    return [o.shares_units / UNITS_PER_SHARE for o in outcomes]


def _liquidity_parameter(market: models.Market, outcomes: list[models.Outcome]) -> float:
    return lmsr.liquidity_parameter(market.liquidity_cents / CENTS_PER_CREDIT, len(outcomes))


@dataclass(frozen=True)
class MarketState:
    """A market and its outcomes (in order), as read from the database."""

    market: models.Market
    outcomes: list[models.Outcome]

    @property
    def b(self) -> float:
        """The LMSR liquidity parameter of the market."""
        return _liquidity_parameter(self.market, self.outcomes)

    def q(self) -> list[float]:
        """Shares outstanding per outcome, in shares."""
        return _quantities(self.outcomes)

    def index(self, outcome_id: int) -> int:
        """The position of ``outcome_id`` among the outcomes; NOT_FOUND if it isn't one."""
        for i, outcome in enumerate(self.outcomes):
            if outcome.id == outcome_id:
                return i
        raise not_found("There is no such outcome.", "outcomeId")

    def probabilities(self) -> list[float]:
        """The outcomes' probabilities (see :func:`probabilities`)."""
        return probabilities(self.market, self.outcomes)

    def is_open(self, now: datetime) -> bool:
        """Whether the market trades at ``now`` (see :func:`is_open`)."""
        return is_open(self.market.state, self.market.closes_at, now)

    def status(self, now: datetime) -> MarketStatus:
        """The public status at ``now`` (see :func:`market_status`)."""
        return market_status(self.market.state, self.market.closes_at, now)


@dataclass(frozen=True)
class Plan:
    """What a trade would do: shares (> 0 bought, < 0 sold) and credits (> 0 paid)."""

    outcome_id: int
    index: int
    shares_units: int
    amount_cents: int
    probability_before: float
    probability_after: float
    probabilities_after: list[float]

    @property
    def average_price(self) -> float:
        """Credits per share, paid or received."""
        return (abs(self.amount_cents) / CENTS_PER_CREDIT) / (
            abs(self.shares_units) / UNITS_PER_SHARE
        )


def _require_open(state: MarketState, now: datetime) -> None:
    if not state.is_open(now):
        raise Refusal(
            RefusalCode.MARKET_NOT_OPEN, "This market is not open for trading.", ["outcomeId"]
        )


def plan_buy(
    state: MarketState,
    outcome_id: int,
    amount_cents: int,
    min_shares_units: int | None,
    now: datetime,
) -> Plan:
    """Spend exactly ``amount_cents`` on ``outcome_id``: the shares it buys, rounded down."""
    i = state.index(outcome_id)
    _require_open(state, now)
    q, b = state.q(), state.b
    before = lmsr.prices(q, b)
    spend = amount_cents / CENTS_PER_CREDIT
    units = math.floor(lmsr.shares_for_spend(q, b, i, spend) * UNITS_PER_SHARE * _SHADE)
    if units < 1:
        raise validation("That amount buys less than 0.0001 shares.", "amount")
    if min_shares_units is not None and units < min_shares_units:
        raise Refusal(
            RefusalCode.SLIPPAGE_EXCEEDED,
            f"The price moved: {units / UNITS_PER_SHARE:.4f} shares, below your minimum.",
            ["minShares"],
        )
    after_q = list(q)
    after_q[i] += units / UNITS_PER_SHARE
    after = lmsr.prices(after_q, b)
    return Plan(outcome_id, i, units, amount_cents, before[i], after[i], after)


def plan_sell(
    state: MarketState,
    outcome_id: int,
    shares_units: int,
    min_amount_cents: int | None,
    now: datetime,
) -> Plan:
    """Sell ``shares_units`` of ``outcome_id``: the proceeds, rounded down to the cent."""
    i = state.index(outcome_id)
    _require_open(state, now)
    q, b = state.q(), state.b
    before = lmsr.prices(q, b)
    proceeds = lmsr.proceeds_for_sale(q, b, i, shares_units / UNITS_PER_SHARE)
    cents = math.floor(proceeds * CENTS_PER_CREDIT * _SHADE)
    if cents < 1:
        raise validation("Those shares are worth less than 0.01 credits.", "shares")
    if min_amount_cents is not None and cents < min_amount_cents:
        raise Refusal(
            RefusalCode.SLIPPAGE_EXCEEDED,
            f"The price moved: {cents / CENTS_PER_CREDIT:.2f} credits, below your minimum.",
            ["minAmount"],
        )
    after_q = list(q)
    after_q[i] -= shares_units / UNITS_PER_SHARE
    after = lmsr.prices(after_q, b)
    return Plan(outcome_id, i, -shares_units, -cents, before[i], after[i], after)


def check_amount(cents: int, field: str, allow_zero: bool = False) -> None:
    """VALIDATION unless ``cents`` is a positive (or, with ``allow_zero``, zero) trade amount."""
    if cents < (0 if allow_zero else 1) or cents > MAX_TRADE_CENTS:
        raise validation(f"{field} must be a positive amount of credits.", field)


def check_units(units: int, field: str, allow_zero: bool = False) -> None:
    """VALIDATION unless ``units`` is a positive (or, with ``allow_zero``, zero) share count."""
    if units < (0 if allow_zero else 1) or units > MAX_TRADE_UNITS:
        raise validation(f"{field} must be a positive number of shares.", field)
