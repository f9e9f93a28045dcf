"""Benchmark: ``buyShares`` through the whole HTTP stack, on one market and on many.

    .venv/bin/python -m bench.trades [--users 32] [--concurrency 16] [--markets 16]
        [--requests 1000] [--rounds 4] [--warmup 64] [--min-amount 1.00] [--max-amount 3.00]
        [--time-limit 240] [--app-root DIR] [--json PATH]
        [--database-url postgres://…  (an empty database) | --postgres]
        [--workers 1] [--redis | --redis-url redis://…]

It builds a fresh database (a temporary SQLite file by default) with the demo data, by the app
of ``--app-root`` (default: this tree), starts that app (``app:create_app``) under uvicorn on a
loopback port (``--workers N``: N uvicorn workers, which need PostgreSQL and ``--redis`` or
``--redis-url``; ``bench.harness.deployment``), logs in the demo admin, creates 1 +
``--markets`` two-outcome markets (liquidity 1000.00) and signs ``--users`` traders up, all
before timing. Then, in ``--rounds`` rounds, it
times three batches of the same size with the same tokens and concurrency:

* ``read``: ``{ me { balance } }``, the baseline (machines here are noisy: read the ratios);
* ``one market``: every trader buys small amounts on ONE market (they queue on its row lock);
* ``many markets``: the same traders spread at random over ``--markets`` other markets.

A trade counts only if it is HTTP 200 with no ``errors`` and a trade; anything else is a
failure and is reported by kind. On PostgreSQL a sampler watches ``pg_stat_activity`` for
backends waiting on locks. Afterwards it reads the server's log (``agora.*`` at INFO: the
trade retries of ``agora.trading``), checks every trader's wallet and trades in the database
against what the client saw succeed, and runs ``python -m markets.audit`` from ``--app-root``
on the database; exit status 1 on any failure, mismatch or audit problem (or a worker that
ended during the run). With several workers, server CPU and the figures derived from it are
the sum over the supervisor and its workers, and the report says how the client's connections
were spread over the workers.

``--json PATH`` writes the headline ratios (one market / read and many markets / read:
throughput and server CPU per request, the median of the rounds' ratios) and every figure;
``bench.compare`` runs this on two trees.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import sqlite3
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx

from bench.harness import cli
from bench.harness.api import Account, Market, body, bounded, create_markets, error_text, sign_up
from bench.harness.databases import Database, is_sqlite, run_in_app
from bench.harness.deployment import Deployment
from bench.harness.load import Batch, Call, Check, Connections, run_load
from bench.harness.results import Ratio, Results
from bench.harness.servers import Server, log_config_options, uvicorn_server
from bench.harness.stats import Figures, machine, print_table, ratio, split, summarise

# What a trading UI would ask for: the trade, the wallet, the new odds.
BUY = """
mutation Buy($input: BuySharesInput!) {
  buyShares(input: $input) {
    trade { id shares amount }
    balance
    market { id outcomes { id probability } }
    errors { code message }
  }
}
"""
ME = "{ me { balance } }"

READ, ONE, MANY = "read", "one market", "many markets"
SUMMED = "; server CPU is the sum over the supervisor and its workers"
SCENARIOS = (READ, ONE, MANY)


def _cents(text: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from exc
    if value != value.quantize(Decimal("0.01")) or value <= 0:
        raise argparse.ArgumentTypeError(f"an amount is positive with 2 places: {text!r}")
    return int(value * 100)


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


# -- calls --------------------------------------------------------------------------------------


def check_read(payload: Any) -> str:
    """ "" if ``{ me { balance } }`` answered a balance, else what is wrong."""
    if payload.get("errors"):
        return "GraphQL error: " + error_text(payload["errors"][0])
    me = (payload.get("data") or {}).get("me")
    if not me or me.get("balance") is None:
        return "no balance in the answer"
    return ""


def check_buy(payload: Any) -> str:
    """ "" if the buy executed, else what is wrong (a refusal, an error, no trade)."""
    if payload.get("errors"):
        return "GraphQL error: " + error_text(payload["errors"][0])
    result = (payload.get("data") or {}).get("buyShares")
    if result is None:
        return "buyShares is null"
    if result.get("errors"):
        first = result["errors"][0]
        return f"refused {first.get('code')}: {first.get('message')}"
    if not result.get("trade"):
        return "no trade and no error"
    return ""


def answered(check: Callable[[Any], str]) -> Check:
    """``check`` of the JSON of an HTTP 200 answer."""

    def on_response(status: int, body: bytes) -> str:
        if status != 200:
            return f"HTTP {status}: {body[:200].decode(errors='replace')}"
        return check(json.loads(body))

    return on_response


READ_OK, BUY_OK = answered(check_read), answered(check_buy)


class Planner:
    """Deterministic requests: traders in turn (so spending is even), random amounts/outcomes.

    A buy's ``Call.tag`` is (trader index, cents spent).
    """

    def __init__(self, traders: list[Account], min_cents: int, max_cents: int, seed: int) -> None:
        self.traders = traders
        self.min_cents, self.max_cents = min_cents, max_cents
        self.rng = random.Random(seed)
        self.next_trader = 0

    def reads(self, count: int) -> list[Call]:
        me = body(ME)
        users = len(self.traders)
        return [Call(me, self.traders[i % users].headers, READ_OK) for i in range(count)]

    def buys(self, count: int, markets: list[Market]) -> list[Call]:
        calls = []
        for _ in range(count):
            trader = self.next_trader % len(self.traders)
            self.next_trader += 1
            market = self.rng.choice(markets)
            cents = self.rng.randint(self.min_cents, self.max_cents)
            variables = {
                "input": {"outcomeId": self.rng.choice(market.outcome_ids), "amount": _money(cents)}
            }
            headers = self.traders[trader].headers
            calls.append(Call(body(BUY, variables), headers, BUY_OK, (trader, cents)))
        return calls


# -- lock waits (PostgreSQL) ---------------------------------------------------------------------


@dataclass
class LockStats:
    """What pg_stat_activity showed while batches ran (PostgreSQL only)."""

    samples: int = 0
    waiting_total: int = 0
    waiting_max: int = 0
    samples_waiting: int = 0
    active_total: int = 0
    idle_in_transaction_total: int = 0
    events: Counter[str] = field(default_factory=Counter)

    def merge(self, other: LockStats) -> None:
        self.samples += other.samples
        self.waiting_total += other.waiting_total
        self.waiting_max = max(self.waiting_max, other.waiting_max)
        self.samples_waiting += other.samples_waiting
        self.active_total += other.active_total
        self.idle_in_transaction_total += other.idle_in_transaction_total
        self.events.update(other.events)

    def text(self) -> str:
        if not self.samples:
            return "-"
        return (
            f"{self.waiting_total / self.samples:.1f} avg/{self.waiting_max} max waiting "
            f"of {self.active_total / self.samples:.1f} active "
            f"({self.samples_waiting / self.samples:.0%} of samples); "
            f"{self.idle_in_transaction_total / self.samples:.1f} idle in transaction"
        )


class LockSampler:
    """Polls pg_stat_activity of the benchmark database from its own connection."""

    QUERY = (
        "SELECT wait_event_type, wait_event, state FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )

    def __init__(self, db: Database, interval: float = 0.02) -> None:
        self.db = db
        self.interval = interval

    async def watch(self, stop: asyncio.Event) -> LockStats:
        stats = LockStats()
        while not stop.is_set():
            rows = await self.db.fetch(self.QUERY)
            waiting = [r for r in rows if r["wait_event_type"] == "Lock"]
            stats.samples += 1
            stats.waiting_total += len(waiting)
            stats.waiting_max = max(stats.waiting_max, len(waiting))
            stats.samples_waiting += 1 if waiting else 0
            stats.active_total += sum(1 for r in rows if r["state"] == "active")
            stats.idle_in_transaction_total += sum(
                1 for r in rows if r["state"] == "idle in transaction"
            )
            stats.events.update(str(r["wait_event"]) for r in waiting)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
        return stats

    async def counters(self) -> dict[str, int]:
        """Deadlocks, rollbacks and commits of the benchmark database so far."""
        await asyncio.sleep(1.5)  # backends flush their statistics about once a second
        row = (
            await self.db.fetch(
                "SELECT deadlocks, xact_rollback, xact_commit FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        )[0]
        return {key: int(row[key]) for key in ("deadlocks", "xact_rollback", "xact_commit")}


async def sampled(
    sampler: LockSampler | None, locks: LockStats, batch: Coroutine[Any, Any, Batch]
) -> Batch:
    """``batch`` awaited while ``sampler`` (if any) adds what it sees to ``locks``."""
    if sampler is None:
        return await batch
    stop = asyncio.Event()
    watcher = asyncio.create_task(sampler.watch(stop))
    try:
        return await batch
    finally:
        stop.set()
        locks.merge(await watcher)


# -- set-up and checks ----------------------------------------------------------------------------


async def set_up(
    client: httpx.AsyncClient, server: Server, users: int, markets: int, tag: str
) -> tuple[list[Account], list[Market]]:
    """Create 1 + ``markets`` markets as the demo admin and sign ``users`` traders up."""
    created = await create_markets(client, server.base_url, markets + 1, "bench.trades", tag)

    def trader(i: int) -> Callable[[], Any]:
        return lambda: sign_up(client, server.base_url, f"bench_{tag}_{i}", f"Bench Trader {i}")

    traders = await bounded([trader(i) for i in range(users)], 4)
    return traders, created


async def balances(
    client: httpx.AsyncClient, server: Server, traders: list[Account]
) -> dict[int, int]:
    """Each trader's balance in cents, via ``me { balance }``."""
    result: dict[int, int] = {}
    for index, trader in enumerate(traders):
        response = await client.post(
            server.base_url + "/graphql", content=body(ME), headers=trader.headers
        )
        problem = READ_OK(response.status_code, response.content)
        if problem:
            raise RuntimeError(f"balance of {trader.username}: {problem}")
        result[index] = _cents(str(response.json()["data"]["me"]["balance"]))
    return result


