"""The websocket server under abuse, over real sockets against uvicorn: replays that can't
monopolise the process, rate limits per client address, the database going away during
``connection_init``, ambiguous documents, the shared document checks, oversized frames."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import asyncpg
import pytest
import uvicorn
import websockets
from argon2 import PasswordHasher
from graphql import GraphQLError
from tortoise.exceptions import DBConnectionError, OperationalError
from tortoise.expressions import F
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

import accounts.passwords
import api.extensions
import comments.queries
from api.core.node import from_global_id
from db import models
from db.health import is_database_down
from realtime.fanout import Connection, Hub
from settings import Settings
from tests.conftest import prepare_database, seed_demo
from tests.realtime.test_realtime import (
    TRANSPORT,
    Live,
    closed_with,
    next_payload,
    recv,
    serving,
    subscribe,
)
from tests.services import PostgresServer, create_database, free_port

# What a thread view asks for: two relations per comment, batched per page (they were one
# query each per comment).
REPLAY = (
    "subscription($a: ID!, $after: Int) { commentAdded(articleId: $a, afterSequence: $after) "
    "{ id sequence body bodyHtml createdAt author { username displayName initials } "
    "article { slug title commentCount } } }"
)
REPLAY_BODY = (
    "subscription($a: ID!, $after: Int) { commentAdded(articleId: $a, afterSequence: $after) "
    "{ sequence body } }"
)
STATS = "{ stats { articleCount } }"
LOG_IN = (
    "mutation($u: String!, $p: String!) { logIn(input: {username: $u, password: $p}) "
    "{ token errors { code } } }"
)
POST = (
    "mutation($a: ID!, $b: String!) { postComment(input: {articleId: $a, body: $b}) "
    "{ comment { sequence } errors { code } } }"
)

# The failure cases hash nothing worth the real cost: fifty log-ins in well under a second.
_cheap_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def cheap_hashes() -> Iterator[None]:
    """Cheap argon2 parameters for the test (the demo data's passwords included)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts.passwords, "_hasher", _cheap_hasher)
        _forget_dummy_hash()
        try:
            yield
        finally:
            _forget_dummy_hash()


def _forget_dummy_hash() -> None:
    # Log-ins to unknown accounts verify against a hash made once; not with cheap parameters
    # for the rest of the suite.
    made = getattr(accounts.passwords, "_dummy_hash", None)
    if made is not None and hasattr(made, "cache_clear"):
        made.cache_clear()


@contextlib.asynccontextmanager
async def demo_server(settings: Settings, ws_max_size: int | None = None) -> AsyncIterator[Live]:
    """A uvicorn server on ``settings``' (empty) database, with the demo data loaded."""
    await seed_demo(settings)
    async with serving(settings, ws_max_size) as server:
        yield server


async def add_comments(article_global_id: str, count: int, body: str = "bulk") -> list[int]:
    """``count`` comments on the article in a few bulk INSERTs (the API's mutation is rate
    limited and slow by design); their sequences."""
    article_id = from_global_id(article_global_id, "Article")[1]
    article = await models.Article.get(id=article_id)
    author = await models.User.get(username="alice")
    start, now = article.comment_seq, datetime.now(UTC)
    await models.Comment.bulk_create(
        [
            models.Comment(
                article_id=article_id,
                author_id=author.id,
                sequence=start + n,
                body=body,
                body_html=f"<p>{body}</p>",
                created_at=now,
            )
            for n in range(1, count + 1)
        ],
        batch_size=500,
    )
    await models.Article.filter(id=article_id).update(
        comment_seq=start + count, comment_count=F("comment_count") + count
    )
    return list(range(start + 1, start + count + 1))


async def timed_query(live: Live) -> float:
    """Seconds one ``stats`` query over HTTP takes."""
    began = time.perf_counter()
    response = await live.http.post("/graphql", json={"query": STATS})
    elapsed = time.perf_counter() - began
    assert response.json() == {"data": {"stats": {"articleCount": 50}}}
    return elapsed


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


async def read_sequences(
    ws: ClientConnection, counts: dict[str, int], order: list[str] | None = None
) -> dict[str, list[int]]:
    """The ``sequence`` of every ``commentAdded`` until each subscription has ``counts[id]``;
    any other message (an error, say) fails the test."""
    got: dict[str, list[int]] = {sub_id: [] for sub_id in counts}
    while any(len(got[s]) < n for s, n in counts.items()):
        message = json.loads(await recv(ws, 10))
        if message["type"] == "ping":  # the server's keep-alive, every 20 s
            continue
        assert message["type"] == "next", message
        got[message["id"]].append(message["payload"]["data"]["commentAdded"]["sequence"])
        if order is not None:
            order.append(message["id"])
    return got


def hub_of(live: Live) -> Hub:
    hub: Hub = live.app.state.hub
    return hub


def connection_with(live: Live, sub_id: str) -> Connection | None:
    """The server's side of the socket that has subscription ``sub_id`` (None once it ended)."""
    return next((conn for conn in hub_of(live).connections if sub_id in conn.subs), None)


# -- 1. replays ----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_many_replays_on_one_socket_neither_overflow_nor_slow_others_down(
    fresh_settings: Settings,
) -> None:
    """A hundred replays of the last ~100 comments of a 2,000-comment thread on one socket:
    each gets exactly its comments, two run at a time, and another client's queries stay fast
    meanwhile (all at once, before, they held them 0.4-0.5 s at p99 on an idle machine)."""
    # Pages of 50: each replay is three, so two replays at once interleave on the socket.
    settings = replace(fresh_settings, ws_max_subscriptions=100, ws_replay_page_size=50)
    async with demo_server(settings) as live:
        article = await live.article()
        sequences = await add_comments(article["id"], 2000)
        quiet = [await timed_query(live) for _ in range(40)]
        starts = {f"s{k}": sequences[-1] - 100 - k % 10 for k in range(100)}
        expected = {sub_id: [s for s in sequences if s > after] for sub_id, after in starts.items()}
        ws = await live.connect()
        for sub_id, after in starts.items():
            await subscribe(ws, REPLAY, {"a": article["id"], "after": after}, sub_id)
        order: list[str] = []  # which subscription each frame was for, in arrival order
        reader = asyncio.create_task(
            read_sequences(ws, {s: len(v) for s, v in expected.items()}, order)
        )
        busy: list[float] = []
        while not reader.done():
            busy.append(await timed_query(live))
        got = await reader
        # graphql-core's per-event executors shared their group's memo of collected subfields
        # and grew it by an entry or two per comment rendered, for the life of the group.
        groups = list(hub_of(live).groups.values())
        assert len(groups) == 10  # one per distinct afterSequence
        assert [len(g.executor._relevant_sub_fields) for g in groups] == [0] * 10
        await ws.close()
    assert got == expected
    # A replay runs from its first frame to its last; at most ws_replays_per_connection overlap.
    first = {s: order.index(s) for s in starts}
    last = {s: len(order) - 1 - order[::-1].index(s) for s in starts}
    overlap = max(sum(1 for s in starts if first[s] <= i <= last[s]) for i in range(len(order)))
    assert overlap == settings.ws_replays_per_connection == 2
    bound = max(5 * statistics.median(quiet), 0.250)
    assert len(busy) >= 20
    assert p99(busy) <= bound, (p99(busy), statistics.median(quiet), len(busy))


