"""Rate limits: token buckets behind a small interface, in process or shared through Redis.

A rule "COUNT/SECONDS" is a bucket of COUNT tokens refilled evenly over SECONDS, so a burst of
COUNT is allowed and then one more every SECONDS/COUNT. The clock is injectable so tests need no
sleeps.

:class:`MemoryRateLimiter` keeps the buckets in this process. :class:`RedisRateLimiter` keeps
them on Redis (``REDIS_URL``), so several workers share one budget: each operation is one Lua
script doing exactly the arithmetic of the in-process limiter, on Redis's own clock. While Redis
can't be reached it answers from a per-process MemoryRateLimiter (logged once per outage,
counted in ``agora_rate_limit_fallbacks_total``) and tries Redis again after a short back-off.
:class:`RedisOutage` is that fallback's bookkeeping; the HTTP stream caps
(``realtime.streamcaps``) use it too.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import metrics
from logs import get_logger, truncate
from settings import Settings, parse_rate

logger = get_logger("agora")


@dataclass(frozen=True)
class Rule:
    """A bucket of ``capacity`` tokens refilled at ``capacity / period`` tokens a second."""

    name: str
    capacity: int
    period: float

    @classmethod
    def parse(cls, name: str, text: str) -> Rule:
        """The rule ``name`` from a setting's "COUNT/SECONDS" text."""
        capacity, period = parse_rate(text)
        return cls(name, capacity, period)

    @property
    def rate(self) -> float:
        """Tokens refilled a second."""
        return self.capacity / self.period


class RateLimiter(Protocol):
    """Where the buckets live."""

    async def hit(self, rule: Rule, key: str) -> int | None:
        """Take a token: None if allowed, else the whole seconds until one is available."""
        ...

    async def peek(self, rule: Rule, key: str) -> int | None:
        """Like ``hit`` without taking a token."""
        ...

    async def reset(self, rule: Rule, key: str) -> None:
        """Refill a bucket (a successful login clears its account's failures)."""
        ...

    async def refund(self, rule: Rule, key: str) -> None:
        """Give back one token taken by ``hit`` (an attempt that turned out not to count)."""
        ...


# Keys longer than this (characters) are filed under their hash. Callers pass client-chosen
# strings (a log-in's username, up to the 1 MiB body): a bucket must not cost what they cost.
MAX_KEY_CHARS = 64