async def database_facts(url: str, tag: str) -> tuple[str, dict[str, tuple[int, int, int]]]:
    """The database version, and per bench trader: (wallet cents, trades, cents traded)."""
    async with await Database.connect(url) as db:
        rows = await db.fetch(
            "SELECT u.username, a.balance_cents, "
            "(SELECT COUNT(*) FROM trades t WHERE t.user_id = u.id) AS n, "
            "(SELECT COALESCE(SUM(t.amount_cents), 0) FROM trades t WHERE t.user_id = u.id) AS s "
            "FROM users u JOIN ledger_accounts a ON a.user_id = u.id AND a.kind = 'USER' "
            "WHERE u.username LIKE ?",
            (f"bench_{tag}_%",),
        )
        facts = {
            str(r["username"]): (int(r["balance_cents"]), int(r["n"]), int(r["s"])) for r in rows
        }
        return await db.version(), facts


def run_audit(app_root: Path, database_url: str) -> tuple[int, str]:
    """``python -m markets.audit`` of ``app_root`` on the database: (exit status, its output)."""
    done = run_in_app(app_root, database_url, ["-m", "markets.audit"], timeout=300)
    return done.returncode, done.stdout + done.stderr


def wallet_mismatches(
    traders: list[Account],
    start: dict[int, int],
    end: dict[int, int],
    batches: list[Batch],
    facts: dict[str, tuple[int, int, int]],
) -> tuple[list[str], int, int]:
    """Traders whose API balance, wallet or trades disagree with the buys the client saw
    succeed; also the number and the sum of those buys."""
    spent: Counter[int] = Counter()
    trades: Counter[int] = Counter()
    for batch in batches:
        for call in batch.succeeded:
            if call.tag is not None:
                trader, cents = call.tag
                spent[trader] += cents
                trades[trader] += 1
    mismatches = []
    for i, trader in enumerate(traders):
        expected = start[i] - spent[i]
        wallet, count, cents = facts.get(trader.username, (-1, -1, -1))
        if (wallet, count, cents) != (expected, trades[i], spent[i]) or end[i] != expected:
            mismatches.append(
                f"{trader.username}: client saw {trades[i]} buys for {_money(spent[i])} "
                f"(balance {_money(expected)}); API balance {_money(end[i])}; database: "
                f"{count} trades for {_money(cents)}, wallet {_money(wallet)}"
            )
    return mismatches, sum(trades.values()), sum(spent.values())