async def _stalled_socket(live: Live) -> ClientConnection:
    """A client socket whose reads we control: a tiny receive buffer, a one-frame queue and no
    compression (4 kB of "x" would be 30 bytes on the wire), so what the server has to send
    waits on the server rather than in buffers between us."""
    url = urlparse(live.url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (url.hostname, url.port))
    ws = await websockets.connect(
        live.ws_url,
        sock=sock,
        subprotocols=[Subprotocol(TRANSPORT)],
        max_queue=1,
        compression=None,
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await recv(ws))["type"] == "connection_ack"
    return ws


@pytest.mark.slow
async def test_a_replay_waits_for_a_client_that_stops_reading(fresh_settings: Settings) -> None:
    """A client that stops reading mid-replay: the server's queue stays under its replay mark
    (no overflow, nothing buffered beyond it), live comments meanwhile don't end the
    subscription, other sockets' replays go on, and once it reads again it gets every comment
    once, in order."""
    settings = replace(
        fresh_settings, ws_queue_length=16, ws_replays_per_process=1, comment_rate="1000/1"
    )
    async with demo_server(settings) as live, contextlib.AsyncExitStack() as cleanup:
        article = await live.article()
        # 2,000 × 4 kB: twice what the socket buffers between us and the server hold (~3 MB).
        sequences = await add_comments(article["id"], 2000, body="x" * 4000)
        stalled = await _stalled_socket(live)
        # On failure, don't leave uvicorn's shut-down waiting for a socket nobody reads.
        cleanup.callback(lambda: stalled.transport.abort())
        await subscribe(stalled, REPLAY_BODY, {"a": article["id"], "after": sequences[0] - 1}, "a")
        # Once the socket buffers are full, the replay stops: at most at its mark (half the
        # queue; it resumes when the writer is down to a quarter), with nothing buffered
        # beyond, and with most of the thread still to come.
        mark = settings.ws_queue_length // 2
        seen: list[tuple[int, int]] = []  # (queue length, last sequence pushed)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (
            len(seen) >= 30 and len(set(seen[-30:])) == 1 and seen[-1][1] > 0
        ):
            found = connection_with(live, "a")
            if found is not None:
                seen.append((len(found.queue), found.subs["a"].last_seq - sequences[0] + 1))
            await asyncio.sleep(0.01)
        conn = connection_with(live, "a")
        assert conn is not None, "the subscription ended (overflow?)"
        sub = conn.subs["a"]
        queued, pushed = seen[-1]
        assert len(set(seen[-30:])) == 1 and mark // 2 < queued <= mark
        assert max(length for length, _ in seen) <= mark
        assert sub.replaying and 0 < pushed < len(sequences)
        # Another socket replays (and gets live comments) while this one is stalled, although
        # the process runs one replay page at a time: the stalled one holds no process slot.
        other = await live.connect()
        await subscribe(other, REPLAY_BODY, {"a": article["id"], "after": sequences[-1] - 3}, "b")
        assert await read_sequences(other, {"b": 3}) == {"b": sequences[-3:]}
        # More live comments than the queue length arrive while "a" is stalled mid-replay.
        token = await live.token("bob")
        posted = []
        for n in range(24):
            data = await live.gql(POST, {"a": article["id"], "b": f"live {n}"}, token)
            assert data["postComment"]["errors"] == []
            posted.append(data["postComment"]["comment"]["sequence"])
        assert posted == list(range(sequences[-1] + 1, sequences[-1] + 25))
        assert await read_sequences(other, {"b": 24}) == {"b": posted}
        assert "a" in conn.subs and len(conn.queue) == queued
        got = await read_sequences(stalled, {"a": 2000 + 24})
        assert got == {"a": sequences + posted}
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stalled.recv(), 0.3)  # nothing doubled, no error
        await stalled.close()
        await other.close()


