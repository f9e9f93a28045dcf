"""The one generic Relay connection: keyset cursors, ``nodes``, ``pageInfo`` and ``totalCount``.

``connection_field(...)`` declares a paged list field in one call: the node type, where its rows
come from, their order (or an ``orderBy`` argument), and whose rows they are.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Generic, TypeVar

import strawberry
from graphql import FieldNode
from strawberry.types import Info

from api.core.dataloader import then
from api.core.node import row_converter
from api.core.pagination import Ordering, Page, Source, page_request

T = TypeVar("T")


@strawberry.type(description="Where a page sits in its list (Relay).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether rows follow this page.")
    has_previous_page: bool = strawberry.field(description="Whether rows precede this page.")
    # The page whose first and last cursors these are: encoded only when selected.
    page: strawberry.Private[Page[Any]]

    @strawberry.field(
        description="The cursor of the first row of this page; null when the page is empty."
    )
    def start_cursor(self) -> str | None:
        return self.page.cursor(0) if self.page.sort_values else None

    @strawberry.field(
        description="The cursor of the last row; pass it as `after` for the next page."
    )
    def end_cursor(self) -> str | None:
        return self.page.cursor(-1) if self.page.sort_values else None


@strawberry.type(description="A row of a list with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="An opaque keyset cursor for this row.")
    node: T = strawberry.field(description="The row.")


def _edges(root: Any) -> list[Edge[Any]]:
    # Built when selected: a cursor per row is an encoding per row (``nodes`` needs none).
    page = root.page_info.page
    return [Edge(cursor=page.cursor(i), node=node) for i, node in enumerate(root.nodes)]


@strawberry.type(
    description=(
        "A page of a list (Relay connection). Page forward with `first`/`after` or backward "
        "with `last`/`before`; `first` defaults to 20 and must be 0–100."
    )
)
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(
        resolver=_edges, description="The rows of this page with cursors."
    )
    nodes: list[T] = strawberry.field(description="The rows of this page, without cursors.")
    page_info: PageInfo = strawberry.field(description="Paging information.")
    count_key: strawberry.Private[tuple[Any, Source]]

    @strawberry.field(description="The number of rows in the whole list, across all pages.")
    def total_count(self, info: Info) -> int:
        # Often primed by the page's own statement (a first page per parent): then synchronous.
        return then(info.context.loaders.count_by_parent.load(self.count_key), _same)


def _same(value: int) -> int:
    return value


def load_connection(
    info: Info,
    parent: Any,
    source: Source,
    ordering: Ordering,
    convert: Callable[[Any], Any],
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Any]:
    """Validate the paging arguments, load the page through the loaders, wrap it: the
    connection at once when the page is loaded, else an awaitable of it (``then``: a resolver
    returning it is no coroutine, so no task of its own when its level is gathered)."""
    settings = info.context.settings
    request = page_request(
        first,
        after,
        last,
        before,
        ordering,
        default_size=settings.default_page_size,
        max_size=settings.max_page_size,
    )
    # A root list's first page counts the list when totalCount is selected (after a cursor
    # the page's rows are not the whole list: counted on its own, the spec not split).
    counted = parent is None and request.cursor is None and _selects_total(info)
    loaders = info.context.loaders
    spec = loaders.list_spec(source, ordering, request, counted)
    page = loaders.page_by_parent.load((parent, spec))
    return then(page, lambda page: _connection(page, parent, source, convert))


def _selects_total(info: Info) -> bool:
    """Whether the connection's own selection names ``totalCount`` (fragments are not looked
    into: then totalCount is counted by a statement of its own, with the same answer)."""
    for node in info._raw_info.field_nodes:
        selection_set = node.selection_set
        if selection_set is None:
            continue
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode) and selection.name.value == "totalCount":
                return True
    return False


def _connection(
    page: Page[Any], parent: Any, source: Source, convert: Callable[[Any], Any]
) -> Connection[Any]:
    return Connection(
        nodes=[convert(row) for row in page.rows],
        page_info=PageInfo(
            has_next_page=page.has_next, has_previous_page=page.has_previous, page=page
        ),
        count_key=(parent, source),
    )


First = Annotated[
    int | None,
    strawberry.argument(description="Page forward: this many rows (0–100, default 20)."),
]
After = Annotated[
    str | None, strawberry.argument(description="Page forward: rows after this cursor.")
]
Last = Annotated[
    int | None, strawberry.argument(description="Page backward: this many rows (0–100).")
]
Before = Annotated[
    str | None, strawberry.argument(description="Page backward: rows before this cursor.")
]


@dataclass(frozen=True)
class OrderBy:
    """An ``orderBy`` argument: its enum, default, and the ordering each value names."""

    enum: type[Enum]
    default: Enum
    orderings: Mapping[str, Ordering]
    description: str = "The order of the list."


def _own_pk(parent: Any) -> Any:
    return parent.pk


_PAGING = [
    inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Info),
    *(
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in (("first", First), ("after", After), ("last", Last), ("before", Before))
    ),
]


def connection_field(
    node: Any,
    source: Source,
    ordering: Ordering | OrderBy,
    *,
    description: str,
    parent: Callable[[Any], Any] | None = _own_pk,
    guard: Callable[[Info], object] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """A ``Connection[node]`` field paged with ``first/after/last/before``.

    ``node`` is the node's strawberry type (or a ``strawberry.lazy`` annotation of one, for a
    type of another domain); its ``from_row`` builds each node. ``parent`` picks the key of the
    object the field is on (None: a root list); ``guard`` runs first (permissions).
    """
    convert = row_converter(node)
    order_by = ordering if isinstance(ordering, OrderBy) else None
    parameters = list(_PAGING)
    if order_by is not None:
        parameters.append(
            inspect.Parameter(
                "order_by",
                inspect.Parameter.KEYWORD_ONLY,
                default=order_by.default,
                annotation=Annotated[
                    order_by.enum, strawberry.argument(description=order_by.description)
                ],
            )
        )

    def resolve(self: Any, info: Info, **arguments: Any) -> Connection[Any]:
        if guard is not None:
            guard(info)
        chosen = arguments.pop("order_by", None)
        page_ordering = order_by.orderings[chosen.name] if order_by is not None else ordering
        assert isinstance(page_ordering, Ordering)
        return load_connection(
            info,
            None if parent is None else parent(self),
            source,
            page_ordering,
            convert,
            **arguments,
        )

    resolve.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=Connection[node]
    )
    return strawberry.field(resolver=resolve, description=description, metadata=metadata)
