"""The SQLite trade as one synchronous unit (db.sqlite_unit, markets.trading._trade_unit).

It must do exactly what the asynchronous path (still PostgreSQL's) does: the same trades,
positions, balances and refusals, a refusal changing nothing, keys replayed, and concurrent
trades all accounted for. Its statements count into the request like Tortoise's own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from tortoise import Tortoise, connections

import markets.trading as trading_module
from accounts.ratelimit import MemoryRateLimiter
from accounts.service import Accounts
from db import instrument, models, sqlite_unit
from db.config import tortoise_config
from domain_events import Event
from markets import ledger
from markets.audit import audit
from markets.trading import Trading
from refusals import Refusal, RefusalCode
from settings import Settings
from tests.conftest import FakeClock, forget_compiled_statements

ROOT = Path(__file__).resolve().parents[2]
_cheap_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
TABLES = (
    "trades",
    "positions",
    "ledger_accounts",
    "ledger_transactions",
    "ledger_entries",
    "outcomes",
    "markets",
    "price_points",
    "idempotency_keys",
)


@pytest.fixture
async def db(fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Settings]:
    monkeypatch.setattr("accounts.service.hash_password", _cheap_hasher.hash)
    forget_compiled_statements()
    await Tortoise.init(config=tortoise_config(fresh_settings))
    instrument.install_for(connections.all())
    try:
        yield fresh_settings
    finally:
        await Tortoise.close_connections()


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def trading(db: Settings, events: list[Event]) -> Trading:
    async def record(event: Event) -> None:
        events.append(event)

    return Trading(db, publish=record)


async def _users(settings: Settings, *names: str) -> list[models.User]:
    accounts = Accounts(settings, MemoryRateLimiter(clock=FakeClock()), publish=_nothing)
    return [
        (await accounts.sign_up(name, "a-good-password", name.title(), "10.0.0.1")).user
        for name in names
    ]


async def _nothing(event: Event) -> None:
    return None


async def _market(trading: Trading, issuer: models.User) -> list[int]:
    market = await trading.create_market(
        issuer,
        "Will the unit trade exactly as the awaited path does?",
        "",
        "The test says so.",
        ["Yes", "No", "Maybe"],
        datetime.now(UTC) + timedelta(days=30),
        10_000,
        [],
        [],
    )
    outcomes = await models.Outcome.filter(market_id=market.id).order_by("position")
    return [o.id for o in outcomes]


# The synchronous unit is SQLite's (PostgreSQL keeps its row locks): these tests run on SQLite
# only, by parametrizing the backend rather than skipping (a skip fails CI's required services).
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def _snapshot(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    path = settings.database_url.removeprefix("sqlite://")
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}


def _shape(result: trading_module.TradeResult) -> tuple[Any, ...]:
    t, p, m = result.trade, result.position, result.market
    return (
        t.shares_units,
        t.amount_cents,
        t.probability_before,
        t.probability_after,
        p.shares_units,
        p.cost_basis_cents,
        p.realized_cents,
        m.volume_cents,
        m.trader_count,
        m.odds_seq,
        result.balance_cents,
        result.replayed,
    )


async def _script(
    trading: Trading, user: models.User, outcomes: list[int], tag: str
) -> list[tuple[Any, ...]]:
    """Buys, a buy of another outcome, a partial and a whole sale, a keyed buy and its replay."""
    done = [
        await trading.buy(user, outcomes[0], 1_234),
        await trading.buy(user, outcomes[0], 777, min_shares_units=1),
        await trading.buy(user, outcomes[1], 2_000),
    ]
    held = done[1].position.shares_units
    done.append(await trading.sell(user, outcomes[0], held // 3))
    done.append(await trading.sell(user, outcomes[0], held - held // 3, min_amount_cents=0))
    done.append(await trading.buy(user, outcomes[2], 500, idempotency_key=f"k-{tag}"))
    done.append(await trading.buy(user, outcomes[2], 500, idempotency_key=f"k-{tag}"))
    return [_shape(r) for r in done]


@sqlite_only
async def test_the_unit_trades_exactly_as_the_awaited_path(
    db: Settings, trading: Trading, events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer, ann, bob = await _users(db, "issuer", "ann", "bob")
    first, second = await _market(trading, issuer), await _market(trading, issuer)
    events.clear()
    assert sqlite_unit.available()
    by_unit = await _script(trading, ann, first, "ann")
    unit_events = [type(e).__name__ for e in events]
    events.clear()
    monkeypatch.setattr(sqlite_unit, "available", lambda: False)
    awaited = await _script(trading, bob, second, "bob")
    assert by_unit == awaited
    assert unit_events == [type(e).__name__ for e in events] == ["OddsChanged"] * 6
    report = await audit()
    assert report.problems == []


@sqlite_only
async def test_a_unit_trade_counts_its_statements(db: Settings, trading: Trading) -> None:
    issuer, ann = await _users(db, "issuer", "ann")
    outcomes = await _market(trading, issuer)
    counts = []
    for call in (
        lambda: trading.buy(ann, outcomes[0], 100),
        lambda: trading.buy(ann, outcomes[0], 100),
        lambda: trading.buy(ann, outcomes[1], 100, idempotency_key="once"),
        lambda: trading.buy(ann, outcomes[1], 100, idempotency_key="once"),
    ):
        with instrument.counting() as counted:
            await call()
        counts.append(counted.count)
    # 10 a trade (one read: market, outcomes, positions, accounts); a key adds its look-up and
    # its row; a replay on the same market reads 3 (the state, the key, the trade), writes nothing.
    assert counts == [10, 10, 12, 3]


@sqlite_only
async def test_refused_unit_trades_change_nothing(db: Settings, trading: Trading) -> None:
    issuer, ann = await _users(db, "issuer", "ann")
    outcomes = await _market(trading, issuer)
    await trading.buy(ann, outcomes[0], 1_000, idempotency_key="used")
    before = _snapshot(db)
    refusals = []
    for call in (
        lambda: trading.buy(ann, outcomes[0], 10**9),
        lambda: trading.sell(ann, outcomes[1], 10_000),
        lambda: trading.buy(ann, outcomes[0], 10_000, min_shares_units=10**12),
        lambda: trading.buy(ann, outcomes[0], 999, idempotency_key="used"),
        lambda: trading.buy(ann, 10**9, 100),
    ):
        with pytest.raises(Refusal) as refused:
            await call()
        refusals.append(refused.value.code)
    assert refusals == [
        RefusalCode.INSUFFICIENT_FUNDS,
        RefusalCode.INSUFFICIENT_SHARES,
        RefusalCode.SLIPPAGE_EXCEEDED,
        RefusalCode.IDEMPOTENCY_CONFLICT,
        RefusalCode.NOT_FOUND,
    ]
    assert _snapshot(db) == before


@sqlite_only
async def test_a_statement_failing_inside_the_unit_rolls_it_back(
    db: Settings, trading: Trading, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer, ann = await _users(db, "issuer", "ann")
    outcomes = await _market(trading, issuer)
    before = _snapshot(db)
    # The trade row's INSERT fails after the debit, the fill and the market's update.
    original = sqlite_unit.Unit.one

    def failing(self: sqlite_unit.Unit, sql: str, params: Any = ()) -> Any:
        if sql.startswith("INSERT INTO trades"):
            return original(self, "INSERT INTO no_such_table VALUES (1)", ())
        return original(self, sql, params)

    monkeypatch.setattr(sqlite_unit.Unit, "one", failing)
    with pytest.raises(Exception, match="no_such_table"):
        await trading.buy(ann, outcomes[0], 100)
    assert _snapshot(db) == before
    monkeypatch.undo()
    await trading.buy(ann, outcomes[0], 100)  # the connection is usable: nothing left open


@sqlite_only
async def test_concurrent_unit_trades_are_all_accounted_for(db: Settings, trading: Trading) -> None:
    issuer, *traders = await _users(db, "issuer", *(f"trader{i}" for i in range(8)))
    outcomes = await _market(trading, issuer)
    calls = [
        trading.buy(traders[i % 8], outcomes[i % 3], 100 + i, idempotency_key=f"c{i % 12}")
        for i in range(48)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    new = [r for r in results if isinstance(r, trading_module.TradeResult) and not r.replayed]
    replayed = [r for r in results if isinstance(r, trading_module.TradeResult) and r.replayed]
    refused = [r for r in results if isinstance(r, Refusal)]
    # Each key is used by several calls, of different traders (keys are per user) or of the
    # same trader with another request (a conflict): every call is a trade, a replay or that.
    assert len(new) + len(replayed) + len(refused) == 48
    assert {r.code for r in refused} <= {RefusalCode.IDEMPOTENCY_CONFLICT}
    assert await models.Trade.filter(user_id__in=[t.id for t in traders]).count() == len(new)
    market = await models.Market.get(id=new[0].market.id)
    assert market.odds_seq == len(new)
    report = await audit()
    assert report.problems == []


@sqlite_only
async def test_sqlite_runs_with_the_synchronous_setting(fresh_settings: Settings) -> None:
    from db.sql import fetch_dicts
    from tests.conftest import with_settings

    levels = []
    for name in ("NORMAL", "FULL"):
        forget_compiled_statements()
        await Tortoise.init(
            config=tortoise_config(with_settings(fresh_settings, sqlite_synchronous=name))
        )
        try:
            levels.append((await fetch_dicts("PRAGMA synchronous"))[0]["synchronous"])
        finally:
            await Tortoise.close_connections()
    assert levels == [1, 2]  # NORMAL, FULL


def test_the_synchronous_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from settings import SettingsError, load_settings

    assert load_settings().sqlite_synchronous == "NORMAL"
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", "full")
    assert load_settings().sqlite_synchronous == "FULL"
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", "OFF")
    with pytest.raises(SettingsError, match="SQLITE_SYNCHRONOUS"):
        load_settings()


async def test_a_trade_payload_shows_the_outcomes_the_trade_left_without_reading_them(
    demo_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.markets.loaders import MarketLoaders

    settings_url = connections.get("default").capabilities.dialect
    reads: list[list[int]] = []
    original = MarketLoaders._outcomes_by_market

    async def counted(self: MarketLoaders, keys: list[int]) -> list[list[models.Outcome]]:
        reads.append(keys)
        return await original(self, keys)

    monkeypatch.setattr(MarketLoaders, "_outcomes_by_market", counted)
    trader = await demo_client.sign_up("payload_reader")
    market = (await trader.data("{ markets(first: 1) { nodes { id outcomes { id } } } }"))[
        "markets"
    ]["nodes"][0]
    reads.clear()
    bought = await trader.data(
        """mutation($input: BuySharesInput!) { buyShares(input: $input) {
             market { id outcomes { id label probability } } errors { code } } }""",
        {"input": {"outcomeId": market["outcomes"][1]["id"], "amount": "12.34"}},
    )
    primed = reads
    reads = []
    after = await trader.data(
        "query($id: ID!) { node(id: $id) { ... on Market { id outcomes { id label probability } } } }",
        {"id": market["id"]},
    )
    assert bought["buyShares"]["errors"] == []
    assert bought["buyShares"]["market"] == after["node"]
    # SQLite's unit hands its outcomes over; PostgreSQL's awaited path reads them.
    assert primed == ([] if settings_url == "sqlite" else [[from_db_id(market["id"])]])


def from_db_id(global_id: str) -> int:
    from api.core.node import from_global_id

    return int(from_global_id(global_id)[1])


@sqlite_only
async def test_a_trade_cancelled_while_its_unit_runs_still_commits_and_publishes(
    db: Settings, trading: Trading, events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A websocket that closes cancels its operations: a unit already on the connection's
    thread commits anyway, so its event must still go out (subscribers, cache versions)."""
    import threading

    issuer, ann = await _users(db, "issuer", "ann")
    outcomes = await _market(trading, issuer)
    events.clear()
    started, release = threading.Event(), threading.Event()
    original = trading_module._trade_unit

    def slow_unit(*args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(5)
        return original(*args, **kwargs)

    monkeypatch.setattr(trading_module, "_trade_unit", slow_unit)
    task = asyncio.ensure_future(trading.buy(ann, outcomes[0], 100))
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, started.wait, 5)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if events:
            break
        await asyncio.sleep(0.02)
    assert [type(e).__name__ for e in events] == ["OddsChanged"]
    assert await models.Trade.filter(user_id=ann.id).count() == 1
    assert (await audit()).problems == []


