"""Positions: applying a trade's fill to a holding, and splitting a refund over holdings.

A position keeps its cost at average cost: a buy adds what it paid, a sale removes basis pro
rata to the shares sold and books the difference to the proceeds as realised profit.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from db.sql import fetch_dicts
from db.sqlite_unit import Unit
from markets.pricing import Plan

_OPEN = (
    "INSERT INTO positions (user_id, market_id, outcome_id, shares_units, "
    "cost_basis_cents, realized_cents, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?) "
    "RETURNING *"
)
# Relative updates, as for every balance: nothing read earlier is written back.
_FILL = (
    "UPDATE positions SET shares_units = shares_units + ?, "
    "cost_basis_cents = cost_basis_cents + ?, realized_cents = realized_cents + ?, "
    "updated_at = ? WHERE id = ? RETURNING *"
)


def _fill(
    user_id: int, market_id: int, plan: Plan, held: dict[str, Any] | None, now: datetime
) -> tuple[str, tuple[Any, ...]]:
    """The one statement (and its parameters) that applies ``plan`` to the position."""
    if held is None:
        assert plan.shares_units > 0
        return _OPEN, (
            user_id,
            market_id,
            plan.outcome_id,
            plan.shares_units,
            plan.amount_cents,
            now,
        )
    shares, basis = int(held["shares_units"]), int(held["cost_basis_cents"])
    if plan.shares_units > 0:
        basis_change, realized_change = plan.amount_cents, 0
    else:
        sold = -plan.shares_units
        removed = basis if sold == shares else basis * sold // shares
        basis_change, realized_change = -removed, -plan.amount_cents - removed
    return _FILL, (plan.shares_units, basis_change, realized_change, now, held["id"])


async def apply_fill(
    conn: BaseDBAsyncClient,
    user_id: int,
    market_id: int,
    plan: Plan,
    held: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """Add a trade to the user's position (average cost; a sale removes basis pro rata).

    ``held`` is the position row as read in the trade's transaction, None if there is none (a
    sale always has one: the trade refused it otherwise). Returns the row as it is now.
    """
    sql, params = _fill(user_id, market_id, plan, held, now)
    rows = await fetch_dicts(sql, params, conn)
    return rows[0]


def apply_fill_in_unit(
    unit: Unit,
    user_id: int,
    market_id: int,
    plan: Plan,
    held: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """:func:`apply_fill` inside a synchronous SQLite unit (``db.sqlite_unit``)."""
    row = unit.one(*_fill(user_id, market_id, plan, held, now))
    assert row is not None
    return row


def allocate_refunds(refunds: dict[int, int], positions: list[dict[str, Any]]) -> dict[int, int]:
    """Split each user's refund over their positions in proportion to cost basis.

    ``positions`` are rows with ``id``, ``user_id`` and ``cost_basis_cents``; the answer maps
    each position's id to its share, in cents. A user's shares add up to their refund exactly:
    the rounding remainder goes to their first position.
    """
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
