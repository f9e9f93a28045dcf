"""Stateful random tests of the trading service against a real database (SQLite and PostgreSQL).

Hypothesis generates a program (a list of operations): sign-ups, market creations (some of
them invalid), buys and sells (ordinary, all-in, too large, zero, with and without slippage
limits and idempotency keys), retries of keyed requests (the same one, or a changed one), moves
of the injected clock (past a market's closesAt, past the 24-hour life of idempotency keys),
resolutions and cancellations (first, repeated, contradicting). Each program runs on a wiped
database through ``Trading`` and ``Accounts`` while a model predicts every answer: which
refusal (``Refusal.code``), or success and its exact effect on balances and positions.

After every step, from the database:

* ``audit()`` finds no problem (the ledger sums to zero, every account matches its entries);
* no wallet is negative and no position holds negative shares;
* each wallet and each position equals the model's; each outcome's q is the sum of the holdings;
* each open market's probabilities (``lmsr.prices``) sum to 1 within 1e-9;
* each settled market's maker holds 0;
* each position's cost basis minus realized profit is what its trades paid in net, and a
  position without shares has no basis; each market's volume and trader count are the model's;
* a refused call, a replayed request and a repeated settlement changed nothing at all
  (balances, positions, outcomes, markets and the row counts of every trading table).

And per operation: a buy debits exactly the amount and credits the shares it pays for rounded
down (exactly the quote's shares when the quote set the slippage limit); a sale credits the
proceeds rounded down to the cent; a replay answers the first trade and the balance after it;
a resolution pays exactly floor(units / 100) cents per winning position out of a maker that can
afford it; a cancellation refunds each trader max(0, net cost), split over their positions.

A buy of 0.01 credits cannot be refused as "less than 0.0001 shares" (a cent buys at least 0.01
shares at any price); tiny sales (1 unit) do reach the "worth less than 0.01 credits" refusal.

A keyed request sent again exactly 24 hours after the first one found a bug (the key was
neither replayed nor deleted, and the INSERT failed); ``test_idempotency_key_exactly_24_hours_old``
keeps it fixed: at exactly 24 hours the key has expired.
Run with ``--hypothesis-show-statistics`` to see how often each answer came up.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, note, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from tortoise import Tortoise

from accounts.ratelimit import MemoryRateLimiter
from accounts.service import Accounts
from db import models
from db.config import tortoise_config
from db.sql import execute, fetch_dicts
from domain_events import Event, discard
from markets import lmsr
from markets.audit import audit
from markets.events import OddsChanged
from markets.trading import Trading
from refusals import Refusal
from settings import Settings
from tests.conftest import forget_compiled_statements

T = TypeVar("T")

START = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
GRANT_CENTS = 100_000
DAY = 86_400
KEY_LIFETIME = timedelta(hours=24)  # API.md: idempotency keys are kept 24 hours

# -- operations --------------------------------------------------------------------------------
# Users, markets and outcomes are chosen by index, modulo how many exist at that point.


@dataclass(frozen=True)
class SignUp:
    taken: bool = False  # reuse an existing username: USERNAME_TAKEN


@dataclass(frozen=True)
class CreateMarket:
    user: int
    outcomes: int
    liquidity_cents: int
    closes_in: int  # seconds after the clock
    question: int  # small: questions (and slugs) collide
    flaw: str | None = None  # "liquidity" (1 cent below the minimum) or "past" (closes now)


@dataclass(frozen=True)
class Buy:
    user: int
    market: int
    outcome: int
    # "cents" (n), "one" (1 cent), "huge" (n · 50,000: more than any wallet), "all" (the whole
    # wallet), "over" (wallet + n), "bad" (0 or −1)
    amount: str
    n: int
    key: str | None
    slippage: str | None  # None, "exact" (the quote's shares), "above" (one unit more)


@dataclass(frozen=True)
class Sell:
    user: int
    market: int
    outcome: int
    # "part" (n % of the holding, at least 1 unit), "all", "more" (holding + n · 100), "one"
    # (1 unit), "zero"
    size: str
    n: int
    key: str | None
    slippage: str | None  # None, "exact" (the quote's cents), "above" (one cent more)
    held: bool  # pick a holding in an open market (by ``outcome``), not user and outcome


@dataclass(frozen=True)
class Retry:
    which: int  # a keyed request sent before
    changed: bool  # the same key with a different amount: IDEMPOTENCY_CONFLICT while live


@dataclass(frozen=True)
class Advance:
    seconds: int


@dataclass(frozen=True)
class CloseMarket:
    market: int
    exact: bool  # the clock lands on closesAt itself (closed: open means closesAt > now)


@dataclass(frozen=True)
class Resolve:
    market: int
    outcome: int
    foreign: bool = False  # an outcome of another market (or none): NOT_FOUND


@dataclass(frozen=True)
class Cancel:
    market: int


Op = SignUp | CreateMarket | Buy | Sell | Retry | Advance | CloseMarket | Resolve | Cancel


def weighted(*choices: tuple[int, T]) -> st.SearchStrategy[T]:
    """One of the values, with the given weights (Hypothesis shrinks towards the first)."""
    return st.sampled_from([value for weight, value in choices for _ in range(weight)])


INDEX = st.integers(0, 7)
KEYS = weighted((3, None), (1, "k1"), (1, "k2"), (1, "k3"))
SLIPPAGE = weighted((6, None), (2, "exact"), (1, "above"))

valid_markets = st.builds(
    CreateMarket,
    user=INDEX,
    outcomes=st.integers(2, 4),
    liquidity_cents=st.one_of(st.sampled_from([1000, 50_000]), st.integers(1000, 50_000)),
    closes_in=weighted((1, 60), (1, DAY), (2, 3 * DAY), (4, 30 * DAY)),
    question=st.integers(0, 2),
)
flawed_markets = st.builds(
    CreateMarket,
    user=INDEX,
    outcomes=st.integers(2, 4),
    liquidity_cents=st.integers(1000, 50_000),
    closes_in=st.just(DAY),
    question=st.integers(0, 2),
    flaw=st.sampled_from(["liquidity", "past"]),
)
buys = st.builds(
    Buy,
    user=INDEX,
    market=INDEX,
    outcome=INDEX,
    amount=weighted((8, "cents"), (1, "one"), (1, "huge"), (1, "all"), (1, "over"), (1, "bad")),
    n=st.integers(1, 20_000),
    key=KEYS,
    slippage=SLIPPAGE,
)
sells = st.builds(
    Sell,
    user=INDEX,
    market=INDEX,
    outcome=INDEX,
    size=weighted((5, "part"), (2, "all"), (1, "more"), (1, "one"), (1, "zero")),
    n=st.integers(1, 100),
    key=KEYS,
    slippage=SLIPPAGE,
    held=weighted((4, True), (1, False)),
)
retries = st.builds(Retry, which=INDEX, changed=st.booleans())
advances = st.builds(
    Advance,
    seconds=weighted((2, 1), (2, 3600), (1, DAY - 1), (2, DAY), (1, DAY + 1), (1, 3 * DAY)),
)
# (weight, strategy): trades dominate; what ends markets (clock moves, settlements) is rarer.
OPERATIONS: list[tuple[int, st.SearchStrategy[Op]]] = [
    (35, buys),
    (26, sells),
    (8, retries),
    (4, st.builds(SignUp, taken=weighted((3, False), (1, True)))),
    (6, valid_markets),
    (2, flawed_markets),
    (5, advances),
    (3, st.builds(CloseMarket, market=INDEX, exact=st.booleans())),
    (6, st.builds(Resolve, market=INDEX, outcome=INDEX, foreign=weighted((3, False), (1, True)))),
    (5, st.builds(Cancel, market=INDEX)),
]
operations: st.SearchStrategy[Op] = weighted(*OPERATIONS).flatmap(lambda strategy: strategy)
# Every program starts with users and a market, so that trades have something to act on.
programs = st.tuples(
    st.integers(1, 3), valid_markets, st.lists(operations, min_size=10, max_size=40)
)


def build_program(start: tuple[int, CreateMarket, list[Op]]) -> list[Op]:
    users, market, rest = start
    first: list[Op] = [SignUp() for _ in range(users)]
    return [*first, market, *rest]


# -- database helpers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Everything a trading operation can change (rows by id, and row counts)."""

    rows: dict[str, dict[int, dict[str, Any]]]
    counts: dict[str, int]

    def wallets(self) -> dict[int, int]:
        return {
            int(a["user_id"]): int(a["balance_cents"])
            for a in self.rows["accounts"].values()
            if a["kind"] == "USER"
        }

    def maker(self, market_id: int) -> int:
        [balance] = [
            int(a["balance_cents"])
            for a in self.rows["accounts"].values()
            if a["kind"] == "MARKET" and a["market_id"] == market_id
        ]
        return balance

    def q_units(self, outcome_ids: list[int]) -> list[int]:
        return [int(self.rows["outcomes"][o]["shares_units"]) for o in outcome_ids]

    def positions(self) -> dict[tuple[int, int], int]:
        return {
            (int(p["user_id"]), int(p["outcome_id"])): int(p["shares_units"])
            for p in self.rows["positions"].values()
        }


