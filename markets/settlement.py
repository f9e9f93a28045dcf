"""Settlement: resolving a market on its winner, or cancelling it with refunds.

Each is one transaction on the locked market row (market first, then wallets, as trades take
them), retried like a trade. The maker pays the winners (or the refunds) and its remainder is
swept back to the issuer, so a settled market's maker holds nothing. Settling a market again
the same way changes nothing; settling it another way is MARKET_NOT_OPEN.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

import metrics
from clock import Clock
from db import models
from db.sql import execute, fetch_dicts, placeholders
from markets import ledger
from markets.events import OddsChanged
from markets.positions import allocate_refunds
from markets.pricing import UNITS_PER_CENT
from markets.store import account_balance, load_state, record_price, with_retries
from refusals import Refusal, RefusalCode, not_found


async def resolve(
    market_id: int, outcome_id: int, clock: Clock
) -> tuple[models.Market, OddsChanged | None]:
    """Pay 1.00 a winning share; the maker's remainder returns to the issuer.

    Returns the market and the event to publish once committed (None: it was already resolved
    on this outcome, nothing changed).
    """

    async def run() -> tuple[models.Market, OddsChanged | None]:
        now = clock()
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
                value = p["shares_units"] // UNITS_PER_CENT if p["outcome_id"] == outcome_id else 0
                payouts[p["user_id"]] += value
                await execute(
                    "UPDATE positions SET settled_value_cents = ?, updated_at = ? WHERE id = ?",
                    (value, now, p["id"]),
                    conn,
                )
            await _pay_out(conn, market_id, payouts, "PAYOUT", now)
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
        return market, OddsChanged(market_id, int(seq_rows[0]["odds_seq"]), None)

    settled = await with_retries(run)
    if settled[1] is not None:  # committed, and not a repeat that changed nothing
        metrics.SETTLEMENTS.labels("resolved").inc()
    return settled


async def cancel(market_id: int, clock: Clock) -> tuple[models.Market, OddsChanged | None]:
    """Refund each trader's net cost when positive; the rest returns to the issuer.

    Returns the market and the event to publish once committed (None: it was already
    cancelled, nothing changed).
    """

    async def run() -> tuple[models.Market, OddsChanged | None]:
        now = clock()
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
            for position_id, value in allocate_refunds(refunds, positions).items():
                await execute(
                    "UPDATE positions SET settled_value_cents = ?, updated_at = ? WHERE id = ?",
                    (value, now, position_id),
                    conn,
                )
            await _pay_out(conn, market_id, refunds, "REFUND", now)
            seq_rows = await fetch_dicts(
                "UPDATE markets SET state = ?, resolved_at = ?, odds_seq = odds_seq + 1 "
                "WHERE id = ? RETURNING odds_seq",
                (models.MarketState.CANCELLED.value, now, market_id),
                conn,
            )
            market = await models.Market.get(id=market_id, using_db=conn)
        return market, OddsChanged(market_id, int(seq_rows[0]["odds_seq"]), None)

    settled = await with_retries(run)
    if settled[1] is not None:  # committed, and not a repeat that changed nothing
        metrics.SETTLEMENTS.labels("cancelled").inc()
    return settled


async def _pay_out(
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
    rest = await account_balance(conn, maker)
    if rest != 0:
        issuer = await ledger.issuer_account_id(conn)
        await ledger.post(
            conn,
            "MAKER_SWEEP",
            [ledger.Entry(maker, -rest), ledger.Entry(issuer, rest)],
            now,
            memo=f"market {market_id}",
        )
