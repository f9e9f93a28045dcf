"""uvicorn's HTTP protocols, answering a request they can't parse as the app answers: JSON.

uvicorn refuses an HTTP request its parser can't read (a request line or headers over
llhttp's 80 KiB, such as a GET whose ``query`` parameter is too long; a malformed request line
or header) before the app sees it, with a plain-text ``Invalid HTTP request received.``. The
subclasses here send the same 400 with a GraphQL-shaped JSON body and a code, like every other
refusal. ``uvicorn_options`` (every start path of the app) names :data:`PROTOCOL`.

Websockets: :class:`DirectWebSocketProtocol` (:data:`WEBSOCKET_PROTOCOL`) lends the fan-out a
synchronous write while a socket keeps up.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState, ProtocolError
from websockets.http11 import Request
from websockets.protocol import State

from realtime.fanout.connection import DIRECT_WRITE
from realtime.fanout.primitives import LightEvent, LightQueue

MESSAGE = (
    "The HTTP request could not be read: a malformed request line or header, or a URL or "
    "headers too long (over 80 KiB). Send long documents and variables in a POST body."
)
BODY = json.dumps(
    {"data": None, "errors": [{"message": MESSAGE, "extensions": {"code": "BAD_USER_INPUT"}}]}
).encode()


def _response(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"HTTP/1.1 400 Bad Request\r\n"]
    lines += [name + b": " + value + b"\r\n" for name, value in default_headers]
    lines += [
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(BODY)).encode("ascii") + b"\r\n",
        b"cache-control: no-store\r\n",
        b"connection: close\r\n",
        b"\r\n",
        BODY,
    ]
    return b"".join(lines)


class H11JSONProtocol(H11Protocol):
    """h11's protocol, its 400 for an unreadable request in JSON."""

    def send_400_response(self, msg: str) -> None:
        """The JSON 400 instead of uvicorn's plain text; the connection closes."""
        self.transport.write(_response(self.server_state.default_headers))
        self.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
    PROTOCOL = "app.wire:H11JSONProtocol"
else:

    class HttpToolsJSONProtocol(HttpToolsProtocol):
        """httptools' protocol (uvicorn's choice when it is installed), its 400 in JSON."""

        def send_400_response(self, msg: str) -> None:
            """The JSON 400 instead of uvicorn's plain text; the connection closes."""
            self.transport.write(_response(self.server_state.default_headers))
            self.transport.close()

    PROTOCOL = "app.wire:HttpToolsJSONProtocol"


# -- websockets --------------------------------------------------------------------------------


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol (the ``websockets`` sans-I/O one, uvicorn's default), lending
    the app a synchronous write in the scope (``realtime.fanout.connection.DIRECT_WRITE``).

    The fan-out writes an event's frame to thousands of sockets in one loop: through ASGI each
    ``send`` is a coroutine and a writer task woken per socket (38 µs a delivery, against 10 µs
    for a bare ``websockets`` broadcast). This write is what ``send`` does for a text frame, done
    at once, and only while the transport buffers little: a socket whose client isn't reading
    gets False and its frames queue, bounded, as before.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The same receive queue and writable flag with list-based waiters: four deques less
        # per socket (~3.8 KiB, realtime.fanout.primitives).
        self.queue = LightQueue()
        self.writable = LightEvent()
        self.writable.set()

    def handle_connect(self, event: Request) -> None:
        """The handshake's request: the scope built by uvicorn gets the write."""
        super().handle_connect(event)
        scope = self.__dict__.get("scope")
        if scope is not None:
            scope["extensions"][DIRECT_WRITE] = self.write_text_now

    async def send(self, message: ASGISendEvent) -> None:
        """uvicorn's send; once the handshake is answered, its request and response (and their
        headers, ~1 KiB a socket) are let go: nothing reads them after the accept."""
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            request = self.__dict__.pop("request", None)
            self.__dict__.pop("response", None)
            if isinstance(request, Request):
                # websockets' parser generator keeps the request as a local for the socket's
                # life (~2.3 KiB of headers): emptied, as nothing reads them after the accept
                # (the scope has its own copy).
                request.headers.clear()

    def write_text_now(self, text: str, max_buffer: int) -> bool:
        """Write one text frame now, if the socket is open and its transport buffers at most
        ``max_buffer`` bytes; False (nothing written) otherwise."""
        transport = self.transport
        if (
            self.disconnected
            or self.close_sent
            or not self.handshake_complete
            or self.initial_response is not None
            or not self.writable.is_set()
            or transport.is_closing()
            or transport.get_write_buffer_size() > max_buffer
        ):
            return False
        conn = self.conn
        if conn.extensions or conn.expect_continuation_frame or conn.state is not State.OPEN:
            # A negotiated extension (permessage-deflate) frames per socket; the odd states
            # are the protocol's to refuse.
            try:
                conn.send_text(text.encode())
            except (InvalidState, ProtocolError):
                return False
            transport.write(b"".join(conn.data_to_send()))
            return True
        transport.write(text_frame(text))
        return True


# The last text framed by ``text_frame``: an event's frame is the same str for every
# subscriber of a group (same subscription id), so it is encoded and framed once, not per socket.
_last_framed: tuple[str | None, bytes] = (None, b"")


def text_frame(text: str) -> bytes:
    """``text`` as one unmasked, uncompressed websocket text frame: the bytes a server's
    ``websockets`` protocol writes for it, whichever socket (a server never masks). Encoded
    once for a run of calls with the same str object."""
    global _last_framed
    last, framed = _last_framed
    if last is not text:
        data = text.encode()
        size = len(data)
        # RFC 6455's header as websockets' Frame.serialize writes it unmasked (12 µs an
        # event through it): FIN and the text opcode, then the length in 7, 16 or 64 bits.
        if size < 126:
            header = bytes((0x81, size))
        elif size < 65_536:
            header = b"\x81\x7e" + size.to_bytes(2, "big")
        else:
            header = b"\x81\x7f" + size.to_bytes(8, "big")
        framed = header + data
        _last_framed = (text, framed)
    return framed


WEBSOCKET_PROTOCOL = "app.wire:DirectWebSocketProtocol"


class WebSocketShortcut:
    """ASGI middleware: a websocket handshake on one of ``paths`` goes straight to
    ``endpoint``, past the middleware inside this one and the router.

    Those layers do nothing for a websocket (CORS and the body limit pass it on; the router
    finds the one route; the exception layers convert exceptions the endpoint doesn't raise),
    but their suspended coroutine frames stay alive for the socket's life: ~4.5 KiB per idle
    socket, more than a fifth of it. Placed right inside ``Observe``, which keeps its request
    id, lines and metrics for every socket.
    """

    def __init__(
        self, app: ASGIApp, paths: Iterable[str], endpoint: Callable[[WebSocket], Awaitable[None]]
    ) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint for a websocket on one of the paths; the rest of the app otherwise."""
        if scope["type"] == "websocket":
            path, root = scope["path"], scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]  # as the router matches it
            if path in self.paths:
                await self.endpoint(WebSocket(scope, receive=receive, send=send))
                return
        await self.app(scope, receive, send)
