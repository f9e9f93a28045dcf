"""Benchmark: ``buyShares`` through the whole HTTP stack, on one market and on many.

    PYTHONPATH=. .venv/bin/python -m bench.trades [--users 32] [--concurrency 16]
        [--markets 16] [--requests 1000] [--rounds 4] [--warmup 64]
        [--min-amount 1.00] [--max-amount 3.00] [--time-limit 240]
        [--database-url postgres://…  (an empty database) | --postgres]

It builds a fresh database (a temporary SQLite file by default) with the demo data, starts the
real app (``app:create_app``) under uvicorn on a loopback port, logs in the demo admin, creates
1 + ``--markets`` two-outcome markets (liquidity 1000.00) and signs ``--users`` traders up, all
before timing. Then, in ``--rounds`` rounds, it times three batches of the same size with the
same tokens and concurrency:

* ``read``: ``{ me { balance } }``, the baseline (machines here are noisy: read the ratios);
* ``one market``: every trader buys small amounts on ONE market (they queue on its row lock);
* ``many markets``: the same traders spread at random over ``--markets`` other markets.

A trade counts only if it is HTTP 200 with no ``errors`` and a trade; anything else is a
failure and is reported by kind. On PostgreSQL a sampler watches ``pg_stat_activity`` for
backends waiting on locks. Afterwards it reads the server's log (``agora.*`` at INFO: the
trade retries of ``agora.trading``), checks every trader's wallet and trades in the database
against what the client saw succeed, and runs ``python -m markets.audit`` on the database;
exit status 1 on any failure, mismatch or audit problem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
from tortoise import Tortoise

from bench.article_page import (
    HEADERS,
    ROOT,
    Target,
    add_database_arguments,
    ensure_empty_postgres,
    free_port,
    log_tail,
    percentile,
    run_on_chosen_database,
    stop_server,
    wait_ready,
)
from db.config import tortoise_config
from db.sql import fetch_dicts
from settings import Settings

PASSWORD = "bench-password-1"
ADMIN = ("admin", "demo-password")  # the demo admin (demo/data/users.toml)

LOG_IN = """
mutation LogIn($input: LogInInput!) {
  logIn(input: $input) { token user { role } errors { code message } }
}
"""
SIGN_UP = """
mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) { token user { id } errors { code message } }
}
"""
CREATE_MARKET = """
mutation CreateMarket($input: CreateMarketInput!) {
  createMarket(input: $input) { market { id slug outcomes { id label } } errors { code message } }
}
"""
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
SCENARIOS = (READ, ONE, MANY)

# The server's logging: agora.* at INFO (trade retries), everything else at WARNING.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {"agora": {"level": "INFO"}},
}
RETRY_LINE = re.compile(r"retrying a trade after (\w+)")


# -- the server ---------------------------------------------------------------------------------


def start_app(target: Target, database_url: str, folder: Path) -> None:
    """``article_page.start_server`` plus a log config and the sign-up limit raised."""
    target.port = free_port()
    target.log = folder / f"{target.name}.log"
    log_config = folder / "logging.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        AGORA_ENV="test",
        LOG_LEVEL="INFO",
        SIGNUP_RATE_PER_ADDRESS="100000/60",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        target.factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(target.port),
        "--log-config",
        str(log_config),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        "600",
    ]
    with target.log.open("wb") as log:
        target.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


# -- calls --------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Trader:
    index: int
    username: str
    token: str
    user_id: str  # global ID

    @property
    def headers(self) -> dict[str, str]:
        return {**HEADERS, "authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Market:
    id: str
    slug: str
    outcome_ids: list[str]


@dataclass(frozen=True)
class Call:
    """One planned request: who sends it, its body and (for a buy) the credits it spends."""

    trader: int
    body: bytes
    cents: int = 0


def body(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


class Planner:
    """Deterministic requests: traders in turn (so spending is even), random amounts/outcomes."""

    def __init__(self, users: int, min_cents: int, max_cents: int, seed: int) -> None:
        self.users = users
        self.min_cents, self.max_cents = min_cents, max_cents
        self.rng = random.Random(seed)
        self.next_trader = 0

    def _trader(self) -> int:
        trader = self.next_trader % self.users
        self.next_trader += 1
        return trader

    def reads(self, count: int) -> list[Call]:
        return [Call(i % self.users, body(ME)) for i in range(count)]

    def buys(self, count: int, markets: list[Market]) -> list[Call]:
        calls = []
        for _ in range(count):
            market = self.rng.choice(markets)
            cents = self.rng.randint(self.min_cents, self.max_cents)
            variables = {
                "input": {"outcomeId": self.rng.choice(market.outcome_ids), "amount": _money(cents)}
            }
            calls.append(Call(self._trader(), body(BUY, variables), cents))
        return calls


def check_read(payload: Any) -> str:
    """ "" if ``{ me { balance } }`` answered a balance, else what is wrong."""
    if payload.get("errors"):
        return "GraphQL error: " + _error_text(payload["errors"][0])
    me = (payload.get("data") or {}).get("me")
    if not me or me.get("balance") is None:
        return "no balance in the answer"
    return ""


def check_buy(payload: Any) -> str:
    """ "" if the buy executed, else what is wrong (a refusal, an error, no trade)."""
    if payload.get("errors"):
        return "GraphQL error: " + _error_text(payload["errors"][0])
    result = (payload.get("data") or {}).get("buyShares")
    if result is None:
        return "buyShares is null"
    if result.get("errors"):
        first = result["errors"][0]
        return f"refused {first.get('code')}: {first.get('message')}"
    if not result.get("trade"):
        return "no trade and no error"
    return ""


def _error_text(error: Any) -> str:
    code = (error.get("extensions") or {}).get("code", "?")
    return f"{code}: {str(error.get('message'))[:200]}"


# -- load ---------------------------------------------------------------------------------------


@dataclass
class LockStats:
    """What pg_stat_activity showed while a batch ran (PostgreSQL only)."""

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

    def __init__(self, conn: Any, interval: float = 0.02) -> None:
        self.conn = conn
        self.interval = interval

    async def watch(self, stop: asyncio.Event) -> LockStats:
        stats = LockStats()
        while not stop.is_set():
            rows = await self.conn.fetch(self.QUERY)
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


@dataclass
class Batch:
    """One timed run of calls: latencies of the successes, failures by kind."""

    scenario: str
    planned: int
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    capped: bool = False
    server_cpu: float = math.nan
    client_cpu: float = math.nan
    locks: LockStats | None = None
    spent: Counter[int] = field(default_factory=Counter)  # trader -> cents of successful buys
    trades: Counter[int] = field(default_factory=Counter)  # trader -> successful buys
    unknown: int = 0  # requests cut off at the hard cap: did they commit?


async def run_batch(
    client: httpx.AsyncClient,
    target: Target,
    traders: list[Trader],
    scenario: str,
    calls: list[Call],
    concurrency: int,
    time_cap: float,
    sampler: LockSampler | None = None,
) -> Batch:
    """``calls`` from ``concurrency`` workers; no new request after ``time_cap`` seconds."""
    check: Callable[[Any], str] = check_read if scenario == READ else check_buy
    url = target.base_url + "/graphql"
    batch = Batch(scenario, len(calls))
    headers = [trader.headers for trader in traders]
    issued = 0
    in_flight = 0
    stop = asyncio.Event()
    watcher = asyncio.create_task(sampler.watch(stop)) if sampler else None
    server_cpu, client_cpu = target.cpu_seconds(), time.process_time()
    start = time.perf_counter()
    deadline = start + time_cap

    async def worker() -> None:
        nonlocal issued, in_flight
        while issued < len(calls) and time.perf_counter() < deadline:
            call = calls[issued]
            issued += 1
            in_flight += 1
            began = time.perf_counter()
            try:
                response = await client.post(url, content=call.body, headers=headers[call.trader])
                if response.status_code != 200:
                    problem = f"HTTP {response.status_code}: {response.text[:200]}"
                else:
                    problem = check(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            finally:
                in_flight -= 1
            ended = time.perf_counter()
            if problem:
                batch.failures[problem] += 1
            else:
                batch.latencies.append(ended - began)
                if call.cents:
                    batch.spent[call.trader] += call.cents
                    batch.trades[call.trader] += 1

    try:
        async with asyncio.timeout(time_cap + 60):
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    except TimeoutError:
        batch.unknown = in_flight
        batch.failures["cut off at the hard time cap (outcome unknown)"] += in_flight
    batch.elapsed = time.perf_counter() - start
    batch.capped = issued < len(calls)
    batch.server_cpu = target.cpu_seconds() - server_cpu
    batch.client_cpu = time.process_time() - client_cpu
    if watcher is not None:
        stop.set()
        batch.locks = await watcher
    return batch


@dataclass
class Summary:
    scenario: str
    planned: int
    ok: int
    failed: int
    rate: float
    p50_ms: float
    p99_ms: float
    round_rates: list[float]
    capped: bool
    server_cpu_ms: float
    client_cpu_share: float
    failures: Counter[str]
    locks: LockStats | None


def summarise(scenario: str, batches: list[Batch]) -> Summary:
    latencies = sorted(lat for b in batches for lat in b.latencies)
    elapsed = sum(b.elapsed for b in batches)
    failures: Counter[str] = Counter()
    locks: LockStats | None = None
    for b in batches:
        failures.update(b.failures)
        if b.locks is not None:
            locks = locks or LockStats()
            locks.merge(b.locks)
    return Summary(
        scenario=scenario,
        planned=sum(b.planned for b in batches),
        ok=len(latencies),
        failed=sum(failures.values()),
        rate=_ratio(len(latencies), elapsed),
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        round_rates=[_ratio(len(b.latencies), b.elapsed) for b in batches],
        capped=any(b.capped for b in batches),
        server_cpu_ms=_ratio(sum(b.server_cpu for b in batches) * 1000, len(latencies)),
        client_cpu_share=_ratio(sum(b.client_cpu for b in batches), elapsed),
        failures=failures,
        locks=locks,
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# -- set-up through the API ---------------------------------------------------------------------


async def graphql(
    client: httpx.AsyncClient,
    target: Target,
    query: str,
    variables: dict[str, Any],
    field_name: str,
    token: str | None = None,
) -> dict[str, Any]:
    """Run one set-up operation; any error or refusal is fatal."""
    headers = dict(HEADERS)
    if token:
        headers["authorization"] = f"Bearer {token}"
    response = await client.post(
        target.base_url + "/graphql", content=body(query, variables), headers=headers
    )
    if response.status_code != 200:
        raise RuntimeError(f"{field_name}: HTTP {response.status_code}: {response.text[:500]}")
    payload = response.json()
    result = (payload.get("data") or {}).get(field_name)
    if payload.get("errors") or not result or result.get("errors"):
        raise RuntimeError(f"{field_name} failed: {json.dumps(payload)[:1000]}")
    assert isinstance(result, dict)
    return result


async def bounded(jobs: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def set_up(
    client: httpx.AsyncClient, target: Target, users: int, markets: int, tag: str
) -> tuple[list[Trader], list[Market]]:
    """Log the demo admin in, create 1 + ``markets`` markets, sign ``users`` traders up."""
    login = await graphql(
        client,
        target,
        LOG_IN,
        {"input": {"username": ADMIN[0], "password": ADMIN[1]}},
        "logIn",
    )
    admin_token = str(login["token"])
    closes_at = (datetime.now(UTC) + timedelta(days=2)).isoformat().replace("+00:00", "Z")

    def market_job(i: int) -> Callable[[], Awaitable[dict[str, Any]]]:
        variables = {
            "input": {
                "question": f"Benchmark {tag} market {i}: will the load test finish?",
                "description": "Created by bench.trades.",
                "resolutionCriteria": "Never resolved: a benchmark market.",
                "outcomes": ["Yes", "No"],
                "closesAt": closes_at,
                "liquidity": "1000.00",
            }
        }
        return lambda: graphql(
            client, target, CREATE_MARKET, variables, "createMarket", admin_token
        )

    def trader_job(i: int) -> Callable[[], Awaitable[dict[str, Any]]]:
        variables = {
            "input": {
                "username": f"bench_{tag}_{i}",
                "password": PASSWORD,
                "displayName": f"Bench Trader {i}",
            }
        }
        return lambda: graphql(client, target, SIGN_UP, variables, "signUp")

    created = await bounded([market_job(i) for i in range(markets + 1)], 4)
    signed = await bounded([trader_job(i) for i in range(users)], 4)
    market_list = [
        Market(
            str(r["market"]["id"]),
            str(r["market"]["slug"]),
            [str(o["id"]) for o in r["market"]["outcomes"]],
        )
        for r in created
    ]
    traders = [
        Trader(i, f"bench_{tag}_{i}", str(r["token"]), str(r["user"]["id"]))
        for i, r in enumerate(signed)
    ]
    return traders, market_list


async def balances(
    client: httpx.AsyncClient, target: Target, traders: list[Trader]
) -> dict[int, int]:
    """Each trader's balance in cents, via ``me { balance }``."""
    result: dict[int, int] = {}
    for trader in traders:
        response = await client.post(
            target.base_url + "/graphql", content=body(ME), headers=trader.headers
        )
        payload = response.json()
        problem = check_read(payload) if response.status_code == 200 else response.text[:300]
        if problem:
            raise RuntimeError(f"balance of {trader.username}: {problem}")
        result[trader.index] = _cents(str(payload["data"]["me"]["balance"]))
    return result


