"""The HTTP stream caps per client address and per viewer, counted across workers on Redis.

Each counted key (``a<address>``, ``v<user id>``) is a sorted set whose members are the ids of
the streams open under it, scored by when their lease ends (ms, Redis's clock). One Lua script
drops the expired leases, checks every key's cap and adds the stream to all of them, or to none;
a worker renews the leases of its open streams every third of ``HTTP_STREAM_LEASE_SECONDS`` (one
script call for many streams, re-adding any Redis lost), so a worker that dies without closing
its streams frees their places once their leases run out, and nothing counts for ever.

While Redis can't be reached a check returns ``shared=False`` at once (logged once per outage,
counted in ``agora_rate_limit_fallbacks_total``) and the caller applies the caps to this
process's own counts; the streams opened meanwhile are added to Redis by the first renewal that
gets through.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from accounts.ratelimit import RedisOutage, bucket_key, redis_client
from logs import get_logger
from settings import Settings

logger = get_logger("agora")

KEY_PREFIX = "agora:streams:"
# Streams renewed per script call (each one blocks Redis while it runs: keep them short).
RENEW_BATCH = 500

# Both scripts start the same way: now in ms (ARGV[1], or Redis's TIME when it is ''), then the
# lease in ms (ARGV[2]).
NOW_AND_LEASE = """
local now
if ARGV[1] == '' then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local lease = tonumber(ARGV[2])
"""

# KEYS: one sorted set per counted key; ARGV[1] now in ms ('' for Redis's TIME), ARGV[2] the
# lease in ms, ARGV[3] the stream's id, ARGV[3 + i] the cap of KEYS[i].
# Returns 0 when the stream was counted under every key, else the index of the first key at
# its cap (and nothing was added anywhere).
ACQUIRE_SCRIPT = (
    NOW_AND_LEASE
    + """
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, ARGV[3])
      and redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[3])
  redis.call('PEXPIRE', key, lease)
end
return 0
"""
)

# KEYS: sorted sets; ARGV[1] now in ms ('' for TIME), ARGV[2] the lease in ms, ARGV[2 + i] the
# stream counted under KEYS[i]. Every lease pushed to now + lease (added if Redis lost it).
RENEW_SCRIPT = (
    NOW_AND_LEASE
    + """
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[2 + i])
  redis.call('PEXPIRE', key, lease)
