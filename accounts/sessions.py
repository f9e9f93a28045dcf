"""Live sessions kept in process for a few seconds, so a request need not read its session.

Each authenticated request read its session and user (a join through Tortoise, about 8 % of
a trade request's CPU). :class:`SessionCache` keeps what such a read found, per token hash,
for at most ``SESSION_CACHE_MS`` (and never past the session's own expiry), bounded to
``SESSION_CACHE_SIZE`` entries. Revocation still acts at once:

* the worker that ends a session (``logOut``, ``changePassword``) drops it before it answers;
* every worker drops it when the revocation reaches it through the broker
  (:meth:`SessionCache.forget_message`, wired by the app to the ``sessions`` channel);
* a broker that lost its connection to the other processes may have missed revocations: the
  cache is emptied when it reconnects (:meth:`SessionCache.clear`) and bypassed while the
  broker says it is unhealthy (``trusted``);
* a read that started before a revocation and ends after it never stores what it read (the
  cache's generation moved meanwhile).

A revocation message lost without the connection dropping (Redis pub/sub delivers at most
once) is the one case left to the entry's lifetime: it is bounded by ``SESSION_CACHE_MS``.
``SESSION_CACHE_MS=0`` turns the cache off.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from db import models


@dataclass(slots=True)
class _Entry:
    user: models.User
    # The earlier of the cache's lifetime and the session's own expiry (service clock).
    until: datetime


class SessionCache:
    """Token hash → the user of a live session, for at most ``seconds``; see the module."""

    def __init__(
        self, milliseconds: int, size: int, trusted: Callable[[], bool] = lambda: True
    ) -> None:
        self.lifetime = timedelta(milliseconds=milliseconds)
        self.size = size
        # False while revocations from other processes may not arrive (the broker is down).
        self.trusted = trusted
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # Moves with every drop: a read in flight across one must not store what it read.
        self.generation = 0

    @property
    def enabled(self) -> bool:
        """Whether entries are kept at all (``SESSION_CACHE_MS`` > 0 and a size)."""
        return self.lifetime > timedelta(0) and self.size > 0

    def get(self, token_hash: str, now: datetime) -> models.User | None:
        """A copy of the cached user of ``token_hash``, or None (unknown, stale, or the cache
        can't be trusted now)."""
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if entry.until <= now or not self.trusted():
            del self._entries[token_hash]
            return None
        # A copy: a request may change its viewer (changePassword sets its hash).
        return copy.copy(entry.user)

    def put(
        self,
        token_hash: str,
        user: models.User,
        expires_at: datetime,
        now: datetime,
        generation: int,
    ) -> None:
        """Keep what a read begun at ``generation`` found, unless anything was dropped since."""
        if not self.enabled or generation != self.generation or not self.trusted():
            return
        until = min(now + self.lifetime, expires_at)
        if until <= now:
            return
        self._entries[token_hash] = _Entry(copy.copy(user), until)
        self._entries.move_to_end(token_hash)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget_token(self, token_hash: str) -> None:
        """One session ended."""
        self.generation += 1
        self._entries.pop(token_hash, None)

    def forget_user(self, user_id: int) -> None:
        """Every cached session of ``user_id`` dropped: some ended, or the user changed. The one
        a password change keeps goes too: its cached user holds the old password hash, and one
        database read on its next request is cheaper than reasoning about a stale copy."""
        self.generation += 1
        for token_hash in [h for h, e in self._entries.items() if e.user.id == user_id]:
            del self._entries[token_hash]

    def clear(self) -> None:
        """Forget everything (the broker may have missed revocations)."""
        self.generation += 1
        self._entries.clear()

    async def cleared(self) -> None:
        """:meth:`clear`, as a broker's reconnect callback."""
        self.clear()

    def forget_message(self, message: dict[str, Any]) -> None:
        """A revocation as the ``sessions`` channel carries it (``realtime.events``): by token
        (``kind: token``) or by user (``kind: user``: all of them, the kept one too); anything
        else empties the cache rather than be ignored."""
        kind = message.get("kind")
        if kind == "token" and isinstance(message.get("token_hash"), str):
            self.forget_token(message["token_hash"])
        elif kind == "user" and isinstance(message.get("user_id"), int):
            self.forget_user(message["user_id"])
        else:
            self.clear()

    def __len__(self) -> int:
        return len(self._entries)
