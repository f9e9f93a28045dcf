"""``search``: articles and markets by relevance to a reader's query."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

import clock
from api.core.connection import After, Edge, First, PageInfo
from api.core.errors import BadUserInput
from api.core.lists import MAX_SEARCH_LENGTH
from api.core.metadata import EXPENSIVE
from api.core.pagination import Ordering, Page, SortKey, page_request
from api.markets.types import Market
from api.news.types import Article
from api.search.types import SearchConnection, SearchHit, SearchType, marked
from db.search import fts5_query, search_hits, snippets

KIND = {SearchType.ARTICLE: "Article", SearchType.MARKET: "Market"}

# Most relevant first; ties by type, then id (a cursor is all three). Its own name: a cursor
# of a list's relevance order (``articles(filter: {search})``) isn't one of these.
RELEVANCE = Ordering(
    "SEARCH_RELEVANCE",
    (SortKey("rank", "float", True), SortKey("kind", "str", False), SortKey("id", "int", False)),
)


@strawberry.field(
    metadata=EXPENSIVE,
    description=(
        "Published articles and markets matching `query`, most relevant first. The query reads "
        'as a web search engine\'s: words (all of them), "quoted phrases", -excluded words and '
        "OR; stemmed (markets finds market) and accent-insensitive. At most 200 characters; "
        "one that leaves no word to look for finds nothing."
    ),
)
async def search(
    info: Info,
    query: Annotated[str, strawberry.argument(description="What to look for.")],
    first: First = None,
    after: After = None,
    types: Annotated[
        list[SearchType] | None,
        strawberry.argument(description="Only these kinds of results (default: all)."),
    ] = None,
) -> SearchConnection:
    text = query.strip()
    if len(text) > MAX_SEARCH_LENGTH:
        raise BadUserInput(f"`query` is at most {MAX_SEARCH_LENGTH} characters.", field="query")
    settings = info.context.settings
    request = page_request(
        first,
        after,
        None,
        None,
        RELEVANCE,
        default_size=settings.default_page_size,
        max_size=settings.max_page_size,
    )
    if request.cursor is not None and request.cursor[1] not in KIND.values():
        raise BadUserInput(f"Invalid cursor {str(after)[:64]!r} for order {RELEVANCE.name}.")
    wanted = set(SearchType) if types is None else set(types)
    kinds = sorted(KIND[t] for t in wanted)
    rows: list[dict[str, Any]] = []
    total = 0
    # The same words on both databases: a query with nothing to look for finds nothing.
    if kinds and fts5_query(text) is not None:
        cursor = request.cursor
        after_key = (float(cursor[0]), str(cursor[1]), int(cursor[2])) if cursor else None
        rows, total = await search_hits(text, kinds, request.size, after_key, clock.now())
    has_next = len(rows) > request.size
    rows = rows[: request.size]
    hits = await _hits(info, text, rows)
    page: Page[Any] = Page(
        rows=hits,
        sort_values=[(float(r["rank"]), str(r["kind"]), int(r["id"])) for r in rows],
        ordering=RELEVANCE,
        has_next=has_next,
        has_previous=request.cursor is not None,
    )
    return SearchConnection(
        edges=[Edge(cursor=page.cursor(i), node=hit) for i, hit in enumerate(hits)],
        nodes=hits,
        page_info=PageInfo(has_next_page=has_next, has_previous_page=page.has_previous, page=page),
        total_count=total,
    )


async def _hits(info: Info, text: str, rows: list[dict[str, Any]]) -> list[SearchHit]:
    loaders = info.context.loaders
    article_ids = [int(r["id"]) for r in rows if r["kind"] == "Article"]
    market_ids = [int(r["id"]) for r in rows if r["kind"] == "Market"]
    article_snippets, market_snippets, articles, markets = await asyncio.gather(
        snippets(text, "Article", article_ids),
        snippets(text, "Market", market_ids),
        loaders.article_by_id.load_many(article_ids),
        loaders.market_by_id.load_many(market_ids),
    )
    found: dict[tuple[str, int], Any] = {}
    for row in articles:
        if row is not None:
            found[("Article", row.id)] = Article.from_row(row)
    for row in markets:
        if row is not None:
            found[("Market", row.id)] = Market.from_row(row)
    hits = []
    for r in rows:
        kind, pk = str(r["kind"]), int(r["id"])
        node = found.get((kind, pk))
        if node is None:
            continue  # gone between the two reads
        raw = (article_snippets if kind == "Article" else market_snippets).get(pk, "")
        hits.append(SearchHit(node=node, snippet=marked(raw), rank=float(r["rank"])))
    return hits
