"""``python -m app.serve`` in processes of its own, as an operator starts it, and what the tests
need around them: a row lock that holds a trade in flight, the worker that answered."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.serve import WORKER_HEADER
from tests.realtime.test_scaleout import CENTRAL_ASIA, _gql
from tests.services import LOG_FILES, free_port

ROOT = Path(__file__).resolve().parents[2]
BUY = (
    'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "1.00"}) '
    "{ trade { shares } errors { code } } }"
)


def start_serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m app.serve`` on a free port of 127.0.0.1 with ``env`` added to this
    process's environment (AGORA_ENV=test unless set; PROMETHEUS_MULTIPROC_DIR only if
    set there); its output goes to ``log``."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    full_env = {
        **inherited,
        "AGORA_ENV": "test",
        # A loaded CI machine is not a Redis outage.
        "REDIS_LIMITS_TIMEOUT_MS": "2000",
        "PYTHONPATH": str(ROOT),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        **env,
    }
    LOG_FILES.append(log)  # the session's log check reads it
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.serve"],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, f"127.0.0.1:{port}"


async def exited(
    process: subprocess.Popen[Any], seconds: float, log: Path | None = None
) -> tuple[int, float]:
    """Wait (without holding the loop) for ``process`` to exit; its code and how long it
    took. AssertionError if it is still running after ``seconds`` (with the end of ``log``)."""
    began = time.monotonic()
    while process.poll() is None:
        if time.monotonic() - began > seconds:
            tail = log_tail(log) if log is not None else ""
            raise AssertionError(f"process {process.pid} still running after {seconds} s\n{tail}")
        await asyncio.sleep(0.02)
    return process.returncode, time.monotonic() - began


def log_tail(log: Path, chars: int = 3000) -> str:
    """The end of a process's log, for a failure's message."""
    return log.read_text(errors="replace")[-chars:]


async def until(condition: Callable[[], bool], seconds: float) -> bool:
    """Wait (without holding the loop) until ``condition()``; whether it came true in time."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def stop(process: subprocess.Popen[bytes]) -> None:
    """Make sure ``process`` (and, for a supervisor, its workers) is gone."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def parent_of(pid: int) -> int:
    """The parent process of ``pid``."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def environment_of(pid: int) -> dict[str, str]:
    """The environment process ``pid`` started with."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (entry.decode(errors="replace").partition("=") for entry in raw if entry)
    return {name: value for name, _, value in pairs}


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (and isn't a zombie)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


async def worker_pids(address: str, wanted: int, attempts: int = 400) -> set[int]:
    """The worker processes answering on ``address``, from the response header each names
    itself in under AGORA_ENV=test: one new connection per request, until ``wanted`` distinct
    ones answered (the kernel hands each accepted connection to one of them)."""
    seen: set[int] = set()
    for _ in range(attempts):
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"http://{address}/graphql", json={"query": "{ stats { articleCount } }"}
            )
        assert response.status_code == 200, response.text
        seen.add(int(response.headers[WORKER_HEADER]))
        if len(seen) >= wanted:
            break
    return seen


@asynccontextmanager
async def market_locked(database_url: str, market_pk: int) -> AsyncIterator[asyncpg.Connection]:
    """Hold the row lock every trade on ``market_pk`` takes first (``SELECT … FOR UPDATE``),
    so a trade sent meanwhile stays in flight, honestly waiting in PostgreSQL, until the block
    ends (the lock's transaction rolls back, changing nothing)."""
    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("SELECT id FROM markets WHERE id = $1 FOR UPDATE", market_pk)
        try:
            yield conn
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


async def waiting_on_locks(conn: asyncpg.Connection, count: int = 1, seconds: float = 15) -> None:
    """Return once ``count`` statements of this database wait on a lock."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no trade came to wait on the market's lock")


async def trade_count(conn: asyncpg.Connection) -> int:
    """Trades committed so far."""
    count: int = await conn.fetchval("SELECT count(*) FROM trades")
    return count


async def buy(address: str, token: str, outcome_id: str) -> httpx.Response:
    """A buyShares of "1.00" on ``outcome_id`` over HTTP (no client timeout: it may wait)."""
    async with httpx.AsyncClient(timeout=None) as http:
        return await http.post(
            f"http://{address}/graphql",
            json={"query": BUY, "variables": {"o": outcome_id}},
            headers={"Authorization": f"Bearer {token}"},
        )


class Demo:
    """What the tests act with: alice's token, the article, its first market and outcome."""

    def __init__(self, token: str, article: dict[str, Any]) -> None:
        self.token = token
        self.article_id: str = article["id"]
        self.last_sequence: int = article["lastCommentSequence"]
        market = article["markets"][0]
        self.market_pk = market_pk(market["id"])
        self.outcome_id: str = market["outcomes"][0]["id"]


async def demo_of(address: str) -> Demo:
    login = await _gql(
        address,
        'mutation { logIn(input: {username: "alice", password: "demo-password"}) { token } }',
        {},
    )
    article = await _gql(
        address,
        "query($s: String!) { article(slug: $s) { id lastCommentSequence "
        "markets { id outcomes { id } } } }",
        {"s": CENTRAL_ASIA},
    )
    return Demo(login["logIn"]["token"], article["article"])


async def refused(trade: asyncio.Task[httpx.Response]) -> None:
    """The cut trade's client got a 500 or a dropped connection, never a result."""
    try:
        response = await asyncio.wait_for(trade, 10)
    except httpx.HTTPError:
        return
    assert response.status_code == 500, response.text


def market_pk(global_id: str) -> int:
    """The database id of a Market's global id."""
    from api.core.node import from_global_id

    return from_global_id(global_id, "Market")[1]
