"""The database goes away under load and comes back: every answer meanwhile is JSON with a code
(HTTP 503, Retry-After, SERVICE_UNAVAILABLE) within DB_TIMEOUT_SECONDS, /readyz says so, service
resumes without restarting the server, and no money appears or vanishes (markets.audit).

The test starts its own PostgreSQL (stopping the suite's shared one would break other tests) and
one uvicorn process on it, and runs a few bounded client loops through two outages:

- *stopped*: ``pg_ctl -m immediate stop`` (every backend dies mid-statement, new connections are
  refused), then ``pg_ctl start`` on the same data directory, port and options;
- *frozen*: every PostgreSQL process gets SIGSTOP (connections open, nothing answers: a network
  partition), then SIGCONT. Here only DB_TIMEOUT_SECONDS bounds the answers.

Before each, the test holds every market row so that the next buys are waiting inside their
trade's transaction (past the token lookup) when the database goes: a mutation mid-flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from tests.conftest import prepare_database
from tests.services import (
    PostgresServer,
    _binary,
    create_database,
    start_app_process,
    start_postgres,
    unavailable,
)

pytestmark = [pytest.mark.slow, pytest.mark.services]

ROOT = Path(__file__).resolve().parents[2]

DB_TIMEOUT_SECONDS = 2
RETRY_AFTER_SECONDS = 3
# While the database is down every request is answered within this many seconds.
LATENCY_BOUND = DB_TIMEOUT_SECONDS + 1.5
# A request that takes this long has hung: a failure, not a wait.
REQUEST_TIMEOUT = 10.0
WARM_UP_SECONDS = 1.5
STOPPED_SECONDS = 5.0
FROZEN_SECONDS = 4.0
RECOVERY_SECONDS = 15.0
STEADY_SECONDS = 1.0
# Each loop's own bounds, whatever happens to the driver.
LOOP_SECONDS = 45.0
LOOP_REQUESTS = 500
# Buys per user stay under one page of trades (100): the newest page holds all of them.
MAX_BUYS = 95
BUY_AMOUNT = Decimal("1.00")

STATS = "{ stats { articleCount } }"
ME = "{ me { username balance } }"
WALLET = "{ me { username balance trades(first: 100) { totalCount nodes { id amount } } } }"
MARKETS = "{ markets(first: 5) { nodes { status outcomes { id } } } }"
BUY = """
mutation($input: BuySharesInput!) {
  buyShares(input: $input) { trade { id amount } balance errors { code message } }
}
"""
LOG_IN = """
mutation($u: String!, $p: String!) {
  logIn(input: {username: $u, password: $p}) { token errors { code } }
}
"""

KINDS = ("anonymous", "authenticated", "mutation", "readyz")


# -- the throwaway PostgreSQL, stopped, started, frozen and thawed by hand -------------------


def _data_dir(server: PostgresServer) -> str:
    return f"{server.folder}/data"


def _options(server: PostgresServer) -> str:
    """The -o options tests.services.start_postgres starts the server with (copied)."""
    return (
        f"-p {server.port} -k {server.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    pg_ctl = _binary("pg_ctl")
    assert pg_ctl is not None
    done = subprocess.run(
        [*server._prefix(), pg_ctl, "-D", _data_dir(server), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, f"pg_ctl {' '.join(args)}: {done.stdout} {done.stderr}"


def stop_postgres(server: PostgresServer) -> None:
    """Kill the server the way a crash does: every backend goes at once, nothing is flushed."""
    _pg_ctl(server, "-m", "immediate", "-w", "stop")


def restart_postgres(server: PostgresServer) -> None:
    """Start the server again on the same data directory, port and options (crash recovery)."""
    _pg_ctl(server, "-o", _options(server), "-l", f"{server.folder}/log", "-w", "-t", "30", "start")


def _postmaster_pid(server: PostgresServer) -> int:
    return int(Path(_data_dir(server), "postmaster.pid").read_text().split()[0])


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def freeze_postgres(server: PostgresServer) -> list[int]:
    """SIGSTOP the postmaster (so it forks nothing more), then every process it started."""
    postmaster = _postmaster_pid(server)
    os.kill(postmaster, signal.SIGSTOP)
    children = _children(postmaster)
    for pid in children:
        os.kill(pid, signal.SIGSTOP)
    return [postmaster, *children]


def thaw_postgres(pids: list[int]) -> None:
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
def own_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[PostgresServer]:
    """A PostgreSQL only this test uses, which it may stop: never the suite's shared server, nor
    an external one (AGORA_TEST_POSTGRES_URL)."""
    if not Path("/proc/self/stat").exists():
        unavailable("freezing PostgreSQL needs /proc to find its processes (Linux)")
    monkeypatch.delenv("AGORA_TEST_POSTGRES_URL", raising=False)
    server = start_postgres()  # skips (via ``unavailable``) without the binaries
    try:
        yield server
    finally:
        server.stop()


# -- the server process ------------------------------------------------------------------------


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def log_tail(self, chars: int = 8000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _start_uvicorn(database_url: str, log: Path) -> Served:
    process, address = start_app_process(
        {
            "DATABASE_URL": database_url,
            "DB_TIMEOUT_SECONDS": str(DB_TIMEOUT_SECONDS),
            "RETRY_AFTER_SECONDS": str(RETRY_AFTER_SECONDS),
        },
        log,
    )
    return Served(process, address, log)


async def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            assert served.process.poll() is None, f"uvicorn exited:\n{served.log_tail()}"
            try:
                if (await http.get(f"http://{served.base}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"uvicorn never became ready:\n{served.log_tail()}")


# -- what the clients saw ---------------------------------------------------------------------


@dataclass
class Seen:
    """One request and its answer (or the transport error instead of one)."""

    kind: str
    who: str
    started: float
    ended: float = 0.0
    status: int | None = None
    retry_after: str | None = None
    text: str = ""
    body: Any = None
    error: str | None = None
    key: str | None = None  # a buy's idempotency key

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def describe(self) -> str:
        return (
            f"{self.kind}/{self.who} at +{self.started:.2f}s ({self.seconds:.2f}s): "
            f"status={self.status} retry-after={self.retry_after} error={self.error} "
            f"body={self.text[:300]!r}"
        )


def is_success(seen: Seen) -> bool:
    if seen.status != 200 or not isinstance(seen.body, dict):
        return False
    if seen.kind == "readyz":
        return seen.body == {"database": "ok"}
    if seen.body.get("errors") or seen.body.get("data") is None:
        return False
    if seen.kind == "mutation":
        payload = seen.body["data"].get("buyShares") or {}
        return payload.get("errors") == [] and payload.get("trade") is not None
    return True


def is_unavailable(seen: Seen) -> bool:
    if seen.status != 503 or not isinstance(seen.body, dict):
        return False
    if seen.kind == "readyz":
        return seen.body == {"database": "down"}
    errors = seen.body.get("errors") or [{}]
    return (
        seen.retry_after == str(RETRY_AFTER_SECONDS)
        and seen.body.get("data") is None
        and (errors[0].get("extensions") or {}).get("code") == "SERVICE_UNAVAILABLE"
    )


@dataclass
class Outage:
    """One outage, in seconds since the load began."""

    name: str
    begin: float  # the fault is injected
    end: float = float("inf")  # the fault is lifted (pg_ctl start / SIGCONT returned)
    lifted_in: float = 0.0  # how long lifting took
    recovered: dict[str, float] = field(default_factory=dict)  # first success per kind
    blocked_buys: int = 0  # buys waiting inside their transaction when it began
    websocket: str = ""
    websocket_seconds: float = 0.0

    def overlaps(self, seen: Seen) -> bool:
        return seen.ended >= self.begin and seen.started <= self.end

    def excuses(self, seen: Seen) -> bool:
        """Whether this outage explains a 503: the request ended after the fault began and
        started before its kind had recovered."""
        recovered = self.recovered.get(seen.kind, float("inf"))
        return seen.ended >= self.begin and seen.started <= recovered


class Load:
    """Bounded client loops; every answer lands in ``seen``."""

    def __init__(self, base: str, tokens: dict[str, str], outcome_id: str) -> None:
        self.base = base
        self.tokens = tokens
        self.outcome_id = outcome_id
        self.origin = time.monotonic()
        self.seen: list[Seen] = []
        self.outages: list[Outage] = []
        self.stop = asyncio.Event()

    def now(self) -> float:
        return time.monotonic() - self.origin

    async def _send(
        self,
        kind: str,
        who: str,
        request: Callable[[], Awaitable[httpx.Response]],
        key: str | None = None,
    ) -> None:
        seen = Seen(kind, who, self.now(), key=key)
        try:
            response = await request()
        except httpx.HTTPError as exc:  # reset, closed, timed out: all failures
            seen.error = f"{type(exc).__name__}: {exc}"
        else:
            seen.status = response.status_code
            seen.retry_after = response.headers.get("retry-after")
            seen.text = response.text
            try:
                seen.body = response.json()
            except ValueError:
                seen.error = "not JSON"
        seen.ended = self.now()
        self.seen.append(seen)
        outage = self.outages[-1] if self.outages else None
        if (
            outage is not None
            and kind not in outage.recovered
            and seen.started >= outage.end
            and is_success(seen)
        ):
            outage.recovered[kind] = seen.ended

    def _graphql(
        self, http: httpx.AsyncClient, who: str, query: str, variables: dict[str, Any]
    ) -> Callable[[], Awaitable[httpx.Response]]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}
        return lambda: http.post(
            f"http://{self.base}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
        )

    async def _loop(self, kind: str, who: str, pause: float, limit: int) -> None:
        deadline = time.monotonic() + LOOP_SECONDS
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http:
            for _ in range(limit):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                key = None
                if kind == "anonymous":
                    request = self._graphql(http, who, STATS, {})
                elif kind == "authenticated":
                    request = self._graphql(http, who, ME, {})
                elif kind == "mutation":
                    key = f"outage-{uuid.uuid4().hex}"
                    buy = {"outcomeId": self.outcome_id, "amount": str(BUY_AMOUNT)}
                    request = self._graphql(
                        http, who, BUY, {"input": {**buy, "idempotencyKey": key}}
                    )
                else:
                    request = lambda: http.get(f"http://{self.base}/readyz")  # noqa: E731
                await self._send(kind, who, request, key)
                await asyncio.sleep(pause)

    def start(self) -> list[asyncio.Task[None]]:
        loops = [
            ("anonymous", "anonymous", 0.05, LOOP_REQUESTS),
            ("anonymous", "anonymous", 0.07, LOOP_REQUESTS),
            ("authenticated", "alice", 0.05, LOOP_REQUESTS),
            ("authenticated", "bob", 0.06, LOOP_REQUESTS),
            ("mutation", "alice", 0.15, MAX_BUYS),
            ("mutation", "bob", 0.17, MAX_BUYS),
            ("readyz", "anonymous", 0.1, LOOP_REQUESTS),
        ]
        return [asyncio.create_task(self._loop(*loop)) for loop in loops]


# -- helpers for the calls outside the load ---------------------------------------------------


async def _data(
    http: httpx.AsyncClient, base: str, query: str, variables: dict[str, Any], token: str = ""
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        f"http://{base}/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _websocket_init(base: str, token: str) -> str:
    """Open a graphql-transport-ws connection and send connection_init with ``token``: what came
    back ("ack", or "close <code>")."""
    async with websockets.connect(
        f"ws://{base}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=REQUEST_TIMEOUT,
    ) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), REQUEST_TIMEOUT))
        except websockets.ConnectionClosed as exc:
            return f"close {exc.rcvd.code if exc.rcvd else None}"
        return "ack" if message.get("type") == "connection_ack" else f"message {message}"


async def _lock_markets(server: PostgresServer, database: str) -> tuple[asyncpg.Connection, int]:
    """Hold every market row until the connection goes; returns once buys wait on it (at most
    two, within 30% of DB_TIMEOUT_SECONDS: a statement's own timeout is half of it, and a buy
    that waited that long on this lock would time out before the outage began)."""
    locker = await asyncpg.connect(
        host=server.host, port=server.port, user=server.user, database=database
    )
    await locker.execute("BEGIN")
    await locker.execute("SELECT id FROM markets FOR UPDATE")
    blocked = 0
    deadline = time.monotonic() + DB_TIMEOUT_SECONDS * 0.3
    while time.monotonic() < deadline and blocked < 2:
        await asyncio.sleep(0.05)
        blocked = await locker.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
    return locker, int(blocked)


async def _wait_recovered(load: Load, tasks: list[asyncio.Task[None]]) -> None:
    deadline = time.monotonic() + RECOVERY_SECONDS
    while time.monotonic() < deadline and len(load.outages[-1].recovered) < len(KINDS):
        if all(task.done() for task in tasks):
            return
        await asyncio.sleep(0.1)


async def _probe_websocket(load: Load, outage: Outage, token: str) -> None:
    started = time.monotonic()
    outage.websocket = await _websocket_init(load.base, token)
    outage.websocket_seconds = time.monotonic() - started


async def _durable_commits(server: PostgresServer, database: str) -> None:
    """start_postgres runs with synchronous_commit=off: a commit is answered before its WAL is
    written, and ``-m immediate`` then loses the last ~0.2 s of answered commits, a 200 for a
    trade that crash recovery forgets. This database's sessions commit durably (ALTER DATABASE
    overrides the command line); fsync=off stays harmless, as only the server process dies."""
    conn = await asyncpg.connect(
        host=server.host, port=server.port, user=server.user, database="postgres"
    )
    try:
        await conn.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = on')
    finally:
        await conn.close()
    conn = await asyncpg.connect(
        host=server.host, port=server.port, user=server.user, database=database
    )
    try:
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await conn.close()


def _audit(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "markets.audit"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- the test ---------------------------------------------------------------------------------


async def test_database_outage_under_load(own_postgres: PostgresServer, tmp_path: Path) -> None:
    database = f"agora_outage_{uuid.uuid4().hex[:10]}"
    url = await create_database(own_postgres, database)
    await _durable_commits(own_postgres, database)
    await prepare_database(url, demo=True)
    served = _start_uvicorn(url, tmp_path / "uvicorn.log")
    try:
        await _run(own_postgres, served, url, database)
    except BaseException:
        print(f"\n--- uvicorn output (tail) ---\n{served.log_tail()}")
        raise
    finally:
        served.process.terminate()
        try:
            served.process.wait(10)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait(5)


async def _run(server: PostgresServer, served: Served, url: str, database: str) -> None:
    await _wait_ready(served)
    base = served.base
    pid = served.process.pid
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http:
        tokens: dict[str, str] = {}
        for who in ("alice", "bob"):
            login = await _data(http, base, LOG_IN, {"u": who, "p": "demo-password"})
            assert login["logIn"]["errors"] == [], login
            tokens[who] = login["logIn"]["token"]
        markets = (await _data(http, base, MARKETS, {}))["markets"]["nodes"]
        open_markets = [m for m in markets if m["status"] == "OPEN"]
        assert open_markets, markets
        outcome_id = open_markets[0]["outcomes"][0]["id"]
        before = {who: (await _data(http, base, WALLET, {}, tokens[who]))["me"] for who in tokens}
    assert (await _websocket_init(base, tokens["alice"])) == "ack"

    load = Load(base, tokens, outcome_id)
    tasks = load.start()
    try:
        await asyncio.sleep(WARM_UP_SECONDS)

        # 1. Stopped: refused connections.
        locker, blocked = await _lock_markets(server, database)
        stopped = Outage("stopped", load.now(), blocked_buys=blocked)
        load.outages.append(stopped)
        await asyncio.to_thread(stop_postgres, server)
        locker.terminate()
        await _probe_websocket(load, stopped, tokens["alice"])
        await asyncio.sleep(max(0.0, stopped.begin + STOPPED_SECONDS - load.now()))
        lifting = load.now()
        await asyncio.to_thread(restart_postgres, server)
        stopped.end, stopped.lifted_in = load.now(), load.now() - lifting
        await _wait_recovered(load, tasks)
        await asyncio.sleep(STEADY_SECONDS)

        # 2. Frozen: connections open, nothing answers.
        locker, blocked = await _lock_markets(server, database)
        frozen = Outage("frozen", load.now(), blocked_buys=blocked)
        load.outages.append(frozen)
        pids = freeze_postgres(server)
        try:
            await _probe_websocket(load, frozen, tokens["alice"])
            await asyncio.sleep(max(0.0, frozen.begin + FROZEN_SECONDS - load.now()))
        finally:
            lifting = load.now()
            thaw_postgres(pids)
        frozen.end, frozen.lifted_in = load.now(), load.now() - lifting
        try:
            await locker.close(timeout=REQUEST_TIMEOUT)  # its transaction holds the markets
        finally:
            locker.terminate()
        await _wait_recovered(load, tasks)
        await asyncio.sleep(STEADY_SECONDS)
    finally:
        load.stop.set()
        await asyncio.gather(*tasks)

    assert served.process.poll() is None and served.process.pid == pid, "uvicorn restarted"
    seen = load.seen

    # -- figures ------------------------------------------------------------------------------
    figures: dict[str, Any] = {
        "responses": {k: sum(1 for s in seen if s.kind == k) for k in KINDS},
        "transport errors": sum(1 for s in seen if s.error is not None),
    }
    for outage in load.outages:
        during = [s for s in seen if outage.overlaps(s)]
        figures[outage.name] = {
            "seconds": round(outage.end - outage.begin, 2),
            "requests overlapping": len(during),
            "503": {k: sum(1 for s in during if s.kind == k and is_unavailable(s)) for k in KINDS},
            "max latency (s)": round(max((s.seconds for s in during), default=0.0), 3),
            "lifting took (s)": round(outage.lifted_in, 3),
            "recovered after lifting (s)": {
                k: round(t - outage.end, 3) for k, t in sorted(outage.recovered.items())
            },
            "buys waiting inside their transaction": outage.blocked_buys,
            "websocket connection_init": f"{outage.websocket} in {outage.websocket_seconds:.2f}s",
        }
    print("\noutage figures:", json.dumps(figures, indent=1))

    # -- every answer: JSON with a code, 200 or (in an outage) 503 ------------------------------
    failures = []
    for s in seen:
        if s.error is not None:
            failures.append(f"transport/format failure: {s.describe()}")
        elif is_success(s):
            continue
        elif is_unavailable(s):
            if not any(outage.excuses(s) for outage in load.outages):
                failures.append(f"503 outside an outage: {s.describe()}")
        else:
            failures.append(f"neither a success nor a proper 503: {s.describe()}")
    for outage in load.outages:
        for s in seen:
            if outage.overlaps(s) and s.seconds > LATENCY_BOUND:
                failures.append(f"over {LATENCY_BOUND}s while {outage.name}: {s.describe()}")
    assert not failures, f"{len(failures)} bad responses:\n" + "\n".join(failures[:40])

    for outage in load.outages:
        for kind in KINDS:
            assert figures[outage.name]["503"][kind] > 0, f"no 503 for {kind} ({outage.name})"
        assert set(outage.recovered) == set(KINDS), f"{outage.name}: not all kinds recovered"
        assert outage.websocket == "close 1013", (outage.name, outage.websocket)
        assert outage.websocket_seconds <= LATENCY_BOUND, (outage.name, outage.websocket_seconds)
    assert (await _websocket_init(base, tokens["alice"])) == "ack"

    # -- money: every buy either committed or moved nothing -------------------------------------
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http:
        for who, token in tokens.items():
            buys = [s for s in seen if s.kind == "mutation" and s.who == who]
            succeeded = [s for s in buys if is_success(s)]
            lost = [s for s in buys if not is_success(s)]
            assert len(buys) < 100, len(buys)
            answered = {s.body["data"]["buyShares"]["trade"]["id"] for s in succeeded}
            assert len(answered) == len(succeeded), (who, "one trade answered twice")
            for s in succeeded:
                assert Decimal(s.body["data"]["buyShares"]["trade"]["amount"]) == BUY_AMOUNT, s

            after = (await _data(http, base, WALLET, {}, token))["me"]
            committed = after["trades"]["totalCount"] - before[who]["trades"]["totalCount"]
            newest = after["trades"]["nodes"][: max(committed, 0)]
            new_ids = {t["id"] for t in newest}
            assert answered <= new_ids, (who, "answered, not committed", answered - new_ids)
            assert len(succeeded) <= committed <= len(buys), (who, committed, len(buys))
            assert all(Decimal(t["amount"]) == BUY_AMOUNT for t in newest), newest
            spent = sum((Decimal(t["amount"]) for t in newest), Decimal("0"))
            assert Decimal(after["balance"]) == Decimal(before[who]["balance"]) - spent, (
                who,
                before[who]["balance"],
                after["balance"],
                spent,
            )

            # A lost answer is retried with its idempotency key: the first trade if it had
            # committed, a new one if nothing had moved. Then every buy is exactly one trade.
            replayed = 0
            for s in lost:
                buy = {"outcomeId": outcome_id, "amount": str(BUY_AMOUNT), "idempotencyKey": s.key}
                payload = (await _data(http, base, BUY, {"input": buy}, token))["buyShares"]
                assert payload["errors"] == [], payload
                replayed += payload["trade"]["id"] in new_ids
            assert replayed == committed - len(succeeded), (who, replayed, committed)
            final = (await _data(http, base, WALLET, {}, token))["me"]
            total = final["trades"]["totalCount"] - before[who]["trades"]["totalCount"]
            assert total == len(buys), (who, total, len(buys))
            expected = Decimal(before[who]["balance"]) - BUY_AMOUNT * len(buys)
            assert Decimal(final["balance"]) == expected, (who, final["balance"], expected)
            print(
                f"{who}: {len(buys)} buys, {len(succeeded)} answered, {committed} committed "
                f"before the retries ({replayed} of {len(lost)} lost answers had), balance "
                f"{before[who]['balance']} -> {final['balance']}"
            )

    audit = await asyncio.to_thread(_audit, url)
    print(audit.stdout)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert re.search(r"^sum\s+0\.00$", audit.stdout, re.MULTILINE), audit.stdout
    assert "OK:" in audit.stdout, audit.stdout
