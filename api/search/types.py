"""Search results: hits (an article or a market, with a snippet and its rank) in pages."""

from __future__ import annotations

import html
import re
from enum import Enum
from typing import Annotated

import strawberry

from api.core.connection import Edge, PageInfo
from api.markets.types import Market
from api.news.types import Article
from db.search import MARK_END, MARK_START


@strawberry.enum(description="What a search looks through.")
class SearchType(Enum):
    ARTICLE = strawberry.enum_value("Article", description="Published articles.")
    MARKET = strawberry.enum_value("Market", description="Markets, in any status.")


_MARKERS = re.compile(f"([{MARK_START}{MARK_END}])")

SearchResult = Annotated[
    Article | Market,
    strawberry.union("SearchResult", description="What a search hit is: an article or a market."),
]


def marked(raw: str) -> str:
    """A snippet as HTML: the text escaped, only the matched words in ``<mark>``, always
    balanced: a start marker opens a mark only when none is open and an end marker closes only
    an open one (others are dropped, as a text holding these characters could put them
    anywhere), and a mark still open at the end is closed."""
    # html.escape leaves the private-use marks alone: they become the only markup.
    out: list[str] = []
    open_mark = False
    for piece in _MARKERS.split(html.escape(raw, quote=True)):
        if piece == MARK_START:
            if not open_mark:
                out.append("<mark>")
                open_mark = True
        elif piece == MARK_END:
            if open_mark:
                out.append("</mark>")
                open_mark = False
        else:
            out.append(piece)
    if open_mark:
        out.append("</mark>")
    return "".join(out)


@strawberry.type(description="One search result.")
class SearchHit:
    node: SearchResult = strawberry.field(description="The article or market found.")
    snippet: str = strawberry.field(
        description=(
            "A short passage around the matched words, HTML-escaped, with only <mark>…</mark> "
            "added around them: safe to insert into a page."
        )
    )
    rank: float = strawberry.field(
        description=(
            "Relevance, higher first (comparable within one search, not across searches or "
            "databases)."
        )
    )


@strawberry.type(
    description=(
        "A page of search hits, most relevant first. Cursors are keyset cursors on (rank, "
        "type, id): pages may repeat or skip a hit while articles or markets change (ranks "
        "move with the whole corpus)."
    )
)
class SearchConnection:
    edges: list[Edge[SearchHit]] = strawberry.field(description="The hits with cursors.")
    nodes: list[SearchHit] = strawberry.field(description="The hits, without cursors.")
    page_info: PageInfo = strawberry.field(description="Paging information.")
    total_count: int = strawberry.field(description="How many hits there are in all.")
