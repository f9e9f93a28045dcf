"""``node``/``nodes``: any object by global ID, through the same loaders as everywhere else.

It sits above the domains of the GraphQL layer: it knows every node type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from api.accounts.types import User
from api.comments.types import Comment
from api.core.errors import BadUserInput
from api.core.node import Node, from_global_id
from api.core.visibility import article_row
from api.markets.types import Market, Outcome, Trade, outcome_types
from api.news.types import Article, Author, Category, Tag

_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "Article": Article.from_row,
    "Author": Author.from_row,
    "Category": Category.from_row,
    "Tag": Tag.from_row,
    "Comment": Comment.from_row,
    "User": User.from_row,
    "Market": Market.from_row,
    "Trade": Trade.from_row,
}


async def load_node(info: Info, global_id: str) -> Any:
    """The schema object behind ``global_id``, or None; BAD_USER_INPUT when malformed."""
    type_name, pk = from_global_id(global_id)
    loaders = info.context.loaders
    if type_name == "Category":
        tree = await loaders.category_tree()
        row = tree.by_id.get(pk)
        return Category.from_row(row) if row else None
    if type_name == "Outcome":
        outcome = await loaders.outcome_by_id.load(pk)
        if outcome is None:
            return None
        market = await loaders.market_by_id.load(outcome.market_id)
        siblings = await loaders.outcomes_by_market.load(outcome.market_id)
        for item in outcome_types(market, siblings):
            if item.pk == pk:
                return item
        return None
    loader = {
        "Article": loaders.article_by_id,
        "Author": loaders.author_by_id,
        "Tag": loaders.tag_by_id,
        "Comment": loaders.comment_by_id,
        "User": loaders.user_by_id,
        "Market": loaders.market_by_id,
        "Trade": loaders.trade_by_id,
    }.get(type_name)
    if loader is None:
        return None
    row = await loader.load(pk)
    if row is not None and type_name == "Article":
        row = await article_row(info, row)
    elif row is not None and type_name == "Author":
        # A byline is seen as ``authors`` lists them: with an article readers see.
        if not await loaders.author_shown.load(pk):
            return None
    elif row is not None and type_name == "Comment":
        # A comment is seen with its article (a draft's or an archived article's are not).
        article = await loaders.article_by_id.load(row.article_id)
        if await article_row(info, article) is None:
            return None
    return _CONVERTERS[type_name](row) if row else None


async def load_nodes(info: Info, global_ids: list[str]) -> list[Any]:
    """Each ID's object or None, in order; all IDs are checked before anything is loaded."""
    for global_id in global_ids:
        from_global_id(global_id)
    return list(await asyncio.gather(*(load_node(info, gid) for gid in global_ids)))


@strawberry.field(description="Any object by its global ID; null if there is none.")
async def node(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="A global ID.")],
) -> Node | None:
    return await load_node(info, id)


@strawberry.field(
    description="Objects by global ID (at most 100), in the same order; null for a miss."
)
async def nodes(
    info: Info,
    ids: Annotated[list[strawberry.ID], strawberry.argument(description="Up to 100 global IDs.")],
) -> list[Node | None]:
    limit = info.context.settings.max_node_ids
    if len(ids) > limit:
        raise BadUserInput(f"`ids` takes at most {limit} IDs, got {len(ids)}.", field="ids")
    return await load_nodes(info, [str(gid) for gid in ids])


NODE_TYPES = (Article, Author, Category, Comment, Market, Outcome, Tag, Trade, User)