# -- the same-run baseline: a trade's statements in a bare loop -----------------------------------

# The statements of one buy as Agora's SQLite unit sends them (markets.trading._trade_unit),
# frozen here (bench imports nothing it measures): read the outcomes, the market, the two
# accounts and the position; move the money (conditional debit first), record the movement,
# the shares, the position, the market, the trade and a price point. The planned figures are
# fixed: the baseline measures what the database and its driver cost, not the pricing.
BARE_STATEMENTS: list[tuple[str, str]] = [
    (
        "outcomes",
        "SELECT * FROM outcomes WHERE market_id = (SELECT market_id FROM outcomes WHERE id = ?) "
        "ORDER BY position",
    ),
    ("market", "SELECT * FROM markets WHERE id = ?"),
    (
        "accounts",
        "SELECT id, kind FROM ledger_accounts WHERE (kind = 'USER' AND user_id = ?) "
        "OR (kind = 'MARKET' AND market_id = ?)",
    ),
    ("positions", "SELECT * FROM positions WHERE user_id = ? AND market_id = ?"),
    (
        "debit",
        "UPDATE ledger_accounts SET balance_cents = balance_cents + ? WHERE id = ? "
        "AND (kind <> 'USER' OR balance_cents + ? >= 0) RETURNING balance_cents",
    ),
    (
        "credit",
        "UPDATE ledger_accounts SET balance_cents = balance_cents + ? WHERE id = ? "
        "AND (kind <> 'USER' OR balance_cents + ? >= 0) RETURNING balance_cents",
    ),
    (
        "movement",
        "INSERT INTO ledger_transactions (kind, created_at, memo) VALUES ('TRADE', ?, ?) "
        "RETURNING id",
    ),
    (
        "entries",
        "INSERT INTO ledger_entries (transaction_id, account_id, amount_cents) "
        "VALUES (?, ?, ?), (?, ?, ?)",
    ),
    ("shares", "UPDATE outcomes SET shares_units = shares_units + ? WHERE id = ?"),
    (
        "position",
        "UPDATE positions SET shares_units = shares_units + ?, cost_basis_cents = "
        "cost_basis_cents + ?, updated_at = ? WHERE user_id = ? AND outcome_id = ? RETURNING *",
    ),
    (
        "market",
        "UPDATE markets SET volume_cents = volume_cents + ?, odds_seq = odds_seq + 1 "
        "WHERE id = ? RETURNING *",
    ),
    (
        "trade",
        "INSERT INTO trades (market_id, outcome_id, user_id, shares_units, amount_cents, "
        "probability_before, probability_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING *",
    ),
    (
        "price",
        "INSERT INTO price_points (market_id, at, at_epoch, probabilities) VALUES (?, ?, ?, ?)",
    ),
]


