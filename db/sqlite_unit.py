"""One SQLite transaction as one call on the connection's own thread.

aiosqlite runs every statement on the connection's worker thread: each ``await`` of a statement
is two thread hand-offs, and a transaction that awaits 18 times holds SQLite's single writer
(and Tortoise's connection lock) for all of them. :func:`run` instead hands a whole synchronous
function to that thread at once (aiosqlite's ``Connection._execute``, the method its own
statement methods use), which runs ``BEGIN IMMEDIATE``, the function's statements and
``COMMIT`` (``ROLLBACK`` on any exception) without returning to the event loop: one hand-off
per transaction.

Group commit: units that queue for the connection while one runs are handed over together, up
to ``SQLITE_GROUP_COMMIT_MAX`` in one transaction, each in its own savepoint (see :func:`run`):
one ``COMMIT`` and one hand-off for the group, where each ``COMMIT`` (writing the WAL frames)
and each wake-up of the loop cost about a tenth of a trade's CPU. Nothing answers before the
group's ``COMMIT``. (The queue is ``db.handoff``'s, shared with the batched reads.)

It holds the Tortoise client's connection lock while it runs, the one ``in_transaction`` and
every plain statement take, so no Tortoise transaction interleaves with it. Should the awaiting
task be cancelled, the unit still runs, whole, in its group: it commits or rolls back whole.

Statements count into the request's record (``db.instrument``) like Tortoise's own; errors
arrive as Tortoise's ``IntegrityError`` / ``OperationalError``, as from its SQLite client.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from asyncio import Future
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from tortoise.backends.base.client import TransactionalDBClient
from tortoise.exceptions import IntegrityError, OperationalError

import tracing
from db import instrument
from db.handoff import HandOff
from db.sql import connection

T = TypeVar("T")


class Unit:
    """The statements of one unit, run on the connection's thread (never on the event loop)."""

    __slots__ = ("_conn", "statements")

    def __init__(self, conn: sqlite3.Connection | None) -> None:
        # Set on the connection's thread when its group runs.
        self._conn: Any = conn
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
    client = connection()
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


async def run(work: Callable[[Unit], T], group: int = 1) -> T:
    """Run ``work`` in one transaction on the SQLite connection's thread; its result.

    ``work`` must be synchronous and do nothing but plan and run statements through its
    :class:`Unit`: it holds the database's writer while it runs. Any exception it raises rolls
    its statements back and propagates (a refusal changes nothing).

    ``group`` > 1 lets the units waiting for the connection run together, up to ``group`` of
    them in one transaction (group commit: one ``BEGIN IMMEDIATE`` … ``COMMIT`` and one thread
    hand-off for all), each inside its own ``SAVEPOINT``, so one that raises is rolled back
    alone (``ROLLBACK TO``) and changes nothing of the others, which still commit. Every unit of
    a group answers only once its ``COMMIT`` is done: whatever a caller is told has been
    committed (a ``kill -9`` loses nothing acknowledged). Should the ``COMMIT`` fail, or SQLite
    end the transaction itself, every unit of the group that had run fine gets that error.
    """
    client: Any = connection()
    writer: HandOff[_Job] | None = getattr(client, "_agora_writer", None)
    if writer is None:
        writer = HandOff(client, _group)
        client._agora_writer = writer
    unit = Unit(None)
    job = _Job(work, unit, asyncio.get_running_loop().create_future())
    tracer = tracing.tracer
    try:
        # A cancelled caller cancels only its wait: its unit still runs, whole, in its group.
        if tracer is None:
            writer.submit(job, group)
            result: T = await job.future
            return result
        with tracer.start_as_current_span(
            "TRANSACTION",
            kind=tracing.client_kind(),
            attributes={"db.system": "sqlite", "db.statement": "one synchronous unit"},
        ):
            writer.submit(job, group)
            result = await job.future
            return result
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(exc) from exc
    except sqlite3.OperationalError as exc:
        raise OperationalError(exc) from exc
    finally:
        # In the caller's context: its request's record.
        instrument.add(unit.statements)


class _Job:
    """One unit waiting for its group: what to run, its statements, where its outcome goes."""

    __slots__ = ("future", "unit", "work")

    def __init__(self, work: Callable[[Unit], Any], unit: Unit, future: Future[Any]) -> None:
        self.work = work
        self.unit = unit
        self.future = future


class _Ended(Exception):
    """SQLite ended a group's transaction itself while one of its units failed."""


def _group(conn: sqlite3.Connection, jobs: list[_Job]) -> list[tuple[bool, Any]]:
    """On the connection's thread: each job's (ok, result or exception). One job is one
    transaction; several share one, each in its own savepoint."""
    for job in jobs:
        job.unit._conn = conn
    if len(jobs) == 1:
        job = jobs[0]
        try:
            return [(True, _transaction(conn, job.unit, job.work))]
        except Exception as exc:
            return [(False, exc)]
    outcomes: list[tuple[bool, Any]] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for job in jobs:
            conn.execute("SAVEPOINT agora_unit")
            try:
                value = job.work(job.unit)
            except Exception as exc:
                outcomes.append((False, exc))
                if not conn.in_transaction:
                    # (A full disk, say.) The units before it went with the transaction.
                    raise _Ended from exc
                conn.execute("ROLLBACK TO agora_unit")
                conn.execute("RELEASE agora_unit")
                continue
            conn.execute("RELEASE agora_unit")
            outcomes.append((True, value))
        conn.execute("COMMIT")
    except BaseException as exc:
        error = exc.__cause__ if isinstance(exc, _Ended) else exc
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if not isinstance(exc, Exception):
            raise  # (not on this thread's path; the transaction is closed all the same)
        # A refusal before the first unit that ran fine was judged on committed state: it
        # keeps its answer (it changed nothing either way). One after it may have been judged
        # on that unit's writes, which the failed COMMIT undid (INSUFFICIENT_FUNDS after a
        # group-mate's purchase that never happened): it gets the group's error, as the rest.
        first_ok = next((i for i, (ok, _) in enumerate(outcomes) if ok), len(outcomes))
        kept = [
            (ok, value) if not ok and i < first_ok else (False, error)
            for i, (ok, value) in enumerate(outcomes)
        ]
        return kept + [(False, error)] * (len(jobs) - len(kept))
    return outcomes
