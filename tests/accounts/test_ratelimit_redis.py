"""Rate limits shared through Redis: the Lua buckets answer exactly as the in-process ones, two
limiters (two app instances) share one budget, concurrent hits never overdraw it, a Redis
outage falls back to per-process buckets without a client noticing, and client-chosen keys
never make big Redis keys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import metrics
from accounts.ratelimit import (
    MAX_KEY_CHARS,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    Rule,
    bucket_key,
)
from app import create_app
from settings import Settings
from tests.conftest import (
    FakeClock,
    GraphQLClient,
    forget_compiled_statements,
    prepare_database,
    with_settings,
)
from tests.services import RedisServer, start_app_process, start_redis

LOG_IN = """
mutation($input: LogInInput!) {
  logIn(input: $input) { token errors { code message retryAfterSeconds } }
}
"""


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own, which it may stop and start."""
    server = start_redis()
    yield server
    server.stop()


def _redis(url: str) -> Any:
    import redis.asyncio as redis

    return redis.from_url(url)


def _fallbacks() -> float:
    return metrics.REGISTRY.get_sample_value("agora_rate_limit_fallbacks_total") or 0.0


def _refusals(rule: str) -> float:
    value = metrics.REGISTRY.get_sample_value("agora_rate_limit_refusals_total", {"rule": rule})
    return value or 0.0


# -- the Lua script is MemoryRateLimiter's arithmetic -------------------------------------------

RULES = st.builds(
    Rule,
    name=st.sampled_from(["r1", "r2"]),
    capacity=st.integers(1, 12),
    period=st.one_of(
        st.sampled_from([1.0, 60.0, 900.0, 3600.0, 0.3]),
        st.floats(0.01, 10_000, allow_nan=False, allow_infinity=False),
    ),
)
KEYS = st.sampled_from(["alice|203.0.113.9", "203.0.113.9", "x" * 200, ""])
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["hit", "hit", "hit", "peek", "refund", "reset"]),
        st.integers(0, 1),  # which rule
        KEYS,
        st.one_of(
            st.just(0.0),
            st.floats(0, 400, allow_nan=False, allow_infinity=False),
            st.sampled_from([1e-9, 0.001, 1.0, 179.999, 180.0]),
        ),
    ),
    max_size=40,
)


@hypothesis_settings(max_examples=150)
@given(rules=st.lists(RULES, min_size=2, max_size=2, unique_by=lambda r: r.name), steps=STEPS)
async def test_the_lua_buckets_answer_as_the_memory_ones(
    redis_server: RedisServer, rules: list[Rule], steps: list[tuple[str, int, str, float]]
) -> None:
    clock = FakeClock()
    memory = MemoryRateLimiter(clock=clock)
    # A fresh namespace per example: no state carries over.
    shared = RedisRateLimiter(
        redis_server.url, clock=clock, prefix=f"agora:rl:prop-{uuid.uuid4().hex}:"
    )
    try:
        for number, (op, which, key, dt) in enumerate(steps):
            clock.advance(dt)
            rule = rules[which]
            if op in ("hit", "peek"):
                expected = await getattr(memory, op)(rule, key)
                got = await getattr(shared, op)(rule, key)
                assert got == expected, (number, op, rule, key, clock.now)
            else:
                await getattr(memory, op)(rule, key)
                await getattr(shared, op)(rule, key)
            # Not only the answers: every bucket holds the same level, to the last bit.
            for each in rules:
                for name in ("alice|203.0.113.9", "203.0.113.9", "x" * 200, ""):
                    level = memory._level(each, bucket_key(name), clock.now)
                    assert await _level_on_redis(shared, each, name, clock.now) == level
        assert not shared.outage.down  # every answer above came from Redis
    finally:
        await shared.aclose()


async def _level_on_redis(limiter: RedisRateLimiter, rule: Rule, key: str, now: float) -> float:
    """A bucket's level as the script computes it, from the hash it keeps."""
    stored = await limiter._client.hmget(limiter.key(rule, key), "tokens", "at")
    if stored[0] is None:
        return float(rule.capacity)
    tokens, at = float(stored[0]), float(stored[1])
    return min(float(rule.capacity), tokens + max(0.0, now - at) * rule.rate)


