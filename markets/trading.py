"""The trading service: quotes, buys, sells, market creation and settlement.

A trade is one transaction: re-read the market under a lock (``SELECT … FOR UPDATE`` on
PostgreSQL; on SQLite, Tortoise's single connection serialises transactions), compute with the
pure LMSR math (``plan_buy``/``plan_sell``, which ``quote`` calls too), move the money through
the ledger with conditional updates, write the trade, position, price point and idempotency
key, commit. Deadlocks and serialization failures are retried a bounded number of times.
Amounts are integers: cents, and 1/10,000 shares. Rounding always favours the house.

An idempotency key is claimed inside the trade's transaction. On PostgreSQL the user's wallet
row is locked right after the market row, so each trade of a user waits for the one before it
to commit; on SQLite whole transactions already run one at a time. Only then is the key looked
up, so a retry sent while its first request still runs waits for it and answers as its replay,
before anything is planned (planned again, it would be refused: the first trade spent the money
or the shares and moved the price).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError
from tortoise.transactions import in_transaction

from clock import Clock, now
from db import models
from db.sql import execute, fetch_dicts, is_postgres, placeholders
from logs import get_logger
from markets import ledger, lmsr
from refusals import Refusal, RefusalCode, not_found, validation
from settings import Settings

logger = get_logger("agora.trading")

UNITS_PER_SHARE = 10_000
CENTS_PER_CREDIT = 100
UNITS_PER_CENT = UNITS_PER_SHARE // CENTS_PER_CREDIT
# Float results are shaded down by this much before rounding, so float error can't round a
# trader's shares or proceeds up.
_SHADE = 1.0 - 1e-12
MAX_TRADE_CENTS = 10**12
MAX_TRADE_UNITS = 10**13
IDEMPOTENCY_TTL = timedelta(hours=24)
RETRIES = 5

T = TypeVar("T")


# -- pure planning -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketState:
    """A market and its outcomes (in order), as read from the database."""

    market: models.Market
    outcomes: list[models.Outcome]

    @property
    def b(self) -> float:
        return lmsr.liquidity_parameter(
            self.market.liquidity_cents / CENTS_PER_CREDIT, len(self.outcomes)
        )

    def q(self) -> list[float]:
        return [o.shares_units / UNITS_PER_SHARE for o in self.outcomes]

    def index(self, outcome_id: int) -> int:
        for i, outcome in enumerate(self.outcomes):
            if outcome.id == outcome_id:
                return i
        raise not_found("There is no such outcome.", "outcomeId")

    def probabilities(self) -> list[float]:
        if self.market.resolved_outcome_id is not None:
            return [1.0 if o.id == self.market.resolved_outcome_id else 0.0 for o in self.outcomes]
        return lmsr.prices(self.q(), self.b)

    def is_open(self, now: datetime) -> bool:
        return self.market.state == models.MarketState.OPEN and self.market.closes_at > now


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


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeResult:
    """A committed (or replayed) trade with the state it left behind."""

    trade: models.Trade
    position: models.Position
    market: models.Market
    balance_cents: int
    replayed: bool


@dataclass(frozen=True)
class OddsEvent:
    """The odds of a market changed (published after the commit)."""

    market_id: int
    seq: int
    trade_id: int | None


def _retryable(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    return bool(names & {"DeadlockDetectedError", "SerializationError", "LockNotAvailableError"})


async def _with_retries(work: Callable[[], Awaitable[T]]) -> T:
    for attempt in range(RETRIES):
        try:
            return await work()
        except (OperationalError, TransactionManagementError) as exc:
            if not _retryable(exc) or attempt == RETRIES - 1:
                raise
            logger.info("retrying a trade after %s (attempt %d)", type(exc).__name__, attempt + 1)
    raise AssertionError("unreachable")


async def load_state(
    conn: BaseDBAsyncClient | None, market_id: int, lock: bool = False
) -> MarketState | None:
    """The market and its outcomes; with ``lock``, the market row stays locked (PostgreSQL)."""
    suffix = _for_update(conn) if lock else ""
    rows = await fetch_dicts(f"SELECT * FROM markets WHERE id = ?{suffix}", (market_id,), conn)
    if not rows:
        return None
    market = models.Market._init_from_db(**rows[0])
    outcome_rows = await fetch_dicts(
        "SELECT * FROM outcomes WHERE market_id = ? ORDER BY position", (market_id,), conn
    )
    return MarketState(market, [models.Outcome._init_from_db(**r) for r in outcome_rows])


def _for_update(conn: BaseDBAsyncClient | None) -> str:
    """Row locks on PostgreSQL; SQLite has none and needs none (Tortoise runs its transactions
    one at a time on its single connection)."""
    return " FOR UPDATE" if is_postgres(conn) else ""


async def market_of_outcome(outcome_id: int) -> int:
    """The market an outcome belongs to; NOT_FOUND if none."""
    rows = await fetch_dicts("SELECT market_id FROM outcomes WHERE id = ?", (outcome_id,))
    if not rows:
        raise not_found("There is no such outcome.", "outcomeId")
    return int(rows[0]["market_id"])


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 100 or not key.isprintable():
        raise validation("An idempotency key is 1 to 100 printable characters.", "idempotencyKey")
    return key


class Trading:
    """Trading and settlement, bound to the settings."""

    def __init__(self, settings: Settings, clock: Clock = now) -> None:
        self.settings = settings
        # The demo data trades through this service on a clock that walks through the past.
        self.clock = clock

    # -- quotes ----------------------------------------------------------------------------

    async def quote_buy(
        self, user: models.User | None, outcome_id: int, amount_cents: int
    ) -> tuple[MarketState, Plan]:
        """What buying would do now; the same planning as ``buy``, nothing written."""
        _check_amount(amount_cents, "amount")
        state = await self._state_of(outcome_id)
        plan = plan_buy(state, outcome_id, amount_cents, None, self.clock())
        if user is not None:
            balance = (await ledger.balances_of_users([user.id])).get(user.id, 0)
            if balance < amount_cents:
                raise Refusal(
                    RefusalCode.INSUFFICIENT_FUNDS, "Your wallet holds less than that.", ["amount"]
                )
        return state, plan

    async def quote_sell(
        self, user: models.User | None, outcome_id: int, shares_units: int
    ) -> tuple[MarketState, Plan]:
        """What selling would do now; nothing written."""
        _check_units(shares_units, "shares")
        state = await self._state_of(outcome_id)
        plan = plan_sell(state, outcome_id, shares_units, None, self.clock())
        if user is not None:
            held = await models.Position.filter(user_id=user.id, outcome_id=outcome_id).first()
            if held is None or held.shares_units < shares_units:
                raise Refusal(
                    RefusalCode.INSUFFICIENT_SHARES, "You hold fewer shares than that.", ["shares"]
                )
        return state, plan

    async def _state_of(self, outcome_id: int) -> MarketState:
        state = await load_state(None, await market_of_outcome(outcome_id))
        if state is None:
            raise not_found("There is no such outcome.", "outcomeId")
        return state

    # -- trades ----------------------------------------------------------------------------

    async def buy(
        self,
        user: models.User,
        outcome_id: int,
        amount_cents: int,
        min_shares_units: int | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[TradeResult, OddsEvent | None]:
        """Spend exactly ``amount_cents`` on an outcome."""
        _check_amount(amount_cents, "amount")
        if min_shares_units is not None:
            _check_units(min_shares_units, "minShares", allow_zero=True)
        key = _check_key(idempotency_key)
        fingerprint = _fingerprint("buy", outcome_id, amount_cents, min_shares_units)
        return await self._trade(
            user,
            outcome_id,
            key,
            fingerprint,
            lambda state, now: plan_buy(state, outcome_id, amount_cents, min_shares_units, now),
        )

    async def sell(
        self,
        user: models.User,
        outcome_id: int,
        shares_units: int,
        min_amount_cents: int | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[TradeResult, OddsEvent | None]:
        """Sell shares of an outcome for its current price."""
        _check_units(shares_units, "shares")
        if min_amount_cents is not None:
            _check_amount(min_amount_cents, "minAmount", allow_zero=True)
        key = _check_key(idempotency_key)
        fingerprint = _fingerprint("sell", outcome_id, shares_units, min_amount_cents)
        return await self._trade(
            user,
            outcome_id,
            key,
            fingerprint,
            lambda state, now: plan_sell(state, outcome_id, shares_units, min_amount_cents, now),
        )

    async def _trade(
        self,
        user: models.User,
        outcome_id: int,
        key: str | None,
        fingerprint: str,
        planner: Callable[[MarketState, datetime], Plan],
    ) -> tuple[TradeResult, OddsEvent | None]:
        if key is not None:
            # A retry of a request that committed a while ago answers without taking any lock;
            # one that is still running is caught under the locks in _trade_once.
            replay = await self._replay(user.id, key, fingerprint)
            if replay is not None:
                return replay, None
        market_id = await market_of_outcome(outcome_id)
        try:
            return await _with_retries(
                lambda: self._trade_once(user, market_id, key, fingerprint, planner)
            )
        except IntegrityError:
            # A backstop: the wallet lock serialises a user's trades, so the unique (user, key)
            # index should never be what catches a second use. Should it ever be, answer as the
            # replay of the trade that holds the key rather than with an internal error.
            if key is None:
                raise
            replay = await self._replay(user.id, key, fingerprint)
            if replay is None:
                raise
            return replay, None

    async def _trade_once(
        self,
        user: models.User,
        market_id: int,
        key: str | None,
        fingerprint: str,
        planner: Callable[[MarketState, datetime], Plan],
    ) -> tuple[TradeResult, OddsEvent | None]:
        now = self.clock()
        async with in_transaction() as conn:
            state = await load_state(conn, market_id, lock=True)
            if state is None:
                raise not_found("There is no such outcome.", "outcomeId")
            # Fewer statements while the market row is locked: it is the hot market's limit.
            # FOR UPDATE also locks the user's wallet now rather than at the debit: the market
            # lock serialises retries of one request (same outcome, same market), but one key
            # may be sent with another request on another market, and only the wallet is common
            # to all of a user's trades. Under READ COMMITTED the key lookup below is a new
            # statement taken after this lock is granted, so it sees the key of whichever trade
            # held the lock before. (One statement can't do both: a join evaluated while waiting
            # for the lock would not see a key row committed meanwhile.) The maker's row is
            # locked too; it is debited or credited below anyway, and only trades on this market,
            # already serialised, want it. Market first, then wallet, as settlement takes them.
            accounts = await fetch_dicts(
                "SELECT id, kind FROM ledger_accounts WHERE (kind = 'USER' AND user_id = ?) "
                f"OR (kind = 'MARKET' AND market_id = ?){_for_update(conn)}",
                (user.id, market_id),
                conn,
            )
            wallet = next((int(a["id"]) for a in accounts if a["kind"] == "USER"), None)
            maker = next(int(a["id"]) for a in accounts if a["kind"] == "MARKET")
            stored = None
            if key is not None:
                stored = await _stored_key(conn, user.id, key)
                if stored is not None and _is_live(stored, now):
                    # Before planning: the first trade spent the money (or the shares) and moved
                    # the price, so planning this copy again would refuse it.
                    replay = await _replay_of(conn, stored, fingerprint)
                    return replay, None
            plan = planner(state, now)
            if wallet is None:
                raise Refusal(RefusalCode.INSUFFICIENT_FUNDS, "You have no wallet.", ["amount"])
            mine = await fetch_dicts(
                "SELECT * FROM positions WHERE user_id = ? AND market_id = ?",
                (user.id, market_id),
                conn,
            )
            held = next((p for p in mine if p["outcome_id"] == plan.outcome_id), None)
            if plan.shares_units < 0 and (
                held is None or held["shares_units"] < -plan.shares_units
            ):
                raise Refusal(
                    RefusalCode.INSUFFICIENT_SHARES, "You hold fewer shares than that.", ["shares"]
                )
            try:
                await ledger.post(
                    conn,
                    "TRADE",
                    [
                        ledger.Entry(wallet, -plan.amount_cents),
                        ledger.Entry(maker, plan.amount_cents),
                    ],
                    now,
                    memo=f"market {market_id}",
                )
            except ledger.InsufficientFunds as exc:
                raise Refusal(
                    RefusalCode.INSUFFICIENT_FUNDS, "Your wallet holds less than that.", ["amount"]
                ) from exc
            await execute(
                "UPDATE outcomes SET shares_units = shares_units + ? WHERE id = ?",
                (plan.shares_units, plan.outcome_id),
                conn,
            )
            position_row = await _apply_to_position(conn, user.id, market_id, plan, held, now)
            market_rows = await fetch_dicts(
                "UPDATE markets SET volume_cents = volume_cents + ?, odds_seq = odds_seq + 1, "
                "trader_count = trader_count + ? WHERE id = ? RETURNING *",
                (abs(plan.amount_cents), 0 if mine else 1, market_id),
                conn,
            )
            trade = await models.Trade.create(
                market_id=market_id,
                outcome_id=plan.outcome_id,
                user_id=user.id,
                shares_units=plan.shares_units,
                amount_cents=plan.amount_cents,
                probability_before=plan.probability_before,
                probability_after=plan.probability_after,
                created_at=now,
                using_db=conn,
            )
            await record_price(conn, market_id, plan.probabilities_after, now)
            balance = await _balance(conn, wallet)
            if key is not None:
                if stored is not None:
                    # It has expired (a live one answered above): the key is free again.
                    await execute("DELETE FROM idempotency_keys WHERE id = ?", (stored.id,), conn)
                await models.IdempotencyKey.create(
                    user_id=user.id,
                    key=key,
                    fingerprint=fingerprint,
                    trade_id=trade.id,
                    balance_after_cents=balance,
                    created_at=now,
                    using_db=conn,
                )
        position = models.Position._init_from_db(**position_row)
        market = models.Market._init_from_db(**market_rows[0])
        seq = market.odds_seq
        return (
            TradeResult(trade, position, market, balance, replayed=False),
            OddsEvent(market_id, seq, trade.id),
        )

    async def _replay(self, user_id: int, key: str, fingerprint: str) -> TradeResult | None:
        """The stored answer of a live key, read without locks; None if there is none."""
        stored = await _stored_key(None, user_id, key)
        if stored is None or not _is_live(stored, self.clock()):
            return None
        return await _replay_of(None, stored, fingerprint)

    # -- markets -----------------------------------------------------------------------------

    async def create_market(
        self,
        user: models.User,
        question: str,
        description: str,
        resolution_criteria: str,
        outcomes: list[str],
        closes_at: datetime,
        liquidity_cents: int,
        article_ids: list[int],
        tag_slugs: list[str],
    ) -> tuple[models.Market, OddsEvent]:
        """A new market funded by the issuer with ``liquidity_cents``."""
        question = " ".join(question.split())
        if not 10 <= len(question) <= 300:
            raise validation("A question is 10 to 300 characters.", "question")
        description = description.strip()
        if len(description) > 10_000:
            raise validation("A description is at most 10,000 characters.", "description")
        criteria = resolution_criteria.strip()
        if not 1 <= len(criteria) <= 10_000:
            raise validation(
                "Resolution criteria are 1 to 10,000 characters.", "resolutionCriteria"
            )
        labels = [" ".join(label.split()) for label in outcomes]
        if not 2 <= len(labels) <= 10:
            raise validation("A market has 2 to 10 outcomes.", "outcomes")
        if any(not 1 <= len(label) <= 120 for label in labels):
            raise validation("An outcome label is 1 to 120 characters.", "outcomes")
        if len({label.lower() for label in labels}) != len(labels):
            raise validation("Outcome labels must differ.", "outcomes")
        now = self.clock()
        if closes_at.tzinfo is None:
            raise validation("closesAt needs a time zone (use UTC: …Z).", "closesAt")
        if closes_at <= now:
            raise validation("closesAt must be in the future.", "closesAt")
        minimum = self.settings.min_market_liquidity_cents
        if not minimum <= liquidity_cents <= MAX_TRADE_CENTS:
            raise validation(
                f"Liquidity is at least {minimum / CENTS_PER_CREDIT:.2f}.", "liquidity"
            )
        if len(article_ids) > 20 or len(tag_slugs) > 20:
            raise validation("At most 20 articles and 20 tags.", "articleIds")
        article_ids = list(dict.fromkeys(article_ids))
        tag_slugs = list(dict.fromkeys(tag_slugs))
        found_articles = await models.Article.filter(id__in=article_ids).count()
        if found_articles != len(article_ids):
            raise not_found("One of the articles does not exist.", "articleIds")
        # A slug longer than the column names no tag (and Tortoise refuses to send it).
        tag_slug_length = getattr(models.Tag._meta.fields_map["slug"], "max_length", 120)
        storable = [slug for slug in tag_slugs if len(slug) <= tag_slug_length]
        tags = await models.Tag.filter(slug__in=storable) if storable else []
        if len(tags) != len(tag_slugs):
            raise not_found("One of the tags does not exist.", "tagSlugs")
        base_slug = slugify(question)

        async def attempt(suffix: str) -> models.Market:
            async with in_transaction() as conn:
                market = await models.Market.create(
                    slug=(base_slug + suffix)[:200],
                    question=question,
                    description=description,
                    resolution_criteria=criteria,
                    created_at=now,
                    created_by_id=user.id,
                    state=models.MarketState.OPEN,
                    closes_at=closes_at,
                    liquidity_cents=liquidity_cents,
                    using_db=conn,
                )
                await models.Outcome.bulk_create(
                    [
                        models.Outcome(market_id=market.id, position=i, label=label)
                        for i, label in enumerate(labels)
                    ],
                    using_db=conn,
                )
                await models.MarketArticle.bulk_create(
                    [models.MarketArticle(market_id=market.id, article_id=a) for a in article_ids],
                    using_db=conn,
                )
                await models.MarketTag.bulk_create(
                    [models.MarketTag(market_id=market.id, tag_id=t.id) for t in tags],
                    using_db=conn,
                )
                await ledger.fund_market(conn, market.id, liquidity_cents, now)
                await record_price(conn, market.id, [1 / len(labels)] * len(labels), now)
                return market

        for n in range(1, 50):
            try:
                market = await attempt("" if n == 1 else f"-{n}")
                return market, OddsEvent(market.id, 0, None)
            except IntegrityError:
                taken = (base_slug + ("" if n == 1 else f"-{n}"))[:200]
                if await models.Market.filter(slug=taken).exists():
                    continue
                raise
        raise validation("Too many markets ask this question.", "question")

    async def resolve(
        self, market_id: int, outcome_id: int
    ) -> tuple[models.Market, OddsEvent | None]:
        """Pay 1.00 a winning share; the maker's remainder returns to the issuer."""

        async def run() -> tuple[models.Market, OddsEvent | None]:
            now = self.clock()
            async with in_transaction() as conn:
                state = await load_state(conn, market_id, lock=True)
                if state is None:
                    raise not_found("There is no such market.", "marketId")
                winner = state.index(outcome_id)
                market = state.market
                if market.state == models.MarketState.RESOLVED:
                    if market.resolved_outcome_id == outcome_id:
                        return market, None
                    raise Refusal(RefusalCode.MARKET_NOT_OPEN, "This market is already resolved.")
                if market.state == models.MarketState.CANCELLED:
                    raise Refusal(RefusalCode.MARKET_NOT_OPEN, "This market was cancelled.")
                positions = await fetch_dicts(
                    "SELECT id, user_id, outcome_id, shares_units FROM positions "
                    "WHERE market_id = ? ORDER BY id",
                    (market_id,),
                    conn,
                )
                payouts: dict[int, int] = defaultdict(int)
                for p in positions:
                    value = (
                        p["shares_units"] // UNITS_PER_CENT if p["outcome_id"] == outcome_id else 0
                    )
                    payouts[p["user_id"]] += value
                    await execute(
                        "UPDATE positions SET settled_value_cents = ?, updated_at = ? WHERE id = ?",
                        (value, now, p["id"]),
                        conn,
                    )
                await self._settle(conn, market_id, payouts, "PAYOUT", now)
                probabilities = [0.0] * len(state.outcomes)
                probabilities[winner] = 1.0
                seq_rows = await fetch_dicts(
                    "UPDATE markets SET state = ?, resolved_outcome_id = ?, resolved_at = ?, "
                    "odds_seq = odds_seq + 1 WHERE id = ? RETURNING odds_seq",
                    (models.MarketState.RESOLVED.value, outcome_id, now, market_id),
                    conn,
                )
                await record_price(conn, market_id, probabilities, now)
                market = await models.Market.get(id=market_id, using_db=conn)
            return market, OddsEvent(market_id, int(seq_rows[0]["odds_seq"]), None)

        return await _with_retries(run)

    async def cancel(self, market_id: int) -> tuple[models.Market, OddsEvent | None]:
        """Refund each trader's net cost when positive; the rest returns to the issuer."""

        async def run() -> tuple[models.Market, OddsEvent | None]:
            now = self.clock()
            async with in_transaction() as conn:
                state = await load_state(conn, market_id, lock=True)
                if state is None:
                    raise not_found("There is no such market.", "marketId")
                market = state.market
                if market.state == models.MarketState.CANCELLED:
                    return market, None
                if market.state == models.MarketState.RESOLVED:
                    raise Refusal(RefusalCode.MARKET_NOT_OPEN, "This market is already resolved.")
                net_rows = await fetch_dicts(
                    "SELECT user_id, SUM(amount_cents) AS net FROM trades WHERE market_id = ? "
                    "GROUP BY user_id",
                    (market_id,),
                    conn,
                )
                refunds = {int(r["user_id"]): max(0, int(r["net"])) for r in net_rows}
                positions = await fetch_dicts(
                    "SELECT id, user_id, cost_basis_cents FROM positions WHERE market_id = ? "
                    "ORDER BY id",
                    (market_id,),
                    conn,
                )
                for position_id, value in _allocate(refunds, positions).items():
                    await execute(
                        "UPDATE positions SET settled_value_cents = ?, updated_at = ? WHERE id = ?",
                        (value, now, position_id),
                        conn,
                    )
                await self._settle(conn, market_id, refunds, "REFUND", now)
                seq_rows = await fetch_dicts(
                    "UPDATE markets SET state = ?, resolved_at = ?, odds_seq = odds_seq + 1 "
                    "WHERE id = ? RETURNING odds_seq",
                    (models.MarketState.CANCELLED.value, now, market_id),
                    conn,
                )
                market = await models.Market.get(id=market_id, using_db=conn)
            return market, OddsEvent(market_id, int(seq_rows[0]["odds_seq"]), None)

        return await _with_retries(run)

    async def _settle(
        self,
        conn: BaseDBAsyncClient,
        market_id: int,
        amounts: dict[int, int],
        kind: str,
        now: datetime,
    ) -> None:
        """Pay ``amounts`` (by user) from the maker, then sweep the maker's rest to the issuer."""
        maker = await ledger.market_account_id(conn, market_id)
        paid = {user_id: cents for user_id, cents in amounts.items() if cents > 0}
        if paid:
            wallets = await fetch_dicts(
                "SELECT id, user_id FROM ledger_accounts WHERE kind = 'USER' "
                f"AND user_id IN ({placeholders(len(paid))})",
                list(paid),
                conn,
            )
            entries = [ledger.Entry(maker, -sum(paid.values()))]
            entries += [ledger.Entry(int(w["id"]), paid[int(w["user_id"])]) for w in wallets]
            await ledger.post(conn, kind, entries, now, memo=f"market {market_id}")
        rest = await _balance(conn, maker)
        if rest != 0:
            issuer = await ledger.issuer_account_id(conn)
            await ledger.post(
                conn,
                "MAKER_SWEEP",
                [ledger.Entry(maker, -rest), ledger.Entry(issuer, rest)],
                now,
                memo=f"market {market_id}",
            )