@pytest.mark.slow
async def test_replay_pages_run_at_most_replays_per_process_at_once(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight replays on four sockets with two process slots: never more than two replay pages
    are read at once, and each subscription still gets exactly its comments."""
    settings = replace(fresh_settings, ws_replays_per_process=2, ws_replay_page_size=50)
    in_flight = peak = 0
    real_fetch = comments.queries.fetch_dicts

    async def watched(sql: str, params: Any = (), conn: Any = None) -> list[dict[str, Any]]:
        nonlocal in_flight, peak
        if "FROM comments WHERE article_id" not in sql:
            return await real_fetch(sql, params, conn)
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.005)  # a slower database: pages that could overlap, do
            return await real_fetch(sql, params, conn)
        finally:
            in_flight -= 1

    monkeypatch.setattr(comments.queries, "fetch_dicts", watched)
    async with demo_server(settings) as live:
        article = await live.article()
        sequences = await add_comments(article["id"], 300)
        sockets = [await live.connect() for _ in range(4)]
        for n, ws in enumerate(sockets):
            for sub_id in ("x", "y"):
                after = sequences[0] - 1 + 10 * n + (5 if sub_id == "y" else 0)
                await subscribe(ws, REPLAY, {"a": article["id"], "after": after}, sub_id)
        results = await asyncio.gather(
            *(
                read_sequences(ws, {"x": 300 - 10 * n, "y": 295 - 10 * n})
                for n, ws in enumerate(sockets)
            )
        )
        for ws in sockets:
            await ws.close()
    assert results == [{"x": sequences[10 * n :], "y": sequences[10 * n + 5 :]} for n in range(4)]
    assert peak == settings.ws_replays_per_process == 2


# -- 2. rate limits per client address -----------------------------------------------------------


@pytest.fixture
def app_decides_client_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn as every start path runs it (app.uvicorn_options): proxy headers off, so the app
    alone decides what X-Forwarded-For is worth. tests.realtime.test_realtime.serving keeps uvicorn's
    default, which rewrites the peer from X-Forwarded-For when it comes from 127.0.0.1."""
    monkeypatch.setattr(uvicorn, "Config", functools.partial(uvicorn.Config, proxy_headers=False))


async def _connect_from(
    live: Live, host: str, forwarded_for: str | None = None
) -> ClientConnection:
    """A socket from loopback address ``host`` (the whole 127/8 is ours), optionally through a
    proxy that says the client was ``forwarded_for``."""
    ws = await websockets.connect(
        live.ws_url,
        subprotocols=[Subprotocol(TRANSPORT)],
        additional_headers={"X-Forwarded-For": forwarded_for} if forwarded_for else None,
        local_addr=(host, 0),
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await recv(ws))["type"] == "connection_ack"
    return ws


async def _log_in(ws: ClientConnection, username: str, password: str) -> dict[str, Any]:
    """``logIn`` sent as a ``subscribe`` message: its payload."""
    await ws.send(
        json.dumps(
            {
                "id": "login",
                "type": "subscribe",
                "payload": {"query": LOG_IN, "variables": {"u": username, "p": password}},
            }
        )
    )
    message = json.loads(await recv(ws))
    assert message["type"] == "next", message
    assert json.loads(await recv(ws)) == {"id": "login", "type": "complete"}
    result: dict[str, Any] = message["payload"]["data"]["logIn"]
    return result


async def _fail_until_locked_out(ws: ClientConnection) -> None:
    """Fifty failed log-ins (the per-address allowance), each to another account, then the
    lock-out."""
    for n in range(50):
        failed = await _log_in(ws, f"nobody{n}", "wrong-password")
        assert failed == {"token": None, "errors": [{"code": "INVALID_CREDENTIALS"}]}, n
    assert await _log_in(ws, "nobody", "wrong-password") == {
        "token": None,
        "errors": [{"code": "RATE_LIMITED"}],
    }


@pytest.mark.slow
async def test_websocket_log_ins_are_limited_per_peer_address(
    fresh_settings: Settings, cheap_hashes: None, app_decides_client_address: None
) -> None:
    """Without trusted proxies: failures from 127.0.0.1 lock out 127.0.0.1 only, and an
    X-Forwarded-For header changes nothing."""
    assert fresh_settings.trusted_proxies == ()
    async with demo_server(fresh_settings) as live:
        attacker = await _connect_from(live, "127.0.0.1", "203.0.113.7")
        await _fail_until_locked_out(attacker)
        # The header is not believed: claiming another address doesn't escape the lock-out...
        disguised = await _connect_from(live, "127.0.0.1", "198.51.100.1")
        assert (await _log_in(disguised, "alice", "demo-password"))["errors"] == [
            {"code": "RATE_LIMITED"}
        ]
        # ...and claiming the attacker's doesn't share it: another peer logs in.
        other = await _connect_from(live, "127.0.0.2", "203.0.113.7")
        logged_in = await _log_in(other, "alice", "demo-password")
        assert logged_in["errors"] == [] and len(logged_in["token"]) == 43
        for ws in (attacker, disguised, other):
            await ws.close()


@pytest.mark.slow
async def test_websocket_log_ins_behind_a_trusted_proxy_are_limited_per_forwarded_address(
    fresh_settings: Settings, cheap_hashes: None, app_decides_client_address: None
) -> None:
    """With the proxy at 127.0.0.1 trusted, the address it forwards is the client's."""
    settings = replace(fresh_settings, trusted_proxies=("127.0.0.1",))
    async with demo_server(settings) as live:
        attacker = await _connect_from(live, "127.0.0.1", "203.0.113.7")
        await _fail_until_locked_out(attacker)
        other = await _connect_from(live, "127.0.0.1", "198.51.100.1")
        logged_in = await _log_in(other, "alice", "demo-password")
        assert logged_in["errors"] == [] and len(logged_in["token"]) == 43
        # What the client itself put in front of the proxy's hop is not believed.
        spoofing = await _connect_from(live, "127.0.0.1", "198.51.100.1, 203.0.113.7")
        assert (await _log_in(spoofing, "alice", "demo-password"))["errors"] == [
            {"code": "RATE_LIMITED"}
        ]
        for ws in (attacker, other, spoofing):
            await ws.close()


# -- 3. the database down during connection_init -------------------------------------------------


class FlakyProxy:
    """A TCP proxy in front of PostgreSQL that can take the database away: ``kill`` drops every
    connection and refuses new ones, ``freeze`` keeps them open but silent (a partition)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    await self.flowing.wait()
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def freeze(self) -> None:
        self.flowing.clear()

    async def kill(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        self.flowing.set()  # what was held back now meets closed sockets
        await self.server.wait_closed()


async def _database_behind(proxy: FlakyProxy, server: PostgresServer, name: str) -> Settings:
    """A migrated demo database on ``server``, with settings that reach it through ``proxy``."""
    url = await create_database(server, name)
    direct = await prepare_database(url, demo=True)
    return replace(direct, database_url=url.replace(f":{server.port}/", f":{proxy.port}/"))


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["refused", "silent"])
async def test_connection_init_while_the_database_is_down_closes_with_1013(
    postgres_server: PostgresServer, cheap_hashes: None, outage: str
) -> None:
    """PostgreSQL only: a SQLite file can't go away while the process has it open.

    Connections refused or dropped, or a database that stops answering (after
    ``db_timeout_seconds``): close 1013, try again later. Before, the lookup's exception
    closed the socket with 1000, and a silent database kept it waiting forever.
    """
    proxy = FlakyProxy(postgres_server.port)
    await proxy.start()
    settings = await _database_behind(proxy, postgres_server, f"agora_down_{outage}_{free_port()}")
    settings = replace(settings, db_timeout_seconds=1)
    try:
        async with serving(settings) as live:
            token = await live.token("alice")
            await (await live.connect(token)).close()  # it works while the database is up
            if outage == "refused":
                await proxy.kill()
            else:
                proxy.freeze()
            began = time.monotonic()
            async with websockets.connect(live.ws_url, subprotocols=[Subprotocol(TRANSPORT)]) as ws:
                await ws.send(
                    json.dumps(
                        {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
                    )
                )
                assert await closed_with(ws) == 1013
                assert ws.close_reason == "Try again later: the database is unavailable"
            assert time.monotonic() - began < settings.db_timeout_seconds + 1
            # Anonymous sockets need no database to start: they still get their ack.
            await (await live.connect()).close()
            await proxy.kill()  # let the pool's shut-down fail fast rather than wait on silence
    finally:
        with contextlib.suppress(Exception):
            await proxy.kill()


@pytest.mark.parametrize(
    ("exc", "down"),
    [
        (DBConnectionError("can't establish connection"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (OSError(101, "Network is unreachable"), True),
        (TimeoutError(), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed mid-operation"), True),
        (asyncpg.exceptions.ConnectionFailureError("connection failure"), True),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), True),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), False),
        (OperationalError("syntax error at or near"), False),
        (ValueError("a bug"), False),
        (FileNotFoundError(2, "No such file or directory"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_is_database_down_tells_outages_from_other_failures(exc: Exception, down: bool) -> None:
    assert is_database_down(exc) is down
    # As it reaches an error formatter: a GraphQLError around the resolver's exception, which
    # itself may chain the driver's.
    outer = RuntimeError("while loading")
    outer.__cause__ = exc
    assert is_database_down(GraphQLError("masked", original_error=outer)) is down


# -- 4. several operations, no operationName -----------------------------------------------------


@pytest.mark.slow
async def test_several_operations_without_an_operation_name_is_an_error(
    fresh_settings: Settings,
) -> None:
    document = "query A { stats { articleCount } } query B { stats { traderCount } }"
    async with demo_server(fresh_settings) as live:
        ws = await live.connect()
        for sub_id, name, message in [
            ("1", None, "Must provide operation name if query contains multiple operations."),
            ("2", "C", "Unknown operation named 'C'."),
        ]:
            await ws.send(
                json.dumps(
                    {
                        "id": sub_id,
                        "type": "subscribe",
                        "payload": {"query": document, "operationName": name},
                    }
                )
            )
            assert json.loads(await recv(ws)) == {
                "id": sub_id,
                "type": "error",
                "payload": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}],
            }
        # Named, it runs; and the socket stayed open through the errors.
        await ws.send(
            json.dumps(
                {
                    "id": "3",
                    "type": "subscribe",
                    "payload": {"query": document, "operationName": "B"},
                }
            )
        )
        traders = await live.gql("{ stats { traderCount } }")
        assert json.loads(await recv(ws)) == {
            "id": "3",
            "type": "next",
            "payload": {"data": traders},
        }
        assert json.loads(await recv(ws)) == {"id": "3", "type": "complete"}
        await ws.close()


# -- 5. the shared checks --------------------------------------------------------------------------


@pytest.mark.slow
async def test_the_socket_runs_the_shared_document_and_request_checks(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever api.extensions decides for HTTP decides for the socket too: the document
    checks once per distinct query text (cached), the request checks on every message."""
    refused_query = "{ stats { articleCount } }"
    document_calls: list[str] = []
    request_calls: list[Any] = []
    real_document_errors = api.extensions.document_errors
    real_request_error = api.extensions.request_error

    def document_errors(schema_: Any, document: Any, settings: Settings) -> list[GraphQLError]:
        text = document.loc.source.body
        document_calls.append(text)
        if text == refused_query:
            return [GraphQLError("Refused by the document check.", extensions={"code": "X_DOC"})]
        return real_document_errors(schema_, document, settings)

    def request_error(
        schema_: Any,
        document: Any,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        settings: Settings,
        **options: Any,
    ) -> GraphQLError | None:
        request_calls.append(variables)
        if variables and variables.get("refuse"):
            return GraphQLError("Refused by the request check.", extensions={"code": "X_REQ"})
        return real_request_error(schema_, document, operation_name, variables, settings, **options)

    monkeypatch.setattr(api.extensions, "document_errors", document_errors)
    monkeypatch.setattr(api.extensions, "request_error", request_error)
    async with demo_server(fresh_settings) as live:
        ws = await live.connect()
        for sub_id in ("1", "2"):
            await subscribe(ws, refused_query, {}, sub_id)
            assert json.loads(await recv(ws)) == {
                "id": sub_id,
                "type": "error",
                "payload": [
                    {"message": "Refused by the document check.", "extensions": {"code": "X_DOC"}}
                ],
            }
        query = "query($refuse: Boolean!) { stats { articleCount @skip(if: $refuse) } }"
        await subscribe(ws, query, {"refuse": True}, "3")
        assert json.loads(await recv(ws)) == {
            "id": "3",
            "type": "error",
            "payload": [
                {"message": "Refused by the request check.", "extensions": {"code": "X_REQ"}}
            ],
        }
        await subscribe(ws, query, {"refuse": False}, "4")
        assert json.loads(await recv(ws)) == {
            "id": "4",
            "type": "next",
            "payload": {"data": {"stats": {"articleCount": 50}}},
        }
        assert json.loads(await recv(ws)) == {"id": "4", "type": "complete"}
        await ws.close()
    # Sent twice, checked once: the socket caches the document checks by query text. (The
    # query that ran was checked again by strawberry's own execution: counts vary with that.)
    assert document_calls.count(refused_query) == 1
    assert {"refuse": True} in request_calls and {"refuse": False} in request_calls


# -- 6. message size -------------------------------------------------------------------------------


@pytest.mark.slow
async def test_messages_over_the_limit_close_1009_at_once(fresh_settings: Settings) -> None:
    """The app's limit (64 KiB) applies whatever uvicorn would buffer (16 MiB by default here),
    counted in UTF-8 bytes, to text and binary messages alike."""
    limit = fresh_settings.ws_max_message_bytes
    assert limit == 65_536
    # uvicorn's own limit at its default, as a start path that forgot --ws-max-size would have.
    async with demo_server(fresh_settings, ws_max_size=16 * 1024 * 1024) as live:

        def ping(padding: str) -> str:
            return json.dumps({"type": "ping", "payload": {"p": padding}}, ensure_ascii=False)

        # Exactly at the limit: fine.
        overhead = len(ping("").encode())
        ws = await live.connect()
        await ws.send(ping("y" * (limit - overhead)))
        assert json.loads(await recv(ws))["type"] == "pong"
        await ws.close()
        too_big: list[str | bytes] = [
            ping("y" * (limit - overhead + 1)),  # one byte over
            ping("€" * 22_000),  # 22,000 characters, 66,000 bytes
            ping("y" * (1024 * 1024)),  # 1 MiB, under uvicorn's own limit
            b"\x00" * (limit + 1),  # binary: too big before it is the wrong kind
        ]
        for message in too_big:
            ws = await live.connect()
            began = time.monotonic()
            await ws.send(message)
            assert await closed_with(ws) == 1009
            assert ws.close_reason == "Message too big"
            assert time.monotonic() - began < 1


async def test_a_query_over_the_socket_over_its_object_budget_is_data_null(
    demo_settings: Settings,
) -> None:
    async with serving(replace(demo_settings, max_response_objects=100)) as server:
        ws = await server.connect()
        await subscribe(ws, "{ articles(first: 100) { nodes { tags { slug } } } }", {})
        assert await next_payload(ws) == {
            "data": None,
            "errors": [
                {
                    "message": "The response would hold more than 100 objects. Ask for less.",
                    "extensions": {"code": "RESPONSE_TOO_LARGE", "limit": "responseObjects"},
                }
            ],
        }
        await subscribe(ws, "{ articles(first: 2) { nodes { slug } } }", {}, sub_id="2")
        assert json.loads(await recv(ws)) == {"id": "1", "type": "complete"}
        small = await next_payload(ws, "2")
        assert len(small["data"]["articles"]["nodes"]) == 2
        await ws.close()