@dataclass
class BareTarget:
    """One trade's ids for the bare loop: a trader who holds the outcome, its market."""

    user_id: int
    wallet: int
    maker: int
    market_id: int
    outcome_id: int


def _bare_params(t: BareTarget, now: str, transaction_id: int) -> list[tuple[Any, ...]]:
    cents, shares = 1, 1
    return [
        (t.outcome_id,),
        (t.market_id,),
        (t.user_id, t.market_id),
        (t.user_id, t.market_id),
        (-cents, t.wallet, -cents),
        (cents, t.maker, cents),
        (now, f"market {t.market_id}"),
        (transaction_id, t.wallet, -cents, transaction_id, t.maker, cents),
        (shares, t.outcome_id),
        (shares, cents, now, t.user_id, t.outcome_id),
        (cents, t.market_id),
        (t.market_id, t.outcome_id, t.user_id, shares, cents, 0.5, 0.5, now),
        (t.market_id, now, int(time.time()), "[0.5, 0.5]"),
    ]


async def bare_targets(url: str, tag: str, slugs: list[str]) -> list[BareTarget]:
    """(trader, outcome) pairs the bench's traders hold on the markets of ``slugs``."""
    async with await Database.connect(url) as db:
        rows = await db.fetch(
            "SELECT p.user_id, p.market_id, p.outcome_id, w.id AS wallet, m.id AS maker, "
            "k.slug FROM positions p JOIN users u ON u.id = p.user_id "
            "JOIN markets k ON k.id = p.market_id "
            "JOIN ledger_accounts w ON w.kind = 'USER' AND w.user_id = p.user_id "
            "JOIN ledger_accounts m ON m.kind = 'MARKET' AND m.market_id = p.market_id "
            "WHERE u.username LIKE ? ORDER BY p.id",
            (f"bench_{tag}_%",),
        )
    wanted = set(slugs)
    return [
        BareTarget(
            int(r["user_id"]),
            int(r["wallet"]),
            int(r["maker"]),
            int(r["market_id"]),
            int(r["outcome_id"]),
        )
        for r in rows
        if str(r["slug"]) in wanted
    ]


