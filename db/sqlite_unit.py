"""One SQLite transaction as one call on the connection's own thread.

aiosqlite runs every statement on the connection's worker thread: each ``await`` of a statement
is two thread hand-offs, and a transaction that awaits 18 times holds SQLite's single writer
(and Tortoise's connection lock) for all of them. :func:`run` instead hands a whole synchronous
function to that thread at once (aiosqlite's ``Connection._execute``, the method its own
statement methods use), which runs ``BEGIN IMMEDIATE``, the function's statements and
``COMMIT`` (``ROLLBACK`` on any exception) without returning to the event loop: one hand-off
per transaction.

It holds the Tortoise client's connection lock while it runs, the one ``in_transaction`` and
every plain statement take, so no Tortoise transaction interleaves with it. Should the awaiting
task be cancelled, the unit still runs to its end on the thread before anything queued after
it (the thread runs its queue in order), so it commits or rolls back whole.

Statements count into the request's record (``db.instrument``) like Tortoise's own; errors
arrive as Tortoise's ``IntegrityError`` / ``OperationalError``, as from its SQLite client.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.exceptions import IntegrityError, OperationalError

import tracing
from db import instrument

T = TypeVar("T")


class Unit:
    """The statements of one unit, run on the connection's thread (never on the event loop)."""

    __slots__ = ("_conn", "statements")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        # Counted into the request's record once the unit is done.
        self.statements = 0

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a statement; its rows as dicts (``RETURNING`` included)."""
        self.statements += 1
        cursor = self._conn.execute(sql, params)
        names = [d[0] for d in cursor.description] if cursor.description else []
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row of a statement, or None."""
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement that returns no rows; the rows it changed."""
        self.statements += 1
        return self._conn.execute(sql, params).rowcount


def drive(step: Coroutine[Any, Any, T]) -> T:
    """Run an ``async`` step that never suspends when given a :class:`Unit` (a helper shared
    with the asynchronous path, such as ``markets.store.record_price``) to its end, here on
    the unit's thread; a step that would wait is a programming error."""
    try:
        step.send(None)
    except StopIteration as stop:
        return stop.value
    step.close()
    raise RuntimeError("a synchronous unit's step tried to wait")


def available() -> bool:
    """Whether the default connection is a SQLite client outside any transaction (the only
    place a unit can run: inside a Tortoise transaction it would nest its BEGIN)."""
    client = connections.get("default")
    return client.capabilities.dialect == "sqlite" and not isinstance(client, TransactionalDBClient)


def _transaction(conn: sqlite3.Connection, unit: Unit, work: Callable[[Unit], T]) -> T:
    # On the connection's thread. IMMEDIATE: the write lock from the start, so a concurrent
    # writer of another process waits on busy_timeout here rather than failing at the first
    # write after reads (a deferred transaction can't be upgraded once another one wrote).
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(unit)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


async def run(work: Callable[[Unit], T]) -> T:
    """Run ``work`` in one transaction on the SQLite connection's thread; its result.

    ``work`` must be synchronous and do nothing but plan and run statements through its
    :class:`Unit`: it holds the database's writer while it runs. Any exception it raises rolls
    the transaction back and propagates (a refusal changes nothing).
    """
    client: Any = connections.get("default")
    async with client.acquire_connection() as aio:
        unit = Unit(aio._conn)
        tracer = tracing.tracer
        try:
            if tracer is None:
                return await aio._execute(_transaction, aio._conn, unit, work)
            with tracer.start_as_current_span(
                "TRANSACTION",
                kind=tracing.client_kind(),
                attributes={"db.system": "sqlite", "db.statement": "one synchronous unit"},
            ):
                return await aio._execute(_transaction, aio._conn, unit, work)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(exc) from exc
        except sqlite3.OperationalError as exc:
            raise OperationalError(exc) from exc
        finally:
            instrument.add(unit.statements)
