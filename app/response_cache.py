"""The response cache: anonymous query answers kept per process, checked against versions.

An entry is the encoded body of one anonymous query, keyed by what the client sent (query text
or persisted-query hash, operation name, variables). It records the version tags its execution
read (``api.extensions.cachetags``) and their versions. A hit reads the current versions of
those tags with one lookup (a dict in process; one ``MGET`` on Redis) and is served only when
they are unchanged: no GraphQL parse, validation or execution.

Versions come from one sequence: a write bumps it once and sets each of its tags to the new
value (one Lua script on Redis), after its commit and before its mutation answers (the
publisher every service already calls after a commit, :func:`bumping`). A miss reads the
sequence *before* executing and keeps its answer only if every tag it read is still at or
below that value afterwards, so a write racing the read leaves nothing stale behind. With
``REDIS_URL`` the versions live in Redis and every worker checks there; pub/sub plays no part,
so a dropped message can't leave an entry stale. Redis unreachable: bypass (executed, not kept).
A bump that fails flushes this worker's entries, makes it bypass, and retries in the background
until Redis takes the bump *and* a new generation (every worker's entries then miss).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import clock
import metrics
from accounts.ratelimit import RedisOutage, redis_client
from api.extensions.cachetags import TagRecorder, event_tags
from domain_events import Event, Publisher
from logs import get_logger
from news.service import next_go_live
from settings import Settings

logger = get_logger("agora")

# The response header naming what the cache did: hit, miss (executed and kept) or bypass.
HEADER = "X-Agora-Cache"
REDIS_PREFIX = "agora:rc:"
# What an entry costs beyond the characters counted (its dict slot, key tuple, Entry object,
# versions list, tags tuple): counted too, so MAX_BYTES bounds memory even for tiny answers.
ENTRY_OVERHEAD_BYTES = 1024
# A bump is tried this many times (each within REDIS_LIMITS_TIMEOUT_MS) before its write
# answers anyway: it does not go through the reads' outage breaker, which one slow read opens.
BUMP_ATTEMPTS = 3
# How long a miss waits for the same key's miss already running before executing itself.
INFLIGHT_WAIT_SECONDS = 2.0
# INCR the sequence, set every tag to it: one round trip, atomic for readers.
_BUMP = """
local seq = redis.call('INCR', KEYS[1])
for i = 2, #KEYS do redis.call('SET', KEYS[i], seq) end
return seq
"""


class Versions(Protocol):
    """Where the tags' versions live: one lookup per hit, one bump per write."""

    async def read(self, tags: Sequence[str]) -> tuple[str, list[int]] | None:
        """The generation and each tag's version; None when they can't be checked."""
        ...

    async def start(self) -> tuple[str, int] | None:
        """The generation and the sequence, read before a miss executes; None: bypass."""
        ...

    async def bump(self, tags: Sequence[str]) -> bool:
        """A committed write's tags moved past every stored version; False: it failed."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryVersions:
    """The versions of one process (no REDIS_URL: one process serves everything)."""

    def __init__(self) -> None:
        self.generation = "memory"
        self.sequence = 0
        self.values: dict[str, int] = {}

    async def read(self, tags: Sequence[str]) -> tuple[str, list[int]] | None:
        """The current versions."""
        get = self.values.get
        return self.generation, [get(tag, 0) for tag in tags]

    async def start(self) -> tuple[str, int] | None:
        """The generation and sequence now."""
        return self.generation, self.sequence

    async def bump(self, tags: Sequence[str]) -> bool:
        """Every tag set to the next sequence value."""
        self.sequence += 1
        for tag in tags:
            self.values[tag] = self.sequence
        return True

    async def aclose(self) -> None:
        """Nothing to release."""


class RedisVersions:
    """The versions shared by every worker, in Redis: reads within REDIS_LIMITS_TIMEOUT_MS."""

    def __init__(self, settings: Settings) -> None:
        timeout = settings.redis_limits_timeout_ms / 1000
        self.redis: Any = redis_client(settings.redis_url, timeout)
        self.outage = RedisOutage(
            "response cache versions", timeout, settings.redis_limits_retry_seconds
        )
        self.gen_key = REDIS_PREFIX + "gen"
        self.seq_key = REDIS_PREFIX + "seq"

    async def read(self, tags: Sequence[str]) -> tuple[str, list[int]] | None:
        """One MGET: the generation and the tags' versions."""
        keys = [self.gen_key, *(REDIS_PREFIX + "v:" + tag for tag in tags)]
        redis = self.redis
        values = await self.outage.call(lambda: redis.mget(keys), count=False)
        if values is None or values[0] is None:
            return None
        return values[0].decode(), [int(v) if v is not None else 0 for v in values[1:]]

    async def start(self) -> tuple[str, int] | None:
        """The generation (made on first use) and the sequence."""
        redis = self.redis
        values = await self.outage.call(
            lambda: redis.mget([self.gen_key, self.seq_key]), count=False
        )
        if values is None:
            return None
        if values[0] is None:
            # A fresh (or restarted, or flushed) Redis: a new generation; entries of the old
            # one never match again.
            made = secrets.token_hex(8)
            stored = await self.outage.call(
                lambda: redis.set(self.gen_key, made, nx=True), count=False
            )
            if stored is None:
                return None
            return None  # the next miss keeps its answer
        return values[0].decode(), int(values[1] or 0)

    async def bump(self, tags: Sequence[str]) -> bool:
        """The bump script; False when Redis didn't take it."""
        keys = [self.seq_key, *(REDIS_PREFIX + "v:" + tag for tag in tags)]
        for attempt in range(BUMP_ATTEMPTS):
            try:
                await asyncio.wait_for(
                    self.redis.eval(_BUMP, len(keys), *keys), self.outage.timeout
                )
                return True
            except Exception as exc:  # redis-py's errors, OSError, timeouts: all a failed bump
                logger.warning(
                    "response cache: bump attempt %d failed: %s", attempt + 1, type(exc).__name__
                )
                await asyncio.sleep(0.02 * (attempt + 1))
        return False

    async def renew(self) -> bool:
        """A new generation: every worker's entries miss from now on."""
        redis = self.redis
        result = await self.outage.call(
            lambda: redis.set(self.gen_key, secrets.token_hex(8)), count=False
        )
        return result is not None

    async def aclose(self) -> None:
        """Close the pool."""
        await self.redis.aclose()


