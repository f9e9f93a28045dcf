"""``node``/``nodes``: any object by global ID, through the same loaders as everywhere else."""

from __future__ import annotations

import asyncio
from typing import Any

from strawberry.types import Info

from schema.node import from_global_id


async def load_node(info: Info, global_id: str) -> Any:
    """The schema object behind ``global_id``, or None; BAD_USER_INPUT when malformed."""
    from schema import types

    type_name, pk = from_global_id(global_id)
    loaders = info.context.loaders
    if type_name == "Category":
        tree = await loaders.category_tree()
        row = tree.by_id.get(pk)
        return types.Category.from_row(row) if row else None
    if type_name == "Outcome":
        outcome = await loaders.outcome_by_id.load(pk)
        if outcome is None:
            return None
        market = await loaders.market_by_id.load(outcome.market_id)
        siblings = await loaders.outcomes_by_market.load(outcome.market_id)
        for item in types.outcome_types(market, siblings):
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
    return types.as_type(type_name, row) if row else None


async def load_nodes(info: Info, global_ids: list[str]) -> list[Any]:
    """Each ID's object or None, in order; all IDs are checked before anything is loaded."""
    for global_id in global_ids:
        from_global_id(global_id)
    return list(await asyncio.gather(*(load_node(info, gid) for gid in global_ids)))
