"""The business rules that live once in the domain: roles, the clock, pricing."""

from __future__ import annotations

import ast
import importlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import clock
from accounts.roles import at_least, rank
from db import models
from db.models import Role
from markets import lmsr
from markets.pricing import (
    MarketState,
    MarketStatus,
    is_open,
    market_status,
    position_value_cents,
    probabilities,
)


def test_the_clock_is_aware_utc() -> None:
    assert clock.now().tzinfo is UTC


@pytest.mark.parametrize("needed", list(Role))
def test_a_role_is_at_least_itself_and_everything_below(needed: Role) -> None:
    for role in Role:
        assert at_least(role, needed) == (rank(role) >= rank(needed))
    # Stored roles come back as plain strings on some paths.
    assert at_least(needed.value, needed)


def test_roles_rank_reader_author_moderator_admin() -> None:
    order = [Role.READER, Role.AUTHOR, Role.MODERATOR, Role.ADMIN]
    assert sorted(Role, key=rank) == order
    assert at_least(Role.ADMIN, Role.MODERATOR) and not at_least(Role.AUTHOR, Role.MODERATOR)


# -- pricing: the pure market rules --------------------------------------------------------------

CLOSES = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _market(**fields: object) -> models.Market:
    values: dict[str, object] = {
        "id": 1,
        "state": models.MarketState.OPEN,
        "closes_at": CLOSES,
        "liquidity_cents": 10_000,
        "resolved_outcome_id": None,
    }
    values.update(fields)
    return models.Market(**values)


def _outcomes(*shares_units: int) -> list[models.Outcome]:
    return [
        models.Outcome(id=10 + i, market_id=1, position=i, label=f"o{i}", shares_units=units)
        for i, units in enumerate(shares_units)
    ]


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        ("OPEN", CLOSES - timedelta(microseconds=1), MarketStatus.OPEN),
        ("OPEN", CLOSES, MarketStatus.CLOSED),  # closing is exclusive
        ("OPEN", CLOSES + timedelta(days=1), MarketStatus.CLOSED),
        ("RESOLVED", CLOSES - timedelta(days=1), MarketStatus.RESOLVED),
        ("CANCELLED", CLOSES + timedelta(days=1), MarketStatus.CANCELLED),
    ],
)
def test_open_past_closes_at_reads_closed(
    state: str, now: datetime, expected: MarketStatus
) -> None:
    assert market_status(state, CLOSES, now) is expected
    assert market_status(models.MarketState(state), CLOSES, now) is expected
    assert is_open(state, CLOSES, now) == (expected is MarketStatus.OPEN)
    market = MarketState(_market(state=models.MarketState(state)), _outcomes(0, 0))
    assert market.status(now) is expected
    assert market.is_open(now) == (expected is MarketStatus.OPEN)


def test_probabilities_are_lmsr_prices_until_resolved() -> None:
    outcomes = _outcomes(0, 50_000, 0)
    b = lmsr.liquidity_parameter(100.0, 3)
    assert probabilities(_market(), outcomes) == lmsr.prices([0.0, 5.0, 0.0], b)
    assert MarketState(_market(), outcomes).probabilities() == probabilities(_market(), outcomes)
    resolved = _market(state=models.MarketState.RESOLVED, resolved_outcome_id=12)
    assert probabilities(resolved, outcomes) == [0.0, 0.0, 1.0]
    # A row with fewer than two outcomes can't be priced; it reads 1 rather than failing.
    assert probabilities(_market(), _outcomes(7)) == [1.0]


def test_a_position_is_worth_shares_times_probability_rounded_down_until_settled() -> None:
    assert position_value_cents(12_345, None, 0.5) == 61  # 1.2345 shares × 0.5 = 0.61725
    assert position_value_cents(10_000, None, 1.0) == 100
    assert position_value_cents(99, None, 1.0) == 0
    assert position_value_cents(12_345, 0, 0.5) == 0  # settled: what it paid
    assert position_value_cents(12_345, 700, 0.0) == 700


def _project_imports(module: str) -> set[str]:
    """Project modules that ``module`` imports when it runs (not those for type hints only)."""
    tree = ast.parse(Path(importlib.import_module(module).__file__ or "").read_text())
    found: set[str] = set()
    for node in tree.body:  # module level only: `if TYPE_CHECKING:` blocks are skipped
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from markets import lmsr` imports markets.lmsr; `from refusals import X`, refusals.
            is_package = hasattr(importlib.import_module(node.module), "__path__")
            names = [f"{node.module}.{a.name}" for a in node.names] if is_package else []
            found.update(names or [node.module])
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    project = {p.stem for p in Path(__file__).resolve().parents[2].iterdir()} - {"tests"}
    return {name for name in found if name.split(".")[0] in project}


def test_pricing_is_pure() -> None:
    assert _project_imports("markets.lmsr") == set()
    assert _project_imports("markets.pricing") == {"markets.lmsr", "refusals"}
    assert _project_imports("clock") == set()
    assert _project_imports("refusals") == set()
