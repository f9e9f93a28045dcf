"""Benchmark: subscription fan-out of our hub vs per-subscriber execution vs a bare broadcast.

    .venv/bin/python -m bench.fanout [--sizes 1000,5000] [--events 10]
        [--markets 100] [--per-market 20] [--trade-rounds 1] [--burst-concurrency 8]
        [--rounds 1] [--targets shared,unshared,bare] [--scenarios comments,odds]
        [--event-timeout 120]
        [--time-limit 2400] [--deflate] [--keepalive] [--app-root DIR] [--json PATH]
        [--database-url postgres://…  (an empty database) | --postgres]
        [--workers 1] [--redis | --redis-url redis://…]
        [--source-addresses 8] [--churn 100000] [--churn-concurrency 50]
        [--client light|websockets]

Issue 13's fan-out targets, one run (client in this process, server in its own):

    .venv/bin/python -m bench.fanout --sizes 5000,10000 --events 20 --markets 0 \
        --targets shared,bare --churn 100000

reads, per size: ``done p99`` (per event, until the last subscriber had it; p99 over the
events), ``µs/deliv`` shared / bare, ``KiB/conn`` shared / bare and "subscribed in N s"; then
the churn's VmRSS drift (``--churn``: connect → subscribe → abrupt close with SO_LINGER 0, from
``--source-addresses`` loopback addresses, RSS sampled every tenth of the cycles).

It builds a fresh database (a temporary SQLite file by default) with the demo data, by the app
of ``--app-root`` (default: this tree), and, one server at a time on loopback ports, measures
three targets with the same clients:

* ``shared``: that app (``app:create_app``): identical subscriptions share one execution;
* ``unshared``: the same app with ``Hub.share = False`` (``bench/fanout_app.py`` of this tree
  over ``--app-root``'s app): every subscriber is its own group, so each event is executed and
  encoded once per subscriber;
* ``bare``: a minimal ``websockets`` server (this module with ``--serve-bare``, from this tree)
  that answers graphql-transport-ws' ``connection_init``/``ping`` and, on a trigger sent over a
  control socket, sends one frame of our frames' size to the matching clients with
  ``websockets.broadcast`` (no database, no GraphQL: the floor).

``--workers N`` (which needs PostgreSQL and ``--redis`` or ``--redis-url``) runs ``shared``
and ``unshared`` as N uvicorn workers (``bench.harness.deployment``), so unshared / shared
compares two apps deployed alike. The kernel spreads the subscribers over the workers (the
report says how); an event published on the worker that ran the mutation reaches the other
workers' subscribers through Redis, and the same exactly-once, in-order check applies. ``bare``
stays one process with no broker: the same floor as in a one-process run, so that shared /
bare of a multi-worker run, next to shared / bare of a one-process run in another, shows what
the deployment costs with the machine's noise mostly divided out. Server CPU and RSS are then
the sums over the supervisor and its workers.

Clients are connections of this process, one subscription each (``connection_init`` →
``subscribe`` → ``ping``; the ``pong`` says the subscription is in place, for odds also the
first message). ``--client light`` (the default) is ``bench.fanout_client``: asyncio Protocols
that find a frame's boundary and its marker in the received bytes, a few µs a frame, so that
the client measures the server (the ``websockets`` client, ``--client websockets``, spends tens
of µs a message: at 5,000 subscribers its own lag, ~400 ms p99, decided the completion time of
the bare broadcast and of ours alike). Scenarios, each on a freshly started server:

* ``comments``: ``--sizes`` subscribers to ``commentAdded`` on ONE article (same document and
  variables), then ``--events`` comments posted one after another over HTTP (``postComment`` as
  the demo ``alice``; the server runs with ``COMMENT_RATE=100000/60``), waiting each time until
  every subscriber has it. Before connecting, the same number of comments with no subscriber
  (the mutation's own cost);
* ``odds``: ``--per-market`` subscribers on each of ``--markets`` markets (created as the demo
  admin and traded once, untimed), then one ``buyShares`` per market, one after another, each
  waited for (``--trade-rounds`` times); ``odds burst``: the same trades again,
  ``--burst-concurrency`` in flight.

Latency is per delivery: the time this process read the frame off the socket − the time the
mutation (or trigger) was sent; the wait from that read to the reader task is reported apart
(``lag``). Deliveries/s: deliveries / the sum of (last delivery − send) over the events (the
burst: / (last delivery − first send)). Server CPU is the CPU time of the server's processes
(``bench.harness.procfs``) over all events of a scenario / events, and per delivery beyond the
same events with nobody subscribed (each target measures its own trigger so, before anyone
connects: our server the mutations, the bare server its control messages, which it answers once
broadcast; the same events at the same concurrency); RSS per idle connection is (VmRSS with the
subscribers connected and idle − VmRSS before) / subscribers. Every subscriber must get every
event exactly once, in order (sequence / odds ``seq``); anything else, or a warning in a
server's log, is a problem (exit status 1). Machines here are noisy and the clients share the
machine with the server: read the ratios, the client column (near 100%, the client limits the
rate) and the others column (CPU of every other process while the events ran); ``--rounds``
repeats everything in turn and adds the rounds up.

``--json PATH`` writes the headline ratios and every figure; ``bench.compare`` runs this on
two trees. Per scenario and size, against the bare broadcast: server CPU per delivery net of
each side's trigger (the issue's goal, ≤ 1.5×, named in ``figures.goals``) and server CPU per
event with the trigger (informational: an odds event is a whole trade against a control
message). See ``headline``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import socket
import struct
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from http import HTTPStatus
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench import fanout_client
from bench.fanout_client import LightSocket
from bench.harness import cli
from bench.harness.api import (
    CENTRAL_ASIA,
    HEADERS,
    READER,
    bounded,
    create_markets,
    graphql,
    log_in,
    sign_up,
)
from bench.harness.deployment import Deployment
from bench.harness.procfs import machine_busy
from bench.harness.results import Ratio, Results
from bench.harness.servers import (
    BENCH_ROOT,
    Server,
    bench_module_server,
    log_config_options,
    uvicorn_server,
)
from bench.harness.stats import percentile, ratio

SHARED, UNSHARED, BARE = "shared", "unshared", "bare"
TARGETS = (SHARED, UNSHARED, BARE)
# The unshared app is bench/fanout_app.py (on the path after --app-root) over --app-root's app.
FACTORIES = {SHARED: "app:create_app", UNSHARED: "fanout_app:create_unshared_app"}
COMMENTS, ODDS, BURST, QUIET = "comments", "odds", "odds burst", "no subscribers"
SCENARIOS = (COMMENTS, ODDS)  # --scenarios (odds includes its burst)
PROTOCOL = Subprotocol("graphql-transport-ws")

INIT = json.dumps({"type": "connection_init", "payload": {}})
ACK = json.dumps({"type": "connection_ack"})
PING = json.dumps({"type": "ping"})
PONG = json.dumps({"type": "pong"})

# What an article page would subscribe to (nothing viewer-dependent: one group when shared).
COMMENT_FEED = """
subscription CommentFeed($articleId: ID!) {
  commentAdded(articleId: $articleId) {
    id sequence body bodyHtml createdAt replyCount deleted
    author { username displayName initials }
    parent { id }
  }
}
"""
# What a market widget would subscribe to.
ODDS_FEED = """
subscription Odds($marketId: ID!) {
  oddsUpdated(marketId: $marketId) {
    seq at
    market { id status volume }
    outcomes { id label probability }
    lastTrade { id shares amount probabilityAfter }
  }
}
"""
POST_COMMENT = """
mutation Post($input: PostCommentInput!) {
  postComment(input: $input) { comment { id sequence } errors { code message } }
}
"""
BUY = """
mutation Buy($input: BuySharesInput!) {
  buyShares(input: $input) { trade { id } errors { code message } }
}
"""
ARTICLE = "query Article($slug: String!) { article(slug: $slug) { id } }"
FILLER = (
    "Interesting point about the regional forum, though I would like to see the figures on "
    "trade volumes before drawing conclusions. The last two summits promised a lot and the "
    "follow-up was thin; let's see whether this one is different."
)


def key_of(variables: dict[str, Any]) -> str:
    """What identifies a subscription's target (clients and the bare server agree on it)."""
    return json.dumps(variables, sort_keys=True)


# -- the bare broadcast server (a subprocess: ``python -m bench.fanout --serve-bare``) ----------