SNAPSHOT_ROWS = {
    "accounts": "SELECT id, kind, user_id, market_id, balance_cents FROM ledger_accounts",
    "positions": "SELECT id, user_id, market_id, outcome_id, shares_units, cost_basis_cents, "
    "realized_cents, settled_value_cents FROM positions",
    "outcomes": "SELECT id, market_id, position, shares_units FROM outcomes",
    "markets": "SELECT id, state, resolved_outcome_id, resolved_at, closes_at, liquidity_cents, "
    "volume_cents, trader_count, odds_seq FROM markets",
}
COUNTED = (
    "users",
    "sessions",
    "markets",
    "outcomes",
    "trades",
    "positions",
    "price_points",
    "idempotency_keys",
    "ledger_accounts",
    "ledger_transactions",
    "ledger_entries",
)


async def take_snapshot() -> Snapshot:
    rows = {
        name: {int(r["id"]): r for r in await fetch_dicts(sql)}
        for name, sql in SNAPSHOT_ROWS.items()
    }
    counted = ", ".join(f"(SELECT COUNT(*) FROM {table}) AS {table}" for table in COUNTED)
    [counts] = await fetch_dicts(f"SELECT {counted}")
    return Snapshot(rows, {k: int(v) for k, v in counts.items()})


WIPE = (
    "DELETE FROM idempotency_keys",
    "DELETE FROM price_points",
    "DELETE FROM positions",
    "DELETE FROM trades",
    "DELETE FROM ledger_entries",
    "DELETE FROM ledger_transactions",
    "DELETE FROM ledger_accounts WHERE kind <> 'ISSUER'",
    "UPDATE ledger_accounts SET balance_cents = 0",
    "DELETE FROM market_tags",
    "DELETE FROM market_articles",
    "DELETE FROM outcomes",
    "DELETE FROM markets",
    "DELETE FROM sessions",
    "DELETE FROM users",
)


