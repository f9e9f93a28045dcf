"""``python -m app.serve`` with WORKERS=2 on PostgreSQL and Redis, real processes: it migrates
once before the workers start, both workers serve, the metrics folder is prepared for them, and
the supervisor's shutdown is bounded (a second SIGTERM reaches the workers; a worker that doesn't
stop is killed)."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import prepare_database
from tests.ops.processes import (
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
    # SHUTDOWN_DELAY_SECONDS (0) + SHUTDOWN_TIMEOUT_SECONDS (1) + the 5 s margin.
    assert code == 1
    assert 6 <= took < 9
    assert not alive(stuck) and not alive(other)
    assert not _is_dir(folder)


def _is_dir(path: Path) -> bool:
    return path.is_dir()


def _exists(path: Path) -> bool:
    return path.exists()
