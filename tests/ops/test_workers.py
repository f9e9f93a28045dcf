"""``python -m app.serve`` with WORKERS=2 on PostgreSQL and Redis, real processes: it migrates
once before the workers start, both workers serve, the metrics folder is prepared for them, and
the supervisor's shutdown is bounded (a second SIGTERM reaches the workers; a worker that doesn't
stop is killed)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.serve import WORKER_HEADER
from tests.conftest import prepare_database
from tests.ops.processes import (
    ROOT,
    alive,
    buy,
    demo_of,
    environment_of,
    exited,
    market_locked,
    parent_of,
    refused,
    start_serve,
    stop,
    trade_count,
    until,
    waiting_on_locks,
    worker_pids,
)
from tests.realtime.test_scaleout import _gql, _wait_ready
from tests.services import PostgresServer, RedisServer, create_database, start_redis

# Articles in the demo data (README's persisted-query example answers the same).
DEMO_ARTICLES = 50


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def supervisors() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for process in started:
        stop(process)


async def _empty_database(postgres_server: PostgresServer) -> str:
    return await create_database(postgres_server, f"agora_workers_{uuid.uuid4().hex[:10]}")


async def test_two_workers_migrate_once_then_serve_and_stop_cleanly(
    postgres_server: PostgresServer,
    redis: RedisServer,
    supervisors: list[Any],
    tmp_path: Path,
) -> None:
    url = await _empty_database(postgres_server)  # not migrated: the command does it
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_12345.db").write_bytes(b"left by an earlier run")
    (folder / "notes.txt").write_text("not prometheus-client's")
    supervisor, address = start_serve(
        {
            "DATABASE_URL": url,
            "REDIS_URL": redis.url,
            "WORKERS": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(folder),
        },
        tmp_path / "serve.log",
    )
    supervisors.append(supervisor)
    assert await _wait_ready(address) == {"database": "ok", "redis": "ok"}
    pids = await worker_pids(address, 2)
    assert len(pids) == 2 and supervisor.pid not in pids
    assert {parent_of(pid) for pid in pids} == {supervisor.pid}
    # Migrated and seeded once (AGORA_ENV=test loads the demo data into an empty database).
    stats = await _gql(address, "{ stats { articleCount } }", {})
    assert stats == {"stats": {"articleCount": DEMO_ARTICLES}}
    assert not _exists(folder / "counter_12345.db")
    assert _exists(folder / "notes.txt")
    assert {environment_of(pid)["PROMETHEUS_MULTIPROC_DIR"] for pid in pids} == {str(folder)}
    # Each worker's live gauges (open websockets: no labels, so written from the start) …
    live = {folder / f"gauge_livesum_{pid}.db" for pid in pids}
    assert all(_exists(path) for path in live)

    supervisor.send_signal(signal.SIGTERM)
    assert (await exited(supervisor, 15, tmp_path / "serve.log"))[0] == 0
    assert not any(alive(pid) for pid in pids)
    # … are dropped with the worker (metrics.mark_process_dead); the folder is the operator's.
    assert not any(_exists(path) for path in live)
    assert _exists(folder / "notes.txt")


async def _two_workers(
    postgres_server: PostgresServer,
    redis: RedisServer,
    supervisors: list[Any],
    tmp_path: Path,
    **env: str,
) -> tuple[Any, str, str, set[int]]:
    url = await _empty_database(postgres_server)
    await prepare_database(url, demo=True)
    supervisor, address = start_serve(
        {
            "DATABASE_URL": url,
            "REDIS_URL": redis.url,
            "WORKERS": "2",
            "DB_TIMEOUT_SECONDS": "120",
            **env,
        },
        tmp_path / "serve.log",
    )
    supervisors.append(supervisor)
    await _wait_ready(address)
    pids = await worker_pids(address, 2)
    assert len(pids) == 2
    return supervisor, address, url, pids


async def test_a_second_sigterm_to_the_supervisor_reaches_the_workers(
    postgres_server: PostgresServer,
    redis: RedisServer,
    supervisors: list[Any],
    tmp_path: Path,
) -> None:
    supervisor, address, url, pids = await _two_workers(
        postgres_server, redis, supervisors, tmp_path, SHUTDOWN_TIMEOUT_SECONDS="60"
    )
    demo = await demo_of(address)
    async with market_locked(url, demo.market_pk) as lock:
        before = await trade_count(lock)
        trade = asyncio.create_task(buy(address, demo.token, demo.outcome_id))
        await waiting_on_locks(lock)
        supervisor.send_signal(signal.SIGTERM)
        # The idle worker stops; the one with the trade drains on.
        assert await until(lambda: sum(alive(pid) for pid in pids) == 1, 10)
        await asyncio.sleep(0.5)
        assert sum(alive(pid) for pid in pids) == 1
        assert supervisor.poll() is None
        supervisor.send_signal(signal.SIGTERM)
        code, took = await exited(supervisor, 5, tmp_path / "serve.log")
        assert (code, took < 1.5) == (1, True)
        assert not any(alive(pid) for pid in pids)
        await refused(trade)
    async with market_locked(url, demo.market_pk) as lock:
        assert await trade_count(lock) == before


async def test_the_supervisor_kills_a_worker_that_does_not_stop(
    postgres_server: PostgresServer,
    redis: RedisServer,
    supervisors: list[Any],
    tmp_path: Path,
) -> None:
    supervisor, _, _, pids = await _two_workers(
        postgres_server, redis, supervisors, tmp_path, SHUTDOWN_TIMEOUT_SECONDS="1"
    )
    # The supervisor made the metrics folder the workers write to, and removes it at the end.
    folders = {environment_of(pid)["PROMETHEUS_MULTIPROC_DIR"] for pid in pids}
    assert len(folders) == 1
    folder = Path(folders.pop())
    assert folder.name.startswith("agora-metrics-")
    assert _is_dir(folder)
    stuck, other = sorted(pids)
    os.kill(stuck, signal.SIGSTOP)  # can't handle its SIGTERM
    supervisor.send_signal(signal.SIGTERM)
    code, took = await exited(supervisor, 15, tmp_path / "serve.log")
    # SHUTDOWN_DELAY_SECONDS (0) + 2 × SHUTDOWN_TIMEOUT_SECONDS (1) + the 5 s margin.
    assert code == 1
    assert 7 <= took < 10
    assert f"Worker [{stuck}] ended with exit code -9" in (tmp_path / "serve.log").read_text()
    assert not alive(stuck) and not alive(other)
    assert not _is_dir(folder)


def _is_dir(path: Path) -> bool:
    return path.is_dir()


def _exists(path: Path) -> bool:
    return path.exists()


async def _pinned_clients(address: str, pids: set[int]) -> dict[int, httpx.AsyncClient]:
    """One keep-alive HTTP client per worker: connections are opened until each worker has
    answered one (the kernel picks the worker per connection), the others are closed."""
    pinned: dict[int, httpx.AsyncClient] = {}
    for _ in range(400):
        http = httpx.AsyncClient(
            base_url=f"http://{address}", limits=httpx.Limits(max_connections=1)
        )
        pid = int((await http.get("/healthz")).headers[WORKER_HEADER])
        if pid in pinned:
            await http.aclose()
            continue
        pinned[pid] = http
        if set(pinned) == pids:
            return pinned
    raise AssertionError(f"not every worker answered: {sorted(pinned)} of {sorted(pids)}")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics answer, parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _delta(
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    after: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    name: str,
    **labels: str,
) -> float:
    """How much the samples called ``name`` whose labels include ``labels`` moved, summed."""

    def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
        return sum(
            value
            for (sample, sample_labels), value in samples.items()
            if sample == name and set(labels.items()) <= set(sample_labels)
        )

    return total(after) - total(before)


LOG_IN = (
    'mutation LogIn($p: String!) { logIn(input: {username: "bob", password: $p}) '
    "{ token errors { code retryAfterSeconds } } }"
)


async def test_two_workers_share_the_rate_limits_and_sum_their_metrics(
    postgres_server: PostgresServer,
    redis: RedisServer,
    supervisors: list[Any],
    tmp_path: Path,
) -> None:
    """README's burst of failed log-ins (LOGIN_FAILURE_RATE_PER_ACCOUNT 5/900) is refused at
    the sixth whichever worker answers, alternately; /metrics from either worker parses and its
    counters moved by exactly what the session did, on both workers together."""
    supervisor, address, _, pids = await _two_workers(postgres_server, redis, supervisors, tmp_path)
    clients = await _pinned_clients(address, pids)
    first, second = (clients[pid] for pid in sorted(clients))
    try:
        before = _samples((await first.get("/metrics")).text)
        answers = []
        for attempt in range(7):
            http = (first, second)[attempt % 2]
            response = await http.post(
                "/graphql", json={"query": LOG_IN, "variables": {"p": "not-her-password"}}
            )
            assert response.status_code == 200, response.text
            answers.append((int(response.headers[WORKER_HEADER]), response.json()["data"]["logIn"]))
        workers = [pid for pid, _ in answers]
        assert set(workers) == pids and workers[0] != workers[1]
        failed = {
            "token": None,
            "errors": [{"code": "INVALID_CREDENTIALS", "retryAfterSeconds": None}],
        }
        assert [answer for _, answer in answers[:5]] == [failed] * 5
        for _, answer in answers[5:]:
            assert answer["token"] is None
            [error] = answer["errors"]
            assert error["code"] == "RATE_LIMITED"
            assert 170 <= error["retryAfterSeconds"] <= 180
        # A trade on the second worker.
        demo = await demo_of(address)
        trade = await second.post(
            "/graphql",
            json={"query": BUY_ONE, "variables": {"o": demo.outcome_id}},
            headers={"Authorization": f"Bearer {demo.token}"},
        )
        assert trade.json()["data"]["buyShares"]["errors"] == []
        after = _samples((await second.get("/metrics")).text)
    finally:
        for http in clients.values():
            await http.aclose()
    assert (
        _delta(before, after, "agora_rate_limit_refusals_total", rule="login-failure/account") == 2
    )
    assert (
        _delta(before, after, "agora_refusals_total", field="logIn", code="INVALID_CREDENTIALS")
        == 5
    )
    assert _delta(before, after, "agora_refusals_total", field="logIn", code="RATE_LIMITED") == 2
    assert _delta(before, after, "agora_trades_total", side="buy") == 1
    assert _delta(before, after, "agora_trades_total", side="sell") == 0
    assert _delta(before, after, "agora_broker_published_total", kind="odds") == 1
    assert (
        _delta(before, after, "agora_graphql_operations_total", operation="LogIn", type="mutation")
        == 7
    )
    # 7 log-ins, demo_of's log-in and article read (on whichever worker), the trade, one
    # /metrics before: all POST /graphql but the scrape.
    assert _delta(before, after, "agora_http_requests_total", route="/graphql", method="POST") == 10
    assert _delta(before, after, "agora_http_requests_total", route="/metrics", method="GET") == 1
    assert after[("agora_websockets_open", ())] == 0

    supervisor.send_signal(signal.SIGTERM)
    assert (await exited(supervisor, 15, tmp_path / "serve.log"))[0] == 0


BUY_ONE = (
    'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "1.00"}) '
    "{ trade { shares } errors { code } } }"
)


async def test_instances_starting_at_once_migrate_in_turn(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """Two instances of a rollout migrate one empty database at the same moment: they take
    turns (an advisory lock), and both succeed (unserialised, one failed on the other's tables)."""
    url = await _empty_database(postgres_server)
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), "AGORA_ENV": "test"}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "db.migrate",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), 120)
    codes = [p.returncode for p in processes]
    assert codes == [0, 0, 0], [out.decode()[-1500:] for out, _ in outputs]
    conn = await asyncpg.connect(url)
    try:
        applied = await conn.fetchval("SELECT count(*) FROM tortoise_migrations")
    finally:
        await conn.close()
    assert applied == len(list((ROOT / "db" / "migrations").glob("0*.py")))
