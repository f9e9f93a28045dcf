"""The market's rows as the trading and settlement transactions read and write them.

Loading a market under its lock, the price history, balances, and the bounded retry of a
transaction that lost a deadlock or a serialization check (PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import OperationalError, TransactionManagementError

from db import models
from db.sql import execute, fetch_dicts, is_postgres
from db.sqlite_unit import Unit
from logs import get_logger
from markets.pricing import MarketState
from refusals import not_found

# The trades' logger: operators (and the benchmarks) read the retries there.
logger = get_logger("agora.trading")

RETRIES = 5

T = TypeVar("T")


def _retryable(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    return bool(names & {"DeadlockDetectedError", "SerializationError", "LockNotAvailableError"})


async def with_retries(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` (one whole transaction), again after a deadlock or serialization failure.

    At most :data:`RETRIES` times; any other error, and the last one, propagate.
    """
    for attempt in range(RETRIES):
        try:
            return await work()
        except (OperationalError, TransactionManagementError) as exc:
            if not _retryable(exc) or attempt == RETRIES - 1:
                raise
            logger.info("retrying a trade after %s (attempt %d)", type(exc).__name__, attempt + 1)
    raise AssertionError("unreachable")


def for_update(conn: BaseDBAsyncClient | None) -> str:
    """Row locks on PostgreSQL; SQLite has none and needs none (Tortoise runs its transactions
    one at a time on its single connection)."""
    return " FOR UPDATE" if is_postgres(conn) else ""


async def load_state(
    conn: BaseDBAsyncClient | None, market_id: int, lock: bool = False
) -> MarketState | None:
    """The market and its outcomes; with ``lock``, the market row stays locked (PostgreSQL)."""
    suffix = for_update(conn) if lock else ""
    rows = await fetch_dicts(f"SELECT * FROM markets WHERE id = ?{suffix}", (market_id,), conn)
    if not rows:
        return None
    market = models.Market._init_from_db(**rows[0])
    outcome_rows = await fetch_dicts(
        "SELECT * FROM outcomes WHERE market_id = ? ORDER BY position", (market_id,), conn
    )
    return MarketState(market, [models.Outcome._init_from_db(**r) for r in outcome_rows])


async def market_of_outcome(outcome_id: int) -> int:
    """The market an outcome belongs to; NOT_FOUND if none."""
    rows = await fetch_dicts("SELECT market_id FROM outcomes WHERE id = ?", (outcome_id,))
    if not rows:
        raise not_found("There is no such outcome.", "outcomeId")
    return int(rows[0]["market_id"])


async def account_balance(conn: BaseDBAsyncClient, account_id: int) -> int:
    """A ledger account's balance as this transaction sees it."""
    rows = await fetch_dicts(
        "SELECT balance_cents FROM ledger_accounts WHERE id = ?", (account_id,), conn
    )
    return int(rows[0]["balance_cents"])


async def record_price(
    conn: BaseDBAsyncClient | Unit, market_id: int, probabilities: list[float], at: datetime
) -> None:
    """Append a price point (the chart's data). In a synchronous SQLite unit it never waits
    (``db.sqlite_unit.drive`` runs it there)."""
    sql = "INSERT INTO price_points (market_id, at, at_epoch, probabilities) VALUES (?, ?, ?, ?)"
    params = (market_id, at, int(at.timestamp()), json.dumps(probabilities))
    if isinstance(conn, Unit):
        conn.run(sql, params)
        return
    await execute(sql, params, conn)
