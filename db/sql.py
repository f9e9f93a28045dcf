"""A thin, dialect-aware layer for the few hand-written SQL statements.

Keyset pages and per-parent windows (ROW_NUMBER() OVER (PARTITION BY …)) are beyond what
Tortoise's query builder expresses, so they are written as SQL with ``?`` placeholders and run
through Tortoise's own connection: the same pool, transactions and type adapters. Rows come back
as model instances via ``Model._init_from_db``, exactly as Tortoise builds them itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

_PLACEHOLDER = re.compile(r"\?")


def connection() -> BaseDBAsyncClient:
    """The default Tortoise connection (or the transaction in progress on it)."""
    return connections.get("default")


def is_postgres(conn: BaseDBAsyncClient | None = None) -> bool:
    """Whether the connection speaks PostgreSQL (``$n`` placeholders) rather than SQLite."""
    conn = conn or connection()
    return conn.capabilities.dialect == "postgres"


def to_dialect(sql: str, conn: BaseDBAsyncClient) -> str:
    """Rewrite ``?`` placeholders as ``$1, $2, …`` for PostgreSQL."""
    if not is_postgres(conn):
        return sql
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)


def placeholders(count: int) -> str:
    """``?, ?, ?`` for an IN list of ``count`` values (at least one)."""
    return ", ".join("?" for _ in range(max(count, 1)))


async def fetch_dicts(
    sql: str, params: Sequence[Any] = (), conn: BaseDBAsyncClient | None = None
) -> list[dict[str, Any]]:
    """Run a statement (on ``conn``, a transaction, if given) and return its rows as dicts."""
    conn = conn or connection()
    return await conn.execute_query_dict(to_dialect(sql, conn), list(params))


async def execute(
    sql: str, params: Sequence[Any] = (), conn: BaseDBAsyncClient | None = None
) -> int:
    """Run a statement that returns no rows; the number of rows it changed."""
    conn = conn or connection()
    count, _ = await conn.execute_query(to_dialect(sql, conn), list(params))
    return int(count)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with LIKE's wildcards escaped (ESCAPE '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def unstorable_reason(value: str) -> str | None:
    """Why no text column can hold ``value``, or None: NUL (PostgreSQL can't) and lone
    surrogates (no UTF-8 encoder, so no database driver, accepts them)."""
    if "\x00" in value:
        return "Strings may not contain NUL (\\u0000) characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Strings may not contain lone surrogates (\\ud800–\\udfff)."
    return None
