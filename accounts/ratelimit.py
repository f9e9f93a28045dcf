"""Rate limits: token buckets behind a small interface, in process by default.

A rule "COUNT/SECONDS" is a bucket of COUNT tokens refilled evenly over SECONDS, so a burst of
COUNT is allowed and then one more every SECONDS/COUNT. The clock is injectable so tests need no
sleeps. A shared backend (Redis) implements the same two methods for several workers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from settings import parse_rate


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


class MemoryRateLimiter:
    """Buckets in this process's memory, bounded: buckets that have refilled are dropped."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.clock = clock
        self.max_keys = max_keys
        # (rule, key) -> (tokens, when counted, when full again)
        self._buckets: dict[tuple[str, str], tuple[float, float, float]] = {}

    def _level(self, rule: Rule, key: str, now: float) -> float:
        tokens, at, _ = self._buckets.get((rule.name, key), (float(rule.capacity), now, now))
        return min(float(rule.capacity), tokens + (now - at) * rule.rate)

    @staticmethod
    def _retry_after(rule: Rule, tokens: float) -> int:
        return max(1, math.ceil((1.0 - tokens) / rule.rate))

    async def peek(self, rule: Rule, key: str) -> int | None:
        """Like ``hit`` without taking a token."""
        tokens = self._level(rule, key, self.clock())
        return None if tokens >= 1.0 else self._retry_after(rule, tokens)

    async def hit(self, rule: Rule, key: str) -> int | None:
        """Take a token: None if allowed, else the whole seconds until one is available."""
        now = self.clock()
        tokens = self._level(rule, key, now)
        if tokens < 1.0:
            return self._retry_after(rule, tokens)
        if len(self._buckets) >= self.max_keys:
            self._prune(now)
        left = tokens - 1.0
        self._buckets[(rule.name, key)] = (left, now, now + (rule.capacity - left) / rule.rate)
        return None

    async def reset(self, rule: Rule, key: str) -> None:
        """Refill the bucket: a forgotten bucket is a full one."""
        self._buckets.pop((rule.name, key), None)

    async def refund(self, rule: Rule, key: str) -> None:
        """Give back one token taken by ``hit``, never above the capacity."""
        now = self.clock()
        tokens = min(float(rule.capacity), self._level(rule, key, now) + 1.0)
        self._buckets[(rule.name, key)] = (tokens, now, now + (rule.capacity - tokens) / rule.rate)

    def _prune(self, now: float) -> None:
        for bucket_key in [k for k, (_, _, full_at) in self._buckets.items() if full_at <= now]:
            del self._buckets[bucket_key]
        if len(self._buckets) >= self.max_keys:
            # Still full of live buckets: forget those closest to refilled.
            ordered = sorted(self._buckets, key=lambda k: self._buckets[k][2])
            for bucket_key in ordered[: len(ordered) // 2]:
                del self._buckets[bucket_key]
