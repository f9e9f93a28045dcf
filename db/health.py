"""Telling "the database is down" apart from every other failure of a statement.

A connection problem is the client's cue to retry later (HTTP 503, websocket close 1013); any
other exception is a bug or a bad statement and is masked and logged as such.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sqlite3
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg
from tortoise.exceptions import DBConnectionError

# asyncpg's errors for a server that went away or isn't taking connections: SQLSTATE class 08
# (PostgresConnectionError and its family: connection does not exist, failure, rejected), and
# from class 57 the ones that mean the server is starting, shutting down or crashed.
_DOWN: tuple[type[BaseException], ...] = (
    DBConnectionError,
    ConnectionError,  # refused, reset, aborted, broken pipe
    TimeoutError,
    socket.gaierror,  # the database's host name doesn't resolve
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)

_NETWORK_ERRNOS = {
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EHOSTDOWN,
    errno.ETIMEDOUT,
    errno.ENOTCONN,
}

# How far along __cause__ / original_error to look: Tortoise, strawberry and graphql-core each
# wrap at most once or twice; the bound keeps a cyclic chain from looping.
_MAX_DEPTH = 5


def is_database_down(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database can't be reached right now."""
    seen: BaseException | None = exc
    for _ in range(_MAX_DEPTH):
        if seen is None:
            return False
        if isinstance(seen, _DOWN):
            return True
        if isinstance(seen, OSError) and seen.errno in _NETWORK_ERRNOS:
            return True  # no route, network down: not every OSError (a missing file is a bug)
        if isinstance(seen, sqlite3.OperationalError) and "database is locked" in str(seen):
            return True  # another process holds the SQLite file past its busy timeout
        # A GraphQLError carries the resolver's exception as original_error; others chain it,
        # explicitly (``raise … from``) or implicitly: an error raised while handling the lost
        # connection (Tortoise's rollback on it: asyncpg's InterfaceError "the underlying
        # connection is closed") is a consequence of it, unless ``from None`` disowned it.
        seen = (
            getattr(seen, "original_error", None)
            or seen.__cause__
            or (None if seen.__suppress_context__ else seen.__context__)
        )
    return False


T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """``await awaitable``, or TimeoutError after ``seconds``.

    Not ``asyncio.wait_for``: on time-out it cancels the work and then waits for the work to
    finish being cancelled, and asyncpg's cancellation sends a cancel request to the server it
    can't reach (another second against a silent database here, up to its connect timeout on
    a real partition). The abandoned work winds down in the background instead.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    # Retrieve its outcome, so that it isn't logged as "never retrieved".
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    raise TimeoutError(f"no answer within {seconds} s")
