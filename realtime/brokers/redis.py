"""Redis pub/sub between processes, on top of in-process delivery.

Local delivery comes first: while Redis is down, local subscribers still get local events, the
outage is logged and ``healthy`` is False (``/readyz`` reports it); it reconnects with backoff,
and tells its listeners when it is back so they can fill any gap from the database (Redis
pub/sub delivers at most once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
import uuid
from typing import Any

from logs import get_logger
from realtime.brokers.base import ReconnectCallback, meters
from realtime.brokers.memory import MemoryBroker

logger = get_logger("agora.broker")

# Every channel's name on Redis starts with this (one pattern subscription hears them all).
PREFIX = "agora:"


# Channels whose events are in Redis before their publisher goes on (session revocations:
# every worker's session cache drops them), rather than queued behind other traffic.
AWAITED_CHANNELS = frozenset({"sessions"})
AWAITED_PUBLISH_SECONDS = 1.0


class RedisBroker(MemoryBroker):
    """Local delivery plus Redis pub/sub between processes."""

    def __init__(self, url: str, max_backoff: float = 5.0) -> None:
        super().__init__()
        self.url = url
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.max_backoff = max_backoff
        self.healthy = False
        # ``healthy`` is both of these: the pub/sub listener is connected, and the last publish
        # went through (a failed publish alone used to leave it False until the listener lost
        # its own connection, which a healthy listener never does: /readyz stuck at 503).
        self._listening = False
        self._publishing_ok = True
        self._client: Any = None
        self._publisher: Any = None
        self._publishing: asyncio.Task[None] | None = None
        self._outbound: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=10_000)
        self._task: asyncio.Task[None] | None = None
        self._reconnect_callbacks: list[ReconnectCallback] = []
        self._stopping = False
        self._ready = asyncio.Event()

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        """Call ``callback`` each time the pub/sub connection comes back after a loss."""
        self._reconnect_callbacks.append(callback)

    async def start(self) -> None:
        """Start local delivery, the publisher and the listener; wait up to 5 s for Redis."""
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
        """Stop local delivery and both Redis connections."""
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
        """Deliver locally, then queue the event for Redis (never waiting on it)."""
        meters(channel).published.inc()
        published_at = time.time()
        await self._deliver(channel, event, published_at)
        # "t": the publication's wall time, for the receivers' lag (a message without it, from
        # a process of an earlier version, is delivered all the same).
        message = json.dumps(
            {"o": self.origin, "e": event, "t": published_at}, separators=(",", ":")
        )
        if channel in AWAITED_CHANNELS and await self._publish_now(channel, message):
            return
        if self._outbound.full():
            # Redis has been unreachable for a while: drop the oldest; subscribers elsewhere
            # fill such gaps from the database.
            self._outbound.get_nowait()
        self._outbound.put_nowait((channel, message))

    async def _publish_now(self, channel: str, message: str) -> bool:
        """Send ``message`` to Redis before answering (within AWAITED_PUBLISH_SECONDS), past a
        queue that odds traffic may have backed up: a revocation must reach the other workers
        before its logOut answers. False when Redis didn't take it (the queue then retries)."""
        if self._publisher is None:
            return False
        try:
            await asyncio.wait_for(
                self._publisher.publish(PREFIX + channel, message), AWAITED_PUBLISH_SECONDS
            )
        except Exception as exc:  # an outage: the queue (and the caches' lifetime) cover it
            logger.warning("redis publish of %s failed (%s); queued", channel, exc)
            self._publishing_ok = False
            self.healthy = False
            return False
        self._publish_recovered()
        return True

    async def _publish_loop(self) -> None:
        """Send to Redis off the writer's path: an outage never slows a mutation down.

        A failed publish drops its event (subscribers elsewhere fill gaps from the database when
        their listener reconnects) and marks the broker unhealthy; while it is, the loop probes
        Redis with PING between events, backing off, and is healthy again on the first success.
        """
        backoff = 0.1
        while True:
            if self._publishing_ok:
                channel, message = await self._outbound.get()
            else:
                try:
                    channel, message = await asyncio.wait_for(self._outbound.get(), backoff)
                except TimeoutError:
                    try:
                        await self._publisher.ping()
                    except Exception:  # still down: probe again later
                        backoff = min(self.max_backoff, backoff * 2)
                    else:
                        backoff = 0.1
                        self._publish_recovered()
                    continue
            try:
                await self._publisher.publish(PREFIX + channel, message)
            except Exception as exc:  # an outage must not stop the loop
                if self._publishing_ok:
                    logger.error("redis publish failed (%s): other processes miss %s", exc, channel)
                self._publishing_ok = False
                self.healthy = False
            else:
                backoff = 0.1
                self._publish_recovered()

    def _publish_recovered(self) -> None:
        if self._publishing_ok:
            return
        logger.info("redis publishing again")
        self._publishing_ok = True
        self.healthy = self._listening

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while not self._stopping:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(PREFIX + "*")
                if not self._listening:
                    logger.info("redis connected at %s", self.url.split("@")[-1])
                self._listening = True
                self.healthy = self._publishing_ok
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
                if self._listening:
                    logger.error("redis connection lost (%s); retrying with backoff", exc)
                self._listening = False
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
        if not isinstance(body, dict):
            # Anything else would raise below and read as a lost connection (a reconnect).
            logger.warning("ignoring a malformed broker message on %s", channel)
            return
        if body.get("o") == self.origin:
            return  # delivered locally when published
        published_at = _publication_time(body.get("t"))
        await self._deliver(channel.removeprefix(PREFIX), body.get("e") or {}, published_at)


def _publication_time(value: object) -> float | None:
    """An envelope's publication time, or None for anything but a finite number (a 400-digit
    integer overflows a float: that too must not read as a lost connection)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None