def bucket_key(key: str) -> str:
    """What ``key`` is filed under: itself when short, else ``#`` and its sha256 (65
    characters, longer than any key kept as it is, so the two kinds never collide)."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    return "#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def retry_after(rule: Rule, tokens: float) -> int:
    """Whole seconds until a bucket holding ``tokens`` (< 1) has one token again, at least 1."""
    return max(1, math.ceil((1.0 - tokens) / rule.rate))


class _Counted:
    """The one place refusals are counted (``agora_rate_limit_refusals_total``), whichever
    limiter answers."""

    async def hit(self, rule: Rule, key: str) -> int | None:
        """Take a token: None if allowed, else the whole seconds until one is available."""
        retry = await self._take(rule, key)
        if retry is not None:
            metrics.RATE_LIMITED.labels(rule=rule.name).inc()
        return retry

    async def _take(self, rule: Rule, key: str) -> int | None:
        raise NotImplementedError


class MemoryRateLimiter(_Counted):
    """Buckets in this process's memory, bounded: buckets that have refilled are dropped."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.clock = clock
        self.max_keys = max_keys
        # (rule, bucket key) -> (tokens, when counted, when full again)
        self._buckets: dict[tuple[str, str], tuple[float, float, float]] = {}

    def _level(self, rule: Rule, key: str, now: float) -> float:
        tokens, at, _ = self._buckets.get((rule.name, key), (float(rule.capacity), now, now))
        # A clock that went back (never time.monotonic; a fake one, or Redis's wall clock in
        # the shared limiter, whose arithmetic this is) refills nothing rather than draining.
        return min(float(rule.capacity), tokens + max(0.0, now - at) * rule.rate)

    async def peek(self, rule: Rule, key: str) -> int | None:
        """Like ``hit`` without taking a token."""
        tokens = self._level(rule, bucket_key(key), self.clock())
        return None if tokens >= 1.0 else retry_after(rule, tokens)

    async def _take(self, rule: Rule, key: str) -> int | None:
        key = bucket_key(key)
        now = self.clock()
        tokens = self._level(rule, key, now)
        if tokens < 1.0:
            return retry_after(rule, tokens)
        if len(self._buckets) >= self.max_keys:
            self._prune(now)
        left = tokens - 1.0
        self._buckets[(rule.name, key)] = (left, now, now + (rule.capacity - left) / rule.rate)
        return None

    async def reset(self, rule: Rule, key: str) -> None:
        """Refill the bucket: a forgotten bucket is a full one."""
        self._buckets.pop((rule.name, bucket_key(key)), None)

    async def refund(self, rule: Rule, key: str) -> None:
        """Give back one token taken by ``hit``, never above the capacity."""
        key = bucket_key(key)
        now = self.clock()
        tokens = min(float(rule.capacity), self._level(rule, key, now) + 1.0)
        self._buckets[(rule.name, key)] = (tokens, now, now + (rule.capacity - tokens) / rule.rate)

    def _prune(self, now: float) -> None:
        for bucket in [k for k, (_, _, full_at) in self._buckets.items() if full_at <= now]:
            del self._buckets[bucket]
        if len(self._buckets) >= self.max_keys:
            # Still full of live buckets: forget those closest to refilled.
            ordered = sorted(self._buckets, key=lambda k: self._buckets[k][2])
            for bucket in ordered[: len(ordered) // 2]:
                del self._buckets[bucket]


# -- shared through Redis -----------------------------------------------------------------------


# Connections of each Redis client's pool (and calls in flight on it at once).
POOL_CONNECTIONS = 32


def redis_client(url: str, timeout: float, max_connections: int = POOL_CONNECTIONS) -> Any:
    """A redis-py asyncio client for checks that have a fallback: every connect and reply
    within ``timeout`` seconds, no retries of its own (the caller falls back instead), and a
    bounded pool that waits up to ``timeout`` for a free connection (a burst of requests must
    not open a Redis connection each). Nothing connects before the first command."""
    import redis.asyncio as redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return redis.Redis(connection_pool=pool)


class RedisOutage:
    """While Redis can't be reached: answer from this process, say so once, try again later.

    :meth:`call` runs one Redis operation within ``timeout`` seconds. A failure (connection
    refused or lost, a timeout, any error Redis answers) starts an outage: a warning is logged
    once, and for ``retry_seconds`` every call returns None at once (the caller answers from
    its per-process state); then one call at a time tries Redis again. The first success ends
    the outage (logged too).
    """

    def __init__(
        self, what: str, timeout: float, retry_seconds: float, slots: int = POOL_CONNECTIONS
    ) -> None:
        # What falls back, as the log lines say it ("rate limits").
        self.what = what
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self.down = False
        self._retry_at = 0.0
        self._probing = False
        # As many calls at once as the client's pool has connections: the rest wait here,
        # outside the timeout, so a burst of requests (2,000 log-ins at once) queues for a
        # connection instead of timing out on the pool and reading as an outage.
        self._slots = asyncio.Semaphore(slots)

    async def call(self, operation: Callable[[], Awaitable[Any]], *, count: bool = True) -> Any:
        """``operation``'s result, or None when Redis is (or has just turned out to be)
        unreachable; ``count``: such an answer counts in ``agora_rate_limit_fallbacks_total``."""
        probe = False
        if self.down:
            if self._probing or time.monotonic() < self._retry_at:
                return self._fallback(count)
            # This call tries Redis again; the others keep to the fallback meanwhile.
            probe = self._probing = True
        try:
            async with self._slots:
                if self.down and not probe:
                    # It went down while this call waited for a connection.
                    return self._fallback(count)
                async with asyncio.timeout(self.timeout):
                    result = await operation()
        except Exception as exc:
            # redis-py's ConnectionError, TimeoutError, ResponseError (OOM, READONLY after a
            # failover), an OSError it let through, asyncio's timeout: all mean "not now".
            self._failed(exc)
            return self._fallback(count)
        finally:
            if probe:
                self._probing = False
        # Only the probe ends an outage: a call that began before it and answers late says
        # nothing about Redis now (the warnings flapped under load).
        if self.down and probe:
            self.down = False
            logger.warning("Redis answers again: %s are shared across workers again", self.what)
        return result

    def _failed(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + self.retry_seconds
        if not self.down:
            self.down = True
            logger.warning(
                "Redis unreachable (%s): %s are counted per process until it answers "
                "(tried again every %g s)",
                truncate(repr(exc), 200),
                self.what,
                self.retry_seconds,
            )

    @staticmethod
    def _fallback(count: bool) -> None:
        if count:
            metrics.RATE_LIMIT_FALLBACKS.inc()


# One script, four modes, so each operation is one atomic round trip (EVALSHA). It is the
# arithmetic of MemoryRateLimiter step for step, on doubles as Python's floats are, with the
# state kept as %.17g (which round-trips a double exactly): the same calls at the same times
# give the same answers. A bucket expires when it would be full again (plus a margin), so a
# refilled bucket is a forgotten one and memory stays bounded.
#
# KEYS[1]: the bucket (a hash: tokens, at)
# ARGV: mode (hit, peek, refund, reset), capacity, period, now in seconds ('' for Redis's
# TIME, so workers with skewed clocks agree), expiry margin in ms
# Returns {1 (allowed) or 0, the bucket's level before the call as %.17g}.
BUCKET_SCRIPT = """
if ARGV[1] == 'reset' then
  redis.call('DEL', KEYS[1])
  return {1, ''}
end
local capacity = tonumber(ARGV[2])
local rate = capacity / tonumber(ARGV[3])
local now
if ARGV[4] == '' then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[4])
end
local level = capacity
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'at')
if stored[1] and stored[2] then
  local elapsed = now - tonumber(stored[2])
  if elapsed < 0 then elapsed = 0 end
  level = math.min(capacity, tonumber(stored[1]) + elapsed * rate)
end
local shown = string.format('%.17g', level)
local keep
if ARGV[1] == 'peek' then
  return {level >= 1.0 and 1 or 0, shown}
elseif ARGV[1] == 'hit' then
  if level < 1.0 then return {0, shown} end
  keep = level - 1.0
else
  keep = math.min(capacity, level + 1.0)
  if keep >= capacity then
    redis.call('DEL', KEYS[1])
    return {1, shown}
  end
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', keep),
  'at', string.format('%.17g', now))
local ttl = math.ceil((capacity - keep) / rate * 1000) + tonumber(ARGV[5])
if ttl > 315360000000 then ttl = 315360000000 end
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
return {1, shown}
"""

KEY_PREFIX = "agora:rl:"
# A bucket stays this long past the moment it is full again: its expiry never comes before
# that moment, even rounded, on a clock a test drives, or with the arithmetic's last bit.
EXPIRY_MARGIN_MS = 1000


class RedisRateLimiter(_Counted):
    """Buckets on Redis, shared by every worker; a per-process MemoryRateLimiter while Redis
    can't be reached.

    ``clock`` (tests) replaces Redis's TIME with its value; without it every bucket runs on
    the Redis server's clock. The client is made on first use; :meth:`aclose` closes it.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.25,
        retry_seconds: float = 2.0,
        clock: Callable[[], float] | None = None,
        prefix: str = KEY_PREFIX,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.clock = clock
        self.prefix = prefix
        self.outage = RedisOutage("rate limits", timeout, retry_seconds)
        self.fallback = MemoryRateLimiter(clock=clock or time.monotonic)
        self._client: Any = None
        self._script: Any = None

    @classmethod
    def for_settings(cls, settings: Settings) -> RedisRateLimiter:
        """The limiter of ``REDIS_URL`` with the shared-limits timeout and back-off."""
        return cls(
            settings.redis_url,
            timeout=settings.redis_limits_timeout_ms / 1000,
            retry_seconds=settings.redis_limits_retry_seconds,
        )

    async def aclose(self) -> None:
        """Close the connection pool (the app's lifespan calls this)."""
        if self._client is not None:
            client, self._client, self._script = self._client, None, None
            await client.aclose(close_connection_pool=True)

    def key(self, rule: Rule, key: str) -> bytes:
        """The Redis key of a bucket: the prefix, the rule, the (hashed if long) key."""
        return f"{self.prefix}{rule.name}:{bucket_key(key)}".encode("utf-8", "surrogatepass")

    async def _run(self, mode: str, rule: Rule, key: str) -> list[Any] | None:
        if self._script is None:
            self._client = redis_client(self.url, self.timeout)
            self._script = self._client.register_script(BUCKET_SCRIPT)
        now = "" if self.clock is None else repr(float(self.clock()))
        args = [mode, rule.capacity, repr(float(rule.period)), now, EXPIRY_MARGIN_MS]
        script = self._script
        reply: list[Any] | None = await self.outage.call(
            lambda: script(keys=[self.key(rule, key)], args=args)
        )
        return reply

    async def _take(self, rule: Rule, key: str) -> int | None:
        reply = await self._run("hit", rule, key)
        if reply is None:
            return await self.fallback._take(rule, key)
        return None if int(reply[0]) else retry_after(rule, float(reply[1]))

    async def peek(self, rule: Rule, key: str) -> int | None:
        """Like ``hit`` without taking a token."""
        reply = await self._run("peek", rule, key)
        if reply is None:
            return await self.fallback.peek(rule, key)
        return None if int(reply[0]) else retry_after(rule, float(reply[1]))

    async def reset(self, rule: Rule, key: str) -> None:
        """Refill the bucket (delete it: a forgotten bucket is a full one)."""
        if await self._run("reset", rule, key) is None:
            await self.fallback.reset(rule, key)

    async def refund(self, rule: Rule, key: str) -> None:
        """Give back one token taken by ``hit``, never above the capacity."""
        if await self._run("refund", rule, key) is None:
            await self.fallback.refund(rule, key)
