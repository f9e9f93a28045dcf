"""One client's side of the fan-out (a websocket, or an HTTP stream carrying one operation): its
viewer, bounded outbox and writer task.

Each connection has one writer and a bounded queue, so a slow client delays no one: what can't
be queued ends that client's subscription (``Sub.overflow``), never someone else's delivery.
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from starlette.websockets import WebSocketDisconnect

from clientaddr import UNKNOWN
from realtime.ports import Viewer
from realtime.protocol import subprotocol
from realtime.protocol.base import Wire
from realtime.protocol.messages import CloseCode, Closed, ServerMessage
from settings import Settings

if TYPE_CHECKING:
    from realtime.fanout.subscription import Sub


class Transport(Protocol):
    """Where a connection's frames go: a websocket, or an HTTP response's body."""

    async def send_text(self, data: str) -> None: ...


class Connection:
    """One client: its viewer, subscriptions, bounded outbox and writer task."""

    def __init__(
        self,
        ws: Transport,
        protocol: str | Wire,
        settings: Settings,
        client_address: str = UNKNOWN,
        replay_slots: AbstractAsyncContextManager[Any] | None = None,
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
        self.queue: deque[str] = deque()
        self.latest: dict[str, str] = {}
        self.wake = asyncio.Event()
        self.closing: Closed | None = None
        # Set once closing: whoever serves the connection stops waiting on a stalled writer.
        self.closed = asyncio.Event()
        self.last_pong = asyncio.get_running_loop().time()
        # When the writer last sent a frame (HTTP streams send heartbeats after a silence).
        self.last_write = self.last_pong
        # Replays of this connection running at once; the rest wait their turn here. An HTTP
        # stream carries one operation, so its slots are its client's (address and viewer).
        self.replay_slots: AbstractAsyncContextManager[Any] = replay_slots or asyncio.Semaphore(
            settings.ws_replays_per_connection
        )
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
            self.wake.set()
            self.drained.set()  # a replay waiting for room must not wait forever
            self.closed.set()

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
                    self.last_write = asyncio.get_running_loop().time()
                if self.closing is not None:
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.closing = self.closing or Closed(CloseCode.ABNORMAL, "client went away")
            self.drained.set()
            self.closed.set()