# -- checks after the run -----------------------------------------------------------------------


async def database_facts(
    settings: Settings, tag: str
) -> tuple[str, dict[str, tuple[int, int, int]]]:
    """The database version, and per bench trader: (wallet cents, trades, cents traded)."""
    await Tortoise.init(config=tortoise_config(settings))
    try:
        if settings.is_sqlite:
            rows = await fetch_dicts("SELECT sqlite_version() AS v")
            version = f"SQLite {rows[0]['v']}"
        else:
            rows = await fetch_dicts("SELECT current_setting('server_version') AS v")
            version = f"PostgreSQL {rows[0]['v']}"
        rows = await fetch_dicts(
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
        return version, facts
    finally:
        await Tortoise.close_connections()


def run_audit(database_url: str) -> tuple[int, str]:
    """``python -m markets.audit`` on the benchmark database: (exit status, its output)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        AGORA_ENV="test",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    done = subprocess.run(
        [sys.executable, "-m", "markets.audit"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def read_log(target: Target) -> tuple[Counter[str], list[str]]:
    """Trade retries by cause, and the server's warning/error lines."""
    if target.log is None or not target.log.exists():
        return Counter(), []
    retries: Counter[str] = Counter()
    loud: list[str] = []
    for line in target.log.read_text(errors="replace").splitlines():
        match = RETRY_LINE.search(line)
        if match:
            retries[match.group(1)] += 1
        elif " WARNING " in line or " ERROR " in line or " CRITICAL " in line:
            loud.append(line)
    return retries, loud


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
    add_database_arguments(parser)
    args = parser.parse_args(argv)
    if min(args.users, args.concurrency, args.markets, args.requests, args.rounds) < 1:
        parser.error("--users, --concurrency, --markets, --requests and --rounds must be >= 1")
    if args.warmup < 0 or args.time_limit <= 0:
        parser.error("--warmup must be >= 0 and --time-limit positive")
    if args.min_amount > args.max_amount:
        parser.error("--min-amount must not exceed --max-amount")
    if args.database_url and not args.database_url.startswith(
        ("postgres://", "postgresql://", "asyncpg://")
    ):
        parser.error("--database-url must be a postgres:// URL (SQLite is the default)")
    return args


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def bench(args: argparse.Namespace, database_url: str, folder: Path) -> int:
    from app import prepare_database

    settings = Settings(database_url=database_url, env="test")
    if not settings.is_sqlite:
        await ensure_empty_postgres(database_url)
    print(f"preparing the database ({'SQLite' if settings.is_sqlite else 'PostgreSQL'}) …")
    began = time.perf_counter()
    await prepare_database(settings)
    print(f"  migrated and seeded in {time.perf_counter() - began:.1f}s")

    tag = uuid.uuid4().hex[:6]
    target = Target("app", "app:create_app", "/graphql")
    sampler_conn: Any = None
    results: dict[str, list[Batch]] = {name: [] for name in SCENARIOS}
    warm: list[Batch] = []
    problems: list[str] = []
    try:
        start_app(target, database_url, folder)
        await wait_ready(target)
        print(f"server: pid {target.process.pid if target.process else '?'} on :{target.port}")
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
            began = time.perf_counter()
            traders, markets = await set_up(client, target, args.users, args.markets, tag)
            one, many = markets[:1], markets[1:]
            start_balances = await balances(client, target, traders)
            print(
                f"set up in {time.perf_counter() - began:.1f}s: {len(markets)} markets "
                f"(1 + {len(many)}, 2 outcomes, liquidity 1000.00), {len(traders)} traders "
                f"with {_money(min(start_balances.values()))} each or more"
            )

            planner = Planner(args.users, args.min_amount, args.max_amount, args.seed)
            per_round = split(args.requests, args.rounds)
            buys = args.warmup + 2 * args.requests
            worst = math.ceil(buys / args.users) * args.max_amount
            if worst > min(start_balances.values()):
                print(
                    f"a trader could spend {_money(worst)} but holds "
                    f"{_money(min(start_balances.values()))}: lower --requests or the amounts"
                )
                return 2

            if not settings.is_sqlite:
                import asyncpg

                sampler_conn = await asyncpg.connect(
                    "postgresql://" + database_url.split("://", 1)[1]
                )
            sampler = LockSampler(sampler_conn) if sampler_conn is not None else None

            if args.warmup:
                warm.append(
                    await run_batch(
                        client,
                        target,
                        traders,
                        READ,
                        planner.reads(args.warmup),
                        args.concurrency,
                        60.0,
                    )
                )
                warm.append(
                    await run_batch(
                        client,
                        target,
                        traders,
                        MANY,
                        planner.buys(args.warmup, markets),
                        args.concurrency,
                        60.0,
                    )
                )
                for batch in warm:
                    if batch.failures:
                        print(f"warm-up failures ({batch.scenario}): {dict(batch.failures)}")
                        problems.append("warm-up failures")
            cap = args.time_limit / (len(SCENARIOS) * args.rounds)
            print(
                f"load: {args.requests} requests per scenario in {args.rounds} rounds "
                f"(read, one, many), concurrency {args.concurrency}, {args.users} traders, "
                f"buys of {_money(args.min_amount)}–{_money(args.max_amount)}, "
                f"warm-up {args.warmup} reads + {args.warmup} buys, cap {cap:.0f}s per batch"
            )
            for count in per_round:
                plans = {
                    READ: planner.reads(count),
                    ONE: planner.buys(count, one),
                    MANY: planner.buys(count, many),
                }
                for scenario in SCENARIOS:
                    batch = await run_batch(
                        client,
                        target,
                        traders,
                        scenario,
                        plans[scenario],
                        args.concurrency,
                        cap,
                        sampler,
                    )
                    results[scenario].append(batch)
                    print(
                        f"  {scenario:<13} {len(batch.latencies):>5} ok "
                        f"{sum(batch.failures.values()):>4} failed "
                        f"{_ratio(len(batch.latencies), batch.elapsed):>8.1f}/s"
                        + ("  (time cap hit)" if batch.capped else "")
                    )
            end_balances = await balances(client, target, traders)
        deadlocks = await pg_counters(sampler_conn)
    finally:
        if sampler_conn is not None:
            await sampler_conn.close()
        stop_server(target)

    summaries = [summarise(name, batches) for name, batches in results.items()]
    version, facts = await database_facts(settings, tag)
    report(summaries, version, args, settings)
    if deadlocks:
        print(f"\nPostgreSQL counters for the database (whole run): {deadlocks}")

    # -- what the server logged
    retries, loud = read_log(target)
    print()
    if retries:
        total = sum(retries.values())
        print(f"agora.trading retried {total} trades: {dict(retries)}")
    else:
        print("agora.trading logged no retries")
    if loud:
        print(f"the server logged {len(loud)} warnings/errors; the first:")
        for line in loud[:10]:
            print(f"  {line[:300]}")
        problems.append("server errors logged")
    if target.process is not None and target.process.returncode not in (0, -15, None):
        print(f"server exit status {target.process.returncode}:\n{log_tail(target)}")

    # -- failures
    all_batches = [*warm, *(b for bs in results.values() for b in bs)]
    for summary in summaries:
        if summary.failures:
            problems.append(f"{summary.failed} failed {summary.scenario} requests")
            print(f"\n{summary.failed} {summary.scenario} requests failed:")
            for kind, n in summary.failures.most_common(10):
                print(f"  {n:>5} × {kind}")

    # -- money: client tallies vs wallets, trades and the ledger
    spent: Counter[int] = Counter()
    trades: Counter[int] = Counter()
    for batch in all_batches:
        spent.update(batch.spent)
        trades.update(batch.trades)
    unknown = sum(b.unknown for b in all_batches)
    mismatches = []
    for trader in traders:
        expected = start_balances[trader.index] - spent[trader.index]
        wallet, count, cents = facts.get(trader.username, (-1, -1, -1))
        if (wallet, count, cents) != (expected, trades[trader.index], spent[trader.index]) or (
            end_balances[trader.index] != expected
        ):
            mismatches.append(
                f"{trader.username}: client saw {trades[trader.index]} buys for "
                f"{_money(spent[trader.index])} (balance {_money(expected)}); API balance "
                f"{_money(end_balances[trader.index])}; database: {count} trades for "
                f"{_money(cents)}, wallet {_money(wallet)}"
            )
    print()
    if mismatches:
        problems.append(f"{len(mismatches)} traders' wallets disagree with the client")
        print(f"{len(mismatches)} traders disagree with what the client saw succeed:")
        for line in mismatches[:10]:
            print(f"  {line}")
        if unknown:
            print(f"  ({unknown} requests were cut off at the hard cap and may have committed)")
    else:
        print(
            f"wallets: all {len(traders)} traders' balances (API and database), trade counts "
            f"and amounts match the {sum(trades.values())} successful buys "
            f"({_money(sum(spent.values()))}) the client saw"
        )

    status, output = run_audit(database_url)
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

    if problems:
        print(f"\nFAILED: {'; '.join(problems)}")
        return 1
    return 0


async def pg_counters(conn: Any) -> dict[str, int]:
    """Deadlocks, rollbacks and commits of the benchmark database (PostgreSQL; else {})."""
    if conn is None:
        return {}
    await asyncio.sleep(1.5)  # backends flush their statistics about once a second
    row = await conn.fetchrow(
        "SELECT deadlocks, xact_rollback, xact_commit FROM pg_stat_database "
        "WHERE datname = current_database()"
    )
    return {key: int(row[key]) for key in ("deadlocks", "xact_rollback", "xact_commit")}


def report(
    summaries: list[Summary], version: str, args: argparse.Namespace, settings: Settings
) -> None:
    print()
    pool = (
        "one connection" if settings.is_sqlite else f"pool ≤ {os.environ.get('DB_POOL_SIZE', 10)}"
    )
    print(
        f"Python {platform.python_version()}, {version} ({pool}), {os.cpu_count()} cores "
        f"({len(os.sched_getaffinity(0))} usable), {platform.machine()}, "
        f"load average {os.getloadavg()[0]:.2f}; concurrency {args.concurrency}, "
        f"{args.users} traders"
    )
    print()
    header = (
        f"{'scenario':<13} {'ok':>6} {'failed':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'srv CPU ms/req':>14} {'client CPU':>10}"
    )
    print(header + "   req/s per round   backends waiting on a lock (PostgreSQL)")
    print("-" * (len(header) + 45))
    for s in summaries:
        rounds = " ".join(f"{rate:.0f}" for rate in s.round_rates)
        capped = " (capped)" if s.capped else ""
        locks = s.locks.text() if s.locks else "-"
        print(
            f"{s.scenario:<13} {s.ok:>6} {s.failed:>6} {s.rate:>8.1f} {s.p50_ms:>8.1f} "
            f"{s.p99_ms:>8.1f} {s.server_cpu_ms:>14.2f} {s.client_cpu_share:>9.0%}   "
            f"{rounds + capped:<17} {locks}"
        )
    by_name = {s.scenario: s for s in summaries}
    read, one, many = by_name[READ], by_name[ONE], by_name[MANY]
    print()
    print(f"many / one market throughput   {_ratio(many.rate, one.rate):6.2f}x")
    print(f"one market / read throughput   {_ratio(one.rate, read.rate):6.2f}x")
    print(f"many markets / read throughput {_ratio(many.rate, read.rate):6.2f}x")
    print(
        f"p50 vs read: one {_ratio(one.p50_ms, read.p50_ms):.2f}x, "
        f"many {_ratio(many.p50_ms, read.p50_ms):.2f}x; p99 vs read: one "
        f"{_ratio(one.p99_ms, read.p99_ms):.2f}x, many {_ratio(many.p99_ms, read.p99_ms):.2f}x"
    )
    for s in summaries:
        if s.locks and s.locks.events:
            print(f"lock wait events during {s.scenario}: {dict(s.locks.events.most_common(5))}")
    print(
        "(client CPU: the load generator's share of one core; near 100% it, not the server, "
        "limits the rate)"
    )


def main(argv: list[str] | None = None) -> int:
    return run_on_chosen_database(parse_args(argv), bench)


if __name__ == "__main__":
    sys.exit(main())
