"""The graceful shutdown in one process: an ``AgoraServer`` on a real socket in the test's loop
(SQLite), told to exit as its SIGTERM handler is, and the app's drain (readiness, websockets
closed with 1012 after their in-flight operation, HTTP streams ended by their protocol, no new
socket or stream while draining, the timeout cutting what remains)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from app import create_app, uvicorn_options
from app.serve import AgoraServer
from realtime.fanout.hub import RESTART_REASON, SERVICE_RESTART
from settings import Settings
from tests.conftest import forget_compiled_statements, prepare_database
from tests.http.test_streams import MULTIPART_ACCEPT, SSE_ACCEPT, multipart_parts, sse_events
from tests.realtime.test_realtime import ADDED, CENTRAL_ASIA
from tests.services import free_port

BUY = (
    'mutation($o: ID!) { buyShares(input: {outcomeId: $o, amount: "1.00"}) '
    "{ trade { shares } errors { code } } }"
)
POST = (
    "mutation($a: ID!, $b: String!) { postComment(input: {articleId: $a, body: $b}) "
    "{ comment { sequence } errors { code } } }"
)
STREAM_END = (
    'event: next\ndata: {"errors":[{"message":"The server is shutting down: subscribe again, '
    'with afterSequence, to resume.","extensions":{"code":"SERVICE_RESTART"}}]}\n\n'
    "event: complete\ndata:\n\n"
)
MULTIPART_END = (
    '\r\nContent-Type: application/json; charset=utf-8\r\n\r\n{"payload":null,"errors":'
    '[{"message":"The server is shutting down: subscribe again, with afterSequence, to '
    'resume.","extensions":{"code":"SERVICE_RESTART"}}]}\r\n--graphql--\r\n'
)


@pytest.fixture(scope="module")
async def demo_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A SQLite database with the demo data, for this module's servers (each test writes
    its own comments and trades; none reads another's)."""
    folder = tmp_path_factory.mktemp("drain")
    url = f"sqlite://{folder}/agora-{uuid.uuid4().hex[:8]}.sqlite3"
    settings = await prepare_database(url, demo=True)
    return replace(settings, comment_rate="1000/1")


class Gate:
    """Holds every trade of an app at its start until opened: an operation in flight for as
    long as a test needs (the trade itself runs, unchanged, once the gate opens)."""

    def __init__(self, app: Starlette) -> None:
        self.entered = asyncio.Event()
        self.open = asyncio.Event()
        trading = app.state.services.trading
        original: Callable[..., Awaitable[Any]] = trading.buy

        async def held(*args: Any, **kwargs: Any) -> Any:
            self.entered.set()
            await self.open.wait()
            return await original(*args, **kwargs)

        trading.buy = held


@dataclass
class Running:
    """An AgoraServer serving ``app`` on ``port``, its ``serve()`` running as ``task``."""

    server: AgoraServer
    task: asyncio.Task[None]
    app: Starlette
    port: int
    gate: Gate

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sigterm(self) -> None:
        """What the process's SIGTERM handler does."""
        self.server.handle_exit(signal.SIGTERM, None)

    async def stopped(self, seconds: float = 15) -> float:
        """Wait for the server to finish; how long it took."""
        started = time.monotonic()
        await asyncio.wait_for(asyncio.shield(self.task), seconds)
        return time.monotonic() - started

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str = ""
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(base_url=self.url) as http:
            response = await http.post(
                "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
            )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def token(self) -> str:
        data = await self.gql(
            'mutation { logIn(input: {username: "alice", password: "demo-password"}) { token } }'
        )
        token: str = data["logIn"]["token"]
        return token

    async def article(self) -> dict[str, Any]:
        data = await self.gql(
            "query($s: String!) { article(slug: $s) { id lastCommentSequence "
            "markets { outcomes { id } } } }",
            {"s": CENTRAL_ASIA},
        )
        article: dict[str, Any] = data["article"]
        return article

    async def socket(self, token: str = "") -> ClientConnection:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}/graphql",
            subprotocols=[Subprotocol("graphql-transport-ws")],
        )
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        return ws


@contextlib.asynccontextmanager
async def agora_serving(settings: Settings) -> AsyncIterator[Running]:
    """``settings``' app served by an AgoraServer, as ``python -m app.serve`` serves it."""
    forget_compiled_statements()
    app = create_app(settings)
    gate = Gate(app)
    port = free_port()
    options = {**uvicorn_options(settings), "host": "127.0.0.1", "port": port}
    server = AgoraServer(uvicorn.Config(app, **{**options, "log_level": "warning"}), settings)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    running = Running(server, task, app, port, gate)
    try:
        yield running
    finally:
        gate.open.set()
        if not task.done():
            server.should_exit = True
            await task