async def _stored_key(
    conn: BaseDBAsyncClient | None, user_id: int, key: str
) -> models.IdempotencyKey | None:
    """The user's row for ``key``, live or expired (an expired one is deleted when reused)."""
    return await models.IdempotencyKey.filter(user_id=user_id, key=key).using_db(conn).first()


def _is_live(stored: models.IdempotencyKey, now: datetime) -> bool:
    """Kept 24 hours: exactly 24 hours old is expired."""
    return stored.created_at > now - IDEMPOTENCY_TTL


async def _replay_of(
    conn: BaseDBAsyncClient | None, stored: models.IdempotencyKey, fingerprint: str
) -> TradeResult:
    """The first trade and the balance right after it; IDEMPOTENCY_CONFLICT if the key was used
    for a different request. Position and market are as they are now."""
    if stored.fingerprint != fingerprint:
        raise Refusal(
            RefusalCode.IDEMPOTENCY_CONFLICT,
            "This idempotency key was used for a different request.",
            ["idempotencyKey"],
        )
    trade = await models.Trade.get(id=stored.trade_id, using_db=conn)
    position = await models.Position.get(
        user_id=stored.user_id, outcome_id=trade.outcome_id, using_db=conn
    )
    market = await models.Market.get(id=trade.market_id, using_db=conn)
    return TradeResult(trade, position, market, stored.balance_after_cents, replayed=True)


