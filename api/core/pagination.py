"""Keyset pagination, for one list or for many parents in one query.

A cursor is the (sort values…, id) of a row, so paging by a value that never changes
(NEWEST, OLDEST) never repeats or skips a row while rows are inserted. A page for many parents
at once (the replies of ten comments, the articles of every tag on a page) is one statement:
ROW_NUMBER() OVER (PARTITION BY parent ORDER BY …) keeps the first N rows of each parent.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any, Generic, Literal, TypeVar

from tortoise.models import Model

import clock
from api.core.errors import BadUserInput
from db.sql import fetch_dicts, placeholders, plain_rows, unstorable_reason

M = TypeVar("M", bound=Model)

Kind = Literal["int", "bigint", "str", "datetime", "float"]
# An int4 column compared with a bigger value is an error on PostgreSQL, not an empty page.
_LIMITS = {"int": 2**31, "bigint": 2**63}


C = TypeVar("C", bound=type)


def hashed_once(cls: C) -> C:
    """A frozen dataclass whose hash is computed once: lists' specs are dictionary keys of the
    loaders (a page's key per parent: ``(parent, ListSpec(Source, Ordering, PageRequest))``),
    and the generated ``__hash__`` rebuilt and hashed the whole nested tuple on every load
    (2.5 % of an article page's CPU). Equality stays the dataclass's, field by field."""
    # The fields equality compares (and hashing would): ``hash=False`` / ``compare=False`` ones
    # stay out. (Kept per process: these specs are never pickled or sent anywhere.) Read by
    # one attrgetter, a tuple built in C (a generator over the names was most of a first hash).
    names = tuple(f.name for f in fields(cls) if (f.compare if f.hash is None else f.hash))
    values = (
        attrgetter(*names)
        if len(names) > 1
        else (lambda self: tuple(getattr(self, name) for name in names))
    )

    def __hash__(self: Any) -> int:
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(values(self))
            object.__setattr__(self, "_hash", cached)
        return cached

    cls.__hash__ = __hash__  # type: ignore[assignment,method-assign]
    return cls


@hashed_once
@dataclass(frozen=True)
class SortKey:
    """One column (or SQL expression) of an order; the last key of an order must be unique."""

    expr: str
    kind: Kind
    desc: bool


@hashed_once
@dataclass(frozen=True)
class Ordering:
    """A named order; its name is in every cursor so a cursor of another order is refused."""

    name: str
    keys: tuple[SortKey, ...]

    def sql(self, reverse: bool = False) -> str:
        """The ORDER BY list (reversed for backward paging)."""
        parts = []
        for key in self.keys:
            desc = key.desc != reverse
            parts.append(f"{key.expr} {'DESC' if desc else 'ASC'}")
        return ", ".join(parts)


@hashed_once
@dataclass(frozen=True)
class PageRequest:
    """Validated paging arguments: exactly one direction, a size, an optional cursor."""

    size: int
    backward: bool = False
    cursor: tuple[Any, ...] | None = None


@hashed_once
@dataclass(frozen=True)
class Join:
    """A to-one relation fetched with the page (``LEFT JOIN``) to prime a loader.

    The comment author of every comment on a page comes in the same statement, so resolving
    ``author`` costs nothing, however many comments or replies the page has.
    """

    alias: str
    model: type[Model]
    on: str
    loader: str

    def columns(self) -> list[str]:
        """The joined table's columns, selected as ``alias__column``."""
        return sorted(self.model._meta.db_fields)


@hashed_once
@dataclass(frozen=True)
class Source:
    """Where the rows of a list come from: a FROM clause, filters, and the parent column.

    ``table`` is the alias of the model's table in ``from_sql``; ``where`` is a list of SQL
    fragments with ``?`` placeholders and their parameters, all ANDed.
    """

    model: type[Model]
    from_sql: str
    table: str
    where: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    parent: str | None = None
    joins: tuple[Join, ...] = ()


@dataclass
class Page(Generic[M]):
    """One page of rows with their cursors, for one parent.

    A cursor is encoded when asked for (``cursor(i)``): a page's rows come with their sort
    values, and most selections read no cursor (``replies { nodes }``) or two (``pageInfo``).
    """

    rows: list[M]
    sort_values: list[tuple[Any, ...]]
    ordering: Ordering
    has_next: bool
    has_previous: bool
    # Per Join: the related rows of this page, to prime that join's loader with.
    related: dict[str, list[Model]] = field(default_factory=dict)
    # The number of rows of the whole list (as ``count_rows`` counts it), when the statement
    # that read the page counted them too (a first page of a windowed, per-parent statement).
    total: int | None = None

    def cursor(self, index: int) -> str:
        """The cursor of row ``index`` (negative: from the end, as a list's)."""
        return encode_cursor(self.ordering, self.sort_values[index])


class _Now:
    """A parameter standing for the time the statement is built at (``clock.now()``): a list
    spec is a constant, and what readers see of it follows the clock (scheduled articles)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOW"


NOW: Any = _Now()


@dataclass
class _Parts:
    sql: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.sql.append(sql)
        self.params.extend(params)


def page_request(
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    ordering: Ordering,
    *,
    default_size: int,
    max_size: int,
) -> PageRequest:
    """Check Relay paging arguments; every misuse is BAD_USER_INPUT, never silently clamped."""
    if first is not None and last is not None:
        raise BadUserInput("Pass either `first` or `last`, not both.", field="first")
    if after is not None and before is not None:
        raise BadUserInput("Pass either `after` or `before`, not both.", field="after")
    if last is not None or before is not None:
        if after is not None or first is not None:
            raise BadUserInput(
                "`last`/`before` page backward; don't mix them with `first`/`after`."
            )
        size = default_size if last is None else last
        name, backward, raw = "last", True, before
    else:
        size = default_size if first is None else first
        name, backward, raw = "first", False, after
    if not 0 <= size <= max_size:
        raise BadUserInput(f"`{name}` must be between 0 and {max_size}, got {size}.", field=name)
    if raw is None:
        return _first_page(size, backward)
    return PageRequest(size=size, backward=backward, cursor=decode_cursor(raw, ordering))


@lru_cache(maxsize=512)
def _first_page(size: int, backward: bool) -> PageRequest:
    """The request of a page without a cursor, one object per size and direction (sizes are
    bounded by ``max_page_size``): its hash, a part of every loader key of its lists, is
    computed once, not once a parent."""
    return PageRequest(size=size, backward=backward)


# json.dumps with options builds an encoder per call; a page encodes a cursor per row.
_CURSOR_JSON = json.JSONEncoder(separators=(",", ":")).encode
# The pieces of that encoder, called directly (a cursor an edge: 3.3 µs each through the
# encoder and base64's wrappers, a fortieth of a home feed); the text is the same, byte for byte.
_QUOTE = json.encoder.encode_basestring_ascii
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def encode_cursor(ordering: Ordering, values: Sequence[Any]) -> str:
    """An opaque cursor for a row's sort values."""
    parts = [_QUOTE(ordering.name)]
    for key, value in zip(ordering.keys, values, strict=True):
        kind = key.kind
        if kind == "datetime":
            # An ISO time is ASCII with nothing JSON escapes.
            iso = _iso_text(value) if value.__class__ is str else _as_datetime(value).isoformat()
            parts.append(f'"{iso}"')
        elif kind == "str":
            parts.append(_QUOTE(str(value)))
        elif kind == "float":
            # JSON keeps a float's shortest repr: it reads back as the same double.
            parts.append(_CURSOR_JSON(float(value)))
        else:
            parts.append(int.__repr__(int(value)))
    raw = "[" + ",".join(parts) + "]"
    encoded = binascii.b2a_base64(raw.encode(), newline=False).translate(_URLSAFE)
    return encoded.rstrip(b"=").decode("ascii")


@lru_cache(maxsize=4096)
def _iso_text(text: str) -> str:
    """The ISO form of a time as SQLite's text holds it: the same rows' cursors are made on
    every request, and ``isoformat`` is most of a cursor's cost."""
    return _as_datetime(text).isoformat()


def decode_cursor(cursor: str, ordering: Ordering) -> tuple[Any, ...]:
    """The sort values inside ``cursor``; BAD_USER_INPUT if it isn't one of this order's."""
    bad = BadUserInput(f"Invalid cursor {cursor[:64]!r} for order {ordering.name}.")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError, RecursionError) as exc:
        # RecursionError: a cursor of nested brackets exhausts the JSON decoder's stack.
        raise bad from exc
    if (
        not isinstance(data, list)
        or len(data) != len(ordering.keys) + 1
        or data[0] != ordering.name
    ):
        raise bad
    values: list[Any] = []
    for key, value in zip(ordering.keys, data[1:], strict=True):
        if key.kind == "datetime":
            if not isinstance(value, str) or unstorable_reason(value) is not None:
                raise bad
            try:
                values.append(_as_datetime(datetime.fromisoformat(value)))
            except (ValueError, OverflowError) as exc:
                # OverflowError: year 1 with a positive offset has no UTC equivalent.
                raise bad from exc
        elif key.kind == "str":
            if not isinstance(value, str) or unstorable_reason(value) is not None:
                raise bad
            values.append(value)
        elif key.kind == "float":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise bad
            try:
                number = float(value)
            except OverflowError as exc:
                # An integer past a double's range (10**400) has no float.
                raise bad from exc
            if not math.isfinite(number):
                raise bad
            values.append(number)
        else:
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or abs(value) >= _LIMITS[key.kind]
            ):
                raise bad
            values.append(value)
    return tuple(values)


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite returns the stored text
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {value!r}")
    tzinfo = value.tzinfo
    if tzinfo is UTC:  # (as SQLite's text reads back)
        return value
    if tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _keyset_predicate(ordering: Ordering, request: PageRequest) -> tuple[str, list[Any]]:
    """(k1 > v1) OR (k1 = v1 AND k2 > v2) OR … in the direction of travel."""
    assert request.cursor is not None
    ors: list[str] = []
    params: list[Any] = []
    for i, key in enumerate(ordering.keys):
        ands: list[str] = []
        for prev, value in zip(ordering.keys[:i], request.cursor[:i], strict=True):
            ands.append(f"{prev.expr} = ?")
            params.append(value)
        forward_op = "<" if key.desc else ">"
        op = forward_op if not request.backward else ("<" if forward_op == ">" else ">")
        ands.append(f"{key.expr} {op} ?")
        params.append(request.cursor[i])
        ors.append("(" + " AND ".join(ands) + ")")
    return "(" + " OR ".join(ors) + ")", params


