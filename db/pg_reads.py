"""The reads of one turn of the event loop on PostgreSQL, run on one pooled connection.

Tortoise takes a connection from asyncpg's pool for every statement, and asyncpg's acquire and
release (its timeouts, shields and the queue of the pool) cost about as much CPU as the
statement itself: ~35 µs of ~75 for a small read here. A page's loaders send their statements
in the same turns of the loop (the home feed: four at its first level, then two), so
:func:`fetch` queues each one, and the first of a turn starts a flush that lets the turns pass
(``JOIN_TURNS``: every loader of the level has sent its statement by then), takes one
connection from the pool, runs the batch's statements on it one after the other and gives it
back. Flushes don't wait for each other: reads queued while one runs start the next, on
another connection.

Nothing else changes: each statement is the same text with the same parameters, outside any
transaction, autocommitted as it would be alone, under the same ``command_timeout``; it answers
its caller alone, with its rows as dicts (as Tortoise's ``execute_query_dict``) or its own
error (translated as Tortoise's client translates it); a statement that fails doesn't fail its
batch-mates. Statements count into each caller's record (``db.instrument``) when queued. A
cancelled caller only stops waiting.

Used by ``db.sql.fetch_dicts`` for the default PostgreSQL client outside any transaction, with
tracing off (a span per statement needs its own await) and ``POSTGRES_BATCH_READS`` on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient

import tracing
from db import instrument
from db.handoff import Read, settle
from db.health import is_database_down

# Statements of one batch: they run one after the other on one connection, so the last waits
# for the others (and the database runs them on one of its cores): a level of a page is 2–6.
MAX_BATCH = 8
# Turns of the loop a flush waits for statements to join (as db.sqlite_reads measured).
JOIN_TURNS = 2

# Set by the lifespan from POSTGRES_BATCH_READS (settings are read once); off: one pooled
# connection per statement, through Tortoise's client.
enabled = True

# Set by the lifespan from DB_TIMEOUT_SECONDS (None: unbounded): every read of a batch answers
# within it, from the start of its flush; past it, a TimeoutError (the database is down, 503).
# Without it, a read behind a statement that timed out (half of it) could wait a whole
# connect timeout more for a connection of its own: against a silent database, 2 + 2 s for an
# answer due within 2.
deadline_seconds: float | None = None

# Flushing tasks kept referenced until they end (the loop holds tasks weakly).
_FLUSHING: set[asyncio.Task[None]] = set()


def usable(client: BaseDBAsyncClient) -> bool:
    """Whether reads on ``client`` may be batched: PostgreSQL through asyncpg, outside any
    transaction (a transaction's reads are its connection's), tracing off."""
    return (
        enabled
        and client.capabilities.dialect == "postgres"
        and not isinstance(client, TransactionalDBClient)
        and hasattr(client, "_translate_exceptions")
        and tracing.tracer is None
    )


async def fetch(client: BaseDBAsyncClient, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    """``sql``'s rows as dicts (``$n`` placeholders), sent with this turn's other reads."""
    instrument.sent(sql)  # in the caller's context: its request's record
    read = Read(sql, list(params), asyncio.get_running_loop().create_future())
    batch: list[Read] | None = getattr(client, "_agora_pg_batch", None)
    if batch is not None and client._agora_pg_flush.done():  # type: ignore[attr-defined]
        batch = None  # its flush was cancelled before it began (a loop shutting down)
    if batch is None:
        batch = []
        client._agora_pg_batch = batch  # type: ignore[attr-defined]
        task = asyncio.get_running_loop().create_task(_flush(client, batch))
        client._agora_pg_flush = task  # type: ignore[attr-defined]
        _FLUSHING.add(task)
        task.add_done_callback(_FLUSHING.discard)
    batch.append(read)
    if len(batch) >= MAX_BATCH:
        client._agora_pg_batch = None  # type: ignore[attr-defined]
    return await read.future


async def _fetch_on(_client: Any, connection: Any, sql: str, params: list[Any]) -> Any:
    return await connection.fetch(sql, *params)


def _expire(batch: list[Read]) -> None:
    """The batch's deadline passed: its unanswered callers hear the database is down (their
    statements wind down in the flush, which skips those not started)."""
    late = TimeoutError(f"no answer within {deadline_seconds} s")
    for read in batch:
        settle(read.future, False, late)


async def _flush(client: Any, batch: list[Read]) -> None:
    # One timer a batch (a read's own would cost a timer each on every page).
    timer = (
        None
        if deadline_seconds is None
        else asyncio.get_running_loop().call_later(deadline_seconds, _expire, batch)
    )
    try:
        for _ in range(JOIN_TURNS):
            await asyncio.sleep(0)
        if getattr(client, "_agora_pg_batch", None) is batch:
            client._agora_pg_batch = None  # later reads start a batch of their own
        rest: list[Read] = []
        # Answered once the connection is back in the pool: nothing holds one after the
        # response (the pool gauges, and the next request, see it free).
        outcomes: list[tuple[Read, bool, Any]] = []
        try:
            async with client.acquire_connection() as connection:
                for index, read in enumerate(batch):
                    if read.future.done():  # its caller stopped waiting
                        continue
                    try:
                        rows = await _one(client, connection, read)
                    except Exception as exc:
                        outcomes.append((read, False, exc))
                        if is_database_down(exc):
                            # A statement timed out or the connection dropped: the rest, one after
                            # the other, would each wait a timeout of their own in turn. They run
                            # at once instead, each on a connection of its own, as without
                            # batching: answered if it was one slow statement, failed within one
                            # more timeout if the database went silent.
                            rest = batch[index + 1 :]
                            break
                    else:
                        outcomes.append((read, True, rows))
        finally:
            for read, ok, value in outcomes:
                settle(read.future, ok, value)
        if rest:
            await asyncio.gather(*(_alone(client, read) for read in rest))
    except BaseException as exc:
        for read in batch:
            settle(read.future, False, exc)
        if not isinstance(exc, Exception):
            raise
    finally:
        if timer is not None:
            timer.cancel()
        if getattr(client, "_agora_pg_batch", None) is batch:
            client._agora_pg_batch = None
        for read in batch:
            settle(read.future, False, asyncio.CancelledError())


async def _one(client: Any, connection: Any, read: Read) -> list[dict[str, Any]]:
    # Tortoise's own translation of asyncpg's errors, around the same call.
    rows = await client._translate_exceptions(_fetch_on, connection, read.sql, read.params)
    return [dict(row) for row in rows]


async def _alone(client: Any, read: Read) -> None:
    if read.future.done():
        return
    try:
        async with client.acquire_connection() as connection:
            rows = await _one(client, connection, read)
    except Exception as exc:
        settle(read.future, False, exc)
    else:
        settle(read.future, True, rows)
