"""The loader machinery every domain's loaders share: budgets, batching helpers, connections.

One loader per relation, named ``<thing>_by_<key>``, one result per key (``None`` or ``[]`` on a
miss); each domain declares its own in ``api/<domain>/loaders.py`` and ``api.loaders.Loaders``
gathers them. Connection loaders (here) take ``(parent, ListSpec)`` keys and answer all parents
that share a spec with one windowed statement (see ``api.core.pagination``).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Generator, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast, overload

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from api.core.errors import ResponseTooLarge
from api.core.pagination import (
    Ordering,
    Page,
    PageRequest,
    Source,
    count_rows,
    fetch_pages,
    hashed_once,
)
from db.sql import fetch_dicts, fetch_rows, placeholders, plain_rows

M = TypeVar("M", bound=Model)
K = TypeVar("K", bound=Hashable)


@hashed_once
@dataclass(frozen=True)
class ListSpec:
    """Everything about a list but its parent: where rows come from, their order, the page."""

    source: Source
    ordering: Ordering
    request: PageRequest
    # A root list (no parent) whose totalCount is selected: its page statement counts the list
    # too, so totalCount costs no statement of its own (lists under parents always count).
    counted: bool = False


def by_field(model: type[M], field: str) -> Callable[[list[Any]], Awaitable[list[M | None]]]:
    """A batch function loading rows of ``model`` by a unique ``field``: one plain row
    (``db.sql.PlainRow``, a model instance's attributes) or None a key. Declared with the
    loaders' classes, before Tortoise is started: the model's columns are looked up on the
    first call (a foreign key's ``_id`` field exists only once Tortoise has started)."""
    shape: tuple[int | None, str, str] | None = None

    async def load(keys: list[Any]) -> list[M | None]:
        nonlocal shape
        if shape is None:
            # A key longer than the column matches nothing (and Tortoise refuses to send it).
            shape = (
                getattr(model._meta.fields_map[field], "max_length", None),
                model._meta.db_table,
                model._meta.fields_db_projection[field],
            )
        max_length, table, column = shape
        wanted = list({k for k in keys if max_length is None or len(k) <= max_length})
        rows = (
            await fetch_rows(
                model,
                f"SELECT * FROM {table} WHERE {column} IN ({placeholders(len(wanted))})",
                wanted,
            )
            if wanted
            else []
        )
        found = {getattr(row, field): row for row in rows}
        return [found.get(key) for key in keys]

    return load


def grouped(keys: Sequence[Any], pairs: Iterable[tuple[Any, Any]]) -> list[list[Any]]:
    """The values of ``(key, value)`` pairs gathered per key, in the order of ``keys``."""
    groups: dict[Any, list[Any]] = defaultdict(list)
    for key, value in pairs:
        groups[key].append(value)
    return [groups.get(key, []) for key in keys]


class ResponseBudget:
    """How many objects loaders may hand to one response (cache hits included: one article id
    asked for 100 times under 30 aliases is one row but 3,000 objects to render)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0
        # The response cache's hook: set while a cache miss executes (api.extensions.cachetags).
        self.recorder: Any = None

    def error(self) -> ResponseTooLarge:
        """What the response becomes once over the budget."""
        return ResponseTooLarge(
            f"The response would hold more than {self.limit} objects. Ask for less.",
            limit="responseObjects",
        )

    @property
    def exceeded(self) -> bool:
        """Whether the response has been handed more objects than its limit."""
        return self.limit is not None and self.used > self.limit

    def spend(self, future: asyncio.Future[Any]) -> None:
        """Count what a load resolved to: a list's items, a page's rows, else one object."""
        if future.cancelled() or future.exception() is not None:
            return
        value = future.result()
        if isinstance(value, list):
            self.used += len(value)
        elif isinstance(value, Page):
            self.used += len(value.rows)
        else:
            self.used += 1


T = TypeVar("T")
R = TypeVar("R")
# No object kept yet (None is a value to keep).
_MISSING: Any = object()


def then(loaded: Awaitable[T], convert: Callable[[T], R]) -> R:
    """``convert`` of what a load gives: at once when the loader already has it (rows primed
    by a page's join, a key asked before), else an awaitable of it.

    A resolver returning this is synchronous whenever the data is there: graphql-core then
    completes the field in place instead of through a coroutine and its await chain (a comment
    thread's authors are all primed: sixty fewer coroutines on an article page). Typed as
    ``R`` because that is the field's type either way: graphql-core awaits an awaitable that a
    resolver returns.
    """
    if isinstance(loaded, asyncio.Future):
        if loaded.done():
            return convert(loaded.result())  # a failed load raises here, as awaiting it would
        # Not a coroutine: gathered with the rest of its level, a coroutine becomes a task of
        # its own (ten articles' tags were ten tasks on the home feed). The planned executor
        # waits for the load itself and converts in place (api.core.execution).
        return Then(loaded, convert)  # type: ignore[return-value]

    async def later() -> R:
        return convert(await loaded)

    return later()  # type: ignore[return-value]


class Then(Generic[T, R]):
    """``convert`` of what the pending load ``loaded`` gives, as an awaitable. Its load is the
    loader's own future (shared by every load of the key): waiting for it adds no future,
    callback or turn of the loop of its own, and a waiter giving up cancels nothing."""

    __slots__ = ("convert", "loaded")

    def __init__(self, loaded: asyncio.Future[T], convert: Callable[[T], R]) -> None:
        self.loaded = loaded
        self.convert = convert

    def __await__(self) -> Generator[Any, None, R]:
        value = yield from asyncio.shield(self.loaded).__await__()
        return self.convert(value)


class CountingDataLoader(DataLoader[K, T]):
    """A DataLoader that counts what it hands out against a ResponseBudget; once over it, every
    further load fails at once, so execution winds down instead of building the response."""

    budget: ResponseBudget
    # The loaders' attribute it is made for (``lazy_loader``): the response cache's tags by name.
    name: str = ""

    def load(self, key: K) -> Awaitable[T]:
        """DataLoader's load, counted; refused at once when the budget is spent."""
        if self.budget.exceeded:
            failed: asyncio.Future[T] = self.loop.create_future()
            failed.set_exception(self.budget.error())
            return failed
        future = cast("asyncio.Future[T]", super().load(key))
        if self.budget.recorder is not None:
            # The response cache records what this response read (its version tags).
            self.budget.recorder.loaded(self, key, future)
        # A callback, not a wrapping coroutine: loads are the hot path of every page.
        if future.done():
            self.budget.spend(future)
        else:
            future.add_done_callback(self.budget.spend)
        return future


class lazy_loader:  # declared like a field: ``user_by_id = lazy_loader(...)``
    """A loader declared on a loaders class, made on its first use in each request: a request
    builds the few of its ~25 loaders that it reads (making them all was 2 % of an article
    page). ``batch`` is the batch function, or with ``method=True`` a method of the class
    (``async def _tags(self, keys)``), bound to the request's loaders (looked up by its name)."""

    def __init__(self, batch: Callable[..., Awaitable[Any]], *, method: bool = False) -> None:
        self.batch = batch
        self.method = method
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        if self.name:
            raise TypeError(f"one lazy_loader under two names: {self.name}, {name}")
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> lazy_loader: ...

    @overload
    def __get__(
        self, instance: LoaderBase, owner: type | None = None
    ) -> CountingDataLoader[Any, Any]: ...

    def __get__(
        self, instance: LoaderBase | None, owner: type | None = None
    ) -> lazy_loader | CountingDataLoader[Any, Any]:
        if instance is None:
            return self
        if instance.__dict__.get("_released"):
            # (Before, the attribute was gone: a load after release is a use after release.)
            raise AttributeError(f"{self.name}: the loaders were released")
        # A method is looked up by name on the loaders: an override (or a test's patch) wins.
        batch = getattr(instance, self.batch.__name__) if self.method else self.batch
        made = instance._loader(batch)
        made.name = self.name
        # The instance's own attribute from now on: the descriptor isn't asked again.
        instance.__dict__[self.name] = made
        return made


class LoaderBase:
    """The budget and the connection loaders; each domain's loaders extend it cooperatively
    (declaring theirs with ``lazy_loader``)."""

    def __init__(self, max_objects: int | None = None) -> None:
        self.budget = ResponseBudget(max_objects)

    def release(self) -> None:
        """Let go of every loader once the response is built: each holds a bound method of this
        object, so a request left ~270 objects in reference cycles, freed only by the cyclic
        collector (a full collection every few hundred requests paused the loop ~50 ms). The
        budget stays, for whatever reads it after."""
        budget = self.budget
        self.__dict__.clear()
        self.budget = budget
        self._released = True

    def list_spec(
        self, source: Source, ordering: Ordering, request: PageRequest, counted: bool
    ) -> ListSpec:
        """The spec of a list, one object for equal specs of this response: a list under every
        comment of a page is one spec, and its hash (a part of each parent's loader key) is
        then computed once, not once a parent."""
        return self.kept(
            (ListSpec, source, ordering, request, counted),
            lambda: ListSpec(source, ordering, request, counted),
        )

    def kept(self, key: Hashable, make: Callable[[], R]) -> R:
        """The object of ``key``, made once for this response (``make()`` the first time): what
        a page shows again and again (a tag under every article of a list, the categories of a
        tree) becomes one schema object, not one a place. ``key`` must name everything
        ``make`` reads."""
        objects: dict[Hashable, Any] | None = self.__dict__.get("_kept")
        if objects is None:
            if self.__dict__.get("_released"):
                raise AttributeError("the response's loaders were released")
            objects = self.__dict__["_kept"] = {}
        made = objects.get(key, _MISSING)
        if made is _MISSING:
            made = objects[key] = make()
        return cast(R, made)

    def _loader(
        self, load_fn: Callable[[list[Any]], Awaitable[Any]]
    ) -> CountingDataLoader[Any, Any]:
        loader: CountingDataLoader[Any, Any] = CountingDataLoader(load_fn)
        loader.budget = self.budget
        return loader

    async def _pages(self, keys: list[tuple[Any, ListSpec]]) -> list[Page[Any]]:
        """``page_by_parent``: the pages of every parent sharing a spec, in one statement."""
        by_spec: dict[ListSpec, list[Any]] = defaultdict(list)
        for parent, spec in keys:
            by_spec[spec].append(parent)
        found: dict[tuple[Any, ListSpec], Page[Any]] = {}
        # One statement per spec, sent together (on SQLite: one hand-off, db.sqlite_reads).
        specs = list(by_spec)
        uniques = [list(dict.fromkeys(by_spec[spec])) for spec in specs]
        # A root list is counted by one of its pages only: aliases of one list with different
        # sizes cost one count, as they did when totalCount was a statement of its own.
        counting: set[Source] = set()
        fetches = []
        for spec, unique in zip(specs, uniques, strict=True):
            if unique == [None]:
                counted = spec.counted and spec.source not in counting
                if counted:
                    counting.add(spec.source)
                fetches.append(
                    fetch_pages(spec.source, spec.ordering, spec.request, counted=counted)
                )
            else:
                fetches.append(fetch_pages(spec.source, spec.ordering, spec.request, unique))
        fetched = await _together(fetches)
        for spec, pages in zip(specs, fetched, strict=True):
            for parent, page in pages.items():
                found[(parent, spec)] = page
                if page.total is not None:
                    self.count_by_parent.prime((parent, spec.source), page.total)
                for loader_name, rows in page.related.items():
                    loader: DataLoader[Any, Any] = getattr(self, loader_name)
                    for row in rows:
                        loader.prime(row.pk, row)
        return [found[key] for key in keys]

    async def _counts(self, keys: list[tuple[Any, Source]]) -> list[int]:
        """``count_by_parent``: the rows of every parent of a source, in one statement."""
        by_source: dict[Source, list[Any]] = defaultdict(list)
        for parent, source in keys:
            by_source[source].append(parent)
        found: dict[tuple[Any, Source], int] = {}
        uniques = [list(dict.fromkeys(parents)) for parents in by_source.values()]
        fetched = await _together(
            count_rows(source, None if unique == [None] else unique)
            for source, unique in zip(by_source, uniques, strict=True)
        )
        for source, counts in zip(by_source, fetched, strict=True):
            for parent, count in counts.items():
                found[(parent, source)] = count
        return [found[key] for key in keys]

    page_by_parent = lazy_loader(_pages, method=True)
    count_by_parent = lazy_loader(_counts, method=True)


async def _together(awaitables: Iterable[Awaitable[R]]) -> list[R]:
    """Each awaitable's result, in order: one awaited in place, several at once (their
    statements then go out in the same turn of the loop); the first error raises."""
    pending = list(awaitables)
    if len(pending) == 1:
        return [await pending[0]]
    # Every one runs to its end (none is left failing unobserved), then the first error raises.
    results = await asyncio.gather(*pending, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


async def link_query(
    model: type[M],
    table: str,
    link_table: str,
    key_column: str,
    target_column: str,
    keys: list[int],
    order: str,
) -> list[list[M]]:
    """Rows of ``table`` linked to each key through ``link_table``: one statement for all."""
    unique = list(set(keys))
    rows = await fetch_dicts(
        f"SELECT t.*, l.{key_column} AS _parent FROM {link_table} l "
        f"JOIN {table} t ON t.id = l.{target_column} "
        f"WHERE l.{key_column} IN ({placeholders(len(unique))}) ORDER BY {order}",
        unique,
    )
    build = plain_rows(model)
    return grouped(keys, ((row["_parent"], build(row)) for row in rows))
