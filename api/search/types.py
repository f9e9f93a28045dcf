"""Search results: hits (an article or a market, with a snippet and its rank) in pages."""

from __future__ import annotations

import html
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


SearchResult = Annotated[
    Article | Market,
    strawberry.union("SearchResult", description="What a search hit is: an article or a market."),
]


def marked(raw: str) -> str:
    """A snippet as HTML: the text escaped, only the matched words in ``<mark>``."""
    # html.escape leaves the private-use marks alone: they become the only markup.
    text = html.escape(raw, quote=True)
    return text.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")


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
