"""SQL statements counted per request and per operation, whatever sends them through Tortoise.

``install`` wraps the statement methods of a Tortoise client class (and of its transaction
wrappers, which subclass it) once per process; the lifespan calls it for every connection name.
Each statement then adds one to the ``Statements`` of the current context (``counting``: a
request, a websocket operation), so concurrent requests never mix their counts, and goes to
``metrics.SQL_STATEMENTS`` when that record is closed (or at once, outside any record).

A statement costs two context variable reads and an integer addition: ~3,000 instructions
(~0.5 µs) under callgrind, where the bare call is ~22,000. A method whose code may call another
statement method (``may_nest``: none of Tortoise's SQLite and asyncpg ones but the SQLite
insert) also marks its task as inside a statement while it runs, so that the inner call doesn't
count again (twice the cost).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import CodeType
from typing import Any

import metrics
import tracing

# What Tortoise sends statements through (its executor and db.sql use nothing else).
METHODS = (
    "execute_query",
    "execute_query_dict",
    "execute_insert",
    "execute_many",
    "execute_script",
)
_MARK = "__agora_counted__"


class Statements:
    """The statements one request or operation sent so far."""

    __slots__ = ("count", "open")

    def __init__(self) -> None:
        self.count = 0
        # Closed once its owner is done: a task it started that runs on (a subscription's
        # replay) counts straight into the metric instead.
        self.open = True


_current: ContextVar[Statements | None] = ContextVar("agora_sql_statements", default=None)
# Per task: a wrapped method awaited by another one is the same statement.
_inside: ContextVar[bool] = ContextVar("agora_sql_inside", default=False)
_sql_total = metrics.SQL_STATEMENTS


def current() -> Statements | None:
    """The record statements count into here, if any."""
    return _current.get()


def begin() -> tuple[Statements, Token[Statements | None]]:
    """Start counting into a new record in this context; ``end`` with the token."""
    statements = Statements()
    return statements, _current.set(statements)


def end(statements: Statements, token: Token[Statements | None]) -> None:
    """Close ``statements`` (in the context that began it) and add them to the metric."""
    statements.open = False
    _current.reset(token)
    if statements.count:
        _sql_total.inc(statements.count)


@contextmanager
def counting() -> Iterator[Statements]:
    """A new record for the statements sent inside the block (and by tasks it starts)."""
    statements, token = begin()
    try:
        yield statements
    finally:
        end(statements, token)


# Names a statement method's code calls when it sends its statement through another one.
_NESTING = frozenset((*METHODS, "execute_query_dict_with_affected", "super"))


def _names(code: CodeType) -> set[str]:
    """Every name ``code`` (and the code nested in it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names(const)
    return names


def may_nest(method: Callable[..., Any]) -> bool:
    """Whether ``method`` (through its decorators) may call another statement method: then it
    marks its task as inside a statement while it runs, so the inner call doesn't count again.
    (Tortoise's own SQLite and asyncpg methods don't, but for the SQLite insert, whose driver
    method has the same name.)"""
    layer: Any = method
    while layer is not None:
        code = getattr(layer, "__code__", None)
        if code is None or _names(code) & _NESTING:
            return True
        layer = getattr(layer, "__wrapped__", None)
    return False


def _counted(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    if may_nest(original):

        @functools.wraps(original)
        async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _inside.get():
                return await original(self, *args, **kwargs)
            _count()
            token = _inside.set(True)
            try:
                tracer = tracing.tracer
                if tracer is None:
                    return await original(self, *args, **kwargs)
                with _span(tracer, self, args):
                    return await original(self, *args, **kwargs)
            finally:
                _inside.reset(token)

        setattr(counted, _MARK, True)
        return counted

    @functools.wraps(original)
    def counted_leaf(self: Any, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        # Counted as it is called, its coroutine handed back: no frame of its own to resume
        # at every await of the statement (a third of a statement's cost, counted).
        if _inside.get():
            return original(self, *args, **kwargs)
        statements = _current.get()
        if statements is not None and statements.open:
            statements.count += 1
        else:
            _sql_total.inc()
        tracer = tracing.tracer
        if tracer is None:
            return original(self, *args, **kwargs)
        return _in_span(tracer, self, args, original(self, *args, **kwargs))

    setattr(counted_leaf, _MARK, True)
    return counted_leaf


def _span(tracer: Any, client: Any, args: tuple[Any, ...]) -> Any:
    """A statement's span (tracing on): named by its first keyword, its text bounded."""
    query = args[0] if args and isinstance(args[0], str) else ""
    return tracer.start_as_current_span(
        tracing.statement_name(query),
        kind=tracing.client_kind(),
        attributes={
            "db.system": getattr(getattr(client, "capabilities", None), "dialect", "") or "sql",
            "db.statement": tracing.statement_text(query),
        },
    )


async def _in_span(tracer: Any, client: Any, args: tuple[Any, ...], statement: Any) -> Any:
    # The statement's coroutine starts running here, inside its span.
    with _span(tracer, client, args):
        return await statement


def _count() -> None:
    statements = _current.get()
    if statements is not None and statements.open:
        statements.count += 1
    else:
        _sql_total.inc()


def _subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def install(client_class: type) -> None:
    """Count the statements of ``client_class`` and of its subclasses (the transaction wrappers
    Tortoise makes per transaction). Idempotent: the lifespan of every app calls it."""
    for cls in (client_class, *_subclasses(client_class)):
        for name in METHODS:
            # The class itself gets every method (inherited ones wrapped on it); a subclass only
            # those it overrides, the rest it inherits already wrapped.
            if cls is not client_class and name not in cls.__dict__:
                continue
            method = getattr(cls, name, None)
            if method is None or getattr(method, _MARK, False):
                continue
            setattr(cls, name, _counted(method))


def install_for(clients: list[Any]) -> None:
    """``install`` for the class of each Tortoise client (one per connection name)."""
    for client in clients:
        install(type(client))


def add(count: int) -> None:
    """Count ``count`` statements sent other than through a wrapped method (a synchronous unit
    on SQLite's thread, ``db.sqlite_unit``) into the current record, or the metric."""
    if count <= 0:
        return
    statements = _current.get()
    if statements is not None and statements.open:
        statements.count += count
    else:
        _sql_total.inc(count)


# Called with the text of each statement sent other than through a wrapped method (the
# batched reads of ``db.sqlite_reads``): tests' statement counters listen here.
observers: list[Callable[[str], None]] = []


def sent(sql: str) -> None:
    """Count one statement sent other than through a wrapped method (a batched read), in the
    current record or the metric, and tell the observers."""
    _count()
    for observer in observers:
        observer(sql)
