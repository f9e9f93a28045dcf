"""Metrics across two real server processes on one PostgreSQL, one Redis and one
``PROMETHEUS_MULTIPROC_DIR``: either process's /metrics is the sum of both (a socket open on B,
a comment posted on A and heard on B, a trade on B, all read from A), and a killed process's live
gauges drop out once it is marked dead while its counts stay."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client import multiprocess

from tests.conftest import prepare_database
from tests.http.test_metrics import Scrape
from tests.realtime.test_scaleout import ADDED, CENTRAL_ASIA, _gql, _post, _wait_ready
from tests.services import (
    PostgresServer,
    RedisServer,
    create_database,
    start_app_process,
    start_redis,
)

BUY = (
    'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "2.00"}) '
    "{ trade { id } errors { code } } }"
)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A throwaway Redis."""
    server = start_redis()
    yield server
    server.stop()


async def scrape(address: str) -> Scrape:
    """``address``'s /metrics, parsed."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://{address}/metrics")
    assert response.status_code == 200, response.text
    return Scrape(response.text)


async def until(address: str, check: Callable[[Scrape], bool], seconds: float = 10) -> Scrape:
    """Scrape ``address`` until ``check`` holds (or time is up): the last scrape."""
    deadline = time.monotonic() + seconds
    while True:
        current = await scrape(address)
        if check(current) or time.monotonic() > deadline:
            return current
        await asyncio.sleep(0.05)


async def test_either_process_answers_for_both(
    postgres_server: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    url = await create_database(postgres_server, f"agora_metrics_{uuid.uuid4().hex[:10]}")
    await prepare_database(url, demo=True)
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_server.url,
        "COMMENT_RATE": "1000/1",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        a, a_address = start_app_process(env)
        processes.append(a)
        b, b_address = start_app_process(env)
        processes.append(b)
        await _wait_ready(a_address)
        await _wait_ready(b_address)
        before = await scrape(a_address)
        token = (
            await _gql(
                a_address,
                'mutation { logIn(input: {username: "alice", password: "demo-password"}) '
                "{ token } }",
                {},
            )
        )["logIn"]["token"]
        article = (
            await _gql(
                a_address,
                "query($s: String!) { article(slug: $s) { id markets { outcomes { id } } } }",
                {"s": CENTRAL_ASIA},
            )
        )["article"]
        ws: Any = await websockets.connect(
            f"ws://{b_address}/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        )
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": ADDED, "variables": {"a": article["id"]}},
                }
            )
        )
        # B's socket and subscription, read from A.
        seen = await until(
            a_address,
            lambda s: s.since(before, "agora_subscriptions_active", field="commentAdded") == 1,
        )
        assert seen.since(before, "agora_websockets_open") == 1

        await _post(a_address, token, article["id"], "counted across processes")
        message = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert message["type"] == "next"
        # Published once (on A), delivered in each process: A's own, and B's through Redis.
        heard = await until(
            a_address,
            lambda s: s.since(before, "agora_broker_delivered_total", kind="comments") == 2,
        )
        assert heard.since(before, "agora_broker_published_total", kind="comments") == 1
        assert heard.since(before, "agora_broker_delivered_total", kind="comments") == 2
        assert heard.since(before, "agora_broker_lag_seconds_count", kind="comments") == 2
        assert 0 <= heard.since(before, "agora_broker_lag_seconds_sum", kind="comments") < 5
        assert heard.since(before, "agora_subscription_deliveries_total", field="commentAdded") == 1

        bought = await _gql(
            b_address, BUY, {"o": article["markets"][0]["outcomes"][0]["id"]}, token
        )
        assert bought["buyShares"]["errors"] == []
        traded = await scrape(a_address)
        assert traded.since(before, "agora_trades_total", side="buy") == 1
        # B answers the same sums.
        from_b = await scrape(b_address)
        for sample in (("agora_trades_total", {"side": "buy"}), ("agora_websockets_open", {})):
            assert from_b(sample[0], **sample[1]) == traded(sample[0], **sample[1])

        # B dies without a word: its live gauges count until it is marked dead.
        b.send_signal(signal.SIGKILL)
        b.wait(10)
        await ws.close()
        assert (await scrape(a_address)).since(before, "agora_websockets_open") == 1
        multiprocess.mark_process_dead(b.pid, str(folder))
        after = await scrape(a_address)
        assert after.since(before, "agora_websockets_open") == 0
        assert after.since(before, "agora_subscriptions_active", field="commentAdded") == 0
        assert after.since(before, "agora_trades_total", side="buy") == 1
        assert after.since(before, "agora_broker_delivered_total", kind="comments") == 2
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