async def serve_bare(port: int, deflate: bool, keepalive: bool) -> None:
    """graphql-transport-ws' handshake and nothing else; ``/control`` triggers broadcasts."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.http11 import Request, Response

    groups: dict[str, set[ServerConnection]] = defaultdict(set)

    def process_request(conn: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return conn.respond(HTTPStatus.OK, "ok\n")
        return None

    async def handler(conn: ServerConnection) -> None:
        if conn.request is not None and conn.request.path == "/control":
            with contextlib.suppress(ConnectionClosed):
                async for raw in conn:
                    message = json.loads(raw)
                    broadcast(groups.get(message["key"], ()), message["frame"])
                    # Answered once broadcast: the client waits for a trigger as for a
                    # mutation's answer, so the same triggers with nobody subscribed have a
                    # cost it can measure (the baseline that CPU per delivery is net of).
                    await conn.send(str(message["id"]))
            return
        keys: list[str] = []
        try:
            async for raw in conn:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "connection_init":
                    await conn.send(ACK)
                elif kind == "subscribe":
                    key = key_of(message["payload"].get("variables") or {})
                    groups[key].add(conn)
                    keys.append(key)
                elif kind == "ping":
                    await conn.send(PONG)
        except ConnectionClosed:
            pass
        finally:
            for key in keys:
                groups[key].discard(conn)

    async with serve(
        handler,
        "127.0.0.1",
        port,
        subprotocols=[PROTOCOL],
        compression="deflate" if deflate else None,
        ping_interval=20 if keepalive else None,
        process_request=process_request,
        max_size=2**20,
        backlog=2048,
    ) as server:
        await server.serve_forever()


# -- servers ------------------------------------------------------------------------------------


def start_target(
    name: str, args: argparse.Namespace, deployment: Deployment, folder: Path
) -> Server:
    """Start ``name`` on a free loopback port (the caller stops it)."""
    if name == BARE:
        flags = ["--serve-bare", *(["--deflate"] if args.deflate else [])]
        flags += ["--keepalive"] if args.keepalive else []
        server = bench_module_server(name, "bench.fanout", flags, folder)
    else:
        env = {
            "LOG_LEVEL": "INFO",
            "COMMENT_RATE": "100000/60",
            "SIGNUP_RATE_PER_ADDRESS": "100000/60",
            # The app's own graphql-transport-ws pings (every 20 s by default) off unless asked:
            # 5,000 of them landing inside a measurement would be noise, not fan-out.
            "WS_PING_INTERVAL_SECONDS": "20" if args.keepalive else "3600",
        }
        options = ["--ws-ping-interval", "20" if args.keepalive else "0"]
        options += websocket_options(args.app_root)
        options += log_config_options(folder)
        server = uvicorn_server(
            name,
            FACTORIES[name],
            args.app_root,
            folder,
            {**deployment.env(), **env},
            options,
            [BENCH_ROOT / "bench"],
            deployment.workers,
        )
    server.start()
    return server


def websocket_options(app_root: Path) -> list[str]:
    """The websocket options every start path of ``app_root``'s app gives uvicorn
    (``app.uvicorn_options``), on uvicorn's command line; none for a tree older than them."""
    wire = app_root / "app" / "wire.py"
    if not wire.exists() or "DirectWebSocketProtocol" not in wire.read_text():
        return []
    return ["--ws", "app.wire:DirectWebSocketProtocol", "--ws-per-message-deflate", "false"]


# -- clients ------------------------------------------------------------------------------------


class TimedConnection(ClientConnection):
    """Notes when bytes last came off the socket: a message's receive time.

    With thousands of sockets ready at once, this process reads them all (``data_received``)
    before the reader tasks get to the messages; stamping here keeps that queueing out of the
    latency (it is reported separately as the client's lag).
    """

    arrived = 0.0

    def data_received(self, data: bytes) -> None:
        self.arrived = time.perf_counter()
        super().data_received(data)


async def _end_helpers(helpers: list[asyncio.subprocess.Process], seconds: float) -> None:
    """Close the client processes' stdin (their signal to finish), wait up to ``seconds`` for
    each, and kill what is still running."""
    for helper in helpers:
        if helper.stdin is not None:
            helper.stdin.close()
    for helper in helpers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(helper.wait(), seconds)
        if helper.returncode is None:
            helper.kill()


@dataclass(eq=False)
class Subscriber:
    """One client connection with one subscription, and what it received."""

    key: str
    ws: TimedConnection | LightSocket
    # (arrived, handled by the reader, mark, order)
    got: list[tuple[float, float, Any, int]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # error, complete, unparseable…
    initial_order: int = 0
    closed: str = ""
    task: asyncio.Task[None] | None = None


class Board:
    """Counts deliveries per event as they arrive, and wakes whoever waits for all of them."""

    def __init__(self) -> None:
        self.counts: Counter[Any] = Counter()
        self.waiters: dict[Any, tuple[int, asyncio.Event]] = {}
        self.sample: str | None = None
        self.stopping = False

    def delivered(self, mark: Any) -> None:
        self.counts[mark] += 1
        waiter = self.waiters.get(mark)
        if waiter is not None and self.counts[mark] >= waiter[0]:
            waiter[1].set()

    async def wait(self, mark: Any, needed: int, within: float) -> bool:
        """Until ``needed`` deliveries of ``mark`` (some may have come before the answer)."""
        if self.counts[mark] >= needed:
            return True
        event = asyncio.Event()
        self.waiters[mark] = (needed, event)
        try:
            await asyncio.wait_for(event.wait(), within)
            return True
        except TimeoutError:
            return False
        finally:
            self.waiters.pop(mark, None)


async def read(sub: Subscriber, board: Board) -> None:
    ws = sub.ws
    assert isinstance(ws, TimedConnection)  # the light client needs no reader (listen)
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            arrived, now = ws.arrived, time.perf_counter()
            text = raw if isinstance(raw, str) else raw.decode()
            try:
                message = json.loads(text)
            except ValueError:
                sub.other.append(text[:300])
                continue
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "next":
                mark, order = fanout_client.mark_of_json(message)
                sub.got.append((arrived, now, mark, order))
                board.delivered(mark)
                if board.sample is None:
                    board.sample = text
            elif kind == "ping":
                await ws.send(PONG)
            elif kind != "pong":
                sub.other.append(text[:300])
    if not board.stopping:
        sub.closed = f"code {ws.close_code} {ws.close_reason or ''}".strip()


def source_address(index: int, count: int) -> tuple[str, int] | None:
    """The ``index``-th client's source address: one of ``count`` loopback addresses from
    127.0.0.2 (None: the kernel's choice, 127.0.0.1), so that tens of thousands of connections
    (and the churn's TIME_WAITs) don't exhaust one address's ephemeral ports."""
    return (f"127.0.{2 + (index % count) // 250}.{2 + (index % count) % 250}", 0) if count else None


async def open_subscriber(
    url: str,
    variables: dict[str, Any],
    query: str,
    expect_first: bool,
    deflate: bool,
    local_addr: tuple[str, int] | None = None,
) -> Subscriber:
    """Connect, init, subscribe; return once the subscription is in place."""
    if LIGHT[0] and not deflate:
        return await open_light(url, variables, query, expect_first, local_addr)
    ws = await connect(
        url,
        subprotocols=[PROTOCOL],
        compression="deflate" if deflate else None,
        ping_interval=None,
        proxy=None,
        open_timeout=120,
        close_timeout=5,
        max_size=2**20,
        create_connection=TimedConnection,
        local_addr=local_addr,
    )
    assert isinstance(ws, TimedConnection)
    try:
        sub = Subscriber(key_of(variables), ws)
        await ws.send(INIT)
        ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"expected connection_ack, got {json.dumps(ack)[:200]}")
        payload = {"query": query, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        # Messages are handled in order: the pong comes after the subscription is registered.
        await ws.send(PING)
        ponged, first = False, not expect_first
        while not (ponged and first):
            text = await asyncio.wait_for(ws.recv(), 60)
            message = json.loads(text)
            kind = message.get("type")
            if kind == "pong":
                ponged = True
            elif kind == "next" and not first:
                first = True
                sub.initial_order = fanout_client.mark_of_json(message)[1]
            elif kind == "ping":
                await ws.send(PONG)
            else:
                raise RuntimeError(f"unexpected while subscribing: {str(text)[:200]}")
        return sub
    except BaseException:
        with contextlib.suppress(Exception):
            await ws.close()
        raise


# Whether subscribers use the light client (bench.fanout_client; --client light, the default).
LIGHT = [True]


async def open_light(
    url: str,
    variables: dict[str, Any],
    query: str,
    expect_first: bool,
    local_addr: tuple[str, int] | None,
) -> Subscriber:
    """``open_subscriber`` over the light client: the same messages in the same order."""
    ws = await fanout_client.connect(url, PROTOCOL, 120, local_addr)
    try:
        sub = Subscriber(key_of(variables), ws)
        ws.other = sub.other
        ws.send(INIT)
        ack = json.loads(await ws.recv(60))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"expected connection_ack, got {json.dumps(ack)[:200]}")
        payload = {"query": query, "variables": variables}
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        ws.send(PING)
        ponged, first = False, not expect_first
        while not (ponged and first):
            text = await ws.recv(60)
            message = json.loads(text)
            kind = message.get("type")
            if kind == "pong":
                ponged = True
            elif kind == "next" and not first:
                first = True
                sub.initial_order = fanout_client.mark_of_json(message)[1]
            elif kind == "ping":
                ws.send(PONG)
            else:
                raise RuntimeError(f"unexpected while subscribing: {str(text)[:200]}")
        return sub
    except BaseException:
        ws.abort()
        raise


