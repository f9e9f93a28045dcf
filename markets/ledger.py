"""The double-entry ledger: every movement of credits is a balanced set of entries.

Accounts are users' wallets, each market's maker, and the issuer (created by a migration; its
balance is minus everything it has issued). A movement inserts one transaction row and its
entries and adjusts the balances with conditional updates in the caller's database transaction:
a user's wallet never goes below zero, and a balance is never read, changed and written back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from db.sql import execute, fetch_dicts, placeholders
from db.sqlite_unit import Unit

SIGNUP_GRANT = "SIGNUP_GRANT"


class InsufficientFunds(Exception):
    """A user's wallet holds less than the movement takes from it."""


class LedgerImbalance(Exception):
    """Entries that don't sum to zero: a programming error, never a user's."""


@dataclass(frozen=True)
class Entry:
    """``amount_cents`` into (positive) or out of (negative) ``account_id``."""

    account_id: int
    amount_cents: int


async def issuer_account_id(conn: BaseDBAsyncClient) -> int:
    """The issuer's account (migration 0002 creates it)."""
    rows = await fetch_dicts(
        "SELECT id FROM ledger_accounts WHERE kind = 'ISSUER' ORDER BY id LIMIT 1", (), conn
    )
    return int(rows[0]["id"])


async def open_wallet(conn: BaseDBAsyncClient, user_id: int) -> int:
    """Create the user's wallet (empty); returns its account id."""
    rows = await fetch_dicts(
        "INSERT INTO ledger_accounts (kind, user_id, balance_cents) VALUES ('USER', ?, 0) "
        "RETURNING id",
        (user_id,),
        conn,
    )
    return int(rows[0]["id"])


async def grant_starting_credits(
    conn: BaseDBAsyncClient, user_id: int, cents: int, at: datetime
) -> int:
    """Open the user's wallet funded by the issuer with ``cents``; returns the wallet's id."""
    wallet = await open_wallet(conn, user_id)
    issuer = await issuer_account_id(conn)
    await post(conn, SIGNUP_GRANT, [Entry(issuer, -cents), Entry(wallet, cents)], at)
    return wallet


async def fund_market(
    conn: BaseDBAsyncClient, market_id: int, liquidity_cents: int, at: datetime
) -> int:
    """Open the market maker's account, funded by the issuer; returns its id."""
    rows = await fetch_dicts(
        "INSERT INTO ledger_accounts (kind, market_id, balance_cents) VALUES ('MARKET', ?, 0) "
        "RETURNING id",
        (market_id,),
        conn,
    )
    maker = int(rows[0]["id"])
    issuer = await issuer_account_id(conn)
    await post(
        conn,
        "MARKET_FUNDING",
        [Entry(issuer, -liquidity_cents), Entry(maker, liquidity_cents)],
        at,
        memo=f"market {market_id}",
    )
    return maker


async def market_account_id(conn: BaseDBAsyncClient, market_id: int) -> int:
    """The market maker's account id."""
    rows = await fetch_dicts(
        "SELECT id FROM ledger_accounts WHERE kind = 'MARKET' AND market_id = ?",
        (market_id,),
        conn,
    )
    return int(rows[0]["id"])


async def post(
    conn: BaseDBAsyncClient,
    kind: str,
    entries: Sequence[Entry],
    at: datetime,
    memo: str = "",
) -> int:
    """Record one balanced movement inside the caller's transaction; returns its id.

    Raises InsufficientFunds (the caller's transaction must then roll back) when a user's
    wallet would go negative.
    """
    for entry in _ordered(kind, entries):
        changed = await execute(
            _MOVE, (entry.amount_cents, entry.account_id, entry.amount_cents), conn
        )
        if changed != 1:
            raise InsufficientFunds(f"account {entry.account_id} cannot pay {-entry.amount_cents}")
    rows = await fetch_dicts(_TRANSACTION, (kind, at, memo), conn)
    transaction_id = int(rows[0]["id"])
    entry_sql, params = _entries(transaction_id, entries)
    if entry_sql:
        await execute(entry_sql, params, conn)
    return transaction_id


# A conditional update: a user's wallet never goes below zero (the caller's refusal).
_MOVE = (
    "UPDATE ledger_accounts SET balance_cents = balance_cents + ? "
    "WHERE id = ? AND (kind <> 'USER' OR balance_cents + ? >= 0)"
)
_TRANSACTION = (
    "INSERT INTO ledger_transactions (kind, created_at, memo) VALUES (?, ?, ?) RETURNING id"
)


def _ordered(kind: str, entries: Sequence[Entry]) -> list[Entry]:
    """The non-zero entries, debits first (so a refusal happens before anything else is
    written); LedgerImbalance unless they sum to zero."""
    if sum(e.amount_cents for e in entries) != 0:
        raise LedgerImbalance(f"{kind}: entries sum to {sum(e.amount_cents for e in entries)}")
    ordered = sorted(entries, key=lambda e: (e.amount_cents >= 0, e.account_id))
    return [e for e in ordered if e.amount_cents != 0]


def _entries(transaction_id: int, entries: Sequence[Entry]) -> tuple[str, list[int]]:
    """The one INSERT of a movement's non-zero entries ("" if none) and its parameters."""
    nonzero = [e for e in entries if e.amount_cents != 0]
    if not nonzero:
        return "", []
    values = ", ".join("(?, ?, ?)" for _ in nonzero)
    params: list[int] = []
    for entry in nonzero:
        params.extend((transaction_id, entry.account_id, entry.amount_cents))
    return (
        f"INSERT INTO ledger_entries (transaction_id, account_id, amount_cents) VALUES {values}",
        params,
    )


def post_in_unit(
    unit: Unit, kind: str, entries: Sequence[Entry], at: datetime, memo: str = ""
) -> tuple[int, dict[int, int]]:
    """:func:`post` inside a synchronous SQLite unit (``db.sqlite_unit``), the same
    statements; returns the movement's id and each moved account's balance right after it
    (read by the conditional update itself: ``RETURNING``)."""
    balances: dict[int, int] = {}
    for entry in _ordered(kind, entries):
        row = unit.one(
            _MOVE + " RETURNING balance_cents",
            (entry.amount_cents, entry.account_id, entry.amount_cents),
        )
        if row is None:
            raise InsufficientFunds(f"account {entry.account_id} cannot pay {-entry.amount_cents}")
        balances[entry.account_id] = int(row["balance_cents"])
    created = unit.one(_TRANSACTION, (kind, at, memo))
    assert created is not None
    transaction_id = int(created["id"])
    entry_sql, params = _entries(transaction_id, entries)
    if entry_sql:
        unit.run(entry_sql, params)
    return transaction_id, balances


async def balances_of_users(user_ids: Sequence[int]) -> dict[int, int]:
    """Wallet balances in cents by user id (users without a wallet are absent)."""
    if not user_ids:
        return {}
    rows = await fetch_dicts(
        "SELECT user_id, balance_cents FROM ledger_accounts WHERE kind = 'USER' "
        f"AND user_id IN ({placeholders(len(user_ids))})",
        list(user_ids),
    )
    return {int(r["user_id"]): int(r["balance_cents"]) for r in rows}
