"""The one generic Relay connection: keyset cursors, ``nodes``, ``pageInfo`` and ``totalCount``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

import strawberry
from strawberry.types import Info

from resolvers.loaders import ListSpec
from resolvers.pagination import Ordering, Page, Source, page_request

T = TypeVar("T")


@strawberry.type(description="Where a page sits in its list (Relay).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether rows follow this page.")
    has_previous_page: bool = strawberry.field(description="Whether rows precede this page.")
    start_cursor: str | None = strawberry.field(
        description="The cursor of the first row of this page; null when the page is empty."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the last row; pass it as `after` for the next page."
    )


@strawberry.type(description="A row of a list with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="An opaque keyset cursor for this row.")
    node: T = strawberry.field(description="The row.")


@strawberry.type(
    description=(
        "A page of a list (Relay connection). Page forward with `first`/`after` or backward "
        "with `last`/`before`; `first` defaults to 20 and must be 0–100."
    )
)
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The rows of this page with cursors.")
    nodes: list[T] = strawberry.field(description="The rows of this page, without cursors.")
    page_info: PageInfo = strawberry.field(description="Paging information.")
    count_key: strawberry.Private[tuple[Any, Source]]

    @strawberry.field(description="The number of rows in the whole list, across all pages.")
    async def total_count(self, info: Info) -> int:
        return await info.context.loaders.count_by_parent.load(self.count_key)


async def load_connection(
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
    """Validate the paging arguments, load the page through the loaders, wrap it."""
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
    page: Page[Any] = await info.context.loaders.page_by_parent.load(
        (parent, ListSpec(source, ordering, request))
    )
    nodes = [convert(row) for row in page.rows]
    edges = [Edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)]
    return Connection(
        edges=edges,
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
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