def listen(sub: Subscriber, board: Board) -> None:
    """Deliveries to ``sub`` from now on, as ``read`` takes them, but from the light client's
    ``data_received`` (no task: the arrival is the handling)."""
    ws = sub.ws
    if not isinstance(ws, LightSocket):
        sub.task = asyncio.create_task(read(sub, board))
        return
    got = sub.got

    def on_next(_: LightSocket, mark: Any, order: int, arrived: float) -> None:
        got.append((arrived, arrived, mark, order))
        board.delivered(mark)
        if board.sample is None:
            board.sample = ws.last_next()

    def ended(_: object) -> None:
        if not board.stopping:
            sub.closed = f"code {ws.close_code} {ws.close_reason or ''}".strip()

    ws.deliver_to(on_next)
    ws.done.add_done_callback(ended)


@dataclass
class Opened:
    subscribers: list[Subscriber]
    failures: Counter[str]
    seconds: float
    server_cpu: float


async def open_all(
    target: Server,
    url: str,
    plan: list[dict[str, Any]],
    query: str,
    expect_first: bool,
    args: argparse.Namespace,
    board: Board,
) -> Opened:
    """One subscriber per ``plan`` entry (its variables), ``--connect-concurrency`` at a time."""
    failures: Counter[str] = Counter()
    semaphore = asyncio.Semaphore(args.connect_concurrency)
    began, cpu = time.perf_counter(), target.cpu_seconds()
    deadline = began + args.connect_time_limit

    async def one(index: int, variables: dict[str, Any]) -> Subscriber | None:
        async with semaphore:
            if time.perf_counter() > deadline:
                failures["not tried: connect phase over --connect-time-limit"] += 1
                return None
            try:
                source = source_address(index, args.source_addresses)
                return await open_subscriber(
                    url, variables, query, expect_first, args.deflate, source
                )
            except Exception as exc:
                failures[f"{type(exc).__name__}: {str(exc)[:160]}"] += 1
                return None

    results = await asyncio.gather(*(one(i, variables) for i, variables in enumerate(plan)))
    subscribers = [sub for sub in results if sub is not None]
    for sub in subscribers:
        listen(sub, board)
    return Opened(subscribers, failures, time.perf_counter() - began, target.cpu_seconds() - cpu)


async def close_all(subscribers: list[Subscriber], board: Board) -> None:
    board.stopping = True

    def closer(sub: Subscriber) -> Callable[[], Awaitable[None]]:
        async def close() -> None:
            with contextlib.suppress(Exception):
                await sub.ws.close()

        return close

    await bounded([closer(sub) for sub in subscribers], 500)
    tasks = [sub.task for sub in subscribers if sub.task is not None]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- events -------------------------------------------------------------------------------------

# (subscription key, index) -> the mark its deliveries will carry
Trigger = Callable[[str, int], Awaitable[Any]]


@dataclass
class Sent:
    key: str
    mark: Any
    sent: float
    answered: float
    needed: int
    complete: bool = False
    error: str = ""


@dataclass
class Batch:
    sent: list[Sent]
    concurrency: int
    elapsed: float
    server_cpu: float
    client_cpu: float
    others_cpu: float


async def fire(
    trigger: Trigger, board: Board, key: str, index: int, needed: int, within: float
) -> Sent:
    sent = time.perf_counter()
    try:
        mark = await trigger(key, index)
    except Exception as exc:
        return Sent(key, None, sent, time.perf_counter(), needed, error=str(exc)[:300])
    answered = time.perf_counter()
    complete = await board.wait(mark, needed, within)
    return Sent(key, mark, sent, answered, needed, complete)


async def run_events(
    target: Server,
    board: Board,
    plan: list[tuple[str, int]],
    trigger: Trigger,
    concurrency: int,
    within: float,
) -> Batch:
    """Fire ``plan`` ((key, deliveries to wait for) each), waiting for full delivery of each."""
    server_cpu, client_cpu, busy = target.cpu_seconds(), time.process_time(), machine_busy()
    began = time.perf_counter()
    if concurrency <= 1:
        sent = [
            await fire(trigger, board, key, index, needed, within)
            for index, (key, needed) in enumerate(plan)
        ]
    else:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(index: int, key: str, needed: int) -> Sent:
            async with semaphore:
                return await fire(trigger, board, key, index, needed, within)

        sent = list(
            await asyncio.gather(*(one(index, key, n) for index, (key, n) in enumerate(plan)))
        )
    server_cpu = target.cpu_seconds() - server_cpu
    client_cpu = time.process_time() - client_cpu
    # /proc/stat counts in clock ticks: over short batches this is rough, never below 0
    others = max(0.0, machine_busy() - busy - server_cpu - client_cpu)
    return Batch(sent, concurrency, time.perf_counter() - began, server_cpu, client_cpu, others)


def comment_trigger(
    http: httpx.AsyncClient, target: Server, token: str, article_id: str, tag: str
) -> Trigger:
    posted = Counter[str]()

    async def post(key: str, index: int) -> Any:
        posted[key] += 1
        text = f"Fan-out {tag} {target.name}:{target.port} #{posted[key]}. {FILLER}"
        variables = {"input": {"articleId": article_id, "body": text}}
        result = await graphql(http, target.base_url, POST_COMMENT, variables, "postComment", token)
        return int(result["comment"]["sequence"])

    return post


def trade_trigger(
    http: httpx.AsyncClient, target: Server, token: str, outcomes: dict[str, str]
) -> Trigger:
    """A 1.00 buy of the first outcome of the market of the subscription key."""

    async def buy(key: str, index: int) -> Any:
        variables = {"input": {"outcomeId": outcomes[key], "amount": "1.00"}}
        result = await graphql(http, target.base_url, BUY, variables, "buyShares", token)
        return str(result["trade"]["id"])

    return buy


class BareControl:
    """The bare server's control socket: each trigger waits for its answer (the bare server
    answers once it has broadcast the frame), however many are in flight."""

    def __init__(self, control: ClientConnection) -> None:
        self.control = control
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.sent = 0
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.control:
                future = self.waiting.pop(str(raw), None)
                if future is not None and not future.done():
                    future.set_result(None)
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("the bare server's control socket closed"))

    async def broadcast(self, key: str, frame: str) -> None:
        """Have the bare server send ``frame`` to the subscribers of ``key``; return once it
        has."""
        self.sent += 1
        number = str(self.sent)
        future = self.waiting[number] = asyncio.get_running_loop().create_future()
        await self.control.send(json.dumps({"key": key, "frame": frame, "id": number}))
        await asyncio.wait_for(future, 60)

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader
        await self.control.close()


def bare_trigger(control: BareControl, template: str | None, field_name: str) -> Trigger:
    """Send the bare server one frame to broadcast: ``template`` with a new mark and order."""
    if template is not None:
        frame: dict[str, Any] = json.loads(template)
    else:  # no sample from our server in this run: a frame of a typical size
        value: dict[str, Any] = {"sequence": 0, "seq": 0, "body": "x" * 600}
        frame = {"id": "1", "type": "next", "payload": {"data": {field_name: value}}}
    orders: Counter[str] = Counter()
    sent = 0

    async def trigger(key: str, index: int) -> Any:
        nonlocal sent
        sent += 1
        orders[key] += 1
        value = frame["payload"]["data"][field_name]
        mark: Any
        if field_name == "commentAdded":
            mark = value["sequence"] = orders[key]
        else:
            mark = f"bare-trade-{sent}"
            value["seq"] = orders[key]
            value["lastTrade"] = {**(value.get("lastTrade") or {}), "id": mark}
        await control.broadcast(key, json.dumps(frame, separators=(",", ":"), ensure_ascii=False))
        return mark

    return trigger


# -- results ------------------------------------------------------------------------------------


