"""The trading service: quotes, buys, sells, and the entry points of listing and settlement.

A trade is one transaction: re-read the market under a lock (``SELECT … FOR UPDATE`` on
PostgreSQL; on SQLite, Tortoise's single connection serialises transactions), plan with the
pure pricing (``plan_buy``/``plan_sell``, which ``quote`` calls too), move the money through
the ledger with conditional updates, write the trade, position, price point and idempotency
key, commit. Deadlocks and serialization failures are retried a bounded number of times.
The pure rules are in :mod:`markets.pricing`, positions in :mod:`markets.positions`,
resolution and cancellation in :mod:`markets.settlement`.

An idempotency key is claimed inside the trade's transaction. On PostgreSQL the user's wallet
row is locked right after the market row, so each trade of a user waits for the one before it
to commit; on SQLite whole transactions already run one at a time. Only then is the key looked
up, so a retry sent while its first request still runs waits for it and answers as its replay,
before anything is planned (planned again, it would be refused: the first trade spent the money
or the shares and moved the price).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

import metrics
from clock import Clock, now
from db import models, sqlite_unit
from db.housekeeping import delete_in_batches
from db.sql import execute, fetch_dicts, plain_rows
from db.sqlite_unit import Unit
from domain_events import Publisher
from markets import ledger, listing, settlement
from markets.events import OddsChanged, OddsState
from markets.positions import apply_fill, apply_fill_in_unit
from markets.pricing import (
    MarketState,
    Plan,
    check_amount,
    check_units,
    plan_buy,
    plan_sell,
)
from markets.store import (
    account_balance,
    for_update,
    load_state,
    market_of_outcome,
    record_price,
    with_retries,
)
from refusals import Refusal, RefusalCode, not_found, validation
from settings import Settings

IDEMPOTENCY_TTL = timedelta(hours=24)
# SQLite trades running on after their request was cancelled (kept referenced until they end).
_SHIELDED: set[asyncio.Future[TradeResult]] = set()


@dataclass(frozen=True)
class TradeResult:
    """A committed (or replayed) trade with the state it left behind."""

    trade: models.Trade
    position: models.Position
    market: models.Market
    balance_cents: int
    replayed: bool
    # The market's outcomes right after the trade, when the trade read them under its lock
    # (the SQLite unit): the payload needs no statement of its own for them.
    outcomes: list[models.Outcome] | None = None


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 100 or not key.isprintable():
        raise validation("An idempotency key is 1 to 100 printable characters.", "idempotencyKey")
    return key


class Trading:
    """Trading and settlement, bound to the settings, a publisher and a clock.

    Every change of a market's odds (a trade, a new market, a settlement) is published as an
    :class:`OddsChanged` once committed; a replay, a refusal or a repeated settlement publishes
    nothing.
    """

    def __init__(self, settings: Settings, *, publish: Publisher, clock: Clock = now) -> None:
        self.settings = settings
        self.publish = publish
        # The demo data trades through this service on a clock that walks through the past.
        self.clock = clock

    # -- quotes ----------------------------------------------------------------------------

    async def quote_buy(
        self, user: models.User | None, outcome_id: int, amount_cents: int
    ) -> tuple[MarketState, Plan]:
        """What buying would do now; the same planning as ``buy``, nothing written."""
        check_amount(amount_cents, "amount")
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
        check_units(shares_units, "shares")
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
    ) -> TradeResult:
        """Spend exactly ``amount_cents`` on an outcome."""
        check_amount(amount_cents, "amount")
        if min_shares_units is not None:
            check_units(min_shares_units, "minShares", allow_zero=True)
        key = _check_key(idempotency_key)
        # Only a keyed request is compared with its retries: no hashing for the others.
        fingerprint = (
            "" if key is None else _fingerprint("buy", outcome_id, amount_cents, min_shares_units)
        )
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
    ) -> TradeResult:
        """Sell shares of an outcome for its current price."""
        check_units(shares_units, "shares")
        if min_amount_cents is not None:
            check_amount(min_amount_cents, "minAmount", allow_zero=True)
        key = _check_key(idempotency_key)
        fingerprint = (
            "" if key is None else _fingerprint("sell", outcome_id, shares_units, min_amount_cents)
        )
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
    ) -> TradeResult:
        if sqlite_unit.available():
            return await self._trade_in_unit(user, outcome_id, key, fingerprint, planner)
        if key is not None:
            # A retry of a request that committed a while ago answers without taking any lock;
            # one that is still running is caught under the locks in _trade_once.
            replay = await self._replay(user.id, key, fingerprint)
            if replay is not None:
                return replay
        market_id = await market_of_outcome(outcome_id)
        try:
            result, changed = await with_retries(
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
            return replay
        # Committed: with_retries returns only once the transaction is.
        if changed is not None:  # a trade, not the replay of one
            metrics.TRADES.labels("buy" if result.trade.shares_units > 0 else "sell").inc()
        await self._publish(changed)
        return result

    async def _trade_in_unit(
        self,
        user: models.User,
        outcome_id: int,
        key: str | None,
        fingerprint: str,
        planner: Callable[[MarketState, datetime], Plan],
    ) -> TradeResult:
        """SQLite: the whole trade, replay check included, as one synchronous unit on the
        connection's thread (``db.sqlite_unit``): one thread hand-off instead of two per
        statement, and SQLite's writer is held only while the statements run. Transactions
        there run one at a time anyway, so the key is looked up once, under the write lock."""
        now = self.clock()

        async def commit_and_publish() -> TradeResult:
            result = await sqlite_unit.run(
                lambda unit: _trade_unit(unit, user.id, outcome_id, key, fingerprint, planner, now),
                self.settings.sqlite_group_commit_max,
            )
            if result.replayed:
                return result
            metrics.TRADES.labels("buy" if result.trade.shares_units > 0 else "sell").inc()
            # With the rows the unit left (all read under its lock): this process's
            # subscribers' updates need no statement of their own.
            state = None
            if result.outcomes is not None:
                state = OddsState(result.market, result.outcomes, result.trade)
            await self._publish(
                OddsChanged(result.market.id, result.market.odds_seq, result.trade.id, state)
            )
            return result

        # Once handed to its thread the unit commits whatever happens to this request (a
        # websocket closing cancels its operations): shielded, so a committed trade is still
        # published (subscribers, the response cache's versions) though nobody awaits it.
        task = asyncio.ensure_future(commit_and_publish())
        _SHIELDED.add(task)
        task.add_done_callback(_SHIELDED.discard)
        return await asyncio.shield(task)

    async def _trade_once(
        self,
        user: models.User,
        market_id: int,
        key: str | None,
        fingerprint: str,
        planner: Callable[[MarketState, datetime], Plan],
    ) -> tuple[TradeResult, OddsChanged | None]:
        """One attempt in one transaction: the result and the event to publish once committed
        (None for a replay)."""
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
                f"OR (kind = 'MARKET' AND market_id = ?){for_update(conn)}",
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
            position_row = await apply_fill(conn, user.id, market_id, plan, held, now)
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
            balance = await account_balance(conn, wallet)
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
            OddsChanged(market_id, seq, trade.id),
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
    ) -> models.Market:
        """A new market funded by the issuer with ``liquidity_cents`` (see markets.listing)."""
        market = await listing.create_market(
            self.settings,
            self.clock(),
            user,
            question,
            description,
            resolution_criteria,
            outcomes,
            closes_at,
            liquidity_cents,
            article_ids,
            tag_slugs,
        )
        await self._publish(OddsChanged(market.id, 0, None))
        return market

    async def resolve(self, market_id: int, outcome_id: int) -> models.Market:
        """Pay 1.00 a winning share; the maker's remainder returns to the issuer."""
        market, changed = await settlement.resolve(market_id, outcome_id, self.clock)
        await self._publish(changed)
        return market

    async def cancel(self, market_id: int) -> models.Market:
        """Refund each trader's net cost when positive; the rest returns to the issuer."""
        market, changed = await settlement.cancel(market_id, self.clock)
        await self._publish(changed)
        return market

    async def _publish(self, changed: OddsChanged | None) -> None:
        """Tell subscribers of a committed change; None is a call that changed nothing."""
        if changed is not None:
            await self.publish(changed)


