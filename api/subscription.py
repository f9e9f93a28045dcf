"""The Subscription type: live comments and live odds.

The fields are served by ``realtime`` (our graphql-transport-ws endpoint), which runs
each event once per group of identical subscriptions with the event's object as the root value:
that is why each field simply returns its root value. Strawberry's own subscription executor is
not used; calling these through it answers with an error that says where to subscribe.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from api.comments.types import Comment
from api.core.errors import ApiError
from api.markets.types import OddsUpdate


class WebsocketOnly(ApiError):
    """Subscriptions are served by the websocket endpoint."""

    code = "BAD_REQUEST"


async def _websocket_only() -> AsyncGenerator[Any, None]:
    raise WebsocketOnly("Subscribe over a websocket to /graphql (graphql-transport-ws).")
    yield  # pragma: no cover - makes this an async generator


@strawberry.type(description="Live updates over websockets (graphql-transport-ws at /graphql).")
class Subscription:
    @strawberry.subscription(
        description=(
            "Every new visible comment or reply on the article. With `afterSequence`, first the "
            "comments with a higher sequence, then live: no gap, no duplicate."
        )
    )
    async def comment_added(
        self,
        info: Info,
        article_id: Annotated[strawberry.ID, strawberry.argument(description="The article.")],
        after_sequence: Annotated[
            int | None,
            strawberry.argument(description="Replay comments after this sequence first."),
        ] = None,
    ) -> AsyncGenerator[Comment, None]:
        async for item in _websocket_only():
            yield item

    @strawberry.subscription(
        description="The current odds at once, then one update per change of the market."
    )
    async def odds_updated(
        self,
        info: Info,
        market_id: Annotated[strawberry.ID, strawberry.argument(description="The market.")],
    ) -> AsyncGenerator[OddsUpdate, None]:
        async for item in _websocket_only():
            yield item

    @strawberry.subscription(
        description='Edits and deletions of the article\'s comments (a deleted one has body "").'
    )
    async def comment_updated(
        self,
        info: Info,
        article_id: Annotated[strawberry.ID, strawberry.argument(description="The article.")],
    ) -> AsyncGenerator[Comment, None]:
        async for item in _websocket_only():
            yield item