end
return #KEYS
"""
)


@dataclass(frozen=True)
class Admission:
    """What the shared count said of a new stream.

    ``lease``: the stream's id (give it to :meth:`SharedStreamCounts.release`); ``over``: the
    index of the first key at its cap (then nothing was counted); ``shared``: False when Redis
    couldn't be asked, so the caller must apply the caps to its own counts.
    """

    lease: str
    over: int | None
    shared: bool


class SharedStreamCounts:
    """Open HTTP streams per key, counted on Redis with leases, for every worker.

    ``clock`` (tests) replaces Redis's TIME (seconds, as ``time.monotonic`` counts). The client
    is made on first use and the renewal task runs while this process holds leases;
    :meth:`aclose` stops both.
    """

    def __init__(
        self,
        url: str,
        *,
        lease_seconds: float = 30.0,
        timeout: float = 0.25,
        retry_seconds: float = 2.0,
        clock: Callable[[], float] | None = None,
        prefix: str = KEY_PREFIX,
    ) -> None:
        self.url = url
        self.lease_ms = int(lease_seconds * 1000)
        self.timeout = timeout
        self.clock = clock
        self.prefix = prefix
        self.outage = RedisOutage("HTTP stream caps", timeout, retry_seconds)
        # The streams this process holds places for: lease id -> its Redis keys.
        self.leases: dict[str, list[bytes]] = {}
        self._origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._ids = itertools.count(1)
        self._client: Any = None
        self._acquire: Any = None
        self._renew: Any = None
        self._renewer: asyncio.Task[None] | None = None
        # Released while a renewal was in flight: removed again once it is done, in case the
        # renewal re-added them after their removal.
        self._renewing = 0
        self._released_meanwhile: list[tuple[str, list[bytes]]] = []
        # Places to give back, removed in batches by one task (a drain ends thousands of
        # streams at once: a task each exhausted the pool, and read as a Redis outage).
        self._pending: list[tuple[str, list[bytes]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> SharedStreamCounts:
        """The counts of ``REDIS_URL`` with the lease, timeout and back-off settings."""
        return cls(
            settings.redis_url,
            lease_seconds=settings.http_stream_lease_seconds,
            timeout=settings.redis_limits_timeout_ms / 1000,
            retry_seconds=settings.redis_limits_retry_seconds,
        )

    def key(self, key: str) -> bytes:
        """The Redis key of a counted key (hashed if long)."""
        return (self.prefix + bucket_key(key)).encode("utf-8", "surrogatepass")

    def _scripts(self) -> tuple[Any, Any]:
        if self._client is None:
            self._client = redis_client(self.url, self.timeout)
            self._acquire = self._client.register_script(ACQUIRE_SCRIPT)
            self._renew = self._client.register_script(RENEW_SCRIPT)
        return self._acquire, self._renew

    def _now(self) -> str:
        return "" if self.clock is None else str(int(self.clock() * 1000))

    async def acquire(self, keys: Sequence[str], caps: Sequence[int]) -> Admission:
        """Count a new stream under each of ``keys`` (``caps[i]`` at most under ``keys[i]``)."""
        lease = f"{self._origin}:{next(self._ids)}"
        redis_keys = [self.key(key) for key in keys]
        acquire, _ = self._scripts()
        args = [self._now(), self.lease_ms, lease, *caps]
        try:
            reply = await self.outage.call(lambda: acquire(keys=redis_keys, args=args))
        except BaseException:
            # Cancelled (the client left) after the script may have run: never leave a place
            # taken that nobody renews or releases (the lease would expire, but not at once).
            self._forget(lease, redis_keys)
            raise
        if reply is None:
            # Counted here only; the first renewal that reaches Redis adds it there.
            self._hold(lease, redis_keys)
            return Admission(lease, None, shared=False)
        index = int(reply)
        if index:
            return Admission(lease, index - 1, shared=True)
        self._hold(lease, redis_keys)
        return Admission(lease, None, shared=True)

    def release(self, lease: str) -> None:
        """The stream of ``lease`` ended: its places are given back (in the background: the
        caller is a ``finally`` that must not wait on Redis)."""
        redis_keys = self.leases.pop(lease, None)
        if redis_keys is None:
            return
        if self._renewing:
            self._released_meanwhile.append((lease, redis_keys))
        self._forget(lease, redis_keys)

    async def renew(self) -> None:
        """Push every lease this process holds to now + the lease (one call per batch)."""
        if not self.leases:
            return
        _, renew = self._scripts()
        pairs = [(key, lease) for lease, keys in self.leases.items() for key in keys]
        self._renewing += 1
        try:
            for start in range(0, len(pairs), RENEW_BATCH):
                batch = pairs[start : start + RENEW_BATCH]
                args = [self._now(), self.lease_ms, *(lease for _, lease in batch)]
                keys = [key for key, _ in batch]
                # Not a check answered from this process: not counted as a fallback.
                done = await self.outage.call(partial(renew, keys=keys, args=args), count=False)
                if done is None:
                    return
        finally:
            self._renewing -= 1
            if not self._renewing:
                again, self._released_meanwhile = self._released_meanwhile, []
                for lease, keys in again:
                    self._forget(lease, keys)

    async def aclose(self) -> None:
        """Stop renewing, give back the places still held (a worker shutting down frees its
        clients' places at once, so they can reconnect to another one) and close the
        connection pool (the app's lifespan calls this)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewer
            self._renewer = None
        for lease in list(self.leases):
            self.release(lease)
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose(close_connection_pool=True)

    def _hold(self, lease: str, redis_keys: list[bytes]) -> None:
        self.leases[lease] = redis_keys
        if self._renewer is None or self._renewer.done():
            # A context of its own: not the request's that happened to start it (its request
            # id in the renewer's log lines, its span as the renewals' parent).
            self._renewer = asyncio.create_task(
                self._renew_loop(), name="stream-leases", context=contextvars.Context()
            )

    def _forget(self, lease: str, redis_keys: list[bytes]) -> None:
        self._pending.append((lease, redis_keys))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(
                self._remove_pending(), name="stream-releases", context=contextvars.Context()
            )

    async def _remove_pending(self) -> None:
        """Give back the pending places, RENEW_BATCH members a round trip, until none is left."""
        while self._pending:
            batch, self._pending = self._pending[:RENEW_BATCH], self._pending[RENEW_BATCH:]
            if self._client is None or self.outage.down:
                continue  # closed, or unreachable: the leases run out by themselves

            async def remove(
                batch: list[tuple[str, list[bytes]]] = batch, client: Any = self._client
            ) -> Any:
                async with client.pipeline(transaction=False) as pipe:
                    for lease, redis_keys in batch:
                        for key in redis_keys:
                            pipe.zrem(key, lease)
                    return await pipe.execute()

            await self.outage.call(remove, count=False)

    async def _renew_loop(self) -> None:
        """Renew while this process holds leases; ends by itself once it holds none."""
        interval = self.lease_ms / 3000
        while self.leases:
            await asyncio.sleep(interval)
            try:
                await self.renew()
            except Exception:  # the loop must outlive anything one renewal meets
                logger.exception("renewing the HTTP streams' leases failed")
