"""The broker: small events (ids and sequence numbers) from writers to subscribers.

One interface, two backends. ``MemoryBroker`` delivers within the process (the embedded mode).
``RedisBroker`` also publishes to Redis pub/sub so other processes hear it, delivering locally
first: while Redis is down, local subscribers still get local events, the outage is logged and
``healthy`` is False (``/readyz`` reports it); it reconnects with backoff, and tells its
listeners when it is back so they can fill any gap from the database (Redis pub/sub delivers at
most once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from logs import get_logger

logger = get_logger("agora.broker")

Listener = Callable[[str, dict[str, Any]], Awaitable[None] | None]
PREFIX = "agora:"


class Broker(Protocol):
    """Publish events on channels; listeners get (channel, event) in order per channel."""

    healthy: bool

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, channel: str, event: dict[str, Any]) -> None: ...

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` for every event on every channel (the hub routes them)."""

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call ``callback`` after a lost connection to other processes comes back."""


class MemoryBroker:
    """In-process delivery, in publish order, by one dispatcher task once started.

    The writer that publishes doesn't wait for the fan-out (a mutation answers at once); before
    ``start`` (or after ``stop``) delivery happens inline.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.healthy = True
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None
        self._dispatcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="broker-dispatch")

    async def stop(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        self._dispatcher = self._queue = None

    async def _dispatch(self) -> None:
        assert self._queue is not None
        while True:
            channel, event = await self._queue.get()
            await self._deliver_now(channel, event)

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        return None

    async def publish(self, channel: str, event: dict[str, Any]) -> None:
        await self._deliver(channel, event)

    async def _deliver(self, channel: str, event: dict[str, Any]) -> None:
        if self._queue is not None:
            self._queue.put_nowait((channel, event))
        else:
            await self._deliver_now(channel, event)

    async def _deliver_now(self, channel: str, event: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                result = listener(channel, event)
                if result is not None:
                    await result
            except Exception:  # a broken listener must not stop the others
                logger.exception("listener failed on %s", channel)


class RedisBroker(MemoryBroker):
    """Local delivery plus Redis pub/sub between processes."""

    def __init__(self, url: str, max_backoff: float = 5.0) -> None:
        super().__init__()
        self.url = url
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.max_backoff = max_backoff
        self.healthy = False
        self._client: Any = None
        self._publisher: Any = None
        self._publishing: asyncio.Task[None] | None = None
        self._outbound: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=10_000)
        self._task: asyncio.Task[None] | None = None
        self._reconnect_callbacks: list[Callable[[], Awaitable[None]]] = []
        self._stopping = False
        self._ready = asyncio.Event()

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._reconnect_callbacks.append(callback)

    async def start(self) -> None:
        await super().start()
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No silent retries: redis-py would otherwise reconnect the pub/sub connection on its
        # own, and this broker would never learn it must fill the gap from the database.
        self._client = redis.from_url(
            self.url,
            socket_connect_timeout=2,
            socket_timeout=None,
            health_check_interval=5,
            retry=Retry(NoBackoff(), 0),
        )
        # Publishing, on the other hand, should reconnect and retry by itself: a stale pooled
        # connection after an outage must not lose the first event published once Redis is back.
        self._publisher = redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)
        self._publishing = asyncio.create_task(self._publish_loop(), name="redis-publish")
        self._task = asyncio.create_task(self._run(), name="redis-broker")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5)

    async def stop(self) -> None:
        await super().stop()
        self._stopping = True
        for task in (self._task, self._publishing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for client in (self._client, self._publisher):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def publish(self, channel: str, event: dict[str, Any]) -> None:
        await self._deliver(channel, event)
        message = json.dumps({"o": self.origin, "e": event}, separators=(",", ":"))
        if self._outbound.full():
            # Redis has been unreachable for a while: drop the oldest; subscribers elsewhere
            # fill such gaps from the database.
            self._outbound.get_nowait()
        self._outbound.put_nowait((channel, message))

    async def _publish_loop(self) -> None:
        """Send to Redis off the writer's path: an outage never slows a mutation down."""
        while True:
            channel, message = await self._outbound.get()
            try:
                await self._publisher.publish(PREFIX + channel, message)
            except Exception as exc:  # an outage must not stop the loop
                if self.healthy:
                    logger.error("redis publish failed (%s): other processes miss %s", exc, channel)
                self.healthy = False

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while not self._stopping:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(PREFIX + "*")
                if not self.healthy:
                    logger.info("redis connected at %s", self.url.split("@")[-1])
                self.healthy = True
                self._ready.set()
                backoff = 0.1
                if not first:
                    for callback in list(self._reconnect_callbacks):
                        try:
                            await callback()
                        except Exception:
                            logger.exception("reconnect callback failed")
                first = False
                async for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    await self._receive(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.healthy:
                    logger.error("redis connection lost (%s); retrying with backoff", exc)
                self.healthy = False
                self._ready.set()
                first = False
                await asyncio.sleep(backoff)
                backoff = min(self.max_backoff, backoff * 2)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _receive(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        if isinstance(channel, bytes):
            channel = channel.decode()
        try:
            body = json.loads(message["data"])
        except (ValueError, TypeError):
            logger.warning("ignoring a malformed broker message on %s", channel)
            return
        if body.get("o") == self.origin:
            return  # delivered locally when published
        await self._deliver(channel.removeprefix(PREFIX), body.get("e") or {})


def broker_for(redis_url: str | None) -> MemoryBroker:
    """The broker for the settings: Redis when a URL is given, else in-memory."""
    return RedisBroker(redis_url) if redis_url else MemoryBroker()
