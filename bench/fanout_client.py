"""A light websocket client for bench.fanout: asyncio Protocols, no websockets library.

The ``websockets`` client spends tens of µs per message (its sans-I/O parser, UTF-8 decoding,
a queue and a reader task woken per message, then ``json.loads``): with 5,000 sockets on one
client core that is 200-400 ms per event, so the client's lag, not the server, decided the
completion time (the bare broadcast's p99 was as slow as Agora's). This client does the HTTP
upgrade and the graphql-transport-ws handshake itself and, for a ``next`` frame, only finds the
frame's boundary and its marker in the received bytes (``"sequence":N`` without decoding; other
``next`` payloads, such as odds, are parsed as JSON), stamps the arrival and counts it: a few µs
per frame.

It speaks just what the benchmark needs: unfragmented frames, no extensions, the client's frames
masked with a zero key (valid: the key is the client's choice; the server unmasks them alike).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any

SEQUENCE = b'"sequence":'
NEXT = b'"next"'
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
PONG_MESSAGE = '{"type":"pong"}'

# on_next(socket, mark, order, arrived)
OnNext = Callable[["LightSocket", Any, int, float], None]


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame of ``payload``, masked with a zero key (so the payload's bytes
    stay as they are)."""
    length = len(payload)
    head = bytes([0x80 | opcode])
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", length)
    return head + b"\x00\x00\x00\x00" + payload


def text_frame(text: str) -> bytes:
    """A client text frame of ``text``."""
    return client_frame(TEXT, text.encode())


def frame_at(buffer: bytes, start: int) -> tuple[int, int, int, int] | None:
    """The server frame beginning at ``start``: (opcode, payload start, payload end, frame
    end), or None while it hasn't fully arrived. Servers never mask (a masked frame is
    refused: ValueError)."""
    available = len(buffer) - start
    if available < 2:
        return None
    first, second = buffer[start], buffer[start + 1]
    if second & 0x80:
        raise ValueError("a server frame was masked")
    length = second & 0x7F
    offset = start + 2
    if length == 126:
        if available < 4:
            return None
        (length,) = struct.unpack_from("!H", buffer, offset)
        offset += 2
    elif length == 127:
        if available < 10:
            return None
        (length,) = struct.unpack_from("!Q", buffer, offset)
        offset += 8
    end = offset + length
    if end > len(buffer):
        return None
    return first & 0x0F, offset, end, end


def sequence_in(buffer: bytes, start: int, end: int) -> int | None:
    """The integer after the first ``"sequence":`` in ``buffer[start:end]`` (a key: in a JSON
    string a quote is escaped, so the pattern can't come from a value), or None."""
    at = buffer.find(SEQUENCE, start, end)
    if at < 0:
        return None
    at += len(SEQUENCE)
    while at < end and buffer[at] == 32:  # a space after the colon
        at += 1
    stop = at
    while stop < end and 48 <= buffer[stop] <= 57:
        stop += 1
    return int(buffer[at:stop]) if stop > at else None


def message_type(text: str) -> str | None:
    """The ``type`` of a JSON protocol message, or None when it is not one."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    kind = message.get("type") if isinstance(message, dict) else None
    return kind if isinstance(kind, str) else None


def mark_of_json(message: dict[str, Any]) -> tuple[Any, int]:
    """(what identifies the event, its order number) of a parsed ``next`` message: the comment's
    sequence, or the odds update's last trade and ``seq``."""
    data = (message.get("payload") or {}).get("data") or {}
    if "commentAdded" in data:
        seq = (data["commentAdded"] or {}).get("sequence")
        return seq, int(seq or 0)
    if "oddsUpdated" in data:
        update = data["oddsUpdated"] or {}
        return (update.get("lastTrade") or {}).get("id"), int(update.get("seq") or 0)
    return None, 0


