"""A thin, dialect-aware layer for the few hand-written SQL statements.

Keyset pages and per-parent windows (ROW_NUMBER() OVER (PARTITION BY …)) are beyond what
Tortoise's query builder expresses, so they are written as SQL with ``?`` placeholders and run
through Tortoise's own connection: the same pool, transactions and type adapters. Read paths
turn rows into plain rows (``plain_rows``): the attributes and Python values of the model
instances Tortoise would build, at a fraction of the cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.context import require_context
from tortoise.fields.data import CharEnumFieldInstance, DatetimeField
from tortoise.models import Model
from tortoise.timezone import get_default_timezone, get_use_tz

from db import pg_reads, sqlite_reads

_PLACEHOLDER = re.compile(r"\?")
_MISSING = object()


def connection() -> BaseDBAsyncClient:
    """The default Tortoise connection (or the transaction in progress on it).

    What ``tortoise.connections.get`` answers, without its proxy: that imports the context
    module inside every call and forwards through ``__getattr__``, 1.5 µs of a read's ~2.
    """
    return require_context().connections.get("default")


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
    """Run a statement (on ``conn``, a transaction, if given) and return its rows as dicts.

    On SQLite outside a transaction the statement goes with the other reads of this turn of the
    loop to the connection's thread in one hand-off (``db.sqlite_reads``)."""
    conn = conn or connection()
    if sqlite_reads.usable(conn):
        return await sqlite_reads.fetch(conn, sql, params)
    if pg_reads.usable(conn):
        return await pg_reads.fetch(conn, to_dialect(sql, conn), params)
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


class PlainRow:
    """A read-only row of a model: its fields as attributes (Tortoise's names and Python
    values) and ``pk``; no ORM machinery (an article page builds ~70 of them per request, and
    ``Model._init_from_db`` with iso8601 parsing was a fifth of the page's CPU)."""

    __slots__ = ()
    _pk_attr = "id"

    @property
    def pk(self) -> Any:
        """The primary key, as a model instance's ``pk``."""
        return getattr(self, self._pk_attr)

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({values})"


# Times read from text, kept by their text: the rows a site serves are read again and again (a
# comment thread's times on every view of its article), and reading one was a fifth of building
# an article's row. Times are immutable, so rows may share one. One memo for every plain
# DatetimeField (their conversion is the class's, whatever the field): at most this many.
TEXT_TIMES_KEPT = 8192


def _datetime_reader(
    field: DatetimeField[Any],
) -> tuple[Callable[[str], Any], Callable[[Any], Any]]:
    """(how to convert stored text, how to convert anything else) for ``field``: the text
    through the C ``fromisoformat`` (far faster than iso8601) and kept, the rest by the field;
    either way the field's own time zone rules, exactly as Tortoise applies them."""
    if type(field) is DatetimeField:
        return _plain_times, _driver_times(field.to_python_value)
    return _times_reader(field.to_python_value), field.to_python_value


def _driver_times(to_python: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A DatetimeField's conversion of what a driver returns (asyncpg: aware datetimes in UTC)."""

    def convert(value: Any) -> Any:
        if value.__class__ is datetime and value.tzinfo is UTC and _utc_aware():
            return value.replace(tzinfo=get_default_timezone())  # as in _times_reader
        return to_python(value)

    return convert


def _times_reader(to_python: Callable[[Any], Any]) -> Callable[[str], Any]:
    @lru_cache(maxsize=TEXT_TIMES_KEPT)
    def from_text(text: str) -> Any:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            # Text Python doesn't read as ISO goes to Tortoise's parser as it is.
            return to_python(text)
        if value.tzinfo is UTC and _utc_aware():
            # What to_python_value gives a UTC time when Tortoise keeps aware times in
            # UTC (``astimezone`` of UTC to UTC), without its four calls a value.
            return value.replace(tzinfo=get_default_timezone())
        return to_python(value)

    return from_text


_plain_times = _times_reader(DatetimeField().to_python_value)


@cache
def _utc_aware() -> bool:
    """Whether Tortoise keeps times aware and in UTC (read once, as Tortoise reads them)."""
    return get_use_tz() and getattr(get_default_timezone(), "key", None) == "UTC"


def plain_rows(model: type[Model], prefix: str = "") -> Callable[[Mapping[str, Any]], Any]:
    """A function building a ``PlainRow`` of ``model`` from a row dict (its columns named
    ``prefix + column``; other keys are ignored). Values convert as ``Model._init_from_db``
    converts them: driver-native fields as they come, simple ones by their type, the rest by
    the field (datetimes through a faster parser, same result)."""
    meta = model._meta
    # Which fields the driver converts natively depends on the dialect Tortoise was started
    # with (a test process moves between SQLite and PostgreSQL): part of the key.
    return _builder(model, prefix, tuple(key for key, _, _ in meta.db_native_fields))


@cache
def _builder(
    model: type[Model], prefix: str, _native: tuple[str, ...]
) -> Callable[[Mapping[str, Any]], Any]:
    meta = model._meta
    attrs: list[str] = []
    lines: list[str] = []
    env: dict[str, Any] = {}
    for key, attr, _field in meta.db_native_fields:
        attrs.append(attr)
        lines.append(f"    o.{attr} = row[{prefix + key!r}]")
    for i, (key, attr, field) in enumerate(meta.db_default_fields):
        attrs.append(attr)
        env[f"t{i}"] = field.field_type
        lines.append(f"    v = row[{prefix + key!r}]")
        lines.append(f"    o.{attr} = None if v is None else t{i}(v)")
    for i, (key, attr, field) in enumerate(meta.db_complex_fields):
        attrs.append(attr)
        env[f"c{i}"] = field.to_python_value
        lines.append(f"    v = row[{prefix + key!r}]")
        if isinstance(field, DatetimeField):
            env[f"f{i}"], env[f"c{i}"] = _datetime_reader(field)
            lines.append(f"    o.{attr} = f{i}(v) if v.__class__ is str else c{i}(v)")
        elif isinstance(field, CharEnumFieldInstance):
            # A stored value's member by the enum's own map (calling the enum is ~1 µs); any
            # other value (None, an alias, a _missing_ one) by the field, as before.
            env[f"m{i}"] = field.enum_type._value2member_map_
            lines.append(f"    m = m{i}.get(v, missing)")
            lines.append(f"    o.{attr} = c{i}(v) if m is missing else m")
        else:
            lines.append(f"    o.{attr} = c{i}(v)")
    row_class = type(
        f"{model.__name__}Row",
        (PlainRow,),
        {"__slots__": tuple(attrs), "_pk_attr": meta.pk_attr, "__module__": __name__},
    )
    env["new"] = object.__new__
    env["missing"] = _MISSING
    env["cls"] = row_class
    source = "def build(row):\n    o = new(cls)\n" + "\n".join(lines) + "\n    return o\n"
    # Generated once per model: straight-line attribute stores, no loop or lookups per row.
    exec(compile(source, f"<plain_rows {model.__name__}>", "exec"), env)
    build: Callable[[Mapping[str, Any]], Any] = env["build"]
    return build


async def fetch_rows(
    model: type[Model], sql: str, params: Sequence[Any] = (), conn: BaseDBAsyncClient | None = None
) -> list[Any]:
    """Run a statement selecting ``model``'s columns; its rows as ``PlainRow``s."""
    build = plain_rows(model)
    return [build(row) for row in await fetch_dicts(sql, params, conn)]