@dataclass
class Result:
    """One scenario on one target: totals, so that rounds add up."""

    scenario: str
    target: str
    planned: int  # subscribers per round
    rounds: int = 1
    subscribers: int = 0  # connected, all rounds
    events: int = 0
    expected: int = 0
    delivered: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, per delivery
    lags: list[float] = field(default_factory=list)  # socket read → reader task, per delivery
    firsts: list[float] = field(default_factory=list)  # per event
    # per event: until the last of its subscribers had it (issue 13's "completion time")
    completions: list[float] = field(default_factory=list)
    answers: list[float] = field(default_factory=list)  # mutation round trips
    window: float = 0.0  # seconds the deliveries took (see the module docstring)
    elapsed: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    others_cpu: float = 0.0  # every other process on the machine
    base_cpu: float = 0.0  # the same events with no subscriber…
    base_events: int = 0  # …and how many
    rss_growth_kib: float = 0.0
    idle_cpu: float = 0.0
    idle_seconds: float = 0.0
    connect_seconds: float = 0.0
    connect_cpu: float = 0.0
    timeouts: int = 0
    missing: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    unexpected: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    other: Counter[str] = field(default_factory=Counter)
    closed: Counter[str] = field(default_factory=Counter)
    connect_failures: Counter[str] = field(default_factory=Counter)
    frame_bytes: int = 0

    def merge(self, other: Result) -> None:
        for f in fields(self):
            if f.name in ("scenario", "target", "planned"):
                continue
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "frame_bytes":
                setattr(self, f.name, max(mine, theirs))
            elif isinstance(mine, Counter):
                mine.update(theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(self, f.name, mine + theirs)

    @staticmethod
    def ms(values: list[float], q: float) -> float:
        return percentile(sorted(values), q) * 1000

    @property
    def rate(self) -> float:
        return self.delivered / self.window if self.window > 0 else math.nan

    @property
    def cpu_ms_per_event(self) -> float:
        return self.server_cpu * 1000 / self.events if self.events else math.nan

    @property
    def cpu_us_per_delivery(self) -> float:
        """Server CPU per delivery beyond what the same events cost with no subscriber."""
        if not self.delivered:
            return math.nan
        base = self.base_cpu / self.base_events * self.events if self.base_events else 0.0
        return (self.server_cpu - base) * 1e6 / self.delivered

    @property
    def rss_per_conn_kib(self) -> float:
        return self.rss_growth_kib / self.subscribers if self.subscribers else math.nan

    @property
    def connect_cpu_ms(self) -> float:
        return self.connect_cpu * 1000 / self.subscribers if self.subscribers else math.nan

    def share(self, cpu: float) -> float:
        return cpu / self.elapsed if self.elapsed else math.nan

    @property
    def problems(self) -> int:
        return (
            self.missing
            + self.duplicates
            + self.out_of_order
            + self.unexpected
            + self.timeouts
            + sum(self.other.values())
            + sum(self.closed.values())
            + sum(self.errors.values())
            + sum(self.connect_failures.values())
        )

    def as_json(self) -> dict[str, Any]:
        """The figures of the report's table."""
        return {
            "scenario": self.scenario,
            "target": self.target,
            "subscribers": self.subscribers,
            "events": self.events,
            "delivered": self.delivered,
            "expected": self.expected,
            "p50_ms": self.ms(self.latencies, 50),
            "p99_ms": self.ms(self.latencies, 99),
            "first_p50_ms": self.ms(self.firsts, 50),
            "completion_p50_ms": self.ms(self.completions, 50),
            "completion_p99_ms": self.ms(self.completions, 99),
            "connect_seconds": self.connect_seconds / self.rounds if self.rounds else math.nan,
            "mutation_p50_ms": self.ms(self.answers, 50),
            "deliveries_per_s": self.rate,
            "server_cpu_ms_per_event": self.cpu_ms_per_event,
            "server_cpu_us_per_delivery": self.cpu_us_per_delivery,
            "rss_kib_per_connection": self.rss_per_conn_kib,
            "server_cpu_ms_per_subscribe": self.connect_cpu_ms,
            "client_cpu_share": self.share(self.client_cpu),
            "others_cpu_share": self.share(self.others_cpu),
            "frame_bytes": self.frame_bytes,
            "problems": self.problems,
        }


def analyse(
    scenario: str, target: str, planned: int, batch: Batch, subscribers: list[Subscriber]
) -> Result:
    """Latencies and rates from the clients' receive times; exactly-once-in-order checks."""
    events = [s for s in batch.sent if s.error == ""]
    by_mark = {s.mark: s for s in events}
    marks_by_key: dict[str, list[Any]] = defaultdict(list)
    for s in events:
        marks_by_key[s.key].append(s.mark)
    result = Result(scenario, target, planned, subscribers=len(subscribers))
    result.events = len(batch.sent)
    for s in batch.sent:
        if s.error:
            result.errors[s.error] += 1
    result.timeouts = sum(1 for s in events if not s.complete)
    result.answers = [s.answered - s.sent for s in events]
    first: dict[Any, float] = {}
    last: dict[Any, float] = {}
    for sub in subscribers:
        expected = marks_by_key.get(sub.key, [])
        result.expected += len(expected)
        seen: Counter[Any] = Counter()
        previous = sub.initial_order
        for arrived, handled, mark, order in sub.got:
            if mark not in by_mark:
                result.unexpected += 1
                continue
            seen[mark] += 1
            if seen[mark] > 1:
                result.duplicates += 1
                continue
            if order <= previous:
                result.out_of_order += 1
            previous = order
            result.latencies.append(arrived - by_mark[mark].sent)
            result.lags.append(handled - arrived)
            first[mark] = min(first.get(mark, math.inf), arrived)
            last[mark] = max(last.get(mark, -math.inf), arrived)
        result.missing += sum(1 for mark in expected if not seen[mark])
        for text in sub.other:
            result.other[text[:160]] += 1
        if sub.closed:
            result.closed[sub.closed] += 1
    result.delivered = len(result.latencies)
    result.firsts = [first[m] - by_mark[m].sent for m in first]
    result.completions = [last[m] - by_mark[m].sent for m in last]
    if batch.concurrency <= 1:
        result.window = sum(last[m] - by_mark[m].sent for m in last)
    elif last:
        result.window = max(last.values()) - min(s.sent for s in events)
    result.elapsed = batch.elapsed
    result.server_cpu = batch.server_cpu
    result.client_cpu = batch.client_cpu
    result.others_cpu = batch.others_cpu
    return result


# -- scenarios ----------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    folder: Path
    deployment: Deployment
    tag: str
    article_id: str = ""
    markets: list[tuple[str, str]] = field(default_factory=list)  # (market id, outcome id)
    templates: dict[str, str] = field(default_factory=dict)  # field -> a frame of our server
    results: dict[tuple[str, str, int], Result] = field(default_factory=dict)
    loud: dict[str, list[str]] = field(default_factory=dict)
    retries: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    spreads: dict[str, str] = field(default_factory=dict)  # subscribers per worker, per scenario
    churns: dict[str, Churn] = field(default_factory=dict)  # --churn, per target
    completions: dict[str, dict[str, float]] = field(default_factory=dict)  # --client-processes
    deadline: float = 0.0

    def add(self, result: Result) -> None:
        key = (result.scenario, result.target, result.planned)
        if key in self.results:
            self.results[key].merge(result)
        else:
            self.results[key] = result

    def over_time(self, what: str) -> bool:
        if time.perf_counter() > self.deadline:
            self.skipped.append(what)
            print(f"  skipped {what}: over --time-limit")
            return True
        return False


async def set_up(bench: Bench) -> None:
    """Through the API, untimed: the article, and ``--markets`` markets created by the admin,
    each traded once (1.00 of its first outcome).

    The trade: on this app a market that has never traded (its odds sequence still 0) sends
    ``oddsUpdated`` subscribers no first message, so they would wait for it in vain.
    """
    target = start_target(SHARED, bench.args, bench.deployment, bench.folder)
    try:
        await target.wait_ready()
        async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
            response = await http.post(
                target.base_url + "/graphql",
                content=json.dumps({"query": ARTICLE, "variables": {"slug": CENTRAL_ASIA}}),
                headers=HEADERS,
            )
            bench.article_id = str(response.json()["data"]["article"]["id"])
            if not bench.args.markets or ODDS not in bench.args.scenarios:
                return
            began = time.perf_counter()
            created = await create_markets(
                http, target.base_url, bench.args.markets, "bench.fanout", bench.tag
            )
            bench.markets = [(m.id, m.outcome_ids[0]) for m in created]
            trader = await sign_up(
                http, target.base_url, f"fanout_{bench.tag}_setup", "Fan-out set-up"
            )
            outcomes = {key_of({"marketId": m}): o for m, o in bench.markets}
            buy = trade_trigger(http, target, trader.token, outcomes)
            for index, key in enumerate(outcomes):
                await buy(key, index)
            print(
                f"  {len(bench.markets)} markets created (createMarket as the demo admin) and "
                f"traded once in {time.perf_counter() - began:.1f}s"
            )
    finally:
        target.stop()
        bench.loud["set-up"] = target.loud_lines()


async def make_trigger(
    bench: Bench,
    name: str,
    target: Server,
    http: httpx.AsyncClient,
    field_name: str,
    controls: list[BareControl],
    trader: str = "",
) -> Trigger:
    """The events' trigger on ``name``: comments as the demo reader, trades as a new user (named
    after ``trader`` too: each no-subscriber pass trades as its own, so no wallet runs dry and
    each pass's first trade on a market opens a position as the measured trades' do), or the
    bare server's control messages."""
    if name == BARE:
        control = await connect(
            f"ws://127.0.0.1:{target.port}/control",
            subprotocols=[PROTOCOL],
            compression=None,
            ping_interval=None,
            proxy=None,
        )
        controls.append(BareControl(control))
        return bare_trigger(controls[-1], bench.templates.get(field_name), field_name)
    if field_name == "oddsUpdated":
        username = f"fanout_{bench.tag}_{name}_{target.port}{trader}"
        signed = await sign_up(http, target.base_url, username, username)
        outcomes = {key_of({"marketId": m}): o for m, o in bench.markets}
        return trade_trigger(http, target, signed.token, outcomes)
    token = await log_in(http, target.base_url, READER)
    return comment_trigger(http, target, token, bench.article_id, bench.tag)


async def measure(
    bench: Bench,
    name: str,
    scenario: str,
    plan: list[dict[str, Any]],
    query: str,
    field_name: str,
) -> None:
    """One fresh server: warm up, the no-subscriber baseline, connect, idle, then the events."""
    args = bench.args
    label = f"{scenario} × {len(plan)} on {name}"
    if bench.over_time(label):
        return
    print(f"{label}:")
    target = start_target(name, args, bench.deployment, bench.folder)
    controls: list[BareControl] = []
    subscribers: list[Subscriber] = []
    board = Board()
    try:
        await target.wait_ready()
        ws_url = f"ws://127.0.0.1:{target.port}/" + ("" if name == BARE else "graphql")
        is_odds = field_name == "oddsUpdated"
        expect_first = is_odds and name != BARE  # our oddsUpdated sends the odds at once
        async with httpx.AsyncClient(timeout=600, trust_env=False) as http:
            trigger = await make_trigger(bench, name, target, http, field_name, controls)
            keys = [key_of(variables) for variables in plan]
            distinct = list(dict.fromkeys(keys))

            # Warm-up (untimed): a few subscribers and events, so every code path is loaded.
            warm_board = Board()
            warm = await open_all(target, ws_url, plan[:20], query, expect_first, args, warm_board)
            warm_plan = [(k, sum(1 for s in warm.subscribers if s.key == k)) for k in keys[:2]]
            await run_events(target, warm_board, warm_plan, trigger, 1, args.event_timeout)
            await close_all(warm.subscribers, warm_board)

            # Each phase's events as (subscription key, concurrency), and the trigger's own
            # cost: the same events at the same concurrency with nobody subscribed (the
            # mutation, or the bare server's control message), which CPU per delivery is net of.
            phases: list[tuple[str, list[str], int]]
            if is_odds:
                rounds = [k for _ in range(args.trade_rounds) for k in distinct]
                phases = [(ODDS, rounds, 1), (BURST, rounds, args.burst_concurrency)]
            else:
                phases = [(COMMENTS, [distinct[0]] * args.events, 1)]
            # Measured before the subscribers connect and again after they have gone, both
            # counted: the machine is shared, and a drift between the two halves of the run
            # then biases neither side.
            bases: dict[str, tuple[float, int]] = {phase: (0.0, 0) for phase, _, _ in phases}

            async def measure_triggers(number: int) -> None:
                quiet_trigger = trigger
                if is_odds and name != BARE:
                    quiet_trigger = await make_trigger(
                        bench, name, target, http, field_name, controls, f"_q{number}"
                    )
                for phase, events, concurrency in phases:
                    quiet_plan = [(key, 0) for key in events]
                    quiet = await run_events(
                        target, Board(), quiet_plan, quiet_trigger, concurrency, 10
                    )
                    bench.add(analyse(f"{phase}: {QUIET}", name, 0, quiet, []))
                    cpu, count = bases[phase]
                    bases[phase] = (cpu + quiet.server_cpu, count + len(quiet.sent))

            await measure_triggers(1)
            await asyncio.sleep(0.5)
            rss_before = target.rss_kib()

            opened = await open_all(target, ws_url, plan, query, expect_first, args, board)
            subscribers = opened.subscribers
            print(
                f"  {len(subscribers)}/{len(plan)} subscribed in {opened.seconds:.1f}s "
                f"(server CPU {opened.server_cpu * 1000 / max(1, len(subscribers)):.2f} ms each)"
                + (f"; failures: {dict(opened.failures.most_common(3))}" if opened.failures else "")
            )
            if target.workers > 1:
                note_spread(bench, label, target, subscribers)
            await asyncio.sleep(1.0)
            idle_from = target.cpu_seconds()
            await asyncio.sleep(2.0)
            idle_cpu = target.cpu_seconds() - idle_from
            rss_growth = target.rss_kib() - rss_before
            per_key = Counter(sub.key for sub in subscribers)

            measured: list[Result] = []
            for phase, events, concurrency in phases:
                batch = await run_events(
                    target,
                    board,
                    [(key, per_key[key]) for key in events],
                    trigger,
                    concurrency,
                    args.event_timeout,
                )
                await asyncio.sleep(0.5)  # late or duplicated deliveries
                result = analyse(phase, name, len(plan), batch, subscribers)
                result.rss_growth_kib = rss_growth
                result.idle_cpu, result.idle_seconds = idle_cpu, 2.0
                result.connect_seconds, result.connect_cpu = opened.seconds, opened.server_cpu
                result.connect_failures = opened.failures
                if board.sample is not None:
                    result.frame_bytes = len(board.sample.encode())
                    if name == SHARED:
                        bench.templates.setdefault(field_name, board.sample)
                measured.append(result)
                print(
                    f"  {phase}: {result.delivered}/{result.expected} delivered, completion "
                    f"p50 {result.ms(result.completions, 50):.1f} ms p99 "
                    f"{result.ms(result.completions, 99):.1f} ms over {len(result.completions)} "
                    f"events, per delivery p50 {result.ms(result.latencies, 50):.1f} ms, "
                    f"p99 {result.ms(result.latencies, 99):.1f} ms, {result.rate:,.0f}/s, "
                    f"server CPU {result.cpu_ms_per_event:.1f} ms/event, client lag p99 "
                    f"{result.ms(result.lags, 99):.1f} ms, others "
                    f"{result.share(result.others_cpu):.0%}, problems {result.problems}"
                )
                for sub in subscribers:
                    sub.got.clear()
                    sub.other.clear()
                board.sample = None
            await close_all(subscribers, board)
            subscribers = []
            await asyncio.sleep(1.0)
            await measure_triggers(2)
            for result in measured:
                result.base_cpu, result.base_events = bases[result.scenario]
                bench.add(result)
    finally:
        with contextlib.suppress(Exception):
            await close_all(subscribers, board)
        for control in controls:
            with contextlib.suppress(Exception):
                await control.close()
        if target.replaced_workers():
            bench.failures.append(f"{label}: {target.replaced_workers()}")
        target.stop()
        bench.loud[label] = bench.loud.get(label, []) + target.loud_lines()
        bench.retries.setdefault(f"{scenario} on {name}", Counter()).update(target.trade_retries())
        if target.exit_problem():
            print(f"  {target.exit_problem()}")


def note_spread(bench: Bench, label: str, target: Server, subscribers: list[Subscriber]) -> None:
    """Print (and keep for --json) how the subscribers landed on the workers; say so when a
    worker got none, as then no event crossed Redis to reach a subscriber."""
    ports = {int(sub.ws.local_address[1]) for sub in subscribers}
    spread = target.spread(ports)
    bench.spreads[label] = spread
    print(f"  subscribers per worker (+ other: the mutations' HTTP connection): {spread}")
    empty = [pid for pid, peers in target.connections().items() if not ports & set(peers)]
    if empty:
        print(f"  NOTE: workers {empty} got no subscriber: delivery through Redis not exercised")


# -- completion with several client processes ---------------------------------------------------


async def serve_client_helper(args: argparse.Namespace) -> None:
    """A client process (``--client-helper``): ``--helper-count`` commentAdded subscribers of
    ``--helper-article`` on ``--helper-url``, from source addresses after ``--helper-offset``;
    prints ``ready SECONDS FAILURES``, then ``done MARK LAST_ARRIVAL`` (CLOCK_MONOTONIC, which
    every process shares) once each event reached all of them; ends when stdin closes."""
    raise_nofile()
    board = Board()
    semaphore = asyncio.Semaphore(args.connect_concurrency)
    variables = {"articleId": args.helper_article}
    began = time.perf_counter()
    failures = 0

    async def one(index: int) -> Subscriber | None:
        nonlocal failures
        async with semaphore:
            source = source_address(args.helper_offset + index, args.source_addresses)
            try:
                return await open_subscriber(
                    args.helper_url, variables, COMMENT_FEED, False, False, source
                )
            except Exception:
                failures += 1
                return None

    opened = [s for s in await asyncio.gather(*(one(i) for i in range(args.helper_count))) if s]
    for sub in opened:
        listen(sub, board)
    print(f"ready {time.perf_counter() - began:.3f} {failures}", flush=True)
    reported: set[Any] = set()
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    while not stdin_closed.done():
        for mark, count in list(board.counts.items()):
            if mark not in reported and count >= len(opened):
                reported.add(mark)
                last = max(sub.got[-1][0] for sub in opened if sub.got)
                print(f"done {mark} {last:.6f}", flush=True)
        await asyncio.sleep(0.002)
    await close_all(opened, board)


async def completion(bench: Bench, name: str, size: int) -> None:
    """``size`` commentAdded subscribers on one article spread over ``--client-processes``
    processes; ``--events`` comments one after another, each until its last subscriber had it
    (the issue's completion time); connect+subscribe time of all of them at once."""
    args = bench.args
    label = f"completion × {size} on {name} ({args.client_processes} client processes)"
    if bench.over_time(label):
        return
    print(f"{label}:")
    target = start_target(name, args, bench.deployment, bench.folder)
    controls: list[BareControl] = []
    helpers: list[asyncio.subprocess.Process] = []
    try:
        await target.wait_ready()
        url = f"ws://127.0.0.1:{target.port}/" + ("" if name == BARE else "graphql")
        async with httpx.AsyncClient(timeout=600, trust_env=False) as http:
            trigger = await make_trigger(bench, name, target, http, "commentAdded", controls)
            share = [size // args.client_processes] * args.client_processes
            share[0] += size - sum(share)
            offset, began, cpu = 0, time.perf_counter(), target.cpu_seconds()
            for count in share:
                helpers.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "bench.fanout",
                        "--client-helper",
                        "--client",
                        args.client,
                        "--helper-url",
                        url,
                        "--helper-article",
                        bench.article_id,
                        "--helper-count",
                        str(count),
                        "--helper-offset",
                        str(offset),
                        "--source-addresses",
                        str(args.source_addresses),
                        "--connect-concurrency",
                        str(args.connect_concurrency),
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        cwd=str(BENCH_ROOT),
                    )
                )
                offset += count
            failures = 0
            for helper in helpers:
                assert helper.stdout is not None
                _, _, failed = (await helper.stdout.readline()).decode().split()
                failures += int(failed)
            seconds, connect_cpu = time.perf_counter() - began, target.cpu_seconds() - cpu
            print(
                f"  {size - failures}/{size} connected and subscribed in {seconds:.1f}s "
                f"(server CPU {connect_cpu * 1000 / max(1, size - failures):.2f} ms each)"
            )
            completions: list[float] = []
            cpu = 0.0
            # The first event is a warm-up (code paths loaded), not timed.
            for index in range(args.events + 1):
                if index == 1:
                    cpu = target.cpu_seconds()
                sent = time.perf_counter()
                mark = await trigger(key_of({"articleId": bench.article_id}), index)
                lasts = []
                for helper in helpers:
                    assert helper.stdout is not None
                    while True:
                        line = await asyncio.wait_for(helper.stdout.readline(), args.event_timeout)
                        _, got, last = line.decode().split()
                        if got == str(mark):
                            lasts.append(float(last))
                            break
                if index:
                    completions.append(max(lasts) - sent)
            cpu = target.cpu_seconds() - cpu
        ms = sorted(c * 1000 for c in completions)
        print(
            f"  completion over {len(ms)} events: p50 {percentile(ms, 50):.1f} ms, p99 "
            f"{percentile(ms, 99):.1f} ms, max {ms[-1]:.1f} ms; server CPU "
            f"{cpu * 1000 / max(1, len(ms)):.1f} ms/event"
        )
        bench.completions[f"{name} × {size}"] = {
            "completion_p50_ms": percentile(ms, 50),
            "completion_p99_ms": percentile(ms, 99),
            "connect_seconds": seconds,
            "connect_failures": failures,
            "server_cpu_ms_per_event": cpu * 1000 / max(1, len(ms)),
        }
    finally:
        await _end_helpers(helpers, 60)
        for control in controls:
            with contextlib.suppress(Exception):
                await control.close()
        target.stop()
        bench.loud[label] = bench.loud.get(label, []) + target.loud_lines()


