"""The HTTP stream caps per client address and per viewer, shared by two app instances (two
uvicorn servers in this process) through Redis: a cap filled on one is full on the other, a
closed stream frees a place on either, the places of a worker that vanished come back when
their leases run out, and while Redis is down each instance counts its own streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest

import metrics
from realtime.streamcaps import SharedStreamCounts
from settings import Settings
from tests.conftest import FakeClock, seed_demo
from tests.http.test_streams import SSE_ACCEPT, Reader, stream
from tests.realtime.test_realtime import ADDED, Live, serving
from tests.services import RedisServer, start_redis

# What the test client's streams count under: its address (loopback).
ADDRESS_KEY = b"agora:streams:a127.0.0.1"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
async def pair(
    fresh_settings: Settings, redis_server: RedisServer
) -> AsyncIterator[tuple[Live, Live]]:
    """Two servers on one demo database and one Redis; two streams per client address."""
    settings = replace(
        fresh_settings,
        redis_url=redis_server.url,
        http_streams_per_address=2,
        http_streams_per_viewer=2,
        http_stream_heartbeat_seconds=1,
        http_stream_lease_seconds=3,  # renewed every second
        redis_limits_retry_seconds=1,
    )
    await seed_demo(settings)
    async with serving(settings) as a, serving(settings) as b:
        yield a, b


def _redis(url: str) -> Any:
    import redis.asyncio as redis

    return redis.from_url(url)


def _fallbacks() -> float:
    return metrics.REGISTRY.get_sample_value("agora_rate_limit_fallbacks_total") or 0.0


def _limits(live: Live) -> Any:
    return live.app.state.streams.limits


@contextlib.asynccontextmanager
async def _open(live: Live, variables: dict[str, Any]) -> AsyncIterator[Reader]:
    """An SSE stream of new comments that is up (200, its first heartbeat read)."""
    async with stream(live, ADDED, variables, SSE_ACCEPT) as reader:
        assert reader.response.status_code == 200, await reader.rest()
        await reader.until("\n:\n\n", seconds=4)
        yield reader


async def _refused(live: Live, variables: dict[str, Any]) -> dict[str, Any]:
    """Open a stream that must be refused 429 TOO_MANY_STREAMS; its error."""
    async with stream(live, ADDED, variables, SSE_ACCEPT) as reader:
        text = await reader.rest()
        assert reader.response.status_code == 429, text
        assert reader.response.headers["retry-after"] == str(
            live.app.state.settings.retry_after_seconds
        )
    error: dict[str, Any] = json.loads(text)["errors"][0]
    assert error["extensions"]["code"] == "TOO_MANY_STREAMS"
    return error


async def _eventually(check: Any, seconds: float = 5.0) -> None:
    """Poll ``check`` (state on Redis: nothing to wait on) until it holds."""
    async with asyncio.timeout(seconds):
        for _ in range(int(seconds / 0.05) + 1):
            if await check():
                return
            await asyncio.sleep(0.05)
    raise AssertionError("never held")


async def test_a_cap_filled_on_one_instance_is_full_on_the_other(
    pair: tuple[Live, Live], redis_server: RedisServer
) -> None:
    a, b = pair
    variables = {"a": (await a.article())["id"]}
    client = _redis(redis_server.url)
    try:
        async with contextlib.AsyncExitStack() as stack:
            first = await stack.enter_async_context(_open(a, variables))
            await stack.enter_async_context(_open(a, variables))
            assert await client.zcard(ADDRESS_KEY) == 2
            error = await _refused(b, variables)
            assert "per client address" in error["message"]
            assert _limits(b).total == 0  # the refused one counted nowhere
            assert await client.zcard(ADDRESS_KEY) == 2
            # One closes on A: the place is free on B too.
            await first.response.aclose()
            await _eventually(lambda: _zcard_is(client, 1))
            await stack.enter_async_context(_open(b, variables))
            # And full again, on both.
            for live in (a, b):
                await _refused(live, variables)
        await _eventually(lambda: _zcard_is(client, 0))
        assert _limits(a).keys == {} and _limits(b).keys == {}
        assert _limits(a).shared.leases == {} and _limits(b).shared.leases == {}
    finally:
        await client.aclose()


async def _zcard_is(client: Any, count: int) -> bool:
    return bool(await client.zcard(ADDRESS_KEY) == count)


async def test_the_places_of_a_vanished_worker_come_back_when_their_leases_end(
    pair: tuple[Live, Live], redis_server: RedisServer
) -> None:
    a, b = pair
    variables = {"a": (await a.article())["id"]}
    # Every party on one clock (Redis's TIME replaced), so the test moves leases by hand.
    clock = FakeClock()
    for live in (a, b):
        _limits(live).shared.clock = clock
    other = SharedStreamCounts(redis_server.url, lease_seconds=30, clock=clock)
    try:
        # Another worker holds both of this address's places.
        for _ in range(2):
            admission = await other.acquire(["a127.0.0.1"], [2])
            assert (admission.over, admission.shared) == (None, True)
        await _refused(a, variables)
        # While it lives, it renews its leases (at 1020 s, to 1050 s): still full past the
        # first lease's end (1030 s).
        clock.advance(20)
        await other.renew()
        clock.advance(20)
        await _refused(b, variables)
        # It dies without a word: no release, no renewal.
        assert other._renewer is not None
        other._renewer.cancel()
        other.leases.clear()
        clock.advance(9.9)
        await _refused(a, variables)
        clock.advance(0.2)  # its leases are over
        async with _open(b, variables), _open(a, variables):
            await _refused(a, variables)
    finally:
        await other.aclose()


async def test_while_redis_is_down_each_instance_counts_its_own_streams(
    pair: tuple[Live, Live], redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    variables = {"a": (await a.article())["id"]}
    caplog.set_level(logging.INFO, logger="agora")
    redis_server.stop()
    fallbacks = _fallbacks()
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(_open(a, variables))
        error = await _refused(a, variables)  # this process's own count
        assert "per client address" in error["message"]
        # B knows nothing of A's streams meanwhile: per process, N workers allow N× the cap.
        await stack.enter_async_context(_open(b, variables))
        # Every check answered from the process: A's three (the third refused here before
        # Redis was asked), B's one.
        assert _fallbacks() - fallbacks == 3
        warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
        streams_warnings = [r for r in warnings if "HTTP stream caps" in r.getMessage()]
        assert len(streams_warnings) == 2  # once per instance

        # Back (empty): the renewals put every open stream on Redis again, so the address,
        # at three, is over its cap on both instances.
        redis_server.start()
        client = _redis(redis_server.url)
        try:
            await _eventually(lambda: _zcard_is(client, 3), seconds=8)
            for live in (a, b):
                await _refused(live, variables)
            assert not _limits(a).shared.outage.down and not _limits(b).shared.outage.down
        finally:
            await client.aclose()
        assert sum("HTTP stream caps are shared" in r.getMessage() for r in caplog.records) == 2


async def test_stream_cap_keys_are_bounded_and_leases_expire_with_their_set(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock()
    counts = SharedStreamCounts(redis_server.url, lease_seconds=10, clock=clock)
    client = _redis(redis_server.url)
    try:
        long_key = "a" + "f" * 10_000
        admission = await counts.acquire([long_key, "v1"], [1, 5])
        assert admission.over is None
        assert max(len(key) for key in counts.leases[admission.lease]) < 100
        # The set goes with its last lease (Redis's clock: the PEXPIRE is the lease).
        ttl = await client.pttl(counts.key(long_key))
        assert 9000 < ttl <= 10_000
        # Refused under one key: counted under none.
        refused = await counts.acquire(["v1", long_key], [5, 1])
        assert (refused.over, refused.shared) == (1, True)
        assert await client.zcard(counts.key("v1")) == 1
        counts.release(admission.lease)
        await _eventually(lambda: _empty(client, counts, ["v1", long_key]))
    finally:
        await counts.aclose()
        await client.aclose()


async def _empty(client: Any, counts: SharedStreamCounts, keys: list[str]) -> bool:
    return all([await client.zcard(counts.key(key)) == 0 for key in keys])


async def test_closing_gives_back_the_places_still_held(redis_server: RedisServer) -> None:
    counts = SharedStreamCounts(redis_server.url, lease_seconds=30)
    client = _redis(redis_server.url)
    try:
        for _ in range(2):
            assert (await counts.acquire(["a198.51.100.7"], [5])).over is None
        assert await client.zcard(counts.key("a198.51.100.7")) == 2
        # A worker shutting down: its clients may reconnect elsewhere at once, not a lease later.
        await counts.aclose()
        assert await client.zcard(counts.key("a198.51.100.7")) == 0
        assert counts.leases == {}
    finally:
        await client.aclose()


async def test_thousands_of_streams_ending_at_once_all_give_their_places_back(
    redis_server: RedisServer,
) -> None:
    """A drain ends every stream at once: their places go back in batches (a task each
    exhausted the connection pool, read as an outage, and left the places to their leases).
    A timeout a loaded machine meets (this is about the releases, not Redis's speed)."""
    counts = SharedStreamCounts(redis_server.url, lease_seconds=30, timeout=5.0)
    client = _redis(redis_server.url)
    keys = [f"a198.51.100.{i % 250}" for i in range(3000)]
    try:
        admissions = []
        for start in range(0, len(keys), 100):  # opened over time, as streams are
            admissions += await asyncio.gather(
                *(
                    counts.acquire([key, f"v{start + i}"], [100, 100])
                    for i, key in enumerate(keys[start : start + 100])
                )
            )
        assert all(admission.over is None for admission in admissions)
        assert not counts.outage.down
        calls = 0
        call = counts.outage.call

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return await call(*args, **kwargs)

        counts.outage.call = counted  # type: ignore[method-assign]
        for admission in admissions:
            counts.release(admission.lease)
        await counts.aclose()
        assert not counts.outage.down
        # One round trip per 500 streams (RENEW_BATCH), not one each.
        assert calls == 3000 // 500
        left = [key for key in set(keys) if await client.zcard(counts.key(key))]
        assert left == []
    finally:
        await client.aclose()