def bare_sqlite(url: str, targets: list[BareTarget], count: int) -> float:
    """Trades per second of ``count`` trades' statements run serially by plain sqlite3, each
    in its own ``BEGIN IMMEDIATE`` … ``COMMIT``, with the app's journal and ``synchronous``
    settings."""
    path = url.split("://", 1)[1].split("?", 1)[0]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # The app's setting (its server inherits this environment), and its default.
        synchronous = os.environ.get("SQLITE_SYNCHRONOUS", "") or "NORMAL"
        conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        began = time.perf_counter()
        for i in range(count):
            target = targets[i % len(targets)]
            now = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime())
            conn.execute("BEGIN IMMEDIATE")
            transaction_id = 0
            for (name, sql), params in zip(
                BARE_STATEMENTS, _bare_params(target, now, 0), strict=True
            ):
                if name == "entries":
                    params = (transaction_id, *params[1:3], transaction_id, *params[4:])
                rows = conn.execute(sql, params).fetchall()
                if name == "movement":
                    transaction_id = int(rows[0][0])
            conn.execute("COMMIT")
        return count / (time.perf_counter() - began)
    finally:
        conn.close()


async def bare_postgres(url: str, targets: list[BareTarget], count: int) -> float:
    """The same with asyncpg on PostgreSQL, one connection, ``FOR UPDATE`` on the reads that
    Agora locks (market, accounts)."""
    import asyncpg

    def dollars(sql: str) -> str:
        counter = iter(range(1, 100))
        return "".join(f"${next(counter)}" if c == "?" else c for c in sql)

    statements = [(name, dollars(sql)) for name, sql in BARE_STATEMENTS]
    for i, (name, sql) in enumerate(statements):
        if name in ("market", "accounts") and sql.startswith("SELECT"):
            statements[i] = (name, sql + " FOR UPDATE")
    conn = await asyncpg.connect(url)
    try:
        began = time.perf_counter()
        for i in range(count):
            target = targets[i % len(targets)]
            now = datetime.now(UTC)
            async with conn.transaction():
                transaction_id = 0
                params_list = _bare_params(target, "", 0)
                for (name, sql), params in zip(statements, params_list, strict=True):
                    values = [now if p == "" else p for p in params]
                    if name == "entries":
                        values = [transaction_id, *values[1:3], transaction_id, *values[4:]]
                    if name == "price":
                        values[2] = int(time.time())
                    rows = await conn.fetch(sql, *values)
                    if name == "movement":
                        transaction_id = int(rows[0]["id"])
        return count / (time.perf_counter() - began)
    finally:
        await conn.close()


def bare_loop(
    url: str, targets: list[BareTarget], count: int
) -> Coroutine[Any, Any, float] | float:
    """The bare loop of the database at ``url``: a rate (SQLite) or a coroutine of one."""
    if is_sqlite(url):
        return bare_sqlite(url, targets, count)
    return bare_postgres(url, targets, count)


# The targets for this machine (SQLite, concurrency 16; PostgreSQL: the stretch).
TARGETS = {
    ("sqlite", MANY): (500.0, 50.0),
    ("sqlite", ONE): (300.0, 50.0),
    ("postgres", ONE): (400.0, 50.0),
}