# -- churn: connect → subscribe → abrupt close -------------------------------------------------


def abort(ws: ClientConnection) -> None:
    """Close ``ws`` abruptly: SO_LINGER 0, so the kernel sends RST and keeps no TIME_WAIT (the
    server sees a reset, not a closing handshake)."""
    sock = ws.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


@dataclass
class Churn:
    """RSS of the server along the cycles, and how the cycles went."""

    target: str
    cycles: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    samples: list[tuple[int, float]] = field(default_factory=list)  # (cycles done, VmRSS KiB)
    seconds: float = 0.0
    server_cpu: float = 0.0

    @property
    def drift(self) -> float:
        """End RSS / RSS after the first tenth of the cycles (warm-up: pools, caches) − 1."""
        if len(self.samples) < 2:
            return math.nan
        return self.samples[-1][1] / self.samples[0][1] - 1


async def churn_cycles(
    url: str,
    article_id: str,
    count: int,
    first_index: int,
    concurrency: int,
    source_addresses: int,
    failures: Counter[str],
) -> int:
    """``count`` cycles of connect → init → subscribe (commentAdded on the article) → pong →
    abrupt close (SO_LINGER 0), ``concurrency`` at a time, the ``first_index``-th on; the
    cycles that completed."""
    variables = {"articleId": article_id}
    next_index, end, done = first_index, first_index + count, 0

    async def worker() -> None:
        nonlocal next_index, done
        while next_index < end:
            index = next_index
            next_index += 1
            source = source_address(index, source_addresses)
            try:
                sub = await open_subscriber(url, variables, COMMENT_FEED, False, False, source)
            except Exception as exc:
                failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
                continue
            if isinstance(sub.ws, LightSocket):
                sub.ws.abort()
            else:
                abort(sub.ws)
            done += 1

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return done


