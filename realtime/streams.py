"""Subscriptions over HTTP: one operation per response, streamed as Server-Sent Events
(graphql-sse's distinct connections mode) or as Apollo's multipart parts, through the same hub,
groups, checks, replays and bounded queues as a websocket's.

A stream is a connection with one subscription: what ends the subscription (its source, an
overflow, a revoked session, the client going away) ends the response. A client can't dodge the
websocket's limits by opening one stream per subscription: streams are counted per client
address, per viewer and per process (over a limit: HTTP 429 before anything streams), and the
replays of all of a client's streams share one budget per address and one per viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

import clock
from accounts.service import token_hash
from db.health import is_database_down, within
from logs import get_logger
from realtime.fanout import Connection, Hub
from realtime.operations import Operations
from realtime.protocol.base import StreamWire
from realtime.protocol.messages import CloseCode, coded_error
from settings import Settings

logger = get_logger("agora.ws")

# What a stream closed for a reason of the server's says to its client, as an error code.
_CLOSE_CODES = {
    CloseCode.FORBIDDEN: "UNAUTHENTICATED",
    CloseCode.TRY_AGAIN_LATER: "SERVICE_UNAVAILABLE",
    CloseCode.GOING_AWAY: "STREAM_CLOSED",
}


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
    """Open HTTP streams counted per address, per viewer and in the process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.total = 0
        self.keys: dict[str, _Budget] = {}

    def _limit(self, key: str) -> int:
        settings = self.settings
        return (
            settings.http_streams_per_viewer if key[0] == "v" else settings.http_streams_per_address
        )

    def acquire(self, keys: list[str]) -> None:
        """Count a stream for each of ``keys``; StreamRefused (429) if one is at its limit."""
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
                who = "viewer" if key[0] == "v" else "client address"
                raise StreamRefused(
                    429,
                    "TOO_MANY_STREAMS",
                    f"At most {self._limit(key)} open HTTP streams per {who}: close one, or "
                    "carry several subscriptions on one websocket.",
                    retry_after=self.settings.retry_after_seconds,
                )
        self.total += 1
        for key in keys:
            budget = self.keys.get(key)
            if budget is None:
                replays = asyncio.Semaphore(self.settings.ws_replays_per_connection)
                budget = self.keys[key] = _Budget(0, replays)
            budget.streams += 1

    def release(self, keys: list[str]) -> None:
        """The stream of ``keys`` ended."""
        self.total -= 1
        for key in keys:
            budget = self.keys[key]
            budget.streams -= 1
            if budget.streams == 0:
                del self.keys[key]

    @asynccontextmanager
    async def replay_slot(self, keys: list[str]) -> AsyncIterator[None]:
        """One replay slot of every key (always in the same order, so none deadlock)."""
        async with contextlib.AsyncExitStack() as stack:
            for key in keys:
                await stack.enter_async_context(self.keys[key].replays)
            yield


class _Body:
    """A connection's transport writing an HTTP response's body."""

    def __init__(self, send: Send) -> None:
        self._send = send

    async def send_text(self, data: str) -> None:
        await self._send({"type": "http.response.body", "body": data.encode(), "more_body": True})


class HTTPStreams:
    """Opens and serves the HTTP streams of subscriptions."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.settings = hub.settings
        self.operations = Operations(hub)
        self.limits = StreamLimits(hub.settings)

    async def open(
        self, wire: StreamWire, payload: dict[str, Any], token: str, client_address: str
    ) -> Stream:
        """A stream for the operation of ``payload`` (a checked subscription), counted against
        its client's limits; StreamRefused when it can't start."""
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
        keys = ["a" + client_address]
        if session is not None:
            keys.append(f"v{session.user.id}")
        self.limits.acquire(keys)
        return Stream(self, wire, payload, keys, session, token if session else "", client_address)


class Stream:
    """One HTTP stream, ready to serve (an ASGI app for its response)."""

    def __init__(
        self,
        streams: HTTPStreams,
        wire: StreamWire,
        payload: dict[str, Any],
        keys: list[str],
        session: Any,
        token: str,
        client_address: str,
    ) -> None:
        self.streams = streams
        self.wire = wire
        self.payload = payload
        self.keys = keys
        self.session = session
        self.token = token
        self.client_address = client_address
        self.released = False
        # Response headers the view adds (CORS, WWW-Authenticate…).
        self.headers: dict[str, str] = {}

    def release(self) -> None:
        """Give back the stream's place in its client's counts (once)."""
        if not self.released:
            self.released = True
            self.streams.limits.release(self.keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._serve(receive, send)
        finally:
            self.release()

    async def _serve(self, receive: Receive, send: Send) -> None:
        streams, hub, settings = self.streams, self.streams.hub, self.streams.settings
        limits = streams.limits
        conn = Connection(
            _Body(send),
            self.wire,
            settings,
            self.client_address,
            replay_slots=limits.replay_slot(self.keys),
        )
        if self.session is not None:
            conn.viewer, conn.session_expires = self.session.user, self.session.expires_at
            conn.token, conn.token_hash = self.token, token_hash(self.token)
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
        await send(
            {"type": "http.response.body", "body": self.wire.start().encode(), "more_body": True}
        )
        hub.connections.add(conn)
        writer = asyncio.create_task(conn.writer())
        watcher = asyncio.create_task(_watch_disconnect(receive, conn))
        beats = asyncio.create_task(_heartbeats(conn, self.wire, settings))
        gone = False
        try:
            try:
                await streams.operations.subscribe(conn, "1", self.payload)
            except Exception:
                logger.exception("starting an HTTP stream's subscription failed")
                conn.send({"id": "1", "type": "error", "payload": [_internal()]})
            await asyncio.wait({writer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            gone = watcher.done() and not writer.done()
        finally:
            for task in (watcher, beats):
                task.cancel()
            for sub in list(conn.subs.values()):
                hub.remove(sub)
            hub.connections.discard(conn)
            if not gone and not writer.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, 2)
            writer.cancel()
        if gone or conn.closing is None or conn.closing.code == CloseCode.ABNORMAL:
            return  # nobody to tell
        tail = ""
        if conn.closing.code != CloseCode.NORMAL:
            code = _CLOSE_CODES.get(CloseCode(conn.closing.code), "STREAM_CLOSED")
            tail = self.wire.errors([coded_error(conn.closing.reason or "Stream closed.", code)])
        with contextlib.suppress(Exception):
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
    """A heartbeat whenever the stream has been idle for an interval; the stream ends when the
    session it was opened with expires."""
    interval = settings.http_stream_heartbeat_seconds
    while conn.closing is None:
        await asyncio.sleep(interval)
        if conn.session_expires is not None and conn.session_expires <= clock.now():
            conn.close(CloseCode.FORBIDDEN, "Session expired: subscribe again with a new token.")
            return
        if not conn.queue and not conn.latest:
            conn.push(wire.heartbeat(), force=True)