def _allocate(refunds: dict[int, int], positions: list[dict[str, Any]]) -> dict[int, int]:
    """Split each user's refund over their positions in proportion to cost basis."""
    by_user: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for p in positions:
        by_user[int(p["user_id"])].append(p)
    values: dict[int, int] = {}
    for user_id, items in by_user.items():
        refund = refunds.get(user_id, 0)
        total = sum(int(p["cost_basis_cents"]) for p in items)
        shares = [(refund * int(p["cost_basis_cents"]) // total) if total else 0 for p in items]
        shares[0] += refund - sum(shares)
        for p, value in zip(items, shares, strict=True):
            values[int(p["id"])] = value
    return values


async def _apply_to_position(
    conn: BaseDBAsyncClient,
    user_id: int,
    market_id: int,
    plan: Plan,
    held: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """Add a trade to the user's position (average cost; a sale removes basis pro rata)."""
    if held is None:
        assert plan.shares_units > 0
        rows = await fetch_dicts(
            "INSERT INTO positions (user_id, market_id, outcome_id, shares_units, "
            "cost_basis_cents, realized_cents, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?) "
            "RETURNING *",
            (user_id, market_id, plan.outcome_id, plan.shares_units, plan.amount_cents, now),
            conn,
        )
        return rows[0]
    shares, basis = int(held["shares_units"]), int(held["cost_basis_cents"])
    if plan.shares_units > 0:
        basis_change, realized_change = plan.amount_cents, 0
    else:
        sold = -plan.shares_units
        removed = basis if sold == shares else basis * sold // shares
        basis_change, realized_change = -removed, -plan.amount_cents - removed
    rows = await fetch_dicts(
        "UPDATE positions SET shares_units = shares_units + ?, "
        "cost_basis_cents = cost_basis_cents + ?, realized_cents = realized_cents + ?, "
        "updated_at = ? WHERE id = ? RETURNING *",
        (plan.shares_units, basis_change, realized_change, now, held["id"]),
        conn,
    )
    return rows[0]


async def _balance(conn: BaseDBAsyncClient, account_id: int) -> int:
    rows = await fetch_dicts(
        "SELECT balance_cents FROM ledger_accounts WHERE id = ?", (account_id,), conn
    )
    return int(rows[0]["balance_cents"])


async def record_price(
    conn: BaseDBAsyncClient, market_id: int, probabilities: list[float], at: datetime
) -> None:
    """Append a price point (the chart's data)."""
    await execute(
        "INSERT INTO price_points (market_id, at, at_epoch, probabilities) VALUES (?, ?, ?, ?)",
        (market_id, at, int(at.timestamp()), json.dumps(probabilities)),
        conn,
    )


def _check_amount(cents: int, field: str, allow_zero: bool = False) -> None:
    if cents < (0 if allow_zero else 1) or cents > MAX_TRADE_CENTS:
        raise validation(f"{field} must be a positive amount of credits.", field)


def _check_units(units: int, field: str, allow_zero: bool = False) -> None:
    if units < (0 if allow_zero else 1) or units > MAX_TRADE_UNITS:
        raise validation(f"{field} must be a positive number of shares.", field)


def slugify(text: str) -> str:
    """A URL name from a question: lowercase ASCII words joined by hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:180] or "market"
