"""What every subscription field shares: the resolver nothing runs, and refusals as the GraphQL
errors a subscription ends with.

The fields are served by the websocket server (``realtime``), which executes each event once
per group of identical subscriptions with the event's object as the root value, found through
the field's ``SubscriptionSource``. Strawberry's own subscription executor is not used; calling
a field through it answers with an error that says where to subscribe.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import Any

from graphql import GraphQLError

from api.core.errors import ApiError


class WebsocketOnly(ApiError):
    """Subscriptions are served by the websocket endpoint."""

    code = "BAD_REQUEST"


async def websocket_only() -> AsyncGenerator[Any, None]:
    """What a subscription field's resolver yields from: nothing, it raises WebsocketOnly."""
    raise WebsocketOnly("Subscribe over a websocket to /graphql (graphql-transport-ws).")
    yield  # pragma: no cover - makes this an async generator


@contextmanager
def refusals() -> Iterator[None]:
    """An ApiError raised inside becomes the GraphQLError refusing the subscription: its
    message and code, nothing else."""
    try:
        yield
    except ApiError as exc:
        raise GraphQLError(exc.message, extensions={"code": exc.code}) from exc