async def wipe() -> None:
    """Back to a migrated, empty database (the issuer's account stays, at 0)."""
    for sql in WIPE:
        await execute(sql)


async def attempt(call: Awaitable[T]) -> tuple[T | None, Refusal | None]:
    try:
        return await call, None
    except Refusal as refusal:
        return None, refusal


def event(name: str) -> None:
    """Count what happened in Hypothesis's statistics (--hypothesis-show-statistics)."""
    if currently_in_test_context():
        hypothesis_event(name)


# -- the model ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class MarketModel:
    id: int
    outcome_ids: list[int]
    liquidity_cents: int
    closes_at: datetime
    state: str = "OPEN"
    resolved: int | None = None
    # Sum of each user's trade amounts (paid > 0, received < 0) in this market.
    net: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    volume_cents: int = 0

    def is_open(self, now: datetime) -> bool:
        return self.state == "OPEN" and self.closes_at > now

    @property
    def b(self) -> float:
        return lmsr.liquidity_parameter(self.liquidity_cents / 100, len(self.outcome_ids))


@dataclass(frozen=True)
class Request:
    """A buy (``qty`` cents) or a sale (``qty`` units), as sent to the service."""

    kind: str
    user_id: int
    outcome_id: int
    qty: int
    minimum: int | None
    key: str | None
    # How ``minimum`` was made from a quote of the same state: "exact" or "above" (one more).
    slippage: str | None = field(default=None, compare=False)

    @property
    def fingerprint(self) -> tuple[str, int, int, int | None]:
        return (self.kind, self.outcome_id, self.qty, self.minimum)


@dataclass(frozen=True)
class KeyRecord:
    request: Request
    trade_id: int
    balance_after: int
    created_at: datetime


def cost_units(q: list[int], b: float, i: int, add_units: float) -> float:
    """C(q + add·e_i) − C(q), in credits, for q in units."""
    before = [x / 10_000 for x in q]
    after = list(before)
    after[i] += add_units / 10_000
    return lmsr.cost(after, b) - lmsr.cost(before, b)


