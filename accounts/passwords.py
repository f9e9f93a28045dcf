"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile).

One hash or verification costs ~130-200 ms of CPU. Done on the event loop it stalls every
client of the process for that long (30 aliased calls held it 4 s), so the service runs them on
a :class:`HashPool`: a few threads, and a bounded number of hashes waiting for one. argon2-cffi
releases the GIL inside the C code, so the loop keeps serving while a worker hashes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from types import TracebackType
from typing import ParamSpec, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from refusals import Refusal, RefusalCode

P = ParamSpec("P")
T = TypeVar("T")

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` with a fresh salt."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (False for an empty or foreign hash)."""
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    # Made on first use (in a pool thread), not at import: importing the service shouldn't cost
    # a hash. Two threads racing here both make one; either is as good.
    return hash_password("not the password of anyone")


def verify_unknown(password: str) -> bool:
    """Verify against a hash nobody has, so a log-in to a missing account costs as long as a
    wrong password (no timing oracle for which usernames exist). Always False."""
    verify_password(_dummy_hash(), password)
    return False


def busy() -> Refusal:
    """The refusal when too many hashes already wait: retry shortly rather than queue forever."""
    return Refusal(RefusalCode.RATE_LIMITED, "The server is busy; try again in a second.", None, 1)


class HashPool:
    """``workers`` threads for password hashing, with at most ``queue`` calls waiting for one.

    A call beyond ``workers + queue`` in flight is refused at once (:func:`busy`) instead of
    queueing: an unbounded queue would turn a flood of log-ins into minutes of latency for
    everyone's log-in and unbounded memory. The threads start on first use; :meth:`close` stops
    them (the app's lifespan calls it), and a later call starts new ones.
    """

    def __init__(self, workers: int, queue: int) -> None:
        self.workers = max(1, workers)
        self.capacity = self.workers + max(0, queue)
        # Counted from the loop (admission) and from worker threads (done callbacks).
        self._lock = threading.Lock()
        self._in_flight = 0
        self._executor: ThreadPoolExecutor | None = None

    @property
    def in_flight(self) -> int:
        """Calls admitted and not yet finished: running, waiting, or reserved."""
        return self._in_flight

    def reserve(self) -> HashSlot:
        """Take a place in the pool now, or raise the :func:`busy` refusal.

        Lets a caller make sure a hash will be admitted before it spends something else on the
        attempt (a rate-limit token), so an overloaded server doesn't drain a user's budget.
        """
        with self._lock:
            if self._in_flight >= self.capacity:
                raise busy()
            self._in_flight += 1
        return HashSlot(self)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on a pool thread; refused with :func:`busy` when full."""
        with self.reserve() as slot:
            return await slot.run(fn, *args, **kwargs)

    def _release(self, _future: object = None) -> None:
        with self._lock:
            self._in_flight -= 1

    def _submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="agora-hash")
        return self._executor.submit(fn, *args, **kwargs)

    async def close(self) -> None:
        """Stop the threads: waiting calls are cancelled, running ones finish first."""
        executor, self._executor = self._executor, None
        if executor is not None:
            # Joining waits for a running hash (~0.2 s): not on the loop.
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


class HashSlot:
    """One admitted place in a :class:`HashPool`, used by at most one :meth:`run`.

    The place is given back when the hash finishes on its thread — not when the awaiting
    request goes away — so a client that disconnects mid-hash can't free a place a thread is
    still busy in. Unused (the ``with`` block left early), it is given back on exit.
    """

    def __init__(self, pool: HashPool) -> None:
        self._pool = pool
        self._held = True

    def __enter__(self) -> HashSlot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._held:
            self._held = False
            self._pool._release()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on a pool thread, in this slot's place."""
        if not self._held:
            raise RuntimeError("a hash slot runs one call")
        future = self._pool._submit(fn, *args, **kwargs)
        # From here the place belongs to the future: given back when it is done or cancelled
        # (a waiting call cancelled by close(), or by the awaiting task being cancelled).
        self._held = False
        future.add_done_callback(self._pool._release)
        return await asyncio.wrap_future(future)
