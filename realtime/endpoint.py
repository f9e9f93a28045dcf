"""The websocket endpoint for /graphql: the handshake, ``connection_init``, then one task reading
frames and dispatching them (to ``Operations`` for ``subscribe``), one writing (the
connection's writer), one keeping the connection alive by its subprotocol's rules."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from time import perf_counter
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from structlog.contextvars import get_contextvars

import clock
import metrics
from accounts.service import token_hash
from clientaddr import client_address
from db import instrument
from db.health import is_database_down, within
from logs import emit, get_logger
from realtime.fanout import Connection, Hub
from realtime.fanout.connection import DIRECT_WRITE
from realtime.fanout.hub import RESTART_REASON, SERVICE_RESTART
from realtime.operations import Observed, Operations, error_code
from realtime.protocol import Subprotocol, negotiate
from realtime.protocol.messages import (
    ACK,
    CloseCode,
    Closed,
    Complete,
    ConnectionInit,
    Ping,
    Pong,
    Subscribe,
    Terminate,
    decode_frame,
    internal_error,
    parse,
    pong,
)

logger = get_logger("agora.ws")
# One line per websocket operation and per socket, beside the HTTP request lines.
access = get_logger("agora.access")


def authorization_of(params: dict[str, Any]) -> str | None:
    """The ``Authorization`` value of ``connection_init``'s payload, in either shape clients
    send: ``{"authorization": …}`` (any case) or ``{"headers": {"Authorization": …}}``."""
    for source in (params, params.get("headers")):
        if not isinstance(source, dict):
            continue
        for key, value in source.items():
            if isinstance(key, str) and key.lower() == "authorization" and value:
                if not isinstance(value, str):
                    raise Closed(CloseCode.FORBIDDEN, "Forbidden: bad authorization")
                return value
    return None


class SocketConnection(Connection):
    """A websocket's connection: its transport is the socket, its wire a subprotocol.

    It also knows its operations from their ``subscribe`` to their end (the server's ``error``
    or ``complete``, the client's ``complete``, the socket's close), for their log lines.
    """

    __slots__ = (
        "busy",
        "interrupted",
        "keepalive",
        "observed",
        "opened",
        "operation_count",
        "reader",
        "reading",
        "request_id",
        "subscription_count",
    )

    ws: WebSocket
    wire: Subprotocol

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # An operation of the socket is being handled (a query or mutation runs): a drain lets
        # it finish before closing.
        self.busy = False
        # The request id of the socket's handshake (every line of the socket carries it).
        self.request_id: str | None = None
        self.opened = perf_counter()
        self.observed: dict[str, Observed] = {}
        self.operation_count = 0
        self.subscription_count = 0
        # The next keep-alive tick (a timer, not a task per socket).
        self.keepalive: asyncio.TimerHandle | None = None
        # The socket's own task reads its messages (no second task per socket): while it does
        # (``reading``), a close from anywhere else cancels it (``interrupted``: that
        # cancellation is the close's, and ends in WebsocketEndpoint._read_until_closed).
        self.reader: asyncio.Task[Any] | None = None
        self.reading = False
        self.interrupted = False

    def _mark_closed(self) -> None:
        """Closed: the reader, if it is still reading, is interrupted once it next waits (from
        the loop, so a close made by the reader itself ends it at its next await too, as when
        it was a task of its own)."""
        super()._mark_closed()
        if self.reading and self.reader is not None:
            asyncio.get_running_loop().call_soon(self._interrupt)

    def _interrupt(self) -> None:
        if self.reading and not self.interrupted and self.reader is not None:
            self.interrupted = True
            self.reader.cancel()

    def send(self, message: Any) -> None:
        """Queue ``message``; an ``error`` or ``complete`` ends its operation."""
        super().send(message)
        if not self.observed:
            return
        kind, sub_id = message.get("type"), message.get("id")
        observed = self.observed.get(sub_id) if isinstance(sub_id, str) else None
        if observed is None or kind not in ("error", "complete"):
            return
        if kind == "error" and observed.error is None:
            observed.error = error_code(message.get("payload"))
        if not observed.running:
            self.finish(sub_id)

    def finish(self, sub_id: str) -> None:
        """Operation ``sub_id`` ended: counted (unless it was as it started), one line."""
        observed = self.observed.pop(sub_id, None)
        if observed is None:
            return
        seconds = perf_counter() - observed.started
        statements = observed.statements
        sql = statements.count if statements is not None else 0
        if not observed.counted:
            metrics.record_operation(observed.name, observed.type, observed.error, seconds, sql)
        if access.isEnabledFor(logging.INFO):
            fields = {
                "transport": "websocket",
                "operation_id": sub_id,
                "operation": observed.name,
                "operation_type": observed.type,
                "viewer_id": self.viewer.id if self.viewer else None,
                "duration_ms": round(seconds * 1000, 3),
                # A subscription's statements are its deliveries': no operation's in particular.
                "sql": None if observed.type == "subscription" else sql,
                "error_code": observed.error,
            }
            emit(access, "operation", fields, self.request_id)


class WebsocketEndpoint:
    """The ASGI websocket handler for /graphql."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.settings = hub.settings
        self.operations = Operations(hub)

    def origin_allowed(self, ws: WebSocket) -> bool:
        """Whether the handshake's Origin (if a browser sent one) may open a socket."""
        origin = ws.headers.get("origin")
        if origin is None:
            return True  # not a browser: CSRF-style attacks need one
        host = ws.headers.get("host", "")
        return origin in self.settings.cors_origins or origin.split("://", 1)[-1] == host

    async def handle(self, ws: WebSocket) -> None:
        """Serve one socket from its handshake to its close."""
        if not self.origin_allowed(ws):
            await ws.close(code=CloseCode.POLICY_VIOLATION)  # before accept: HTTP 403
            return
        wire = negotiate(ws.headers.get("sec-websocket-protocol", ""))
        if wire is None:
            await ws.accept()
            await ws.close(
                code=CloseCode.SUBPROTOCOL_NOT_ACCEPTABLE, reason="Subprotocol not acceptable"
            )
            return
        await ws.accept(subprotocol=wire.name)
        if self.hub.draining:
            # Reached the app after the server began to drain: off to another instance at once.
            await ws.close(code=SERVICE_RESTART, reason=RESTART_REASON)
            return
        address = client_address(
            ws.client.host if ws.client else None, ws.headers, self.settings.trusted_proxies
        )
        # The server's synchronous write, when it lends one (app.wire): frames skip the queue
        # while the socket keeps up. Either way the writer is a task only while frames wait.
        direct = ws.scope.get("extensions", {}).get(DIRECT_WRITE)
        conn = SocketConnection(ws, wire, self.settings, address, direct=direct, lazy_writer=True)
        # The handshake's request id (bound by app.observe): an operation the server ends from
        # another task (an overflow seen by the broker's dispatcher) is logged with it too.
        conn.request_id = get_contextvars().get("request_id")
        self.hub.connections.add(conn)
        self._schedule_keepalive(conn)
        metrics.WEBSOCKETS_OPEN.inc()
        try:
            # Until the client is done or a close from anywhere (a revocation, the keep-alive,
            # a drain, the writer finding the client gone) interrupts the reading.
            await self._read_until_closed(conn)
        finally:
            metrics.WEBSOCKETS_OPEN.dec()
            if conn.keepalive is not None:
                conn.keepalive.cancel()
            for sub in list(conn.subs.values()):
                self.hub.remove(sub)
            self.hub.connections.discard(conn)
            writer = conn.writer_task
            if conn.closing is not None and writer is not None and not writer.done():
                # Let the writer flush what was queued before the close (errors, acks).
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, 2)
            if writer is not None:
                writer.cancel()
            if ws.application_state != WebSocketState.DISCONNECTED:
                closing = conn.closing or Closed(CloseCode.NORMAL, "")
                with contextlib.suppress(Exception):
                    await ws.close(code=closing.code, reason=closing.reason)
            self._closed(conn)

    def _closed(self, conn: SocketConnection) -> None:
        """The socket's operations still running end with it; one line for the socket."""
        for sub_id in list(conn.observed):
            conn.finish(sub_id)
        if access.isEnabledFor(logging.INFO):
            fields = {
                "close_code": int(conn.closing.code) if conn.closing else int(CloseCode.NORMAL),
                "duration_ms": round((perf_counter() - conn.opened) * 1000, 3),
                "client": conn.client_address,
                "viewer_id": conn.viewer.id if conn.viewer else None,
                "operations": conn.operation_count,
                "subscriptions": conn.subscription_count,
            }
            emit(access, "websocket closed", fields, conn.request_id)
        # app.observe (SOCKET_LOGGED) writes the line of a socket that never got this far.
        conn.ws.scope["agora.socket_logged"] = True

    async def drain(self) -> None:
        """Graceful shutdown: take no new socket or message; close each socket with 1012 (its
        clients reconnect elsewhere and resume with afterSequence) once the operation it is
        running, if any, has queued its result. Returns when every socket is closing (the
        server waits for their last frames)."""
        self.hub.draining = True
        sockets = [conn for conn in self.hub.connections if isinstance(conn, SocketConnection)]
        for conn in sockets:
            if not conn.busy:
                conn.close(SERVICE_RESTART, RESTART_REASON)
        await asyncio.gather(*(conn.closed.wait() for conn in sockets))

    def _schedule_keepalive(self, conn: SocketConnection) -> None:
        """The socket's next keep-alive tick, in an interval (a timer: no task per socket)."""
        loop = asyncio.get_running_loop()
        conn.keepalive = loop.call_later(
            self.settings.ws_ping_interval_seconds, self._keep_alive, conn
        )

    def _keep_alive(self, conn: SocketConnection) -> None:
        """Every interval: end an expired session, else what the subprotocol says (a ping or
        keep-alive message, or a close for a client silent too long)."""
        conn.keepalive = None
        if conn.closing is not None:
            return
        interval = self.settings.ws_ping_interval_seconds
        if conn.session_expires is not None and conn.session_expires <= clock.now():
            conn.close(CloseCode.FORBIDDEN, "Forbidden: session expired")
            return
        loop = asyncio.get_running_loop()
        action = conn.wire.keepalive(loop.time() - conn.last_pong, interval)
        if isinstance(action, Closed):
            conn.close(action.code, action.reason)
            return
        conn.send(action)
        self._schedule_keepalive(conn)

    async def _read_until_closed(self, conn: SocketConnection) -> None:
        """Read the socket's messages in its own task (a second task per idle socket was
        ~1.5 KiB): a close from elsewhere cancels this task while it reads
        (``SocketConnection._interrupt``), and that cancellation, only that one, ends here."""
        task = asyncio.current_task()
        conn.reader, conn.reading = task, True
        try:
            await self._read(conn)
        except asyncio.CancelledError:
            # uncancel: 0 when no one else (a server shutting down) cancelled the task too.
            if not conn.interrupted or task is None or task.uncancel() > 0:
                raise
        except Exception:
            # As a task of its own, its failure ended the socket (and was logged by asyncio).
            logger.exception("reading the socket failed")
        finally:
            conn.reading = False
            conn.reader = None
            conn.closed.set()

    async def _read(self, conn: SocketConnection) -> None:
        try:
            await self._init(conn)
            while conn.closing is None:
                message = await self._receive(conn, None)
                if conn.closing is not None:
                    return  # closed while it arrived (a drain): not taken
                conn.busy = True
                try:
                    await self._handle(conn, message)
                except (Closed, WebSocketDisconnect):
                    raise
                except Exception:
                    # One bad message must not take the connection's other subscriptions down.
                    logger.exception("handling a %s message failed", message.get("type"))
                    if isinstance(message.get("id"), str):
                        conn.send(internal_error(message["id"]))
                finally:
                    conn.busy = False
                if self.hub.draining:
                    # The operation the drain waited for is done (its result queued first).
                    raise Closed(SERVICE_RESTART, RESTART_REASON)
        except Closed as closed:
            conn.close(closed.code, closed.reason)
        except WebSocketDisconnect:
            conn.close(CloseCode.NORMAL, "")

    async def _receive(self, conn: SocketConnection, wait_seconds: float | None) -> dict[str, Any]:
        try:
            raw = await asyncio.wait_for(conn.ws.receive(), wait_seconds)
        except TimeoutError as exc:
            raise Closed(CloseCode.INIT_TIMEOUT, "Connection initialisation timeout") from exc
        if raw["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(raw.get("code", 1000))
        message = decode_frame(
            raw.get("text"), raw.get("bytes"), self.settings.ws_max_message_bytes
        )
        conn.last_pong = asyncio.get_running_loop().time()
        return message

    async def _init(self, conn: SocketConnection) -> None:
        """Wait for ``connection_init``; with a bearer token, the session it belongs to."""
        message = await self._receive(conn, self.settings.ws_init_timeout_seconds)
        if message["type"] != "connection_init":
            raise conn.wire.before_init(message["type"])
        params = ConnectionInit(message.get("payload")).params()
        authorization = authorization_of(params)
        if authorization:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Closed(CloseCode.FORBIDDEN, "Forbidden: bad authorization")
            try:
                session = await within(
                    self.hub.find_session(token.strip()),
                    self.settings.db_timeout_seconds,
                )
            except Exception as exc:
                if not is_database_down(exc):
                    raise
                # Not the client's fault and not a bad token: 1013 tells it to come back later
                # (a close without a code, as before, reads as "done", 1011 as a server bug).
                logger.warning("connection_init: the database is unavailable (%r)", exc)
                raise Closed(
                    CloseCode.TRY_AGAIN_LATER, "Try again later: the database is unavailable"
                ) from exc
            if session is None:
                raise Closed(CloseCode.FORBIDDEN, "Forbidden: invalid or expired token")
            conn.viewer, conn.session_expires = session.user, session.expires_at
            conn.token, conn.token_hash = token.strip(), token_hash(token.strip())
        conn.send(ACK)

    async def _handle(self, conn: SocketConnection, message: dict[str, Any]) -> None:
        match parse(message):
            case ConnectionInit():
                raise Closed(CloseCode.TOO_MANY_INIT, "Too many initialisation requests")
            case Ping() as ping:
                conn.send(pong(ping))
            case Pong():
                return
            case Complete(sub_id):
                sub = conn.subs.get(sub_id)
                if sub is not None:
                    self.hub.remove(sub)
                conn.finish(sub_id)
            case Terminate():
                raise Closed(CloseCode.NORMAL, "")
            case Subscribe(sub_id, payload):
                if sub_id in conn.subs:
                    raise Closed(
                        CloseCode.SUBSCRIBER_EXISTS, f"Subscriber for {sub_id} already exists"
                    )
                await self._subscribe(conn, sub_id, payload)

    async def _subscribe(self, conn: SocketConnection, sub_id: str, payload: Any) -> None:
        """Run a ``subscribe`` message's operation, observed from here to its end; its SQL
        statements counted apart from every other operation's."""
        with instrument.counting() as statements:
            observed = Observed(sub_id, perf_counter(), statements)
            conn.observed[sub_id] = observed
            conn.operation_count += 1
            try:
                await self.operations.subscribe(conn, sub_id, payload, observed)
            except Closed:
                observed.error = observed.error or "BAD_USER_INPUT"  # a malformed payload
                raise
            except Exception:
                observed.error = observed.error or "INTERNAL_SERVER_ERROR"
                raise
            finally:
                observed.running = False
                if sub_id in conn.subs and sub_id in conn.observed:
                    # Started: counted now (how subscriptions end is counted apart: overflows,
                    # replays); its line is written when it ends.
                    conn.subscription_count += 1
                    observed.counted = True
                    metrics.record_operation(
                        observed.name,
                        observed.type,
                        None,
                        perf_counter() - observed.started,
                        statements.count,
                    )
                else:
                    conn.finish(sub_id)
