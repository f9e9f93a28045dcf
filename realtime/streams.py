"""Subscriptions over HTTP: one operation per response, streamed as Server-Sent Events
(graphql-sse's distinct connections mode) or as Apollo's multipart parts, through the same hub,
groups, checks, replays and bounded queues as a websocket's.

A stream is a connection with one subscription: what ends the subscription (its source, an
overflow, a revoked session, the client going away) ends the response. A client can't dodge the
websocket's limits by opening one stream per subscription: streams are counted per client
address, per viewer and per process (over a limit: HTTP 429 before anything streams), and the
replays of all of a client's streams share one budget per address and one per viewer. With
``REDIS_URL`` the per-address and per-viewer counts are shared by every worker
(``realtime.streamcaps``); the per-process cap and the replay budgets stay this process's.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

import clock
import metrics
from accounts.service import token_hash
from clientaddr import address_key
from db.health import is_database_down, within
from logs import get_logger
from realtime.fanout import Connection, Hub
from realtime.fanout.hub import SERVICE_RESTART
from realtime.operations import Operations
from realtime.protocol.base import StreamWire
from realtime.protocol.messages import CloseCode, coded_error
from realtime.streamcaps import SharedStreamCounts
from settings import Settings

logger = get_logger("agora.ws")

# The ``protocol`` label of the open-streams gauge, by wire.
_OPEN_STREAMS = {
    "graphql-sse": metrics.HTTP_STREAMS_OPEN.labels("sse"),
    "multipart-subscriptions": metrics.HTTP_STREAMS_OPEN.labels("multipart"),
}

# What a stream closed for a reason of the server's says to its client, as an error code.
_CLOSE_CODES: dict[int, str] = {
    SERVICE_RESTART: "SERVICE_RESTART",
    CloseCode.FORBIDDEN: "UNAUTHENTICATED",
    CloseCode.TRY_AGAIN_LATER: "SERVICE_UNAVAILABLE",
    CloseCode.GOING_AWAY: "STREAM_CLOSED",
}
# What a stream ended by a graceful shutdown says (as a SERVICE_RESTART error).
_RESTARTING = "The server is shutting down: subscribe again, with afterSequence, to resume."


class StreamRefused(Exception):
    """A stream that can't start: answered with ``status`` and one coded error, not streamed."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass
class _Budget:
    """One client key's open streams and the replay slots they share."""

    streams: int
    replays: asyncio.Semaphore


class StreamLimits:
    """Open HTTP streams counted per address, per viewer and in the process (and, with
    ``shared``, per address and per viewer across workers)."""

    def __init__(self, settings: Settings, shared: SharedStreamCounts | None = None) -> None:
        self.settings = settings
        self.total = 0
        self.keys: dict[str, _Budget] = {}
        # With REDIS_URL: every worker's streams, counted on Redis.
        self.shared = shared
        if shared is None and settings.redis_url:
            self.shared = SharedStreamCounts.for_settings(settings)

    def _limit(self, key: str) -> int:
        settings = self.settings
        return (
            settings.http_streams_per_viewer if key[0] == "v" else settings.http_streams_per_address
        )

    def _too_many(self, key: str) -> StreamRefused:
        who = "viewer" if key[0] == "v" else "client address"
        return StreamRefused(
            429,
            "TOO_MANY_STREAMS",
            f"At most {self._limit(key)} open HTTP streams per {who}: close one, or "
            "carry several subscriptions on one websocket.",
            retry_after=self.settings.retry_after_seconds,
        )

    def acquire(self, keys: list[str]) -> None:
        """Count a stream for each of ``keys`` in this process; StreamRefused (429) if one is
        at its limit here (then :meth:`share` counts it across workers)."""
        if self.total >= self.settings.http_streams_per_process:
            raise StreamRefused(
                503,
                "TOO_MANY_STREAMS",
                "The server has as many open streams as it serves; retry shortly or use the "
                "websocket.",
                retry_after=self.settings.retry_after_seconds,
            )
        for key in keys:
            budget = self.keys.get(key)
            if budget is not None and budget.streams >= self._limit(key):
                raise self._too_many(key)
        self.total += 1
        for key in keys:
            budget = self.keys.get(key)
            if budget is None:
                replays = asyncio.Semaphore(self.settings.ws_replays_per_connection)
                budget = self.keys[key] = _Budget(0, replays)
            budget.streams += 1

    async def share(self, keys: list[str]) -> str:
        """Count the stream :meth:`acquire` counted here across workers too; its lease (empty
        without Redis). StreamRefused (429, the stream released) when a key is at its limit
        there; while Redis can't be reached, this process's counts alone applied."""
        if self.shared is None:
            return ""
        try:
            admission = await self.shared.acquire(keys, [self._limit(key) for key in keys])
        except BaseException:
            self.release(keys)
            raise
        if admission.over is not None:
            self.release(keys)
            raise self._too_many(keys[admission.over])
        return admission.lease

    def release(self, keys: list[str], lease: str = "") -> None:
        """The stream of ``keys`` (and ``lease``, when it was shared) ended."""
        self.total -= 1
        for key in keys:
            budget = self.keys[key]
            budget.streams -= 1
            if budget.streams == 0:
                del self.keys[key]
        if lease and self.shared is not None:
            self.shared.release(lease)

    async def aclose(self) -> None:
        """Stop sharing (the app's lifespan calls this)."""
        if self.shared is not None:
            await self.shared.aclose()

    def replay_slots(self, keys: list[str]) -> ReplaySlots:
        """The replay slots ``keys`` share (the stream holds its place in each key's budget
        as long as it lives, so the semaphores outlive it)."""
        return ReplaySlots([self.keys[key].replays for key in keys])