class LightSocket(asyncio.Protocol):
    """One client websocket. Before :meth:`deliver_to`, text frames other than ``next`` queue
    for :meth:`recv` (the handshake's ack and pong); afterwards every ``next`` frame goes to the
    ``on_next`` callback and anything else to ``other``."""

    def __init__(self, host: str, path: str, subprotocol: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
        ).encode()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.arrived = 0.0
        self.on_next: OnNext | None = None
        self.other: list[str] = []
        self.messages: deque[str | None] = deque()  # None: the connection ended
        self.waiter: asyncio.Future[None] | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.close_reason = ""
        self.local_address: tuple[Any, ...] = ()
        # The last ``next`` frame: (buffer, start, end) of its payload.
        self.frame: tuple[bytes, int, int] = (b"", 0, 0)

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the upgrade request."""
        # uvloop's transports aren't asyncio.Transport subclasses, but are one.
        self.transport = transport  # type: ignore[assignment]
        self.local_address = transport.get_extra_info("sockname") or ()
        self._write(self.request)

    def data_received(self, data: bytes) -> None:
        """Stamp the arrival; the handshake's answer, then whole frames."""
        self.arrived = time.perf_counter()
        buffer = self.buffer + data if self.buffer else data
        start = 0
        if not self.upgraded:
            head = buffer.find(b"\r\n\r\n")
            if head < 0:
                self.buffer = buffer
                return
            status = buffer[: buffer.find(b"\r\n")]
            if b" 101 " not in status + b" ":
                self._fail(ConnectionError(status.decode("latin-1")[:200]))
                return
            self.upgraded = True
            start = head + 4
            if not self.opened.done():
                self.opened.set_result(None)
        while True:
            try:
                frame = frame_at(buffer, start)
            except ValueError as exc:
                self._fail(exc)
                return
            if frame is None:
                break
            opcode, begin, end, start = frame
            if opcode == TEXT:
                self._text(buffer, begin, end)
            elif opcode == PING:
                self._write(client_frame(PONG, buffer[begin:end]))
            elif opcode == CLOSE:
                payload = buffer[begin:end]
                if len(payload) >= 2:
                    self.close_code = struct.unpack_from("!H", payload)[0]
                    self.close_reason = payload[2:].decode("utf-8", "replace")
                else:
                    self.close_code = 1005
                self._write(client_frame(CLOSE, payload[:2]))
                if self.transport is not None:
                    self.transport.close()
                return
        self.buffer = buffer[start:] if start < len(buffer) else b""

    def connection_lost(self, exc: Exception | None) -> None:
        """The end: whoever waits is woken."""
        if self.close_code is None:
            self.close_code = 1006
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        self.messages.append(None)
        self._wake()
        if not self.done.done():
            self.done.set_result(None)

    # -- frames -------------------------------------------------------------------------------

    def _text(self, buffer: bytes, begin: int, end: int) -> None:
        on_next = self.on_next
        if on_next is not None and buffer.find(NEXT, begin, min(end, begin + 64)) >= 0:
            self.frame = (buffer, begin, end)
            sequence = sequence_in(buffer, begin, end)
            if sequence is not None:
                on_next(self, sequence, sequence, self.arrived)
                return
            try:
                mark, order = mark_of_json(json.loads(buffer[begin:end]))
            except ValueError:
                self.other.append(buffer[begin:end].decode("utf-8", "replace")[:300])
                return
            on_next(self, mark, order, self.arrived)
            return
        text = buffer[begin:end].decode("utf-8", "replace")
        if on_next is not None:
            kind = message_type(text)
            if kind == "ping":
                self.send(PONG_MESSAGE)
            elif kind != "pong":
                self.other.append(text[:300])
            return
        self.messages.append(text)
        self._wake()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    # -- the caller's side --------------------------------------------------------------------

    def last_next(self) -> str:
        """The payload of the last ``next`` frame, as text."""
        buffer, begin, end = self.frame
        return buffer[begin:end].decode("utf-8", "replace")

    def send(self, text: str) -> None:
        """Send a text frame."""
        self._write(text_frame(text))

    async def recv(self, seconds: float) -> str:
        """The next queued text message (before :meth:`deliver_to`); ConnectionError once the
        connection ended."""
        while not self.messages:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.waiter, seconds)
            finally:
                self.waiter = None
        message = self.messages.popleft()
        if message is None:
            self.messages.appendleft(None)
            raise ConnectionError(f"closed: code {self.close_code} {self.close_reason}")
        return message

    def deliver_to(self, on_next: OnNext) -> None:
        """From now on ``next`` frames go to ``on_next`` (the queued ones first)."""
        self.on_next = on_next
        queued = [m for m in self.messages if m is not None]
        self.messages.clear()
        for text in queued:
            data = text.encode()
            self._text(data, 0, len(data))

    async def close(self, seconds: float = 5.0) -> None:
        """A closing handshake (1000), then wait for the server to end the connection."""
        if self.transport is None or self.transport.is_closing():
            return
        self._write(client_frame(CLOSE, struct.pack("!H", 1000)))
        try:
            await asyncio.wait_for(asyncio.shield(self.done), seconds)
        except TimeoutError:
            self.transport.abort()

    def abort(self) -> None:
        """Close abruptly: SO_LINGER 0, so the kernel sends RST and keeps no TIME_WAIT."""
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


async def connect(
    url: str, subprotocol: str, seconds: float, local_addr: tuple[str, int] | None = None
) -> LightSocket:
    """A LightSocket to ``ws://host:port/path``, once the server answered the upgrade."""
    assert url.startswith("ws://"), url
    rest = url[len("ws://") :]
    netloc, _, path = rest.partition("/")
    host, _, port = netloc.rpartition(":")
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(
            lambda: LightSocket(netloc, "/" + path, subprotocol),
            host,
            int(port),
            local_addr=local_addr,
        ),
        seconds,
    )
    try:
        await asyncio.wait_for(asyncio.shield(protocol.opened), seconds)
    except BaseException:
        protocol.abort()
        raise
    return protocol
