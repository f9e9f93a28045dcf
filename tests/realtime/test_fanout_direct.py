"""The fan-out's fast path: frames written straight to a socket that keeps up, queued (bounded)
for one that doesn't; one frame shared by a group's subscribers; the collector's tuning."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pytest
import uvicorn
import websockets
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from app import create_app, uvicorn_options
from app.wire import text_frame
from realtime.fanout import Connection, Group, Hub
from realtime.fanout.gctuning import GCTuning
from realtime.fanout.primitives import LightEvent, LightQueue, Waiters
from realtime.protocol import subprotocol
from realtime.protocol.messages import dumps
from realtime.protocol.multipart import MULTIPART
from realtime.protocol.sse import SSE
from realtime.sources import SubscriptionSource
from settings import Settings


@pytest.fixture
def fresh_settings() -> Settings:
    """Settings for connections that never reach a database."""
    return Settings(env="test")


class Socket:
    """A websocket transport with a direct write whose buffer the test fills and empties."""

    def __init__(self) -> None:
        self.direct: list[str] = []
        self.queued: list[str] = []
        self.buffered = 0
        self.reading = asyncio.Event()
        self.reading.set()

    def write(self, text: str, max_buffer: int) -> bool:
        if self.buffered > max_buffer:
            return False
        self.direct.append(text)
        return True

    async def send_text(self, frame: str) -> None:
        await self.reading.wait()
        self.queued.append(frame)


def socket_connection(settings: Settings) -> tuple[Connection, Socket]:
    socket = Socket()
    conn = Connection(socket, "graphql-transport-ws", settings, direct=socket.write)
    return conn, socket


async def test_a_socket_that_keeps_up_gets_frames_directly_with_no_writer_task(
    fresh_settings: Settings,
) -> None:
    conn, socket = socket_connection(fresh_settings)
    for n in range(5):
        assert conn.push(f"frame {n}")
    conn.push_latest("odds", "latest 1")
    assert socket.direct == [*(f"frame {n}" for n in range(5)), "latest 1"]
    assert conn.writer_task is None and not conn.queue and not conn.latest


async def test_a_full_buffer_queues_and_the_writer_keeps_the_order(
    fresh_settings: Settings,
) -> None:
    conn, socket = socket_connection(fresh_settings)
    assert conn.push("a")
    socket.buffered = fresh_settings.ws_direct_write_buffer_bytes + 1  # the client lags
    socket.reading.clear()
    assert conn.push("b") and conn.push("c")
    assert list(conn.queue) == ["b", "c"] and conn.writer_task is not None
    socket.buffered = 0  # the buffer drained, but "b" and "c" still wait: "d" goes behind them
    assert conn.push("d")
    assert socket.direct == ["a"] and list(conn.queue) == ["b", "c", "d"]
    socket.reading.set()
    await asyncio.wait_for(conn.writer_task, 2)
    assert socket.direct == ["a"] and socket.queued == ["b", "c", "d"]
    # The queue empty again: the next frame goes straight to the socket, no task left behind.
    assert conn.writer_task.done()
    assert conn.push("e")
    assert socket.direct == ["a", "e"]


async def test_a_slow_socket_is_cut_off_at_its_queue_bound(fresh_settings: Settings) -> None:
    settings = replace(fresh_settings, ws_queue_length=4)
    conn, socket = socket_connection(settings)
    socket.buffered = 10**9  # never drains
    socket.reading.clear()
    results = [conn.push(f"f{n}") for n in range(6)]
    assert results == [True, True, True, True, False, False]
    # The writer takes the first off the queue (and waits to send it): room for one more.
    await asyncio.sleep(0)
    assert conn.push("f6") and not conn.push("f7")
    assert list(conn.queue) == ["f1", "f2", "f3", "f6"] and socket.direct == []
    assert conn.push("error", force=True)  # protocol messages still go in
    assert conn.writer_task is not None
    conn.writer_task.cancel()


async def test_the_writer_ends_a_connection_whose_client_went_away(
    fresh_settings: Settings,
) -> None:
    class Gone(Socket):
        async def send_text(self, frame: str) -> None:
            raise OSError("reset")

    socket = Gone()
    socket.buffered = 10**9
    conn = Connection(socket, "graphql-transport-ws", fresh_settings, direct=socket.write)
    conn.push("x")
    assert conn.writer_task is not None
    await asyncio.wait_for(conn.writer_task, 2)
    assert conn.closing is not None and conn.closing.code == 1006 and conn.closed.is_set()


class Ordered(SubscriptionSource[int]):
    """An unsequenced, in-order source whose root is the event."""

    async def root(self, target: int, event: Mapping[str, Any], loaders: Any) -> Any:
        return event


@dataclass(eq=False)
class Rendered(Group):
    """A group whose payload is the event's ``n`` (no schema to execute)."""

    async def render(self, root: Any, loaders: Any) -> str:
        return '{"data":{"n":' + str(root["n"]) + "}}"