def report_baseline(
    summaries: list[Figures], bare: dict[str, float], url: str, outcome: Results
) -> None:
    """Agora's trades/s and p99 per scenario beside the bare loop's trades/s, the ratio, and
    the issue's target for the scenario (met or not)."""
    backend = "sqlite" if is_sqlite(url) else "postgres"
    print()
    print(
        f"{'scenario':<13} {'Agora/s':>8} {'p99 ms':>7} {'bare loop/s':>12} {'Agora/bare':>10}"
        "  target"
    )
    for s in summaries:
        if s.name == READ or s.name not in bare:
            continue
        rate = bare[s.name]
        target = TARGETS.get((backend, s.name))
        verdict = "-"
        if target is not None:
            met = s.rate >= target[0] and s.p99_ms < target[1]
            verdict = (
                f"≥ {target[0]:.0f}/s, p99 < {target[1]:.0f} ms: {'met' if met else 'NOT met'}"
            )
        print(
            f"{s.name:<13} {s.rate:>8.1f} {s.p99_ms:>7.1f} {rate:>12.1f} "
            f"{ratio(s.rate, rate):>9.2f}x  {verdict}"
        )
        outcome.figures[f"bare loop {s.name} trades/s"] = rate
        outcome.figures[f"{s.name}/bare loop throughput"] = ratio(s.rate, rate)
    print(
        "(bare loop: the same statements of a trade, serially, one connection, on the same "
        "database after the run; SQLite: plain sqlite3, PostgreSQL: asyncpg)"
    )