class World:
    """Runs operations, predicts their answers, and checks the database after each."""

    def __init__(self, settings: Settings, snapshot: Snapshot) -> None:
        self.clock = Clock()
        # What the services published during the current operation (checked by each one).
        self.published: list[Event] = []
        self.trading = Trading(settings, publish=self.record, clock=self.clock)
        self.accounts = Accounts(settings, MemoryRateLimiter(), publish=self.record)
        self.settings = settings
        self.users: list[models.User] = []
        self.balances: dict[int, int] = {}
        self.markets: list[MarketModel] = []
        self.holdings: dict[tuple[int, int], int] = {}
        # Sum of the trade amounts by (user, outcome): a position's cost basis − realized.
        self.paid: dict[tuple[int, int], int] = defaultdict(int)
        self.keys: dict[tuple[int, str], KeyRecord] = {}
        self.keyed: list[Request] = []
        self.snapshot = snapshot
        self.log: list[str] = []

    # -- helpers ---------------------------------------------------------------------------

    async def record(self, published: Event) -> None:
        self.published.append(published)

    def user(self, index: int) -> models.User:
        return self.users[index % len(self.users)]

    def market(self, index: int) -> MarketModel:
        return self.markets[index % len(self.markets)]

    def trading_market(self, index: int) -> MarketModel:
        """Mostly (indexes 0-5) an open market when there is one; else any market."""
        live = [m for m in self.markets if m.is_open(self.clock())]
        pool = live if live and index < 6 else self.markets
        return pool[index % len(pool)]

    def market_of(self, outcome_id: int) -> MarketModel:
        [market] = [m for m in self.markets if outcome_id in m.outcome_ids]
        return market

    def live_key(self, user_id: int, key: str | None) -> KeyRecord | None:
        if key is None:
            return None
        record = self.keys.get((user_id, key))
        if record is None or record.created_at <= self.clock() - KEY_LIFETIME:
            return None
        return record

    def boundary_key(self, user_id: int, key: str | None) -> KeyRecord | None:
        """The user's record of ``key`` if it is exactly KEY_LIFETIME old right now."""
        record = self.keys.get((user_id, key)) if key is not None else None
        if record is None or record.created_at != self.clock() - KEY_LIFETIME:
            return None
        return record

    async def refused(self, before: Snapshot, refusal: Refusal, expected: set[str]) -> None:
        assert refusal.code in expected, (
            f"refused {refusal.code} ({refusal.message}), expected {expected}"
        )
        self.log.append(f"  -> {refusal.code}")
        event(f"refused {refusal.code}")
        await self.unchanged(before)

    async def unchanged(self, before: Snapshot) -> None:
        after = await take_snapshot()
        changed: dict[str, object] = {
            f"{table} {row_id}": (before.rows[table].get(row_id), after.rows[table].get(row_id))
            for table in SNAPSHOT_ROWS
            for row_id in before.rows[table].keys() | after.rows[table].keys()
            if before.rows[table].get(row_id) != after.rows[table].get(row_id)
        }
        changed |= {
            f"{table} count": (before.counts[table], after.counts[table])
            for table in COUNTED
            if before.counts[table] != after.counts[table]
        }
        assert not changed, f"a refused or repeated call changed the database: {changed}"
        assert self.published == [], f"a refused or repeated call published {self.published}"

    # -- operations ------------------------------------------------------------------------

    async def sign_up(self, op: SignUp) -> None:
        before = self.snapshot
        if op.taken and self.users:
            name = self.users[0].username
            _, refusal = await attempt(
                self.accounts.sign_up(name, "a-good-password", "Taken", "10.0.0.1")
            )
            assert refusal is not None, "a taken username was accepted"
            await self.refused(before, refusal, {"USERNAME_TAKEN"})
            return
        name = f"trader_{len(self.users)}"
        session = await self.accounts.sign_up(name, "a-good-password", name.title(), "10.0.0.1")
        self.users.append(session.user)
        self.balances[session.user.id] = GRANT_CENTS
        assert self.published == []

    async def create_market(self, op: CreateMarket) -> None:
        before = self.snapshot
        if not self.users:
            return
        closes_at = self.clock() + timedelta(seconds=op.closes_in)
        if op.flaw == "past":
            closes_at = self.clock()
        liquidity = op.liquidity_cents
        if op.flaw == "liquidity":
            liquidity = self.settings.min_market_liquidity_cents - 1
        labels = [f"Answer {chr(65 + i)}" for i in range(op.outcomes)]
        call = self.trading.create_market(
            self.user(op.user),
            f"Will stateful event number {op.question} happen?",
            "A market made by the stateful test.",
            "Resolves by the test's say-so.",
            labels,
            closes_at,
            liquidity,
            [],
            [],
        )
        result, refusal = await attempt(call)
        if op.flaw is not None:
            assert refusal is not None, f"created a flawed market: {op}"
            await self.refused(before, refusal, {"VALIDATION"})
            return
        assert refusal is None, f"refused {refusal.code}: {refusal.message}"
        assert result is not None
        market = result
        assert self.published == [OddsChanged(market.id, 0, None)]
        outcomes = await models.Outcome.filter(market_id=market.id).order_by("position")
        assert [o.label for o in outcomes] == labels
        self.markets.append(MarketModel(market.id, [o.id for o in outcomes], liquidity, closes_at))
        after = await take_snapshot()
        assert after.maker(market.id) == liquidity

    async def buy(self, op: Buy) -> None:
        if not self.users or not self.markets:
            return
        user = self.user(op.user)
        market = self.trading_market(op.market)
        outcome_id = market.outcome_ids[op.outcome % len(market.outcome_ids)]
        balance = self.balances[user.id]
        amount = {
            "cents": op.n,
            "one": 1,
            "huge": op.n * 50_000,
            "all": balance,
            "over": balance + op.n,
            "bad": -(op.n % 2),
        }[op.amount]
        minimum = None
        if op.slippage is not None and amount >= 1:
            quoted, _ = await attempt(self.trading.quote_buy(None, outcome_id, amount))
            if quoted is not None:
                minimum = quoted[1].shares_units + (1 if op.slippage == "above" else 0)
        slippage = op.slippage if minimum is not None else None
        await self.trade(Request("buy", user.id, outcome_id, amount, minimum, op.key, slippage))

    async def sell(self, op: Sell) -> None:
        if not self.users or not self.markets:
            return
        user = self.user(op.user)
        market = self.trading_market(op.market)
        outcome_id = market.outcome_ids[op.outcome % len(market.outcome_ids)]
        holdings = sorted(
            (u, o)
            for (u, o), units in self.holdings.items()
            if units and self.market_of(o).is_open(self.clock())
        )
        if op.held and holdings:
            user_id, outcome_id = holdings[op.outcome % len(holdings)]
            user = next(u for u in self.users if u.id == user_id)
        held = self.holdings.get((user.id, outcome_id), 0)
        units = {
            "part": max(1, held * op.n // 100),
            "all": held,
            "more": held + op.n * 100,
            "one": 1,
            "zero": 0,
        }[op.size]
        minimum = None
        if op.slippage is not None and units >= 1:
            quoted, _ = await attempt(self.trading.quote_sell(None, outcome_id, units))
            if quoted is not None:
                minimum = -quoted[1].amount_cents + (1 if op.slippage == "above" else 0)
        slippage = op.slippage if minimum is not None else None
        await self.trade(Request("sell", user.id, outcome_id, units, minimum, op.key, slippage))

    async def retry(self, op: Retry) -> None:
        if not self.keyed:
            return
        request = self.keyed[op.which % len(self.keyed)]
        live = self.live_key(request.user_id, request.key)
        if op.changed:
            request = Request(
                request.kind,
                request.user_id,
                request.outcome_id,
                request.qty + 1,
                request.minimum,
                request.key,
            )
        if live is None:
            # Expired: a new request; an old slippage limit would be a guess.
            request = Request(
                request.kind, request.user_id, request.outcome_id, request.qty, None, request.key
            )
        await self.trade(request)

    def predict(self, request: Request) -> set[str]:
        """The acceptable answers: "REPLAY", or every refusal code that applies, or "OK".

        When several refusals apply, any of them will do (API.md doesn't order them); "OK" only
        when none does.
        """
        record = self.live_key(request.user_id, request.key)
        if record is not None and record.request.fingerprint == request.fingerprint:
            return {"REPLAY"}
        codes = set()
        if record is not None:
            codes.add("IDEMPOTENCY_CONFLICT")
        if request.qty < 1:
            return codes | {"VALIDATION"}
        market = self.market_of(request.outcome_id)
        if not market.is_open(self.clock()):
            codes.add("MARKET_NOT_OPEN")
        if request.slippage == "above":  # (only set when a quote of this request passed)
            codes.add("SLIPPAGE_EXCEEDED")
        if request.kind == "buy":
            # A cent buys at least 0.01 shares: never "less than 0.0001 shares".
            if request.qty > self.balances[request.user_id]:
                codes.add("INSUFFICIENT_FUNDS")
            return codes or {"OK"}
        if self.holdings.get((request.user_id, request.outcome_id), 0) < request.qty:
            codes.add("INSUFFICIENT_SHARES")
        i = market.outcome_ids.index(request.outcome_id)
        worth = -cost_units(self.snapshot.q_units(market.outcome_ids), market.b, i, -request.qty)
        if request.slippage == "exact" or worth * 100 >= 1 + 1e-6:
            return codes or {"OK"}  # (a quote of the same sale passed: worth at least a cent)
        if worth * 100 < 1 - 1e-6:
            return codes | {"VALIDATION"}
        return (codes or {"OK"}) | {"VALIDATION"}  # too close to a cent to call

    async def trade(self, request: Request) -> None:
        before = self.snapshot
        expected = self.predict(request)
        self.log.append(f"  {request} expecting {sorted(expected)}")
        user = next(u for u in self.users if u.id == request.user_id)
        if request.kind == "buy":
            call = self.trading.buy(
                user, request.outcome_id, request.qty, request.minimum, request.key
            )
        else:
            call = self.trading.sell(
                user, request.outcome_id, request.qty, request.minimum, request.key
            )
        # A key exactly 24 hours old: the model accepts it as live or as expired (the service
        # treats it as expired; test_idempotency_key_exactly_24_hours_old pins that down).
        boundary = self.boundary_key(request.user_id, request.key)
        if boundary is not None and request.qty >= 1:
            same = boundary.request.fingerprint == request.fingerprint
            expected.add("REPLAY" if same else "IDEMPOTENCY_CONFLICT")
        result, refusal = await attempt(call)
        if refusal is not None:
            await self.refused(before, refusal, expected)
            return
        assert result is not None
        done = result
        if done.replayed:
            assert "REPLAY" in expected, f"replayed, expected {expected}: {request}"
            record = self.live_key(request.user_id, request.key) or boundary
            assert record is not None
            assert done.trade.id == record.trade_id, "a replay answered another trade"
            assert done.balance_cents == record.balance_after, "a replay answered another balance"
            await self.unchanged(before)
            event("replayed")
            return
        assert "OK" in expected, f"succeeded, expected {expected}: {request}"
        assert not done.replayed
        # Once, after the commit, with the market's new sequence.
        assert self.published == [OddsChanged(done.market.id, done.market.odds_seq, done.trade.id)]
        market = self.market_of(request.outcome_id)
        i = market.outcome_ids.index(request.outcome_id)
        q = before.q_units(market.outcome_ids)
        trade = done.trade
        assert (trade.user_id, trade.outcome_id, trade.market_id) == (
            request.user_id,
            request.outcome_id,
            market.id,
        )
        if request.kind == "buy":
            units = trade.shares_units
            assert trade.amount_cents == request.qty, "a buy did not debit exactly the amount"
            assert units >= 1
            if request.slippage == "exact":
                assert units == request.minimum, "a buy credited other shares than its quote"
            spend = request.qty / 100
            slack = 1e-9 * max(1.0, spend)
            # Rounded down: these shares cost no more than the amount, two units more do.
            assert cost_units(q, market.b, i, units) <= spend + slack, (
                "a buy credited too many shares"
            )
            assert cost_units(q, market.b, i, units + 2 + units * 1e-11) >= spend - slack, (
                "a buy credited too few shares"
            )
            self.balances[request.user_id] -= request.qty
            market.net[request.user_id] += request.qty
            self.paid[(request.user_id, request.outcome_id)] += request.qty
            held_change = units
        else:
            cents = -trade.amount_cents
            assert trade.shares_units == -request.qty
            assert cents >= 1
            if request.slippage == "exact":
                assert cents == request.minimum, "a sale credited other cents than its quote"
            worth = -cost_units(q, market.b, i, -request.qty) * 100
            assert cents <= worth + 1e-6, "a sale credited more than the shares are worth"
            assert cents >= worth - 1 - 1e-6, "a sale credited less than the proceeds rounded down"
            self.balances[request.user_id] += cents
            market.net[request.user_id] -= cents
            self.paid[(request.user_id, request.outcome_id)] -= cents
            held_change = -request.qty
        market.volume_cents += abs(trade.amount_cents)
        key = (request.user_id, request.outcome_id)
        self.holdings[key] = self.holdings.get(key, 0) + held_change
        assert done.balance_cents == self.balances[request.user_id]
        assert done.position.shares_units == self.holdings[key]
        after = await take_snapshot()
        assert after.counts["trades"] == before.counts["trades"] + 1
        event(f"{request.kind} ok" + (" (all in)" if self.balances[request.user_id] == 0 else ""))
        if request.key is not None:
            self.keys[(request.user_id, request.key)] = KeyRecord(
                request, trade.id, done.balance_cents, self.clock()
            )
            self.keyed.append(request)

    async def advance(self, op: Advance) -> None:
        self.clock.now += timedelta(seconds=op.seconds)

    async def close_market(self, op: CloseMarket) -> None:
        if not self.markets:
            return
        market = self.market(op.market)
        target = market.closes_at + (timedelta(0) if op.exact else timedelta(seconds=1))
        if target > self.clock.now:
            self.clock.now = target

    async def resolve(self, op: Resolve) -> None:
        if not self.markets:
            return
        before = self.snapshot
        market = self.market(op.market)
        if op.foreign:
            others = [o for m in self.markets if m is not market for o in m.outcome_ids]
            outcome_id = others[op.outcome % len(others)] if others else 10**9
        else:
            outcome_id = market.outcome_ids[op.outcome % len(market.outcome_ids)]
        result, refusal = await attempt(self.trading.resolve(market.id, outcome_id))
        if op.foreign:
            assert refusal is not None, "resolved with another market's outcome"
            await self.refused(before, refusal, {"NOT_FOUND"})
            return
        if market.state == "CANCELLED" or (
            market.state == "RESOLVED" and market.resolved != outcome_id
        ):
            assert refusal is not None, f"settled a {market.state} market again"
            await self.refused(before, refusal, {"MARKET_NOT_OPEN"})
            return
        assert refusal is None, f"refused {refusal.code}: {refusal.message}"
        assert result is not None
        settled = result
        assert settled.state == models.MarketState.RESOLVED
        assert settled.resolved_outcome_id == outcome_id
        if market.state == "RESOLVED":
            await self.unchanged(before)
            event(f"{type(op).__name__.lower()} repeated")
            return
        assert self.published == [OddsChanged(market.id, settled.odds_seq, None)]
        event(f"{type(op).__name__.lower()} ok")
        payouts: dict[int, int] = defaultdict(int)
        for (user_id, held_outcome), units in self.holdings.items():
            if held_outcome == outcome_id:
                payouts[user_id] += units // 100
        assert before.maker(market.id) >= sum(payouts.values()), (
            "the maker cannot pay the winners: the house lost more than the liquidity"
        )
        for user_id, cents in payouts.items():
            self.balances[user_id] += cents
        market.state, market.resolved = "RESOLVED", outcome_id
        after = await take_snapshot()
        for p in after.rows["positions"].values():
            if p["market_id"] == market.id:
                won = p["outcome_id"] == outcome_id
                expected = int(p["shares_units"]) // 100 if won else 0
                assert p["settled_value_cents"] == expected, f"position {p}: expected {expected}"

    async def cancel(self, op: Cancel) -> None:
        if not self.markets:
            return
        before = self.snapshot
        market = self.market(op.market)
        result, refusal = await attempt(self.trading.cancel(market.id))
        if market.state == "RESOLVED":
            assert refusal is not None, "cancelled a resolved market"
            await self.refused(before, refusal, {"MARKET_NOT_OPEN"})
            return
        assert refusal is None, f"refused {refusal.code}: {refusal.message}"
        assert result is not None
        settled = result
        assert settled.state == models.MarketState.CANCELLED
        if market.state == "CANCELLED":
            await self.unchanged(before)
            event(f"{type(op).__name__.lower()} repeated")
            return
        assert self.published == [OddsChanged(market.id, settled.odds_seq, None)]
        event(f"{type(op).__name__.lower()} ok")
        refunds = {user_id: max(0, net) for user_id, net in market.net.items()}
        for user_id, cents in refunds.items():
            self.balances[user_id] += cents
        market.state = "CANCELLED"
        after = await take_snapshot()
        settled_by_user: dict[int, int] = defaultdict(int)
        for p in after.rows["positions"].values():
            if p["market_id"] == market.id:
                assert p["settled_value_cents"] is not None
                settled_by_user[int(p["user_id"])] += int(p["settled_value_cents"])
        assert settled_by_user == refunds, "refunds by position"

    # -- invariants ------------------------------------------------------------------------

    async def check(self) -> None:
        report = await audit()
        assert report.problems == [], report.problems
        snap = await take_snapshot()
        wallets = snap.wallets()
        assert all(balance >= 0 for balance in wallets.values()), wallets
        assert wallets == self.balances, "wallets differ from the model"
        positions = snap.positions()
        assert all(units >= 0 for units in positions.values()), positions
        assert positions == self.holdings, "positions differ from the model"
        holdings: dict[int, int] = defaultdict(int)
        for (_user_id, outcome_id), units in positions.items():
            holdings[outcome_id] += units
        assert {o: int(r["shares_units"]) for o, r in snap.rows["outcomes"].items()} == {
            o: holdings.get(o, 0) for o in snap.rows["outcomes"]
        }, "an outcome's q differs from the shares its holders hold"
        for p in snap.rows["positions"].values():
            # Average cost: a sale removes basis pro rata and realizes proceeds − that basis, so
            # basis − realized is what the position's trades paid in net.
            basis, realized = int(p["cost_basis_cents"]), int(p["realized_cents"])
            assert basis >= 0 and (basis == 0 or p["shares_units"] > 0), p
            assert basis - realized == self.paid[(int(p["user_id"]), int(p["outcome_id"]))], p
        assert len(snap.rows["markets"]) == len(self.markets)
        for market in self.markets:
            row = snap.rows["markets"][market.id]
            assert (row["state"], row["resolved_outcome_id"]) == (market.state, market.resolved)
            traders = {u for (u, o) in self.holdings if o in market.outcome_ids}
            assert (row["volume_cents"], row["trader_count"]) == (
                market.volume_cents,
                len(traders),
            )
            if market.state == "OPEN":
                probabilities = lmsr.prices(
                    [x / 10_000 for x in snap.q_units(market.outcome_ids)], market.b
                )
                assert abs(math.fsum(probabilities) - 1.0) <= 1e-9, probabilities
                assert all(0.0 <= p <= 1.0 for p in probabilities)
            else:
                assert snap.maker(market.id) == 0, "a settled market's maker holds money"
        self.snapshot = snap

    async def step(self, op: Op) -> None:
        self.log.append(f"{op} at +{(self.clock() - START).total_seconds():.0f}s")
        self.published.clear()
        handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            SignUp: self.sign_up,
            CreateMarket: self.create_market,
            Buy: self.buy,
            Sell: self.sell,
            Retry: self.retry,
            Advance: self.advance,
            CloseMarket: self.close_market,
            Resolve: self.resolve,
            Cancel: self.cancel,
        }
        await handlers[type(op)](op)
        await self.check()