def _where(source: Source, extra: Sequence[tuple[str, Sequence[Any]]]) -> _Parts:
    parts = _Parts()
    moment: datetime | None = None
    for sql, params in (*source.where, *extra):
        if any(p is NOW for p in params):
            moment = moment or clock.now()
            params = [moment if p is NOW else p for p in params]
        parts.add(sql, params)
    return parts


async def fetch_pages(
    source: Source,
    ordering: Ordering,
    request: PageRequest,
    parents: Sequence[Any] | None = None,
    *,
    counted: bool = False,
) -> dict[Any, Page[Any]]:
    """One page per parent (or one page under the key ``None``), in one SQL statement; a list
    under parents is counted when it has no cursor, a root list when ``counted`` says so."""
    extra: list[tuple[str, Sequence[Any]]] = []
    if request.cursor is not None:
        extra.append(_keyset_predicate(ordering, request))
    if parents is not None:
        assert source.parent is not None
        extra.append((f"{source.parent} IN ({placeholders(len(parents))})", list(parents)))
    where = _where(source, extra)
    where_sql = " AND ".join(where.sql) if where.sql else "1 = 1"
    order_sql = ordering.sql(reverse=request.backward)
    sort_cols = ", ".join(f"{k.expr} AS _s{i}" for i, k in enumerate(ordering.keys))
    join_cols = "".join(
        f", {j.alias}.{col} AS {j.alias}__{col}" for j in source.joins for col in j.columns()
    )
    from_sql = source.from_sql + "".join(
        f" LEFT JOIN {j.model._meta.db_table} {j.alias} ON {j.on}" for j in source.joins
    )
    limit = request.size + 1
    # Without a cursor the window partition holds the parent's whole list: counting it there
    # costs nothing more and answers totalCount without a statement of its own.
    counted = (counted or parents is not None) and request.cursor is None
    params = where.params
    if parents is None or len(parents) == 1:
        # The count is a subquery of its own over the same rows (the source's FROM and WHERE;
        # it comes first in the text, so do its parameters): ``COUNT(*) OVER ()`` made SQLite
        # carry every row of the list, all its columns, through the sort (2× the statement).
        count_sql = " "
        if counted:
            count_sql = f", (SELECT COUNT(*) FROM {source.from_sql} WHERE {where_sql}) AS _total "
            params = [*where.params, *where.params]
        # One parent (an article's comments, an author's articles): the same rows as the
        # windowed form, by ORDER BY … LIMIT, counted over the whole list. SQLite ranked every
        # row of the list, every column carried through its sorter, for the window: three times
        # the cost of this on a busy thread.
        parent_sql = "" if parents is None else f", {source.parent} AS _parent"
        sql = (
            f"SELECT {source.table}.*, {sort_cols}{join_cols}{parent_sql}"
            + count_sql
            + f"FROM {from_sql} WHERE {where_sql} ORDER BY {order_sql} LIMIT {limit}"
        )
    else:
        # Counted per kept row by a correlated subquery (an index lookup per parent), not by
        # ``COUNT(*) OVER (PARTITION BY …)``, which carried every row of every list, all its
        # columns, through one more sort; its parameters come first in the text.
        base = _where(source, [(f"{source.parent} = windowed._parent", [])])
        count_sql = (
            f", (SELECT COUNT(*) FROM {source.from_sql} WHERE {' AND '.join(base.sql)}) AS _total"
            if counted
            else ""
        )
        sql = (
            f"SELECT *{count_sql} FROM (SELECT {source.table}.*, {sort_cols}{join_cols}, "
            f"{source.parent} AS _parent, "
            f"ROW_NUMBER() OVER (PARTITION BY {source.parent} ORDER BY {order_sql}) AS _rn "
            f"FROM {from_sql} WHERE {where_sql}) windowed "
            f"WHERE _rn <= {limit} ORDER BY _parent, _rn"
        )
        params = [*base.params, *where.params] if counted else where.params
    rows = await fetch_dicts(sql, params)
    grouped: dict[Any, list[dict[str, Any]]] = {}
    if parents is None:
        grouped[None] = rows
    else:
        for parent in parents:
            grouped[parent] = []
        for row in rows:
            grouped.setdefault(row["_parent"], []).append(row)
    pages: dict[Any, Page[Any]] = {}
    build = plain_rows(source.model)
    joined = [(join, plain_rows(join.model, f"{join.alias}__")) for join in source.joins]
    sort_columns = [f"_s{i}" for i in range(len(ordering.keys))]
    for parent, group in grouped.items():
        has_more = len(group) > request.size
        # Every row carries the partition's count: read it before the trim (``first: 0`` keeps
        # no row but still asks for ``totalCount``).
        total = int(group[0]["_total"]) if counted and group else 0
        group = group[: request.size]
        if request.backward:
            group.reverse()
        sort_values = [tuple(row[name] for name in sort_columns) for row in group]
        models = [build(row) for row in group]
        if request.backward:
            page = Page(
                models,
                sort_values,
                ordering,
                has_next=request.cursor is not None,
                has_previous=has_more,
            )
        else:
            page = Page(
                models,
                sort_values,
                ordering,
                has_next=has_more,
                has_previous=request.cursor is not None,
            )
        if counted:
            page.total = total
        for join, build_joined in joined:
            present = f"{join.alias}__id"
            page.related[join.loader] = [
                build_joined(row) for row in group if row[present] is not None
            ]
        pages[parent] = page
    return pages


async def count_rows(source: Source, parents: Sequence[Any] | None = None) -> dict[Any, int]:
    """The number of rows of the list, per parent (or under ``None``), in one statement."""
    extra: list[tuple[str, Sequence[Any]]] = []
    if parents is not None:
        assert source.parent is not None
        extra.append((f"{source.parent} IN ({placeholders(len(parents))})", list(parents)))
    where = _where(source, extra)
    where_sql = " AND ".join(where.sql) if where.sql else "1 = 1"
    if parents is None:
        rows = await fetch_dicts(
            f"SELECT COUNT(*) AS n FROM {source.from_sql} WHERE {where_sql}", where.params
        )
        return {None: int(rows[0]["n"])}
    rows = await fetch_dicts(
        f"SELECT {source.parent} AS _parent, COUNT(*) AS n FROM {source.from_sql} "
        f"WHERE {where_sql} GROUP BY {source.parent}",
        where.params,
    )
    counts = {parent: 0 for parent in parents}
    for row in rows:
        counts[row["_parent"]] = int(row["n"])
    return counts