# -- the run -------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, database_url: str, folder: Path) -> Results:
    tag = uuid.uuid4().hex[:6]
    env = {"LOG_LEVEL": "INFO", "SIGNUP_RATE_PER_ADDRESS": "100000/60"}
    options = log_config_options(folder)
    deployment = Deployment.of(args, database_url)
    server = uvicorn_server(
        "app",
        "app:create_app",
        args.app_root,
        folder,
        {**deployment.env(), **env},
        options,
        workers=deployment.workers,
    )
    results: dict[str, list[Batch]] = {name: [] for name in SCENARIOS}
    locks: dict[str, LockStats] = {name: LockStats() for name in SCENARIOS}
    warm: list[Batch] = []
    problems: list[str] = []
    pg = None if is_sqlite(database_url) else await Database.connect(database_url)
    sampler = LockSampler(pg) if pg is not None else None
    deadlocks: dict[str, int] = {}
    spread = ""
    try:
        server.start()
        await server.wait_ready()
        print(
            f"server: app of {args.app_root} ({deployment.describe()}), pid {server.pid} on "
            f":{server.port}"
            + (f", workers {list(server.serving_at_start)}" if args.workers > 1 else "")
        )
        async with (
            httpx.AsyncClient(timeout=30.0, trust_env=False) as client,
            Connections(server) as pool,
        ):
            began = time.perf_counter()
            traders, markets = await set_up(client, server, args.users, args.markets, tag)
            one, many = markets[:1], markets[1:]
            start_balances = await balances(client, server, traders)
            print(
                f"set up in {time.perf_counter() - began:.1f}s: {len(markets)} markets "
                f"(1 + {len(many)}, 2 outcomes, liquidity 1000.00), {len(traders)} traders "
                f"with {_money(min(start_balances.values()))} each or more"
            )
            planner = Planner(traders, args.min_amount, args.max_amount, args.seed)
            buys = args.warmup + 2 * args.requests
            worst = math.ceil(buys / args.users) * args.max_amount
            if worst > min(start_balances.values()):
                print(
                    f"a trader could spend {_money(worst)} but holds "
                    f"{_money(min(start_balances.values()))}: lower --requests or the amounts"
                )
                return Results(2)

            def batch(scenario: str, calls: list[Call], cap: float) -> Coroutine[Any, Any, Batch]:
                return run_load(pool, "/graphql", scenario, calls, args.concurrency, cap)

            if args.warmup:
                warm.append(await batch(READ, planner.reads(args.warmup), 60.0))
                warm.append(await batch(MANY, planner.buys(args.warmup, markets), 60.0))
                for w in warm:
                    if w.failures:
                        print(f"warm-up failures ({w.name}): {dict(w.failures)}")
                        problems.append("warm-up failures")
            cap = args.time_limit / (len(SCENARIOS) * args.rounds)
            print(
                f"load: {args.requests} requests per scenario in {args.rounds} rounds "
                f"(read, one, many), concurrency {args.concurrency}, {args.users} traders, "
                f"buys of {_money(args.min_amount)}–{_money(args.max_amount)}, "
                f"warm-up {args.warmup} reads + {args.warmup} buys, cap {cap:.0f}s per batch"
            )
            for count in split(args.requests, args.rounds):
                plans = {
                    READ: planner.reads(count),
                    ONE: planner.buys(count, one),
                    MANY: planner.buys(count, many),
                }
                for scenario in SCENARIOS:
                    done = await sampled(
                        sampler, locks[scenario], batch(scenario, plans[scenario], cap)
                    )
                    results[scenario].append(done)
                    print(
                        f"  {scenario:<13} {len(done.latencies):>5} ok "
                        f"{sum(done.failures.values()):>4} failed "
                        f"{ratio(len(done.latencies), done.elapsed):>8.1f}/s"
                        + ("  (time cap hit)" if done.capped else "")
                    )
            end_balances = await balances(client, server, traders)
            spread = server.spread(pool.ports())
            if server.replaced_workers():
                problems.append(server.replaced_workers())
        if sampler is not None:
            deadlocks = await sampler.counters()
    finally:
        if pg is not None:
            await pg.close()
        server.stop()

    summaries = [summarise(name, batches) for name, batches in results.items()]
    version, facts = await database_facts(database_url, tag)
    outcome = report(summaries, locks, version, args, deployment)
    if args.workers > 1:
        print(f"the load's connections per worker (+ the set-up client's): {spread}")
        outcome.figures["connections_per_worker"] = spread
    if deadlocks:
        print(f"\nPostgreSQL counters for the database (whole run): {deadlocks}")
        outcome.figures["postgres_counters"] = deadlocks

    # -- what the server logged
    retries, loud = server.trade_retries(), server.loud_lines()
    print()
    if retries:
        print(f"agora.trading retried {sum(retries.values())} trades: {dict(retries)}")
    else:
        print("agora.trading logged no retries")
    outcome.figures["trade_retries"] = dict(retries)
    if loud:
        print(f"the server logged {len(loud)} warnings/errors; the first:")
        for line in loud[:10]:
            print(f"  {line[:300]}")
        problems.append("server errors logged")
    if server.exit_problem():
        print(server.exit_problem())

    # -- failures
    for summary in summaries:
        if summary.failures:
            problems.append(f"{summary.failed} failed {summary.name} requests")
            print(f"\n{summary.failed} {summary.name} requests failed:")
            for kind, n in summary.failures.most_common(10):
                print(f"  {n:>5} × {kind}")

    # -- money: client tallies vs wallets, trades and the ledger
    all_batches = [*warm, *(b for bs in results.values() for b in bs)]
    mismatches, bought, cents = wallet_mismatches(
        traders, start_balances, end_balances, all_batches, facts
    )
    print()
    if mismatches:
        problems.append(f"{len(mismatches)} traders' wallets disagree with the client")
        print(f"{len(mismatches)} traders disagree with what the client saw succeed:")
        for line in mismatches[:10]:
            print(f"  {line}")
        unknown = sum(b.unknown for b in all_batches)
        if unknown:
            print(f"  ({unknown} requests were cut off at the hard cap and may have committed)")
    else:
        print(
            f"wallets: all {len(traders)} traders' balances (API and database), trade counts "
            f"and amounts match the {bought} successful buys ({_money(cents)}) the client saw"
        )

    status, output = run_audit(args.app_root, database_url)
    lines = output.strip().splitlines()
    sum_line = next((line for line in lines if line.startswith("sum ")), "(no sum line)")
    print(f"audit (python -m markets.audit): exit {status}; {' '.join(sum_line.split())}")
    for line in lines:
        if line.startswith(("OK", "PROBLEM", "trades ", "transactions ")):
            print(f"  {line}")
    if status != 0:
        problems.append("the audit failed")
        if not any(line.startswith("PROBLEM") for line in lines):
            print(output[-3000:])

    # -- the same-run baseline, after the audit (its trades are not Agora's)
    bare: dict[str, float] = {}
    if args.bare_trades:
        for scenario, chosen in ((ONE, one), (MANY, many)):
            targets = await bare_targets(database_url, tag, [m.slug for m in chosen])
            if not targets:
                print(f"bare loop ({scenario}): no position of a bench trader to trade on")
                continue
            try:
                rate = bare_loop(database_url, targets, args.bare_trades)
                bare[scenario] = rate if isinstance(rate, float) else await rate
            except Exception as exc:  # the baseline's failure is reported, not Agora's
                print(f"bare loop ({scenario}) failed: {type(exc).__name__}: {exc}")
                problems.append(f"the bare loop failed ({scenario})")
        report_baseline(summaries, bare, database_url, outcome)

    if problems:
        print(f"\nFAILED: {'; '.join(problems)}")
        outcome.status = 1
    return outcome