class Layer:
    def loaders(self) -> None:
        return None


async def test_a_group_shares_one_frame_identical_to_each_sockets_own(
    fresh_settings: Settings,
) -> None:
    hub = Hub.__new__(Hub)
    hub.graphql = Layer()  # type: ignore[assignment]
    hub.settings = fresh_settings
    hub.groups, hub.by_channel, hub.connections = {}, {}, set()
    key = ("testShared", 1)
    make = lambda: Rendered(hub, key, "testShared", 1, "test:shared", None, None, Ordered())  # type: ignore[arg-type]  # noqa: E731
    pairs = [socket_connection(fresh_settings) for _ in range(3)]
    legacy = Socket()
    legacy_conn = Connection(legacy, "graphql-ws", fresh_settings, direct=legacy.write)
    subs = [hub.add(conn, "1", key, make) for conn, _ in pairs]
    subs.append(hub.add(legacy_conn, "1", key, make))
    other = socket_connection(fresh_settings)
    subs.append(hub.add(other[0], "7", key, make))
    for sub in subs:
        sub.replaying = False
    await hub.on_event("test:shared", {"n": 5})
    sent = [socket.direct[0] for _, socket in pairs]
    # One str object for the sockets of the same subscription id and subprotocol…
    assert sent[0] is sent[1] is sent[2]
    # …equal to what each would have encoded for itself, in each protocol.
    payload = {"data": {"n": 5}}
    assert json.loads(sent[0]) == {"id": "1", "type": "next", "payload": payload}
    assert sent[0] == subscprotocol_frame("graphql-transport-ws", "1", payload)
    assert legacy.direct == [subscprotocol_frame("graphql-ws", "1", payload)]
    assert other[1].direct == [subscprotocol_frame("graphql-transport-ws", "7", payload)]
    # HTTP streams' frames likewise.
    for wire in (SSE, MULTIPART):
        prefix, suffix = wire.data_frame("1")
        assert prefix + dumps(payload) + suffix == wire.result(payload)  # type: ignore[arg-type]


def subscprotocol_frame(name: str, sub_id: str, payload: dict[str, Any]) -> str:
    wire = subprotocol(name)
    message: Any = {"id": sub_id, "type": wire.data_type, "payload": payload}
    return wire.encode(message)


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65_535, 65_536, 70_000])
def test_a_shared_websocket_frame_is_the_bytes_websockets_writes(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)
    protocol = ServerProtocol()
    protocol.state = State.OPEN
    protocol.send_text(text.encode())
    assert text_frame(text) == b"".join(protocol.data_to_send())
    # Framed once for the same str: the very same bytes object the second time.
    assert text_frame(text) is text_frame(text)
    assert Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=()) == text_frame(
        text
    )


def test_gc_tuning_freezes_after_start_up_and_bulk_subscribes_and_unfreezes_after_churn(
    fresh_settings: Settings,
) -> None:
    settings = replace(
        fresh_settings,
        gc_freeze_after_subscriptions=3,
        gc_freeze_quiet_ms=0,
        gc_gen0_threshold=5000,
    )
    threshold = gc.get_threshold()
    loop = asyncio.new_event_loop()
    try:
        tuning = GCTuning(settings)
        gc.unfreeze()
        tuning.after_start_up()
        assert gc.get_threshold()[0] == 5000
        assert gc.get_freeze_count() > 0
        gc.unfreeze()

        async def scenario() -> None:
            for _ in range(2):
                tuning.subscribed()
            await asyncio.sleep(0.01)
            assert gc.get_freeze_count() == 0  # not a bulk yet
            tuning.subscribed()
            await asyncio.sleep(0.01)
            assert gc.get_freeze_count() > 0 and tuning.frozen == 3
            tuning.unsubscribed()
            tuning.unsubscribed()
            assert gc.get_freeze_count() > 0
            tuning.unsubscribed()  # as many ended as were frozen: their cycles collectable
            assert gc.get_freeze_count() == 0 and tuning.frozen == 0 and tuning.live == 0
            # A churn (each subscription ends before the next): never enough open to freeze.
            for _ in range(4):
                tuning.subscribed()
                tuning.unsubscribed()
            await asyncio.sleep(0.01)
            assert gc.get_freeze_count() == 0 and tuning.frozen == 0 and tuning.since_freeze == 0

        loop.run_until_complete(scenario())

        async def base_and_churn() -> None:
            # A steady base of 3 open plus a churn that re-freezes after every bulk: the
            # subscriptions ended since the first freeze still add up to an unfreeze.
            for _ in range(3):
                tuning.subscribed()
            await asyncio.sleep(0.01)
            assert gc.get_freeze_count() > 0 and tuning.frozen == 3
            unfrozen = False
            for _ in range(4):
                for _ in range(3):
                    tuning.subscribed()
                await asyncio.sleep(0.01)  # a bulk: frozen again
                for _ in range(3):
                    tuning.unsubscribed()
                    unfrozen = unfrozen or gc.get_freeze_count() == 0
            assert unfrozen

        gc.unfreeze()
        loop.run_until_complete(base_and_churn())
        off = GCTuning(replace(settings, gc_freeze_after_subscriptions=0))
        off.subscribed()
        assert off.since_freeze == 0 and off._timer is None
    finally:
        loop.close()
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_uvicorn_options_name_the_direct_protocol_and_deflate_off() -> None:
    settings = Settings(env="test")
    options = uvicorn_options(settings)
    assert options["ws"] == "app.wire:DirectWebSocketProtocol"
    assert options["ws_per_message_deflate"] is False
    assert uvicorn_options(replace(settings, ws_per_message_deflate=True))["ws_per_message_deflate"]


