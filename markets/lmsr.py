"""The LMSR market maker's math: pure functions of plain numbers, overflow-free.

q is the vector of shares outstanding per outcome, b the liquidity parameter
(b = liquidity / ln n, so the maker's worst-case loss is exactly its liquidity).
C(q) = b·logsumexp(q/b); p_i = softmax(q/b)_i. Every function works in log space so that
positions of 10⁹ shares on a small market neither overflow nor lose the small prices.
Rounding to cents and share units happens in the trading service, always against the trader.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class LmsrError(ValueError):
    """Arguments outside the function's domain (no outcomes, b <= 0, non-finite values)."""


def liquidity_parameter(liquidity: float, outcome_count: int) -> float:
    """b for a maker whose maximum loss is ``liquidity`` over ``outcome_count`` outcomes."""
    if outcome_count < 2:
        raise LmsrError("a market needs at least two outcomes")
    if not (liquidity > 0 and math.isfinite(liquidity)):
        raise LmsrError("liquidity must be positive and finite")
    return liquidity / math.log(outcome_count)


def _check(q: Sequence[float], b: float) -> None:
    if len(q) < 2:
        raise LmsrError("a market needs at least two outcomes")
    if not (b > 0 and math.isfinite(b)):
        raise LmsrError("b must be positive and finite")
    if not all(math.isfinite(x) for x in q):
        raise LmsrError("quantities must be finite")


def logsumexp(xs: Sequence[float]) -> float:
    """log(Σ e^x), computed without overflow."""
    m = max(xs)
    return m + math.log(math.fsum(math.exp(x - m) for x in xs))


def cost(q: Sequence[float], b: float) -> float:
    """C(q) = b·logsumexp(q/b)."""
    _check(q, b)
    return b * logsumexp([x / b for x in q])


def prices(q: Sequence[float], b: float) -> list[float]:
    """Instantaneous probabilities p_i = softmax(q/b)_i; they sum to 1 (within float error)."""
    _check(q, b)
    scaled = [x / b for x in q]
    m = max(scaled)
    weights = [math.exp(x - m) for x in scaled]
    total = math.fsum(weights)
    return [w / total for w in weights]


def log_price(q: Sequence[float], b: float, i: int) -> float:
    """ln p_i = q_i/b − logsumexp(q/b), exact even when p_i underflows to 0."""
    _check(q, b)
    scaled = [x / b for x in q]
    return scaled[i] - logsumexp(scaled)


def shares_for_spend(q: Sequence[float], b: float, i: int, spend: float) -> float:
    """Shares of outcome i that cost exactly ``spend``.

    s = x + b·log1p((p_i − 1)·e^(−x/b)) − b·ln p_i, the overflow-free form of
    b·ln((e^(x/b) − 1 + p_i)/p_i).
    """
    _check(q, b)
    if not (spend >= 0 and math.isfinite(spend)):
        raise LmsrError("spend must be finite and not negative")
    if spend == 0:
        return 0.0
    lp = log_price(q, b, i)
    p = math.exp(lp)
    decay = math.exp(-spend / b)
    if p > 0.5:
        return spend + b * math.log1p((p - 1.0) * decay) - b * lp
    # For a small price p − 1 rounds to −1; 1 − e^(−x/b) + p·e^(−x/b) stays exact instead.
    return spend + b * math.log(-math.expm1(-spend / b) + p * decay) - b * lp


def proceeds_for_sale(q: Sequence[float], b: float, i: int, shares: float) -> float:
    """Credits returned for selling ``shares`` of outcome i: C(q) − C(q − s·e_i)."""
    _check(q, b)
    if not (shares >= 0 and math.isfinite(shares)):
        raise LmsrError("shares must be finite and not negative")
    if shares == 0:
        return 0.0
    after = list(q)
    after[i] -= shares
    return cost(q, b) - cost(after, b)


def price_after_purchase(p_i: float, b: float, shares: float) -> float:
    """p_i after buying ``shares`` of i: p_i·e^(s/b) / (1 − p_i + p_i·e^(s/b)), overflow-free.

    A price that underflowed to 0 stays 0 here: compute ``prices`` of the new q instead.
    """
    if not (b > 0 and math.isfinite(b)):
        raise LmsrError("b must be positive and finite")
    if not (0.0 <= p_i <= 1.0):
        raise LmsrError("p_i must be a probability")
    if not (shares >= 0 and math.isfinite(shares)):
        raise LmsrError("shares must be finite and not negative")
    if p_i == 0.0:
        return 0.0
    # Divide through by e^(s/b): p / ((1 − p)·e^(−s/b) + p).
    return p_i / ((1.0 - p_i) * math.exp(-shares / b) + p_i)