async def recv(ws: ClientConnection, seconds: float = 5) -> dict[str, Any]:
    """The next message that isn't a ping."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), seconds))
        if message["type"] != "ping":
            return message


async def closed(ws: ClientConnection, seconds: float = 5) -> tuple[int | None, str | None]:
    """Read until the server closes ``ws`` (nothing but pings may come first)."""
    with contextlib.suppress(websockets.ConnectionClosed):
        message = await recv(ws, seconds)
        raise AssertionError(f"expected the close, got {message}")
    return ws.close_code, ws.close_reason


def subscribe(sub_id: str, query: str, variables: dict[str, Any]) -> str:
    return json.dumps(
        {"id": sub_id, "type": "subscribe", "payload": {"query": query, "variables": variables}}
    )


async def test_idle_sockets_close_with_1012_and_a_busy_one_after_its_operation(
    demo_sqlite: Settings,
) -> None:
    async with agora_serving(demo_sqlite) as running:
        token = await running.token()
        article = await running.article()
        outcome = article["markets"][0]["outcomes"][0]["id"]
        idle = await running.socket()
        await idle.send(subscribe("c", ADDED, {"a": article["id"]}))
        busy = await running.socket(token)
        await busy.send(subscribe("t", BUY, {"o": outcome}))
        await asyncio.wait_for(running.gate.entered.wait(), 5)
        # Sent while the trade runs: the socket reads it only after, and by then it drains.
        await busy.send(subscribe("q", "{ __typename }", {}))
        await asyncio.sleep(0.1)

        running.sigterm()
        assert await closed(idle) == (SERVICE_RESTART, RESTART_REASON)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(busy.recv(), 0.5)  # still open: its trade is in flight
        assert not running.task.done()

        running.gate.open.set()
        result = await recv(busy)
        assert result["id"] == "t" and result["type"] == "next", result
        assert result["payload"]["data"]["buyShares"]["errors"] == []
        assert float(result["payload"]["data"]["buyShares"]["trade"]["shares"]) > 0
        assert await recv(busy) == {"id": "t", "type": "complete"}
        # "q" never ran: the close comes next.
        assert await closed(busy) == (SERVICE_RESTART, RESTART_REASON)
        await running.stopped()
        assert (running.server.exit_code, running.server.cut) == (0, False)


async def test_http_streams_end_with_their_protocols_end(demo_sqlite: Settings) -> None:
    async with agora_serving(demo_sqlite) as running:
        token = await running.token()
        article = await running.article()
        variables = {"a": article["id"], "after": article["lastCommentSequence"]}
        body = {"query": ADDED, "variables": variables}
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
            sse_request = http.build_request("POST", "/graphql", json=body, headers=SSE_ACCEPT)
            parts_request = http.build_request(
                "POST", "/graphql", json=body, headers=MULTIPART_ACCEPT
            )
            sse = await http.send(sse_request, stream=True)
            parts = await http.send(parts_request, stream=True)
            sequence = (await running.gql(POST, {"a": article["id"], "b": "hi"}, token))[
                "postComment"
            ]["comment"]["sequence"]
            await asyncio.sleep(0.3)

            running.sigterm()
            sse_text = (await asyncio.wait_for(sse.aread(), 5)).decode()
            parts_text = (await asyncio.wait_for(parts.aread(), 5)).decode()
        # The comment, then the restart's error and the protocol's own end: the response is
        # complete (no transport error), so clients resubscribe rather than retry blindly.
        assert sse_text.endswith(STREAM_END), sse_text
        assert [event for event, _ in sse_events(sse_text)] == ["next", "next", "complete"]
        assert sse_events(sse_text)[0][1]["data"]["commentAdded"]["sequence"] == sequence
        assert parts_text.endswith(MULTIPART_END), parts_text
        assert multipart_parts(parts_text)[0]["payload"]["data"]["commentAdded"]["sequence"] == (
            sequence
        )
        await running.stopped()
        assert running.server.exit_code == 0


async def test_a_stream_whose_session_is_read_as_the_drain_begins_is_refused(
    demo_sqlite: Settings,
) -> None:
    """The drain ends the streams the hub knows; one still reading its session when it began
    is refused once it has (503, retry elsewhere), not served until the timeout cuts it."""
    settings = replace(demo_sqlite, shutdown_timeout_seconds=5)
    async with agora_serving(settings) as running:
        token = await running.token()
        article = await running.article()
        hub = running.app.state.hub
        original = hub.find_session
        entered, release = asyncio.Event(), asyncio.Event()

        async def held(found: str) -> Any:
            entered.set()
            await release.wait()
            return await original(found)

        hub.find_session = held
        body = {"query": ADDED, "variables": {"a": article["id"]}}
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
            request = http.build_request(
                "POST",
                "/graphql",
                json=body,
                headers={**SSE_ACCEPT, "Authorization": f"Bearer {token}"},
            )
            sending = asyncio.create_task(http.send(request))
            await asyncio.wait_for(entered.wait(), 5)
            began = time.monotonic()
            running.sigterm()
            await asyncio.sleep(0.3)  # the drain has run, finding nothing
            release.set()
            refused = await sending
        assert refused.status_code == 503
        assert refused.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        await running.stopped()
        assert running.server.exit_code == 0
        assert time.monotonic() - began < 4


async def test_readiness_goes_first_then_new_connections_are_refused(
    demo_sqlite: Settings,
) -> None:
    settings = replace(demo_sqlite, shutdown_delay_seconds=1)
    async with agora_serving(settings) as running:
        async with httpx.AsyncClient(base_url=running.url) as pooled:
            # An idle keep-alive connection in the pool: closed when accepting stops.
            assert (await pooled.get("/healthz")).status_code == 200
            began = time.monotonic()
            running.sigterm()
            async with httpx.AsyncClient(base_url=running.url) as fresh:
                ready = await fresh.get("/readyz")
                # Still serving during the delay, on new connections too.
                assert (await fresh.post("/graphql", json={"query": "{ __typename }"})).json() == {
                    "data": {"__typename": "Query"}
                }
            assert (ready.status_code, ready.json()) == (
                503,
                {"database": "ok", "draining": True},
            )
            assert await running.stopped() < 3
            assert time.monotonic() - began >= 1
            with pytest.raises(httpx.ConnectError):
                async with httpx.AsyncClient(base_url=running.url) as late:
                    await late.get("/healthz")
        assert running.server.exit_code == 0


async def test_the_timeout_cuts_what_is_still_running(demo_sqlite: Settings) -> None:
    settings = replace(demo_sqlite, shutdown_timeout_seconds=1)
    async with agora_serving(settings) as running:
        token = await running.token()
        outcome = (await running.article())["markets"][0]["outcomes"][0]["id"]
        busy = await running.socket(token)
        await busy.send(subscribe("t", BUY, {"o": outcome}))
        await asyncio.wait_for(running.gate.entered.wait(), 5)
        balance = await running.gql("{ me { balance } }", token=token)
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
            trade = asyncio.create_task(
                http.post(
                    "/graphql",
                    json={"query": BUY, "variables": {"o": outcome}},
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
            await asyncio.sleep(0.2)
            running.sigterm()
            took = await running.stopped()
            # The socket's trade never finished: uvicorn closed it (1012, no result).
            assert (await closed(busy))[0] == SERVICE_RESTART
            response = await trade
        assert 1 <= took < 3
        assert response.status_code == 500  # uvicorn's answer to a request it cancelled
        assert (running.server.exit_code, running.server.cut) == (1, True)
    # Neither trade took a cent.
    async with agora_serving(settings) as again:
        assert await again.gql("{ me { balance } }", token=token) == balance


async def test_a_draining_app_takes_no_new_socket_or_stream(demo_sqlite: Settings) -> None:
    async with agora_serving(demo_sqlite) as running:
        article = await running.article()
        await running.app.state.lifecycle.drain()  # as the server does once it stops accepting
        ws = await websockets.connect(
            f"ws://127.0.0.1:{running.port}/graphql",
            subprotocols=[Subprotocol("graphql-transport-ws")],
        )
        assert await closed(ws) == (SERVICE_RESTART, RESTART_REASON)
        async with httpx.AsyncClient(base_url=running.url) as http:
            response = await http.post(
                "/graphql",
                json={"query": ADDED, "variables": {"a": article["id"]}},
                headers=SSE_ACCEPT,
            )
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(demo_sqlite.retry_after_seconds)
        assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        # Plain requests are the server's to refuse (it closes its sockets): the app answers.
        assert (await running.gql("{ __typename }")) == {"__typename": "Query"}


async def test_readyz_says_draining(demo_sqlite: Settings, tmp_path: Path) -> None:
    forget_compiled_statements()
    app = create_app(demo_sqlite)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        before = await http.get("/readyz")
        app.state.lifecycle.start_draining()
        after = await http.get("/readyz")
    assert (before.status_code, before.json()) == (200, {"database": "ok"})
    assert (after.status_code, after.json()) == (503, {"database": "ok", "draining": True})
