"""Our graphql-transport-ws server (and the legacy graphql-ws), with shared fan-out.

Why our own: strawberry's handler executes every event once per subscriber. Here identical
subscriptions (same document, variables and, where a field depends on the viewer, the same
viewer) form a group: an event is loaded once, executed once per group, encoded once, and the
same bytes go on each subscriber's connection. Each connection has one writer task and a bounded
queue: a comment subscription that falls behind ends with an ``error`` message (the client
resumes with ``afterSequence``), odds coalesce to the latest, and a slow client delays no one.

``commentAdded`` keeps, per subscriber, the last sequence delivered: a gap (a message lost
between processes, say) is filled from the database before going on, a duplicate is dropped, and
``afterSequence`` replays from the database while live events wait in a bounded buffer.

Replays are the one place a single message asks for unbounded work (one socket with 100
``afterSequence: 0`` subscriptions on a long thread once pushed 2.4 GB in 40 s and held everyone's
queries at ~0.9 s), so they are bounded three ways: at most ``ws_replays_per_connection`` run at
once per connection (the others wait their turn), at most ``ws_replays_per_process`` read or
render a page at once in the process, and no page is pushed faster than the connection's writer
drains the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from graphql.error import GraphQLSyntaxError
from graphql.execution import Executor
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from accounts.service import token_hash
from api import extensions
from api.comments.types import Comment
from api.context import Context, Services
from api.core.errors import ApiError, BadUserInput, NotFound
from api.core.node import from_global_id
from api.extensions import format_errors
from api.loaders import Loaders
from api.markets.types import Market, OddsUpdate, Trade, outcome_types
from api.schema import AgoraSchema
from clientaddr import UNKNOWN, client_address
from db import models
from db.health import is_database_down, within
from db.sql import fetch_dicts
from logs import get_logger
from realtime.brokers import Broker
from realtime.events import SESSIONS, comments_channel, odds_channel
from settings import Settings

logger = get_logger("agora.ws")


TRANSPORT = "graphql-transport-ws"
LEGACY = "graphql-ws"
# Replay comments rendered between two yields to the event loop (see Group.render_page).
RENDER_SLICE = 25
# Fields whose value depends on who is asking: documents selecting them are not shared.
VIEWER_FIELDS = {"viewerCanEdit", "viewerCanDelete", "viewerPosition", "balance", "reportCount"}


class Closed(Exception):
    """The connection is being closed with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _error_payload(errors: list[GraphQLError]) -> list[Any]:
    return [e.formatted for e in format_errors(errors) or []]


# -- connections ---------------------------------------------------------------------------