@cache
def _columns(model: type[Model]) -> tuple[str, ...]:
    # Read once Tortoise is initialised (its relations' columns are only known then).
    return tuple(model._meta.fields_db_projection.values())


@cache
def _state_sql() -> str:
    """The one read of a trade unit (built once from the models' columns): per outcome of the
    traded outcome's market, in order, the outcome (``o_``), the market (``m_``), the user's
    position in it if any (``p_``), the market maker's and the user's ledger accounts."""
    selected = ", ".join(
        f"{alias}.{column} AS {alias}_{column}"
        for alias, model in (("o", models.Outcome), ("m", models.Market), ("p", models.Position))
        for column in _columns(model)
    )
    return (
        f"SELECT {selected}, "
        "(SELECT id FROM ledger_accounts WHERE kind = 'MARKET' AND market_id = m.id) AS _maker, "
        "(SELECT id FROM ledger_accounts WHERE kind = 'USER' AND user_id = ?) AS _wallet "
        "FROM outcomes o JOIN markets m ON m.id = o.market_id "
        "LEFT JOIN positions p ON p.outcome_id = o.id AND p.user_id = ? "
        "WHERE o.market_id = (SELECT market_id FROM outcomes WHERE id = ?) ORDER BY o.position"
    )


def _position_of(row: dict[str, Any]) -> dict[str, Any] | None:
    """The ``p_`` columns of a state row as a position row, None where the user holds none."""
    if row["p_id"] is None:
        return None
    return {column: row["p_" + column] for column in _columns(models.Position)}