async def test_buckets_expire_once_full_again_and_reset_deletes(redis_server: RedisServer) -> None:
    limiter = RedisRateLimiter(redis_server.url, prefix=f"agora:rl:ttl-{uuid.uuid4().hex}:")
    client = _redis(redis_server.url)
    rule = Rule("ttl", 4, 8.0)  # a token every 2 s
    try:
        assert await limiter.hit(rule, "k") is None
        key = limiter.key(rule, "k")
        stored = await client.hgetall(key)
        assert float(stored[b"tokens"]) == 3.0
        # Full again in 2 s, forgotten a margin (1 s) after that.
        assert 2900 <= await client.pttl(key) <= 3000
        await limiter.hit(rule, "k")
        assert 4900 <= await client.pttl(key) <= 5000
        # A refund that fills the bucket forgets it; reset does too.
        await limiter.refund(rule, "k")
        await limiter.refund(rule, "k")
        assert await client.exists(key) == 0
        await limiter.hit(rule, "k")
        await limiter.reset(rule, "k")
        assert await client.exists(key) == 0
        # peek writes nothing.
        assert await limiter.peek(rule, "other") is None
        assert await client.exists(limiter.key(rule, "other")) == 0
    finally:
        await limiter.aclose()
        await client.aclose()


# -- two limiters, one budget --------------------------------------------------------------------


async def test_fifty_concurrent_hits_from_two_limiters_allow_exactly_ten(
    redis_server: RedisServer,
) -> None:
    prefix = f"agora:rl:race-{uuid.uuid4().hex}:"
    # Redis's own clock (no fake one): 10 an hour, so nothing refills during the test. A
    # generous timeout: this is about counting, and a loaded CI machine opening 50 connections
    # at once can take longer than the default 250 ms (which would be an outage, answered by
    # the per-process buckets).
    a = RedisRateLimiter(redis_server.url, prefix=prefix, timeout=5.0)
    b = RedisRateLimiter(redis_server.url, prefix=prefix, timeout=5.0)
    rule = Rule("race", 10, 3600)
    before = _refusals("race")
    try:
        answers = await asyncio.gather(
            *((a if i % 2 else b).hit(rule, "bucket") for i in range(50))
        )
        assert not a.outage.down and not b.outage.down
    finally:
        await a.aclose()
        await b.aclose()
    assert answers.count(None) == 10
    # One token every 360 s, none refilled yet: each refusal says so.
    assert {answer for answer in answers if answer is not None} == {360}
    assert _refusals("race") - before == 40


async def test_the_in_process_limiter_counts_its_refusals_too() -> None:
    limiter = MemoryRateLimiter(clock=FakeClock())
    rule = Rule("memory-count", 1, 60)
    before = _refusals("memory-count")
    assert await limiter.hit(rule, "k") is None
    assert await limiter.hit(rule, "k") == 60
    assert await limiter.peek(rule, "k") == 60  # a peek is not a refusal
    assert _refusals("memory-count") - before == 1


@contextlib.asynccontextmanager
async def _instance(settings: Settings, clock: FakeClock) -> AsyncIterator[GraphQLClient]:
    """An app as create_app wires it for ``settings`` (REDIS_URL set: a Redis limiter),
    driven through httpx's ASGI transport, its buckets on ``clock``."""
    forget_compiled_statements()
    app = create_app(settings)
    limiter = app.state.services.accounts.limiter
    assert isinstance(limiter, RedisRateLimiter)
    assert app.state.services.comments.limiter is limiter
    limiter.clock = limiter.fallback.clock = clock
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        yield GraphQLClient(http)


async def _log_in(client: GraphQLClient, username: str, password: str) -> dict[str, Any]:
    data = await client.data(LOG_IN, {"input": {"username": username, "password": password}})
    payload: dict[str, Any] = data["logIn"]
    return payload


async def _bucket_names(client: Any) -> list[bytes]:
    return sorted([key async for key in client.scan_iter(match=b"agora:rl:*")])


def _code(payload: dict[str, Any]) -> str | None:
    return payload["errors"][0]["code"] if payload["errors"] else None


