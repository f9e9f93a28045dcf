"""The reads of one turn of the event loop, sent to SQLite's thread together.

aiosqlite hands each statement to the connection's worker thread and the answer back to the
loop: on this machine that round trip costs about 80 µs of CPU (thread wake-ups, the GIL
changing hands), where SQLite answers an indexed read in about 10 µs. A page's loaders send
their statements in the same turn of the loop (the article page: six at its second level, two
at its third), so :func:`fetch` queues each one, and the first of a turn starts a flush that
lets the turn finish (every loader of the level has sent its statement by then), takes the
client's connection lock (the one ``in_transaction`` and every Tortoise statement take: no read
interleaves with a transaction) and runs the whole batch on the thread in one call
(``db.handoff``, the queue the write units of ``db.sqlite_unit`` go through too). Measured with
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
from collections.abc import Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.exceptions import IntegrityError, OperationalError

import tracing
from db import instrument
from db.handoff import HandOff, Read

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


def _translated(kind: type[Exception], exc: sqlite3.Error) -> Exception:
    """Tortoise's error for ``exc``, chained to it as Tortoise's client chains it (raising it
    inside its ``except``): ``db.health.is_database_down`` follows the chain to SQLite's
    "database is locked" (a 503 with Retry-After, not a masked 500)."""
    error = kind(exc)
    error.__cause__ = exc
    return error


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _dicts(names: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """``rows`` as ``dict(sqlite3.Row)`` makes them: each name's value is that of the first
    column whose name matches it, ASCII letters compared without case (``a.*`` beside an
    ``a.id AS id`` names a column twice)."""
    # (sqlite3.Row compares without case only names that are both ASCII: others exactly.)
    folded = [name.translate(_ASCII_LOWER) if name.isascii() else name for name in names]
    if len(set(folded)) == len(folded):
        return [dict(zip(names, row, strict=True)) for row in rows]
    firsts = [folded.index(name) for name in folded]
    return [{name: row[i] for name, i in zip(names, firsts, strict=True)} for row in rows]


def _run(conn: sqlite3.Connection, reads: list[Read]) -> list[tuple[bool, Any]]:
    """On the connection's thread: each read's (ok, rows or error)."""
    outcomes: list[tuple[bool, Any]] = []
    for read in reads:
        try:
            # Plain tuples zipped with the column names: the dicts ``dict(sqlite3.Row)`` makes
            # (Tortoise's row factory), a name at a time, cost twice the statement on a wide
            # row. This cursor's rows only; the connection keeps Tortoise's factory.
            cursor = conn.cursor()
            cursor.row_factory = None
            # Tortoise's own rewrite of NUL (its client does this to every statement).
            cursor.execute(read.sql.replace("\x00", "'||CHAR(0)||'"), read.params)
            rows = cursor.fetchall()
            outcomes.append(
                (True, _dicts([column[0] for column in cursor.description or ()], rows))
            )
        except sqlite3.OperationalError as exc:
            outcomes.append((False, _translated(OperationalError, exc)))
        except sqlite3.IntegrityError as exc:
            outcomes.append((False, _translated(IntegrityError, exc)))
        except Exception as exc:
            outcomes.append((False, exc))
    return outcomes


async def fetch(client: BaseDBAsyncClient, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    """``sql``'s rows as dicts, sent with this turn's other reads (``usable(client)`` first)."""
    reader: HandOff[Read] | None = getattr(client, "_agora_reader", None)
    if reader is None:
        reader = HandOff(client, _run, JOIN_TURNS)
        client._agora_reader = reader  # type: ignore[attr-defined]
    instrument.sent(sql)  # in the caller's context: its request's record
    read = Read(sql, list(params), asyncio.get_running_loop().create_future())
    reader.submit(read, MAX_BATCH)
    try:
        return await read.future
    except sqlite3.OperationalError as exc:
        # (Connecting failed, say: SQLite's error as Tortoise's, as its client gives it.)
        raise OperationalError(exc) from exc