def _trade_unit(
    unit: Unit,
    user_id: int,
    outcome_id: int,
    key: str | None,
    fingerprint: str,
    planner: Callable[[MarketState, datetime], Plan],
    now: datetime,
) -> TradeResult:
    """One trade on SQLite, on the connection's thread inside ``BEGIN IMMEDIATE``: the same
    reads, checks and writes as ``Trading._trade_once`` (a refusal raises, and the unit rolls
    back), with the reads in one statement (the market, its outcomes, the user's positions in
    it and both ledger accounts) and the wallet's balance returned by its conditional update.
    The rows come back as plain rows (``db.sql.plain_rows``), not model instances."""
    state_rows = unit.rows(_state_sql(), (user_id, user_id, outcome_id))
    if not state_rows:
        raise not_found("There is no such outcome.", "outcomeId")
    first = state_rows[0]
    market_id = int(first["m_id"])
    wallet = None if first["_wallet"] is None else int(first["_wallet"])
    maker = int(first["_maker"])
    stored = None
    if key is not None:
        stored = unit.one(
            "SELECT * FROM idempotency_keys WHERE user_id = ? AND key = ?", (user_id, key)
        )
        if stored is not None:
            stored_key = plain_rows(models.IdempotencyKey)(stored)
            if _is_live(stored_key, now):
                return _replay_in_unit(unit, stored_key, fingerprint, state_rows)
    outcome_row = plain_rows(models.Outcome, "o_")
    outcomes = [outcome_row(r) for r in state_rows]
    market = plain_rows(models.Market, "m_")(first)
    plan = planner(MarketState(market, outcomes), now)
    if wallet is None:
        raise Refusal(RefusalCode.INSUFFICIENT_FUNDS, "You have no wallet.", ["amount"])
    mine = [p for p in (_position_of(r) for r in state_rows) if p is not None]
    held = next((p for p in mine if p["outcome_id"] == plan.outcome_id), None)
    if plan.shares_units < 0 and (held is None or held["shares_units"] < -plan.shares_units):
        raise Refusal(
            RefusalCode.INSUFFICIENT_SHARES, "You hold fewer shares than that.", ["shares"]
        )
    try:
        _, balances = ledger.post_in_unit(
            unit,
            "TRADE",
            [ledger.Entry(wallet, -plan.amount_cents), ledger.Entry(maker, plan.amount_cents)],
            now,
            memo=f"market {market_id}",
        )
    except ledger.InsufficientFunds as exc:
        raise Refusal(
            RefusalCode.INSUFFICIENT_FUNDS, "Your wallet holds less than that.", ["amount"]
        ) from exc
    unit.run(
        "UPDATE outcomes SET shares_units = shares_units + ? WHERE id = ?",
        (plan.shares_units, plan.outcome_id),
    )
    position_row = apply_fill_in_unit(unit, user_id, market_id, plan, held, now)
    market_after = unit.one(
        "UPDATE markets SET volume_cents = volume_cents + ?, odds_seq = odds_seq + 1, "
        "trader_count = trader_count + ? WHERE id = ? RETURNING *",
        (abs(plan.amount_cents), 0 if mine else 1, market_id),
    )
    assert market_after is not None
    trade_row = unit.one(
        "INSERT INTO trades (market_id, outcome_id, user_id, shares_units, amount_cents, "
        "probability_before, probability_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING *",
        (
            market_id,
            plan.outcome_id,
            user_id,
            plan.shares_units,
            plan.amount_cents,
            plan.probability_before,
            plan.probability_after,
            now,
        ),
    )
    assert trade_row is not None
    sqlite_unit.drive(record_price(unit, market_id, plan.probabilities_after, now))
    # The wallet is moved exactly once by a trade (amount_cents is never 0), so the balance its
    # update returned is the balance after the trade.
    balance = balances[wallet]
    if key is not None:
        if stored is not None:
            # It has expired (a live one answered above): the key is free again.
            unit.run("DELETE FROM idempotency_keys WHERE id = ?", (stored["id"],))
        unit.run(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, trade_id, "
            "balance_after_cents, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, key, fingerprint, trade_row["id"], balance, now),
        )
    # The outcomes as the unit leaves them: only the traded one's shares moved.
    outcomes_after = [
        outcome_row({**row, "o_shares_units": int(row["o_shares_units"]) + plan.shares_units})
        if row["o_id"] == plan.outcome_id
        else outcomes[i]
        for i, row in enumerate(state_rows)
    ]
    return TradeResult(
        plain_rows(models.Trade)(trade_row),
        plain_rows(models.Position)(position_row),
        plain_rows(models.Market)(market_after),
        balance,
        replayed=False,
        outcomes=outcomes_after,
    )


