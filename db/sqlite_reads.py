"""The reads of one turn of the event loop, sent to SQLite's thread together.

aiosqlite hands each statement to the connection's worker thread and the answer back to the
loop: on this machine that round trip costs about 80 µs of CPU (thread wake-ups, the GIL
changing hands), where SQLite answers an indexed read in about 10 µs. A page's loaders send
their statements in the same turn of the loop (the article page: six at its second level, two
at its third), so :func:`fetch` queues each one, and the first of a turn starts a flush that
lets the turn finish (every loader of the level has sent its statement by then), takes the
client's connection lock (the one ``in_transaction`` and every Tortoise statement take: no read
interleaves with a transaction) and runs the whole batch on the thread in one call
(aiosqlite's ``Connection._execute``, as ``db.sqlite_unit`` does for writes). Measured with
``python -m bench.article_page``: see README's Performance section.

Nothing else changes: each statement is the same text with the same parameters, run on the
same connection, and answers its caller alone, with its rows as dicts (as Tortoise's
``execute_query_dict``) or its own error (Tortoise's ``OperationalError`` / ``IntegrityError``,
as from its SQLite client); a statement that fails doesn't fail its batch-mates. Statements
count into each caller's record (``db.instrument``) when queued. A cancelled caller only stops
waiting: its read still runs, harmlessly.

Used by ``db.sql.fetch_dicts`` for the default SQLite client outside any transaction, with
tracing off (a span per statement needs its own await) and ``SQLITE_BATCH_READS`` on.
"""

from __future__ import annotations

import asyncio
import sqlite3
from asyncio import Future
from collections.abc import Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.exceptions import IntegrityError, OperationalError

import tracing
from db import instrument

# At most this many statements in one hand-off: a batch holds the connection for all of them.
MAX_BATCH = 64
# Turns of the loop a flush waits for statements to join before it takes the batch. A level of
# the article page sends its statements over two turns (a coroutine resolver's task starts a
# turn after the level, its loader dispatches a turn later): measured, one turn split the
# page's second level in two hand-offs; more than two joined nothing more.
JOIN_TURNS = 2

# Set by the lifespan from SQLITE_BATCH_READS (settings are read once); off: one hand-off per
# statement, through Tortoise's client.
enabled = True


def usable(client: BaseDBAsyncClient) -> bool:
    """Whether reads on ``client`` may be batched: SQLite, outside any transaction (a
    transaction's reads must see its own writes, in its order), tracing off."""
    return (
        enabled
        and client.capabilities.dialect == "sqlite"
        and not isinstance(client, TransactionalDBClient)
        and tracing.tracer is None
    )


class _Read:
    __slots__ = ("future", "params", "sql")

    def __init__(self, sql: str, params: list[Any], future: Future[list[dict[str, Any]]]) -> None:
        self.sql = sql
        self.params = params
        self.future = future


# Flushing tasks kept referenced until they end (the loop holds tasks weakly).
_FLUSHING: set[asyncio.Task[None]] = set()


class _Reader:
    """The reads waiting for one SQLite client's connection."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pending: list[_Read] = []
        self.flushing = False

    def submit(self, sql: str, params: list[Any]) -> Future[list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        read = _Read(sql, params, loop.create_future())
        self.pending.append(read)
        if not self.flushing:
            self.flushing = True
            task = loop.create_task(self._flush())
            _FLUSHING.add(task)
            task.add_done_callback(_FLUSHING.discard)
        return read.future

    async def _flush(self) -> None:
        try:
            for _ in range(JOIN_TURNS):
                await asyncio.sleep(0)
            await self._drain()
        finally:
            self.flushing = False
            # Cancelled (the loop shutting down): nobody is left waiting on a read never sent.
            for read in self.pending:
                _settle(read.future, False, asyncio.CancelledError())
            self.pending.clear()

    async def _drain(self) -> None:
        """Run batches until nothing waits."""
        while self.pending:
            reads: list[_Read] = []
            try:
                async with self.client.acquire_connection() as aio:
                    # Taken once the lock is held: whatever queued meanwhile joins.
                    reads = self.pending[:MAX_BATCH]
                    del self.pending[:MAX_BATCH]
                    outcomes = await aio._execute(_run, aio._conn, reads)
            except BaseException as exc:
                # (Connecting failed, say: SQLite's error as Tortoise's, as its client gives it.)
                error: BaseException = exc
                if isinstance(exc, sqlite3.OperationalError):
                    error = _translated(OperationalError, exc)
                elif isinstance(exc, sqlite3.IntegrityError):
                    error = _translated(IntegrityError, exc)
                for read in reads or self.pending:
                    _settle(read.future, False, error)
                if not reads:
                    self.pending.clear()
                if not isinstance(exc, Exception):
                    raise
                continue
            for read, (ok, value) in zip(reads, outcomes, strict=True):
                _settle(read.future, ok, value)


def _settle(future: Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # its caller was cancelled
        return
    if ok:
        future.set_result(value)
    elif isinstance(value, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(value)


def _translated(kind: type[Exception], exc: sqlite3.Error) -> Exception:
    """Tortoise's error for ``exc``, chained to it as Tortoise's client chains it (raising it
    inside its ``except``): ``db.health.is_database_down`` follows the chain to SQLite's
    "database is locked" (a 503 with Retry-After, not a masked 500)."""
    error = kind(exc)
    error.__cause__ = exc
    return error


def _run(conn: sqlite3.Connection, reads: list[_Read]) -> list[tuple[bool, Any]]:
    """On the connection's thread: each read's (ok, rows or error)."""
    outcomes: list[tuple[bool, Any]] = []
    for read in reads:
        try:
            # Tortoise's own rewrite of NUL (its client does this to every statement).
            rows = conn.execute(read.sql.replace("\x00", "'||CHAR(0)||'"), read.params).fetchall()
            outcomes.append((True, list(map(dict, rows))))
        except sqlite3.OperationalError as exc:
            outcomes.append((False, _translated(OperationalError, exc)))
        except sqlite3.IntegrityError as exc:
            outcomes.append((False, _translated(IntegrityError, exc)))
        except Exception as exc:
            outcomes.append((False, exc))
    return outcomes


async def fetch(client: BaseDBAsyncClient, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    """``sql``'s rows as dicts, sent with this turn's other reads (``usable(client)`` first)."""
    reader: _Reader | None = getattr(client, "_agora_reader", None)
    if reader is None:
        reader = _Reader(client)
        client._agora_reader = reader  # type: ignore[attr-defined]
    instrument.sent(sql)  # in the caller's context: its request's record
    return await reader.submit(sql, list(params))