async def test_a_live_socket_gets_its_frames_written_directly(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through uvicorn as every start path starts it: the endpoint's connection has the
    protocol's write, and a socket's acks and pongs arrive through it."""
    import socket as sockets

    from realtime import endpoint

    seen: list[Connection] = []
    real = endpoint.SocketConnection.__init__

    def spy(self: endpoint.SocketConnection, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        seen.append(self)

    monkeypatch.setattr(endpoint.SocketConnection, "__init__", spy)
    with sockets.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = replace(fresh_settings, host="127.0.0.1", port=port)
    app = create_app(settings)
    options = {**uvicorn_options(settings), "lifespan": "off", "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
            await asyncio.sleep(0.02)
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv()) == {"type": "connection_ack"}
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv()) == {"type": "pong"}
            assert len(seen) == 1 and seen[0].direct is not None
            assert seen[0].writer_task is None  # nothing ever had to wait
            # Fewer bytes per idle socket: list-based waiters, the handshake's headers let go
            # (websockets' parser generator keeps the request as a local for the socket's life).
            protocol = seen[0].direct.__self__  # type: ignore[attr-defined]
            assert type(protocol.queue) is LightQueue and type(protocol.writable) is LightEvent
            assert type(seen[0].closed) is LightEvent and type(seen[0].queue) is Waiters
            kept = protocol.conn.parser.gi_frame.f_locals["request"]
            assert kept.path == "/graphql" and list(kept.headers.raw_items()) == []
            assert "request" not in protocol.__dict__ and "response" not in protocol.__dict__
            # The scope's own copy of the headers stays (the endpoint reads it).
            headers = dict(getattr(seen[0].ws, "headers"))  # noqa: B009 (a Transport to mypy)
            assert headers["sec-websocket-protocol"] == "graphql-transport-ws"
    finally:
        server.should_exit = True
        await task


async def test_light_event_and_queue_behave_as_asyncios() -> None:
    """The list-based Event and Queue (realtime.fanout.primitives): the same order, waits,
    wake-ups and cancellations as asyncio's, in containers of a few dozen bytes."""
    import sys
    from collections import deque

    queue: LightQueue[int] = LightQueue()
    assert sys.getsizeof(queue._getters) < sys.getsizeof(deque()) // 4
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert len(queue._getters) == 1
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await getter == 1 and queue.qsize() == 1
    assert queue.get_nowait() == 2 and queue.empty()
    cancelled = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert list(queue._getters) == []
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    queue.put_nowait(3)
    assert queue.get_nowait() == 3
    queue.task_done()
    queue.task_done()
    queue.task_done()
    await asyncio.wait_for(queue.join(), 1)

    event = LightEvent()
    waiters = [asyncio.create_task(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not event.is_set() and len(event._waiters) == 3
    event.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert list(event._waiters) == [] and event.is_set()
    event.clear()
    assert not event.is_set()
    with pytest.raises(IndexError):
        Waiters[int]().popleft()


async def test_an_idle_socket_is_one_task_and_a_close_from_elsewhere_ends_its_reading(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The socket's own (ASGI) task reads its messages: no second task per socket. A close
    made elsewhere (here: as a revocation or a drain would) interrupts that reading, the client
    gets the close's code, and the socket leaves the hub."""
    import socket as sockets

    from realtime import endpoint

    seen: list[endpoint.SocketConnection] = []
    real = endpoint.SocketConnection.__init__

    def spy(self: endpoint.SocketConnection, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        seen.append(self)

    monkeypatch.setattr(endpoint.SocketConnection, "__init__", spy)
    with sockets.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = replace(fresh_settings, host="127.0.0.1", port=port)
    app = create_app(settings)
    options = {**uvicorn_options(settings), "lifespan": "off", "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    task = asyncio.create_task(server.serve())
    clients = []
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
            await asyncio.sleep(0.02)
        before = len(asyncio.all_tasks())
        for _ in range(3):
            ws = await websockets.connect(
                f"ws://127.0.0.1:{port}/graphql",
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                ping_interval=None,
            )
            clients.append(ws)
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv()) == {"type": "connection_ack"}
        # One task per socket: uvicorn's, running the app (and in it the reading).
        assert len(asyncio.all_tasks()) - before == 3
        assert all(conn.reading and conn.reader is not None for conn in seen)
        # And that task's coroutines: /graphql's websockets skip the middleware and router
        # frames that would otherwise stay alive (app.wire.WebSocketShortcut).
        chain = []
        coro: Any = seen[0].reader.get_coro()  # type: ignore[union-attr]
        while coro is not None and hasattr(coro, "cr_code"):
            chain.append(coro.cr_code.co_qualname)
            coro = coro.cr_await
        assert chain[chain.index("Observe._websocket") :][:4] == [
            "Observe._websocket",
            "WebSocketShortcut.__call__",
            "WebsocketEndpoint.handle",
            "WebsocketEndpoint._read_until_closed",
        ]
        assert not {"Router.__call__", "CORSMiddleware.__call__", "BodySizeLimit.__call__"} & set(
            chain
        )
        seen[1].close(4403, "Forbidden: revoked")
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(clients[1].recv(), 5)
        assert clients[1].close_code == 4403 and clients[1].close_reason == "Forbidden: revoked"
        assert not seen[1].reading and seen[1].reader is None and seen[1].closed.is_set()
        # The others are untouched and still answer.
        for ws in (clients[0], clients[2]):
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv()) == {"type": "pong"}
        assert len(asyncio.all_tasks()) - before == 2
    finally:
        for ws in clients:
            await ws.close()
        server.should_exit = True
        await task


def test_the_socket_queue_length_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """WS_QUEUE_LENGTH is at most 4,096: a socket's queue is a list drained from its head."""
    from settings import SettingsError, load_settings

    monkeypatch.setenv("WS_QUEUE_LENGTH", "4096")
    assert load_settings().ws_queue_length == 4096
    monkeypatch.setenv("WS_QUEUE_LENGTH", "4097")
    with pytest.raises(SettingsError, match="WS_QUEUE_LENGTH must be at most 4096, got 4097"):
        load_settings()


def test_an_events_loaders_are_made_on_first_use_and_once() -> None:
    """The hub's per-event loaders: none made for an event whose root and selection read none
    (a trade's odds), one set for all the event's readers otherwise."""
    from realtime.fanout.hub import LazyLoaders

    made: list[object] = []

    class Loaders:
        market_by_id = "the market loader"

    def make() -> Loaders:
        made.append(Loaders())
        return made[-1]  # type: ignore[return-value]

    lazy = LazyLoaders(make)
    assert made == []
    assert lazy.market_by_id == "the market loader"
    assert lazy.market_by_id == "the market loader"
    assert len(made) == 1


def test_a_freeze_leaves_young_garbage_to_the_collector(fresh_settings: Settings) -> None:
    """With a high young threshold much of what is young at a freeze is garbage: gctuning
    collects the young generations first, so a cycle that died just before isn't frozen forever
    (an app started again and again in one process grew a test worker to 9 GB)."""

    class Node:
        other: Any = None

    threshold = gc.get_threshold()
    gc.collect()
    try:
        gc.set_threshold(1_000_000, threshold[1], threshold[2])
        a, b = Node(), Node()
        a.other, b.other = b, a
        dead = weakref.ref(a)
        del a, b
        assert dead() is not None  # a cycle: only the collector frees it
        GCTuning(replace(fresh_settings, gc_gen0_threshold=1_000_000)).after_start_up()
        assert dead() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_an_event_executor_is_the_copy_graphql_core_would_make() -> None:
    """Group._execute copies the group's executor per event directly (copy's generic protocol
    was most of build_per_event_executor's time): the same instance graphql-core's method
    makes, with its own root value and errors; a class with its own copy falls back to it."""
    from graphql import build_schema, parse
    from graphql.execution import Executor

    from realtime.fanout.group import _per_event_executor

    schema = build_schema("type Query { d: String } type Subscription { greeting: String }")
    executor = Executor.build(schema, parse("subscription { greeting }"))
    assert isinstance(executor, Executor)
    ours = _per_event_executor(executor, {"greeting": "hello"})
    theirs = executor.build_per_event_executor({"greeting": "hello"})
    assert type(ours) is type(theirs) and ours is not executor
    assert ours.__dict__.keys() == theirs.__dict__.keys()
    differing = {k for k, v in ours.__dict__.items() if v is not theirs.__dict__[k]}
    assert differing == {"root_value", "collected_errors"}
    assert ours.root_value == {"greeting": "hello"}
    assert ours.collected_errors is not executor.collected_errors
    assert ours.execute_operation(False).data == {"greeting": "hello"}  # type: ignore[union-attr]

    copied: list[str] = []

    class OwnCopy(Executor):
        def __copy__(self) -> OwnCopy:
            copied.append("copied")
            duplicate = object.__new__(OwnCopy)
            duplicate.__dict__.update(self.__dict__)
            return duplicate

    own = OwnCopy.build(schema, parse("subscription { greeting }"))
    assert isinstance(own, OwnCopy)
    assert _per_event_executor(own, {"greeting": "hi"}).root_value == {"greeting": "hi"}
    assert copied == ["copied"]  # graphql-core's own method ran


def test_payloads_are_encoded_as_json_dumps_encoded_them() -> None:
    """Group._encode's payloads (orjson, json.dumps for what orjson refuses or would write
    otherwise): the same compact UTF-8 JSON text as dumps, the same value for a float."""
    from enum import IntEnum

    from realtime.protocol.messages import dumps_payload

    class Level(IntEnum):
        HIGH = 2

    values: list[Any] = [
        {"data": {"title": "Zürich – Ташкент 🚀", "n": 3, "p": 0.1, "ok": True, "x": None}},
        {"data": {"list": [1, 2.5, 'a"b\\c\n'], "nested": {"deep": [{"a": []}]}}},
        {"data": None, "errors": [{"message": "m", "extensions": {"code": "X"}}]},
        {"data": {"odd": "a\ud800b", "big": 2**70}},  # orjson refuses both
        {"data": {1: "an int key"}},
        {"data": {"level": Level.HIGH}},  # a subclass of int: as json.dumps writes it
    ]
    for value in values:
        assert dumps_payload(value) == dumps(value)
    assert json.loads(dumps_payload({"data": {"tiny": 1e-05}})) == {"data": {"tiny": 1e-05}}
    with pytest.raises(TypeError):  # what json.dumps refuses is still refused
        dumps_payload({"data": {"when": object()}})


async def test_a_subscription_reads_its_groups_delivery_once(fresh_settings: Settings) -> None:
    """Sub.coalesced and Sub.sequenced are the group's source's (fixed for a source)."""
    from realtime.fanout.subscription import HANDED, KEPT, REPLACED, Sub

    class Coalesced(SubscriptionSource[int]):
        delivery = "coalesced"

    class Sequenced(SubscriptionSource[int]):
        sequenced = True

    conn, socket = socket_connection(fresh_settings)
    for source, coalesced, sequenced in (
        (Coalesced(), True, False),
        (Sequenced(), False, True),
        (SubscriptionSource[int](), False, False),
    ):
        group = Group(None, (), "f", 1, "c", None, None, source)  # type: ignore[arg-type]
        sub = Sub(conn, "1", group)
        assert (sub.coalesced, sub.sequenced) == (coalesced, sequenced)
    coalesced_group = Group(None, (), "f", 1, "c", None, None, Coalesced())  # type: ignore[arg-type]
    sub = Sub(conn, "7", coalesced_group)
    assert sub.offer(3, '{"n":3}') == HANDED  # straight to the socket
    assert sub.offer(2, '{"n":2}') == KEPT  # older than the last one delivered
    socket.buffered = fresh_settings.ws_direct_write_buffer_bytes + 1  # the client lags
    socket.reading.clear()
    assert sub.offer(4, '{"n":4}') == HANDED  # kept as the latest
    assert sub.offer(5, '{"n":5}') == REPLACED  # in place of the unsent one
    assert list(conn.latest) == ["7"] and '{"n":5}' in conn.latest["7"]
    assert conn.writer_task is not None
    conn.writer_task.cancel()
