"""One client's side of the fan-out (a websocket, or an HTTP stream carrying one operation): its
viewer, bounded outbox and writer.

Each connection has one writer and a bounded queue, so a slow client delays no one: what can't
be queued ends that client's subscription (``Sub.overflow``), never someone else's delivery.

A websocket whose server lends a synchronous write (``DIRECT_WRITE``, see ``app.wire``) skips
the queue while its transport's write buffer is low: the frame goes straight to the socket from
the hub's own loop over the subscribers, with no task woken per delivery (38 µs → a few µs per
delivery). Only when the buffer is high (the client isn't reading) or frames are already
waiting are they queued, bounded as before, for a writer task made on demand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from starlette.websockets import WebSocketDisconnect

from clientaddr import UNKNOWN
from realtime.fanout.primitives import LightEvent, Waiters
from realtime.ports import Viewer
from realtime.protocol import subprotocol
from realtime.protocol.base import Wire
from realtime.protocol.messages import CloseCode, Closed, ServerMessage
from settings import Settings

if TYPE_CHECKING:
    from realtime.fanout.subscription import Sub

# The ASGI scope extension under which a server lends a websocket's synchronous write:
# ``write(text, max_buffer) -> bool``, True once the frame is on the transport, False (nothing
# written) when the transport's buffer holds more than ``max_buffer`` bytes or the socket can't
# take a frame now (closing, closed, not yet accepted): then the frame is queued instead.
DIRECT_WRITE = "agora.websocket.write"

DirectWrite = Callable[[str, int], bool]


class Transport(Protocol):
    """Where a connection's frames go: a websocket, or an HTTP response's body."""

    async def send_text(self, data: str) -> None: ...


class Connection:
    """One client: its viewer, subscriptions, bounded outbox and writer.

    ``direct``: the transport's synchronous write (frames skip the queue while its buffer is
    low). ``lazy_writer``: no long-lived writer task; one is made when a frame has to be
    queued and ends once the queue is empty (a websocket's endpoint waits on ``closed``). Without
    either, the owner runs :meth:`writer` as a task for the connection's life (HTTP streams).
    """

    # Thousands of these live at once: no per-instance __dict__.
    __slots__ = (
        "__weakref__",
        "_drained",
        "_replay_slots",
        "_wake",
        "client_address",
        "closed",
        "closing",
        "direct",
        "last_pong",
        "last_write",
        "latest",
        "lazy_writer",
        "max_buffer",
        "protocol",
        "queue",
        "replay_high_water",
        "replay_low_water",
        "sending",
        "session_expires",
        "settings",
        "subs",
        "token",
        "token_hash",
        "viewer",
        "wire",
        "writer_task",
        "ws",
    )

    def __init__(
        self,
        ws: Transport,
        protocol: str | Wire,
        settings: Settings,
        client_address: str = UNKNOWN,
        replay_slots: AbstractAsyncContextManager[Any] | None = None,
        direct: DirectWrite | None = None,
        lazy_writer: bool = False,
    ) -> None:
        # The websocket, or the HTTP stream's body writer.
        self.ws = ws
        self.wire = subprotocol(protocol) if isinstance(protocol, str) else protocol
        self.protocol = self.wire.name
        self.settings = settings
        # Derived once from the handshake: every operation of the socket is rate limited as
        # coming from here (without it all websocket clients shared the "unknown" bucket).
        self.client_address = client_address
        self.viewer: Viewer | None = None
        self.token = ""
        self.token_hash = ""
        self.session_expires: datetime | None = None
        self.subs: dict[str, Sub] = {}
        # Lists, not deques (a deque is ~760 bytes made, and most sockets never queue a frame);
        # the queue holds at most WS_QUEUE_LENGTH frames (plus forced ones), so a popleft's
        # shift stays small.
        self.queue: Waiters[str] = Waiters()
        self.latest: dict[str, str] = {}
        # Made on first use (most sockets never queue a frame, nor replay): fewer objects per
        # idle connection.
        self._wake: asyncio.Event | None = None
        self.closing: Closed | None = None
        # Set once closing: whoever serves the connection stops waiting on a stalled writer.
        self.closed = LightEvent()
        self.last_pong = asyncio.get_running_loop().time()
        # When the writer last sent a frame (HTTP streams send heartbeats after a silence;
        # direct writes, which only websockets have, don't keep it).
        self.last_write = self.last_pong
        # Replays of this connection running at once; the rest wait their turn here. An HTTP
        # stream carries one operation, so its slots are its client's (address and viewer).
        self._replay_slots = replay_slots
        # A replay fills the queue up to half its bound, leaving the other half to live events
        # (which end their subscription when the queue is full), and resumes once the writer has
        # drained it to a quarter: a high and a low water mark, so the two don't take turns
        # frame by frame.
        self.replay_high_water = max(1, settings.ws_queue_length // 2)
        self.replay_low_water = self.replay_high_water // 2
        self._drained: asyncio.Event | None = None
        self.direct = direct
        self.max_buffer = settings.ws_direct_write_buffer_bytes
        self.lazy_writer = lazy_writer or direct is not None
        self.writer_task: asyncio.Task[None] | None = None
        # The writer holds a frame it took off the queue and hasn't sent yet: a direct write
        # now would overtake it.
        self.sending = False

    @property
    def wake(self) -> asyncio.Event:
        """Set when there is something for the writer to send (or the connection closes)."""
        if self._wake is None:
            self._wake = asyncio.Event()
        return self._wake

    @property
    def drained(self) -> asyncio.Event:
        """Set when the writer has drained the queue to the replays' low water mark."""
        if self._drained is None:
            self._drained = asyncio.Event()
        return self._drained

    @property
    def replay_slots(self) -> AbstractAsyncContextManager[Any]:
        """The replay slots this connection's subscriptions take turns on."""
        if self._replay_slots is None:
            self._replay_slots = asyncio.Semaphore(self.settings.ws_replays_per_connection)
        return self._replay_slots

    def _write_now(self, frame: str) -> bool:
        """Write ``frame`` straight to the transport if nothing is ahead of it and its buffer
        is low; False (nothing written) otherwise."""
        # ``last_write`` is not kept here: only HTTP streams read it (their heartbeats), and they
        # have no direct write; a websocket's keep-alive is its pings. (Reading the loop's clock
        # was a tenth of a delivery's own cost, once per subscriber and event.)
        direct = self.direct
        return (
            direct is not None
            and not self.sending
            and not self.queue
            and not self.latest
            and direct(frame, self.max_buffer)
        )

    def _start_writer(self) -> None:
        self.wake.set()
        if self.lazy_writer and (self.writer_task is None or self.writer_task.done()):
            self.writer_task = asyncio.get_running_loop().create_task(self.writer())

    def push(self, frame: str, force: bool = False) -> bool:
        """Send or queue a frame; False (nothing queued) if the queue is full, unless forced."""
        if self.closing is not None:
            return True
        if self._write_now(frame):
            return True
        if not force and len(self.queue) >= self.settings.ws_queue_length:
            return False
        self.queue.append(frame)
        self._start_writer()
        return True

    def push_latest(self, sub_id: str, frame: str) -> None:
        """Send a frame, or queue it in place of any not yet sent for the same subscription."""
        if self.closing is None and self._write_now(frame):
            return
        self.latest[sub_id] = frame
        self._start_writer()

    def send(self, message: ServerMessage | dict[str, Any]) -> None:
        """Queue a protocol message, whatever the queue's length (acks, errors, pongs); on an
        HTTP stream an operation's error or completion then ends the response."""
        frame = self.wire.encode(message)  # type: ignore[arg-type]
        ends = self.wire.ends_stream(message)  # type: ignore[arg-type]
        if ends and self.closing is None:
            # The stream's last word: what is still queued would only delay it (a client that
            # fell behind must get its overflow error, not more of the backlog).
            self.queue.clear()
            self.latest.clear()
        if frame:
            self.push(frame, force=True)
        if ends:
            self.close(CloseCode.NORMAL, "")

    def close(self, code: int, reason: str) -> None:
        """Close once the writer has sent what is queued; the first reason given wins."""
        if self.closing is None:
            self.closing = Closed(code, reason)
            if self._wake is not None:
                self._wake.set()
            if self._drained is not None:
                self._drained.set()  # a replay waiting for room must not wait forever
            self._mark_closed()

    def _mark_closed(self) -> None:
        """Set ``closed``: whoever serves the connection ends it."""
        self.closed.set()

    async def room_for_replay(self) -> None:
        """Wait until the writer has drained the queue enough for a replay to push more."""
        while self.closing is None and len(self.queue) >= self.replay_high_water:
            self.drained.clear()
            await self.drained.wait()

    async def writer(self) -> None:
        """Send queued frames in order until closed (a lazy writer: until the queue is empty);
        a vanished client just ends the loop."""
        try:
            while True:
                if not self.lazy_writer:
                    await self.wake.wait()
                self.wake.clear()
                while self.queue or self.latest:
                    if self.queue:
                        frame = self.queue.popleft()
                        if len(self.queue) <= self.replay_low_water and self._drained is not None:
                            self._drained.set()
                    else:
                        sub_id = next(iter(self.latest))
                        frame = self.latest.pop(sub_id)
                    # Waits while the client isn't reading (the transport's buffer is full):
                    # that is what paces replays to the client.
                    self.sending = True
                    try:
                        await self.ws.send_text(frame)
                    finally:
                        self.sending = False
                    self.last_write = asyncio.get_running_loop().time()
                if self.closing is not None or self.lazy_writer:
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.closing = self.closing or Closed(CloseCode.ABNORMAL, "client went away")
            if self._drained is not None:
                self._drained.set()
            self._mark_closed()