def report(
    summaries: list[Figures],
    locks: dict[str, LockStats],
    version: str,
    args: argparse.Namespace,
    deployment: Deployment,
) -> Results:
    print()
    if is_sqlite(deployment.database_url):
        pool = "one connection"
    else:
        pool = f"pool ≤ {os.environ.get('DB_POOL_SIZE', 10)}"
        pool += f" per worker, {deployment.workers} workers" if deployment.workers > 1 else ""
    print(f"{machine(f'{version} ({pool})')}; concurrency {args.concurrency}, {args.users} traders")
    print(f"app: {deployment.describe()}" + SUMMED * (deployment.workers > 1))
    print()
    print_table(
        summaries,
        "scenario",
        "backends waiting on a lock (PostgreSQL)",
        lambda s: locks[s.name].text(),
    )
    by_name = {s.name: s for s in summaries}
    read, one, many = by_name[READ], by_name[ONE], by_name[MANY]
    print()
    print(f"many / one market throughput   {ratio(many.rate, one.rate):6.2f}x")
    print(f"one market / read throughput   {ratio(one.rate, read.rate):6.2f}x")
    print(f"many markets / read throughput {ratio(many.rate, read.rate):6.2f}x")
    print(
        f"p50 vs read: one {ratio(one.p50_ms, read.p50_ms):.2f}x, "
        f"many {ratio(many.p50_ms, read.p50_ms):.2f}x; p99 vs read: one "
        f"{ratio(one.p99_ms, read.p99_ms):.2f}x, many {ratio(many.p99_ms, read.p99_ms):.2f}x"
    )
    for name, stats in locks.items():
        if stats.events:
            print(f"lock wait events during {name}: {dict(stats.events.most_common(5))}")
    outcome = Results(0, figures={"database": version})
    # Round by round (their median): each round times read, one and many one after another.
    for s in (one, many):
        outcome.ratios[f"{s.name}/read throughput"] = Ratio.of_rounds(
            s.round_rates, read.round_rates, "higher"
        )
        outcome.ratios[f"{s.name}/read server CPU per request"] = Ratio.of_rounds(
            s.round_cpu_ms, read.round_cpu_ms, "lower"
        )
    for s in summaries:
        outcome.figures[s.name] = s.as_json()
    return outcome


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.trades",
        description="buyShares over HTTP on one market vs many, against a me { balance } read.",
    )
    parser.add_argument("--users", type=int, default=32, help="traders (signed up untimed)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--markets", type=int, default=16, help="markets of the many scenario")
    parser.add_argument(
        "--requests", type=int, default=1000, help="measured requests per scenario (all rounds)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="rounds of read, one, many")
    parser.add_argument("--warmup", type=int, default=64, help="unmeasured reads and buys")
    parser.add_argument("--min-amount", type=_cents, default=100, help="smallest buy (1.00)")
    parser.add_argument("--max-amount", type=_cents, default=300, help="largest buy (3.00)")
    parser.add_argument("--seed", type=int, default=1, help="of the random amounts and outcomes")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=240.0,
        help="hard cap in seconds on all measured batches together (split evenly)",
    )
    parser.add_argument(
        "--bare-trades",
        type=int,
        default=2000,
        help="trades of the bare-loop baseline per scenario, after the run (0: none)",
    )
    cli.add_common_arguments(parser, workers=True)
    args = parser.parse_args(argv)
    if min(args.users, args.concurrency, args.markets, args.requests, args.rounds) < 1:
        parser.error("--users, --concurrency, --markets, --requests and --rounds must be >= 1")
    if args.warmup < 0 or args.time_limit <= 0:
        parser.error("--warmup must be >= 0 and --time-limit positive")
    if args.min_amount > args.max_amount:
        parser.error("--min-amount must not exceed --max-amount")
    cli.check_common(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    return cli.run("trades", parse_args(argv), bench)


if __name__ == "__main__":
    sys.exit(main())