async def run_program(db_settings: Settings, program: list[Op]) -> None:
    await wipe()
    world = World(db_settings, await take_snapshot())
    await world.check()
    try:
        for op in program:
            await world.step(op)
    finally:
        if currently_in_test_context():
            note("\n".join(world.log))  # printed for the falsifying example only


# -- the tests ---------------------------------------------------------------------------------

_cheap_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
async def trading_db(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    """Tortoise on a fresh database for the whole test function (wiped before each example)."""
    # Sign-ups are not what is tested here: argon2's defaults cost 0.2 s a hash.
    monkeypatch.setattr("accounts.service.hash_password", _cheap_hasher.hash)
    forget_compiled_statements()
    await Tortoise.init(config=tortoise_config(fresh_settings))
    try:
        yield fresh_settings
    finally:
        await Tortoise.close_connections()


STATEFUL = settings(
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@settings(STATEFUL, max_examples=200)
@given(start=programs)
async def test_trading_stateful_sqlite(
    trading_db: Settings, start: tuple[int, CreateMarket, list[Op]]
) -> None:
    await run_program(trading_db, build_program(start))


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@settings(STATEFUL, max_examples=80)
@given(start=programs)
async def test_trading_stateful_postgres(
    trading_db: Settings, start: tuple[int, CreateMarket, list[Op]]
) -> None:
    await run_program(trading_db, build_program(start))


async def test_idempotency_key_exactly_24_hours_old(trading_db: Settings) -> None:
    """A key is kept 24 hours: exactly 24 hours later it has expired and the request trades."""
    clock = Clock()
    trading = Trading(trading_db, publish=discard, clock=clock)
    accounts = Accounts(trading_db, MemoryRateLimiter(), publish=discard)
    await wipe()
    user = (await accounts.sign_up("alice", "a-good-password", "Alice", "10.0.0.1")).user
    market = await trading.create_market(
        user,
        "Will the key outlive the day?",
        "",
        "The test says so.",
        ["Yes", "No"],
        START + timedelta(days=30),
        1000,
        [],
        [],
    )
    outcome = await models.Outcome.get(market_id=market.id, position=0)
    first = await trading.buy(user, outcome.id, 100, idempotency_key="k1")
    clock.now += KEY_LIFETIME
    again = await trading.buy(user, outcome.id, 100, idempotency_key="k1")
    assert not again.replayed
    assert again.trade.id != first.trade.id
    assert again.balance_cents == first.balance_cents - 100
    clock.now += timedelta(hours=1)
    replay = await trading.buy(user, outcome.id, 100, idempotency_key="k1")
    assert (replay.replayed, replay.trade.id) == (True, again.trade.id)
    assert (await audit()).problems == []