async def test_two_instances_refuse_the_sixth_failed_log_in_whichever_answers(
    fresh_settings: Settings, redis_server: RedisServer
) -> None:
    settings = with_settings(
        fresh_settings, redis_url=redis_server.url, login_failure_rate_per_account="5/900"
    )
    # Both instances' buckets on one clock: Redis's TIME is replaced by it in tests.
    clock = FakeClock()
    client = _redis(redis_server.url)
    await client.flushall()
    before = _refusals("login-failure/account")
    async with _instance(settings, clock) as a, _instance(settings, clock) as b:
        await a.sign_up("lee", password="lee password")
        # Four failures, alternating; a success on B clears them for both.
        for instance in (a, b, a, b):
            assert _code(await _log_in(instance, "lee", "wrong")) == "INVALID_CREDENTIALS"
        assert (await _log_in(b, "lee", "lee password"))["token"]
        # The documented burst: five failures, whichever instance answers, then refused.
        for instance in (b, a, b, a, b):
            assert _code(await _log_in(instance, "lee", "wrong")) == "INVALID_CREDENTIALS"
        for instance in (a, b):
            refused = await _log_in(instance, "lee", "lee password")
            assert refused["token"] is None
            assert refused["errors"] == [
                {
                    "code": "RATE_LIMITED",
                    "message": "Too many failed log-ins; wait.",
                    "retryAfterSeconds": 180,  # 5 per 900 s: a token every 180 s
                }
            ]
        assert _refusals("login-failure/account") - before == 2
        # The buckets are on Redis, not in either process.
        assert await _bucket_names(client) == [
            b"agora:rl:login-failure/account:lee|127.0.0.1",
            b"agora:rl:login-failure/address:127.0.0.1",
            b"agora:rl:signup/address:127.0.0.1",
        ]
        clock.advance(179)
        assert (await _log_in(b, "lee", "lee password"))["errors"][0]["retryAfterSeconds"] == 1
        clock.advance(1)
        assert (await _log_in(a, "lee", "lee password"))["token"]
    # The success reset the account's bucket; the address's had refilled (9 failures, 10
    # tokens back in 180 s), so the success's refund forgot it.
    assert await _bucket_names(client) == [b"agora:rl:signup/address:127.0.0.1"]
    await client.aclose()