def _replay_in_unit(
    unit: Unit, stored: Any, fingerprint: str, state_rows: list[dict[str, Any]]
) -> TradeResult:
    """``_replay_of`` inside a trade unit (nothing is written; the unit commits nothing).
    ``state_rows`` is the unit's read: the replayed trade's position and market come from it
    when the retry names the same market, else from their own statements."""
    if stored.fingerprint != fingerprint:
        raise Refusal(
            RefusalCode.IDEMPOTENCY_CONFLICT,
            "This idempotency key was used for a different request.",
            ["idempotencyKey"],
        )
    trade = unit.one("SELECT * FROM trades WHERE id = ?", (stored.trade_id,))
    assert trade is not None
    here = next((r for r in state_rows if r["o_id"] == trade["outcome_id"]), None)
    if here is not None:
        # The same market, read under the same lock: its row, and the position (a trade
        # always leaves one, as the awaited path's Position.get requires).
        position = _position_of(here)
        market = plain_rows(models.Market, "m_")(here)
    else:
        position = unit.one(
            "SELECT * FROM positions WHERE user_id = ? AND outcome_id = ?",
            (stored.user_id, trade["outcome_id"]),
        )
        market_row = unit.one("SELECT * FROM markets WHERE id = ?", (trade["market_id"],))
        assert market_row is not None
        market = plain_rows(models.Market)(market_row)
    assert position is not None
    return TradeResult(
        plain_rows(models.Trade)(trade),
        plain_rows(models.Position)(position),
        market,
        stored.balance_after_cents,
        replayed=True,
    )


async def _stored_key(
    conn: BaseDBAsyncClient | None, user_id: int, key: str
) -> models.IdempotencyKey | None:
    """The user's row for ``key``, live or expired (an expired one is deleted when reused)."""
    return await models.IdempotencyKey.filter(user_id=user_id, key=key).using_db(conn).first()


def _is_live(stored: models.IdempotencyKey, now: datetime) -> bool:
    """Kept 24 hours: exactly 24 hours old is expired."""
    return stored.created_at > now - IDEMPOTENCY_TTL


async def purge_idempotency_keys(now: datetime, *, grace: timedelta, batch_rows: int) -> int:
    """Delete the idempotency keys that expired ``grace`` or longer before ``now``
    (housekeeping's ``purge_idempotency_keys`` job); the rows deleted, at most ``batch_rows``
    per statement.

    A key must outlive :data:`IDEMPOTENCY_TTL`: while it is live a retry answers as the replay
    of its first trade, and a retry that found no key would trade again. After it, the key is
    free anyway (``_trade_once`` deletes an expired one it finds), so purging changes no
    answer. The grace covers a worker whose clock runs behind the purging worker's: it still
    honours keys the purger's clock calls expired.
    """
    cutoff = now - IDEMPOTENCY_TTL - grace
    return await delete_in_batches("idempotency_keys", "created_at <= ?", (cutoff,), batch_rows)


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