class Connection:
    """One websocket: its viewer, subscriptions, bounded outbox and writer task."""

    def __init__(
        self, ws: WebSocket, protocol: str, settings: Settings, client_address: str = UNKNOWN
    ) -> None:
        self.ws = ws
        self.protocol = protocol
        self.settings = settings
        # Derived once from the handshake: every operation of the socket is rate limited as
        # coming from here (without it all websocket clients shared the "unknown" bucket).
        self.client_address = client_address
        self.viewer: models.User | None = None
        self.token = ""
        self.token_hash = ""
        self.session_expires: datetime | None = None
        self.subs: dict[str, Sub] = {}
        self.queue: deque[str] = deque()
        self.latest: dict[str, str] = {}
        self.wake = asyncio.Event()
        self.closing: Closed | None = None
        self.last_pong = asyncio.get_running_loop().time()
        # Replays of this connection running at once; the rest wait their turn here.
        self.replay_slots = asyncio.Semaphore(settings.ws_replays_per_connection)
        # A replay fills the queue up to half its bound, leaving the other half to live events
        # (which end their subscription when the queue is full), and resumes once the writer has
        # drained it to a quarter: a high and a low water mark, so the two don't take turns
        # frame by frame.
        self.replay_high_water = max(1, settings.ws_queue_length // 2)
        self.replay_low_water = self.replay_high_water // 2
        self.drained = asyncio.Event()

    def push(self, frame: str, force: bool = False) -> bool:
        """Queue a frame; False (and nothing queued) if the queue is full, unless forced."""
        if self.closing is not None:
            return True
        if not force and len(self.queue) >= self.settings.ws_queue_length:
            return False
        self.queue.append(frame)
        self.wake.set()
        return True

    def push_latest(self, sub_id: str, frame: str) -> None:
        """Queue a frame that replaces any not yet sent for the same subscription."""
        self.latest[sub_id] = frame
        self.wake.set()

    def send(self, message: dict[str, Any]) -> None:
        self.push(_dumps(message), force=True)

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = Closed(code, reason)
            self.wake.set()
            self.drained.set()  # a replay waiting for room must not wait forever

    async def room_for_replay(self) -> None:
        """Wait until the writer has drained the queue enough for a replay to push more."""
        while self.closing is None and len(self.queue) >= self.replay_high_water:
            self.drained.clear()
            await self.drained.wait()

    async def writer(self) -> None:
        """Send queued frames in order until closed; a vanished client just ends the loop."""
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while self.queue or self.latest:
                    if self.queue:
                        frame = self.queue.popleft()
                        if len(self.queue) <= self.replay_low_water:
                            self.drained.set()
                    else:
                        sub_id = next(iter(self.latest))
                        frame = self.latest.pop(sub_id)
                    # Waits while the client isn't reading (the transport's buffer is full):
                    # that is what paces replays to the client.
                    await self.ws.send_text(frame)
                if self.closing is not None:
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.closing = self.closing or Closed(1006, "client went away")
            self.drained.set()


@dataclass(eq=False)
class Sub:
    """One subscription of a connection."""

    conn: Connection
    id: str
    group: Group
    last_seq: int = 0
    replaying: bool = True
    buffer: list[tuple[int, str]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    done: bool = False

    def __post_init__(self) -> None:
        kind = "next" if self.conn.protocol == TRANSPORT else "data"
        # Everything of a frame but the payload, built once per subscription.
        self.prefix = '{"id":' + _dumps(self.id) + ',"type":"' + kind + '","payload":'

    def frame(self, payload_json: str) -> str:
        return self.prefix + payload_json + "}"

    def offer(self, seq: int | None, payload_json: str) -> None:
        """A rendered event for this subscriber, in the group's order."""
        if self.done:
            return
        kind = self.group.kind
        if kind == "oddsUpdated":
            if seq is not None and seq <= self.last_seq:
                return
            self.last_seq = seq or self.last_seq
            self.conn.push_latest(self.id, self.frame(payload_json))
            return
        if kind == "commentUpdated" or seq is None:
            self._push(payload_json)
            return
        if self.replaying:
            if len(self.buffer) >= self.conn.settings.ws_queue_length:
                # Bounded: drop the oldest. It is in the database, and the newer event kept
                # here makes the catch-up fill the gap from there. (Ending the subscription
                # instead would punish a client for waiting its turn to replay.)
                self.buffer.sort()
                del self.buffer[0]
            self.buffer.append((seq, payload_json))
            return
        if seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            self.buffer.append((seq, payload_json))
            self.start_catch_up(None)
            return
        if self._push(payload_json):
            self.last_seq = seq

    def _push(self, payload_json: str) -> bool:
        if self.conn.push(self.frame(payload_json)):
            return True
        self.overflow()
        return False

    def overflow(self) -> None:
        """The client fell behind: end this subscription with an error, keep the socket."""
        self.conn.send(
            {
                "id": self.id,
                "type": "error",
                "payload": [
                    {
                        "message": "Subscription ended: the client fell behind. Resubscribe "
                        f"with afterSequence: {self.last_seq} to resume.",
                        "extensions": {
                            "code": "SUBSCRIPTION_OVERFLOW",
                            "lastSequence": self.last_seq,
                        },
                    }
                ],
            }
        )
        self.group.hub.remove(self)

    def start_catch_up(self, replay_from: int | None) -> None:
        self.replaying = True
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._catch_up(replay_from))

    async def _catch_up(self, replay_from: int | None) -> None:
        """Deliver from the database what the live stream missed, then the buffered events."""
        try:
            if replay_from is not None:
                await self._fill(replay_from, None)
            while self.buffer and not self.done:
                self.buffer.sort()
                seq, payload = self.buffer.pop(0)
                if seq <= self.last_seq:
                    continue
                if seq > self.last_seq + 1:
                    await self._fill(self.last_seq, seq)
                    self.last_seq = max(self.last_seq, seq - 1)
                if not self._push(payload):
                    return
                self.last_seq = seq
            self.replaying = False
        except Closed:
            self.conn.send(
                {
                    "id": self.id,
                    "type": "error",
                    "payload": [
                        {
                            "message": "Too many comments to replay: resubscribe with a later "
                            f"afterSequence (last delivered: {self.last_seq}).",
                            "extensions": {"code": "REPLAY_LIMIT", "lastSequence": self.last_seq},
                        }
                    ],
                }
            )
            self.group.hub.remove(self)
        except Exception:
            logger.exception("catching up subscription %s failed", self.id)
            self.conn.send(
                {
                    "id": self.id,
                    "type": "error",
                    "payload": [
                        {
                            "message": "Internal server error.",
                            "extensions": {"code": "INTERNAL_SERVER_ERROR"},
                        }
                    ],
                }
            )
            self.group.hub.remove(self)

    async def _fill(self, after: int, before: int | None) -> None:
        """Deliver the comments in (``after``, ``before``) from the database, in order, skipping
        deleted ones.

        A page at a time: the connection's replay slot is held throughout (so one socket runs at
        most ``ws_replays_per_connection`` replays, however many it asks for), the process's only
        while a page is read and rendered (so a client that stops reading stalls its own
        replays, not everyone's), and each frame waits for room in the connection's queue.
        """
        conn = self.conn
        settings = conn.settings
        hub = self.group.hub
        limit = settings.ws_replay_limit
        sent = 0
        async with conn.replay_slots:
            while not self.done and conn.closing is None:
                wanted = min(settings.ws_replay_page_size, limit - sent)
                async with hub.replay_slots:
                    rows = await fetch_dicts(
                        "SELECT * FROM comments WHERE article_id = ? AND sequence > ? "
                        "AND deleted = ? "
                        + ("AND sequence < ? " if before is not None else "")
                        + "ORDER BY sequence LIMIT ?",
                        [self.group.target, after, False]
                        + ([before] if before is not None else [])
                        + [wanted],
                    )
                    comments = [models.Comment._init_from_db(**row) for row in rows]
                    payloads = await self.group.render_page(
                        [Comment.from_row(comment) for comment in comments]
                    )
                for comment, payload in zip(comments, payloads, strict=True):
                    await conn.room_for_replay()
                    if self.done or conn.closing is not None:
                        return
                    if not self._push(payload):
                        return
                    self.last_seq = after = comment.sequence
                    sent += 1
                if sent >= limit:
                    raise Closed(4400, "replay limit reached")
                if len(rows) < wanted:
                    return
                # Let every other task run between pages, even when nothing above had to wait.
                await asyncio.sleep(0)


# -- groups and the hub ----------------------------------------------------------------------


@dataclass(eq=False)
class Group:
    """Subscriptions that render identically: one execution per event for all of them."""

    hub: Hub
    key: tuple[Any, ...]
    kind: str
    target: int
    channel: str
    executor: Executor
    viewer: models.User | None
    subs: set[Sub] = field(default_factory=set)

    def _execute(self, root: Any, loaders: Loaders) -> Any:
        """Start executing the document with ``root``: a result, or an awaitable of one."""
        event_executor = self.executor.build_per_event_executor(root)
        # graphql-core's per-event copy shares the group's memo of collected subfields, keyed by
        # the identity of field lists each execution builds anew: shared, it kept an entry or
        # two (and their field lists) per event for the life of the group — 27,500 objects
        # after a 13,750-comment replay, and full collections of 100-300 ms. One per event.
        event_executor._relevant_sub_fields = {}
        # No client address: a group's context is shared by many sockets, and nothing a
        # subscription's selection reaches is rate limited.
        event_executor.context_value = Context(
            settings=self.hub.settings,
            services=self.hub.services,
            loaders=loaders,
            viewer=self.viewer,
        )
        return event_executor.execute_operation(False)

    @staticmethod
    def _encode(result: ExecutionResult) -> str:
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = _error_payload(list(result.errors))
        return _dumps(payload)

    async def render(self, root: Any, loaders: Loaders) -> str:
        """Execute the document once with ``root`` and encode the payload once."""
        outcome = self._execute(root, loaders)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return self._encode(cast(ExecutionResult, outcome))

    async def render_page(self, roots: list[Any]) -> list[str]:
        """Render a replay page with one set of loaders, so a relation the selection reaches is
        one batched query per slice (and mostly cache hits after the first slice).

        In slices, with a yield between them: a whole page of 200 held the loop for 30-150 ms
        on a busy 2-core machine (~0.3 ms of graphql-core per comment).
        """
        loaders = Loaders()
        payloads: list[str] = []
        for start in range(0, len(roots), RENDER_SLICE):
            if start:
                await asyncio.sleep(0)
            outcomes = [
                self._execute(root, loaders) for root in roots[start : start + RENDER_SLICE]
            ]
            pending = [(i, o) for i, o in enumerate(outcomes) if inspect.isawaitable(o)]
            if pending:
                done = await asyncio.gather(*(outcome for _, outcome in pending))
                for (i, _), result in zip(pending, done, strict=True):
                    outcomes[i] = result
            payloads.extend(self._encode(cast(ExecutionResult, o)) for o in outcomes)
        return payloads


class Hub:
    """Routes broker events to groups; knows every connection (for revocation)."""

    def __init__(
        self,
        schema: AgoraSchema,
        settings: Settings,
        services: Services,
        broker: Broker,
        share: bool = True,
    ) -> None:
        self.schema = schema
        self.settings = settings
        self.services = services
        self.broker = broker
        self.share = share
        self.groups: dict[tuple[Any, ...], Group] = {}
        self.by_channel: dict[str, set[Group]] = {}
        self.connections: set[Connection] = set()
        # Replay pages read and rendered at once in this process (see Sub._fill).
        self.replay_slots = asyncio.Semaphore(settings.ws_replays_per_process)
        broker.listen(self.on_event)
        broker.on_reconnect(self.resync)

    # -- membership

    def add(
        self,
        conn: Connection,
        sub_id: str,
        group_key: tuple[Any, ...],
        make_group: Callable[[], Group],
    ) -> Sub:
        group = self.groups.get(group_key)
        if group is None:
            group = self.groups[group_key] = make_group()
            self.by_channel.setdefault(group.channel, set()).add(group)
        sub = Sub(conn, sub_id, group)
        group.subs.add(sub)
        conn.subs[sub_id] = sub
        return sub

    def remove(self, sub: Sub) -> None:
        sub.done = True
        if sub.task is not None and not sub.task.done() and sub.task is not asyncio.current_task():
            sub.task.cancel()
        sub.conn.subs.pop(sub.id, None)
        sub.conn.latest.pop(sub.id, None)
        group = sub.group
        group.subs.discard(sub)
        if not group.subs:
            self.groups.pop(group.key, None)
            channel_groups = self.by_channel.get(group.channel)
            if channel_groups is not None:
                channel_groups.discard(group)
                if not channel_groups:
                    del self.by_channel[group.channel]

    # -- events

    async def on_event(self, channel: str, event: dict[str, Any]) -> None:
        if channel == SESSIONS:
            self._revoke(event)
            return
        groups = self.by_channel.get(channel)
        if not groups:
            return
        loaders = Loaders()
        roots: dict[str, Any] = {}
        for group in list(groups):
            if group.kind not in roots:
                roots[group.kind] = await self._root(group.kind, group.target, event, loaders)
            root = roots[group.kind]
            if root is None:
                continue
            try:
                payload = await group.render(root, loaders)
            except Exception:  # one group's failure must not cost the others the event
                logger.exception("rendering an event for %s failed", group.channel)
                continue
            seq = event.get("seq")
            for sub in list(group.subs):
                sub.offer(seq if isinstance(seq, int) else None, payload)

    async def _root(self, field: str, target: int, event: dict[str, Any], loaders: Loaders) -> Any:
        if field == "oddsUpdated":
            return await odds_update(target, event.get("seq"), event.get("trade_id"), loaders)
        kind = event.get("kind")
        if (field == "commentAdded") != (kind == "added"):
            return None
        row = await loaders.comment_by_id.load(int(event["comment_id"]))
        if row is None or (field == "commentAdded" and row.deleted):
            return None
        return Comment.from_row(row)

    async def resync(self) -> None:
        """After an outage between processes: fill every comment subscription from the database."""
        for group in list(self.groups.values()):
            if group.kind != "commentAdded":
                continue
            for sub in list(group.subs):
                if not sub.replaying:
                    sub.start_catch_up(sub.last_seq)

    def _revoke(self, event: dict[str, Any]) -> None:
        for conn in list(self.connections):
            if conn.viewer is None:
                continue
            if (event.get("kind") == "token" and conn.token_hash == event.get("token_hash")) or (
                event.get("kind") == "user"
                and conn.viewer.id == event.get("user_id")
                and conn.token_hash != event.get("keep")
            ):
                conn.close(4403, "Forbidden: session revoked")


async def odds_update(
    market_id: int, seq: int | None, trade_id: int | None, loaders: Loaders
) -> OddsUpdate | None:
    """The root object of an oddsUpdated message."""
    market = await loaders.market_by_id.load(market_id)
    if market is None:
        return None
    outcomes = await loaders.outcomes_by_market.load(market_id)
    trade = await loaders.trade_by_id.load(trade_id) if trade_id else None
    return OddsUpdate(
        market=Market.from_row(market),
        outcomes=outcome_types(market, outcomes),
        seq=market.odds_seq if seq is None else seq,
        at=datetime.now(UTC),
        last_trade=Trade.from_row(trade) if trade else None,
    )


# -- the endpoint ------------------------------------------------------------------------------


def _selects_viewer_fields(document: DocumentNode) -> bool:
    from graphql import visit
    from graphql.language import Visitor

    found = False

    class Finder(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            nonlocal found
            if node.name.value in VIEWER_FIELDS:
                found = True

    visit(document, Finder())
    return found


class WebsocketEndpoint:
    """The ASGI websocket handler for /graphql."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.settings = hub.settings
        self._documents: dict[str, tuple[DocumentNode, list[GraphQLError]]] = {}

    def origin_allowed(self, ws: WebSocket) -> bool:
        origin = ws.headers.get("origin")
        if origin is None:
            return True  # not a browser: CSRF-style attacks need one
        host = ws.headers.get("host", "")
        return origin in self.settings.cors_origins or origin.split("://", 1)[-1] == host

    async def handle(self, ws: WebSocket) -> None:
        if not self.origin_allowed(ws):
            await ws.close(code=1008)  # before accept: the handshake gets HTTP 403
            return
        offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",")]
        protocol = TRANSPORT if TRANSPORT in offered else LEGACY if LEGACY in offered else None
        if protocol is None:
            await ws.accept()
            await ws.close(code=4406, reason="Subprotocol not acceptable")
            return
        await ws.accept(subprotocol=protocol)
        address = client_address(
            ws.client.host if ws.client else None, ws.headers, self.settings.trusted_proxies
        )
        conn = Connection(ws, protocol, self.settings, address)
        self.hub.connections.add(conn)
        writer = asyncio.create_task(conn.writer())
        reader = asyncio.create_task(self._read(conn))
        pinger = asyncio.create_task(self._ping(conn))
        try:
            await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, pinger):
                task.cancel()
            for sub in list(conn.subs.values()):
                self.hub.remove(sub)
            self.hub.connections.discard(conn)
            if conn.closing is not None and not writer.done():
                # Let the writer flush what was queued before the close (errors, acks).
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, 2)
            writer.cancel()
            if ws.application_state != WebSocketState.DISCONNECTED:
                closing = conn.closing or Closed(1000, "")
                with contextlib.suppress(Exception):
                    await ws.close(code=closing.code, reason=closing.reason)

    async def _ping(self, conn: Connection) -> None:
        interval = self.settings.ws_ping_interval_seconds
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            if conn.session_expires is not None and conn.session_expires <= datetime.now(UTC):
                conn.close(4403, "Forbidden: session expired")
                return
            if conn.protocol == TRANSPORT:
                if loop.time() - conn.last_pong > 2 * interval + 1:
                    conn.close(1001, "No pong: connection presumed dead")
                    return
                conn.send({"type": "ping"})
            else:
                conn.send({"type": "ka"})

    async def _read(self, conn: Connection) -> None:
        try:
            await self._init(conn)
            while conn.closing is None:
                message = await self._receive(conn, None)
                try:
                    await self._handle(conn, message)
                except (Closed, WebSocketDisconnect):
                    raise
                except Exception:
                    # One bad message must not take the connection's other subscriptions down.
                    logger.exception("handling a %s message failed", message.get("type"))
                    if isinstance(message.get("id"), str):
                        conn.send(
                            {
                                "id": message["id"],
                                "type": "error",
                                "payload": [
                                    {
                                        "message": "Internal server error.",
                                        "extensions": {"code": "INTERNAL_SERVER_ERROR"},
                                    }
                                ],
                            }
                        )
        except Closed as closed:
            conn.close(closed.code, closed.reason)
        except WebSocketDisconnect:
            conn.close(1000, "")

    async def _receive(self, conn: Connection, wait_seconds: float | None) -> dict[str, Any]:
        try:
            raw = await asyncio.wait_for(conn.ws.receive(), wait_seconds)
        except TimeoutError as exc:
            raise Closed(4408, "Connection initialisation timeout") from exc
        if raw["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(raw.get("code", 1000))
        text = raw.get("text")
        data = raw.get("bytes")
        limit = self.settings.ws_max_message_bytes
        # Size first, whatever the kind: a too-big binary message is "too big" (1009) too. A
        # character is 1 to 4 bytes of UTF-8, so most texts are decided without encoding them.
        if text is not None:
            too_big = len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit)
        else:
            too_big = len(data or b"") > limit
        if too_big:
            raise Closed(1009, "Message too big")
        if text is None:
            raise Closed(4400, "Binary messages are not supported")
        try:
            message = json.loads(text)
        except ValueError as exc:
            raise Closed(4400, "Invalid message received") from exc
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise Closed(4400, "Invalid message received")
        conn.last_pong = asyncio.get_running_loop().time()
        return message

    async def _init(self, conn: Connection) -> None:
        message = await self._receive(conn, self.settings.ws_init_timeout_seconds)
        if message["type"] != "connection_init":
            if conn.protocol == TRANSPORT and message["type"] == "subscribe":
                raise Closed(4401, "Unauthorized")
            raise Closed(4400, "Expected connection_init")
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            raise Closed(4400, "Invalid connection_init payload")
        authorization = payload.get("authorization") or payload.get("Authorization")
        if authorization:
            scheme, _, token = str(authorization).strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Closed(4403, "Forbidden: bad authorization")
            try:
                session = await within(
                    self.hub.services.accounts.session(token.strip()),
                    self.settings.db_timeout_seconds,
                )
            except Exception as exc:
                if not is_database_down(exc):
                    raise
                # Not the client's fault and not a bad token: 1013 tells it to come back later
                # (a close without a code, as before, reads as "done", 1011 as a server bug).
                logger.warning("connection_init: the database is unavailable (%r)", exc)
                raise Closed(1013, "Try again later: the database is unavailable") from exc
            if session is None:
                raise Closed(4403, "Forbidden: invalid or expired token")
            conn.viewer, conn.session_expires = session.user, session.expires_at
            conn.token, conn.token_hash = token.strip(), token_hash(token.strip())
        conn.send({"type": "connection_ack"})

    async def _handle(self, conn: Connection, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "connection_init":
            raise Closed(4429, "Too many initialisation requests")
        if kind == "ping":
            conn.send(
                {
                    "type": "pong",
                    **({"payload": message["payload"]} if "payload" in message else {}),
                }
            )
            return
        if kind in ("pong", "ka"):
            return
        if kind in ("complete", "stop"):
            sub = conn.subs.get(str(message.get("id")))
            if sub is not None:
                self.hub.remove(sub)
            return
        if kind == "connection_terminate":
            raise Closed(1000, "")
        if kind not in ("subscribe", "start"):
            raise Closed(4400, f"Unexpected message type {kind!r}")
        sub_id = message.get("id")
        payload = message.get("payload")
        if not isinstance(sub_id, str) or not sub_id or not isinstance(payload, dict):
            raise Closed(4400, "Invalid subscribe message")
        if sub_id in conn.subs:
            raise Closed(4409, f"Subscriber for {sub_id} already exists")
        await self._subscribe(conn, sub_id, payload)

    def _checked(self, query: str) -> tuple[DocumentNode, list[GraphQLError]] | GraphQLSyntaxError:
        """Parse and validate, cached by query text: thousands of clients send the same one."""
        cached = self._documents.get(query)
        if cached is None:
            try:
                document = parse(query, max_tokens=self.settings.max_query_tokens)
            except GraphQLSyntaxError as exc:
                return exc
            # The checks every transport runs on a document alone: cacheable by its text.
            cached = (
                document,
                extensions.document_errors(self.hub.schema._schema, document, self.settings),
            )
            if len(self._documents) >= self.settings.validation_cache_size:
                self._documents.pop(next(iter(self._documents)))
            self._documents[query] = cached
        return cached

    def _error(self, conn: Connection, sub_id: str, errors: list[GraphQLError]) -> None:
        conn.send({"id": sub_id, "type": "error", "payload": _error_payload(errors)})

    async def _subscribe(self, conn: Connection, sub_id: str, payload: dict[str, Any]) -> None:
        query = payload.get("query")
        variables = payload.get("variables")
        if variables is None:
            variables = {}
        operation_name = payload.get("operationName")
        if (
            not isinstance(query, str)
            or not isinstance(variables, dict)
            or not isinstance(operation_name, str | None)
        ):
            raise Closed(4400, "Invalid message received: malformed subscribe payload")
        if len(conn.subs) >= self.settings.ws_max_subscriptions:
            self._error(
                conn,
                sub_id,
                [
                    GraphQLError(
                        f"At most {self.settings.ws_max_subscriptions} subscriptions "
                        "per connection.",
                        extensions={"code": "TOO_MANY_SUBSCRIPTIONS"},
                    )
                ],
            )
            return
        schema = self.hub.schema._schema
        parsed = self._checked(query)
        if isinstance(parsed, GraphQLSyntaxError):
            self._error(conn, sub_id, [parsed])
            return
        document, errors = parsed
        if not errors:
            # The checks every transport runs on this request's variables and operation name.
            error = extensions.request_error(
                schema, document, operation_name, variables, self.settings
            )
            errors = [error] if error else []
        if errors:
            self._error(conn, sub_id, list(errors))
            return
        operation = extensions.choose_operation(document, operation_name)
        if isinstance(operation, GraphQLError):
            self._error(conn, sub_id, [operation])
            return
        if operation.operation != OperationType.SUBSCRIPTION:
            await self._execute_once(conn, sub_id, query, variables, operation_name)
            return
        try:
            await self._start_subscription(
                conn, sub_id, query, document, operation, variables, operation_name
            )
        except ApiError as exc:
            self._error(conn, sub_id, [GraphQLError(exc.message, extensions={"code": exc.code})])

    async def _execute_once(
        self,
        conn: Connection,
        sub_id: str,
        query: str,
        variables: dict[str, Any],
        operation_name: str | None,
    ) -> None:
        context = Context(
            settings=self.settings,
            services=self.hub.services,
            viewer=conn.viewer,
            token=conn.token,
            client_address=conn.client_address,
            request=conn.ws,
            loaders=Loaders(self.settings.max_response_objects),
        )
        result = await self.hub.schema.execute(
            query, variable_values=variables, context_value=context, operation_name=operation_name
        )
        payload: dict[str, Any] = {"data": result.data}
        limit = self.settings.max_response_bytes
        if context.loaders.budget.exceeded:
            # As over HTTP: never a truncated result, no data and one error.
            payload = {"data": None, "errors": [context.loaders.budget.error().formatted()]}
        elif result.data is not None and extensions.response_size_over(result.data, limit):
            payload = {"data": None, "errors": [extensions.response_too_large(limit)]}
        elif result.errors:
            payload["errors"] = _error_payload(list(result.errors))
        conn.send(
            {
                "id": sub_id,
                "type": "next" if conn.protocol == TRANSPORT else "data",
                "payload": payload,
            }
        )
        conn.send({"id": sub_id, "type": "complete"})

    async def _start_subscription(
        self,
        conn: Connection,
        sub_id: str,
        query: str,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
        operation_name: str | None,
    ) -> None:
        context = Context(
            settings=self.settings,
            services=self.hub.services,
            viewer=conn.viewer,
            client_address=conn.client_address,
        )
        built = Executor.build(
            self.hub.schema._schema,
            document,
            context_value=context,
            raw_variable_values=variables,
            operation_name=operation_name,
        )
        if isinstance(built, list):
            self._error(conn, sub_id, built)
            return
        root_field = _root_field(document, operation)
        if root_field is None:
            raise BadUserInput("A subscription selects exactly one root field.")
        field_name = root_field.name.value
        args = _arguments(root_field, dict(built.variable_values.coerced))
        if field_name == "oddsUpdated":
            target = from_global_id(str(args.get("marketId", "")), "Market")[1]
            if await models.Market.filter(id=target).count() == 0:
                raise NotFound("There is no such market.")
            channel = odds_channel(target)
        else:
            target = from_global_id(str(args.get("articleId", "")), "Article")[1]
            if await models.Article.filter(id=target).count() == 0:
                raise NotFound("There is no such article.")
            channel = comments_channel(target)
        after = args.get("afterSequence")
        if after is not None and (not isinstance(after, int) or after < 0):
            raise BadUserInput("afterSequence must be a non-negative integer.")
        viewer_key = conn.viewer.id if conn.viewer and _selects_viewer_fields(document) else None
        key: tuple[Any, ...]
        if self.hub.share:
            key = (
                field_name,
                target,
                query,
                json.dumps(variables, sort_keys=True),
                operation_name,
                viewer_key,
            )
        else:  # the unshared path, for the benchmark's baseline
            key = (field_name, target, id(conn), sub_id)
        sub = self.hub.add(
            conn,
            sub_id,
            key,
            lambda: Group(
                self.hub,
                key,
                field_name,
                target,
                channel,
                built,
                conn.viewer if viewer_key is not None else None,
            ),
        )
        if field_name == "oddsUpdated":
            update = await odds_update(target, None, None, Loaders())
            if update is not None:
                frame = sub.frame(await sub.group.render(update, Loaders()))
                # A live update that arrived meanwhile is newer than this snapshot.
                if update.seq > sub.last_seq:
                    sub.last_seq = update.seq
                    conn.push_latest(sub_id, frame)
                sub.replaying = False
            return
        if field_name == "commentUpdated":
            sub.replaying = False
            return
        if after is not None:
            sub.last_seq = after
            sub.start_catch_up(after)
            return
        rows = await fetch_dicts("SELECT comment_seq FROM articles WHERE id = ?", [target])
        sub.last_seq = int(rows[0]["comment_seq"]) if rows else 0
        sub.start_catch_up(None)


def _root_field(document: DocumentNode, operation: OperationDefinitionNode) -> FieldNode | None:
    """The subscription's one root field, looking through fragments and inline fragments."""
    from graphql import FragmentDefinitionNode, FragmentSpreadNode, InlineFragmentNode

    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    selections = list(operation.selection_set.selections)
    for _ in range(100):
        if not selections:
            return None
        node = selections.pop(0)
        if isinstance(node, FieldNode):
            return node
        if isinstance(node, InlineFragmentNode):
            selections = list(node.selection_set.selections) + selections
        elif isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
            selections = list(fragments[node.name.value].selection_set.selections) + selections
    return None


def _arguments(node: FieldNode, variables: dict[str, Any]) -> dict[str, Any]:
    from graphql import Undefined, value_from_ast_untyped

    values = {
        argument.name.value: value_from_ast_untyped(argument.value, variables)
        for argument in node.arguments or ()
    }
    return {name: value for name, value in values.items() if value is not Undefined}