@dataclass
class Entry:
    """One cached answer and what it depends on."""

    body: str
    name: str | None
    tags: tuple[str, ...]
    versions: list[int]
    generation: str
    expires_at: datetime | None
    size: int


class ResponseCache:
    """The bounded LRU of answers (RESPONSE_CACHE_MAX_BYTES, RESPONSE_CACHE_MAX_ENTRY_BYTES)
    and the versions they are checked against."""

    def __init__(self, settings: Settings, versions: Versions | None = None) -> None:
        self.settings = settings
        self.max_bytes = settings.response_cache_max_bytes
        self.max_entry_bytes = settings.response_cache_max_entry_bytes
        if versions is None:
            versions = RedisVersions(settings) if settings.redis_url else MemoryVersions()
        self.versions = versions
        self.entries: OrderedDict[tuple[str, ...], Entry] = OrderedDict()
        self.bytes = 0
        # Set while a failed bump hasn't landed yet: this worker bypasses.
        self.unsure = False
        self._retry: asyncio.Task[None] | None = None
        # Misses executing now, by key: a request for the same key waits for the first one's
        # answer instead of executing too (used only if it was kept: a write racing it keeps
        # it out, and then each waiter executes itself).
        self.inflight: dict[tuple[str, ...], asyncio.Future[str | None]] = {}
        # The task whose miss registered each in-flight key (it alone ends the wait).
        self.owners: dict[tuple[str, ...], asyncio.Task[Any] | None] = {}

    @staticmethod
    def key_of(
        query: str | None,
        digest: str | None,
        operation_name: str | None,
        variables: dict[str, Any] | None,
    ) -> tuple[str, ...]:
        """What decides the answer of an anonymous query (the settings are the process's)."""
        return (
            query or "",
            digest or "",
            operation_name or "",
            json.dumps(variables, sort_keys=True, separators=(",", ":")) if variables else "",
        )

    async def lookup(self, key: tuple[str, ...]) -> tuple[str, Entry | None]:
        """("hit", the entry) when it is still current; ("miss", None) when there is none or
        it is out of date; ("bypass", None) when versions can't be checked."""
        if self.unsure:
            return "bypass", None
        entry = self.entries.get(key)
        if entry is None:
            pending = self.inflight.get(key)
            if pending is not None:
                # shield: one waiter leaving doesn't cancel the others' answer. Bounded: a
                # slow first miss (the database struggling) doesn't stack every copy behind it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(pending), INFLIGHT_WAIT_SECONDS)
                entry = self.entries.get(key)
            if entry is None:
                return "miss", None
        if entry.expires_at is not None and clock.now() >= entry.expires_at:
            self._drop(key)
            return "miss", None
        current = await self.versions.read(entry.tags)
        if current is None:
            return "bypass", None
        generation, versions = current
        if generation != entry.generation or versions != entry.versions:
            self._drop(key)
            return "miss", None
        if key in self.entries:
            self.entries.move_to_end(key)
        return "hit", entry

    async def begin(self, key: tuple[str, ...]) -> tuple[str, int] | None:
        """Before a miss executes: the generation and sequence it is checked against (its
        key is now in flight until :meth:`finish`)."""
        if self.unsure:
            return None
        start = await self.versions.start()
        if start is not None and key not in self.inflight:
            self.inflight[key] = asyncio.get_running_loop().create_future()
            self.owners[key] = asyncio.current_task()
        return start

    def finish(self, key: tuple[str, ...]) -> None:
        """The miss of ``key`` is done (kept or not): its waiters look again."""
        # Only the miss that registered the key ends it: a second miss of the same key (begun
        # while the first ran) finishing first must not wake the first one's waiters early.
        if self.owners.get(key) is not asyncio.current_task():
            return
        del self.owners[key]
        pending = self.inflight.pop(key, None)
        if pending is not None and not pending.done():
            pending.set_result(None)

    async def store(
        self,
        key: tuple[str, ...],
        body: str,
        name: str | None,
        recorder: TagRecorder,
        start: tuple[str, int],
    ) -> bool:
        """Keep ``body`` unless a write touched what it read since ``start``; True if kept."""
        size = (
            ENTRY_OVERHEAD_BYTES
            + len(body)
            + sum(len(part) for part in key)
            + sum(len(t) for t in recorder.tags)
        )
        if size > self.max_entry_bytes or size > self.max_bytes:
            return False
        if "news" in recorder.tags:
            # A scheduled article going live changes what readers see with no write.
            going_live = await next_go_live(recorder.now)
            if going_live is not None:
                recorder.expire(going_live)
        tags = tuple(sorted(recorder.tags))
        current = await self.versions.read(tags)
        if current is None:
            return False
        generation, versions = current
        if generation != start[0] or any(v > start[1] for v in versions):
            return False  # a write landed while it ran: its answer may predate it
        if key in self.entries:
            self._drop(key)
        self.entries[key] = Entry(body, name, tags, versions, generation, recorder.expires_at, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            old = next(iter(self.entries))
            self._drop(old)
        metrics.RESPONSE_CACHE_BYTES.set(self.bytes)
        return True

    def _drop(self, key: tuple[str, ...]) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
            metrics.RESPONSE_CACHE_BYTES.set(self.bytes)

    def clear(self) -> None:
        """Forget every entry of this process."""
        self.entries.clear()
        self.bytes = 0
        metrics.RESPONSE_CACHE_BYTES.set(0)

    async def bump(self, tags: Sequence[str]) -> None:
        """A committed write's tags bumped before its mutation answers; on failure this
        worker forgets and bypasses until the bump and a new generation have landed."""
        if not tags:
            return
        if await self.versions.bump(tags):
            return
        metrics.RESPONSE_CACHE_BUMP_FAILURES.inc()
        logger.warning("response cache: a version bump failed; bypassing until it lands")
        self.unsure = True
        self.clear()
        if self._retry is None or self._retry.done():
            self._retry = asyncio.create_task(self._land(), name="response-cache-retry")

    async def _land(self) -> None:
        """Retry until Redis has a new generation (which invalidates what the lost bump
        should have)."""
        versions = self.versions
        while True:
            renew = getattr(versions, "renew", None)
            if renew is None or await renew():
                self.unsure = False
                logger.warning("response cache: versions renewed; caching again")
                return
            await asyncio.sleep(self.settings.redis_limits_retry_seconds)

    async def aclose(self) -> None:
        """Stop retrying and close the versions' connections."""
        if self._retry is not None:
            self._retry.cancel()
        await self.versions.aclose()


def bumping(cache: ResponseCache, publish: Publisher) -> Publisher:
    """``publish``, after the event's tags were bumped: every service publishes each committed
    write before it answers, so no write path can skip the bump."""

    async def publish_bumped(event: Event) -> None:
        await cache.bump(event_tags(event))
        await publish(event)

    return publish_bumped