# A trader process: buys 1.00 of the outcome in a loop through the unit, printing each trade's
# id once ``buy`` has answered (acknowledged), until it is killed; with argv[3] loops at once
# (their units then commit in groups).
_TRADER = """
import asyncio, sys
from tortoise import Tortoise
from db import models
from db.config import tortoise_config
from markets.trading import Trading
from settings import load_settings

async def main() -> None:
    settings = load_settings()
    await Tortoise.init(config=tortoise_config(settings))
    user = await models.User.get(id=int(sys.argv[1]))

    async def nothing(event: object) -> None:
        return None

    trading = Trading(settings, publish=nothing)

    async def loop() -> None:
        while True:
            result = await trading.buy(user, int(sys.argv[2]), 100)
            print(result.trade.id, flush=True)

    await asyncio.gather(*(loop() for _ in range(int(sys.argv[3]))))

asyncio.run(main())
"""


@sqlite_only
@pytest.mark.parametrize("loops", [1, 8])
async def test_no_acknowledged_unit_trade_is_lost_on_kill_9(
    db: Settings, trading: Trading, tmp_path: Any, loops: int
) -> None:
    issuer, ann = await _users(db, "issuer", "ann")
    outcomes = await _market(trading, issuer)
    script = tmp_path / "trader.py"
    await asyncio.to_thread(script.write_text, _TRADER)
    env = {
        **os.environ,
        "DATABASE_URL": db.database_url,
        "AGORA_ENV": "test",
        "PYTHONPATH": str(ROOT),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(ann.id),
        str(outcomes[0]),
        str(loops),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    acknowledged: list[int] = []
    try:
        assert process.stdout is not None
        # 57, no round number: a writer that answered before its commit, committing every
        # 10 trades, say, fails here (checked by hand with such a writer in the trader).
        while len(acknowledged) < 57:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, "the trader ended before it was killed"
            acknowledged.append(int(line))
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL
    # What the trader answered before it died but this test had not read yet (lines still in
    # the pipe) was acknowledged too: on a busy machine the reader fell behind by a dozen.
    assert process.stdout is not None
    acknowledged += [int(line) for line in (await process.stdout.read()).split()]
    path = db.database_url.removeprefix("sqlite://")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT id FROM trades WHERE user_id = ?", (ann.id,)).fetchall()
    stored = {row[0] for row in rows}
    # Every trade the killed process answered for is there (it may have committed one more a
    # loop: a group committed, not yet answered).
    assert set(acknowledged) <= stored and len(stored) - len(acknowledged) <= loops
    report = await audit()
    assert report.problems == []


# -- group commit (SQLITE_GROUP_COMMIT_MAX) ---------------------------------------------------


def _grouping(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every group handed to the connection's thread, as it happens."""
    sizes: list[int] = []
    original = sqlite_unit._group

    def recorded(conn: sqlite3.Connection, jobs: list[Any]) -> Any:
        sizes.append(len(jobs))
        return original(conn, jobs)

    monkeypatch.setattr(sqlite_unit, "_group", recorded)
    return sizes


def _calls(trading: Trading, traders: list[models.User], outcomes: list[int]) -> list[Any]:
    """Nine trades sent at once: buys, a refused buy (more than the wallet) in the middle, a
    sale, a keyed buy and its retry right behind it."""
    a, b, c = traders
    return [
        trading.buy(a, outcomes[0], 1_234),
        trading.buy(b, outcomes[1], 777),
        trading.buy(c, outcomes[0], 2_000),
        trading.buy(a, outcomes[2], 10**9),
        trading.buy(b, outcomes[0], 500),
        trading.sell(c, outcomes[2], 10_000),
        trading.buy(a, outcomes[1], 300, idempotency_key="g"),
        trading.buy(a, outcomes[1], 300, idempotency_key="g"),
        trading.buy(c, outcomes[1], 450),
    ]


def _outcome(result: Any) -> Any:
    if isinstance(result, Refusal):
        return result.code
    assert isinstance(result, trading_module.TradeResult), result
    return _shape(result)


@sqlite_only
@pytest.mark.parametrize("group", [16, 4])
async def test_units_sent_together_commit_in_groups_exactly_as_one_by_one(
    db: Settings, events: list[Event], monkeypatch: pytest.MonkeyPatch, group: int
) -> None:
    """Grouped, the nine trades give what they give one transaction each: the refusal and the
    sale of shares nobody holds change nothing of the others, the retry replays its key."""
    from dataclasses import replace

    issuer, *people = await _users(db, "issuer", "ann1", "bob1", "cat1", "ann2", "bob2", "cat2")
    sizes = _grouping(monkeypatch)
    answers = []
    for max_units, traders in ((1, people[:3]), (group, people[3:])):
        trading = Trading(replace(db, sqlite_group_commit_max=max_units), publish=_nothing)
        outcomes = await _market(trading, issuer)
        sizes.clear()
        results = await asyncio.gather(*_calls(trading, traders, outcomes), return_exceptions=True)
        answers.append(([_outcome(r) for r in results], list(sizes)))
    (alone, alone_sizes), (grouped, grouped_sizes) = answers
    assert alone_sizes == [1] * 9
    # All nine queue before the first group is taken; at most `group` a transaction.
    assert grouped_sizes == ([9] if group == 16 else [4, 4, 1])
    assert grouped == alone
    assert grouped[3] == RefusalCode.INSUFFICIENT_FUNDS
    assert grouped[5] == RefusalCode.INSUFFICIENT_SHARES
    assert grouped[7][-1] is True  # the retry is a replay
    assert (await audit()).problems == []


@sqlite_only
async def test_a_unit_failing_inside_a_group_rolls_back_alone(
    db: Settings, trading: Trading, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer, ann, bob = await _users(db, "issuer", "ann", "bob")
    outcomes = await _market(trading, issuer)
    sizes = _grouping(monkeypatch)
    original = sqlite_unit.Unit.one

    def failing(self: sqlite_unit.Unit, sql: str, params: Any = ()) -> Any:
        # Bob's trade row fails after his debit, his fill and the market's update.
        if sql.startswith("INSERT INTO trades") and params[2] == bob.id:
            return original(self, "INSERT INTO no_such_table VALUES (1)", ())
        return original(self, sql, params)

    monkeypatch.setattr(sqlite_unit.Unit, "one", failing)
    results = await asyncio.gather(
        trading.buy(ann, outcomes[0], 100),
        trading.buy(bob, outcomes[0], 100),
        trading.buy(ann, outcomes[1], 100),
        return_exceptions=True,
    )
    assert sizes == [3]
    assert isinstance(results[1], Exception) and "no_such_table" in str(results[1])
    assert [type(results[0]), type(results[2])] == [trading_module.TradeResult] * 2
    assert await models.Trade.filter(user_id=bob.id).count() == 0
    assert not await models.Position.filter(user_id=bob.id).exists()
    assert await models.Trade.filter(user_id=ann.id).count() == 2
    market = await models.Market.get(id=results[0].market.id)  # type: ignore[union-attr]
    assert market.odds_seq == 2
    assert (await audit()).problems == []


@sqlite_only
async def test_a_group_whose_commit_fails_answers_none_of_its_trades(
    db: Settings, trading: Trading, events: list[Event], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing answers before the COMMIT: when it fails, the units that ran fine get its error
    (and publish nothing), a refusal before the first of them keeps its own answer, one after
    it (judged on writes the failed COMMIT undid) gets the error too, and nothing is kept."""
    issuer, ann, bob = await _users(db, "issuer", "ann", "bob")
    outcomes = await _market(trading, issuer)
    wallet = (await ledger.balances_of_users([ann.id]))[ann.id]
    events.clear()
    before = _snapshot(db)
    sizes = _grouping(monkeypatch)
    original = trading_module._trade_unit

    def poisoning(unit: sqlite_unit.Unit, user_id: int, *args: Any) -> Any:
        result = original(unit, user_id, *args)
        if user_id == bob.id:
            # A foreign key checked only at COMMIT: the whole group's COMMIT fails.
            unit.run("PRAGMA defer_foreign_keys = ON")
            unit.run("UPDATE trades SET user_id = 987654321 WHERE id = ?", (result.trade.id,))
        return result

    monkeypatch.setattr(trading_module, "_trade_unit", poisoning)
    results = await asyncio.gather(
        trading.buy(ann, outcomes[0], 10**9),  # refused on committed state
        trading.buy(ann, outcomes[0], wallet),  # spends the whole wallet (never committed)
        trading.buy(ann, outcomes[1], 100),  # refused on the purchase before it
        trading.buy(bob, outcomes[1], 100),  # its foreign key fails the COMMIT
        return_exceptions=True,
    )
    assert sizes == [4]
    assert isinstance(results[0], Refusal) and results[0].code == RefusalCode.INSUFFICIENT_FUNDS
    for failed in results[1:]:
        assert not isinstance(failed, Refusal), failed
        assert isinstance(failed, Exception) and "FOREIGN KEY" in str(failed)
    assert events == []
    assert _snapshot(db) == before
    monkeypatch.undo()
    await trading.buy(ann, outcomes[0], 100)  # the connection is usable: nothing left open


@sqlite_only
@pytest.mark.parametrize("lazy", [False, True])
async def test_an_odds_update_from_carried_rows_is_one_state_all_through(
    db: Settings, trading: Trading, events: list[Event], lazy: bool
) -> None:
    """A trade's update is built from the rows its transaction left; the fields below its root
    (``lastTrade { outcome { probability } }``) see those rows too, not a later trade's."""
    from types import SimpleNamespace

    from api.loaders import Loaders
    from api.markets.subscriptions import ODDS_UPDATED
    from api.markets.types import Trade as TradeType
    from markets.events import OddsChanged
    from realtime.events import to_message
    from realtime.fanout.hub import LazyLoaders

    issuer, ann, bob = await _users(db, "issuer", "ann", "bob")
    outcomes = await _market(trading, issuer)
    events.clear()
    first = await trading.buy(ann, outcomes[0], 5_000)
    await trading.buy(bob, outcomes[1], 50_000)  # commits before the first one's update is built
    event = next(e for e in events if isinstance(e, OddsChanged) and e.seq == first.market.odds_seq)
    routed = to_message(event)
    assert routed is not None
    message = routed[1]
    loaders: Any = LazyLoaders(lambda: Loaders(None)) if lazy else Loaders(None)
    root = await ODDS_UPDATED.root(first.market.id, message, loaders)
    assert root.seq == first.market.odds_seq
    info = SimpleNamespace(context=SimpleNamespace(loaders=loaders))
    nested = await TradeType.outcome(root.last_trade, info)
    market = await TradeType.market(root.last_trade, info)
    top = next(o for o in root.outcomes if o.pk == nested.pk)
    assert nested.probability == top.probability
    assert market.volume == root.market.volume
