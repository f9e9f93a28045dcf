"""RedisBroker.healthy (what /readyz reports) follows both of its connections: a failed publish
makes it unhealthy, and it is healthy again once Redis takes a command, without waiting for the
pub/sub listener to lose its own (healthy) connection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from realtime.brokers.redis import RedisBroker
from tests.services import RedisServer, start_redis


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


class _FailingPublisher:
    """Wraps the broker's publisher: the next ``failures`` commands raise as an outage would."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls: list[str] = []

    def _fail(self, name: str) -> None:
        self.calls.append(name)
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("Connection reset by peer")

    async def publish(self, channel: str, message: str) -> Any:
        self._fail("publish")
        return await self.inner.publish(channel, message)

    async def ping(self) -> Any:
        self._fail("ping")
        return await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _until(predicate: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def test_a_failed_publish_is_unhealthy_until_redis_answers_again(
    redis_server: RedisServer,
) -> None:
    a, b = RedisBroker(redis_server.url), RedisBroker(redis_server.url)
    heard: list[tuple[str, dict[str, Any]]] = []
    try:
        await a.start()
        await b.start()
        b.listen(lambda channel, message: heard.append((channel, message)))
        assert a.healthy and b.healthy
        publisher = _FailingPublisher(a._publisher, failures=3)
        a._publisher = publisher
        await a.publish("comments:1", {"n": 1})
        await _until(lambda: not a.healthy)
        # No more events: the loop probes with PING (two more failures), then recovers.
        await _until(lambda: a.healthy)
        assert publisher.calls[:4] == ["publish", "ping", "ping", "ping"]
        assert a._listening
        # The dropped event stays dropped (the other side fills gaps from the database); the
        # next one crosses.
        await a.publish("comments:1", {"n": 2})
        await _until(lambda: bool(heard))
        await asyncio.sleep(0.05)
        assert heard == [("comments:1", {"n": 2})]
    finally:
        await a.stop()
        await b.stop()


async def test_a_publish_that_works_again_makes_it_healthy_at_once(
    redis_server: RedisServer,
) -> None:
    a = RedisBroker(redis_server.url, max_backoff=60)
    try:
        await a.start()
        publisher = _FailingPublisher(a._publisher, failures=1)
        a._publisher = publisher
        await a.publish("comments:1", {"n": 1})
        await _until(lambda: not a.healthy)
        await a.publish("comments:1", {"n": 2})
        await _until(lambda: a.healthy, seconds=1)
        assert publisher.calls[:2] == ["publish", "publish"]
    finally:
        await a.stop()


async def test_a_lost_listener_is_unhealthy_even_while_publishing_works(
    redis_server: RedisServer,
) -> None:
    a = RedisBroker(redis_server.url)
    try:
        await a.start()
        assert a.healthy
        # Kill the listener's connection from the server side: publishes still succeed.
        import redis.asyncio as redis

        admin = redis.from_url(redis_server.url)
        try:
            await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            await _until(lambda: not a.healthy)
            await a.publish("comments:1", {"n": 1})
            await _until(lambda: a.healthy)
            assert a._listening and a._publishing_ok
        finally:
            await admin.aclose()
    finally:
        await a.stop()
