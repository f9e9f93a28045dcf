"""The in-process broker: the embedded mode, and the local half of every other backend."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from logs import get_logger
from realtime.brokers.base import Listener, ReconnectCallback, meters

logger = get_logger("agora.broker")


class MemoryBroker:
    """In-process delivery, in publish order, by one dispatcher task once started.

    The writer that publishes doesn't wait for the fan-out (a mutation answers at once); before
    ``start`` (or after ``stop``) delivery happens inline.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.healthy = True
        # (channel, event, its publication's wall time, if known)
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], float | None]] | None = None
        self._dispatcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Deliver from now on through one dispatcher task, in publish order."""
        self._queue = asyncio.Queue()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="broker-dispatch")

    async def stop(self) -> None:
        """Stop the dispatcher; later events are delivered inline."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        self._dispatcher = self._queue = None

    async def _dispatch(self) -> None:
        assert self._queue is not None
        while True:
            channel, event, published_at = await self._queue.get()
            await self._deliver_now(channel, event, published_at)

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` for every event on every channel."""
        self._listeners.append(listener)

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        """Nothing to reconnect to: in-process delivery can't lose an event."""
        return None

    async def publish(self, channel: str, event: dict[str, Any]) -> None:
        """Queue ``event`` for this process's listeners."""
        meters(channel).published.inc()
        await self._deliver(channel, event, time.time())

    async def _deliver(
        self, channel: str, event: dict[str, Any], published_at: float | None = None
    ) -> None:
        if self._queue is not None:
            self._queue.put_nowait((channel, event, published_at))
        else:
            await self._deliver_now(channel, event, published_at)

    async def _deliver_now(
        self, channel: str, event: dict[str, Any], published_at: float | None = None
    ) -> None:
        # Counted once per event reaching this process, local or from another one; the lag
        # of a local one is its wait behind the dispatcher's queue.
        meters(channel).received(published_at, time.time())
        for listener in list(self._listeners):
            try:
                result = listener(channel, event)
                if result is not None:
                    await result
            except Exception:  # a broken listener must not stop the others
                logger.exception("listener failed on %s", channel)