async def test_two_server_processes_refuse_the_sixth_failed_log_in_on_either(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """As deployed: two uvicorn processes, REDIS_URL from the environment, real clocks."""
    url = f"sqlite://{tmp_path}/agora.sqlite3"
    await prepare_database(url, demo=True)
    client = _redis(redis_server.url)
    await client.flushall()
    await client.aclose()
    env = {"DATABASE_URL": url, "REDIS_URL": redis_server.url}
    servers = [start_app_process(env, log=tmp_path / f"server{i}.log") for i in range(2)]
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for _, address in servers:
                await _until_ready(http, address)

            async def attempt(address: str, password: str) -> dict[str, Any]:
                response = await http.post(
                    f"http://{address}/graphql",
                    json={
                        "query": LOG_IN,
                        "variables": {"input": {"username": "alice", "password": password}},
                    },
                )
                payload: dict[str, Any] = response.json()["data"]["logIn"]
                return payload

            addresses = [address for _, address in servers]
            for number in range(5):
                failed = await attempt(addresses[number % 2], "wrong")
                assert _code(failed) == "INVALID_CREDENTIALS"
            refused = [await attempt(address, "demo-password") for address in addresses]
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(10)
    for payload in refused:
        assert payload["token"] is None
        assert _code(payload) == "RATE_LIMITED"
        # A token every 180 s, minus what refilled while the attempts ran (real time here;
        # the fake-clock tests above pin the exact figure).
        assert 170 <= payload["errors"][0]["retryAfterSeconds"] <= 180


async def _until_ready(http: httpx.AsyncClient, address: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(f"http://{address}/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{address} never became ready")


async def test_a_redis_outage_falls_back_to_per_process_buckets(
    fresh_settings: Settings, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = with_settings(
        fresh_settings, redis_url=own_redis.url, login_failure_rate_per_account="3/900"
    )
    clock = FakeClock()
    async with _instance(settings, clock) as a, _instance(settings, clock) as b:
        limiter_a = a.http._transport.app.state.services.accounts.limiter  # type: ignore[attr-defined]
        limiter_b = b.http._transport.app.state.services.accounts.limiter  # type: ignore[attr-defined]
        await a.sign_up("kim", password="kim password")
        assert _code(await _log_in(a, "kim", "wrong")) == "INVALID_CREDENTIALS"
        assert _code(await _log_in(b, "kim", "wrong")) == "INVALID_CREDENTIALS"
        caplog.clear()
        caplog.set_level(logging.INFO, logger="agora")
        own_redis.stop()
        fallbacks = _fallbacks()
        # Redis is gone: each instance counts on its own. Its bucket here is full (3), so B
        # refuses a's third failure only after three of its own; no client sees an error.
        for _ in range(3):
            assert _code(await _log_in(b, "kim", "wrong")) == "INVALID_CREDENTIALS"
        refused = await _log_in(b, "kim", "kim password")
        assert refused["errors"][0]["code"] == "RATE_LIMITED"
        assert refused["errors"][0]["retryAfterSeconds"] == 300
        assert _code(await _log_in(a, "kim", "wrong")) == "INVALID_CREDENTIALS"
        # Every limiter call went to the fallback: two hits per failed attempt (account, then
        # address), one for the refused one (its account's bucket is checked first).
        assert _fallbacks() - fallbacks == 3 * 2 + 1 + 2
        warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
        assert len(warnings) == 2  # once per instance, not once per call
        assert all(
            r.levelno == logging.WARNING and "rate limits" in r.getMessage() for r in warnings
        )
        assert limiter_a.outage.down and limiter_b.outage.down

        own_redis.start()  # empty: what was counted before the outage is gone
        for limiter in (limiter_a, limiter_b):
            limiter.outage._retry_at = 0.0  # the back-off is over
        fallbacks = _fallbacks()
        assert _code(await _log_in(a, "kim", "wrong")) == "INVALID_CREDENTIALS"
        assert _code(await _log_in(b, "kim", "wrong")) == "INVALID_CREDENTIALS"
        assert _fallbacks() == fallbacks
        assert not limiter_a.outage.down and not limiter_b.outage.down
        assert sum("answers again" in r.getMessage() for r in caplog.records) == 2
        # Shared again: a third failure (on either) empties the Redis bucket for both.
        assert _code(await _log_in(a, "kim", "wrong")) == "INVALID_CREDENTIALS"
        for instance in (a, b):
            assert _code(await _log_in(instance, "kim", "kim password")) == "RATE_LIMITED"


async def test_a_silent_redis_costs_one_timeout_then_the_back_off_answers_at_once() -> None:
    # A listener that accepts and never answers: every command would wait for ever.
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{port}/0", timeout=0.2, retry_seconds=60)
    rule = Rule("silent", 2, 60)
    fallbacks = _fallbacks()
    try:
        started = time.monotonic()
        assert await limiter.hit(rule, "k") is None
        first = time.monotonic() - started
        started = time.monotonic()
        assert await limiter.hit(rule, "k") is None
        assert await limiter.hit(rule, "k") == 30
        rest = time.monotonic() - started
    finally:
        await limiter.aclose()
        server.close()
        await server.wait_closed()
    assert 0.2 <= first < 1.0
    assert rest < 0.05
    assert _fallbacks() - fallbacks == 3


# -- client-chosen keys ----------------------------------------------------------------------------


def test_long_keys_are_hashed_and_never_collide_with_short_ones() -> None:
    assert bucket_key("alice|203.0.113.9") == "alice|203.0.113.9"
    assert bucket_key("a" * MAX_KEY_CHARS) == "a" * MAX_KEY_CHARS
    hashed = bucket_key("a" * (MAX_KEY_CHARS + 1))
    assert hashed.startswith("#") and len(hashed) == MAX_KEY_CHARS + 1
    assert bucket_key("\ud800" * 100).startswith("#")  # a lone surrogate hashes too


async def test_a_megabyte_username_makes_no_big_key(
    fresh_settings: Settings, redis_server: RedisServer
) -> None:
    settings = with_settings(fresh_settings, redis_url=redis_server.url)
    client = _redis(redis_server.url)
    await client.flushall()
    huge = "u" * 1_000_000
    async with _instance(settings, FakeClock()) as app:
        for _ in range(2):
            assert _code(await _log_in(app, huge, "a guess")) == "INVALID_CREDENTIALS"
    names = [key async for key in client.scan_iter(match=b"*")]
    sizes = [await client.memory_usage(name) for name in names]
    await client.aclose()
    assert len(names) == 2  # the (account, address) bucket and the address's
    assert max(len(name) for name in names) < 120
    assert max(sizes) < 1024


async def test_the_in_process_buckets_hash_long_keys_too() -> None:
    limiter: RateLimiter = MemoryRateLimiter(clock=FakeClock())
    rule = Rule("long", 1, 60)
    assert await limiter.hit(rule, "v" * 1_000_000) is None
    assert await limiter.hit(rule, "v" * 1_000_000) == 60
    assert isinstance(limiter, MemoryRateLimiter)
    assert all(len(key) <= MAX_KEY_CHARS + 1 for _, key in limiter._buckets)
