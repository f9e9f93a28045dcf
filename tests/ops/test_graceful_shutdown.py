"""SIGTERM with real processes: two independent instances (``python -m app.serve``, one worker
each) on two ports over one PostgreSQL and one Redis. Instance A drains: readiness first, still
serving for SHUTDOWN_DELAY_SECONDS, then no new connections, its websocket subscriber closed
with 1012 and its SSE stream ended cleanly, an in-flight trade finished; the subscriber resumes
on B with afterSequence and misses nothing. A second SIGTERM, or the timeout, ends at once.

A trade is held in flight honestly: the test holds the market's row lock in PostgreSQL (the
lock every trade takes first), so the trade waits inside the database as a trade on a busy
market does; DB_TIMEOUT_SECONDS is raised so that the wait isn't answered as a 503.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import prepare_database
from tests.http.test_streams import SSE_ACCEPT, sse_events
from tests.ops.processes import (
    Demo,
    buy,
    demo_of,
    exited,
    market_locked,
    refused,
    start_serve,
    stop,
    trade_count,
    waiting_on_locks,
)
from tests.realtime.test_scaleout import (
    ADDED,
    _next_sequence,
    _post,
    _wait_ready,
)
from tests.services import PostgresServer, RedisServer, create_database, start_redis

RESTART_ERROR = {
    "message": "The server is shutting down: subscribe again, with afterSequence, to resume.",
    "extensions": {"code": "SERVICE_RESTART"},
}


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def database(postgres_server: PostgresServer) -> str:
    """One PostgreSQL database with the demo data for this module's instances (the trades the
    tests cut are rolled back; the comments they post are counted from their sequences)."""
    url = await create_database(postgres_server, f"agora_ops_{uuid.uuid4().hex[:10]}")
    await prepare_database(url, demo=True)
    return url


async def subscribed(address: str, article_id: str, after: int) -> Any:
    ws = await websockets.connect(
        f"ws://{address}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
    )
    await ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": ADDED, "variables": {"a": article_id, "after": after}},
            }
        )
    )
    return ws


async def sse_stream(address: str, article_id: str, after: int) -> str:
    """An SSE subscription to the article's comments, read to its end; the whole body (an
    unclean end raises)."""
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream(
            "POST",
            f"http://{address}/graphql",
            json={"query": ADDED, "variables": {"a": article_id, "after": after}},
            headers=SSE_ACCEPT,
        ) as response,
    ):
        assert response.status_code == 200
        return (await response.aread()).decode()


@pytest.fixture
def instances() -> Iterator[list[Any]]:
    """The processes a test starts, stopped whatever happens."""
    started: list[Any] = []
    yield started
    for process in started:
        stop(process)


def common_env(database: str, redis: RedisServer) -> dict[str, str]:
    return {"DATABASE_URL": database, "REDIS_URL": redis.url, "COMMENT_RATE": "1000/1"}


async def test_sigterm_hands_the_subscriber_over_to_the_other_instance(
    database: str, redis: RedisServer, instances: list[Any], tmp_path: Path
) -> None:
    env = common_env(database, redis)
    a, a_address = start_serve(
        {
            **env,
            "SHUTDOWN_DELAY_SECONDS": "3",
            "SHUTDOWN_TIMEOUT_SECONDS": "30",
            "DB_TIMEOUT_SECONDS": "60",
        },
        tmp_path / "a.log",
    )
    b, b_address = start_serve(env, tmp_path / "b.log")
    instances += [a, b]
    assert await _wait_ready(a_address) == {"database": "ok", "redis": "ok"}
    await _wait_ready(b_address)
    demo = await demo_of(b_address)
    start = demo.last_sequence
    ws = await subscribed(a_address, demo.article_id, start)
    sse = asyncio.create_task(sse_stream(a_address, demo.article_id, start))
    posted = [await _post(b_address, demo.token, demo.article_id, "before")]
    seen = [await _next_sequence(ws)]

    async with market_locked(database, demo.market_pk) as lock:
        trades_before = await trade_count(lock)
        trade = asyncio.create_task(buy(a_address, demo.token, demo.outcome_id))
        await waiting_on_locks(lock)
        signalled = time.monotonic()
        a.send_signal(signal.SIGTERM)
        # Out of the load balancer's rotation at once, while still serving.
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"http://{a_address}/readyz")
        assert (ready.status_code, ready.json()) == (
            503,
            {"database": "ok", "redis": "ok", "draining": True},
        )
        posted.append(await _post(b_address, demo.token, demo.article_id, "while A drains"))
        seen.append(await _next_sequence(ws))
        # The delay over: the socket closes with 1012 (nothing else came before it) …
        with pytest.raises(websockets.ConnectionClosed):
            await _next_sequence(ws)
        assert (ws.close_code, ws.close_reason) == (
            1012,
            "Service restart: reconnect and resume with afterSequence",
        )
        assert time.monotonic() - signalled >= 3
        # … the SSE stream ends cleanly, with its reason …
        events = sse_events(await asyncio.wait_for(sse, 10))
        assert events == [
            ("next", {"data": {"commentAdded": {"sequence": posted[0], "body": "before"}}}),
            ("next", {"data": {"commentAdded": {"sequence": posted[1], "body": "while A drains"}}}),
            ("next", {"errors": [RESTART_ERROR]}),
            ("complete", None),
        ]
        # … and A takes no new connection, though its trade still runs.
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as http:
                await http.get(f"http://{a_address}/healthz")
        assert not trade.done() and a.poll() is None
        posted.append(await _post(b_address, demo.token, demo.article_id, "between"))
    # The lock released, the trade in flight on A completes there, and A exits cleanly.
    response = await asyncio.wait_for(trade, 15)
    assert (response.status_code, response.headers["connection"]) == (200, "close")
    assert response.json()["data"]["buyShares"]["errors"] == []
    assert float(response.json()["data"]["buyShares"]["trade"]["shares"]) > 0
    assert (await exited(a, 15, tmp_path / "a.log"))[0] == 0
    async with market_locked(database, demo.market_pk) as lock:
        assert await trade_count(lock) == trades_before + 1

    # The subscriber reconnects to B from the last sequence it saw.
    async with websockets.connect(
        f"ws://{b_address}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
    ) as resumed:
        await resumed.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await resumed.recv())["type"] == "connection_ack"
        await resumed.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": ADDED,
                        "variables": {"a": demo.article_id, "after": seen[-1]},
                    },
                }
            )
        )
        seen.append(await _next_sequence(resumed))
        posted.append(await _post(b_address, demo.token, demo.article_id, "on B"))
        seen.append(await _next_sequence(resumed))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(resumed.recv(), 0.5)  # no duplicate
    assert seen == posted == list(range(start + 1, start + 5))


async def _in_flight_trade(
    database: str, redis: RedisServer, instances: list[Any], tmp_path: Path, shutdown_timeout: int
) -> tuple[Any, str, Demo]:
    a, address = start_serve(
        {
            **common_env(database, redis),
            "SHUTDOWN_TIMEOUT_SECONDS": str(shutdown_timeout),
            "DB_TIMEOUT_SECONDS": "120",
        },
        tmp_path / "a.log",
    )
    instances.append(a)
    await _wait_ready(address)
    return a, address, await demo_of(address)


async def test_a_second_sigterm_ends_at_once(
    database: str, redis: RedisServer, instances: list[Any], tmp_path: Path
) -> None:
    a, address, demo = await _in_flight_trade(
        database, redis, instances, tmp_path, shutdown_timeout=60
    )
    async with market_locked(database, demo.market_pk) as lock:
        before = await trade_count(lock)
        trade = asyncio.create_task(buy(address, demo.token, demo.outcome_id))
        await waiting_on_locks(lock)
        a.send_signal(signal.SIGTERM)
        await asyncio.sleep(1)
        assert a.poll() is None  # draining: waiting for its trade
        a.send_signal(signal.SIGTERM)
        code, took = await exited(a, 5, tmp_path / "a.log")
        assert (code, took < 1.2) == (1, True)
        await refused(trade)
    async with market_locked(database, demo.market_pk) as lock:
        assert await trade_count(lock) == before


async def test_the_shutdown_timeout_ends_what_remains(
    database: str, redis: RedisServer, instances: list[Any], tmp_path: Path
) -> None:
    a, address, demo = await _in_flight_trade(
        database, redis, instances, tmp_path, shutdown_timeout=1
    )
    async with market_locked(database, demo.market_pk) as lock:
        before = await trade_count(lock)
        trade = asyncio.create_task(buy(address, demo.token, demo.outcome_id))
        await waiting_on_locks(lock)
        a.send_signal(signal.SIGTERM)
        code, took = await exited(a, 10, tmp_path / "a.log")
        assert code == 1
        assert 1 <= took < 3
        await refused(trade)
    async with market_locked(database, demo.market_pk) as lock:
        assert await trade_count(lock) == before