class ReplaySlots:
    """One replay slot of each of a client's keys, taken in the same order every time (so
    none deadlock); entered once per replay or gap filled, as often as the stream needs."""

    def __init__(self, semaphores: list[asyncio.Semaphore]) -> None:
        self.semaphores = semaphores

    async def __aenter__(self) -> None:
        taken: list[asyncio.Semaphore] = []
        try:
            for semaphore in self.semaphores:
                await semaphore.acquire()
                taken.append(semaphore)
        except BaseException:
            for semaphore in reversed(taken):
                semaphore.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        for semaphore in reversed(self.semaphores):
            semaphore.release()


class _Body:
    """A connection's transport writing an HTTP response's body (``send`` set when it starts).

    A send that waits longer than ``stall_seconds`` ends the stream as a vanished client would.
    The server waits only once the kernel's and the transport's buffers are full, so this
    catches a client that stopped reading a busy stream; an idle one that reads nothing holds
    its place (counted against its client's caps) as long as its TCP connection lives."""

    def __init__(self, stall_seconds: float) -> None:
        self.send: Send | None = None
        self.stall_seconds = stall_seconds

    async def send_text(self, data: str) -> None:
        assert self.send is not None, "the response has started"
        message = {"type": "http.response.body", "body": data.encode(), "more_body": True}
        try:
            async with asyncio.timeout(self.stall_seconds):
                await self.send(message)
        except TimeoutError as exc:
            raise OSError("the client stopped reading") from exc


