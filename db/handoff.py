"""Work for one SQLite client's connection, handed to its thread in batches.

aiosqlite runs everything on the connection's worker thread, and each hand-off there and back
costs about 80 µs of CPU. Both the synchronous write units (``db.sqlite_unit``: group commit)
and the batched reads (``db.sqlite_reads``) queue their items here: the first item starts a
flush that lets ``join_turns`` turns of the loop pass, takes the client's connection lock (the
one ``in_transaction`` and every Tortoise statement take), and hands up to ``size`` waiting
items to the thread in one call of ``run(conn, items)``, which answers each item's
``(ok, value or exception)``. Items queued meanwhile join the next batch.

A failure of the hand-off itself (connecting, the lock, the thread) goes to every item of its
batch; a cancelled caller only stops waiting (its item still runs, whole); should the flush
itself be cancelled (the loop shutting down), nobody is left waiting on an item never sent.
"""

from __future__ import annotations

import asyncio
import sqlite3
from asyncio import Future
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class Item(Protocol):
    """What waits in a hand-off: its outcome goes to ``future``."""

    future: Future[Any]


I = TypeVar("I", bound=Item)  # noqa: E741

# Flushing tasks kept referenced until they end (the loop holds tasks weakly).
_FLUSHING: set[asyncio.Task[None]] = set()


class Read:
    """A read waiting its turn: the statement, its parameters, and the future of its rows."""

    __slots__ = ("future", "params", "sql")

    def __init__(self, sql: str, params: list[Any], future: Future[list[dict[str, Any]]]) -> None:
        self.sql = sql
        self.params = params
        self.future = future


class HandOff(Generic[I]):
    """The items waiting for one SQLite client's connection (module docstring)."""

    def __init__(
        self,
        client: Any,
        run: Callable[[sqlite3.Connection, list[I]], list[tuple[bool, Any]]],
        join_turns: int = 0,
    ) -> None:
        self.client = client
        self.run = run
        self.join_turns = join_turns
        self.pending: list[I] = []
        self.flushing = False

    def submit(self, item: I, size: int) -> None:
        """Queue ``item``; a flush starting now hands over at most ``size`` items at a time."""
        self.pending.append(item)
        if not self.flushing:
            self.flushing = True
            task = asyncio.get_running_loop().create_task(self._flush(max(1, size)))
            _FLUSHING.add(task)
            task.add_done_callback(_FLUSHING.discard)

    async def _flush(self, size: int) -> None:
        try:
            for _ in range(self.join_turns):
                await asyncio.sleep(0)
            while self.pending:
                items: list[I] = []
                try:
                    async with self.client.acquire_connection() as aio:
                        # Taken once the lock is held: whatever queued meanwhile joins.
                        items = self.pending[:size]
                        del self.pending[:size]
                        outcomes = await aio._execute(self.run, aio._conn, items)
                except BaseException as exc:
                    for item in items or self.pending:
                        settle(item.future, False, exc)
                    if not items:
                        self.pending.clear()
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for item, (ok, value) in zip(items, outcomes, strict=True):
                    settle(item.future, ok, value)
        finally:
            self.flushing = False
            for item in self.pending:
                settle(item.future, False, asyncio.CancelledError())
            self.pending.clear()


def settle(future: Future[Any], ok: bool, value: Any) -> None:
    """Give ``future`` its outcome, unless its caller stopped waiting."""
    if future.done():
        return
    if isinstance(value, asyncio.CancelledError):
        future.cancel()
    elif ok:
        future.set_result(value)
    else:
        future.set_exception(value)