async def serve_churn_helper(args: argparse.Namespace) -> None:
    """A churn client process (``--churn-helper``): for each line ``N`` on stdin, N cycles on
    ``--helper-url`` (source addresses from ``--helper-offset`` on), then one line: the cycles
    done and the failures as JSON. Ends when stdin closes."""
    raise_nofile()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    index = args.helper_offset
    while line := await reader.readline():
        count = int(line)
        failures: Counter[str] = Counter()
        done = await churn_cycles(
            args.helper_url,
            args.helper_article,
            count,
            index,
            args.churn_concurrency,
            args.source_addresses,
            failures,
        )
        # Each helper's cycles use source addresses (and ports) of their own range.
        index += count
        print(json.dumps({"done": done, "failures": failures}), flush=True)


async def churn(bench: Bench, name: str) -> Churn | None:
    """``--churn`` cycles of connect → init → subscribe (commentAdded on the article) → pong →
    abrupt close over ``--churn-processes`` client processes (``--churn-concurrency`` at a time
    in each), from ``--source-addresses`` addresses; the server's VmRSS sampled at every tenth
    (after a collection settles: 0.5 s idle)."""
    args = bench.args
    label = f"churn × {args.churn} on {name}"
    if bench.over_time(label):
        return None
    print(f"{label}:")
    target = start_target(name, args, bench.deployment, bench.folder)
    outcome = Churn(name)
    helpers: list[asyncio.subprocess.Process] = []
    try:
        await target.wait_ready()
        url = f"ws://127.0.0.1:{target.port}/" + ("" if name == BARE else "graphql")
        processes = max(1, args.churn_processes)
        for number in range(processes):
            helpers.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.fanout",
                    "--churn-helper",
                    "--client",
                    args.client,
                    "--helper-url",
                    url,
                    "--helper-article",
                    bench.article_id,
                    # Each starts on its own source address (the kernel picks the ports).
                    "--helper-offset",
                    str(number),
                    "--source-addresses",
                    str(args.source_addresses),
                    "--churn-concurrency",
                    str(args.churn_concurrency),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    cwd=str(BENCH_ROOT),
                )
            )
        step = max(1, args.churn // 10)
        began, cpu = time.perf_counter(), target.cpu_seconds()
        done = 0
        while done < args.churn:
            batch = min(step, args.churn - done)
            shares = [batch // processes] * processes
            shares[0] += batch - sum(shares)
            for helper, share in zip(helpers, shares, strict=True):
                assert helper.stdin is not None
                helper.stdin.write(f"{share}\n".encode())
                await helper.stdin.drain()
            for helper in helpers:
                assert helper.stdout is not None
                line = await asyncio.wait_for(helper.stdout.readline(), args.event_timeout * 10)
                if not line:
                    raise RuntimeError(f"a churn client process ended ({helper.returncode})")
                answer = json.loads(line)
                outcome.cycles += int(answer["done"])
                outcome.failures.update(answer["failures"])
            done += batch
            await asyncio.sleep(0.5)
            outcome.samples.append((done, target.rss_kib()))
            print(f"  {done:>7} cycles: server VmRSS {outcome.samples[-1][1] / 1024:.1f} MiB")
        outcome.seconds = time.perf_counter() - began
        outcome.server_cpu = target.cpu_seconds() - cpu
        print(
            f"  {outcome.cycles}/{args.churn} cycles in {outcome.seconds:.1f}s over {processes} "
            f"client processes (server CPU {outcome.server_cpu * 1000 / max(1, done):.2f} ms a "
            f"cycle); RSS drift {outcome.drift:+.1%} (end / after the first tenth)"
            + (f"; failures: {dict(outcome.failures.most_common(3))}" if outcome.failures else "")
        )
        return outcome
    finally:
        await _end_helpers(helpers, 30)
        target.stop()
        bench.loud[label] = bench.loud.get(label, []) + target.loud_lines()


# -- report -------------------------------------------------------------------------------------


def _f(value: float, width: int, spec: str) -> str:
    """``value`` formatted, or "-" for NaN, right-aligned in ``width``."""
    text = "-" if math.isnan(value) else format(value, spec)
    return f"{text:>{width}}"


def _compare(a: Result, b: Result) -> str:
    """a relative to b: latencies, CPU, memory; deliveries/s inverted (b's rate / a's)."""
    text = (
        f"p50 {ratio(a.ms(a.latencies, 50), b.ms(b.latencies, 50)):.2f}x, "
        f"p99 {ratio(a.ms(a.latencies, 99), b.ms(b.latencies, 99)):.2f}x, "
        f"deliveries/s {ratio(b.rate, a.rate):.2f}x, "
        f"CPU/event {ratio(a.cpu_ms_per_event, b.cpu_ms_per_event):.2f}x, "
        f"CPU/delivery {ratio(a.cpu_us_per_delivery, b.cpu_us_per_delivery):.2f}x, "
        f"RSS/conn {ratio(a.rss_per_conn_kib, b.rss_per_conn_kib):.2f}x, "
        f"CPU/subscribe {ratio(a.connect_cpu_ms, b.connect_cpu_ms):.2f}x"
    )
    if a.target != BARE and b.target != BARE:
        text += f", mutation p50 {ratio(a.ms(a.answers, 50), b.ms(b.answers, 50)):.2f}x"
    return text


def report(bench: Bench, limit: tuple[int, int]) -> Results:
    args = bench.args
    results = list(bench.results.values())
    deployment = bench.deployment
    print()
    print(
        f"Python {platform.python_version()}, uvicorn {version('uvicorn')} (uvloop, httptools, "
        f"websockets-sansio), websockets {version('websockets')}, {deployment.database}; "
        f"{os.cpu_count()} cores "
        f"({len(os.sched_getaffinity(0))} usable), load average {os.getloadavg()[0]:.2f}; "
        f"RLIMIT_NOFILE {limit[0]}/{limit[1]}; {args.rounds} round(s); permessage-deflate "
        f"{'offered' if args.deflate else 'off'}, keepalive pings "
        f"{'on (20 s)' if args.keepalive else 'off'}; subscribers' client: {args.client}"
    )
    print(f"shared, unshared: {deployment.describe()}; bare: 1 process, no database or broker")
    if deployment.workers > 1:
        print(
            "server CPU and RSS of shared and unshared: summed over the supervisor and its "
            f"workers; every client in this process, on the same {os.cpu_count()} cores"
        )
    print()
    header = (
        f"{'scenario':<26} {'target':<8} {'subs':>5} {'events':>6} {'delivered':>13} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'done p99':>8} {'1st p50':>7} {'mut p50':>7} "
        f"{'deliv/s':>8} "
        f"{'CPU ms/ev':>9} {'µs/deliv':>8} {'KiB/conn':>8} {'sub ms':>6} "
        f"{'client':>6} {'others':>6} {'lag p99':>7} {'frame':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        quiet = r.scenario.endswith(QUIET)
        mut = r.ms(r.answers, 50) if r.target != BARE else math.nan
        delivered = f"{r.delivered}/{r.expected}" if not quiet else "-"
        subs = r.subscribers // r.rounds if r.rounds else 0
        print(
            f"{r.scenario:<26} {r.target:<8} {subs:>5} {r.events:>6} {delivered:>13} "
            f"{_f(r.ms(r.latencies, 50), 7, '.1f')} {_f(r.ms(r.latencies, 99), 7, '.1f')} "
            f"{_f(r.ms(r.completions, 99), 8, '.1f')} "
            f"{_f(r.ms(r.firsts, 50), 7, '.1f')} {_f(mut, 7, '.1f')} {_f(r.rate, 8, ',.0f')} "
            f"{_f(r.cpu_ms_per_event, 9, '.1f')} {_f(r.cpu_us_per_delivery, 8, '.1f')} "
            f"{_f(r.rss_per_conn_kib, 8, '.1f')} {_f(r.connect_cpu_ms, 6, '.2f')} "
            f"{_f(r.share(r.client_cpu), 6, '.0%')} {_f(r.share(r.others_cpu), 6, '.0%')} "
            f"{_f(r.ms(r.lags, 99), 7, '.1f')} {r.frame_bytes or '-':>5}"
        )
    print(
        "latency: client socket read − mutation/trigger send, per delivery; done: per event, "
        "until its last subscriber had it;\n1st: the first subscriber of each event; mut: the "
        "mutation's HTTP round trip; deliv/s: deliveries / "
        "Σ(last delivery − send) (burst: / (last delivery − first send));\nCPU: server "
        "utime+stime; µs/deliv: beyond the same events with no subscriber (each target's own "
        "'no subscribers' row,\nsame events, same concurrency: the mutation, or bare's "
        "control message); KiB/conn: VmRSS "
        "growth per idle subscribed connection;\nsub ms: server CPU per connect+subscribe; "
        "client / others: CPU of this process / of every other process on the machine, in "
        "cores,\nwhile the events ran; lag p99: socket read → this process's reader task; "
        "frame: bytes of one message"
    )
    idle = [
        f"{r.scenario} × {r.planned} {r.target} {r.idle_cpu / r.idle_seconds:.1%}"
        for r in results
        if r.idle_seconds and r.scenario in (COMMENTS, ODDS)
    ]
    print(f"server CPU while idle with everyone subscribed: {', '.join(idle)}")

    print()
    print("ratios (same run; a / b, so > 1 means a is slower or costlier; deliveries/s: b / a):")
    sizes = [*args.sizes, args.markets * args.per_market]
    for scenario in (COMMENTS, ODDS, BURST):
        for size in dict.fromkeys(sizes):
            shared = bench.results.get((scenario, SHARED, size))
            if shared is None:
                continue
            name = f"{scenario} × {size}"
            unshared = bench.results.get((scenario, UNSHARED, size))
            if unshared is not None:
                print(f"  {name:<18} unshared / shared: {_compare(unshared, shared)}")
            bare = bench.results.get((scenario, BARE, size))
            if bare is not None:
                print(f"  {name:<18} shared / bare:     {_compare(shared, bare)}")
    ratios = headline(bench)
    if ratios:
        print()
        print(
            f"goal (issue 13, M: CPU per delivery ≤ {GOAL_PER_DELIVERY}× the bare broadcast's, "
            "each net of its trigger; the per-event ratio is informational):"
        )
        limits = goals(ratios)
        for label, found in ratios.items():
            verdict = ""
            if label in limits and math.isnan(found.value):
                verdict = " no verdict (a net cost ≤ 0: the trigger's noise exceeds it)"
            elif label in limits:
                verdict = " PASS" if found.value <= limits[label] else " FAIL"
            print(f"  {label}: {found.value:.2f}×{verdict}")

    print()
    failed = False
    for r in results:
        if not r.problems and r.subscribers == r.planned * r.rounds:
            continue
        failed = failed or bool(r.problems)
        print(
            f"{r.scenario} on {r.target}: {r.subscribers}/{r.planned * r.rounds} subscribed; "
            f"missing {r.missing}, duplicates {r.duplicates}, out of order {r.out_of_order}, "
            f"unexpected {r.unexpected}, events not fully delivered in time {r.timeouts}"
        )
        for label, counter in (
            ("failed triggers", r.errors),
            ("other messages", r.other),
            ("closed by the server", r.closed),
            ("connect failures", r.connect_failures),
        ):
            for text, n in counter.most_common(5):
                print(f"    {label}: {n} × {text}")
    for label, figures_of in bench.completions.items():
        print(
            f"completion {label} ({args.client_processes} client processes): p50 "
            f"{figures_of['completion_p50_ms']:.1f} ms, p99 {figures_of['completion_p99_ms']:.1f} "
            f"ms; connect+subscribe {figures_of['connect_seconds']:.1f}s (counts only: order "
            "and duplicates are checked by the single-process scenarios)"
        )
    if not failed and results:
        print(
            "delivery check: every subscriber got every event exactly once, in order "
            "(no error/complete message, no connection closed by a server)"
        )
    loud = {label: lines for label, lines in bench.loud.items() if lines}
    for label, lines in loud.items():
        print(f"server log of {label}: {len(lines)} warning/error lines; the first:")
        for line in lines[:5]:
            print(f"    {line[:300]}")
    if not loud:
        print("server logs: no warnings or errors")
    for name, outcome in bench.churns.items():
        verdict = "flat (within ±5 %)" if abs(outcome.drift) <= 0.05 else "NOT flat (over ±5 %)"
        samples = ", ".join(f"{n}: {kib / 1024:.1f}" for n, kib in outcome.samples)
        print(
            f"churn on {name}: {outcome.cycles} connect → subscribe → abrupt-close cycles in "
            f"{outcome.seconds:.1f}s; server VmRSS MiB by cycles {samples}; drift "
            f"{outcome.drift:+.1%}: {verdict}"
        )
        if outcome.failures:
            failed = True
            print(f"    churn failures: {dict(outcome.failures.most_common(5))}")
    retries = {label: dict(c) for label, c in bench.retries.items() if c}
    print(f"trade retries (agora.trading, INFO): {retries or 'none'}")
    if bench.skipped:
        print(f"skipped (time limit): {', '.join(bench.skipped)}")
    for failure in bench.failures:
        print(f"FAILED {failure}")
    status = 1 if failed or loud or bench.skipped or bench.failures else 0
    figures: dict[str, Any] = {"results": [r.as_json() for r in results]}
    if bench.completions:
        figures["completion"] = bench.completions
    if bench.churns:
        figures["churn"] = {
            name: {
                "cycles": c.cycles,
                "rss_kib": c.samples,
                "drift": c.drift,
                "seconds": c.seconds,
                "server_cpu_ms_per_cycle": c.server_cpu * 1000 / c.cycles if c.cycles else None,
                "failures": sum(c.failures.values()),
            }
            for name, c in bench.churns.items()
        }
    if bench.spreads:
        figures["subscribers_per_worker"] = bench.spreads
    ratios = headline(bench)
    figures["goals"] = goals(ratios)
    return Results(status, ratios, figures)


# The headline ratios' names (after "<scenario> × <size>: "). The goal's (issue 13: CPU per
# delivery ≤ 1.5× the bare broadcast's) is per delivery and net of each side's trigger; the
# per-event one, trigger included, is informational: for odds the trigger is a whole trade.
PER_DELIVERY = "server CPU per delivery shared/bare (net of each trigger's own cost)"
PER_EVENT = "server CPU per event shared/bare (trigger included; informational)"
GOAL_PER_DELIVERY = 1.5


def headline(bench: Bench) -> dict[str, Ratio]:
    """Per scenario and size (each against the bare broadcast of the same run):

    * ``PER_DELIVERY``, the goal's: shared / bare of (server CPU over the events − the same
      events' CPU with nobody subscribed, each side's own baseline) / deliveries. Shared: the
      hub's root values, executions, encoding and writes; bare: ``websockets.broadcast`` of
      frames of the same size. What the trigger costs (a mutation: HTTP, GraphQL, SQL; the
      bare server's control message) is out on both sides;
    * ``PER_EVENT``: shared / bare of server CPU per event, trigger included (the mutation
      against a control message): informational.

    (Not the latencies or the delivery time: between identical runs on a busy machine those
    moved by ±20-50 %.)"""
    ratios = {}
    for (scenario, target, size), shared in bench.results.items():
        bare = bench.results.get((scenario, BARE, size))
        if target != SHARED or bare is None or scenario.endswith(QUIET):
            continue
        # A net cost at or below 0 is the trigger's noise exceeding what is left (bare's 20
        # sends an odds event against its ~0.3-1 ms control message here): no ratio then.
        net = (shared.cpu_us_per_delivery, bare.cpu_us_per_delivery)
        ratios[f"{scenario} × {size}: {PER_DELIVERY}"] = Ratio(
            ratio(*net) if min(net) > 0 else math.nan, "lower"
        )
        ratios[f"{scenario} × {size}: {PER_EVENT}"] = Ratio(
            ratio(shared.cpu_ms_per_event, bare.cpu_ms_per_event), "lower"
        )
    return ratios


def goals(ratios: dict[str, Ratio]) -> dict[str, float]:
    """The headline ratios that are the issue's goal, and their limit (for --json readers)."""
    return {name: GOAL_PER_DELIVERY for name in ratios if name.endswith(PER_DELIVERY)}


# -- main ---------------------------------------------------------------------------------------


def raise_nofile() -> tuple[int, int]:
    """The soft limit of open files up to the hard limit (the servers inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


async def run(args: argparse.Namespace, database_url: str, folder: Path) -> Results:
    """Set up, then every size and scenario on every target, ``--rounds`` times; the report."""
    limit = raise_nofile()
    need = max([*args.sizes, args.markets * args.per_market]) + 200
    if limit[0] < need:
        print(f"RLIMIT_NOFILE is {limit[0]} (hard {limit[1]}): fewer than {need} sockets fit")
    bench = Bench(args, folder, Deployment.of(args, database_url), uuid.uuid4().hex[:6])
    bench.deadline = time.perf_counter() + args.time_limit
    await set_up(bench)
    targets = [t for t in TARGETS if t in args.targets]  # ours first: bare copies their frames
    if args.client_processes:
        for size in args.sizes:
            for name in (t for t in targets if t != UNSHARED):
                try:
                    await completion(bench, name, size)
                except Exception as exc:
                    failure = f"completion × {size} on {name}: {type(exc).__name__}: {exc!s:.300}"
                    print(f"  FAILED {failure}")
                    bench.failures.append(failure)
        if not args.churn:
            return report(bench, limit)
        args.sizes = []
    for number in range(args.rounds):
        if args.rounds > 1:
            print(f"-- round {number + 1} of {args.rounds}")
        for size in args.sizes if COMMENTS in args.scenarios else ():
            plan = [{"articleId": bench.article_id}] * size
            for name in targets:
                await attempt(bench, name, COMMENTS, plan, COMMENT_FEED, "commentAdded")
        if bench.markets and ODDS in args.scenarios:
            market_ids = [m for m, _ in bench.markets]
            plan = [{"marketId": m} for m in market_ids for _ in range(args.per_market)]
            for name in targets:
                await attempt(bench, name, ODDS, plan, ODDS_FEED, "oddsUpdated")
    if args.churn:
        for name in (t for t in targets if t != UNSHARED):
            try:
                outcome = await churn(bench, name)
            except Exception as exc:
                bench.failures.append(f"churn on {name}: {type(exc).__name__}: {str(exc)[:300]}")
                continue
            if outcome is not None:
                bench.churns[name] = outcome
    return report(bench, limit)


async def attempt(
    bench: Bench,
    name: str,
    scenario: str,
    plan: list[dict[str, Any]],
    query: str,
    field_name: str,
) -> None:
    """``measure``; a scenario that fails is reported and the others still run."""
    try:
        await measure(bench, name, scenario, plan, query, field_name)
    except Exception as exc:
        failure = f"{scenario} × {len(plan)} on {name}: {type(exc).__name__}: {str(exc)[:500]}"
        print(f"  FAILED {failure}")
        bench.failures.append(failure)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"comma-separated counts, got {text!r}") from exc
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("counts must be >= 1")
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description="Subscription fan-out: shared vs per-subscriber execution vs bare broadcast.",
    )
    parser.add_argument("--sizes", type=_sizes, default=[1000, 5000], help="commentAdded subs")
    parser.add_argument("--events", type=int, default=10, help="comments posted per size")
    parser.add_argument("--markets", type=int, default=100, help="markets of the odds scenario")
    parser.add_argument("--per-market", type=int, default=20, help="odds subscribers per market")
    parser.add_argument("--trade-rounds", type=int, default=1, help="sequential trades/market")
    parser.add_argument("--burst-concurrency", type=int, default=8, help="trades in flight")
    parser.add_argument("--rounds", type=int, default=1, help="repeat everything, add up")
    parser.add_argument("--targets", type=cli.subset(TARGETS), default=list(TARGETS))
    parser.add_argument(
        "--scenarios",
        type=cli.subset(SCENARIOS),
        default=list(SCENARIOS),
        help="comments (--sizes on one article) and/or odds (--markets × --per-market, and "
        "its burst)",
    )
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument(
        "--source-addresses",
        type=int,
        default=8,
        help="client source addresses 127.0.0.2… (0: 127.0.0.1)",
    )
    parser.add_argument(
        "--churn",
        type=int,
        default=0,
        help="connect → subscribe → abrupt-close cycles (issue 13: 100000)",
    )
    parser.add_argument("--churn-concurrency", type=int, default=50, help="per client process")
    parser.add_argument(
        "--churn-processes", type=int, default=2, help="client processes of the churn"
    )
    parser.add_argument("--churn-helper", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--client-processes",
        type=int,
        default=0,
        help="completion of --sizes over this many client processes (instead of the scenarios)",
    )
    parser.add_argument(
        "--client",
        choices=("light", "websockets"),
        default="light",
        help="subscribers' client: bench.fanout_client (a few µs a frame) or websockets",
    )
    parser.add_argument("--client-helper", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--helper-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--helper-article", default="", help=argparse.SUPPRESS)
    parser.add_argument("--helper-count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--helper-offset", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--connect-time-limit", type=float, default=600.0)
    parser.add_argument("--event-timeout", type=float, default=120.0, help="per event, seconds")
    parser.add_argument("--time-limit", type=float, default=2400.0, help="no new scenario after")
    parser.add_argument("--deflate", action="store_true", help="clients offer permessage-deflate")
    parser.add_argument("--keepalive", action="store_true", help="protocol and app pings on")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    cli.add_common_arguments(parser, workers=True)
    args = parser.parse_args(argv)
    counts = (args.events, args.per_market, args.trade_rounds, args.burst_concurrency, args.rounds)
    if min(counts) < 1 or args.markets < 0 or args.connect_concurrency < 1:
        parser.error("counts must be >= 1 (--markets >= 0)")
    cli.check_common(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    LIGHT[0] = args.client == "light"
    if args.serve_bare:
        uvloop.run(serve_bare(args.port, args.deflate, args.keepalive))
        return 0
    if args.client_helper:
        uvloop.run(serve_client_helper(args))
        return 0
    if args.churn_helper:
        uvloop.run(serve_churn_helper(args))
        return 0
    return cli.run("fanout", args, run, runner=uvloop.run)


if __name__ == "__main__":
    sys.exit(main())
