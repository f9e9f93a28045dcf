"""Two server processes on one PostgreSQL and one Redis: events cross processes, and a Redis
restart loses nothing (the subscriber fills the gap from the database)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import prepare_database
from tests.services import (
    PostgresServer,
    RedisServer,
    create_database,
    server_log_tail,
    start_app_process,
    start_redis,
)

ROOT = Path(__file__).resolve().parents[2]
CENTRAL_ASIA = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"
ADDED = (
    "subscription($a: ID!, $after: Int) { commentAdded(articleId: $a, afterSequence: $after) "
    "{ sequence body } }"
)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


def _start_server(database_url: str, redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    return start_app_process(
        {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "COMMENT_RATE": "1000/1"}
    )


async def _wait_ready(
    address: str, want: int = 200, process: subprocess.Popen[bytes] | None = None
) -> dict[str, Any]:
    """/readyz's body once it answers ``want``; fails after 30 s, or as soon as ``process``
    (the server, when given) has exited, saying what it last answered and how its log ends."""
    deadline = time.monotonic() + 30
    last = "no answer"
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                last = f"the process exited with {process.returncode}"
                break
            try:
                response = await http.get(f"http://{address}/readyz")
                if response.status_code == want:
                    body: dict[str, Any] = response.json()
                    return body
                last = f"{response.status_code} {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            await asyncio.sleep(0.1)
    raise AssertionError(
        f"{address} never answered /readyz with {want} (last: {last}); its log ends:\n"
        + (server_log_tail(process) if process is not None else "(not given)")
    )


async def _gql(address: str, query: str, variables: dict[str, Any], token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"http://{address}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
        )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def _post(address: str, token: str, article: str, text: str) -> int:
    data = await _gql(
        address,
        "mutation($a: ID!, $b: String!) { postComment(input: {articleId: $a, body: $b}) "
        "{ comment { sequence } errors { code } } }",
        {"a": article, "b": text},
        token,
    )
    assert data["postComment"]["errors"] == []
    sequence: int = data["postComment"]["comment"]["sequence"]
    return sequence


async def _next_sequence(ws: Any) -> int:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if message["type"] == "next":
            sequence: int = message["payload"]["data"]["commentAdded"]["sequence"]
            return sequence
        assert message["type"] == "ping", message


async def test_two_processes_share_events_and_survive_a_redis_restart(
    postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    url = await create_database(postgres_server, f"agora_scale_{uuid.uuid4().hex[:10]}")
    await prepare_database(url, demo=True)
    a, a_address = _start_server(url, redis_server.url)
    b, b_address = _start_server(url, redis_server.url)
    try:
        assert await _wait_ready(a_address, process=a) == {"database": "ok", "redis": "ok"}
        await _wait_ready(b_address, process=b)
        login = await _gql(
            a_address,
            'mutation { logIn(input: {username: "alice", password: "demo-password"}) { token } }',
            {},
        )
        token = login["logIn"]["token"]
        article = (
            await _gql(
                a_address, "query($s: String!) { article(slug: $s) { id } }", {"s": CENTRAL_ASIA}
            )
        )["article"]["id"]
        async with websockets.connect(
            f"ws://{b_address}/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": ADDED, "variables": {"a": article}},
                    }
                )
            )
            await asyncio.sleep(0.3)
            posted = [await _post(a_address, token, article, "across processes")]
            seen = [await _next_sequence(ws)]
            assert seen == posted

            # Redis goes away: posts on A still commit; B hears nothing until it is back.
            redis_server.stop()
            body = await _wait_ready(a_address, want=503, process=a)
            assert body == {"database": "ok", "redis": "down"}
            for i in range(3):
                posted.append(await _post(a_address, token, article, f"during outage {i}"))
            redis_server.start()
            await _wait_ready(a_address, process=a)
            await _wait_ready(b_address, process=b)
            # B fills the gap from the database on reconnect, then goes on live.
            while len(seen) < 4:
                seen.append(await _next_sequence(ws))
            posted.append(await _post(a_address, token, article, "after the restart"))
            seen.append(await _next_sequence(ws))
            assert seen == posted
            assert posted == list(range(posted[0], posted[0] + 5))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)  # no duplicates
    finally:
        for process in (a, b):
            process.terminate()
            process.wait(10)