class HTTPStreams:
    """Opens and serves the HTTP streams of subscriptions."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.settings = hub.settings
        self.operations = Operations(hub)
        self.limits = StreamLimits(hub.settings)

    def _refuse_if_draining(self) -> None:
        if self.hub.draining:
            raise StreamRefused(
                503,
                "SERVICE_UNAVAILABLE",
                "The server is shutting down; retry (another instance will answer).",
                retry_after=self.settings.retry_after_seconds,
            )

    async def open(
        self, wire: StreamWire, payload: dict[str, Any], token: str, client_address: str
    ) -> Stream:
        """A stream for the operation of ``payload`` (a checked subscription), counted against
        its client's limits; StreamRefused when it can't start."""
        self._refuse_if_draining()
        session = None
        if token:
            try:
                session = await within(
                    self.hub.find_session(token), self.settings.db_timeout_seconds
                )
            except Exception as exc:
                if not is_database_down(exc):
                    raise
                raise StreamRefused(
                    503,
                    "SERVICE_UNAVAILABLE",
                    "The database is unavailable; retry shortly.",
                    retry_after=self.settings.retry_after_seconds,
                ) from exc
        # Again: a drain that began while the session was read found no connection of this
        # stream to end (it would have run until the shutdown's timeout cut it).
        self._refuse_if_draining()
        keys = ["a" + address_key(client_address)]
        if session is not None:
            keys.append(f"v{session.user.id}")
        self.limits.acquire(keys)
        settings = self.settings
        body = _Body(max(30.0, 3.0 * settings.http_stream_heartbeat_seconds))
        conn = Connection(
            body, wire, settings, client_address, replay_slots=self.limits.replay_slots(keys)
        )
        if session is not None:
            conn.viewer, conn.session_expires = session.user, session.expires_at
            conn.token, conn.token_hash = token, token_hash(token)
        # Known to the hub from here (no await since the session was read): a revocation
        # arriving from now on closes it.
        self.hub.connections.add(conn)
        try:
            lease = await self.limits.share(keys)
        except BaseException:
            self.hub.connections.discard(conn)
            raise
        return Stream(self, conn, body, wire, payload, keys, lease)

    async def drain(self) -> None:
        """Graceful shutdown: open no new stream; end each open one after what is queued, with
        a SERVICE_RESTART error and the protocol's end (SSE's ``complete`` event, multipart's
        closing delimiter), so its client subscribes again elsewhere with afterSequence. (The
        server waits for the responses to end.)"""
        self.hub.draining = True
        for conn in list(self.hub.connections):
            if isinstance(conn.ws, _Body):
                conn.close(SERVICE_RESTART, _RESTARTING)


class Stream:
    """One HTTP stream, ready to serve (an ASGI app for its response)."""

    def __init__(
        self,
        streams: HTTPStreams,
        conn: Connection,
        body: _Body,
        wire: StreamWire,
        payload: dict[str, Any],
        keys: list[str],
        lease: str = "",
    ) -> None:
        self.streams = streams
        self.conn = conn
        self.body = body
        self.wire = wire
        self.payload = payload
        self.keys = keys
        # Its place in the counts shared across workers (empty: counted in this process only).
        self.lease = lease
        self.released = False
        # Response headers the view adds (Vary, WWW-Authenticate…).
        self.headers: dict[str, str] = {}

    def release(self) -> None:
        """Give back the stream's place in its client's counts and the hub (once)."""
        if not self.released:
            self.released = True
            hub = self.streams.hub
            for sub in list(self.conn.subs.values()):
                hub.remove(sub)
            hub.connections.discard(self.conn)
            self.streams.limits.release(self.keys, self.lease)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gauge = _OPEN_STREAMS[self.wire.name]
        gauge.inc()
        try:
            await self._serve(receive, send)
        finally:
            gauge.dec()
            self.release()

    async def _serve(self, receive: Receive, send: Send) -> None:
        streams, conn, settings = self.streams, self.conn, self.streams.settings
        headers = {
            "content-type": self.wire.content_type,
            "cache-control": "no-store",
            # nginx and the like would buffer the stream otherwise.
            "x-accel-buffering": "no",
            **self.headers,
        }
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        self.body.send = send
        # Sent before anything can be queued: an error ending the stream at once clears the
        # queue, and the multipart framing needs its first delimiter.
        await send(
            {"type": "http.response.body", "body": self.wire.start().encode(), "more_body": True}
        )
        writer = asyncio.create_task(conn.writer())
        watcher = asyncio.create_task(_watch_disconnect(receive, conn))
        beats = asyncio.create_task(_heartbeats(conn, self.wire, settings))
        closed = asyncio.create_task(conn.closed.wait())
        try:
            try:
                await streams.operations.subscribe(conn, "1", self.payload)
            except Exception:
                logger.exception("starting an HTTP stream's subscription failed")
                conn.send({"id": "1", "type": "error", "payload": [_internal()]})
            await asyncio.wait({writer, watcher, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not writer.done() and conn.closing is not None:
                # Closing: let the writer flush what is queued (the last word only, when an
                # error ends the stream), but not for ever: a client that stopped reading
                # would hold the stream.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(writer), self.body.stall_seconds)
        finally:
            for task in (watcher, beats, closed, writer):
                task.cancel()
            with contextlib.suppress(BaseException):
                await writer  # its send, if one was pending, is abandoned before ours
            self.release()
        closing = conn.closing
        tail = ""
        if closing is not None and closing.code not in (CloseCode.NORMAL, CloseCode.ABNORMAL):
            code = _CLOSE_CODES.get(closing.code, "STREAM_CLOSED")
            tail = self.wire.errors([coded_error(closing.reason or "Stream closed.", code)])
        # Always the end of the body, so the response is complete for the server too (sent to a
        # client that left, it goes nowhere).
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await send(
                    {
                        "type": "http.response.body",
                        "body": (tail + self.wire.end()).encode(),
                        "more_body": False,
                    }
                )


def _internal() -> dict[str, Any]:
    return dict(coded_error("Internal server error.", "INTERNAL_SERVER_ERROR"))


async def _watch_disconnect(receive: Receive, conn: Connection) -> None:
    """Return once the client has gone away (the request's body was read already)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            conn.close(CloseCode.ABNORMAL, "client went away")
            return


async def _heartbeats(conn: Connection, wire: StreamWire, settings: Settings) -> None:
    """A heartbeat once the stream has been silent for an interval; the stream ends when the
    session it was opened with expires."""
    interval = settings.http_stream_heartbeat_seconds
    loop = asyncio.get_running_loop()
    while conn.closing is None:
        silent = loop.time() - conn.last_write
        await asyncio.sleep(max(0.05, interval - silent))
        if conn.session_expires is not None and conn.session_expires <= clock.now():
            conn.close(CloseCode.FORBIDDEN, "Session expired: subscribe again with a new token.")
            return
        if loop.time() - conn.last_write >= interval and not conn.queue and not conn.latest:
            conn.push(wire.heartbeat(), force=True)
            conn.last_write = loop.time()  # queued now: don't queue another meanwhile
