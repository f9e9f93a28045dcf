"""Property tests for the LMSR market maker's math (markets/lmsr.py).

Domain: liquidity 10.00 … 1e7 credits, 2 … 10 outcomes, positions q_i in ±1e9 shares. Money is
rounded the way the trading service does it, always against the trader: shares are floored to
4 decimals (integer units of 1e-4), proceeds are floored to the cent, spends are whole cents.

Float tolerances: cost() is b·logsumexp(q/b), so one evaluation is only good to a few ulps of the
largest magnitude involved (|q|, |C(q)|, b); ``cost_slack`` is that bound. Prices are computed
from q_i/b, so their relative precision is a few ulps of max|q|/b (≈3e-8 at |q| = 1e9, b = 4.34):
``price_rel_tol`` is that bound.
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal, localcontext
from typing import NamedTuple

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from markets import lmsr
from markets.lmsr import LmsrError

MIN_LIQUIDITY = 10.0
MAX_LIQUIDITY = 1e7
MAX_Q = 1e9
EPS = sys.float_info.epsilon
TINIEST_NORMAL = sys.float_info.min
SHARE_UNITS = 10_000  # shares are stored in units of 1e-4

FAST = settings(max_examples=150, deadline=None)
THOROUGH = settings(max_examples=400, deadline=None)


class Market(NamedTuple):
    q: list[float]
    b: float
    liquidity: float


# ---------------------------------------------------------------------------------------------
# Strategies


LIQUIDITY = st.one_of(
    st.sampled_from([MIN_LIQUIDITY, MAX_LIQUIDITY]),
    st.integers(1_000, 1_000_000_000).map(lambda cents: cents / 100),
)
OUTCOMES = st.integers(2, 10)
POSITION = st.one_of(
    st.sampled_from([-MAX_Q, 0.0, MAX_Q]),
    st.floats(-MAX_Q, MAX_Q),
    st.integers(-(10**13), 10**13).map(lambda units: units / SHARE_UNITS),
)
# Spends: whole cents (what the service sends) and arbitrary floats from a micro-credit up.
CENTS = st.one_of(st.integers(1, 10_000), st.integers(1, 100_000_000_000))
SPEND = st.one_of(CENTS.map(lambda cents: cents / 100), st.floats(1e-6, 1e9))
SHARES = st.one_of(
    st.sampled_from([1e-4, MAX_Q]),
    st.floats(0.0, MAX_Q),
    st.integers(0, 10**13).map(lambda units: units / SHARE_UNITS),
)


def _clip(x: float) -> float:
    return min(MAX_Q, max(-MAX_Q, x))


@st.composite
def markets(draw: st.DrawFn) -> Market:
    """A market: independent positions (mostly prices 0 and 1 on small b) or positions clustered
    within ±30·b of a base anywhere in ±1e9 (several prices strictly between 0 and 1)."""
    liquidity = draw(LIQUIDITY)
    n = draw(OUTCOMES)
    b = lmsr.liquidity_parameter(liquidity, n)
    if draw(st.booleans()):
        q = draw(st.lists(POSITION, min_size=n, max_size=n))
    else:
        base = draw(POSITION)
        offsets = draw(st.lists(st.floats(-30.0, 30.0), min_size=n, max_size=n))
        q = [_clip(base + offset * b) for offset in offsets]
    return Market(q, b, liquidity)


@st.composite
def markets_and_outcomes(draw: st.DrawFn) -> tuple[Market, int]:
    market = draw(markets())
    return market, draw(st.integers(0, len(market.q) - 1))


# ---------------------------------------------------------------------------------------------
# Helpers


def cost_slack(q: list[float], b: float) -> float:
    """Error bound of one ``cost(q, b)`` evaluation (a few ulps of the largest magnitude)."""
    return 16 * EPS * (max(abs(x) for x in q) + abs(lmsr.cost(q, b)) + b)


def price_rel_tol(b: float, *qs: list[float]) -> float:
    """Relative precision of a price computed from q/b (absolute precision of ln p)."""
    scale = max(abs(x) for q in qs for x in q) / b
    return 1e-12 + 16 * math.ulp(scale)


def bought(q: list[float], i: int, shares: float) -> list[float]:
    after = list(q)
    after[i] += shares
    return after


def spend_tolerance(spend: float) -> float:
    return max(1e-9 * spend, 1e-6)


def floor_units(shares: float) -> int:
    """Shares the service credits: floored to 4 decimals, as integer units of 1e-4."""
    return math.floor(shares * SHARE_UNITS)


EXTREME_SMALL_B = Market([MAX_Q, -MAX_Q, 0.0], lmsr.liquidity_parameter(MIN_LIQUIDITY, 3), 10.0)
EXTREME_10 = Market([MAX_Q, -MAX_Q] * 5, lmsr.liquidity_parameter(MIN_LIQUIDITY, 10), MIN_LIQUIDITY)
HUGE_EQUAL = Market([MAX_Q, MAX_Q - 1.0], lmsr.liquidity_parameter(MIN_LIQUIDITY, 2), 10.0)
BIG_B = Market([-MAX_Q, MAX_Q], lmsr.liquidity_parameter(MAX_LIQUIDITY, 2), MAX_LIQUIDITY)


# ---------------------------------------------------------------------------------------------
# 1. Prices are a probability distribution; log_price agrees with them


@THOROUGH
@given(markets())
@example(EXTREME_SMALL_B)
@example(EXTREME_10)
@example(HUGE_EQUAL)
@example(BIG_B)
def test_prices_are_a_distribution_and_log_price_agrees(m: Market) -> None:
    ps = lmsr.prices(m.q, m.b)
    assert len(ps) == len(m.q)
    assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in ps)
    assert math.isclose(sum(ps), 1.0, rel_tol=1e-9)
    # Larger position, larger (or equal) price; the leader's price is at least 1/n.
    for qi, pi in zip(m.q, ps, strict=True):
        for qj, pj in zip(m.q, ps, strict=True):
            if qi >= qj:
                assert pi >= pj
    assert max(ps) >= 1 / len(ps) * (1 - 1e-12)
    rel = price_rel_tol(m.b, m.q)
    for i, p in enumerate(ps):
        lp = lmsr.log_price(m.q, m.b, i)
        assert math.isfinite(lp)
        assert lp <= 0.0
        if p >= TINIEST_NORMAL:
            assert abs(lp - math.log(p)) <= rel + abs(lp) * 4 * EPS
        elif p == 0.0:
            # The price underflowed, the log-price did not: it is below ln(smallest subnormal).
            assert lp < -744.0


def _reference(q: list[float], b: float) -> tuple[Decimal, list[Decimal]]:
    """C(q) and p(q) computed with 40 significant digits from the exact float inputs."""
    with localcontext() as ctx:
        ctx.prec = 40
        scaled = [Decimal(x) / Decimal(b) for x in q]
        m = max(scaled)
        weights = [(x - m).exp() for x in scaled]
        total = sum(weights, Decimal(0))
        return Decimal(b) * (m + total.ln()), [w / total for w in weights]


@FAST
@given(markets())
@example(EXTREME_SMALL_B)
@example(HUGE_EQUAL)
def test_cost_and_prices_match_a_high_precision_reference(m: Market) -> None:
    ref_cost, ref_prices = _reference(m.q, m.b)
    assert abs(lmsr.cost(m.q, m.b) - float(ref_cost)) <= cost_slack(m.q, m.b)
    rel = price_rel_tol(m.b, m.q)
    for p, ref in zip(lmsr.prices(m.q, m.b), ref_prices, strict=True):
        assert math.isclose(p, float(ref), rel_tol=rel, abs_tol=1e-300)


# ---------------------------------------------------------------------------------------------
# 2. Cost increases with every purchase; translation invariance


@THOROUGH
@given(markets_and_outcomes(), st.one_of(st.sampled_from([1e-4, MAX_Q]), st.floats(1e-4, MAX_Q)))
@example((EXTREME_SMALL_B, 1), 1e-4)
@example((EXTREME_SMALL_B, 0), 1e-4)
@example((HUGE_EQUAL, 0), 1e-4)
def test_cost_increases_with_any_purchase(case: tuple[Market, int], d: float) -> None:
    m, i = case
    after = bought(m.q, i, d)
    before_cost, after_cost = lmsr.cost(m.q, m.b), lmsr.cost(after, m.b)
    assert math.isfinite(after_cost)
    slack = cost_slack(m.q, m.b) + cost_slack(after, m.b)
    p = lmsr.prices(m.q, m.b)[i]
    # Exactly, C(q + d·e_i) − C(q) = b·ln(1 − p + p·e^(d/b)), between p·d and d (prices ≤ 1).
    if p * d > slack:
        assert after_cost > before_cost
    else:  # the increase is below float resolution: it must still not decrease
        assert after_cost >= before_cost
    increase = after_cost - before_cost
    assert increase <= d + slack
    if d / m.b < 700:
        exact = m.b * math.log1p(p * math.expm1(d / m.b))
        assert abs(increase - exact) <= slack + exact * price_rel_tol(m.b, m.q, after)


@THOROUGH
@given(markets(), st.one_of(st.sampled_from([-MAX_Q, MAX_Q]), st.floats(-MAX_Q, MAX_Q)))
@example(EXTREME_SMALL_B, MAX_Q)
@example(HUGE_EQUAL, -MAX_Q)
def test_cost_is_translation_invariant(m: Market, c: float) -> None:
    shifted = [x + c for x in m.q]
    lhs = lmsr.cost(shifted, m.b)
    rhs = lmsr.cost(m.q, m.b) + c
    assert abs(lhs - rhs) <= cost_slack(m.q, m.b) + cost_slack(shifted, m.b) + 4 * math.ulp(rhs)
    rel = price_rel_tol(m.b, m.q, shifted)
    for p, p_shifted in zip(lmsr.prices(m.q, m.b), lmsr.prices(shifted, m.b), strict=True):
        assert math.isclose(p, p_shifted, rel_tol=rel, abs_tol=1e-300)


# ---------------------------------------------------------------------------------------------
# 3. shares_for_spend inverts cost; price_after_purchase agrees with prices


@THOROUGH
@given(markets_and_outcomes(), SPEND)
@example((EXTREME_SMALL_B, 1), 0.01)
@example((EXTREME_SMALL_B, 1), 1e9)
@example((EXTREME_SMALL_B, 0), 0.01)
@example((EXTREME_10, 1), 1e9)
@example((HUGE_EQUAL, 1), 0.01)
@example((BIG_B, 0), 0.01)
@example((BIG_B, 0), 1e9)
def test_shares_for_spend_inverts_cost(case: tuple[Market, int], spend: float) -> None:
    m, i = case
    s = lmsr.shares_for_spend(m.q, m.b, i, spend)
    assert math.isfinite(s)
    assert s >= 0.0
    # Every share costs at most 1, so a spend buys at least as many shares (within float error).
    lp = lmsr.log_price(m.q, m.b, i)
    # (ln p_i near 0 is only good to ±ε absolute, so s is good to a few b·ε.)
    assert s >= spend - 8 * math.ulp(max(s, spend, m.b * abs(lp), m.b))
    after = bought(m.q, i, s)
    paid = lmsr.cost(after, m.b) - lmsr.cost(m.q, m.b)
    assert abs(paid - spend) <= spend_tolerance(spend)


@FAST
@given(markets_and_outcomes(), SPEND, SPEND)
def test_shares_for_spend_is_monotonic(case: tuple[Market, int], x1: float, x2: float) -> None:
    m, i = case
    lo, hi = sorted((x1, x2))
    s_lo, s_hi = lmsr.shares_for_spend(m.q, m.b, i, lo), lmsr.shares_for_spend(m.q, m.b, i, hi)
    assert s_lo <= s_hi
    assert lmsr.shares_for_spend(m.q, m.b, i, 0.0) == 0.0


@THOROUGH
@given(markets_and_outcomes(), st.one_of(SPEND.map(lambda x: -x), SHARES))
@example((EXTREME_SMALL_B, 2), 1e9)
@example((HUGE_EQUAL, 1), 1e-4)
def test_price_after_purchase_matches_prices(case: tuple[Market, int], amount: float) -> None:
    """``amount`` < 0 is a spend of −amount; ≥ 0 is a number of shares."""
    m, i = case
    s = lmsr.shares_for_spend(m.q, m.b, i, -amount) if amount < 0 else amount
    p = lmsr.prices(m.q, m.b)[i]
    after = bought(m.q, i, s)
    predicted = lmsr.price_after_purchase(p, m.b, s)
    assert 0.0 <= predicted <= 1.0
    actual = lmsr.prices(after, m.b)[i]
    assert predicted >= p or math.isclose(predicted, p, rel_tol=4 * EPS)
    if p >= TINIEST_NORMAL:  # a 0 or subnormal input price has lost its information
        rel = price_rel_tol(m.b, m.q, after)
        assert math.isclose(predicted, actual, rel_tol=rel, abs_tol=1e-300)


# ---------------------------------------------------------------------------------------------
# 4. Selling: finite, non-negative, never more than was paid


@THOROUGH
@given(markets_and_outcomes(), SHARES)
@example((EXTREME_SMALL_B, 0), MAX_Q)
@example((EXTREME_SMALL_B, 1), MAX_Q)
@example((EXTREME_10, 9), MAX_Q)
@example((BIG_B, 1), MAX_Q)
@example((HUGE_EQUAL, 0), 1e-4)
def test_proceeds_are_finite_non_negative_and_at_most_one_per_share(
    case: tuple[Market, int], shares: float
) -> None:
    m, i = case
    proceeds = lmsr.proceeds_for_sale(m.q, m.b, i, shares)
    assert math.isfinite(proceeds)
    assert proceeds >= 0.0
    sold = bought(m.q, i, -shares)
    assert proceeds <= shares + cost_slack(m.q, m.b) + cost_slack(sold, m.b)


@THOROUGH
@given(markets_and_outcomes(), CENTS, st.floats(0.0, 1.0))
@example((EXTREME_SMALL_B, 1), 1, 1.0)
@example((EXTREME_SMALL_B, 0), 100_000_000_000, 1.0)
@example((HUGE_EQUAL, 1), 1, 0.5)
@example((BIG_B, 0), 1, 1.0)
@example((BIG_B, 1), 100_000_000_000, 1.0)
def test_buying_then_selling_never_returns_more_than_spent(
    case: tuple[Market, int], cents: int, fraction: float
) -> None:
    m, i = case
    spend = cents / 100
    s = lmsr.shares_for_spend(m.q, m.b, i, spend)
    # Unrounded, selling what was bought gives the spend back.
    back = lmsr.proceeds_for_sale(bought(m.q, i, s), m.b, i, s)
    assert abs(back - spend) <= spend_tolerance(spend)
    # As the service rounds: shares floored to 1e-4, proceeds floored to the cent.
    held = math.floor(s * SHARE_UNITS) / SHARE_UNITS
    after = bought(m.q, i, held)
    proceeds = lmsr.proceeds_for_sale(after, m.b, i, held)
    assert proceeds >= 0.0
    assert math.floor(proceeds * 100) <= round(spend * 100) == cents
    # Selling only part of the holding returns less, still never more than the spend.
    part = math.floor(held * SHARE_UNITS * fraction) / SHARE_UNITS
    part_proceeds = lmsr.proceeds_for_sale(after, m.b, i, part)
    assert 0.0 <= part_proceeds <= proceeds + cost_slack(after, m.b)
    assert math.floor(part_proceeds * 100) <= cents


# ---------------------------------------------------------------------------------------------
# 5. The maker never loses more than its liquidity

TRADE_CENTS = st.one_of(st.integers(1, 100_000), st.integers(1, 4_000_000_000))


def _assert_bounded_loss(
    liquidity: float, b: float, units: list[int], net_cents: int, zero_cost: float
) -> None:
    q = [u / SHARE_UNITS for u in units]
    collected = net_cents / 100
    for q_j in q:  # if outcome j wins the maker pays q_j and keeps what it collected
        assert q_j - collected <= liquidity + 1e-6
    # Path independence with house rounding: the maker collected at least C(q) − C(0).
    assert collected >= lmsr.cost(q, b) - zero_cost - cost_slack(q, b) - 1e-6


@FAST
@given(
    LIQUIDITY,
    OUTCOMES,
    st.lists(st.tuples(st.integers(0, 9), TRADE_CENTS), min_size=1, max_size=25),
)
@example(MIN_LIQUIDITY, 2, [(0, 4_000_000_000)] * 25)
@example(MIN_LIQUIDITY, 10, [(k % 10, 1) for k in range(25)])
@example(MAX_LIQUIDITY, 2, [(0, 1), (1, 4_000_000_000), (0, 4_000_000_000)])
def test_worst_case_loss_never_exceeds_liquidity(
    liquidity: float, n: int, trades: list[tuple[int, int]]
) -> None:
    b = lmsr.liquidity_parameter(liquidity, n)
    units = [0] * n
    zero_cost = lmsr.cost([0.0] * n, b)
    assert math.isclose(zero_cost, liquidity, rel_tol=1e-12)
    spent_cents = 0
    for outcome, cents in trades:
        i = outcome % n
        q = [u / SHARE_UNITS for u in units]
        units[i] += floor_units(lmsr.shares_for_spend(q, b, i, cents / 100))
        spent_cents += cents
        _assert_bounded_loss(liquidity, b, units, spent_cents, zero_cost)


@FAST
@given(
    LIQUIDITY,
    OUTCOMES,
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 9), TRADE_CENTS, st.floats(0.0, 1.0)),
        min_size=1,
        max_size=25,
    ),
)
def test_worst_case_loss_bounded_with_sales_too(
    liquidity: float, n: int, trades: list[tuple[bool, int, int, float]]
) -> None:
    """Buys and sales (of part of what is outstanding, proceeds floored to the cent)."""
    b = lmsr.liquidity_parameter(liquidity, n)
    units = [0] * n
    zero_cost = lmsr.cost([0.0] * n, b)
    net_cents = 0
    for is_sale, outcome, cents, fraction in trades:
        i = outcome % n
        q = [u / SHARE_UNITS for u in units]
        if is_sale:
            sold = math.floor(units[i] * fraction)
            proceeds = lmsr.proceeds_for_sale(q, b, i, sold / SHARE_UNITS)
            assert proceeds >= 0.0
            units[i] -= sold
            net_cents -= math.floor(proceeds * 100)
        else:
            units[i] += floor_units(lmsr.shares_for_spend(q, b, i, cents / 100))
            net_cents += cents
        _assert_bounded_loss(liquidity, b, units, net_cents, zero_cost)


# ---------------------------------------------------------------------------------------------
# 6. liquidity_parameter and argument errors


@FAST
@given(LIQUIDITY, OUTCOMES)
def test_liquidity_parameter_is_liquidity_over_ln_n(liquidity: float, n: int) -> None:
    b = lmsr.liquidity_parameter(liquidity, n)
    assert b == liquidity / math.log(n)
    # With b = L / ln n the maker's subsidy C(0) is exactly L.
    assert math.isclose(lmsr.cost([0.0] * n, b), liquidity, rel_tol=1e-12)
    assert lmsr.prices([0.0] * n, b) == pytest.approx([1 / n] * n, rel=1e-15)


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("liquidity", "n"),
    [(100.0, 1), (100.0, 0), (100.0, -3), (0.0, 2), (-10.0, 2), (NAN, 2), (INF, 2), (-INF, 2)],
)
def test_liquidity_parameter_rejects_bad_arguments(liquidity: float, n: int) -> None:
    with pytest.raises(LmsrError):
        lmsr.liquidity_parameter(liquidity, n)


BAD_MARKETS = [
    ([0.0], 10.0),
    ([0.0, 0.0], 0.0),
    ([0.0, 0.0], -1.0),
    ([0.0, 0.0], NAN),
    ([0.0, 0.0], INF),
    ([0.0, NAN], 10.0),
    ([0.0, INF], 10.0),
    ([-INF, 0.0], 10.0),
]


@pytest.mark.parametrize(("q", "b"), BAD_MARKETS)
def test_market_functions_reject_bad_markets(q: list[float], b: float) -> None:
    with pytest.raises(LmsrError):
        lmsr.cost(q, b)
    with pytest.raises(LmsrError):
        lmsr.prices(q, b)
    with pytest.raises(LmsrError):
        lmsr.log_price(q, b, 0)
    with pytest.raises(LmsrError):
        lmsr.shares_for_spend(q, b, 0, 1.0)
    with pytest.raises(LmsrError):
        lmsr.proceeds_for_sale(q, b, 0, 1.0)


@pytest.mark.parametrize("amount", [-0.01, -1e-300, -INF, INF, NAN])
def test_negative_or_non_finite_amounts_are_rejected(amount: float) -> None:
    b = lmsr.liquidity_parameter(100.0, 2)
    with pytest.raises(LmsrError):
        lmsr.shares_for_spend([0.0, 0.0], b, 0, amount)
    with pytest.raises(LmsrError):
        lmsr.proceeds_for_sale([0.0, 0.0], b, 0, amount)


def test_errors_are_value_errors() -> None:
    assert issubclass(LmsrError, ValueError)


# ---------------------------------------------------------------------------------------------
# Exact values


def test_two_outcome_market_with_liquidity_100() -> None:
    b = lmsr.liquidity_parameter(100.0, 2)
    assert b == 100.0 / math.log(2)
    assert lmsr.prices([0.0, 0.0], b) == [0.5, 0.5]
    assert lmsr.log_price([0.0, 0.0], b, 1) == pytest.approx(-math.log(2), rel=1e-15)
    assert lmsr.cost([0.0, 0.0], b) == pytest.approx(100.0, rel=1e-15)
    # 50/b = ln(2)/2, so e^(x/b) = √2 and s = b·ln((√2 − 1 + ½)/½) = b·ln(2√2 − 1).
    s = lmsr.shares_for_spend([0.0, 0.0], b, 0, 50.0)
    closed_form = b * math.log((math.exp(50.0 / b) - 1 + 0.5) / 0.5)
    assert s == pytest.approx(closed_form, rel=1e-14)
    assert s == pytest.approx(b * math.log(2 * math.sqrt(2) - 1), rel=1e-14)
    assert s == pytest.approx(87.060312661778, rel=1e-12)
    assert lmsr.cost([s, 0.0], b) - lmsr.cost([0.0, 0.0], b) == pytest.approx(50.0, rel=1e-13)
    assert lmsr.proceeds_for_sale([s, 0.0], b, 0, s) == pytest.approx(50.0, rel=1e-13)
    # p' = 1 − 1/(2√2), both from the closed form and from the market.
    p_after = 1 - 1 / (2 * math.sqrt(2))
    assert lmsr.price_after_purchase(0.5, b, s) == pytest.approx(p_after, rel=1e-14)
    assert lmsr.prices([s, 0.0], b)[0] == pytest.approx(p_after, rel=1e-14)


def test_a_huge_spend_loses_the_maker_exactly_its_liquidity() -> None:
    for n in range(2, 11):
        b = lmsr.liquidity_parameter(MIN_LIQUIDITY, n)
        s = lmsr.shares_for_spend([0.0] * n, b, 0, 1e6)
        # s − x → −b·ln(1/n) = L as e^(−x/b) → 0.
        assert s - 1e6 == pytest.approx(MIN_LIQUIDITY, abs=1e-6)


@pytest.mark.parametrize("p", [1e-12, 1e-3, 0.1, 0.5, 0.9, 0.999999])
@pytest.mark.parametrize("x_over_b", [1e-6, 0.01, 1.0, 10.0, 100.0])
def test_closed_form_and_overflow_free_form_agree(p: float, x_over_b: float) -> None:
    b = lmsr.liquidity_parameter(100.0, 2)
    x = x_over_b * b
    closed = b * math.log((math.exp(x / b) - 1 + p) / p)
    overflow_free = x + b * math.log1p((p - 1) * math.exp(-x / b)) - b * math.log(p)
    assert overflow_free == pytest.approx(closed, rel=1e-9)
    # The same through the module, on a market whose price of outcome 0 is p.
    q = [b * math.log(p / (1 - p)), 0.0]
    assert lmsr.prices(q, b)[0] == pytest.approx(p, rel=1e-12)
    p_market = lmsr.prices(q, b)[0]
    s = lmsr.shares_for_spend(q, b, 0, x)
    assert s == pytest.approx(b * math.log((math.exp(x / b) - 1 + p_market) / p_market), rel=1e-9)
    # Selling: C(q) − C(q − s·e_i) against −b·log1p(p·expm1(−s/b)) (fine while p is not ≈ 1).
    if x_over_b > 10:  # p' rounds to 1 and expm1(−s/b) to −1: the closed form hits log1p(−1)
        return
    after = [q[0] + s, 0.0]
    p_after = lmsr.prices(after, b)[0]
    closed_sale = -b * math.log1p(p_after * math.expm1(-s / b))
    assert lmsr.proceeds_for_sale(after, b, 0, s) == pytest.approx(closed_sale, rel=1e-8)
    assert closed_sale == pytest.approx(x, rel=1e-8)


def test_overflow_free_form_where_the_closed_form_overflows() -> None:
    b = lmsr.liquidity_parameter(MIN_LIQUIDITY, 2)
    x = 1e6  # x/b ≈ 69315: e^(x/b) overflows
    with pytest.raises(OverflowError):
        math.exp(x / b)
    q = [0.0, -1000.0]
    lp = lmsr.log_price(q, b, 1)
    s = lmsr.shares_for_spend(q, b, 1, x)
    assert s == pytest.approx(x - b * lp, rel=1e-15)  # e^(−x/b) = 0: s = x − b·ln p
    assert lmsr.price_after_purchase(math.exp(lp), b, s) == 1.0


def test_extreme_positions_on_the_smallest_market() -> None:
    m = EXTREME_SMALL_B
    assert lmsr.prices(m.q, m.b) == [1.0, 0.0, 0.0]
    assert lmsr.cost(m.q, m.b) == pytest.approx(MAX_Q, rel=1e-15)
    assert lmsr.log_price(m.q, m.b, 1) == pytest.approx(-2 * MAX_Q / m.b, rel=1e-15)
    assert lmsr.proceeds_for_sale(m.q, m.b, 1, MAX_Q) >= 0.0
    # Selling the 1e9 leader leaves [0, −1e9, 0], whose cost is b·ln 2.
    rest = MAX_Q - m.b * math.log(2)
    assert lmsr.proceeds_for_sale(m.q, m.b, 0, MAX_Q) == pytest.approx(rest, rel=1e-15)


# ---------------------------------------------------------------------------------------------
# Edge cases found by these properties (fixed), and one documented limit (strict xfail)


def test_tiny_spend_on_a_tiny_price() -> None:
    b = lmsr.liquidity_parameter(MIN_LIQUIDITY, 2)
    q = [0.0, -1000.0]  # p_1 ≈ 7.9e-31
    s = lmsr.shares_for_spend(q, b, 1, 1e-20)
    assert math.isfinite(s)
    assert s > 0.0


@pytest.mark.parametrize("function", [lmsr.shares_for_spend, lmsr.proceeds_for_sale])
def test_zero_amounts_still_validate_the_market(function: object) -> None:
    assert callable(function)
    with pytest.raises(LmsrError):
        function([NAN], -1.0, 0, 0.0)


def test_selling_on_an_empty_market_is_an_lmsr_error() -> None:
    with pytest.raises(LmsrError):
        lmsr.proceeds_for_sale([], 10.0, 0, 1.0)
    for function in (lmsr.cost, lmsr.prices):  # what the others do
        with pytest.raises(LmsrError):
            function([], 10.0)


@pytest.mark.parametrize(
    ("p", "b", "shares"),
    [(0.5, 0.0, 1.0), (0.5, -1.0, 1.0), (0.5, NAN, 1.0), (NAN, 1.0, 1.0), (0.5, 1.0, NAN)],
)
def test_price_after_purchase_rejects_bad_arguments(p: float, b: float, shares: float) -> None:
    with pytest.raises(LmsrError):
        lmsr.price_after_purchase(p, b, shares)


@pytest.mark.xfail(
    strict=True,
    reason="price_after_purchase takes p_i as a float, so a price that underflowed to 0 (q "
    "spread 1e9 on a small b) stays 0 however much is bought; a log-price argument would not",
)
def test_price_after_purchase_from_an_underflowed_price() -> None:
    b = lmsr.liquidity_parameter(MIN_LIQUIDITY, 2)
    q = [MAX_Q, -MAX_Q]
    p = lmsr.prices(q, b)[1]
    assert p == 0.0
    assert lmsr.prices([MAX_Q, MAX_Q], b)[1] == 0.5
    assert lmsr.price_after_purchase(p, b, 2 * MAX_Q) == pytest.approx(0.5)
